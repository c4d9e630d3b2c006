//! Grouped, optionally stacked bar charts with horizontal reference lines.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{axis_decimals, category_label, fail, font, frame, short, y_top, Categories};
use super::{Chart, LegendEntry, LegendKey};
use super::{AXIS_PX, TICK_PX, VALUE_PX};

/// One part of a stacked bar: its legend text, colour and value in each group.
#[derive(Clone, Debug)]
pub struct Segment {
    pub legend: String,
    pub color: RGBColor,
    /// Layout (groups): None where the bar has no such part.
    pub values: Vec<Option<f64>>,
}

/// One bar per group; its segments stack bottom to top.
#[derive(Clone, Debug)]
pub struct BarSeries {
    pub segments: Vec<Segment>,
}

impl BarSeries {
    pub fn single(legend: String, color: RGBColor, values: Vec<Option<f64>>) -> Self {
        BarSeries {
            segments: vec![Segment {
                legend,
                color,
                values,
            }],
        }
    }

    fn total(&self, group: usize) -> Option<f64> {
        let parts: Vec<f64> = self
            .segments
            .iter()
            .filter_map(|s| s.values.get(group).copied().flatten())
            .collect();
        (!parts.is_empty()).then(|| parts.iter().sum())
    }
}

/// A horizontal line across the plot (a mean, a break-even level).
#[derive(Clone, Debug)]
pub struct HLine {
    pub legend: String,
    pub color: RGBColor,
    pub value: f64,
    pub dashed: bool,
}

#[derive(Clone, Debug)]
pub struct BarChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// Layout (groups): the label under each group of bars.
    pub groups: Vec<String>,
    /// Side by side within each group, in this order.
    pub series: Vec<BarSeries>,
    pub lines: Vec<HLine>,
    /// Print each bar's total above it (when bars are wide enough).
    pub value_labels: bool,
}

/// Fraction of a group's width filled by its bars.
const GROUP_FILL: f64 = 0.8;
/// Fraction of a bar's slot it fills (the rest separates neighbouring bars).
const BAR_FILL: f64 = 0.9;
/// Bar labels need at least this many pixels of bar width.
const MIN_LABEL_BAR_PX: f64 = 34.0;

impl BarChart {
    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = Vec::new();
        for seg in self.series.iter().flat_map(|s| &s.segments) {
            if !entries.iter().any(|e| e.label == seg.legend) {
                entries.push(LegendEntry {
                    label: seg.legend.clone(),
                    color: seg.color,
                    key: LegendKey::Swatch,
                });
            }
        }
        for line in &self.lines {
            entries.push(LegendEntry {
                label: line.legend.clone(),
                color: line.color,
                key: LegendKey::Line,
            });
        }
        entries
    }

    fn y_max(&self) -> f64 {
        let groups = 0..self.groups.len();
        let bars = self
            .series
            .iter()
            .flat_map(|s| groups.clone().filter_map(|g| s.total(g)));
        bars.chain(self.lines.iter().map(|l| l.value))
            .fold(0.0, f64::max)
    }

    /// The x extent of bar `s` in group `g`.
    fn bar_span(&self, g: usize, s: usize) -> (f64, f64) {
        let slot = GROUP_FILL / self.series.len() as f64;
        let x0 = g as f64 - GROUP_FILL / 2.0 + s as f64 * slot + slot * (1.0 - BAR_FILL) / 2.0;
        (x0, x0 + slot * BAR_FILL)
    }
}

impl Chart for BarChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = frame(root, &self.title, &self.legend())?;
        let n = self.groups.len().max(1);
        let x = Categories { n, step: 1 };
        let top = y_top(self.y_max());
        let mut chart = fail(
            ChartBuilder::on(&area)
                .margin(12)
                .margin_right(30)
                .x_label_area_size(62)
                .y_label_area_size(86)
                .build_cartesian_2d(x, 0.0..top),
        )?;
        let decimals = axis_decimals(top);
        let label = |v: &f64| category_label(&self.groups, *v);
        fail(
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(210, 210, 210))
                .x_labels(n)
                .x_label_formatter(&label)
                .y_label_formatter(&|v| format!("{v:.decimals$}"))
                .y_max_light_lines(1)
                .x_desc(self.x_desc.as_str())
                .y_desc(self.y_desc.as_str())
                .label_style(font(TICK_PX))
                .axis_desc_style(font(AXIS_PX))
                .draw(),
        )?;
        // Bars, then reference lines over them, then labels over both.
        self.draw_bars(&mut chart)?;
        for line in &self.lines {
            let points = [(-0.5, line.value), (n as f64 - 0.5, line.value)];
            let style = line.color.stroke_width(2);
            if line.dashed {
                fail(chart.draw_series(DashedLineSeries::new(points, 10, 6, style)))?;
            } else {
                fail(chart.draw_series(LineSeries::new(points, style)))?;
            }
        }
        if self.value_labels && self.bar_px(&chart) >= MIN_LABEL_BAR_PX {
            self.draw_labels(&mut chart)?;
        }
        Ok(())
    }
}

impl BarChart {
    fn draw_bars<DB: DrawingBackend, X>(
        &self,
        chart: &mut ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> Result<(), String>
    where
        X: Ranged<ValueType = f64>,
    {
        for g in 0..self.groups.len() {
            for (s, series) in self.series.iter().enumerate() {
                let (x0, x1) = self.bar_span(g, s);
                let mut base = 0.0;
                for seg in &series.segments {
                    let Some(v) = seg.values.get(g).copied().flatten() else {
                        continue;
                    };
                    let rect = Rectangle::new([(x0, base), (x1, base + v)], seg.color.filled());
                    fail(chart.draw_series(std::iter::once(rect)))?;
                    base += v;
                }
            }
        }
        Ok(())
    }

    /// Each bar's total above it.
    fn draw_labels<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
        &self,
        chart: &mut ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> Result<(), String> {
        for g in 0..self.groups.len() {
            for (s, series) in self.series.iter().enumerate() {
                if let Some(total) = series.total(g) {
                    let (x0, x1) = self.bar_span(g, s);
                    value_label(chart, ((x0 + x1) / 2.0, total), &short(total))?;
                }
            }
        }
        Ok(())
    }

    /// Width of one bar in pixels.
    fn bar_px<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
        &self,
        chart: &ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> f64 {
        let (x0, x1) = self.bar_span(0, 0);
        let a = chart.backend_coord(&(x0, 0.0)).0;
        let b = chart.backend_coord(&(x1, 0.0)).0;
        f64::from(b - a)
    }
}

/// `text` centred just above `at`, on a white patch so that a reference line crossing the
/// top of a bar does not run through the digits.
fn value_label<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<X, RangedCoordf64>>,
    at: (f64, f64),
    text: &str,
) -> Result<(), String> {
    let style = font(VALUE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
    let (w, h) = fail(chart.plotting_area().estimate_text_size(text, &style))?;
    let (half, h) = (w as i32 / 2 + 2, h as i32);
    let patch = Rectangle::new([(-half, -h - 4), (half, -2)], WHITE.mix(0.85).filled());
    let label = EmptyElement::at(at) + patch + Text::new(text.to_string(), (0, -3), style);
    fail(chart.draw_series(std::iter::once(label)))?;
    Ok(())
}
