//! Phase 2, the look-ups: for one output channel, kernel tap and subspace the index is a
//! scalar, and the tap's contribution to a block of output rows is a run of the table per
//! row: one load + add per LANES look-ups, sums in registers across all taps of the pass,
//! every output channel of the group per register block (the block's table rows stay in
//! cache across channels).
//!
//! Two bodies, generic over the level:
//! - "unaligned": each tap's rows are loaded at its column offset.
//! - "split" (levels where a misaligned load costs about two aligned ones): one set of sums
//!   per column offset o, every table row loaded aligned, and the sets shifted into place
//!   once per block when they are added up: `y[c] = Σ_o acc_o[c + o]`.
//!
//! The scalar twin walks the same lists one output at a time with safe indexing.

use super::{blocks, Block, Pass};
use crate::simd::{Simd, Vectorized};

/// Most vectors per row chunk of an unaligned block.
const MAX_VECS: usize = 4;
/// Most sum registers of an unaligned block (the level may allow fewer, see [`max_regs`]).
const MAX_REGS: usize = 16;
/// Largest split block: rows, and registers in all (shifts × rows × vectors; the level may
/// allow fewer: all but 4 of its registers).
const SPLIT_MAX_ROWS: usize = 6;
const SPLIT_MAX_REGS: usize = 28;

/// Sum registers an unaligned block may use at level S: all but 4 (loads, the add's
/// operand), at most [`MAX_REGS`] (AVX2: 12, AVX-512 and NEON: 16).
fn max_regs<S: Simd>() -> usize {
    MAX_REGS.min(S::REGISTERS - 4)
}

/// For every output channel of the group and band row r: acc[r][c] (+)= Σ_taps
/// T[tap + r·row_stride + shift + c] over the W_t valid columns.
pub(super) fn run_pass_scalar(pass: &mut Pass) {
    for t_local in 0..pass.channels() {
        for r in 0..pass.rows {
            let row_start = pass.acc_offset(r, t_local);
            if pass.first {
                pass.acc[row_start..row_start + pass.cols].fill(pass.bias[t_local]);
            }
            for shift in 0..pass.shifts {
                let list = t_local * pass.shifts + shift;
                let taps = &pass.taps[pass.starts[list] as usize..pass.starts[list + 1] as usize];
                for &tap in taps {
                    let src_start = tap as usize + r * pass.row_stride + shift;
                    let src = &pass.table[src_start..src_start + pass.cols];
                    let row = &mut pass.acc[row_start..row_start + pass.cols];
                    for (a, v) in row.iter_mut().zip(src) {
                        *a += v;
                    }
                }
            }
        }
    }
}

/// Runs `pass` a register block at a time at level S.
///
/// Relies on the construction-time invariants of [`super::ConvLut::with_plan`]
/// (well-formed lists, every tap + (R_b − 1)·row_stride + pitch + shifts − 1 ≤ table
/// length), which `Pass` carries unchanged, and on accumulators of R_b · C_t · pitch floats
/// (checked here).
#[inline(always)]
pub(super) fn run_pass<S: Simd>(s: S, pass: &mut Pass) {
    assert!(pass.pitch.is_multiple_of(S::LANES) && pass.acc.len() >= pass.acc_len());
    let vecs = pass.pitch / S::LANES;
    let split_rows = (SPLIT_MAX_REGS.min(S::REGISTERS - 4) / (pass.shifts * vecs))
        .min(SPLIT_MAX_ROWS)
        .min(pass.block_rows);
    let split =
        S::PREFERS_ALIGNED_LOADS && matches!(pass.shifts, 2 | 3 | 5) && vecs <= 4 && split_rows > 0;
    if split {
        for block in blocks(pass.rows, vecs, vecs, split_rows * vecs, split_rows) {
            dispatch_split(s, pass, block);
        }
    } else {
        let vecs_per_row = pass.cols.div_ceil(S::LANES);
        for block in blocks(
            pass.rows,
            vecs_per_row,
            MAX_VECS,
            max_regs::<S>(),
            pass.block_rows,
        ) {
            dispatch(s, pass, block);
        }
    }
}

macro_rules! dispatch_table {
    ($s:expr, $pass:expr, $block:expr; $(($r:literal, $v:literal)),* $(,)?) => {
        match ($block.rows, $block.vecs) {
            $(($r, $v) => $s.vectorize(BlockAll::<$r, $v> { pass: $pass, block: $block }),)*
            (rows, vecs) => unreachable!("no {rows}×{vecs} block kernel"),
        }
    };
}

macro_rules! dispatch_split_table {
    ($s:expr, $pass:expr, $block:expr; $(($r:literal, $v:literal, $j:literal)),* $(,)?) => {
        match ($block.rows, $block.vecs, $pass.shifts) {
            $(($r, $v, $j) => {
                $s.vectorize(BlockSplit::<$r, $v, $j> { pass: $pass, block: $block })
            })*
            (rows, vecs, shifts) => unreachable!("no {rows}×{vecs}×{shifts} split kernel"),
        }
    };
}

/// Calls the unaligned block kernel specialised for the block's size (every size
/// [`blocks`] can make within [`MAX_VECS`] and [`MAX_REGS`]).
#[inline(always)]
fn dispatch<S: Simd>(s: S, pass: &mut Pass, block: Block) {
    dispatch_table!(s, pass, block;
        (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1),
        (9, 1), (10, 1), (11, 1), (12, 1), (13, 1), (14, 1), (15, 1), (16, 1),
        (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2), (8, 2),
        (1, 3), (2, 3), (3, 3), (4, 3), (5, 3),
        (1, 4), (2, 4), (3, 4), (4, 4),
    )
}

/// Calls the split kernel specialised for the block's rows, vectors per row and shifts.
#[inline(always)]
fn dispatch_split<S: Simd>(s: S, pass: &mut Pass, block: Block) {
    dispatch_split_table!(s, pass, block;
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
/// T[tap + (row + r)·row_stride + o + LANES·(vec + v) ..][..LANES]`.
struct BlockAll<'a, 'p, const R: usize, const V: usize> {
    pass: &'a mut Pass<'p>,
    block: Block,
}

impl<const R: usize, const V: usize> Vectorized for BlockAll<'_, '_, R, V> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        block_all::<S, R, V>(s, self.pass, self.block)
    }
}

#[inline(always)]
fn block_all<S: Simd, const R: usize, const V: usize>(s: S, pass: &mut Pass, block: Block) {
    let (row_stride, acc_row_stride, lanes) = (pass.row_stride, pass.acc_row_stride, S::LANES);
    // SAFETY (all pointer arithmetic below): rows row + r < rows ≤ R_b and vectors
    // (vec + v + 1)·LANES ≤ pitch, so every table load ends before tap + (R_b − 1)·row_stride
    // + pitch + shifts − 1 ≤ table length (checked for every tap by `ConvLut::with_plan`);
    // every accumulator access is below R_b·C_t·pitch ≤ acc length (asserted in `run_pass`);
    // the lists are well-formed (checked at construction) and `pass.starts` has
    // channels·shifts + 1 entries.
    unsafe {
        let table = pass
            .table
            .as_ptr()
            .add(block.row * row_stride + block.vec * lanes);
        let taps = pass.taps.as_ptr();
        let mut acc = pass
            .acc
            .as_mut_ptr()
            .add(pass.acc_offset(block.row, 0) + block.vec * lanes);
        let mut list = 0;
        for t_local in 0..pass.channels() {
            let mut a = [[s.zero(); V]; R];
            if pass.first {
                a = [[s.splat(*pass.bias.get_unchecked(t_local)); V]; R];
            } else {
                for (r, row) in a.iter_mut().enumerate() {
                    for (v, reg) in row.iter_mut().enumerate() {
                        *reg = s.load(acc.add(r * acc_row_stride + v * lanes));
                    }
                }
            }
            for shift in 0..pass.shifts {
                let begin = *pass.starts.get_unchecked(list) as usize;
                let end = *pass.starts.get_unchecked(list + 1) as usize;
                for n in begin..end {
                    let src = table.add(*taps.add(n) as usize + shift);
                    add_tap::<S, R, V>(s, &mut a, src, row_stride);
                }
                list += 1;
            }
            for (r, row) in a.iter().enumerate() {
                for (v, reg) in row.iter().enumerate() {
                    s.store(acc.add(r * acc_row_stride + v * lanes), *reg);
                }
            }
            acc = acc.add(pass.pitch);
        }
    }
}

/// One block of R whole rows (V = pitch/LANES vectors each) of every output channel of the
/// pass, with one accumulator set per column offset (J = shifts) and aligned loads only.
struct BlockSplit<'a, 'p, const R: usize, const V: usize, const J: usize> {
    pass: &'a mut Pass<'p>,
    block: Block,
}

impl<const R: usize, const V: usize, const J: usize> Vectorized for BlockSplit<'_, '_, R, V, J> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        block_split::<S, R, V, J>(s, self.pass, self.block)
    }
}

#[inline(always)]
fn block_split<S: Simd, const R: usize, const V: usize, const J: usize>(
    s: S,
    pass: &mut Pass,
    block: Block,
) {
    let (row_stride, acc_row_stride, lanes) = (pass.row_stride, pass.acc_row_stride, S::LANES);
    // SAFETY: as in `block_all` (here vec = 0 and V·LANES = pitch): every table load ends
    // before tap + (R_b − 1)·row_stride + pitch, every accumulator access below R_b·C_t·pitch.
    unsafe {
        let table = pass.table.as_ptr().add(block.row * row_stride);
        let taps = pass.taps.as_ptr();
        let mut acc = pass.acc.as_mut_ptr().add(pass.acc_offset(block.row, 0));
        let mut list = 0;
        for t_local in 0..pass.channels() {
            let mut sets = [[[s.zero(); V]; R]; J];
            for set in sets.iter_mut() {
                let begin = *pass.starts.get_unchecked(list) as usize;
                let end = *pass.starts.get_unchecked(list + 1) as usize;
                for n in begin..end {
                    add_tap::<S, R, V>(s, set, table.add(*taps.add(n) as usize), row_stride);
                }
                list += 1;
            }
            let bias = s.splat(*pass.bias.get_unchecked(t_local));
            for r in 0..R {
                for v in 0..V {
                    let dst = acc.add(r * acc_row_stride + v * lanes);
                    let mut y = if pass.first { bias } else { s.load(dst) };
                    y = s.add(y, sets[0][r][v]);
                    for (shift, set) in sets.iter().enumerate().skip(1) {
                        let next = if v + 1 < V { set[r][v + 1] } else { s.zero() };
                        y = s.add(y, s.shift_down(set[r][v], next, shift));
                    }
                    s.store(dst, y);
                }
            }
            acc = acc.add(pass.pitch);
        }
    }
}

/// `a[r][v] += T[src + r·row_stride + LANES·v ..][..LANES]`: one tap's look-ups for a block.
///
/// # Safety
/// The caller's block bounds (see `block_all`).
#[inline(always)]
unsafe fn add_tap<S: Simd, const R: usize, const V: usize>(
    s: S,
    a: &mut [[S::F32; V]; R],
    src: *const f32,
    row_stride: usize,
) {
    for (r, row) in a.iter_mut().enumerate() {
        for (v, reg) in row.iter_mut().enumerate() {
            *reg = s.add(*reg, s.load(src.add(r * row_stride + v * S::LANES)));
        }
    }
}
