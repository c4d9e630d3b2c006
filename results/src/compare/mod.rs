//! Regression tracking: two sets of stored runs (BASE and NEW, each one run or several runs
//! pooled) compared quantity by quantity, each change with a bootstrap confidence interval
//! and a verdict (criterion's change detection, rustc-perf's per-benchmark significance).
//!
//! Compared quantities ([`Quantity`]):
//! - each mode's time per image: the median of every single-image time (`images.csv`);
//! - each non-dense mode's speed-up over dense: the median of dense time / mode time of the
//!   same image in the same repeat (a ratio measured seconds apart, robust to a machine
//!   that is slower in one run than in the other);
//! - each layer's time per image, and the table/look-up phases of quantized layers: the
//!   median over repeats of the per-repeat times (`layers.csv`).
//!
//! A change is `new / base − 1` of the medians; its interval comes from a nested bootstrap
//! over repeats and images ([`bootstrap`]). With a noise threshold `t`: **regressed**
//! when the whole interval is worse than `+t` (slower, or a lower speed-up), **improved**
//! when it is wholly better than `−t`, otherwise **within noise**. The confidence level is
//! the whole comparison's ([`family_wise`]): noise alone flags no quantity at all with that
//! probability.
//!
//! Pure: a function of the rows and `meta.json`s of runs already read ([`crate::read_run`]),
//! seeded, so a verdict is reproducible.

pub mod bootstrap;
mod comparable;
mod samples;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ResultsError;
use crate::reader::{read_runs, Run};
use crate::rows::Phase;
use crate::summary::BASELINE_MODE;
use bootstrap::{median_change, seed_for, BootstrapPlan, ChangeEstimate, Clustered};
pub use comparable::Difference;

/// Tag of the JSON document a comparison serialises to.
pub const COMPARE_SCHEMA: &str = "qcnn-compare/1";
/// The default bootstrap seed (any fixed value; changing it changes no honest verdict).
pub const DEFAULT_SEED: u64 = 20_160_627;

/// How changes are judged.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Noise threshold: a relative change the interval must lie wholly beyond (0.02 = 2%).
    pub threshold: f64,
    /// Two-sided confidence level of the whole comparison, in (0, 1): with this probability
    /// noise alone flags no quantity; each interval is at [`family_wise`]'s level.
    pub confidence: f64,
    /// Bootstrap resample pairs per quantity.
    pub resamples: usize,
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            threshold: 0.02,
            confidence: 0.95,
            resamples: 10_000,
            seed: DEFAULT_SEED,
        }
    }
}

impl CompareOptions {
    /// The bootstrap of one quantity, with its own seed (derived from its label).
    pub fn plan(&self, confidence: f64, quantity: &Quantity) -> BootstrapPlan {
        BootstrapPlan {
            confidence,
            resamples: self.resamples,
            seed: seed_for(self.seed, &quantity.label()),
        }
    }

    /// The problem with an option, naming it as the command line does.
    pub fn check(&self) -> Result<(), String> {
        if !(self.threshold >= 0.0 && self.threshold < 10.0) {
            return Err(format!(
                "--threshold: {} is not a relative change between 0 and 1000%",
                self.threshold
            ));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(format!(
                "--confidence: {} is not between 0 and 1 (exclusive)",
                self.confidence
            ));
        }
        if self.resamples < 100 {
            return Err(format!(
                "--resamples: {} is too few for a percentile interval (at least 100)",
                self.resamples
            ));
        }
        Ok(())
    }
}

/// What one compared row measures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Quantity {
    /// Time per image of a whole forward pass of `mode` (ms, `images.csv`).
    ModeTime { mode: String },
    /// Dense time over `mode`'s time, per image pair within a repeat (×, `images.csv`).
    Speedup { mode: String },
    /// Time per image of one layer of `mode`, or of one phase of it (ms, `layers.csv`).
    LayerTime {
        mode: String,
        layer: String,
        phase: Phase,
    },
}

impl Quantity {
    /// Whether a larger value is worse (times) or better (speed-ups).
    pub fn higher_is_worse(&self) -> bool {
        !matches!(self, Quantity::Speedup { .. })
    }

    /// The unit of `base` and `new`: "ms" or "×".
    pub fn unit(&self) -> &'static str {
        match self {
            Quantity::Speedup { .. } => "×",
            _ => "ms",
        }
    }

    pub fn mode(&self) -> &str {
        match self {
            Quantity::ModeTime { mode }
            | Quantity::Speedup { mode }
            | Quantity::LayerTime { mode, .. } => mode,
        }
    }

    /// "qcnn", "qcnn speed-up over dense", "qcnn conv1", "qcnn conv1 (lookup)".
    pub fn label(&self) -> String {
        match self {
            Quantity::ModeTime { mode } => format!("{mode} (whole network)"),
            Quantity::Speedup { mode } => format!("{mode} speed-up over {BASELINE_MODE}"),
            Quantity::LayerTime {
                mode,
                layer,
                phase: Phase::All,
            } => format!("{mode} {layer}"),
            Quantity::LayerTime { mode, layer, phase } => {
                format!("{mode} {layer} ({})", phase.name())
            }
        }
    }
}

/// The three outcomes of a compared quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond the threshold, with the whole interval beyond it.
    Regressed,
    /// Better beyond the threshold, with the whole interval beyond it.
    Improved,
    /// Anything else: no change, or one the interval cannot tell from noise.
    WithinNoise,
}

impl Verdict {
    /// The interval `[low, high]` of a relative change judged against `threshold`.
    pub fn of(low: f64, high: f64, threshold: f64, higher_is_worse: bool) -> Verdict {
        let (worse_low, worse_high) = if higher_is_worse {
            (low, high)
        } else {
            (-high, -low)
        };
        if worse_low > threshold {
            Verdict::Regressed
        } else if worse_high < -threshold {
            Verdict::Improved
        } else {
            Verdict::WithinNoise
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
            Verdict::Improved => "improved",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// One compared quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    #[serde(flatten)]
    pub quantity: Quantity,
    /// "ms" or "×".
    pub unit: &'static str,
    /// Median on each side, in `unit`.
    pub base: f64,
    pub new: f64,
    /// `new / base − 1` (0.05 = 5% more).
    pub change: f64,
    /// Confidence interval of `change`.
    pub low: f64,
    pub high: f64,
    pub verdict: Verdict,
    /// Values the medians were taken over (images, image pairs or repeats).
    pub base_values: usize,
    pub new_values: usize,
}

/// One run of a side, as the comparison used it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRef {
    pub dir: String,
    pub run_id: String,
    pub started_utc: String,
    pub commit: Option<String>,
    pub dirty: bool,
    pub complete: bool,
    pub completed_repeats: u32,
    pub planned_repeats: u32,
}

impl RunRef {
    fn of(run: &Run) -> Self {
        let git = run.meta.build.git.as_ref();
        RunRef {
            dir: run.dir.display().to_string(),
            run_id: run.meta.run_id.clone(),
            started_utc: run.meta.started_utc.clone(),
            commit: git.map(|g| g.commit.clone()),
            dirty: git.is_some_and(|g| g.dirty),
            complete: run.complete,
            completed_repeats: run.completed_repeats,
            planned_repeats: run.meta.planned_repeats,
        }
    }
}

/// Counts of each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub regressed: usize,
    pub improved: usize,
    pub within_noise: usize,
}

/// Everything `qcnn compare` reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Always [`COMPARE_SCHEMA`].
    pub schema: &'static str,
    pub options: CompareOptions,
    /// Confidence level of each row's interval: `options.confidence` shared among the rows
    /// (see [`family_wise`]).
    pub interval_confidence: f64,
    pub base: Vec<RunRef>,
    pub new: Vec<RunRef>,
    /// Differences that make the times incomparable (another model, CPU, instruction set,
    /// BLAS core or image count); the comparison was made anyway only if asked to.
    pub not_comparable: Vec<Difference>,
    /// What changed without making the runs incomparable (commit, kernels, compiler, ...).
    pub changed: Vec<Difference>,
    /// Incomplete runs, modes or layers on one side only, quantities left out and why.
    pub notes: Vec<String>,
    /// Whole-network times and speed-ups first, then layers, mode by mode, in forward order.
    pub changes: Vec<Change>,
    pub tally: Tally,
}

impl Comparison {
    /// Whether any quantity regressed (the exit status of `qcnn compare`).
    pub fn regressed(&self) -> bool {
        self.tally.regressed > 0
    }

    pub fn with_verdict(&self, verdict: Verdict) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| c.verdict == verdict)
    }
}

/// Why two folders could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A run folder is missing, malformed or inconsistent (the error names file and line).
    #[error(transparent)]
    Read(#[from] ResultsError),
    #[error("{0}")]
    BadOption(String),
    /// Every run of a side stopped before its first repeat was written.
    #[error("{side} ({}): no run has a finished repeat: nothing to compare", path.display())]
    NoRepeats { side: &'static str, path: PathBuf },
    #[error("BASE and NEW are not comparable:\n{}\n(pass --allow-different to compare them anyway)", list(.0))]
    NotComparable(Vec<Difference>),
}

fn list(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(|d| format!("  - {}: BASE {}, NEW {}", d.what, d.base, d.new))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads BASE and NEW (each a run folder or a folder of runs, see [`read_runs`]), refuses
/// incomparable sides unless `allow_different`, and compares them.
pub fn compare_folders(
    base: &Path,
    new: &Path,
    options: &CompareOptions,
    allow_different: bool,
) -> Result<Comparison, CompareError> {
    options.check().map_err(CompareError::BadOption)?;
    let base_runs = read_side("BASE", base)?;
    let new_runs = read_side("NEW", new)?;
    let differences = incomparabilities(&base_runs, &new_runs);
    if !differences.is_empty() && !allow_different {
        return Err(CompareError::NotComparable(differences));
    }
    Ok(compare(&base_runs, &new_runs, options))
}

fn read_side(side: &'static str, path: &Path) -> Result<Vec<Run>, CompareError> {
    let runs = read_runs(path)?;
    if runs.iter().all(|r| r.completed_repeats == 0) {
        return Err(CompareError::NoRepeats {
            side,
            path: path.to_path_buf(),
        });
    }
    Ok(runs)
}

/// The differences that make `base` and `new` incomparable; empty when they are comparable.
/// Also catches runs of one side that differ among themselves.
pub fn incomparabilities(base: &[Run], new: &[Run]) -> Vec<Difference> {
    comparable::blocking(base, new)
}

/// Compares every quantity both sides measured. Callers refuse incomparable sides first
/// ([`incomparabilities`]); the result lists those differences in any case. `options` must
/// pass [`CompareOptions::check`].
pub fn compare(base: &[Run], new: &[Run], options: &CompareOptions) -> Comparison {
    let mut notes = run_notes("BASE", base);
    notes.extend(run_notes("NEW", new));
    notes.extend(few_repeats("BASE", base));
    notes.extend(few_repeats("NEW", new));
    notes.extend(one_sided_modes(base, new));
    let measured = quantities(base, new, &mut notes);
    let interval_confidence = family_wise(options.confidence, measured.len());
    let mut changes = Vec::new();
    for (quantity, b, n) in measured {
        match judge(
            quantity.clone(),
            &b,
            &n,
            options.threshold,
            &options.plan(interval_confidence, &quantity),
        ) {
            Some(change) => changes.push(change),
            None if b.is_empty() || n.is_empty() => {}
            None => notes.push(format!(
                "{}: not compared (a median of zero: no relative change)",
                quantity.label()
            )),
        }
    }
    let tally = tally(&changes);
    Comparison {
        schema: COMPARE_SCHEMA,
        options: *options,
        interval_confidence,
        base: base.iter().map(RunRef::of).collect(),
        new: new.iter().map(RunRef::of).collect(),
        not_comparable: comparable::blocking(base, new),
        changed: comparable::informational(base, new),
        notes,
        changes,
        tally,
    }
}

/// Every quantity both sides measured, with its values on each side, in report order;
/// layers timed on one side only go into `notes`.
fn quantities(
    base: &[Run],
    new: &[Run],
    notes: &mut Vec<String>,
) -> Vec<(Quantity, Clustered, Clustered)> {
    let modes = comparable::common_modes(base, new);
    let mut out = Vec::new();
    for mode in &modes {
        let q = Quantity::ModeTime { mode: mode.clone() };
        out.push((
            q,
            samples::image_times(base, mode),
            samples::image_times(new, mode),
        ));
    }
    if modes.iter().any(|m| m == BASELINE_MODE) {
        for mode in modes.iter().filter(|m| *m != BASELINE_MODE) {
            let q = Quantity::Speedup { mode: mode.clone() };
            out.push((
                q,
                samples::speedup_pairs(base, mode),
                samples::speedup_pairs(new, mode),
            ));
        }
    }
    for mode in &modes {
        let (base_layers, new_layers) = (
            samples::layers_of(base, mode),
            samples::layers_of(new, mode),
        );
        for (layer, phases) in &base_layers {
            let Some((_, new_phases)) = new_layers.iter().find(|(l, _)| l == layer) else {
                notes.push(format!("{mode} {layer}: timed in BASE only, not compared"));
                continue;
            };
            for &phase in phases.iter().filter(|p| new_phases.contains(p)) {
                let q = Quantity::LayerTime {
                    mode: mode.clone(),
                    layer: layer.clone(),
                    phase,
                };
                let b = samples::layer_times(base, mode, layer, phase);
                let n = samples::layer_times(new, mode, layer, phase);
                out.push((q, b, n));
            }
        }
        for (layer, _) in &new_layers {
            if !base_layers.iter().any(|(l, _)| l == layer) {
                notes.push(format!("{mode} {layer}: timed in NEW only, not compared"));
            }
        }
    }
    out
}

/// The confidence level of each of `quantities` intervals such that, with probability at
/// least `confidence`, noise alone flags none of them (Bonferroni: the error rate
/// `1 − confidence` split evenly). Comparing some 70 quantities at 95% each would flag a
/// few of them in almost every comparison of a run with a rerun of itself; a CI gate must
/// not cry wolf.
pub fn family_wise(confidence: f64, quantities: usize) -> f64 {
    1.0 - (1.0 - confidence) / quantities.max(1) as f64
}

/// One quantity's change and verdict; None when a side lacks values or a median is zero.
pub fn judge(
    quantity: Quantity,
    base: &Clustered,
    new: &Clustered,
    threshold: f64,
    plan: &BootstrapPlan,
) -> Option<Change> {
    let ChangeEstimate {
        base: b,
        new: n,
        change,
        low,
        high,
    } = median_change(base, new, plan)?;
    Some(Change {
        unit: quantity.unit(),
        verdict: Verdict::of(low, high, threshold, quantity.higher_is_worse()),
        quantity,
        base: b,
        new: n,
        change,
        low,
        high,
        base_values: base.len(),
        new_values: new.len(),
    })
}

fn tally(changes: &[Change]) -> Tally {
    let count = |v| changes.iter().filter(|c| c.verdict == v).count();
    Tally {
        regressed: count(Verdict::Regressed),
        improved: count(Verdict::Improved),
        within_noise: count(Verdict::WithinNoise),
    }
}

/// "NEW run X is incomplete: ..." for every run not complete.
fn run_notes(side: &str, runs: &[Run]) -> Vec<String> {
    runs.iter()
        .filter(|r| !r.complete)
        .map(|r| {
            let why = if r.meta.finished {
                "finished early"
            } else {
                "unfinished: interrupted or still running"
            };
            format!(
                "{side} run {} is incomplete ({why}): compared on its {} finished of {} planned repeats",
                r.meta.run_id, r.completed_repeats, r.meta.planned_repeats
            )
        })
        .collect()
}

/// Repeats below which a side's layer intervals (one value per repeat) say little.
pub const FEW_REPEATS: u32 = 5;

/// A note when a side has fewer than [`FEW_REPEATS`] repeats in all its runs.
fn few_repeats(side: &str, runs: &[Run]) -> Option<String> {
    let repeats: u32 = runs.iter().map(|r| r.completed_repeats).sum();
    (repeats < FEW_REPEATS).then(|| {
        format!(
            "{side} has {repeats} repeat(s) in all: a layer's interval cannot be wider than \
             the spread of so few values, so layer verdicts are rough (measure {FEW_REPEATS} \
             or more repeats, or pool several runs)"
        )
    })
}

fn one_sided_modes(base: &[Run], new: &[Run]) -> Vec<String> {
    let (b, n) = (comparable::modes(base), comparable::modes(new));
    let only = |side: &str, these: &[String], other: &[String]| -> Vec<String> {
        these
            .iter()
            .filter(|m| !other.contains(m))
            .map(|m| format!("mode {m}: measured in {side} only, not compared"))
            .collect()
    };
    let mut notes = only("BASE", &b, &n);
    notes.extend(only("NEW", &n, &b));
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_need_the_whole_interval_beyond_the_threshold() {
        let t = 0.02;
        assert_eq!(Verdict::of(0.03, 0.08, t, true), Verdict::Regressed);
        assert_eq!(Verdict::of(0.01, 0.08, t, true), Verdict::WithinNoise);
        assert_eq!(Verdict::of(-0.08, -0.03, t, true), Verdict::Improved);
        assert_eq!(Verdict::of(-0.01, 0.01, t, true), Verdict::WithinNoise);
        // A speed-up that fell is a regression.
        assert_eq!(Verdict::of(-0.08, -0.03, t, false), Verdict::Regressed);
        assert_eq!(Verdict::of(0.03, 0.08, t, false), Verdict::Improved);
    }

    #[test]
    fn options_are_checked() {
        assert!(CompareOptions::default().check().is_ok());
        let bad = |o: CompareOptions| o.check().unwrap_err();
        let d = CompareOptions::default();
        assert!(bad(CompareOptions {
            confidence: 1.0,
            ..d
        })
        .contains("--confidence"));
        assert!(bad(CompareOptions {
            threshold: -0.1,
            ..d
        })
        .contains("--threshold"));
        assert!(bad(CompareOptions {
            threshold: f64::NAN,
            ..d
        })
        .contains("--threshold"));
        assert!(bad(CompareOptions { resamples: 10, ..d }).contains("--resamples"));
    }
}
