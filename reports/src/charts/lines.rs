//! Line charts over categories in order (runs in time order).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::bars::HLine;
use super::{axis_decimals, category_label, fail, font, frame, short, y_top, Categories};
use super::{Chart, LegendEntry, LegendKey};
use super::{AXIS_PX, TICK_PX, VALUE_PX};

/// One line: a value per category, None where the category lacks it (gaps in the line).
#[derive(Clone, Debug)]
pub struct LineSeries {
    pub legend: String,
    pub color: RGBColor,
    /// Layout (categories).
    pub values: Vec<Option<f64>>,
}

#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// Layout (categories): the label under each x position.
    pub categories: Vec<String>,
    pub series: Vec<LineSeries>,
    pub lines: Vec<HLine>,
}

/// At most this many category labels are printed; the others are skipped evenly.
const MAX_X_LABELS: usize = 12;
const MARKER_PX: u32 = 5;

impl LineChart {
    fn legend(&self) -> Vec<LegendEntry> {
        let series = self.series.iter().map(|s| (&s.legend, s.color));
        series
            .chain(self.lines.iter().map(|l| (&l.legend, l.color)))
            .map(|(label, color)| LegendEntry {
                label: label.clone(),
                color,
                key: LegendKey::Line,
            })
            .collect()
    }

    fn y_max(&self) -> f64 {
        let values = self.series.iter().flat_map(|s| s.values.iter().flatten());
        values
            .copied()
            .chain(self.lines.iter().map(|l| l.value))
            .fold(0.0, f64::max)
    }
}

impl Chart for LineChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = frame(root, &self.title, &self.legend())?;
        let n = self.categories.len().max(1);
        let step = n.div_ceil(MAX_X_LABELS);
        let x = Categories { n, step };
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
        let label = |v: &f64| category_label(&self.categories, *v);
        fail(
            chart
                .configure_mesh()
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(210, 210, 210))
                .x_label_formatter(&label)
                .y_label_formatter(&|v| format!("{v:.decimals$}"))
                .y_max_light_lines(1)
                .x_desc(self.x_desc.as_str())
                .y_desc(self.y_desc.as_str())
                .label_style(font(TICK_PX))
                .axis_desc_style(font(AXIS_PX))
                .draw(),
        )?;
        for line in &self.lines {
            let points = [(-0.5, line.value), (n as f64 - 0.5, line.value)];
            let style = line.color.stroke_width(2);
            fail(chart.draw_series(DashedLineSeries::new(points, 10, 6, style)))?;
        }
        for s in &self.series {
            draw_series(&mut chart, s)?;
        }
        Ok(())
    }
}

/// The line through consecutive known values, a marker and a value label at each.
fn draw_series<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    s: &LineSeries,
) -> Result<(), String> {
    let points: Vec<Option<(f64, f64)>> = (0..)
        .zip(&s.values)
        .map(|(i, v)| v.map(|v| (f64::from(i), v)))
        .collect();
    for run in points.split(Option::is_none) {
        let run: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
        if run.len() > 1 {
            fail(chart.draw_series(plotters::series::LineSeries::new(
                run,
                s.color.stroke_width(3),
            )))?;
        }
    }
    let style = font(VALUE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (x, y) in points.into_iter().flatten() {
        let marker = EmptyElement::at((x, y))
            + Circle::new((0, 0), MARKER_PX, s.color.filled())
            + Text::new(short(y), (0, -(MARKER_PX as i32) - 4), style.clone());
        fail(chart.draw_series(std::iter::once(marker)))?;
    }
    Ok(())
}
