//! Estimates with confidence intervals over categories (a change per layer): a marker at
//! the estimate, a whisker over the interval, a shaded band for the noise threshold. Values
//! are relative changes in percent; the y axis prints them signed ("+4%").

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{axis_decimals, category_label, fail, font, frame, Categories};
use super::{Chart, LegendEntry, LegendKey};
use super::{AXIS_PX, TICK_PX, VALUE_PX};

/// How the points of a series are drawn (series are told apart by shape, verdicts by colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
}

/// One estimate and its interval, in axis units, drawn in `color`.
#[derive(Clone, Debug)]
pub struct IntervalPoint {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub color: RGBColor,
    /// Printed beside the marker.
    pub label: String,
}

#[derive(Clone, Debug)]
pub struct IntervalSeries {
    pub legend: String,
    pub marker: Marker,
    /// Print each point's estimate beside it.
    pub labels: bool,
    /// Layout (groups): None where the series has no point.
    pub points: Vec<Option<IntervalPoint>>,
}

/// A horizontal band across the plot (the noise threshold), drawn under everything.
#[derive(Clone, Debug)]
pub struct Band {
    pub legend: String,
    pub low: f64,
    pub high: f64,
}

#[derive(Clone, Debug)]
pub struct IntervalChart {
    pub title: String,
    pub x_desc: String,
    /// What the intervals are ("99.92% interval"), added to the y axis' description.
    pub interval_note: String,
    /// Layout (groups): the label under each group.
    pub groups: Vec<String>,
    /// Side by side within each group, in this order.
    pub series: Vec<IntervalSeries>,
    pub band: Option<Band>,
    /// Legend entries for the colours (the verdicts), after the series' shapes.
    pub colors: Vec<(String, RGBColor)>,
}

/// Above this ratio between the largest and the smallest NEW/BASE ratio shown, the y axis
/// is logarithmic in the ratio (a 50× slower layer and a 2% change on one chart).
const LOG_SCALE_SPAN: f64 = 3.0;
const BAND_COLOR: RGBColor = RGBColor(226, 226, 226);
const MARKER_PX: i32 = 6;
/// Fraction of a group's width its points spread over.
const GROUP_SPREAD: f64 = 0.6;

impl IntervalChart {
    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = Vec::new();
        if self.series.len() > 1 {
            entries.extend(self.series.iter().map(|s| LegendEntry {
                label: format!("{} {}", marker_glyph(s.marker), s.legend),
                color: BLACK,
                key: LegendKey::Text,
            }));
        }
        entries.extend(self.colors.iter().map(|(label, color)| LegendEntry {
            label: label.clone(),
            color: *color,
            key: LegendKey::Swatch,
        }));
        if let Some(band) = &self.band {
            entries.push(LegendEntry {
                label: band.legend.clone(),
                color: BAND_COLOR,
                key: LegendKey::Swatch,
            });
        }
        entries
    }

    /// The y axis: every interval, the band and zero, with headroom for labels; on a log
    /// scale of the ratio when the changes span more than a factor of [`LOG_SCALE_SPAN`].
    fn y_axis(&self) -> ChangeAxis {
        let points = self.series.iter().flat_map(|s| s.points.iter().flatten());
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for p in points {
            lo = lo.min(p.low);
            hi = hi.max(p.high);
        }
        if let Some(b) = &self.band {
            lo = lo.min(b.low);
            hi = hi.max(b.high);
        }
        let log = ratio(hi) / ratio(lo) > LOG_SCALE_SPAN;
        let axis = ChangeAxis { lo, hi, log };
        let (f_lo, f_hi) = (axis.f(lo), axis.f(hi));
        // Room above for the labels over the intervals.
        let pad = ((f_hi - f_lo) * 0.06).max(1e-9);
        ChangeAxis {
            lo: axis.f_inverse(f_lo - pad),
            hi: axis.f_inverse(f_hi + 2.5 * pad),
            log,
        }
    }

    /// The x position of series `s` in group `g`.
    fn x_of(&self, g: usize, s: usize) -> f64 {
        let n = self.series.len();
        if n <= 1 {
            return g as f64;
        }
        let step = GROUP_SPREAD / (n - 1) as f64;
        g as f64 - GROUP_SPREAD / 2.0 + s as f64 * step
    }
}

/// "+4.0%", "−2.5%", "0%" (a percent value, `decimals` after the point).
pub fn signed_percent(v: f64, decimals: usize) -> String {
    let rounded = format!("{:.decimals$}", v.abs());
    if rounded.trim_start_matches(['0', '.']).is_empty() {
        return format!("{rounded}%");
    }
    let sign = if v < 0.0 { "−" } else { "+" };
    format!("{sign}{rounded}%")
}

/// The legend's stand-in for a marker shape (the swatch carries no shape).
fn marker_glyph(marker: Marker) -> &'static str {
    match marker {
        Marker::Circle => "●",
        Marker::Square => "■",
        Marker::Triangle => "▲",
    }
}

impl Chart for IntervalChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = frame(root, &self.title, &self.legend())?;
        let n = self.groups.len().max(1);
        let x = Categories { n, step: 1 };
        let y = self.y_axis();
        let decimals = if y.log { 0 } else { axis_decimals(y.hi - y.lo) };
        let mut chart = fail(
            ChartBuilder::on(&area)
                .margin(12)
                .margin_right(30)
                .x_label_area_size(62)
                .y_label_area_size(86)
                .build_cartesian_2d(x, y),
        )?;
        let label = |v: &f64| category_label(&self.groups, *v);
        let y_desc = if y.log {
            format!("NEW / BASE median time, log scale ({})", self.interval_note)
        } else {
            format!("change of median time ({})", self.interval_note)
        };
        fail(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(RGBColor(240, 240, 240))
                .bold_line_style(RGBColor(215, 215, 215))
                .x_labels(n)
                .x_label_formatter(&label)
                .y_label_formatter(&|v| y.label(*v, decimals))
                .y_max_light_lines(1)
                .x_desc(self.x_desc.as_str())
                .y_desc(y_desc.as_str())
                .label_style(font(TICK_PX))
                .axis_desc_style(font(AXIS_PX))
                .draw(),
        )?;
        let (left, right) = (-0.5, n as f64 - 0.5);
        if let Some(b) = &self.band {
            let rect = Rectangle::new([(left, b.low), (right, b.high)], BAND_COLOR.filled());
            fail(chart.draw_series(std::iter::once(rect)))?;
        }
        let zero = [(left, 0.0), (right, 0.0)];
        fail(chart.draw_series(LineSeries::new(zero, RGBColor(90, 90, 90).stroke_width(1))))?;
        for (s, series) in self.series.iter().enumerate() {
            for (g, point) in series.points.iter().enumerate() {
                if let Some(p) = point {
                    draw_point(&mut chart, self.x_of(g, s), p, series.marker)?;
                }
            }
        }
        // Labels last, so no whisker crosses them.
        for (s, series) in self.series.iter().enumerate() {
            for (g, point) in series.points.iter().enumerate() {
                if let Some(p) = point.as_ref().filter(|_| series.labels) {
                    draw_label(&mut chart, self.x_of(g, s), p)?;
                }
            }
        }
        Ok(())
    }
}

type Plot<'a, DB, X> = ChartContext<'a, DB, Cartesian2d<X, ChangeAxis>>;

fn draw_point<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut Plot<DB, X>,
    x: f64,
    p: &IntervalPoint,
    marker: Marker,
) -> Result<(), String> {
    let whisker = p.color.stroke_width(2);
    fail(chart.draw_series(LineSeries::new([(x, p.low), (x, p.high)], whisker)))?;
    let cap = 0.06;
    for y in [p.low, p.high] {
        fail(chart.draw_series(LineSeries::new([(x - cap, y), (x + cap, y)], whisker)))?;
    }
    let style = p.color.filled();
    let r = MARKER_PX;
    let shape = EmptyElement::at((x, p.value));
    match marker {
        Marker::Circle => {
            fail(chart.draw_series(std::iter::once(shape + Circle::new((0, 0), r, style))))?
        }
        Marker::Square => fail(chart.draw_series(std::iter::once(
            shape + Rectangle::new([(-r, -r), (r, r)], style),
        )))?,
        Marker::Triangle => fail(chart.draw_series(std::iter::once(
            shape + Polygon::new(vec![(0, -r - 1), (-r - 1, r), (r + 1, r)], style),
        )))?,
    };
    Ok(())
}

/// The estimate centred above its interval, on a white patch: beside the marker it would
/// hide the next series' marker.
fn draw_label<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut Plot<DB, X>,
    x: f64,
    p: &IntervalPoint,
) -> Result<(), String> {
    let style = font(VALUE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
    let (w, h) = fail(chart.plotting_area().estimate_text_size(&p.label, &style))?;
    let (half, h) = (w as i32 / 2 + 1, h as i32);
    let patch = Rectangle::new([(-half, -h - 5), (half, -3)], WHITE.mix(0.85).filled());
    let label = EmptyElement::at((x, p.high)) + patch + Text::new(p.label.clone(), (0, -4), style);
    fail(chart.draw_series(std::iter::once(label)))?;
    Ok(())
}

/// "×2", "×0.5", "×1.25": a ratio with the digits it needs.
pub fn times(r: f64) -> String {
    let digits = format!("{r:.2}");
    let trimmed = digits.trim_end_matches('0').trim_end_matches('.');
    format!("×{trimmed}")
}

/// A change in percent as a chart prints it: "+4.2%" up to doubling, "×18.9" beyond.
pub fn change_label(change_percent: f64) -> String {
    if change_percent.abs() >= 100.0 {
        format!("×{:.1}", ratio(change_percent))
    } else {
        signed_percent(change_percent, 1)
    }
}

/// NEW/BASE for a change in percent (never below 0.001, so a log axis stays finite).
fn ratio(change_percent: f64) -> f64 {
    (1.0 + change_percent / 100.0).max(1e-3)
}

/// A y axis of relative changes in percent: linear, or logarithmic in the ratio NEW/BASE
/// (so that +100% and −50% lie equally far from 0), with ticks at round changes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChangeAxis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl ChangeAxis {
    /// A tick label: the change in percent on a linear axis, the ratio on a log axis.
    fn label(&self, v: f64, decimals: usize) -> String {
        if self.log {
            times(ratio(v))
        } else {
            signed_percent(v, decimals)
        }
    }

    fn f(&self, v: f64) -> f64 {
        if self.log {
            ratio(v).ln()
        } else {
            v
        }
    }

    fn f_inverse(&self, f: f64) -> f64 {
        if self.log {
            (f.exp() - 1.0) * 100.0
        } else {
            f
        }
    }

    /// Ticks at 1, 2, 5 × 10^k percent steps.
    fn linear_ticks(&self) -> Vec<f64> {
        let raw = (self.hi - self.lo) / 8.0;
        if !(raw > 0.0 && raw.is_finite()) {
            return vec![0.0];
        }
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= raw)
            .unwrap_or(10.0 * magnitude);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|k| k as f64 * step).collect()
    }

    /// Ticks at round ratios, no two closer than a tenth of the axis: ×1 first, then
    /// 1, 2, 5 × 10^k, then finer ones near 1 where there is room.
    fn log_ticks(&self, max: usize) -> Vec<f64> {
        let coarse = (-3..=5).flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)));
        let fine = [0.8, 1.25, 0.9, 1.1, 1.5, 0.95, 1.05, 0.98, 1.02];
        let candidates = std::iter::once(1.0).chain(coarse).chain(fine);
        let gap = (self.f(self.hi) - self.f(self.lo)) / max.clamp(2, 10) as f64;
        let mut kept: Vec<f64> = Vec::new();
        for change in candidates.map(|r| (r - 1.0) * 100.0) {
            let inside = change >= self.lo && change <= self.hi;
            let clear = kept
                .iter()
                .all(|k| (self.f(*k) - self.f(change)).abs() >= gap);
            if inside && clear {
                kept.push(change);
            }
        }
        kept.sort_by(f64::total_cmp);
        kept
    }
}

impl Ranged for ChangeAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.f(self.lo), self.f(self.hi));
        let t = (self.f(*v) - a) / (b - a);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points().min(12);
        if max == 0 {
            return Vec::new();
        }
        if self.log {
            self.log_ticks(max)
        } else {
            self.linear_ticks()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}
