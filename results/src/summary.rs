//! `summary.json`: per-mode statistics and speed-ups, always derived from the raw repeat
//! rows (never the other way round), so any stored run can be re-summarised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::Meta;
use crate::rows::RepeatRow;
use crate::stats;

/// `summary.json` file name inside a run folder.
pub const SUMMARY_FILE: &str = "summary.json";
/// The mode every speed-up is measured against.
pub const BASELINE_MODE: &str = "dense";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The run folder this summary belongs to.
    pub results_dir: String,
    /// Finished with every planned repeat written.
    pub complete: bool,
    pub completed_repeats: u32,
    pub planned_repeats: u32,
    #[serde(flatten)]
    pub analysis: Analysis,
}

/// The statistics part of a summary: a pure function of repeat rows ([`summarize`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub modes: BTreeMap<String, ModeSummary>,
    /// Median ms/image of [`BASELINE_MODE`] over the median of each other mode.
    pub speedup: BTreeMap<String, f64>,
    pub theoretical_speedup: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeSummary {
    /// Kernel name; distinct names joined by ", " if the rows disagree.
    pub kernel: String,
    /// One value per repeat, in repeat order.
    pub ms_per_image: Vec<f64>,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    /// stddev / mean over repeats; null with a single repeat.
    pub cv: Option<f64>,
    /// Largest peak RSS any repeat reported (the mode classifying, model resident); null
    /// when none did.
    pub peak_rss_bytes: Option<u64>,
    /// Peak RSS of the same process before it loaded the model (`meta.json`'s
    /// `modes[].memory`): the program's or the interpreter's own share; null when unknown.
    #[serde(default)]
    pub idle_peak_rss_bytes: Option<u64>,
    /// Peak RSS of the same process once the model was loaded; null when unknown.
    #[serde(default)]
    pub load_peak_rss_bytes: Option<u64>,
    /// Fraction of images classified correctly (top-1, top-5) over all repeats; null
    /// when any repeat lacks labels.
    pub top1_accuracy: Option<f64>,
    pub top5_accuracy: Option<f64>,
}

/// [`summarize`] for a run: its rows, with each mode's process memory from `meta`.
pub fn summarize_run(rows: &[RepeatRow], meta: &Meta) -> Analysis {
    let mut analysis = summarize(rows, meta.theoretical_speedup);
    for info in &meta.modes {
        if let (Some(summary), Some(memory)) = (analysis.modes.get_mut(&info.mode), &info.memory) {
            summary.idle_peak_rss_bytes = memory.idle_peak_rss_bytes;
            summary.load_peak_rss_bytes = memory.load_peak_rss_bytes;
        }
    }
    analysis
}

/// Statistics of each mode over its repeats, and the speed-ups from medians.
pub fn summarize(rows: &[RepeatRow], theoretical_speedup: Option<f64>) -> Analysis {
    let mut by_mode: BTreeMap<&str, Vec<&RepeatRow>> = BTreeMap::new();
    for r in rows {
        by_mode.entry(r.mode.as_str()).or_default().push(r);
    }
    let modes: BTreeMap<String, ModeSummary> = by_mode
        .into_iter()
        .filter_map(|(mode, mut rs)| {
            rs.sort_by_key(|r| r.repeat);
            Some((mode.to_string(), summarize_mode(&rs)?))
        })
        .collect();
    let speedup = speedups(&modes);
    Analysis {
        modes,
        speedup,
        theoretical_speedup,
    }
}

fn summarize_mode(rows: &[&RepeatRow]) -> Option<ModeSummary> {
    let ms: Vec<f64> = rows.iter().map(|r| r.ms_per_image).collect();
    let mut kernels: Vec<&str> = Vec::new();
    for r in rows {
        if !kernels.contains(&r.kernel.as_str()) {
            kernels.push(&r.kernel);
        }
    }
    let images: u64 = rows.iter().map(|r| u64::from(r.images)).sum();
    let fraction = |counts: Option<u64>| counts.map(|c| c as f64 / images as f64);
    Some(ModeSummary {
        kernel: kernels.join(", "),
        median_ms: stats::median(&ms)?,
        min_ms: stats::min(&ms)?,
        max_ms: stats::max(&ms)?,
        cv: stats::cv(&ms),
        peak_rss_bytes: rows.iter().filter_map(|r| r.peak_rss_bytes).max(),
        idle_peak_rss_bytes: None,
        load_peak_rss_bytes: None,
        top1_accuracy: fraction(sum_all(rows.iter().map(|r| r.top1_correct))),
        top5_accuracy: fraction(sum_all(rows.iter().map(|r| r.top5_correct))),
        ms_per_image: ms,
    })
}

/// The sum, or None if any value is missing.
fn sum_all(values: impl Iterator<Item = Option<u32>>) -> Option<u64> {
    values.map(|v| v.map(u64::from)).sum()
}

fn speedups(modes: &BTreeMap<String, ModeSummary>) -> BTreeMap<String, f64> {
    let Some(base) = modes.get(BASELINE_MODE) else {
        return BTreeMap::new();
    };
    modes
        .iter()
        .filter(|(name, m)| name.as_str() != BASELINE_MODE && m.median_ms > 0.0)
        .map(|(name, m)| (name.clone(), base.median_ms / m.median_ms))
        .collect()
}
