//! What a report shows of one run, derived from its stored rows only (STYLE.md 12): modes in
//! table order, per-repeat times, per-layer medians, memory. Every figure here is a pure
//! function of a [`Run`]; nothing is measured.

use std::collections::BTreeMap;

use qcnn_results::stats;
use qcnn_results::{Analysis, EvaluationRow, ModeInfo, Phase, Run, SweepRow, BASELINE_MODE};

/// The mode the authors' table calls "Quantized-CNN".
pub const AUTHORS_QUANTIZED_MODE: &str = "qcnn";
/// Above this coefficient of variation over repeats, a mode's times get a warning.
pub const CV_WARNING: f64 = 0.05;
/// Below this CPU-time / wall-time ratio a repeat probably shared its core.
pub const CPU_SHARE_WARNING: f64 = 0.9;
/// Bytes per MB in every memory figure (decimal, as the paper's "244 MB").
pub const BYTES_PER_MB: f64 = 1e6;

/// Op counts of one conv or fc layer (METHOD.md): what its theoretical speed-up follows from.
/// Runs record them in `meta.json` (`layer_ops`); a caller may override them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerTheory {
    /// Layer name as in `layers.csv` (`conv1`, `fc6`, ...).
    pub layer: String,
    /// Dense multiply-adds per image: H_t·W_t·C_t·kh·kw·(C_s/groups).
    pub dense_macs: u64,
    /// Multiply-adds building the look-up table per image: H_s·W_s·C_s·K.
    pub table_macs: u64,
    /// Look-up-adds per image: H_t·W_t·C_t·kh·kw·M.
    pub lookups: u64,
}

impl From<&qcnn_results::LayerOps> for LayerTheory {
    fn from(ops: &qcnn_results::LayerOps) -> Self {
        LayerTheory {
            layer: ops.layer.clone(),
            dense_macs: ops.dense_macs,
            table_macs: ops.table_macs,
            lookups: ops.lookups,
        }
    }
}

impl LayerTheory {
    /// Dense ops over Q-CNN ops (one look-up-add counts as one multiply-add).
    pub fn ratio(&self) -> Option<f64> {
        let quantized = self.table_macs + self.lookups;
        (quantized > 0).then(|| self.dense_macs as f64 / quantized as f64)
    }
}

/// Dense ops over Q-CNN ops summed over `layers`: the network's theoretical speed-up.
pub fn theoretical_total(layers: &[LayerTheory]) -> Option<f64> {
    let dense: u64 = layers.iter().map(|l| l.dense_macs).sum();
    let quantized: u64 = layers.iter().map(|l| l.table_macs + l.lookups).sum();
    (quantized > 0).then(|| dense as f64 / quantized as f64)
}

/// One measured mode, with everything the tables and charts show of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeView {
    pub info: ModeInfo,
    /// ms/image per completed repeat, in repeat order: `(repeat, ms)`.
    pub per_repeat: Vec<(u32, f64)>,
    pub mean_ms: Option<f64>,
    pub median_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub cv: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Bytes of the weights as this mode stores them (codebooks + packed indices + biases
    /// for Q-CNN); see [`storage_bytes`].
    pub storage_bytes: Option<u64>,
    pub top1_accuracy: Option<f64>,
    pub top5_accuracy: Option<f64>,
    /// Repeats whose CPU time was below [`CPU_SHARE_WARNING`] of their wall time.
    pub shared_core_repeats: Vec<u32>,
}

impl ModeView {
    pub fn name(&self) -> &str {
        &self.info.mode
    }

    /// The column title of the authors' table: "CNN", "Quantized-CNN", or the mode name.
    pub fn authors_label(&self) -> String {
        match self.name() {
            BASELINE_MODE => "CNN".into(),
            AUTHORS_QUANTIZED_MODE => "Quantized-CNN".into(),
            other => other.into(),
        }
    }

    pub fn ms_in_repeat(&self, repeat: u32) -> Option<f64> {
        self.per_repeat
            .iter()
            .find(|(r, _)| *r == repeat)
            .map(|(_, ms)| *ms)
    }
}

/// Median ms/image of one layer of one mode over the repeats that timed it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerTime {
    /// The whole layer: the `all` row, or table + lookup where the layer has no `all` row.
    pub total: f64,
    pub table: Option<f64>,
    pub lookup: Option<f64>,
}

impl LayerTime {
    /// Whether this mode timed the layer in phases (a quantized layer).
    pub fn is_split(&self) -> bool {
        self.table.is_some() || self.lookup.is_some()
    }

    /// Time of the layer outside its two phases (bias, copies), when an `all` row says so.
    pub fn rest(&self) -> f64 {
        (self.total - self.table.unwrap_or(0.0) - self.lookup.unwrap_or(0.0)).max(0.0)
    }
}

/// One layer, with its time in each mode that timed it.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerView {
    pub layer: String,
    pub times: BTreeMap<String, LayerTime>,
    /// Theoretical speed-up from the caller's op counts, if given for this layer.
    pub theory: Option<f64>,
}

impl LayerView {
    /// Dense layer time over `mode`'s layer time.
    pub fn speedup(&self, mode: &str) -> Option<f64> {
        let base = self.times.get(BASELINE_MODE)?.total;
        let q = self.times.get(mode)?.total;
        (q > 0.0).then(|| base / q)
    }

    /// Whether the charts show this layer on its own (a conv or fc layer, or one a mode split
    /// into phases) rather than inside "other layers".
    pub fn is_parameter_layer(&self) -> bool {
        self.layer.starts_with("conv")
            || self.layer.starts_with("fc")
            || self.times.values().any(LayerTime::is_split)
    }
}

/// Everything a report shows of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunView<'a> {
    pub run: &'a Run,
    pub analysis: Analysis,
    /// Dense first, then `qcnn`, then the other modes in the order they ran.
    pub modes: Vec<ModeView>,
    /// Layers in the order `layers.csv` first mentions them (forward order).
    pub layers: Vec<LayerView>,
    /// Repeats completed, in order.
    pub repeats: Vec<u32>,
    /// The whole network's theoretical speed-up: `meta.json`'s, else the caller's op counts.
    pub theoretical_speedup: Option<f64>,
    /// `sweep.csv`'s rows (one per (d, K) configuration) for a run of `qcnn sweep`; None
    /// for other runs, or until [`RunView::with_sweep`] adds them.
    pub sweep: Option<Vec<SweepRow>>,
    /// `evaluation.csv`'s rows (one per mode) for a run of `qcnn evaluate`; None for other
    /// runs, or until [`RunView::with_evaluation`] adds them.
    pub evaluation: Option<Vec<EvaluationRow>>,
}

impl<'a> RunView<'a> {
    /// `theory` overrides the op counts the run recorded; empty means use the run's.
    pub fn new(run: &'a Run, theory: &[LayerTheory]) -> Self {
        let recorded: Vec<LayerTheory> = run.meta.layer_ops.iter().map(LayerTheory::from).collect();
        let theory = if theory.is_empty() {
            &recorded[..]
        } else {
            theory
        };
        let analysis = run.analysis();
        let modes = ordered_modes(&run.meta.modes)
            .into_iter()
            .map(|info| mode_view(run, &analysis, info))
            .collect();
        let mut repeats: Vec<u32> = run.repeats.iter().map(|r| r.repeat).collect();
        repeats.dedup();
        RunView {
            run,
            analysis,
            modes,
            layers: layer_views(run, theory),
            repeats,
            theoretical_speedup: run
                .meta
                .theoretical_speedup
                .or_else(|| theoretical_total(theory)),
            sweep: None,
            evaluation: None,
        }
    }

    /// The view with the run's `evaluation.csv` rows (`qcnn_results::read_evaluation`).
    pub fn with_evaluation(mut self, evaluation: Option<Vec<EvaluationRow>>) -> Self {
        self.evaluation = evaluation;
        self
    }

    /// The view with the run's `sweep.csv` rows (as `qcnn_results::read_sweep` returns them).
    pub fn with_sweep(mut self, sweep: Option<Vec<SweepRow>>) -> Self {
        self.sweep = sweep;
        self
    }

    pub fn run_id(&self) -> &str {
        &self.run.meta.run_id
    }

    pub fn baseline(&self) -> Option<&ModeView> {
        self.modes.iter().find(|m| m.name() == BASELINE_MODE)
    }

    /// Every mode compared against the dense baseline.
    pub fn quantized(&self) -> impl Iterator<Item = &ModeView> {
        self.modes.iter().filter(|m| m.name() != BASELINE_MODE)
    }

    /// Whether `mode` has per-layer times (our modes do; peers, timed whole, do not).
    pub fn has_layer_times(&self, mode: &str) -> bool {
        self.layers.iter().any(|l| l.times.contains_key(mode))
    }

    /// Median dense ms/image over the median ms/image of `mode`.
    pub fn speedup(&self, mode: &str) -> Option<f64> {
        self.analysis.speedup.get(mode).copied()
    }

    /// Mean dense ms/image over the mean of `mode`: the authors' "Ave." row.
    pub fn mean_speedup(&self, mode: &str) -> Option<f64> {
        let base = self.baseline()?.mean_ms?;
        let q = self.modes.iter().find(|m| m.name() == mode)?.mean_ms?;
        (q > 0.0).then(|| base / q)
    }

    /// The layers the charts show on their own, and the summed time of the rest per mode.
    pub fn chart_layers(&self) -> (Vec<&LayerView>, BTreeMap<String, f64>) {
        let (own, rest): (Vec<&LayerView>, Vec<&LayerView>) =
            self.layers.iter().partition(|l| l.is_parameter_layer());
        let mut other = BTreeMap::new();
        for layer in rest {
            for (mode, t) in &layer.times {
                *other.entry(mode.clone()).or_insert(0.0) += t.total;
            }
        }
        (own, other)
    }

    pub fn complete(&self) -> bool {
        self.run.complete
    }

    /// "incomplete: 2 of 5 planned repeats (unfinished: interrupted or still running)", or
    /// None for a complete run.
    pub fn incomplete_note(&self) -> Option<String> {
        if self.run.complete {
            return None;
        }
        let meta = &self.run.meta;
        let why = if meta.finished {
            "finished early"
        } else {
            "unfinished: interrupted or still running"
        };
        Some(format!(
            "incomplete: {} of {} planned repeats ({why})",
            self.run.completed_repeats, meta.planned_repeats
        ))
    }
}

/// Dense first (the authors' "CNN" column), then `qcnn`, then the rest in run order.
fn ordered_modes(modes: &[ModeInfo]) -> Vec<ModeInfo> {
    let rank = |m: &ModeInfo| match m.mode.as_str() {
        BASELINE_MODE => 0,
        AUTHORS_QUANTIZED_MODE => 1,
        _ => 2,
    };
    let mut ordered = modes.to_vec();
    ordered.sort_by_key(rank);
    ordered
}

fn mode_view(run: &Run, analysis: &Analysis, info: ModeInfo) -> ModeView {
    let rows: Vec<_> = run.repeats.iter().filter(|r| r.mode == info.mode).collect();
    let per_repeat: Vec<(u32, f64)> = rows.iter().map(|r| (r.repeat, r.ms_per_image)).collect();
    let ms: Vec<f64> = per_repeat.iter().map(|(_, ms)| *ms).collect();
    let summary = analysis.modes.get(&info.mode);
    // A peer timed by its own engine runs in another process: this process's CPU time says
    // nothing about competition for its core.
    let other_process = run
        .meta
        .notes
        .get(&format!("peer.{}.timing", info.mode))
        .is_some_and(|t| t.starts_with("engine"));
    let shared_core_repeats = rows
        .iter()
        .filter(|r| !other_process && r.wall_ms > 0.0 && r.cpu_ms < CPU_SHARE_WARNING * r.wall_ms)
        .map(|r| r.repeat)
        .collect();
    ModeView {
        storage_bytes: storage_bytes(run, &info.mode),
        per_repeat,
        mean_ms: stats::mean(&ms),
        median_ms: summary.map(|s| s.median_ms),
        min_ms: summary.map(|s| s.min_ms),
        max_ms: summary.map(|s| s.max_ms),
        cv: summary.and_then(|s| s.cv),
        peak_rss_bytes: summary.and_then(|s| s.peak_rss_bytes),
        top1_accuracy: summary.and_then(|s| s.top1_accuracy),
        top5_accuracy: summary.and_then(|s| s.top5_accuracy),
        shared_core_repeats,
        info,
    }
}

/// Storage of a mode's weights on disk in the authors' format, from `meta.json`'s `storage`:
/// Q-CNN modes (`qcnn*`) store codebooks and packed indices, every other mode (dense, peers)
/// dense f32 weights. None when the run did not record storage.
pub fn storage_bytes(run: &Run, mode: &str) -> Option<u64> {
    let storage = run.meta.storage.as_ref()?;
    Some(if mode.starts_with("qcnn") {
        storage.quantized_bytes
    } else {
        storage.dense_bytes
    })
}

/// One layer of one mode in one repeat: the times of the rows `layers.csv` holds for it.
#[derive(Clone, Copy, Debug, Default)]
struct RepeatPhases {
    all: Option<f64>,
    table: Option<f64>,
    lookup: Option<f64>,
}

impl RepeatPhases {
    /// The `all` row, else the sum of the phases.
    fn total(&self) -> f64 {
        self.all
            .unwrap_or(self.table.unwrap_or(0.0) + self.lookup.unwrap_or(0.0))
    }
}

/// Per-layer medians over repeats, in the order `layers.csv` first names each layer.
fn layer_views(run: &Run, theory: &[LayerTheory]) -> Vec<LayerView> {
    let mut order: Vec<&str> = Vec::new();
    let mut cells: BTreeMap<(&str, &str), BTreeMap<u32, RepeatPhases>> = BTreeMap::new();
    for row in &run.layers {
        if !order.contains(&row.layer.as_str()) {
            order.push(&row.layer);
        }
        let slot = cells
            .entry((row.layer.as_str(), row.mode.as_str()))
            .or_default()
            .entry(row.repeat)
            .or_default();
        let time = Some(row.ms_per_image);
        match row.phase {
            Phase::All => slot.all = time,
            Phase::Table => slot.table = time,
            Phase::Lookup => slot.lookup = time,
        }
    }
    order
        .into_iter()
        .map(|layer| {
            let times = cells
                .range((layer, "")..)
                .take_while(|((l, _), _)| *l == layer)
                .filter_map(|((_, mode), by_repeat)| {
                    Some((mode.to_string(), layer_time(by_repeat)?))
                })
                .collect();
            LayerView {
                layer: layer.to_string(),
                times,
                theory: theory
                    .iter()
                    .find(|t| t.layer == layer)
                    .and_then(LayerTheory::ratio),
            }
        })
        .collect()
}

/// Medians over the repeats that timed the layer (None if none did).
fn layer_time(by_repeat: &BTreeMap<u32, RepeatPhases>) -> Option<LayerTime> {
    let totals: Vec<f64> = by_repeat.values().map(RepeatPhases::total).collect();
    let median_of = |pick: fn(&RepeatPhases) -> Option<f64>| {
        let v: Vec<f64> = by_repeat.values().filter_map(pick).collect();
        stats::median(&v)
    };
    Some(LayerTime {
        total: stats::median(&totals)?,
        table: median_of(|p| p.table),
        lookup: median_of(|p| p.lookup),
    })
}
