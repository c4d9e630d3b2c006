//! Typed rows of the three raw CSV files of a run. Field order is column order; units are in
//! the column names (`_ms`, `_bytes`). Repeats are numbered from 1, images from 0.

use serde::{Deserialize, Serialize};

/// `repeats.csv` file name inside a run folder.
pub const REPEATS_FILE: &str = "repeats.csv";
/// `layers.csv` file name inside a run folder.
pub const LAYERS_FILE: &str = "layers.csv";
/// `images.csv` file name inside a run folder.
pub const IMAGES_FILE: &str = "images.csv";

/// Header of `repeats.csv`, in the order of [`RepeatRow`]'s fields.
pub const REPEAT_COLUMNS: [&str; 11] = [
    "repeat",
    "mode",
    "kernel",
    "images",
    "total_ms",
    "ms_per_image",
    "cpu_ms",
    "wall_ms",
    "top1_correct",
    "top5_correct",
    "peak_rss_bytes",
];
/// Header of `layers.csv`, in the order of [`LayerRow`]'s fields.
pub const LAYER_COLUMNS: [&str; 5] = ["repeat", "mode", "layer", "phase", "ms_per_image"];
/// Header of `images.csv`, in the order of [`ImageRow`]'s fields.
pub const IMAGE_COLUMNS: [&str; 4] = ["repeat", "mode", "image", "ms"];

/// How far `ms_per_image` may drift from `total_ms / images` (relative): both are written
/// with round-trip float formatting, so only the division's rounding is allowed.
pub const MS_PER_IMAGE_REL_TOL: f64 = 1e-9;
/// The shortest nonzero time a row may hold: 1 ns, the resolution of the clocks that measure
/// it. A nonzero time below it was not measured, and would make ratios of times absurd.
pub const MIN_MS: f64 = 1e-6;
/// The longest time a row may hold: 10^9 ms, 11.6 days.
pub const MAX_MS: f64 = 1e9;

/// One mode measured over one repeat: `images` single-image batches, back to back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepeatRow {
    /// 1-based repeat number.
    pub repeat: u32,
    /// The mode name (`dense`, `qcnn`, ...), as in `Meta::modes`.
    pub mode: String,
    /// The kernel name (registry key) that ran this mode.
    pub kernel: String,
    /// Single-image batches measured in this repeat.
    pub images: u32,
    /// Sum of the timed forward passes.
    pub total_ms: f64,
    /// `total_ms / images`.
    pub ms_per_image: f64,
    /// CPU time the process used during the repeat; well below `wall_ms` means the core was
    /// shared with another process.
    pub cpu_ms: f64,
    /// Wall-clock time of the repeat, measured alongside `cpu_ms`.
    pub wall_ms: f64,
    /// Images whose label was the top-1 class; empty when the inputs have no labels.
    pub top1_correct: Option<u32>,
    /// Images whose label was among the top-5 classes; empty when the inputs have no labels.
    pub top5_correct: Option<u32>,
    /// Peak resident set size of the process that ran this mode, while classifying with the
    /// model resident (`meta.json`'s `modes[].memory` names the process: a child process for
    /// our modes and tract, the peer's worker for the Python peers), as known at the end of
    /// the repeat; empty when unknown.
    pub peak_rss_bytes: Option<u64>,
}

impl RepeatRow {
    /// A row without accuracy or memory figures; `ms_per_image` is derived from the total.
    pub fn new(
        repeat: u32,
        mode: &str,
        kernel: &str,
        images: u32,
        total_ms: f64,
        cpu_ms: f64,
        wall_ms: f64,
    ) -> Self {
        RepeatRow {
            repeat,
            mode: mode.to_string(),
            kernel: kernel.to_string(),
            images,
            total_ms,
            ms_per_image: total_ms / f64::from(images.max(1)),
            cpu_ms,
            wall_ms,
            top1_correct: None,
            top5_correct: None,
            peak_rss_bytes: None,
        }
    }

    pub fn with_accuracy(mut self, top1_correct: u32, top5_correct: u32) -> Self {
        self.top1_correct = Some(top1_correct);
        self.top5_correct = Some(top5_correct);
        self
    }

    pub fn with_peak_rss(mut self, bytes: u64) -> Self {
        self.peak_rss_bytes = Some(bytes);
        self
    }

    /// Checks that do not need the rest of the run; the problem names the column.
    pub fn check(&self) -> Result<(), String> {
        check_name("mode", &self.mode)?;
        check_name("kernel", &self.kernel)?;
        if self.images == 0 {
            return Err("column `images`: must be at least 1".into());
        }
        for (column, v) in [
            ("total_ms", self.total_ms),
            ("ms_per_image", self.ms_per_image),
        ] {
            // At least one forward pass was timed: its time is not zero.
            check_range(column, v, MIN_MS..=MAX_MS, "ms")?;
        }
        for (column, v) in [("cpu_ms", self.cpu_ms), ("wall_ms", self.wall_ms)] {
            check_ms(column, v)?;
        }
        let expected = self.total_ms / f64::from(self.images);
        if (self.ms_per_image - expected).abs() > MS_PER_IMAGE_REL_TOL * expected.abs().max(1.0) {
            return Err(format!(
                "column `ms_per_image`: {} is not total_ms / images = {expected}",
                self.ms_per_image
            ));
        }
        self.check_accuracy()
    }

    fn check_accuracy(&self) -> Result<(), String> {
        match (self.top1_correct, self.top5_correct) {
            (None, None) => Ok(()),
            (Some(t1), Some(t5)) if t1 <= t5 && t5 <= self.images => Ok(()),
            (Some(t1), Some(t5)) => Err(format!(
                "columns `top1_correct`, `top5_correct`: need top1 ≤ top5 ≤ images, got {t1}, {t5}, {}",
                self.images
            )),
            _ => Err("columns `top1_correct`, `top5_correct`: both or neither must be set".into()),
        }
    }
}

/// Which part of a layer a time covers: Q-CNN layers split into the look-up-table
/// computation and the look-ups (METHOD.md); every other layer is `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Phase {
    All,
    Table,
    Lookup,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::All, Phase::Table, Phase::Lookup];

    pub fn name(self) -> &'static str {
        match self {
            Phase::All => "all",
            Phase::Table => "table",
            Phase::Lookup => "lookup",
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = String;
    /// The error names the column: CSV errors from custom parsing carry no column index.
    fn from_str(s: &str) -> Result<Self, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("column `phase`: '{s}' is not one of all, table, lookup"))
    }
}

impl TryFrom<String> for Phase {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// One layer (or phase of a layer) of one mode, averaged over the repeat's images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    pub repeat: u32,
    pub mode: String,
    /// Layer name as in the architecture (`conv1`, `fc6`, ...).
    pub layer: String,
    pub phase: Phase,
    pub ms_per_image: f64,
}

impl LayerRow {
    pub fn check(&self) -> Result<(), String> {
        check_name("mode", &self.mode)?;
        check_name("layer", &self.layer)?;
        check_ms("ms_per_image", self.ms_per_image)
    }
}

/// One single-image forward pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageRow {
    pub repeat: u32,
    pub mode: String,
    /// 0-based index of the image in the run's input list.
    pub image: u32,
    pub ms: f64,
}

impl ImageRow {
    pub fn check(&self) -> Result<(), String> {
        check_name("mode", &self.mode)?;
        check_ms("ms", self.ms)
    }
}

/// Everything measured in one repeat: one [`RepeatRow`] per planned mode, plus the layer and
/// image rows of those modes. The writer stores it as one unit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepeatRecord {
    /// 1-based; every row below carries the same number.
    pub repeat: u32,
    pub rows: Vec<RepeatRow>,
    pub layers: Vec<LayerRow>,
    pub images: Vec<ImageRow>,
}

impl RepeatRecord {
    pub fn new(repeat: u32) -> Self {
        RepeatRecord {
            repeat,
            ..Default::default()
        }
    }
}

/// Names are identifiers shared by files and reports: non-empty, one line.
pub(crate) fn check_name(column: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("column `{column}`: empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!(
            "column `{column}`: {value:?} contains control characters"
        ));
    }
    Ok(())
}

/// A time in ms: 0, or within [`MIN_MS`]..=[`MAX_MS`].
pub(crate) fn check_ms(column: &str, value: f64) -> Result<(), String> {
    if value == 0.0 {
        return Ok(());
    }
    check_range(column, value, MIN_MS..=MAX_MS, "ms").map_err(|e| format!("{e} (or 0)"))
}

/// A finite number within `range`; the problem names the column and the allowed range.
pub(crate) fn check_range(
    column: &str,
    value: f64,
    range: std::ops::RangeInclusive<f64>,
    unit: &str,
) -> Result<(), String> {
    if !range.contains(&value) {
        return Err(format!(
            "column `{column}`: {value} is outside the allowed range {:e}..={:e} {unit}",
            range.start(),
            range.end()
        ));
    }
    Ok(())
}
