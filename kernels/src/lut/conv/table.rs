//! Phase 1: the padded input in phase planes, and the table as one small GEMM per phase plane.

use cblas::{Layout, Transpose};

use super::{ConvLut, Geometry};
use crate::isa::Isa;

/// Which table to build: output-row band, group, subspace and chunk (of phase planes and
/// codewords).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Source {
    pub band: usize,
    pub group: usize,
    pub subspace: usize,
    pub chunk: usize,
}

/// Writes the zero-padded input x (C_s, H_s, W_s) as phase planes, Layout
/// (C_s, s², x_rows, pitch): plane (a, b) row y column x holds padded pixel (s·y + a, s·x + b),
/// i.e. input pixel (s·y + a − pad, s·x + b − pad), or 0 outside the input.
///
/// AVX-512 copies the strided runs with masked gathers (the scalar strided loop cost about
/// as much as conv1's table build).
pub(super) fn pad_input(geo: &Geometry, isa: Isa, c_in: usize, x: &[f32], xpad: &mut [f32]) {
    let s = geo.stride;
    let plane_len = geo.x_rows * geo.pitch;
    for c in 0..c_in {
        let src = &x[c * geo.h_in * geo.w_in..(c + 1) * geo.h_in * geo.w_in];
        for a in 0..s {
            let (y_lo, y_hi) = inside(geo.pad, geo.h_in, a, s, geo.x_rows);
            for b in 0..s {
                let (x_lo, x_hi) = inside(geo.pad, geo.w_in, b, s, geo.pitch);
                let plane_start = ((c * s + a) * s + b) * plane_len;
                let plane = &mut xpad[plane_start..plane_start + plane_len];
                plane[..y_lo * geo.pitch].fill(0.0);
                plane[y_hi * geo.pitch..].fill(0.0);
                for y in y_lo..y_hi {
                    let row = &mut plane[y * geo.pitch..(y + 1) * geo.pitch];
                    let r = s * y + a - geo.pad;
                    let input = &src[r * geo.w_in..(r + 1) * geo.w_in];
                    row[..x_lo].fill(0.0);
                    row[x_hi..].fill(0.0);
                    if x_lo < x_hi {
                        let first = s * x_lo + b - geo.pad;
                        if s == 1 {
                            row[x_lo..x_hi].copy_from_slice(&input[first..first + (x_hi - x_lo)]);
                        } else {
                            copy_strided(isa, &input[first..], s, &mut row[x_lo..x_hi]);
                        }
                    }
                }
            }
        }
    }
}

/// `out[x] = src[s·x]` for x < out.len(); `src` holds at least s·(out.len() − 1) + 1 floats.
fn copy_strided(isa: Isa, src: &[f32], s: usize, out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `forward` asserted the CPU has AVX-512F.
        Isa::Avx512 => unsafe { super::avx512::copy_strided(src, s, out) },
        _ => {
            for (o, v) in out.iter_mut().zip(src.iter().step_by(s)) {
                *o = *v;
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

/// Builds one chunk of one band's table, Layout (P_c, R_b + (kh−1)/s, K_c, pitch): for every
/// phase-plane row of the band in the chunk's P_c planes, `T (K_c × pitch) = D_m[chunk] (K_c × d_m) · X_m (d_m × pitch)`,
/// d_m being the dims subspace m has. Rows of padding only are zero-filled.
///
/// Scalar: one `sgemm` per row. AVX2 / AVX-512: a register-blocked micro-kernel (the rows are
/// too small for BLAS's per-call overhead).
pub(super) fn build(lut: &ConvLut, isa: Isa, src: Source, xpad: &[f32], table: &mut [f32]) {
    let geo = &lut.geo;
    let (d, k) = (lut.spec.d, lut.spec.k);
    let c_group = lut.shape.c_in_group();
    let dims = d.min(c_group - src.subspace * d);
    let code0 = src.chunk % geo.code_chunks * geo.chunk_k;
    let phase0 = src.chunk / geo.code_chunks * geo.chunk_phases;
    let phases = phase0..(phase0 + geo.chunk_phases).min(geo.phases);
    let codes = geo.chunk_k.min(k - code0);
    let channel0 = src.group * c_group + src.subspace * d;
    let ldx = geo.phases * geo.x_rows * geo.pitch;
    let r0 = src.band * geo.band_rows;
    let cw = &lut.centroids[(src.subspace * k + code0) * d..][..(codes - 1) * d + dims];
    for (local, phase) in phases.enumerate() {
        let plane = &mut table[local * geo.band_plane_rows * geo.row_stride..]
            [..geo.band_plane_rows * geo.row_stride];
        // The band's rows of this phase plane that hold input pixels: one run, padding around.
        let data = geo.data_rows(phase / geo.stride, src.band);
        for (row, out) in plane.chunks_exact_mut(geo.row_stride).enumerate() {
            if !data.contains(&row) {
                out[..codes * geo.pitch].fill(0.0);
            }
        }
        if data.is_empty() {
            continue;
        }
        let x_start = ((channel0 * geo.phases + phase) * geo.x_rows + r0 + data.start) * geo.pitch;
        let rows = data.len();
        let x = &xpad[x_start..x_start + (dims - 1) * ldx + rows * geo.pitch];
        let out = &mut plane
            [data.start * geo.row_stride..(data.end - 1) * geo.row_stride + codes * geo.pitch];
        let op = Rows {
            cw,
            d,
            dims,
            codes,
            x,
            ldx,
            pitch: geo.pitch,
            rows,
            row_stride: geo.row_stride,
        };
        match isa {
            Isa::Scalar => sgemm_rows(op, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `forward` asserted the CPU has AVX2 + FMA.
            Isa::Avx2 => unsafe { super::avx2::table_rows(op, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `forward` asserted the CPU has AVX-512F.
            Isa::Avx512 => unsafe { super::avx512::table_rows(op, out) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("non-x86 ISAs are never available"),
        }
    }
}

/// Consecutive table rows' operands: for each row r < rows,
/// `out[r·row_stride..] (codes × pitch) = cw (codes × dims, lda d) · x[r·pitch..] (dims ×
/// pitch, ldb ldx)`. `cw` holds exactly (codes − 1)·d + dims floats, `x` (dims − 1)·ldx +
/// rows·pitch, and `out` (rows − 1)·row_stride + codes·pitch.
#[derive(Clone, Copy)]
pub(super) struct Rows<'a> {
    pub cw: &'a [f32],
    pub d: usize,
    pub dims: usize,
    pub codes: usize,
    pub x: &'a [f32],
    pub ldx: usize,
    pub pitch: usize,
    pub rows: usize,
    pub row_stride: usize,
}

impl Rows<'_> {
    /// Whether the slices are as documented (the SIMD kernels rely on it).
    pub fn is_consistent(&self, out_len: usize) -> bool {
        self.rows > 0
            && self.dims > 0
            && self.codes > 0
            && self.dims <= self.d
            && self.cw.len() == (self.codes - 1) * self.d + self.dims
            && self.x.len() == (self.dims - 1) * self.ldx + self.rows * self.pitch
            && out_len == (self.rows - 1) * self.row_stride + self.codes * self.pitch
            && self.codes * self.pitch <= self.row_stride
    }
}

fn sgemm_rows(r: Rows, out: &mut [f32]) {
    assert!(r.is_consistent(out.len()), "table rows operands");
    for row in 0..r.rows {
        let x = &r.x[row * r.pitch..];
        let c = &mut out[row * r.row_stride..][..r.codes * r.pitch];
        // SAFETY: row-major A is codes × dims with lda = d, B dims × pitch with ldb = ldx
        // (x holds (dims − 1)·ldx + pitch from this row on), C codes × pitch with ldc = pitch.
        unsafe {
            cblas::sgemm(
                Layout::RowMajor,
                Transpose::None,
                Transpose::None,
                r.codes as i32,
                r.pitch as i32,
                r.dims as i32,
                1.0,
                r.cw,
                r.d as i32,
                x,
                r.ldx as i32,
                0.0,
                c,
                r.pitch as i32,
            );
        }
    }
}
