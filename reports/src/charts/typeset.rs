//! Text for the charts, laid out and rasterised with the embedded font.
//!
//! plotters 0.3.7's `ab_glyph` text drops each glyph's left side bearing, which spaces letters
//! unevenly in PNGs ("rep eat"). [`Typeset`] wraps any backend: it measures all text with
//! ab_glyph itself, and on bitmap backends draws glyphs at their true positions (coverage as
//! alpha). Vector backends keep their own text elements, measured the same way.

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// plotters' text size is 1.24 em: the SVG backend writes `font-size = size / 1.24`, and the
/// raster text uses the same em so both files look alike.
const SIZE_PER_EM: f64 = 1.24;

/// A backend whose text goes through the embedded font.
pub struct Typeset<DB> {
    inner: DB,
    font: FontRef<'static>,
    /// Draw glyphs pixel by pixel (bitmaps) rather than delegating (SVG `<text>`).
    raster: bool,
}

impl<DB: DrawingBackend> Typeset<DB> {
    pub fn new(inner: DB, font: FontRef<'static>, raster: bool) -> Self {
        Typeset {
            inner,
            font,
            raster,
        }
    }

    /// Glyphs of `text` on a baseline at y = ascent, starting at x = 0, with the box size
    /// (advance width, ascent − descent) in pixels.
    fn layout(&self, text: &str, size: f64) -> (Vec<Glyph>, (f64, f64)) {
        let em = (size / SIZE_PER_EM) as f32;
        let units = self.font.units_per_em().unwrap_or(1000.0);
        let scale = PxScale::from(em * self.font.height_unscaled() / units);
        let font = self.font.as_scaled(scale);
        let mut glyphs = Vec::with_capacity(text.len());
        let mut caret = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scale, point(caret, font.ascent())));
            caret += font.h_advance(id);
            previous = Some(id);
        }
        let height = font.ascent() - font.descent();
        (glyphs, (f64::from(caret), f64::from(height)))
    }
}

impl<DB: DrawingBackend> DrawingBackend for Typeset<DB> {
    type ErrorType = DB::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (w, h): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        self.inner.blit_bitmap(pos, (w, h), src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<DB::ErrorType>> {
        let (_, (w, h)) = self.layout(text, style.size());
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        if !self.raster {
            return self.inner.draw_text(text, style, pos);
        }
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (glyphs, (w, h)) = self.layout(text, style.size());
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -w / 2.0,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -h / 2.0,
            VPos::Bottom => -h,
        };
        let transform = style.transform();
        let mut pixels = Vec::new();
        for glyph in glyphs {
            let Some(outline) = self.font.outline_glyph(glyph) else {
                continue; // a space: nothing to draw
            };
            let min = outline.px_bounds().min;
            outline.draw(|x, y, coverage| {
                let gx = f64::from(min.x) + f64::from(x) + dx;
                let gy = f64::from(min.y) + f64::from(y) + dy;
                pixels.push((gx.round() as i32, gy.round() as i32, coverage));
            });
        }
        for (x, y, coverage) in pixels {
            if coverage <= 0.0 {
                continue;
            }
            let (x, y) = transform.transform(x, y);
            let c = BackendColor {
                alpha: color.alpha * f64::from(coverage.min(1.0)),
                rgb: color.rgb,
            };
            self.inner.draw_pixel((pos.0 + x, pos.1 + y), c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;
    use plotters::style::text_anchor::Pos;

    /// Ink of a text drawn at a top-left anchor stays inside the box `estimate_text_size`
    /// reports, and there is ink: the charts' layout relies on both.
    #[test]
    fn raster_text_stays_inside_its_measured_box() {
        let font = super::super::embedded_font().unwrap();
        let (w, h) = (300u32, 80u32);
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        let (tw, th);
        {
            let bitmap = BitMapBackend::with_buffer(&mut pixels, (w, h));
            let root = Typeset::new(bitmap, font, true).into_drawing_area();
            let style = super::super::font(30).pos(Pos::new(HPos::Left, VPos::Top));
            (tw, th) = root.estimate_text_size("Hgjy repeat", &style).unwrap();
            root.draw(&Text::new("Hgjy repeat", (10, 10), style))
                .unwrap();
            root.present().unwrap();
        }
        let mut ink = 0;
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                if pixels[i..i + 3].iter().any(|&c| c < 250) {
                    ink += 1;
                    assert!(x >= 10 && x <= 10 + tw + 1, "x {x} outside 10..{}", 10 + tw);
                    assert!(y >= 10 && y <= 10 + th + 1, "y {y} outside 10..{}", 10 + th);
                }
            }
        }
        assert!(ink > 100, "only {ink} pixels of ink");
    }
}
