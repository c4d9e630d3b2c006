//! The report's text: provenance, the authors' table, speed-ups, spread, memory, per-layer
//! times, the run history and a sweep's trade-off, as document blocks (see [`crate::doc`]).

use qcnn_results::{EvaluationRow, Meta, SweepRow, BASELINE_MODE, SWEEP_ISAS};

use crate::doc::{Block, Table};
use crate::view::{RunView, BYTES_PER_MB, CV_WARNING};

/// `v` with `decimals` decimals when that shows it in a few characters (0, or
/// 10^-decimals ≤ |v| < 10^6), else in scientific notation with three significant digits;
/// "–" when not finite. No figure a report prints is ever longer than about a dozen
/// characters, whatever a file holds.
pub fn fixed(v: f64, decimals: usize) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "–".into()
    } else if a == 0.0 || (a >= 10f64.powi(-(decimals as i32)) && a < 1e6) {
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

/// ms figures: three decimals, as the authors' 167.786.
pub fn ms(v: f64) -> String {
    fixed(v, 3)
}

pub fn times(v: f64) -> String {
    format!("{}×", fixed(v, 2))
}

pub fn percent(v: f64) -> String {
    format!("{}%", fixed(100.0 * v, 1))
}

pub fn megabytes(bytes: u64) -> String {
    fixed(bytes as f64 / BYTES_PER_MB, 1)
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".into())
}

/// Heading of a run's section: its id, and "incomplete" when it is.
pub fn run_title(view: &RunView) -> String {
    match view.incomplete_note() {
        Some(_) => format!("Run {} (incomplete)", view.run_id()),
        None => format!("Run {}", view.run_id()),
    }
}

/// Where, when and how the run was measured.
pub fn provenance(view: &RunView) -> Block {
    let meta = &view.run.meta;
    let mut facts = vec![
        ("Date".to_string(), date(meta)),
        ("CPU".into(), cpu(meta)),
        ("Caches".into(), meta.system.caches_summary()),
        ("BLAS".into(), blas(meta)),
    ];
    for m in &view.modes {
        let mode = &m.info;
        facts.push((
            format!("Mode {}", mode.mode),
            format!("kernel {}, ISA {}", mode.kernel, mode.isa),
        ));
    }
    let build = &meta.build;
    let git = build
        .git
        .as_ref()
        .map_or("unknown (no git)".to_string(), |g| {
            format!("{}{}", g.commit, if g.dirty { " (dirty tree)" } else { "" })
        });
    facts.push(("Git commit".into(), git));
    facts.push((
        "Build".into(),
        format!(
            "{} profile, opt-level {}, {}",
            build.profile, build.opt_level, build.rustc
        ),
    ));
    facts.push(("Model".into(), or_unknown(&meta.model.source)));
    facts.push(("Input".into(), or_unknown(&meta.input)));
    facts.push((
        "Plan".into(),
        format!(
            "{} repeats × {} single-image batches per mode; {} completed",
            meta.planned_repeats, meta.planned_images, view.run.completed_repeats
        ),
    ));
    if let Some(load) = &meta.load_at_start {
        facts.push((
            "Load at start".into(),
            format!(
                "{} (1 min), {} (5 min)",
                fixed(load.one, 2),
                fixed(load.five, 2)
            ),
        ));
    }
    for (k, v) in &meta.notes {
        facts.push((format!("Note {k}"), v.clone()));
    }
    Block::Facts(facts)
}

fn or_unknown(s: &str) -> String {
    if s.trim().is_empty() {
        "not recorded".into()
    } else {
        s.to_string()
    }
}

fn date(meta: &Meta) -> String {
    match &meta.finished_utc {
        Some(end) => format!("{} to {end}", meta.started_utc),
        None => format!("{} (never finished)", meta.started_utc),
    }
}

fn cpu(meta: &Meta) -> String {
    let s = &meta.system;
    let pinned = meta
        .pinned_core
        .map_or("not pinned".to_string(), |c| format!("pinned to core {c}"));
    let arch = if s.arch.is_empty() {
        String::new()
    } else {
        format!(", {}", s.arch)
    };
    format!(
        "{} ({} logical cores{arch}, {pinned}); {}, kernel {}",
        or_unknown(&s.cpu_model),
        s.logical_cores,
        or_unknown(&s.os),
        or_unknown(&s.kernel)
    )
}

fn blas(meta: &Meta) -> String {
    match &meta.blas {
        Some(b) => format!("{} {}, core type {}", b.library, b.version, b.core_type),
        None => "not recorded".into(),
    }
}

/// Warnings about the conditions of the measurement itself.
pub fn run_warnings(view: &RunView) -> Vec<Block> {
    let meta = &view.run.meta;
    let mut out = Vec::new();
    if let Some(note) = view.incomplete_note() {
        out.push(Block::Warning(format!(
            "{note}: the figures below cover the completed repeats only."
        )));
    }
    if meta.build.profile != "release" || meta.build.debug_assertions {
        out.push(Block::Warning(format!(
            "measured with a {} build (debug assertions {}): timings mean little.",
            meta.build.profile,
            if meta.build.debug_assertions {
                "on"
            } else {
                "off"
            }
        )));
    }
    if let Some(note) = &meta.system.emulation {
        out.push(Block::Warning(format!("{note}.")));
    }
    for m in &view.modes {
        if !m.shared_core_repeats.is_empty() {
            out.push(Block::Warning(format!(
                "mode {}: CPU time below {:.0}% of wall time in repeat(s) {}: the core was \
                 probably shared with another process.",
                m.name(),
                100.0 * crate::view::CPU_SHARE_WARNING,
                join(&m.shared_core_repeats)
            )));
        }
    }
    out
}

fn join(values: &[u32]) -> String {
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The authors' table: `| Time (ms) | CNN | Quantized-CNN | Speed-up |`, one row per
/// repeat in ms/image and an `Ave.` row (means); extra modes add a column and a speed-up.
pub fn authors(view: &RunView) -> Table {
    let base = view.baseline();
    let mut header = vec!["Time (ms)".to_string()];
    for m in &view.modes {
        header.push(m.authors_label());
    }
    let quantized: Vec<_> = view.quantized().collect();
    if base.is_some() {
        for q in &quantized {
            header.push(if q.name() == crate::view::AUTHORS_QUANTIZED_MODE {
                "Speed-up".into()
            } else {
                format!("Speed-up ({})", q.name())
            });
        }
    }
    let mut table = Table::numeric(header);
    let speedup = |b: Option<f64>, q: Option<f64>| match (b, q) {
        (Some(b), Some(q)) if q > 0.0 => Some(times(b / q)),
        _ => None,
    };
    for &repeat in &view.repeats {
        let mut row = vec![repeat.to_string()];
        row.extend(
            view.modes
                .iter()
                .map(|m| or_dash(m.ms_in_repeat(repeat).map(ms))),
        );
        if let Some(b) = base {
            for q in &quantized {
                row.push(or_dash(speedup(
                    b.ms_in_repeat(repeat),
                    q.ms_in_repeat(repeat),
                )));
            }
        }
        table.push(row);
    }
    let mut ave = vec!["Ave.".to_string()];
    ave.extend(view.modes.iter().map(|m| or_dash(m.mean_ms.map(ms))));
    if let Some(b) = base {
        for q in &quantized {
            ave.push(or_dash(speedup(b.mean_ms, q.mean_ms)));
        }
    }
    table.push(ave);
    table
}

/// Measured against theoretical speed-up, per quantized mode.
pub fn speedups(view: &RunView) -> Table {
    let mut table = Table::numeric([
        "Mode",
        "Measured (median)",
        "Measured (mean)",
        "Theoretical",
        "Measured / theoretical",
    ]);
    let theory = view.theoretical_speedup;
    for q in view.quantized() {
        let measured = view.speedup(q.name());
        // Op counts predict our Q-CNN modes only; a peer runs the dense network.
        let theory = theory.filter(|_| view.has_layer_times(q.name()));
        table.push(vec![
            q.name().to_string(),
            or_dash(measured.map(times)),
            or_dash(view.mean_speedup(q.name()).map(times)),
            or_dash(theory.map(|t| format!("{}×", fixed(t, 3)))),
            or_dash(measured.zip(theory).map(|(m, t)| fixed(m / t, 2))),
        ]);
    }
    table
}

/// Spread of ms/image over repeats per mode, with accuracy when labels were known.
pub fn spread(view: &RunView) -> Table {
    let mut table = Table::numeric([
        "Mode",
        "Kernel",
        "Repeats",
        "Min (ms)",
        "Median (ms)",
        "Max (ms)",
        "CV",
        "Top-1",
        "Top-5",
    ]);
    table.align[1] = crate::doc::Align::Left;
    for m in &view.modes {
        table.push(vec![
            m.name().to_string(),
            m.info.kernel.clone(),
            m.per_repeat.len().to_string(),
            or_dash(m.min_ms.map(ms)),
            or_dash(m.median_ms.map(ms)),
            or_dash(m.max_ms.map(ms)),
            or_dash(m.cv.map(percent)),
            or_dash(m.top1_accuracy.map(percent)),
            or_dash(m.top5_accuracy.map(percent)),
        ]);
    }
    table
}

/// One warning per mode whose repeats vary by more than [`CV_WARNING`].
pub fn spread_warnings(view: &RunView) -> Vec<Block> {
    view.modes
        .iter()
        .filter_map(|m| {
            let cv = m.cv?;
            (cv > CV_WARNING).then(|| {
                Block::Warning(format!(
                    "mode {}: ms/image varies by CV {} over repeats (above {}): the machine \
                     was not quiet; treat its speed-ups with care.",
                    m.name(),
                    percent(cv),
                    percent(CV_WARNING)
                ))
            })
        })
        .collect()
}

/// Peak RSS (classifying; the process idle and after loading) and weight storage per mode,
/// and the process each was measured in.
pub fn memory(view: &RunView) -> Table {
    let mut table = Table::numeric([
        "Mode",
        "Peak RSS classifying (MB)",
        "Process idle (MB)",
        "After loading (MB)",
        "Weight storage (MB)",
        "Measured in",
    ]);
    table.align[5] = crate::doc::Align::Left;
    for m in &view.modes {
        let process = m.info.memory.as_ref().map(|p| p.process.clone());
        table.push(vec![
            m.name().to_string(),
            or_dash(m.peak_rss_bytes.map(megabytes)),
            or_dash(m.idle_peak_rss_bytes.map(megabytes)),
            or_dash(m.load_peak_rss_bytes.map(megabytes)),
            or_dash(m.storage_bytes.map(megabytes)),
            or_dash(process),
        ]);
    }
    table
}

/// What the memory table could not show, and the model files' size on disk.
pub fn memory_notes(view: &RunView) -> Vec<Block> {
    let mut out = Vec::new();
    let files = &view.run.meta.model.files;
    if !files.is_empty() {
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        out.push(Block::Para(format!(
            "Model files read: {} file{}, {} MB on disk (all modes).",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            megabytes(bytes)
        )));
    }
    if view.modes.iter().any(|m| m.peak_rss_bytes.is_some()) {
        out.push(Block::Para(
            "Every figure is the peak resident set size (VmHWM) of the mode's own process: a \
             child process per mode (and for tract), the worker process of a Python peer \
             (its idle figure is the interpreter's share); never the harness's."
                .into(),
        ));
    }
    if view.modes.iter().all(|m| m.storage_bytes.is_none()) {
        out.push(Block::Para(
            "Weight storage per mode is not recorded in this run (no `storage` in meta.json)."
                .into(),
        ));
    }
    out
}

/// ms/image per layer, median over repeats; quantized modes split into table and look-ups;
/// the measured and (if known) theoretical per-layer speed-ups; sums at the bottom.
pub fn layers(view: &RunView) -> Table {
    let columns = layer_columns(view);
    let mut header = vec!["Layer".to_string()];
    header.extend(columns.iter().map(|c| c.title.clone()));
    let quantized: Vec<&str> = view
        .quantized()
        .map(|m| m.name())
        .filter(|m| view.has_layer_times(m))
        .collect();
    let has_base = view.baseline().is_some();
    if has_base {
        header.extend(quantized.iter().map(|q| format!("Speed-up {q}")));
    }
    let with_theory = view.layers.iter().any(|l| l.theory.is_some());
    if with_theory {
        header.push("Theoretical".into());
    }
    let mut table = Table::numeric(header);
    for layer in &view.layers {
        let mut row = vec![layer.layer.clone()];
        row.extend(columns.iter().map(|c| or_dash(c.value(layer).map(ms))));
        if has_base {
            row.extend(
                quantized
                    .iter()
                    .map(|q| or_dash(layer.speedup(q).map(times))),
            );
        }
        if with_theory {
            row.push(or_dash(layer.theory.map(times)));
        }
        table.push(row);
    }
    let mut sum = vec!["Σ layers".to_string()];
    sum.extend(columns.iter().map(|c| {
        let values: Vec<f64> = view.layers.iter().filter_map(|l| c.value(l)).collect();
        or_dash((!values.is_empty()).then(|| ms(values.iter().sum())))
    }));
    let mut whole = vec!["Whole network (median)".to_string()];
    whole.extend(columns.iter().map(|c| {
        match c.phase {
            LayerPhase::Total => or_dash(
                view.modes
                    .iter()
                    .find(|m| m.name() == c.mode)
                    .and_then(|m| m.median_ms.map(ms)),
            ),
            _ => String::new(),
        }
    }));
    if has_base {
        let blank = || String::new();
        sum.extend(quantized.iter().map(|_| blank()));
        whole.extend(
            quantized
                .iter()
                .map(|q| or_dash(view.speedup(q).map(times))),
        );
    }
    if with_theory {
        sum.push(String::new());
        whole.push(or_dash(view.theoretical_speedup.map(times)));
    }
    table.push(sum);
    table.push(whole);
    table
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LayerPhase {
    Table,
    Lookup,
    Total,
}

struct LayerColumn {
    mode: String,
    phase: LayerPhase,
    title: String,
}

impl LayerColumn {
    fn value(&self, layer: &crate::view::LayerView) -> Option<f64> {
        let t = layer.times.get(&self.mode)?;
        match self.phase {
            LayerPhase::Table => t.table,
            LayerPhase::Lookup => t.lookup,
            LayerPhase::Total => Some(t.total),
        }
    }
}

/// One column per mode; modes that timed phases get table and look-up columns before it.
fn layer_columns(view: &RunView) -> Vec<LayerColumn> {
    let mut columns = Vec::new();
    for m in view.modes.iter().filter(|m| view.has_layer_times(m.name())) {
        let name = m.name();
        let split = view
            .layers
            .iter()
            .any(|l| l.times.get(name).is_some_and(|t| t.is_split()));
        let col = |phase, title: String| LayerColumn {
            mode: name.to_string(),
            phase,
            title,
        };
        if split {
            columns.push(col(LayerPhase::Table, format!("{name} table")));
            columns.push(col(LayerPhase::Lookup, format!("{name} look-ups")));
            columns.push(col(LayerPhase::Total, format!("{name} total")));
        } else {
            columns.push(col(LayerPhase::Total, name.to_string()));
        }
    }
    columns
}

/// One row per run in time order: the regression-tracking table behind the history chart.
pub fn history(views: &[RunView]) -> Table {
    let mut modes: Vec<String> = Vec::new();
    for v in views {
        for q in v.quantized() {
            if !modes.iter().any(|m| m == q.name()) {
                modes.push(q.name().to_string());
            }
        }
    }
    let mut header = vec!["Run".to_string(), "Started (UTC)".into(), "Commit".into()];
    header.push(format!("{BASELINE_MODE} (ms)"));
    header.extend(modes.iter().map(|m| format!("Speed-up {m}")));
    let mut table = Table::numeric(header);
    table.align[1] = crate::doc::Align::Left;
    table.align[2] = crate::doc::Align::Left;
    for v in views {
        let meta = &v.run.meta;
        let commit = meta.build.git.as_ref().map_or("–".to_string(), |g| {
            let short: String = g.commit.chars().take(10).collect();
            format!("{short}{}", if g.dirty { "+" } else { "" })
        });
        let mut id = v.run_id().to_string();
        if !v.complete() {
            id.push_str(" (incomplete)");
        }
        let mut row = vec![id, meta.started_utc.clone(), commit];
        row.push(or_dash(v.baseline().and_then(|b| b.median_ms).map(ms)));
        row.extend(modes.iter().map(|m| or_dash(v.speedup(m).map(times))));
        table.push(row);
    }
    table
}

/// The response error as the trade-off table prints it.
pub fn rel_error(v: f64) -> String {
    fixed(v, 4)
}

/// The look-up ISAs timed in at least one row of a sweep, in column order.
pub fn sweep_isas(rows: &[SweepRow]) -> Vec<&'static str> {
    SWEEP_ISAS
        .into_iter()
        .filter(|isa| rows.iter().any(|r| r.lut_ms(isa).is_some()))
        .collect()
}

/// One row per (d, K) configuration of a sweep: op-count speed-up, compression, measured
/// speed-up per ISA, and the response error (held-out when measured, else calibration;
/// cells marked "(calib.)" where a held-out figure is missing in a held-out column).
pub fn trade_off(rows: &[SweepRow]) -> Table {
    let isas = sweep_isas(rows);
    let held_out = rows.iter().any(|r| r.response_error().1);
    let mut header = vec![
        "d".to_string(),
        "K".into(),
        "Theoretical speed-up".into(),
        "Compression".into(),
    ];
    header.extend(isas.iter().map(|isa| format!("Speed-up {isa}")));
    header.push(if held_out {
        "Response error (held-out)".into()
    } else {
        "Response error (calibration)".into()
    });
    let mut table = Table::numeric(header);
    table.align[0] = crate::doc::Align::Right;
    for r in rows {
        let mut row = vec![
            r.d.to_string(),
            r.k.to_string(),
            times(r.theoretical_speedup),
            format!("{}×", fixed(r.compression, 1)),
        ];
        row.extend(
            isas.iter()
                .map(|isa| or_dash(r.measured_speedup(isa).map(times))),
        );
        let (error, was_held_out) = r.response_error();
        row.push(if held_out && !was_held_out {
            format!("{} (calib.)", rel_error(error))
        } else {
            rel_error(error)
        });
        table.push(row);
    }
    table
}

/// What the trade-off table and chart show, for the paragraph above them.
pub fn trade_off_note(rows: &[SweepRow]) -> Block {
    let methods: Vec<&str> = rows.iter().fold(Vec::new(), |mut v, r| {
        if !v.contains(&r.method.as_str()) {
            v.push(&r.method);
        }
        v
    });
    let dense = rows
        .iter()
        .find_map(|r| r.dense_ms)
        .map_or("not measured".to_string(), |d| format!("{} ms", ms(d)));
    Block::Para(format!(
        "From sweep.csv: layer {} quantized ({}) at {} (d, K) configurations. Measured \
         speed-up = median dense BLAS time of the layer ({dense}) / median look-up kernel \
         time per ISA; theoretical = the op-count ratio (METHOD.md); compression = dense f32 \
         weights / (codebooks + packed indices). Response error: relative error of the \
         layer's output.",
        crate::charts::sweep_layers(rows),
        methods.join(", "),
        rows.len()
    ))
}

/// What the accuracy table of a `qcnn evaluate` run means.
pub fn evaluation_note(rows: &[EvaluationRow]) -> Block {
    let images = rows.first().map_or(0, |r| r.images);
    Block::Para(format!(
        "Top-1/top-5 accuracy over {images} labelled images, each classified once by every \
         mode. Changed: images whose top-1 class differs from the dense network's; fixed: \
         of those, right where dense is wrong; broken: wrong where dense is right."
    ))
}

/// Accuracy per mode and agreement with dense.
pub fn evaluation(rows: &[EvaluationRow]) -> Table {
    let mut table = Table::numeric([
        "Mode",
        "Images",
        "Top-1",
        "Top-5",
        "Same top-1 as dense",
        "Changed",
        "Fixed",
        "Broken",
    ]);
    for r in rows {
        table.push(vec![
            r.mode.clone(),
            r.images.to_string(),
            percent(r.top1_accuracy),
            percent(r.top5_accuracy),
            format!(
                "{} ({})",
                r.same_top1_as_dense,
                percent(f64::from(r.same_top1_as_dense) / f64::from(r.images.max(1)))
            ),
            r.changed_vs_dense.to_string(),
            r.fixed_vs_dense.to_string(),
            r.broken_vs_dense.to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep_row(d: u32, holdout: Option<f64>) -> SweepRow {
        SweepRow {
            layer: "conv3".into(),
            d,
            k: 16,
            method: "ec".into(),
            theoretical_speedup: 6.17,
            compression: 15.53,
            dense_ms: Some(2.0),
            lut_ms_scalar: None,
            lut_ms_avx2: Some(0.5),
            lut_ms_avx512: None,
            response_rel_error: 0.1,
            weight_rel_error: 0.2,
            pq_response_rel_error: 0.15,
            holdout_response_rel_error: holdout,
            holdout_pq_response_rel_error: holdout,
            quantize_s: 1.0,
        }
    }

    #[test]
    fn figures_stay_short_whatever_a_file_holds() {
        assert_eq!(ms(167.7862), "167.786");
        assert_eq!(times(4.156), "4.16×");
        assert_eq!(times(1e300), "1.00e300×");
        assert_eq!(times(1e-300), "1.00e-300×");
        assert_eq!(times(0.0), "0.00×");
        assert_eq!(times(f64::NAN), "–×");
        assert_eq!(ms(0.0004), "4.00e-4");
        assert_eq!(percent(0.25), "25.0%");
        assert_eq!(megabytes(u64::MAX), "1.84e13");
        for v in [f64::MAX, f64::MIN_POSITIVE, -1e20, 123456.7] {
            assert!(ms(v).chars().count() <= 12, "{}", ms(v));
        }
    }

    #[test]
    fn trade_off_shows_timed_isas_and_marks_calibration_errors() {
        let mut rows = vec![sweep_row(4, Some(0.3)), sweep_row(8, None)];
        rows[1].lut_ms_avx2 = None;
        let t = trade_off(&rows);
        assert_eq!(t.header[4], "Speed-up avx2");
        assert_eq!(t.header[5], "Response error (held-out)");
        assert_eq!(t.rows[0][2..], ["6.17×", "15.5×", "4.00×", "0.3000"]);
        assert_eq!(t.rows[1][2..], ["6.17×", "15.5×", "–", "0.1000 (calib.)"]);
        let t = trade_off(&[sweep_row(4, None)]);
        assert_eq!(t.header[5], "Response error (calibration)");
        assert_eq!(t.rows[0][5], "0.1000");
    }
}
