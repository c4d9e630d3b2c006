//! Row checks against the run's plan, shared by the writer (refuse to record) and the reader
//! (refuse a file): both must agree on what a valid run folder is.

use std::collections::HashSet;

use crate::meta::Meta;
use crate::rows::{ImageRow, LayerRow, RepeatRow};

pub(crate) fn repeat_row(meta: &Meta, row: &RepeatRow) -> Result<(), String> {
    row.check()?;
    planned_repeat(meta, row.repeat)?;
    planned_mode(meta, &row.mode)
}

pub(crate) fn layer_row(meta: &Meta, row: &LayerRow) -> Result<(), String> {
    row.check()?;
    planned_repeat(meta, row.repeat)?;
    planned_mode(meta, &row.mode)
}

pub(crate) fn image_row(meta: &Meta, row: &ImageRow) -> Result<(), String> {
    row.check()?;
    planned_repeat(meta, row.repeat)?;
    planned_mode(meta, &row.mode)?;
    if row.image >= meta.planned_images {
        return Err(format!(
            "column `image`: {} is out of range (planned_images = {})",
            row.image, meta.planned_images
        ));
    }
    Ok(())
}

fn planned_repeat(meta: &Meta, repeat: u32) -> Result<(), String> {
    if repeat == 0 || repeat > meta.planned_repeats {
        return Err(format!(
            "column `repeat`: {repeat} is outside 1..={} (planned_repeats)",
            meta.planned_repeats
        ));
    }
    Ok(())
}

fn planned_mode(meta: &Meta, mode: &str) -> Result<(), String> {
    if meta.mode(mode).is_none() {
        let planned: Vec<&str> = meta.modes.iter().map(|m| m.mode.as_str()).collect();
        return Err(format!(
            "column `mode`: '{mode}' is not a planned mode ({})",
            planned.join(", ")
        ));
    }
    Ok(())
}

/// Remembers the keys seen so far in one file and rejects a second row with the same key.
pub(crate) struct Unique<K>(HashSet<K>);

impl<K: std::hash::Hash + Eq + std::fmt::Debug> Unique<K> {
    pub(crate) fn new() -> Self {
        Unique(HashSet::new())
    }

    pub(crate) fn insert(&mut self, key: K, what: &str) -> Result<(), String> {
        if self.0.contains(&key) {
            return Err(format!("duplicate row for {what} {key:?}"));
        }
        self.0.insert(key);
        Ok(())
    }
}
