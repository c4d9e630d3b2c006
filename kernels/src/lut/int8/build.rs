//! Phase 1 of the int8 conv: one chunk of one band's quantized table, rows (phase, code) of
//! `q = round(Σ_u x[channel0 + u][phase][start + pos]·dq[code][u])` for pos < build_len
//! (|q| ≤ Q by the scale, no clamp: `quant::SCALE_MARGIN`): x·dq[code][0], then an FMA per
//! further u in order, so that every level rounds the same sums. (Starting from a product
//! rather than an FMA into zero only changes the sign of a zero sum, which quantizes to 0
//! either way. Two chains, even and odd u, as the f32 builder has, measured no faster here:
//! this loop is bound by its FMA and convert ports, not by the chain's latency.)
//!
//! Vector levels: 2·LANES positions at a time (two f32 vectors, one i16 vector), N ≤ 8
//! input channels held in registers across the chunk's codewords, in the level's pack order
//! (`Simd::pack_order`: the FMAs are lane-wise, so their results come out of the narrowing
//! in lane order without a permute per codeword).

use super::plan::Geometry;
use super::quant::quantize;
use crate::simd::{Kernel, Simd, Vectorized};

/// One table build (see the module doc).
pub(crate) struct BuildOp<'a> {
    pub dims: usize,
    /// The chunk's phase planes (its table holds them in this order).
    pub phases: std::ops::Range<usize>,
    pub codes: usize,
    pub d: usize,
    /// D' of the chunk's first codeword on: Layout (codes, d) at least.
    pub dq: &'a [f32],
    /// Layout (C_s, s², x_plane).
    pub xpad: &'a [f32],
    pub channel0: usize,
    /// The band's first plane position: r0·pw.
    pub start: usize,
    /// The band (for the rows of padding the vector builders skip).
    pub band: usize,
    pub geo: &'a Geometry,
}

impl BuildOp<'_> {
    /// Whether every read and write of the build stays inside the slices (the vector builder
    /// relies on it).
    pub fn is_consistent(&self, table_len: usize) -> bool {
        let g = self.geo;
        let plane = g.phases * g.x_plane;
        self.dims >= 1
            && self.codes >= 1
            && self.codes <= g.grid.chunk_k
            && !self.phases.is_empty()
            && self.phases.len() <= g.grid.chunk_phases
            && self.phases.end <= g.phases
            && self.dq.len() >= (self.codes - 1) * self.d + self.dims
            && self.start + g.build_len <= g.x_plane
            && (self.channel0 + self.dims) * plane <= self.xpad.len()
            && g.table_len <= table_len
            && g.build_len <= g.row_stride
    }
}

/// The build as a unit of work for `simd::run`.
pub(super) struct Build<'a> {
    pub op: BuildOp<'a>,
    pub table: &'a mut [i16],
}

impl Kernel for Build<'_> {
    /// The scalar twin: positions < row_len only (the look-ups read no other).
    fn scalar(self) {
        let (op, table) = (self.op, self.table);
        let g = op.geo;
        let plane = g.phases * g.x_plane;
        for (local, phase) in op.phases.clone().enumerate() {
            for code in 0..op.codes {
                let w = &op.dq[code * op.d..code * op.d + op.dims];
                let row = &mut table[(local * g.grid.chunk_k + code) * g.row_stride..][..g.row_len];
                for (pos, out) in row.iter_mut().enumerate() {
                    let x = |u: usize| {
                        op.xpad[(op.channel0 + u) * plane + phase * g.x_plane + op.start + pos]
                    };
                    *out = quantize(chained_dot(op.dims, x, |u| w[u]));
                }
            }
        }
    }
}

impl Vectorized for Build<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let (op, table) = (self.op, self.table);
        assert!(op.is_consistent(table.len()), "int8 table build operands");
        assert!(op.geo.build_len.is_multiple_of(2 * S::LANES));
        match op.dims {
            1 => build_dims::<S, 1>(s, &op, table),
            2 => build_dims::<S, 2>(s, &op, table),
            3 => build_dims::<S, 3>(s, &op, table),
            4 => build_dims::<S, 4>(s, &op, table),
            5 => build_dims::<S, 5>(s, &op, table),
            6 => build_dims::<S, 6>(s, &op, table),
            7 => build_dims::<S, 7>(s, &op, table),
            8 => build_dims::<S, 8>(s, &op, table),
            _ => build_any(s, &op, table),
        }
    }
}

/// Codewords whose rows one position block writes before the next block: each a store
/// stream. All 128 of a phase-plane chunk at once made conv1's tables 15–20 % slower at
/// simulated AVX2 (lut_int8 bench, alternated: 0.88–1.00 ms against 0.70–0.84 with blocks
/// of 16–64); smaller blocks reload the block's inputs more often (conv2, 8 dims: +5 %
/// instructions at 32, time unchanged).
const CODE_BLOCK: usize = 64;

/// N dims held in registers across a block of the chunk's codewords.
#[inline(always)]
fn build_dims<S: Simd, const N: usize>(s: S, op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let (plane, lanes) = (g.phases * g.x_plane, S::LANES);
    // SAFETY (all accesses): `simd` asserted `op.is_consistent`: channel0 + N ≤ C_s planes
    // in xpad, start + build_len ≤ x_plane (reads of x; phase < s²), (codes − 1)·d + N ≤
    // dq.len(), every row (local·K_c + code)·row_stride + build_len ≤ table_len ≤
    // table.len() (local < P_c, code < K_c), and
    // build_len is a multiple of 2·LANES; the span (`Geometry::data_span`) lies within
    // 0..build_len, its ends multiples of 2·LANES or build_len.
    unsafe {
        let x = op.xpad.as_ptr().add(op.channel0 * plane + op.start);
        let dq = op.dq.as_ptr();
        for (local, phase) in op.phases.clone().enumerate() {
            let xp = x.add(phase * g.x_plane);
            let rows = table
                .as_mut_ptr()
                .add(local * g.grid.chunk_k * g.row_stride);
            let span = g.data_span(phase, op.band, 2 * lanes);
            zero_padding(s, rows, op.codes, g, &span);
            for code0 in (0..op.codes).step_by(CODE_BLOCK) {
                let codes = code0..(code0 + CODE_BLOCK).min(op.codes);
                for pos in span.clone().step_by(2 * lanes) {
                    // In pack order once per position block, so that each codeword's
                    // quantized run needs no lane fix-up.
                    let mut xs = [[s.zero(); 2]; N];
                    for (u, reg) in xs.iter_mut().enumerate() {
                        let x0 = s.load(xp.add(u * plane + pos));
                        let x1 = s.load(xp.add(u * plane + pos + lanes));
                        (reg[0], reg[1]) = s.pack_order(x0, x1);
                    }
                    for code in codes.clone() {
                        let w = dq.add(code * op.d);
                        let (a0, a1) = chained_dot_simd(s, N, |u| xs[u], |u| *w.add(u));
                        let at = rows.add(code * g.row_stride + pos);
                        s.store_i16(at, s.quantize_i16(a0, a1));
                    }
                }
            }
        }
    }
}

/// Any number of dims, read from memory in the chain.
#[inline(always)]
fn build_any<S: Simd>(s: S, op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let (plane, lanes) = (g.phases * g.x_plane, S::LANES);
    // SAFETY: as in `build_dims`, with dims in place of N.
    unsafe {
        let x = op.xpad.as_ptr().add(op.channel0 * plane + op.start);
        for (local, phase) in op.phases.clone().enumerate() {
            let xp = x.add(phase * g.x_plane);
            let rows = table
                .as_mut_ptr()
                .add(local * g.grid.chunk_k * g.row_stride);
            let span = g.data_span(phase, op.band, 2 * lanes);
            zero_padding(s, rows, op.codes, g, &span);
            for code in 0..op.codes {
                let w = op.dq.as_ptr().add(code * op.d);
                for pos in span.clone().step_by(2 * lanes) {
                    let x_at = |u: usize| {
                        let at = xp.add(u * plane + pos);
                        [s.load(at), s.load(at.add(lanes))]
                    };
                    let (a0, a1) = chained_dot_simd(s, op.dims, x_at, |u| *w.add(u));
                    let (a0, a1) = s.pack_order(a0, a1);
                    s.store_i16(rows.add(code * g.row_stride + pos), s.quantize_i16(a0, a1));
                }
            }
        }
    }
}

/// Zeroes the positions of `codes` consecutive table rows from `rows` on that lie outside
/// `span` (< build_len): rows of padding pixels, whose entries the scalar twin computes as
/// round(0) = 0 (`Geometry::data_span`). With vector stores: a `memset` call for each end
/// of each row (a few dozen bytes) had cost more than the zeros.
///
/// # Safety
/// `rows` is valid for writing (codes − 1)·row_stride + build_len i16; span ⊆ 0..build_len,
/// its start a multiple of 2·LANES and its end one or build_len, itself a multiple.
#[inline(always)]
unsafe fn zero_padding<S: Simd>(
    s: S,
    rows: *mut i16,
    codes: usize,
    g: &Geometry,
    span: &std::ops::Range<usize>,
) {
    let wide = 2 * S::LANES;
    for code in 0..codes {
        let row = rows.add(code * g.row_stride);
        for pos in (0..span.start).step_by(wide) {
            s.store_i16(row.add(pos), s.zero_i16());
        }
        for pos in (span.end..g.build_len).step_by(wide) {
            s.store_i16(row.add(pos), s.zero_i16());
        }
    }
}

/// The scalar twin's dot product of `dims` terms, in the order every level uses.
fn chained_dot(dims: usize, x: impl Fn(usize) -> f32, w: impl Fn(usize) -> f32) -> f32 {
    (1..dims).fold(x(0) * w(0), |acc, u| x(u).mul_add(w(u), acc))
}

/// [`chained_dot`] for 2·LANES positions: `x(u)` the two vectors of dim u, `w(u)` its
/// weight; returns the two sums.
#[inline(always)]
fn chained_dot_simd<S: Simd>(
    s: S,
    dims: usize,
    x: impl Fn(usize) -> [S::F32; 2],
    w: impl Fn(usize) -> f32,
) -> (S::F32, S::F32) {
    let (w0, x0) = (s.splat(w(0)), x(0));
    let mut acc = [s.mul(x0[0], w0), s.mul(x0[1], w0)];
    for u in 1..dims {
        let (wu, xu) = (s.splat(w(u)), x(u));
        acc = [s.fma(xu[0], wu, acc[0]), s.fma(xu[1], wu, acc[1])];
    }
    (acc[0], acc[1])
}
