//! Scatter charts on two numeric axes, each point optionally labelled (the trade-off).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{axis_decimals, fail, font, frame, y_top};
use super::{Chart, LegendEntry, LegendKey};
use super::{AXIS_PX, TICK_PX, VALUE_PX};

/// One point and the text printed beside it.
#[derive(Clone, Debug)]
pub struct ScatterPoint {
    pub x: f64,
    pub y: f64,
    pub label: Option<String>,
}

/// Points of one colour, drawn as discs; series are drawn in order (later ones on top).
#[derive(Clone, Debug)]
pub struct ScatterSeries {
    pub legend: String,
    pub color: RGBColor,
    pub points: Vec<ScatterPoint>,
}

/// A dashed vertical line across the plot at `x` (a break-even level).
#[derive(Clone, Debug)]
pub struct VLine {
    pub legend: String,
    pub color: RGBColor,
    pub x: f64,
}

#[derive(Clone, Debug)]
pub struct ScatterChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<ScatterSeries>,
    pub vlines: Vec<VLine>,
}

const MARKER_PX: i32 = 6;

impl ScatterChart {
    fn legend(&self) -> Vec<LegendEntry> {
        let points = self.series.iter().map(|s| (&s.legend, s.color, false));
        let lines = self.vlines.iter().map(|l| (&l.legend, l.color, true));
        points
            .chain(lines)
            .map(|(label, color, line)| LegendEntry {
                label: label.clone(),
                color,
                key: if line {
                    LegendKey::Line
                } else {
                    LegendKey::Swatch
                },
            })
            .collect()
    }

    fn points(&self) -> impl Iterator<Item = &ScatterPoint> {
        self.series.iter().flat_map(|s| &s.points)
    }

    /// Both axes start at 0; the x axis reaches every vertical line too.
    fn tops(&self) -> (f64, f64) {
        let x = self.points().map(|p| p.x);
        let x_max = x.chain(self.vlines.iter().map(|l| l.x)).fold(0.0, f64::max);
        let y_max = self.points().map(|p| p.y).fold(0.0, f64::max);
        (y_top(x_max), y_top(y_max))
    }
}

impl Chart for ScatterChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let area = frame(root, &self.title, &self.legend())?;
        let (x_top, y_top) = self.tops();
        let mut chart = fail(
            ChartBuilder::on(&area)
                .margin(12)
                .margin_right(30)
                .x_label_area_size(62)
                .y_label_area_size(86)
                .build_cartesian_2d(0.0..x_top, 0.0..y_top),
        )?;
        let (xd, yd) = (axis_decimals(x_top), axis_decimals(y_top));
        fail(
            chart
                .configure_mesh()
                .light_line_style(RGBColor(235, 235, 235))
                .bold_line_style(RGBColor(210, 210, 210))
                .x_label_formatter(&|v| format!("{v:.xd$}"))
                .y_label_formatter(&|v| format!("{v:.yd$}"))
                .x_max_light_lines(1)
                .y_max_light_lines(1)
                .x_desc(self.x_desc.as_str())
                .y_desc(self.y_desc.as_str())
                .label_style(font(TICK_PX))
                .axis_desc_style(font(AXIS_PX))
                .draw(),
        )?;
        for line in &self.vlines {
            let points = [(line.x, 0.0), (line.x, y_top)];
            let style = line.color.stroke_width(2);
            fail(chart.draw_series(DashedLineSeries::new(points, 10, 6, style)))?;
        }
        // Labels over every marker and line, so none hides a label.
        for s in &self.series {
            draw_markers(&mut chart, s)?;
        }
        for s in &self.series {
            draw_labels(&mut chart, s)?;
        }
        Ok(())
    }
}

type Plot<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_markers<DB: DrawingBackend>(chart: &mut Plot<DB>, s: &ScatterSeries) -> Result<(), String> {
    let style = s.color.filled();
    let markers = s
        .points
        .iter()
        .map(|p| Circle::new((p.x, p.y), MARKER_PX, style));
    fail(chart.draw_series(markers))?;
    Ok(())
}

/// Each label up and to the right of its point, in the series' colour, on a white patch so
/// that grid and reference lines do not run through the digits.
fn draw_labels<DB: DrawingBackend>(chart: &mut Plot<DB>, s: &ScatterSeries) -> Result<(), String> {
    let color = darker(s.color);
    let style = font(VALUE_PX)
        .color(&color)
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    for p in &s.points {
        let Some(text) = &p.label else { continue };
        let (w, h) = fail(chart.plotting_area().estimate_text_size(text, &style))?;
        let (x, y) = (MARKER_PX + 2, -MARKER_PX - 1);
        let (w, h) = (w as i32, h as i32);
        let patch = Rectangle::new(
            [(x - 2, y - h - 1), (x + w + 2, y + 1)],
            WHITE.mix(0.85).filled(),
        );
        let label =
            EmptyElement::at((p.x, p.y)) + patch + Text::new(text.clone(), (x, y), style.clone());
        fail(chart.draw_series(std::iter::once(label)))?;
    }
    Ok(())
}

/// Label text a shade darker than its markers, to stay legible on white.
fn darker(c: RGBColor) -> RGBColor {
    let f = |v: u8| (f64::from(v) * 0.8).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}
