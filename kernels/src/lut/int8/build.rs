//! Phase 1 of the int8 conv: one chunk of one band's quantized table, rows (phase, code) of
//! `q = clamp(round(Σ_u x[channel0 + u][phase][start + pos]·dq[code][u]), −Q, Q)` for
//! pos < build_len, the FMA chain in u order from 0 (so every level rounds the same sums).
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
    pub codes: usize,
    pub d: usize,
    /// D' of the chunk's first codeword on: Layout (codes, d) at least.
    pub dq: &'a [f32],
    /// Layout (C_s, s², x_plane).
    pub xpad: &'a [f32],
    pub channel0: usize,
    /// The band's first plane position: r0·pw.
    pub start: usize,
    /// Q: entries are clamped to [−Q, Q] after rounding.
    pub q_max: i32,
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
            && self.codes <= g.chunk_k
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
        for phase in 0..g.phases {
            for code in 0..op.codes {
                let w = &op.dq[code * op.d..code * op.d + op.dims];
                let row = &mut table[(phase * g.chunk_k + code) * g.row_stride..][..g.row_len];
                for (pos, out) in row.iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for (u, wu) in w.iter().enumerate() {
                        let at = (op.channel0 + u) * plane + phase * g.x_plane + op.start + pos;
                        acc = op.xpad[at].mul_add(*wu, acc);
                    }
                    *out = quantize(acc, op.q_max);
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

/// N dims held in registers across the chunk's codewords.
#[inline(always)]
fn build_dims<S: Simd, const N: usize>(s: S, op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let (plane, lanes) = (g.phases * g.x_plane, S::LANES);
    // SAFETY (all accesses): `simd` asserted `op.is_consistent`: channel0 + N ≤ C_s planes
    // in xpad, start + build_len ≤ x_plane (reads of x), (codes − 1)·d + N ≤ dq.len(),
    // every row (phase·K_c + code)·row_stride + build_len ≤ table_len ≤ table.len(), and
    // build_len is a multiple of 2·LANES.
    unsafe {
        let x = op.xpad.as_ptr().add(op.channel0 * plane + op.start);
        let dq = op.dq.as_ptr();
        for phase in 0..g.phases {
            let xp = x.add(phase * g.x_plane);
            let rows = table.as_mut_ptr().add(phase * g.chunk_k * g.row_stride);
            for pos in (0..g.build_len).step_by(2 * lanes) {
                // In pack order once per position block, so that each codeword's quantized
                // run needs no lane fix-up.
                let mut xs = [[s.zero(); 2]; N];
                for (u, reg) in xs.iter_mut().enumerate() {
                    let x0 = s.load(xp.add(u * plane + pos));
                    let x1 = s.load(xp.add(u * plane + pos + lanes));
                    (reg[0], reg[1]) = s.pack_order(x0, x1);
                }
                for code in 0..op.codes {
                    let w = dq.add(code * op.d);
                    let (mut a0, mut a1) = (s.zero(), s.zero());
                    for (u, reg) in xs.iter().enumerate() {
                        let wu = s.splat(*w.add(u));
                        a0 = s.fma(reg[0], wu, a0);
                        a1 = s.fma(reg[1], wu, a1);
                    }
                    s.store_i16(
                        rows.add(code * g.row_stride + pos),
                        s.quantize_i16(a0, a1, op.q_max),
                    );
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
        for phase in 0..g.phases {
            let xp = x.add(phase * g.x_plane);
            let rows = table.as_mut_ptr().add(phase * g.chunk_k * g.row_stride);
            for code in 0..op.codes {
                let w = op.dq.as_ptr().add(code * op.d);
                for pos in (0..g.build_len).step_by(2 * lanes) {
                    let (mut a0, mut a1) = (s.zero(), s.zero());
                    for u in 0..op.dims {
                        let wu = s.splat(*w.add(u));
                        a0 = s.fma(s.load(xp.add(u * plane + pos)), wu, a0);
                        a1 = s.fma(s.load(xp.add(u * plane + pos + lanes)), wu, a1);
                    }
                    let (a0, a1) = s.pack_order(a0, a1);
                    s.store_i16(
                        rows.add(code * g.row_stride + pos),
                        s.quantize_i16(a0, a1, op.q_max),
                    );
                }
            }
        }
    }
}
