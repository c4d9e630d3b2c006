//! The zero-padded input as phase planes, shared by the f32 and the int8 conv tables
//! (docs/KERNELS.md, "Input: phase planes"): plane (a, b) row y column z holds padded pixel
//! (s·y + a, s·z + b), i.e. input pixel (s·y + a − pad, s·z + b − pad), or 0 outside the
//! input. Only copies: every level writes the same bits.

use crate::simd::{copy_strided_plain, Kernel, Simd, Vectorized};

/// Where the planes go: Layout (C_s, s², plane_len), `rows` rows of `pitch` floats from each
/// plane's start; the slack after them is zeroed too.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PhasePlanes {
    pub stride: usize,
    pub pad: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub rows: usize,
    pub pitch: usize,
    /// ≥ rows · pitch.
    pub plane_len: usize,
}

impl PhasePlanes {
    /// Of the `len` plane rows from row `first` on, in the planes of row phase `a`, the ones
    /// that hold input pixels (the padded row s·y + a in pad..pad + H_s), counted from
    /// `first`: a band's rows whose table rows need computing (the others are padding).
    pub(crate) fn rows_inside(&self, a: usize, first: usize, len: usize) -> std::ops::Range<usize> {
        let (lo, hi) = inside(self.pad, self.h_in, a, self.stride, first + len);
        lo.max(first) - first..hi.max(first) - first
    }
}

/// Pads x (C_s, H_s, W_s) into `xpad` (Layout (C_s, s², plane_len)).
pub(crate) struct PadInput<'a> {
    pub planes: PhasePlanes,
    pub c_in: usize,
    pub x: &'a [f32],
    pub xpad: &'a mut [f32],
}

impl Kernel for PadInput<'_> {
    fn scalar(self) {
        self.pad(Plain);
    }
}

impl Vectorized for PadInput<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        self.pad(s);
    }
}

/// How a level copies a strided run (a trait, not a closure: a closure body is a function of
/// its own, compiled without the level's target features).
pub(crate) trait StridedCopy: Copy {
    /// `out[x] = src[s·x]` for x < out.len().
    fn copy_strided(self, src: &[f32], s: usize, out: &mut [f32]);
}

/// The scalar level's plain loop.
#[derive(Clone, Copy)]
pub(crate) struct Plain;

impl StridedCopy for Plain {
    fn copy_strided(self, src: &[f32], s: usize, out: &mut [f32]) {
        copy_strided_plain(src, s, out)
    }
}

impl<S: Simd> StridedCopy for S {
    #[inline(always)]
    fn copy_strided(self, src: &[f32], s: usize, out: &mut [f32]) {
        Simd::copy_strided(self, src, s, out)
    }
}

impl PadInput<'_> {
    /// The planes: each zero-filled, then the inside of each row copied (one `memcpy` at
    /// stride 1, the level's strided copy otherwise): no per-element branch.
    #[inline(always)]
    pub(crate) fn pad(self, level: impl StridedCopy) {
        let p = self.planes;
        let s = p.stride;
        assert!(
            p.plane_len >= p.rows * p.pitch
                && self.x.len() >= self.c_in * p.h_in * p.w_in
                && self.xpad.len() >= self.c_in * s * s * p.plane_len,
            "padded planes"
        );
        for c in 0..self.c_in {
            let src = &self.x[c * p.h_in * p.w_in..(c + 1) * p.h_in * p.w_in];
            for a in 0..s {
                let (y_lo, y_hi) = inside(p.pad, p.h_in, a, s, p.rows);
                for b in 0..s {
                    let (x_lo, x_hi) = inside(p.pad, p.w_in, b, s, p.pitch);
                    let plane_start = ((c * s + a) * s + b) * p.plane_len;
                    let plane = &mut self.xpad[plane_start..plane_start + p.plane_len];
                    // One fill per plane: two per row (its ends, a few floats each) were
                    // `memset` calls costing more than the zeros.
                    plane.fill(0.0);
                    for y in y_lo..y_hi {
                        let row = &mut plane[y * p.pitch..(y + 1) * p.pitch];
                        let r = s * y + a - p.pad;
                        let input = &src[r * p.w_in..(r + 1) * p.w_in];
                        if x_lo < x_hi {
                            let first = s * x_lo + b - p.pad;
                            if s == 1 {
                                row[x_lo..x_hi]
                                    .copy_from_slice(&input[first..first + (x_hi - x_lo)]);
                            } else {
                                level.copy_strided(&input[first..], s, &mut row[x_lo..x_hi]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The plane positions z in 0..len whose padded coordinate s·z + phase falls inside the
/// input, pad ≤ s·z + phase < pad + size: z in lo..hi.
fn inside(pad: usize, size: usize, phase: usize, s: usize, len: usize) -> (usize, usize) {
    let first_at = |bound: usize| bound.saturating_sub(phase).div_ceil(s);
    let lo = first_at(pad).min(len);
    (lo, first_at(pad + size).clamp(lo, len))
}
