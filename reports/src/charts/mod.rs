//! Charts drawn with plotters, each written as PNG and SVG from one drawing routine.
//!
//! Text is laid out with the DejaVu Sans font compiled into this crate (`assets/`), so the
//! charts render identically on a machine without any font package. PNGs are encoded from
//! plotters' RGB buffer with `png`.

mod bars;
mod build;
mod intervals;
mod lines;
mod scatter;
mod typeset;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{ReportError, Result};
use typeset::Typeset;

pub use build::{
    change_charts, history_chart, layer_chart, layer_speedup_chart, memory_chart, repeat_chart,
    sweep_layers, tradeoff_chart,
};
pub use intervals::signed_percent;

/// The family the charts ask plotters for; registered to the embedded font, and written
/// as is into SVG `font-family`, so a browser with DejaVu Sans draws what was measured.
pub const FONT: &str = "DejaVu Sans, sans-serif";
/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Pixel size of every chart (width, height); the SVG uses the same user units.
pub const SIZE: (u32, u32) = (1100, 620);
pub const TITLE_PX: u32 = 26;
pub const AXIS_PX: u32 = 18;
pub const TICK_PX: u32 = 15;
pub const LEGEND_PX: u32 = 15;
pub const VALUE_PX: u32 = 13;

/// Something that can draw itself on any plotters backend.
pub trait Chart {
    fn title(&self) -> &str;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Turns any drawing error into its message (the caller adds the file name).
pub(crate) fn fail<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// The embedded font, parsed and registered with plotters once per process.
fn embedded_font() -> Result<ab_glyph::FontRef<'static>, String> {
    static FONT_REF: OnceLock<Result<ab_glyph::FontRef<'static>, String>> = OnceLock::new();
    FONT_REF
        .get_or_init(|| {
            let broken = "the embedded DejaVu Sans font does not parse".to_string();
            plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
                .map_err(|_| broken.clone())?;
            ab_glyph::FontRef::try_from_slice(FONT_BYTES).map_err(|_| broken)
        })
        .clone()
}

/// Draws `chart` into `png` and `svg` (parent folders must exist).
pub fn write_chart(chart: &impl Chart, png: &Path, svg: &Path) -> Result<()> {
    let font = embedded_font().map_err(|p| ReportError::chart(png, p))?;
    let (w, h) = SIZE;
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let bitmap = BitMapBackend::with_buffer(&mut pixels, SIZE);
        let root = Typeset::new(bitmap, font.clone(), true).into_drawing_area();
        chart.draw(&root).map_err(|p| ReportError::chart(png, p))?;
        root.present().map_err(|e| ReportError::chart(png, e))?;
    }
    write_png(png, w, h, &pixels)?;
    let mut text = String::new();
    {
        let vector = SVGBackend::with_string(&mut text, SIZE);
        let root = Typeset::new(vector, font, false).into_drawing_area();
        chart.draw(&root).map_err(|p| ReportError::chart(svg, p))?;
        root.present().map_err(|e| ReportError::chart(svg, e))?;
    }
    fs::write(svg, text).map_err(|e| ReportError::io(svg, "write", e))
}

/// Encodes an RGB8 buffer (row-major, `w·h·3` bytes) as a PNG file.
fn write_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    let file = fs::File::create(path).map_err(|e| ReportError::io(path, "create", e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let encoded = encoder
        .write_header()
        .and_then(|mut writer| {
            writer.write_image_data(rgb)?;
            writer.finish()
        })
        .map_err(|e| ReportError::chart(path, format!("PNG encoding failed: {e}")));
    encoded
}

/// A font of the embedded family at `px` pixels.
pub(crate) fn font(px: u32) -> TextStyle<'static> {
    (FONT, px).into_font().color(&BLACK)
}

/// Colours: the dense baseline slate, the authors' Q-CNN orange, further modes from a
/// colour-blind-safe palette (Okabe–Ito), in the order given.
pub fn mode_color(mode: &str, quantized_index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 4] = [
        RGBColor(0, 158, 115),
        RGBColor(0, 114, 178),
        RGBColor(204, 121, 167),
        RGBColor(213, 94, 0),
    ];
    match mode {
        qcnn_results::BASELINE_MODE => RGBColor(86, 106, 135),
        crate::view::AUTHORS_QUANTIZED_MODE => RGBColor(230, 159, 0),
        _ => OTHERS[quantized_index % OTHERS.len()],
    }
}

/// The colour for theoretical figures.
pub const THEORY_COLOR: RGBColor = RGBColor(160, 160, 160);

/// `c` mixed with white: `amount` 0 keeps it, 1 gives white (lighter stacked segments).
pub fn lighter(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// One legend entry: its key (a filled swatch, a short line, or none) and its text.
#[derive(Clone, Debug)]
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub key: LegendKey,
}

/// What stands before a legend entry's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendKey {
    Swatch,
    Line,
    /// Nothing: the text carries its own key (a marker glyph).
    Text,
}

/// Draws the title centred at the top and the legend entries in rows under it; returns the
/// area left for the plot.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>, String> {
    fail(root.fill(&WHITE))?;
    let (w, _) = root.dim_in_pixel();
    let title_h = TITLE_PX as i32 + 22;
    let style = font(TITLE_PX).pos(Pos::new(HPos::Center, VPos::Center));
    fail(root.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, title_h / 2 + 2),
        style,
    )))?;
    let rows = legend_rows(root, legend, w as i32 - 40)?;
    let row_h = LEGEND_PX as i32 + 12;
    let legend_h = row_h * rows.len() as i32 + if rows.is_empty() { 0 } else { 6 };
    for (r, row) in rows.iter().enumerate() {
        let total: i32 = row.iter().map(|(_, width)| width).sum();
        let mut x = (w as i32 - total) / 2;
        let y = title_h + r as i32 * row_h + row_h / 2;
        for (entry, width) in row {
            draw_legend_entry(root, entry, x, y)?;
            x += width;
        }
    }
    Ok(root.split_vertically(title_h + legend_h).1)
}

const SWATCH: i32 = 22;
const ENTRY_GAP: i32 = 28;

/// Packs legend entries into rows no wider than `max_w`, with each entry's width.
fn legend_rows<'a, DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    legend: &'a [LegendEntry],
    max_w: i32,
) -> Result<Vec<Vec<(&'a LegendEntry, i32)>>, String> {
    let mut rows: Vec<Vec<(&LegendEntry, i32)>> = Vec::new();
    let mut used = 0;
    for entry in legend {
        let (tw, _) = fail(root.estimate_text_size(&entry.label, &font(LEGEND_PX)))?;
        let key = if entry.key == LegendKey::Text {
            0
        } else {
            SWATCH + 8
        };
        let width = key + tw as i32 + ENTRY_GAP;
        if rows.is_empty() || used + width > max_w {
            rows.push(Vec::new());
            used = 0;
        }
        used += width;
        rows.last_mut()
            .expect("a row was pushed")
            .push((entry, width));
    }
    Ok(rows)
}

fn draw_legend_entry<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entry: &LegendEntry,
    x: i32,
    y: i32,
) -> Result<(), String> {
    let half = LEGEND_PX as i32 / 2;
    match entry.key {
        LegendKey::Line => {
            let style = entry.color.stroke_width(3);
            fail(root.draw(&PathElement::new(vec![(x, y), (x + SWATCH, y)], style)))?;
        }
        LegendKey::Swatch => {
            let rect = Rectangle::new(
                [(x, y - half), (x + SWATCH, y + half)],
                entry.color.filled(),
            );
            fail(root.draw(&rect))?;
        }
        LegendKey::Text => {}
    }
    let text_x = if entry.key == LegendKey::Text {
        x
    } else {
        x + SWATCH + 8
    };
    let style = font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center));
    fail(root.draw(&Text::new(entry.label.clone(), (text_x, y), style)))
}

/// A y-axis upper bound with headroom above `max` for value labels (1 when all are zero).
pub(crate) fn y_top(max: f64) -> f64 {
    if max > 0.0 && max.is_finite() {
        max * 1.12
    } else {
        1.0
    }
}

/// An x axis of `n` categories at 0, 1, ..., n − 1, each owning the unit interval around
/// it; ticks (and labels) at every `step`-th category.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Categories {
    pub n: usize,
    pub step: usize,
}

impl Ranged for Categories {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let frac = (v + 0.5) / self.n.max(1) as f64;
        limit.0 + (frac * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.max_num_points() == 0 {
            return Vec::new();
        }
        (0..self.n)
            .step_by(self.step.max(1))
            .map(|i| i as f64)
            .collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..self.n as f64 - 0.5
    }
}

/// The category name under tick `v`, empty between categories.
pub(crate) fn category_label(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Decimals that tell the y-axis labels apart: plotters puts at most ten labels on
/// [0, top], at steps of 1, 2 or 5 × 10^k, so a step is at least top / 10.
pub(crate) fn axis_decimals(top: f64) -> usize {
    let finest_step = top / 10.0;
    if finest_step <= 0.0 || !finest_step.is_finite() {
        return 0;
    }
    (-finest_step.log10().floor()).max(0.0) as usize
}

/// Short numbers for bar labels: three significant digits.
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_get_the_decimals_their_steps_need() {
        assert_eq!(axis_decimals(32.0), 0);
        assert_eq!(axis_decimals(4.6), 1);
        assert_eq!(axis_decimals(0.5), 2);
        assert_eq!(axis_decimals(0.0), 0);
        assert_eq!(short(0.0), "0");
        assert_eq!(short(28.66), "28.7");
        assert_eq!(short(310.0), "310");
        assert_eq!(short(0.9861), "0.986");
    }
}
