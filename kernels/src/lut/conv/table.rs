//! Phase 1: the table, one small GEMM per phase-plane row of the padded input (`lut::pad`):
//! `T (K_c × pitch) = D_m[chunk] (K_c × d_m) · X_m (d_m × pitch)`.
//!
//! Scalar: one `sgemm` per row. Vector levels: a register-blocked micro-kernel (the rows are
//! too small for BLAS's per-call overhead): units of LANES columns of one row, a few units at
//! a time holding their input channels in registers and sharing each broadcast codeword
//! value.

use cblas::{Layout, Transpose};

use super::ConvLut;
use crate::lut::schedule::Source;
use crate::simd::{Kernel, Simd, Vectorized};

/// How a level computes the pieces of phase 1 (a trait, not closures: a closure body is a
/// function of its own, compiled without the level's target features).
trait Level: Copy {
    /// Consecutive table rows (see [`Rows`]).
    fn table_rows(self, op: Rows, out: &mut [f32]);
}

/// The scalar level: plain loops and one `sgemm` per table row.
#[derive(Clone, Copy)]
struct Plain;

impl Level for Plain {
    fn table_rows(self, op: Rows, out: &mut [f32]) {
        sgemm_rows(op, out)
    }
}

/// A vector level.
#[derive(Clone, Copy)]
struct Vector<S>(S);

impl<S: Simd> Level for Vector<S> {
    #[inline(always)]
    fn table_rows(self, op: Rows, out: &mut [f32]) {
        table_rows(self.0, op, out)
    }
}

/// Builds one chunk of one band's table, Layout (S_p, P_c, R_b + (kh−1)/s, K_c, pitch): for
/// each subspace m of the table and every phase-plane row of the band in the chunk's P_c
/// planes, `T (K_c × pitch) = D_m[chunk] (K_c × d_m) · X_m (d_m × pitch)`, d_m being the dims
/// subspace m has. Rows of padding only are zero-filled.
pub(super) struct BuildTable<'a> {
    pub lut: &'a ConvLut,
    pub src: Source,
    pub xpad: &'a [f32],
    pub table: &'a mut [f32],
}

impl Kernel for BuildTable<'_> {
    fn scalar(self) {
        self.build(Plain);
    }
}

impl Vectorized for BuildTable<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        self.build(Vector(s));
    }
}

impl BuildTable<'_> {
    /// The table, a sub-table per subspace.
    #[inline(always)]
    fn build(self, level: impl Level) {
        let geo = &self.lut.geo;
        let first = self.src.table * geo.table_subspaces;
        let subspaces = first..(first + geo.table_subspaces).min(geo.subspaces);
        for (sub, m) in self.table.chunks_exact_mut(geo.sub_len).zip(subspaces) {
            build_subspace(self.lut, self.src, m, self.xpad, sub, level);
        }
    }
}

/// Subspace m's sub-table, computing each run of data rows with the level's `table_rows`.
#[inline(always)]
fn build_subspace(
    lut: &ConvLut,
    src: Source,
    m: usize,
    xpad: &[f32],
    table: &mut [f32],
    level: impl Level,
) {
    let geo = &lut.geo;
    let (d, k) = (lut.spec.d, lut.spec.k);
    let c_group = lut.shape.c_in_group();
    let dims = d.min(c_group - m * d);
    let (phases, code_range) = geo.grid.span(src.chunk);
    let (code0, codes) = (code_range.start, code_range.len());
    let channel0 = src.group * c_group + m * d;
    let ldx = geo.phases * geo.x_rows * geo.pitch;
    let r0 = src.band * geo.band_rows;
    let cw = &lut.centroids[(m * k + code0) * d..][..(codes - 1) * d + dims];
    for (local, phase) in phases.enumerate() {
        let plane = &mut table[local * geo.band_plane_rows * geo.row_stride..]
            [..geo.band_plane_rows * geo.row_stride];
        // The band's rows of this phase plane that hold input pixels: one run, padding
        // around.
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
        level.table_rows(op, out);
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
    /// Whether the slices are as documented (the vector kernels rely on it).
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

/// The scalar level: one `sgemm` per table row.
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

/// Consecutive table rows at a vector level: the work is cut into units of LANES columns of
/// one row (x is contiguous across rows), processed 8 input channels at a time.
#[inline(always)]
fn table_rows<S: Simd>(s: S, op: Rows, out: &mut [f32]) {
    assert!(
        op.is_consistent(out.len()) && op.pitch.is_multiple_of(S::LANES),
        "table rows operands"
    );
    for c0 in (0..op.dims).step_by(8) {
        let accumulate = c0 > 0;
        match (op.dims - c0).min(8) {
            1 => table_dims::<S, 1>(s, op, c0, accumulate, out),
            2 => table_dims::<S, 2>(s, op, c0, accumulate, out),
            3 => table_dims::<S, 3>(s, op, c0, accumulate, out),
            4 => table_dims::<S, 4>(s, op, c0, accumulate, out),
            5 => table_dims::<S, 5>(s, op, c0, accumulate, out),
            6 => table_dims::<S, 6>(s, op, c0, accumulate, out),
            7 => table_dims::<S, 7>(s, op, c0, accumulate, out),
            _ => table_dims::<S, 8>(s, op, c0, accumulate, out),
        }
    }
}

/// Channels up to which a unit's sum is one FMA chain ([`code_step`]; beyond, two chains of
/// even and odd channels), and up to which AVX-512 steps 4 units ([`units_per_step`]).
const ONE_CHAIN_DIMS: usize = 4;

/// Units per step for N channels: AVX-512 (32 registers) as measured (4 for N ≤
/// [`ONE_CHAIN_DIMS`], else 2); otherwise as many as fit N input registers + 2 sum registers
/// per unit (what two chains need) + the broadcast.
fn units_per_step<S: Simd>(n: usize) -> usize {
    if S::REGISTERS >= 32 {
        if n <= ONE_CHAIN_DIMS {
            4
        } else {
            2
        }
    } else {
        ((S::REGISTERS - 1) / (n + 2)).clamp(1, 4)
    }
}

/// Channels c0 .. c0 + N of consecutive table rows, added to `out` if `accumulate`.
#[inline(always)]
fn table_dims<S: Simd, const N: usize>(
    s: S,
    op: Rows,
    c0: usize,
    accumulate: bool,
    out: &mut [f32],
) {
    let units = op.rows * (op.pitch / S::LANES);
    let step = units_per_step::<S>(N);
    let mut u = 0;
    while u + step <= units {
        match step {
            4 => table_units::<S, N, 4>(s, op, c0, accumulate, u, out),
            3 => table_units::<S, N, 3>(s, op, c0, accumulate, u, out),
            2 => table_units::<S, N, 2>(s, op, c0, accumulate, u, out),
            _ => table_units::<S, N, 1>(s, op, c0, accumulate, u, out),
        }
        u += step;
    }
    while u < units {
        table_units::<S, N, 1>(s, op, c0, accumulate, u, out);
        u += 1;
    }
}

/// U units from unit `u0` on, channels c0 .. c0 + N.
#[inline(always)]
fn table_units<S: Simd, const N: usize, const U: usize>(
    s: S,
    op: Rows,
    c0: usize,
    accumulate: bool,
    u0: usize,
    out: &mut [f32],
) {
    // Two bodies, so that the per-codeword loop has no branch.
    if accumulate {
        units_body::<S, N, U, true>(s, op, c0, u0, out)
    } else {
        units_body::<S, N, U, false>(s, op, c0, u0, out)
    }
}

/// [`table_units`] for one value of `accumulate` (ACC), two codewords per iteration with
/// their addresses walked, not multiplied (the loop was ≈ 26 instructions per 8 FMAs).
#[inline(always)]
fn units_body<S: Simd, const N: usize, const U: usize, const ACC: bool>(
    s: S,
    op: Rows,
    c0: usize,
    u0: usize,
    out: &mut [f32],
) {
    let (lanes, vecs) = (S::LANES, op.pitch / S::LANES);
    // SAFETY: `table_rows` asserted `op` is consistent: unit u (row u / vecs, vector u % vecs)
    // reads x[c·ldx + u·LANES ..][..LANES] for c < dims and writes
    // out[(u / vecs)·row_stride + code·pitch + (u % vecs)·LANES ..][..LANES] for code < codes,
    // all inside the slices; codeword code's dims c0 .. c0 + N are cw[code·d + c0 ..][..N],
    // inside cw; c0 + N ≤ dims and u0 + U ≤ rows·vecs.
    unsafe {
        let x = op.x.as_ptr().add(c0 * op.ldx);
        let mut xs = [[s.zero(); N]; U];
        let mut dst = [out.as_mut_ptr(); U];
        for (k, (regs, d)) in xs.iter_mut().zip(dst.iter_mut()).enumerate() {
            let u = u0 + k;
            for (c, reg) in regs.iter_mut().enumerate() {
                *reg = s.load(x.add(c * op.ldx + u * lanes));
            }
            *d = d.add((u / vecs) * op.row_stride + (u % vecs) * lanes);
        }
        let mut w = op.cw.as_ptr().add(c0);
        let mut at = 0;
        for _ in 0..op.codes / 2 {
            code_step::<S, N, U, ACC>(s, w, &xs, &dst, at);
            code_step::<S, N, U, ACC>(s, w.add(op.d), &xs, &dst, at + op.pitch);
            w = w.add(2 * op.d);
            at += 2 * op.pitch;
        }
        if op.codes % 2 == 1 {
            code_step::<S, N, U, ACC>(s, w, &xs, &dst, at);
        }
    }
}

/// One codeword (its dims at `w`) for U units: `dst[u][at..][..LANES] (+)= Σ_c w[c]·xs[u][c]`.
///
/// # Safety
/// `w` holds N floats and every `dst[u] + at` LANES (see `units_body`).
#[inline(always)]
unsafe fn code_step<S: Simd, const N: usize, const U: usize, const ACC: bool>(
    s: S,
    w: *const f32,
    xs: &[[S::F32; N]; U],
    dst: &[*mut f32; U],
    at: usize,
) {
    // Up to ONE_CHAIN_DIMS channels one chain per unit; beyond, two (even and odd channels)
    // halve the FMA dependency chain. A chain starts with a multiply (or an FMA into the
    // stored sums), not an FMA into zero: no zeroed register copied per chain, and no add
    // where one chain suffices (conv1's 3-channel tables: 3 instead of 4 floating-point
    // operations and 2 register copies per unit and codeword).
    let split = N > ONE_CHAIN_DIMS;
    let b0 = s.splat(*w);
    let mut even = [s.zero(); U];
    for ((a, regs), d) in even.iter_mut().zip(xs).zip(dst) {
        *a = if ACC {
            s.fma(b0, regs[0], s.load(d.add(at)))
        } else {
            s.mul(b0, regs[0])
        };
    }
    let mut odd = [s.zero(); U];
    if split {
        let b1 = s.splat(*w.add(1));
        for (a, regs) in odd.iter_mut().zip(xs) {
            *a = s.mul(b1, regs[1]);
        }
    }
    let first = if split { 2 } else { 1 };
    for c in first..N {
        let b = s.splat(*w.add(c));
        let acc = if split && c % 2 == 1 {
            &mut odd
        } else {
            &mut even
        };
        for (a, regs) in acc.iter_mut().zip(xs) {
            *a = s.fma(b, regs[c], *a);
        }
    }
    for ((e, o), d) in even.iter().zip(&odd).zip(dst) {
        s.store(d.add(at), if split { s.add(*e, *o) } else { *e });
    }
}
