//! Phase 2 of the int8 conv: the look-ups of one table for every output channel of its
//! group, one band. Per tap, one i16 vector load + add covers 2·LANES output lanes; the i16
//! sums are flushed to i32 (and at the end converted to f32 outputs) as [`Step`] says.
//!
//! Two bodies, generic over the level (as the f32 family's, `conv/lookup.rs`):
//! - "unaligned": each tap's run is loaded at its row offset + column offset.
//! - "aligned" (levels where a misaligned load costs about two aligned ones): one set of
//!   sums per column offset j, every run loaded from its row offset (a multiple of
//!   min(pw, 32) lanes), and the sets shifted into place once per block:
//!   `sum[q] = Σ_j set_j[q + j]`. Blocks hold whole rows, so the lanes a valid output
//!   reads (c + j < pw) are in the block.
//!
//! The scalar twin stages its sums in i16 exactly as the vector levels do (wrapping adds,
//! the same flushes), so a flush schedule that let an i16 sum overflow would show at every
//! level, and every level returns the same bits for every valid output lane.

use crate::isa::Isa;
use crate::simd::{Kernel, Simd, Vectorized};

/// How a pass treats its accumulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// The i16 sums start from 0 (else from `acc16`).
    pub fresh: bool,
    pub end: End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Store the i16 sums.
    Keep,
    /// Add the i16 sums into the i32 sums (`first`: store them instead).
    Flush { first: bool },
    /// out = (bias + B) + s·(i32 sums (if `has32`) + i16 sums).
    Final { has32: bool },
}

/// The look-ups of one table for every output channel of its group, one band.
pub(crate) struct Pass<'a> {
    /// Layout (s², K_c, row_stride).
    pub table: &'a [i16],
    /// (C_t/groups)·J + 1 bounds into `taps`: list t_local·J + shift holds the row offsets of
    /// channel t_local's taps with that column offset.
    pub starts: &'a [u32],
    /// J: lists per channel, one per column offset (J ≥ 2 only with aligned rows).
    pub shifts: usize,
    /// pw: lanes per output row.
    pub row_pitch: usize,
    pub taps: &'a [u32],
    /// Layout (C_t, Qv) each; channel t0 + t_local is the pass's channel t_local.
    pub acc16: &'a mut [i16],
    pub acc32: &'a mut [i32],
    pub out: &'a mut [f32],
    /// Layout (Qv).
    pub boxsum: &'a [f32],
    /// The group's biases, Layout (C_t/groups).
    pub bias: &'a [f32],
    pub t0: usize,
    /// Qv: lanes per channel (a multiple of 32).
    pub lanes: usize,
    pub scale: f32,
    pub step: Step,
}

impl<'a> Pass<'a> {
    pub fn channels(&self) -> usize {
        (self.starts.len() - 1) / self.shifts
    }

    /// Channel t_local's taps with column offset `shift` (row offsets).
    fn list(&self, t_local: usize, shift: usize) -> &'a [u32] {
        let l = t_local * self.shifts + shift;
        &self.taps[self.starts[l] as usize..self.starts[l + 1] as usize]
    }

    /// Whether the buffers hold every lane of every channel of the pass and the table every
    /// tap's lanes (the vector kernels rely on it; taps were checked at construction).
    fn is_consistent(&self) -> bool {
        let end_t = self.t0 + self.channels();
        self.lanes.is_multiple_of(super::LANES)
            && self.shifts >= 1
            && (self.starts.len() - 1).is_multiple_of(self.shifts)
            && self.boxsum.len() >= self.lanes
            && self.acc16.len() >= end_t * self.lanes
            && self.acc32.len() >= end_t * self.lanes
            && self.out.len() >= end_t * self.lanes
            && self.bias.len() >= self.channels()
    }
}

impl Kernel for Pass<'_> {
    /// Lane by lane, with safe indexing: i16 sums over the taps (wrapping, as the vector
    /// adds), then the step's end.
    fn scalar(self) {
        assert!(self.is_consistent(), "int8 look-up pass operands");
        for t_local in 0..self.channels() {
            let base = (self.t0 + t_local) * self.lanes;
            let lists: Vec<&[u32]> = (0..self.shifts).map(|j| self.list(t_local, j)).collect();
            for q in 0..self.lanes {
                let mut sum = if self.step.fresh {
                    0i16
                } else {
                    self.acc16[base + q]
                };
                for (shift, list) in lists.iter().enumerate() {
                    for &row in *list {
                        sum = sum.wrapping_add(self.table[row as usize + shift + q]);
                    }
                }
                match self.step.end {
                    End::Keep => self.acc16[base + q] = sum,
                    End::Flush { first } => {
                        let before = if first { 0 } else { self.acc32[base + q] };
                        self.acc32[base + q] = before + i32::from(sum);
                    }
                    End::Final { has32 } => {
                        let wide = i32::from(sum) + if has32 { self.acc32[base + q] } else { 0 };
                        let offset = self.bias[t_local] + self.boxsum[q];
                        self.out[base + q] = offset + self.scale * wide as f32;
                    }
                }
            }
        }
    }
}

/// Most i16 sum vectors per block: all registers but 4 (loads, constants), at most 16.
const MAX_VECS: usize = 16;
/// Most sum vectors per set of an aligned block, and registers in all (sets × vectors; the
/// level may allow fewer: all but 4 of its registers).
const ALIGNED_MAX_VECS: usize = 8;
const ALIGNED_MAX_REGS: usize = 28;

impl Vectorized for Pass<'_> {
    type Output = ();

    /// A register block of output lanes at a time, every output channel of the group per
    /// block (the block's table columns stay in cache).
    #[inline(always)]
    fn simd<S: Simd>(mut self, s: S) {
        assert!(self.is_consistent(), "int8 look-up pass operands");
        let vecs = self.lanes / (2 * S::LANES);
        let row_vecs = row_vecs::<S>(self.row_pitch);
        let aligned_vecs = aligned_block_vecs::<S>(self.shifts, self.row_pitch);
        let mut v0 = 0;
        if aligned_vecs > 0 {
            for n in balanced(vecs / row_vecs, aligned_vecs / row_vecs) {
                let block = Block {
                    pass: &mut self,
                    v0,
                };
                dispatch_aligned(s, block, n * row_vecs);
                v0 += n * row_vecs;
            }
        } else {
            for n in balanced(vecs, MAX_VECS.min(S::REGISTERS - 4)) {
                dispatch(
                    s,
                    Block {
                        pass: &mut self,
                        v0,
                    },
                    n,
                );
                v0 += n;
            }
        }
    }
}

/// i16 vectors per output row at level S (1 where a vector holds several rows).
#[inline(always)]
fn row_vecs<S: Simd>(row_pitch: usize) -> usize {
    (row_pitch / (2 * S::LANES)).max(1)
}

/// Vectors per set of the aligned body's blocks at level S for J = `shifts` (≥ 2 only with
/// aligned rows) and rows of `row_pitch` lanes: whole rows (a row holds whole vectors or a
/// vector whole rows) within the registers; 0 where the aligned body does not apply.
#[inline(always)]
fn aligned_block_vecs<S: Simd>(shifts: usize, row_pitch: usize) -> usize {
    let wide = 2 * S::LANES;
    let tiles = row_pitch.is_multiple_of(wide) || wide.is_multiple_of(row_pitch);
    if !S::PREFERS_ALIGNED_LOADS || !(2..=5).contains(&shifts) || !tiles {
        return 0;
    }
    let row_vecs = row_vecs::<S>(row_pitch);
    (ALIGNED_MAX_REGS.min(S::REGISTERS - 4) / shifts).min(ALIGNED_MAX_VECS) / row_vecs * row_vecs
}

/// [`aligned_block_vecs`] at `isa` (available on this CPU; 0 for the scalar twin), for plans.
pub(crate) fn aligned_block_vecs_at(isa: Isa, shifts: usize, row_pitch: usize) -> usize {
    struct Query(usize, usize);
    impl Vectorized for Query {
        type Output = usize;
        fn simd<S: Simd>(self, _: S) -> usize {
            aligned_block_vecs::<S>(self.0, self.1)
        }
    }
    impl Kernel for Query {
        fn scalar(self) -> usize {
            0
        }
    }
    crate::simd::run(isa, Query(shifts, row_pitch))
}

/// `units` cut into the fewest blocks of at most `max` each, sizes differing by at most 1.
fn balanced(units: usize, max: usize) -> impl Iterator<Item = usize> {
    let blocks = units.div_ceil(max);
    let (base, extra) = (units / blocks.max(1), units % blocks.max(1));
    (0..blocks).map(move |b| base + usize::from(b < extra))
}

/// Calls the unaligned block kernel of V = `vecs` vectors.
#[inline(always)]
fn dispatch<S: Simd>(s: S, block: Block, vecs: usize) {
    macro_rules! by_vecs {
        ($($v:literal),*) => {
            match vecs {
                $($v => s.vectorize(Unaligned::<$v>(block)),)*
                _ => unreachable!("blocks hold 1..={MAX_VECS} vectors"),
            }
        };
    }
    by_vecs!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
}

/// Calls the aligned block kernel of V = `vecs` vectors per set and J = the pass's shifts.
#[inline(always)]
fn dispatch_aligned<S: Simd>(s: S, block: Block, vecs: usize) {
    macro_rules! by_size {
        ($(($v:literal, $j:literal)),*) => {
            match (vecs, block.pass.shifts) {
                $(($v, $j) => s.vectorize(Aligned::<$v, $j>(block)),)*
                (v, j) => unreachable!("no {v}×{j} aligned block kernel"),
            }
        };
    }
    by_size!(
        (1, 2),
        (2, 2),
        (3, 2),
        (4, 2),
        (5, 2),
        (6, 2),
        (7, 2),
        (8, 2),
        (1, 3),
        (2, 3),
        (3, 3),
        (4, 3),
        (5, 3),
        (6, 3),
        (7, 3),
        (8, 3),
        (1, 4),
        (2, 4),
        (3, 4),
        (4, 4),
        (5, 4),
        (6, 4),
        (7, 4),
        (1, 5),
        (2, 5),
        (3, 5),
        (4, 5),
        (5, 5)
    )
}

const _: () = assert!(
    MAX_VECS == 16 && ALIGNED_MAX_VECS == 8,
    "extend the dispatch tables"
);

/// Lanes 2·LANES·v0 .. of every output channel of a pass: a register block's place.
struct Block<'a, 'p> {
    pass: &'a mut Pass<'p>,
    v0: usize,
}

/// V i16 vectors of every output channel, each tap's run loaded at row + shift.
struct Unaligned<'a, 'p, const V: usize>(Block<'a, 'p>);

impl<const V: usize> Vectorized for Unaligned<'_, '_, V> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let Block { pass, v0 } = self.0;
        let wide = 2 * S::LANES;
        // SAFETY (all pointer arithmetic): v0 + V ≤ Qv / (2·LANES), so table loads end at
        // row + shift + Qv ≤ table length (checked per tap and every shift < J at
        // construction); the lists are well-formed and `starts` has channels·J + 1 entries;
        // `finish` as documented there.
        unsafe {
            let table = pass.table.as_ptr().add(v0 * wide);
            for t_local in 0..pass.channels() {
                let mut a = start::<S, V>(s, pass, t_local, v0);
                for shift in 0..pass.shifts {
                    add_list::<S, V>(
                        s,
                        pass,
                        t_local * pass.shifts + shift,
                        &mut a,
                        table.add(shift),
                    );
                }
                finish::<S, V>(s, pass, t_local, v0, &a);
            }
        }
    }
}

/// V i16 vectors of every output channel (whole rows), one set of sums per column offset
/// (J = shifts), every run loaded from its row offset.
struct Aligned<'a, 'p, const V: usize, const J: usize>(Block<'a, 'p>);

impl<const V: usize, const J: usize> Vectorized for Aligned<'_, '_, V, J> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let Block { pass, v0 } = self.0;
        let wide = 2 * S::LANES;
        // SAFETY: as in `Unaligned` (here at shift 0, so every load ends before row + Qv).
        unsafe {
            let table = pass.table.as_ptr().add(v0 * wide);
            for t_local in 0..pass.channels() {
                let mut sets = [[s.zero_i16(); V]; J];
                for (shift, set) in sets.iter_mut().enumerate() {
                    add_list::<S, V>(s, pass, t_local * J + shift, set, table);
                }
                let mut a = start::<S, V>(s, pass, t_local, v0);
                for (v, reg) in a.iter_mut().enumerate() {
                    *reg = s.add_i16(*reg, sets[0][v]);
                    for (shift, set) in sets.iter().enumerate().skip(1) {
                        // The block ends at a row end: lanes shifted in from beyond it only
                        // reach outputs past W_t, which are discarded.
                        let next = if v + 1 < V { set[v + 1] } else { s.zero_i16() };
                        *reg = s.add_i16(*reg, s.shift_down_i16(set[v], next, shift));
                    }
                }
                finish::<S, V>(s, pass, t_local, v0, &a);
            }
        }
    }
}

/// Every run of list `list` for a block: `a[v] += T[base + row + 2·LANES·v ..][..2·LANES]`
/// for each row offset in the list.
///
/// # Safety
/// `list` < channels·J, and `base` + every row of the list + V·2·LANES within the table (the
/// callers' block bounds).
#[inline(always)]
unsafe fn add_list<S: Simd, const V: usize>(
    s: S,
    pass: &Pass,
    list: usize,
    a: &mut [S::I16; V],
    base: *const i16,
) {
    let begin = *pass.starts.get_unchecked(list) as usize;
    let end = *pass.starts.get_unchecked(list + 1) as usize;
    for &row in pass.taps.get_unchecked(begin..end) {
        add_run::<S, V>(s, a, base.add(row as usize));
    }
}

/// `a[v] += T[src + 2·LANES·v ..][..2·LANES]`: one tap's run for a block.
///
/// # Safety
/// The caller's block bounds.
#[inline(always)]
unsafe fn add_run<S: Simd, const V: usize>(s: S, a: &mut [S::I16; V], src: *const i16) {
    for (v, reg) in a.iter_mut().enumerate() {
        *reg = s.add_i16(*reg, s.load_i16(src.add(v * 2 * S::LANES)));
    }
}

/// The block's i16 sums before this pass: 0 or the stored ones.
///
/// # Safety
/// (t0 + t_local + 1)·Qv ≤ acc16 length and v0 + V ≤ Qv / (2·LANES) (`is_consistent`).
#[inline(always)]
unsafe fn start<S: Simd, const V: usize>(
    s: S,
    pass: &Pass,
    t_local: usize,
    v0: usize,
) -> [S::I16; V] {
    let wide = 2 * S::LANES;
    let mut a = [s.zero_i16(); V];
    if !pass.step.fresh {
        let acc16 = pass
            .acc16
            .as_ptr()
            .add((pass.t0 + t_local) * pass.lanes + v0 * wide);
        for (v, reg) in a.iter_mut().enumerate() {
            *reg = s.load_i16(acc16.add(v * wide));
        }
    }
    a
}

/// The step's end for the block's sums `a`: store them, flush them into the i32 sums, or
/// write the outputs.
///
/// # Safety
/// Accumulator, output and box-sum accesses end at (t0 + t_local + 1)·Qv ≤ their lengths
/// and v0 + V ≤ Qv / (2·LANES) (`is_consistent`, asserted by `Pass::simd`); t_local <
/// channels ≤ bias length.
#[inline(always)]
unsafe fn finish<S: Simd, const V: usize>(
    s: S,
    pass: &mut Pass,
    t_local: usize,
    v0: usize,
    a: &[S::I16; V],
) {
    let wide = 2 * S::LANES;
    let base = (pass.t0 + t_local) * pass.lanes + v0 * wide;
    match pass.step.end {
        End::Keep => {
            let acc16 = pass.acc16.as_mut_ptr().add(base);
            for (v, reg) in a.iter().enumerate() {
                s.store_i16(acc16.add(v * wide), *reg);
            }
        }
        End::Flush { first } => {
            let acc32 = pass.acc32.as_mut_ptr().add(base);
            for (v, reg) in a.iter().enumerate() {
                let (lo, hi) = s.widen_i16(*reg);
                for (half, sum) in [(0, lo), (S::LANES, hi)] {
                    let dst = acc32.add(v * wide + half);
                    let sum = if first {
                        sum
                    } else {
                        s.add_i32(sum, s.load_i32(dst))
                    };
                    s.store_i32(dst, sum);
                }
            }
        }
        End::Final { has32 } => {
            let acc32 = pass.acc32.as_ptr().add(base);
            let out = pass.out.as_mut_ptr().add(base);
            let boxsum = pass.boxsum.as_ptr().add(v0 * wide);
            let bias = s.splat(*pass.bias.get_unchecked(t_local));
            let scale = s.splat(pass.scale);
            for (v, reg) in a.iter().enumerate() {
                let (lo, hi) = s.widen_i16(*reg);
                for (half, sum) in [(0, lo), (S::LANES, hi)] {
                    let at = v * wide + half;
                    let sum = if has32 {
                        s.add_i32(sum, s.load_i32(acc32.add(at)))
                    } else {
                        sum
                    };
                    let offset = s.add(bias, s.load(boxsum.add(at)));
                    let y = s.add(offset, s.mul(scale, s.i32_to_f32(sum)));
                    s.store(out.add(at), y);
                }
            }
        }
    }
}
