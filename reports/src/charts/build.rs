//! The charts of a report, built from [`RunView`]s (and, for `qcnn report --compare`, from a
//! [`Comparison`]): what is plotted, with which titles, axis labels (with units) and colours.

use plotters::style::RGBColor;
use qcnn_results::compare::{Change, Comparison, Quantity, Verdict};
use qcnn_results::Phase;

use super::bars::{BarChart, BarSeries, HLine, Segment};
use super::intervals::{
    change_label, signed_percent, Band, IntervalChart, IntervalPoint, IntervalSeries, Marker,
};
use super::lines::{LineChart, LineSeries};
use super::scatter::{ScatterChart, ScatterPoint, ScatterSeries, VLine};
use super::{lighter, mode_color, THEORY_COLOR};
use crate::view::{LayerTime, ModeView, RunView, BYTES_PER_MB};

/// Group label of the summed non-conv/fc layers (ReLU, LRN, pooling, softmax, ...).
pub const OTHER_LAYERS: &str = "other layers";
/// Group label of the whole network in the per-layer speed-up chart.
pub const WHOLE_NETWORK: &str = "whole net";

fn run_suffix(view: &RunView) -> String {
    match view.incomplete_note() {
        Some(_) => format!(" — run {} (incomplete)", view.run_id()),
        None => format!(" — run {}", view.run_id()),
    }
}

/// Each mode's colour, stable across charts: dense, qcnn, then the others in order.
fn color_of(view: &RunView, mode: &str) -> RGBColor {
    let index = view
        .quantized()
        .filter(|m| m.name() != crate::view::AUTHORS_QUANTIZED_MODE)
        .position(|m| m.name() == mode)
        .unwrap_or(0);
    mode_color(mode, index)
}

/// Chart 1: ms/image of every mode in every repeat, with each mode's mean as a line.
pub fn repeat_chart(view: &RunView) -> Option<BarChart> {
    if view.repeats.is_empty() {
        return None;
    }
    let groups = view.repeats.iter().map(|r| format!("repeat {r}")).collect();
    let series = view
        .modes
        .iter()
        .map(|m| {
            let values = view.repeats.iter().map(|&r| m.ms_in_repeat(r)).collect();
            BarSeries::single(m.name().to_string(), color_of(view, m.name()), values)
        })
        .collect();
    let lines = view
        .modes
        .iter()
        .filter_map(|m| {
            Some(HLine {
                legend: format!("{} mean ({:.2} ms)", m.name(), m.mean_ms?),
                color: color_of(view, m.name()),
                value: m.mean_ms?,
                dashed: true,
            })
        })
        .collect();
    Some(BarChart {
        title: format!("Time per image in each repeat{}", run_suffix(view)),
        x_desc: format!(
            "repeat ({} single-image batches per mode)",
            view.run.meta.planned_images
        ),
        y_desc: "time per image (ms)".into(),
        groups,
        series,
        lines,
        value_labels: true,
    })
}

/// Chart 2: per-layer time of every mode side by side; modes timed in phases stack their
/// table build, look-ups and any other work of the layer.
pub fn layer_chart(view: &RunView) -> Option<BarChart> {
    let (layers, other) = view.chart_layers();
    if layers.is_empty() && other.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = layers.iter().map(|l| l.layer.clone()).collect();
    let with_other = !other.is_empty();
    if with_other {
        groups.push(OTHER_LAYERS.into());
    }
    let series = view
        .modes
        .iter()
        .filter(|m| view.has_layer_times(m.name()))
        .map(|m| {
            let mut times: Vec<Option<LayerTime>> = layers
                .iter()
                .map(|l| l.times.get(m.name()).copied())
                .collect();
            if with_other {
                times.push(other.get(m.name()).map(|&total| LayerTime {
                    total,
                    ..LayerTime::default()
                }));
            }
            layer_series(m, color_of(view, m.name()), &times)
        })
        .collect();
    Some(BarChart {
        title: format!("Time per layer{}", run_suffix(view)),
        x_desc: "layer (other layers: ReLU, LRN, pooling, softmax summed)".into(),
        y_desc: "time per image (ms, median over repeats)".into(),
        groups,
        series,
        lines: Vec::new(),
        value_labels: true,
    })
}

/// A mode's bars: one segment if it never split a layer into phases, else table build,
/// look-ups, and the rest (whole unsplit layers, or work outside the two phases).
fn layer_series(m: &ModeView, color: RGBColor, times: &[Option<LayerTime>]) -> BarSeries {
    let name = m.name();
    if !times.iter().flatten().any(LayerTime::is_split) {
        let values = times.iter().map(|t| t.map(|t| t.total)).collect();
        return BarSeries::single(name.to_string(), color, values);
    }
    let rest = |t: &LayerTime| {
        if t.is_split() {
            Some(t.rest()).filter(|&r| r > 0.0)
        } else {
            Some(t.total)
        }
    };
    let segment = |legend: String, color, pick: &dyn Fn(&LayerTime) -> Option<f64>| Segment {
        legend,
        color,
        values: times.iter().map(|t| t.as_ref().and_then(pick)).collect(),
    };
    BarSeries {
        segments: vec![
            segment(format!("{name}: table build"), lighter(color, 0.6), &|t| {
                t.table
            }),
            segment(format!("{name}: look-ups"), color, &|t| t.lookup),
            segment(
                format!("{name}: outside table/look-ups"),
                darker(color),
                &rest,
            ),
        ],
    }
}

fn darker(c: RGBColor) -> RGBColor {
    let f = |v: u8| (f64::from(v) * 0.6).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// Chart 3: measured per-layer speed-up of each quantized mode against the op-count ratio.
pub fn layer_speedup_chart(view: &RunView) -> Option<BarChart> {
    if view.repeats.is_empty() {
        return None;
    }
    view.baseline()?;
    let quantized: Vec<&ModeView> = view
        .quantized()
        .filter(|m| view.has_layer_times(m.name()))
        .collect();
    let (layers, _) = view.chart_layers();
    let layers: Vec<_> = layers
        .into_iter()
        .filter(|l| quantized.iter().any(|q| l.speedup(q.name()).is_some()))
        .collect();
    if quantized.is_empty() {
        return None;
    }
    let mut groups: Vec<String> = layers.iter().map(|l| l.layer.clone()).collect();
    groups.push(WHOLE_NETWORK.into());
    let mut series: Vec<BarSeries> = quantized
        .iter()
        .map(|q| {
            let mut values: Vec<Option<f64>> = layers.iter().map(|l| l.speedup(q.name())).collect();
            values.push(view.speedup(q.name()));
            let legend = format!("{} measured", q.name());
            BarSeries::single(legend, color_of(view, q.name()), values)
        })
        .collect();
    let mut theory: Vec<Option<f64>> = layers.iter().map(|l| l.theory).collect();
    theory.push(view.theoretical_speedup);
    if theory.iter().any(Option::is_some) {
        let legend = "theoretical (op-count ratio)".to_string();
        series.push(BarSeries::single(legend, THEORY_COLOR, theory));
    }
    Some(BarChart {
        title: format!("Speed-up per layer over dense{}", run_suffix(view)),
        x_desc: "layer".into(),
        y_desc: "speed-up (dense time / quantized time, ×)".into(),
        groups,
        series,
        lines: vec![HLine {
            legend: "break-even (1×)".into(),
            color: RGBColor(60, 60, 60),
            value: 1.0,
            dashed: true,
        }],
        value_labels: true,
    })
}

/// Chart 4: peak resident memory and weight storage of each mode; None without figures.
pub fn memory_chart(view: &RunView) -> Option<BarChart> {
    let mb = |b: Option<u64>| b.map(|b| b as f64 / BYTES_PER_MB);
    let rss: Vec<Option<f64>> = view.modes.iter().map(|m| mb(m.peak_rss_bytes)).collect();
    let storage: Vec<Option<f64>> = view.modes.iter().map(|m| mb(m.storage_bytes)).collect();
    let mut series = Vec::new();
    if storage.iter().any(Option::is_some) {
        let legend = "weight storage".to_string();
        series.push(BarSeries::single(legend, RGBColor(0, 114, 178), storage));
    }
    if rss.iter().any(Option::is_some) {
        let legend = "peak resident memory (RSS)".to_string();
        series.push(BarSeries::single(legend, RGBColor(213, 94, 0), rss));
    }
    if series.is_empty() {
        return None;
    }
    Some(BarChart {
        title: format!("Storage and peak memory per mode{}", run_suffix(view)),
        x_desc: "mode".into(),
        y_desc: "size (MB)".into(),
        groups: view.modes.iter().map(|m| m.name().to_string()).collect(),
        series,
        lines: Vec::new(),
        value_labels: true,
    })
}

/// Chart 5: each quantized mode's median speed-up per run, runs in time order (as given).
pub fn history_chart(views: &[RunView]) -> Option<LineChart> {
    if views.len() < 2 {
        return None;
    }
    // Colours by position in the list of every mode across the runs, so two modes never
    // share one even when no single run had both.
    let mut names: Vec<String> = Vec::new();
    for v in views {
        for q in v.quantized() {
            if !names.iter().any(|m| m == q.name()) {
                names.push(q.name().to_string());
            }
        }
    }
    let others = names
        .iter()
        .filter(|m| *m != crate::view::AUTHORS_QUANTIZED_MODE);
    let index_of = |mode: &str| others.clone().position(|m| m == mode).unwrap_or(0);
    let modes: Vec<(String, RGBColor)> = names
        .iter()
        .map(|m| (m.clone(), mode_color(m, index_of(m))))
        .collect();
    let series = modes
        .into_iter()
        .map(|(mode, color)| LineSeries {
            values: views.iter().map(|v| v.speedup(&mode)).collect(),
            legend: format!("{mode} (median)"),
            color,
        })
        .collect();
    let lines = views
        .iter()
        .rev()
        .find_map(|v| v.theoretical_speedup)
        .map(|t| HLine {
            legend: format!("theoretical {t:.2}× (latest run)"),
            color: THEORY_COLOR,
            value: t,
            dashed: true,
        })
        .into_iter()
        .collect();
    Some(LineChart {
        title: "Speed-up over dense, run by run".into(),
        x_desc: "run start (UTC month-day hour:minute; * = incomplete run), oldest first".into(),
        y_desc: "speed-up (median dense / median mode, ×)".into(),
        categories: views.iter().map(short_date).collect(),
        series,
        lines,
    })
}

/// "11-27 10:59" from "2026-11-27T10:59:26Z"; the raw text if it is not in that form.
fn short_date(view: &RunView) -> String {
    let s = &view.run.meta.started_utc;
    let label = match (s.get(5..10), s.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => s.clone(),
    };
    if view.complete() {
        label
    } else {
        format!("{label}*")
    }
}

/// The colour of each look-up kernel ISA in the trade-off chart (Okabe–Ito).
fn isa_color(isa: &str) -> RGBColor {
    match isa {
        "scalar" => RGBColor(0, 114, 178),
        "avx2" => RGBColor(0, 158, 115),
        _ => RGBColor(213, 94, 0),
    }
}

/// "4/16" for d = 4, K = 16.
fn config_label(row: &qcnn_results::SweepRow) -> String {
    format!("{}/{}", row.d, row.k)
}

/// Chart 6 (runs of `qcnn sweep`): response error against measured speed-up, one point per
/// (d, K) configuration and look-up ISA, with the op-count ratio as pale grey discs.
pub fn tradeoff_chart(view: &RunView) -> Option<ScatterChart> {
    let rows = view.sweep.as_deref().filter(|r| !r.is_empty())?;
    let measured: Vec<ScatterSeries> = qcnn_results::SWEEP_ISAS
        .iter()
        .map(|&isa| ScatterSeries {
            legend: format!("{isa} look-ups (measured)"),
            color: isa_color(isa),
            points: rows
                .iter()
                .filter_map(|r| {
                    Some(ScatterPoint {
                        x: r.measured_speedup(isa)?,
                        y: r.response_error().0,
                        label: Some(config_label(r)),
                    })
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    // Theory first, so measured points are drawn over it.
    let mut series = vec![ScatterSeries {
        legend: "theoretical (op-count ratio)".into(),
        color: lighter(THEORY_COLOR, 0.3),
        points: rows
            .iter()
            .map(|r| ScatterPoint {
                x: r.theoretical_speedup,
                y: r.response_error().0,
                label: Some(config_label(r)),
            })
            .collect(),
    }];
    series.extend(measured);
    let held_out = rows.iter().all(|r| r.response_error().1);
    let layers = sweep_layers(rows);
    Some(ScatterChart {
        title: format!("Error vs speed-up of {layers}{}", run_suffix(view)),
        x_desc: "speed-up over dense BLAS (dense time / look-up time, ×, medians); labels d/K"
            .into(),
        y_desc: if held_out {
            "response relative error (held-out images)".into()
        } else {
            "response relative error (calibration images)".into()
        },
        series,
        vlines: vec![VLine {
            legend: "break-even (1×)".into(),
            color: RGBColor(60, 60, 60),
            x: 1.0,
        }],
    })
}

/// The swept layer names, comma-separated, in first-seen order.
pub fn sweep_layers(rows: &[qcnn_results::SweepRow]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.layer.as_str()) {
            names.push(&r.layer);
        }
    }
    names.join(", ")
}

/// The colour of each verdict (Okabe–Ito vermillion and bluish green; grey for noise).
fn verdict_color(verdict: Verdict) -> RGBColor {
    match verdict {
        Verdict::Regressed => RGBColor(213, 94, 0),
        Verdict::Improved => RGBColor(0, 158, 115),
        Verdict::WithinNoise => RGBColor(125, 125, 125),
    }
}

/// Chart 7 (comparisons): for each mode, the change of every conv and fc layer's time and of
/// the whole pass, with its interval, coloured by verdict, over the noise threshold band;
/// quantized layers add their table build and look-ups. Other layers are in the tables.
pub fn change_charts(c: &Comparison) -> Vec<(String, IntervalChart)> {
    let mut modes: Vec<&str> = Vec::new();
    for ch in &c.changes {
        if !modes.contains(&ch.quantity.mode()) {
            modes.push(ch.quantity.mode());
        }
    }
    modes
        .into_iter()
        .filter_map(|mode| Some((mode.to_string(), change_chart(c, mode)?)))
        .collect()
}

fn change_chart(c: &Comparison, mode: &str) -> Option<IntervalChart> {
    let layer_of = |ch: &Change| match &ch.quantity {
        Quantity::LayerTime { mode: m, layer, .. } if m == mode && is_parameter_layer(layer) => {
            Some(layer.clone())
        }
        _ => None,
    };
    let mut groups: Vec<String> = Vec::new();
    for layer in c.changes.iter().filter_map(layer_of) {
        if !groups.contains(&layer) {
            groups.push(layer);
        }
    }
    if groups.is_empty() {
        return None;
    }
    groups.push(WHOLE_NETWORK.into());
    let point_at = |layer: &str, phase: Phase| -> Option<IntervalPoint> {
        let ch = c.changes.iter().find(|ch| match &ch.quantity {
            Quantity::LayerTime {
                mode: m,
                layer: l,
                phase: p,
            } => m == mode && l == layer && *p == phase,
            Quantity::ModeTime { mode: m } => {
                m == mode && layer == WHOLE_NETWORK && phase == Phase::All
            }
            Quantity::Speedup { .. } => false,
        })?;
        Some(IntervalPoint {
            value: 100.0 * ch.change,
            low: 100.0 * ch.low,
            high: 100.0 * ch.high,
            color: verdict_color(ch.verdict),
            label: change_label(100.0 * ch.change),
        })
    };
    let series = [
        ("whole layer", Marker::Circle, Phase::All),
        ("table build", Marker::Square, Phase::Table),
        ("look-ups", Marker::Triangle, Phase::Lookup),
    ]
    .into_iter()
    .map(|(legend, marker, phase)| IntervalSeries {
        legend: legend.into(),
        marker,
        // The phases' figures are in the tables; labels on every marker would collide.
        labels: phase == Phase::All,
        points: groups.iter().map(|g| point_at(g, phase)).collect(),
    })
    .filter(|s| s.points.iter().any(Option::is_some))
    .collect();
    let t = 100.0 * c.options.threshold;
    let verdicts = [Verdict::Regressed, Verdict::Improved, Verdict::WithinNoise];
    Some(IntervalChart {
        title: format!("Change of time per layer, mode {mode}: NEW vs BASE"),
        x_desc: "layer (conv and fc; every layer is in the tables)".into(),
        interval_note: format!("{:.2}% interval", 100.0 * c.interval_confidence),
        groups,
        series,
        band: Some(Band {
            legend: format!(
                "noise threshold ±{}",
                signed_percent(t, 1).trim_start_matches('+')
            ),
            low: -t,
            high: t,
        }),
        colors: verdicts
            .into_iter()
            .map(|v| (v.name().to_string(), verdict_color(v)))
            .collect(),
    })
}

/// conv and fc layers get a group of their own in the change charts.
fn is_parameter_layer(layer: &str) -> bool {
    layer.starts_with("conv") || layer.starts_with("fc")
}
