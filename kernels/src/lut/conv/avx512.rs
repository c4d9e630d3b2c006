//! AVX-512 kernels of both phases.
//!
//! Look-ups: for one output channel, kernel tap and subspace the index is a scalar, and the
//! tap's contribution to a block of output rows is a run of the table per row: 16 look-ups per
//! load + add, accumulators in registers across all taps of the pass.
//!
//! Alignment: a tap with column offset o reads its table row from column o. Rather than load
//! at o (a misaligned 64-byte load, about twice the cost of an aligned one here), the "split"
//! kernel keeps one accumulator set per column offset, loads every table row aligned, and
//! shifts each set by its offset once per block (`valignd`) when it adds them up:
//! `y[c] = Σ_o acc_o[c + o]`.

use std::arch::x86_64::*;

use super::table::Rows;
use super::{blocks, Block, Pass};

/// f32 lanes per register.
const LANES: usize = 16;
/// Largest block of the unaligned kernel: vectors per row chunk, and registers in all.
const MAX_VECS: usize = 4;
const MAX_REGS: usize = 16;
/// Largest block of the split kernel: rows, and registers in all (shifts × rows × vectors).
const SPLIT_MAX_ROWS: usize = 6;
const SPLIT_MAX_REGS: usize = 28;

/// Runs `pass` a register block at a time, every output channel of the group per block (the
/// block's table rows stay in cache across channels).
///
/// # Safety
/// The CPU must have AVX-512F; `pass` must satisfy the construction-time invariants of
/// [`super::ConvLut::with_plan`] (well-formed lists, every tap + (R_b − 1)·row_stride +
/// pitch + shifts − 1 ≤ table length) and its accumulators must hold R_b · C_t · pitch floats.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_pass(pass: &mut Pass) {
    let vecs = pass.pitch / LANES;
    let split_rows = (SPLIT_MAX_REGS / (pass.shifts * vecs))
        .min(SPLIT_MAX_ROWS)
        .min(pass.block_rows);
    if matches!(pass.shifts, 2 | 3 | 5) && vecs <= 4 && split_rows > 0 {
        for block in blocks(pass.rows, vecs, vecs, split_rows * vecs, split_rows) {
            dispatch_split(pass, block);
        }
    } else {
        let vecs_per_row = pass.cols.div_ceil(LANES);
        for block in blocks(pass.rows, vecs_per_row, MAX_VECS, MAX_REGS, pass.block_rows) {
            dispatch(pass, block);
        }
    }
}

macro_rules! dispatch_table {
    ($pass:expr, $block:expr; $(($r:literal, $v:literal)),* $(,)?) => {
        match ($block.rows, $block.vecs) {
            $(($r, $v) => block_all::<$r, $v>($pass, $block),)*
            (rows, vecs) => unreachable!("no {rows}×{vecs} block kernel"),
        }
    };
}

macro_rules! dispatch_split_table {
    ($pass:expr, $block:expr; $(($r:literal, $v:literal, $j:literal)),* $(,)?) => {
        match ($block.rows, $block.vecs, $pass.shifts) {
            $(($r, $v, $j) => block_split::<$r, $v, $j>($pass, $block),)*
            (rows, vecs, shifts) => unreachable!("no {rows}×{vecs}×{shifts} split kernel"),
        }
    };
}

/// Calls the unaligned block kernel specialised for the block's size.
#[target_feature(enable = "avx512f")]
unsafe fn dispatch(pass: &mut Pass, block: Block) {
    dispatch_table!(pass, block;
        (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1),
        (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1), (16, 1),
        (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2), (8, 2),
        (1, 3), (2, 3), (3, 3), (4, 3), (5, 3),
        (1, 4), (2, 4), (3, 4), (4, 4),
    )
}

/// Calls the split kernel specialised for the block's rows, vectors per row and shifts.
#[target_feature(enable = "avx512f")]
unsafe fn dispatch_split(pass: &mut Pass, block: Block) {
    dispatch_split_table!(pass, block;
        (1, 1, 2), (2, 1, 2), (3, 1, 2), (4, 1, 2), (5, 1, 2), (6, 1, 2), (1, 2, 2), (2, 2, 2),
        (3, 2, 2), (4, 2, 2), (5, 2, 2), (6, 2, 2), (1, 3, 2), (2, 3, 2), (3, 3, 2), (4, 3, 2),
        (1, 4, 2), (2, 4, 2), (3, 4, 2), (1, 1, 3), (2, 1, 3), (3, 1, 3), (4, 1, 3), (5, 1, 3),
        (6, 1, 3), (1, 2, 3), (2, 2, 3), (3, 2, 3), (4, 2, 3), (1, 3, 3), (2, 3, 3), (3, 3, 3),
        (1, 4, 3), (2, 4, 3), (1, 1, 5), (2, 1, 5), (3, 1, 5), (4, 1, 5), (5, 1, 5), (1, 2, 5),
        (2, 2, 5), (1, 3, 5), (1, 4, 5),
    )
}

/// One R × V register block of every output channel of the pass, loading each tap's rows at
/// its column offset: `acc[row + r][t][vec + v] (+)= Σ_o Σ_taps(o)
/// T[tap + (row + r)·row_stride + o + 16·(vec + v) ..][..16]`.
#[target_feature(enable = "avx512f")]
unsafe fn block_all<const R: usize, const V: usize>(pass: &mut Pass, block: Block) {
    let (row_stride, acc_row_stride) = (pass.row_stride, pass.acc_row_stride);
    // SAFETY (all pointer arithmetic below): rows row + r < rows ≤ R_b and vectors
    // (vec + v + 1)·16 ≤ pitch, so every table load ends before tap + (R_b − 1)·row_stride +
    // pitch + shifts − 1 ≤ table length (checked for every tap by `ConvLut::with_plan`);
    // every accumulator access is below R_b·C_t·pitch ≤ acc length (`ConvScratch::reserve`);
    // the lists are well-formed (checked at construction) and `pass.starts` has
    // channels·shifts + 1 entries.
    let table = pass
        .table
        .as_ptr()
        .add(block.row * row_stride + block.vec * LANES);
    let taps = pass.taps.as_ptr();
    let mut acc = pass
        .acc
        .as_mut_ptr()
        .add(pass.acc_offset(block.row, 0) + block.vec * LANES);
    let mut list = 0;
    for t_local in 0..pass.channels() {
        let mut a = [[_mm512_setzero_ps(); V]; R];
        if pass.first {
            a = [[_mm512_set1_ps(*pass.bias.get_unchecked(t_local)); V]; R];
        } else {
            for (r, row) in a.iter_mut().enumerate() {
                for (v, reg) in row.iter_mut().enumerate() {
                    *reg = _mm512_loadu_ps(acc.add(r * acc_row_stride + v * LANES));
                }
            }
        }
        for shift in 0..pass.shifts {
            let begin = *pass.starts.get_unchecked(list) as usize;
            let end = *pass.starts.get_unchecked(list + 1) as usize;
            for n in begin..end {
                add_tap::<R, V>(&mut a, table.add(*taps.add(n) as usize + shift), row_stride);
            }
            list += 1;
        }
        for (r, row) in a.iter().enumerate() {
            for (v, reg) in row.iter().enumerate() {
                _mm512_storeu_ps(acc.add(r * acc_row_stride + v * LANES), *reg);
            }
        }
        acc = acc.add(pass.pitch);
    }
}

/// One block of R whole rows (V = pitch/16 vectors each) of every output channel of the
/// pass, with one accumulator set per column offset (J = shifts) and aligned loads only.
#[target_feature(enable = "avx512f")]
unsafe fn block_split<const R: usize, const V: usize, const J: usize>(
    pass: &mut Pass,
    block: Block,
) {
    let (row_stride, acc_row_stride) = (pass.row_stride, pass.acc_row_stride);
    // SAFETY: as in `block_all` (here vec = 0 and V·16 = pitch): every table load ends before
    // tap + (R_b − 1)·row_stride + pitch, every accumulator access below R_b·C_t·pitch.
    let table = pass.table.as_ptr().add(block.row * row_stride);
    let taps = pass.taps.as_ptr();
    let mut acc = pass.acc.as_mut_ptr().add(pass.acc_offset(block.row, 0));
    let mut list = 0;
    for t_local in 0..pass.channels() {
        let mut sets = [[[_mm512_setzero_ps(); V]; R]; J];
        for set in sets.iter_mut() {
            let begin = *pass.starts.get_unchecked(list) as usize;
            let end = *pass.starts.get_unchecked(list + 1) as usize;
            for n in begin..end {
                add_tap::<R, V>(set, table.add(*taps.add(n) as usize), row_stride);
            }
            list += 1;
        }
        let bias = _mm512_set1_ps(*pass.bias.get_unchecked(t_local));
        for r in 0..R {
            for v in 0..V {
                let dst = acc.add(r * acc_row_stride + v * LANES);
                let mut y = if pass.first {
                    bias
                } else {
                    _mm512_loadu_ps(dst)
                };
                y = _mm512_add_ps(y, sets[0][r][v]);
                for (shift, set) in sets.iter().enumerate().skip(1) {
                    let next = if v + 1 < V {
                        set[r][v + 1]
                    } else {
                        _mm512_setzero_ps()
                    };
                    y = _mm512_add_ps(y, shift_down(set[r][v], next, shift));
                }
                _mm512_storeu_ps(dst, y);
            }
        }
        acc = acc.add(pass.pitch);
    }
}

/// Lanes `shift ..` of `lo` followed by the first lanes of `hi`: lane c of the result is
/// lane c + shift of the 32-lane vector (hi, lo).
#[target_feature(enable = "avx512f")]
unsafe fn shift_down(lo: __m512, hi: __m512, shift: usize) -> __m512 {
    let (lo, hi) = (_mm512_castps_si512(lo), _mm512_castps_si512(hi));
    let out = match shift {
        1 => _mm512_alignr_epi32::<1>(hi, lo),
        2 => _mm512_alignr_epi32::<2>(hi, lo),
        3 => _mm512_alignr_epi32::<3>(hi, lo),
        4 => _mm512_alignr_epi32::<4>(hi, lo),
        _ => unreachable!("shift {shift} > 4"),
    };
    _mm512_castsi512_ps(out)
}

/// `a[r][v] += T[src + r·row_stride + 16·v ..][..16]`: one tap's look-ups for a block.
#[target_feature(enable = "avx512f")]
unsafe fn add_tap<const R: usize, const V: usize>(
    a: &mut [[__m512; V]; R],
    src: *const f32,
    row_stride: usize,
) {
    for (r, row) in a.iter_mut().enumerate() {
        for (v, reg) in row.iter_mut().enumerate() {
            // SAFETY: the caller's block bounds (see `block_all`).
            *reg = _mm512_add_ps(*reg, _mm512_loadu_ps(src.add(r * row_stride + v * LANES)));
        }
    }
}

/// Consecutive table rows: `out[r] (codes × pitch) = cw (codes × dims) · x[r] (dims × pitch)`.
/// The work is cut into units of LANES columns of one row (x is contiguous across rows); UNITS
/// units at a time hold their 8 input channels in registers and share each broadcast
/// codeword value.
///
/// # Safety
/// The CPU must have AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
pub(super) unsafe fn table_rows(op: Rows, out: &mut [f32]) {
    assert!(
        op.is_consistent(out.len()) && op.pitch.is_multiple_of(LANES),
        "table rows operands"
    );
    for c0 in (0..op.dims).step_by(8) {
        let accumulate = c0 > 0;
        match (op.dims - c0).min(8) {
            1 => table_dims::<1>(op, c0, accumulate, out),
            2 => table_dims::<2>(op, c0, accumulate, out),
            3 => table_dims::<3>(op, c0, accumulate, out),
            4 => table_dims::<4>(op, c0, accumulate, out),
            5 => table_dims::<5>(op, c0, accumulate, out),
            6 => table_dims::<6>(op, c0, accumulate, out),
            7 => table_dims::<7>(op, c0, accumulate, out),
            _ => table_dims::<8>(op, c0, accumulate, out),
        }
    }
}

/// Channels c0 .. c0 + N of consecutive table rows, added to `out` if `accumulate`.
#[target_feature(enable = "avx512f,fma")]
unsafe fn table_dims<const N: usize>(op: Rows, c0: usize, accumulate: bool, out: &mut [f32]) {
    let vecs = op.pitch / LANES;
    let units = op.rows * vecs;
    let mut u = 0;
    // Units at a time: few channels leave registers for more units sharing each broadcast.
    let step = if N <= 4 { 4 } else { 2 };
    while u + step <= units {
        if N <= 4 {
            table_units::<N, 4>(op, c0, accumulate, u, out);
        } else {
            table_units::<N, 2>(op, c0, accumulate, u, out);
        }
        u += step;
    }
    while u < units {
        table_units::<N, 1>(op, c0, accumulate, u, out);
        u += 1;
    }
}

/// U units from unit `u0` on, channels c0 .. c0 + N.
#[target_feature(enable = "avx512f,fma")]
unsafe fn table_units<const N: usize, const U: usize>(
    op: Rows,
    c0: usize,
    accumulate: bool,
    u0: usize,
    out: &mut [f32],
) {
    let vecs = op.pitch / LANES;
    // SAFETY: `table_rows` asserted `op` is consistent: unit u (row u / vecs, vector u % vecs)
    // reads x[c·ldx + u·LANES ..][..LANES] for c < dims and writes
    // out[(u / vecs)·row_stride + code·pitch + (u % vecs)·LANES ..][..LANES] for code < codes,
    // all inside the slices; c0 + N ≤ dims.
    let x = op.x.as_ptr().add(c0 * op.ldx);
    let cw = op.cw.as_ptr().add(c0);
    let mut xs = [[_mm512_setzero_ps(); N]; U];
    let mut dst = [out.as_mut_ptr(); U];
    for (k, (regs, d)) in xs.iter_mut().zip(dst.iter_mut()).enumerate() {
        let u = u0 + k;
        for (c, reg) in regs.iter_mut().enumerate() {
            *reg = _mm512_loadu_ps(x.add(c * op.ldx + u * LANES));
        }
        *d = d.add((u / vecs) * op.row_stride + (u % vecs) * LANES);
    }
    for code in 0..op.codes {
        let w = cw.add(code * op.d);
        // Two partial sums per unit (even and odd channels) halve the FMA dependency chain.
        let mut even = [_mm512_setzero_ps(); U];
        let mut odd = [_mm512_setzero_ps(); U];
        if accumulate {
            for (a, d) in even.iter_mut().zip(&dst) {
                *a = _mm512_loadu_ps(d.add(code * op.pitch));
            }
        }
        for c in 0..N {
            let b = _mm512_set1_ps(*w.add(c));
            let acc = if c % 2 == 0 { &mut even } else { &mut odd };
            for (a, regs) in acc.iter_mut().zip(&xs) {
                *a = _mm512_fmadd_ps(b, regs[c], *a);
            }
        }
        for ((e, o), d) in even.iter().zip(&odd).zip(&dst) {
            _mm512_storeu_ps(d.add(code * op.pitch), _mm512_add_ps(*e, *o));
        }
    }
}

/// `out[x] = src[s·x]` for x < out.len(), 16 at a time with masked gathers.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn copy_strided(src: &[f32], s: usize, out: &mut [f32]) {
    let n = out.len();
    if n == 0 {
        return;
    }
    assert!(
        src.len() > s * (n - 1) && s * LANES <= i32::MAX as usize,
        "strided copy operands"
    );
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(s as i32));
    for x in (0..n).step_by(LANES) {
        let count = (n - x).min(LANES);
        let mask = ((1u32 << count) - 1) as __mmask16;
        // SAFETY: lane l < count reads src[s·(x + l)], s·(x + l) ≤ s·(n − 1) < src.len()
        // (asserted above), and writes out[x + l], x + l < n; masked-off lanes touch nothing.
        let v = _mm512_mask_i32gather_ps::<4>(
            _mm512_setzero_ps(),
            mask,
            offsets,
            src.as_ptr().add(s * x),
        );
        _mm512_mask_storeu_ps(out.as_mut_ptr().add(x), mask, v);
    }
}
