//! Writing one run folder: created once, never overwritten; raw rows appended and synced
//! repeat by repeat; `meta.json` and `summary.json` replaced atomically.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;

use crate::check::{self, Unique};
use crate::error::{Result, ResultsError};
use crate::fsio::{append_synced, atomic_write, create_csv, encode_rows, sync_dir};
use crate::meta::{Meta, META_FILE};
use crate::rows::{
    RepeatRecord, RepeatRow, IMAGES_FILE, IMAGE_COLUMNS, LAYERS_FILE, LAYER_COLUMNS, REPEATS_FILE,
    REPEAT_COLUMNS,
};
use crate::summary::{summarize_run, Summary, SUMMARY_FILE};

/// Characters of the short id that follows the timestamp in a run folder's name.
const ID_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 6;
/// Folder-name collisions tolerated before giving up (36^6 ids: a second one is unlikely).
const CREATE_ATTEMPTS: usize = 64;

/// An open run folder. Dropping it without [`RunWriter::finish`] leaves a valid, unfinished
/// run: what was appended stays readable.
pub struct RunWriter {
    dir: PathBuf,
    meta: Meta,
    repeats_csv: File,
    layers_csv: File,
    images_csv: File,
    /// Every repeat row appended so far, for the summary.
    rows: Vec<RepeatRow>,
    completed: u32,
    /// Set while a repeat is being written; still set after a failed write, which may have
    /// left that repeat half on disk, so further appends are refused.
    broken: bool,
}

impl RunWriter {
    /// Creates `root/<yyyymmddTHHMMSSZ>-<id>/` with `meta.json` (unfinished), the three CSV
    /// headers and an empty `summary.json`. Stamps `run_id` and `started_utc` into `meta`.
    pub fn create(root: &Path, mut meta: Meta) -> Result<Self> {
        meta.check()
            .map_err(|p| ResultsError::rejected(root, format!("invalid plan: {p}")))?;
        fs::create_dir_all(root)
            .map_err(|e| ResultsError::io(root, "create the results folder", e))?;
        let now = Utc::now();
        let dir = create_run_dir(root, &now)?;
        meta.run_id = dir_name(&dir);
        meta.started_utc = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        meta.finished = false;
        meta.finished_utc = None;
        meta.completed_repeats = 0;
        write_json(&dir.join(META_FILE), &meta)?;
        let writer = RunWriter {
            repeats_csv: create_csv(&dir.join(REPEATS_FILE), &REPEAT_COLUMNS)?,
            layers_csv: create_csv(&dir.join(LAYERS_FILE), &LAYER_COLUMNS)?,
            images_csv: create_csv(&dir.join(IMAGES_FILE), &IMAGE_COLUMNS)?,
            dir,
            meta,
            rows: Vec::new(),
            completed: 0,
            broken: false,
        };
        writer.write_summary(false)?;
        sync_dir(&writer.dir)?;
        sync_dir(root)?;
        Ok(writer)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn completed_repeats(&self) -> u32 {
        self.completed
    }

    /// Stores one repeat: checks it against the plan, appends its image and layer rows, then
    /// its repeat rows (the commit marker the reader goes by), each synced to disk, then
    /// rewrites `summary.json`, which it returns. Repeats must come in order 1, 2, ...
    pub fn append_repeat(&mut self, record: &RepeatRecord) -> Result<Summary> {
        if self.broken {
            return Err(
                self.rejected("an earlier write failed half way; start a new run".to_string())
            );
        }
        self.check_record(record).map_err(|p| self.rejected(p))?;
        let images = encode_rows(&self.dir.join(IMAGES_FILE), &record.images)?;
        let layers = encode_rows(&self.dir.join(LAYERS_FILE), &record.layers)?;
        let repeats = encode_rows(&self.dir.join(REPEATS_FILE), &record.rows)?;
        self.broken = true;
        append_synced(&mut self.images_csv, &self.dir.join(IMAGES_FILE), &images)?;
        append_synced(&mut self.layers_csv, &self.dir.join(LAYERS_FILE), &layers)?;
        append_synced(
            &mut self.repeats_csv,
            &self.dir.join(REPEATS_FILE),
            &repeats,
        )?;
        self.broken = false;
        self.rows.extend(record.rows.iter().cloned());
        self.completed += 1;
        self.write_summary(false)
    }

    /// Marks the run finished in `meta.json` (with the repeats actually completed) and
    /// writes the final summary, which it returns.
    pub fn finish(mut self) -> Result<Summary> {
        self.meta.completed_repeats = self.completed_repeats();
        self.meta.finished = true;
        self.meta.finished_utc = Some(Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true));
        write_json(&self.dir.join(META_FILE), &self.meta)?;
        self.write_summary(true)
    }

    fn write_summary(&self, finished: bool) -> Result<Summary> {
        let completed = self.completed_repeats();
        let summary = Summary {
            results_dir: self.dir.display().to_string(),
            complete: finished && completed == self.meta.planned_repeats,
            completed_repeats: completed,
            planned_repeats: self.meta.planned_repeats,
            analysis: summarize_run(&self.rows, &self.meta),
        };
        write_json(&self.dir.join(SUMMARY_FILE), &summary)?;
        Ok(summary)
    }

    fn rejected(&self, problem: String) -> ResultsError {
        ResultsError::rejected(&self.dir, problem)
    }

    fn check_record(&self, record: &RepeatRecord) -> Result<(), String> {
        let next = self.completed_repeats() + 1;
        if record.repeat != next {
            return Err(format!(
                "repeat {} given, but repeat {next} is next",
                record.repeat
            ));
        }
        self.check_repeat_rows(record)?;
        let mut layers = Unique::new();
        for row in &record.layers {
            same_repeat(record.repeat, row.repeat, LAYERS_FILE)?;
            check::layer_row(&self.meta, row).map_err(|p| format!("{LAYERS_FILE}: {p}"))?;
            layers.insert((&row.mode, &row.layer, row.phase), "(mode, layer, phase)")?;
        }
        let mut images = Unique::new();
        for row in &record.images {
            same_repeat(record.repeat, row.repeat, IMAGES_FILE)?;
            check::image_row(&self.meta, row).map_err(|p| format!("{IMAGES_FILE}: {p}"))?;
            images.insert((&row.mode, row.image), "(mode, image)")?;
        }
        Ok(())
    }

    /// Exactly one repeat row per planned mode.
    fn check_repeat_rows(&self, record: &RepeatRecord) -> Result<(), String> {
        let mut seen = Unique::new();
        for row in &record.rows {
            same_repeat(record.repeat, row.repeat, REPEATS_FILE)?;
            check::repeat_row(&self.meta, row).map_err(|p| format!("{REPEATS_FILE}: {p}"))?;
            seen.insert(row.mode.as_str(), "mode")?;
        }
        let given: HashSet<&str> = record.rows.iter().map(|r| r.mode.as_str()).collect();
        let missing: Vec<&str> = self
            .meta
            .modes
            .iter()
            .map(|m| m.mode.as_str())
            .filter(|m| !given.contains(m))
            .collect();
        if !missing.is_empty() {
            return Err(format!("no repeat row for mode(s) {}", missing.join(", ")));
        }
        Ok(())
    }
}

fn same_repeat(expected: u32, got: u32, file: &str) -> Result<(), String> {
    if expected != got {
        return Err(format!(
            "{file}: a row of repeat {got} in the record of repeat {expected}"
        ));
    }
    Ok(())
}

/// A new folder named by time and a random id; `create_dir` fails on an existing name, so
/// a run never writes into another run's folder.
fn create_run_dir(root: &Path, now: &DateTime<Utc>) -> Result<PathBuf> {
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let mut rng = rand::rng();
    for _ in 0..CREATE_ATTEMPTS {
        let id: String = (0..ID_LEN)
            .map(|_| char::from(ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())]))
            .collect();
        let dir = root.join(format!("{stamp}-{id}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(ResultsError::io(&dir, "create the run folder", e)),
        }
    }
    Err(ResultsError::invalid(
        root,
        format!("{CREATE_ATTEMPTS} random run folder names for {stamp} all exist"),
    ))
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| ResultsError::invalid(path, format!("cannot encode JSON: {e}")))?;
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}
