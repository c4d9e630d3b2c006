//! Phase 2 of the int8 conv: the look-ups of one table for every output channel of its
//! group, one band. Per tap, one i16 vector load + add covers 2·LANES output lanes; the i16
//! sums are flushed to i32 (and at the end converted to f32 outputs) as [`Step`] says.
//!
//! The scalar twin stages its sums in i16 exactly as the vector levels do (wrapping adds,
//! the same flushes), so a flush schedule that let an i16 sum overflow would show at every
//! level, and every level returns the same bits.

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
    /// C_t/groups + 1 bounds into `taps`.
    pub starts: &'a [u32],
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

impl Pass<'_> {
    pub fn channels(&self) -> usize {
        self.starts.len() - 1
    }

    /// Whether the buffers hold every lane of every channel of the pass and the table every
    /// tap's lanes (the vector kernels rely on it; taps were checked at construction).
    fn is_consistent(&self) -> bool {
        let end_t = self.t0 + self.channels();
        self.lanes.is_multiple_of(super::LANES)
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
        let (taps, starts) = (self.taps, self.starts);
        for t_local in 0..self.channels() {
            let list = &taps[starts[t_local] as usize..starts[t_local + 1] as usize];
            let base = (self.t0 + t_local) * self.lanes;
            for q in 0..self.lanes {
                let mut sum = if self.step.fresh {
                    0i16
                } else {
                    self.acc16[base + q]
                };
                for &tap in list {
                    sum = sum.wrapping_add(self.table[tap as usize + q]);
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

impl Vectorized for Pass<'_> {
    type Output = ();

    /// A register block of output lanes at a time, every output channel of the group per
    /// block (the block's table columns stay in cache).
    #[inline(always)]
    fn simd<S: Simd>(mut self, s: S) {
        assert!(self.is_consistent(), "int8 look-up pass operands");
        let vecs = self.lanes / (2 * S::LANES);
        let max = MAX_VECS.min(S::REGISTERS - 4);
        let blocks = vecs.div_ceil(max);
        let (base, extra) = (vecs / blocks, vecs % blocks);
        let mut v0 = 0;
        for b in 0..blocks {
            let n = base + usize::from(b < extra);
            let pass = &mut self;
            match n {
                1 => s.vectorize(Block::<1> { pass, v0 }),
                2 => s.vectorize(Block::<2> { pass, v0 }),
                3 => s.vectorize(Block::<3> { pass, v0 }),
                4 => s.vectorize(Block::<4> { pass, v0 }),
                5 => s.vectorize(Block::<5> { pass, v0 }),
                6 => s.vectorize(Block::<6> { pass, v0 }),
                7 => s.vectorize(Block::<7> { pass, v0 }),
                8 => s.vectorize(Block::<8> { pass, v0 }),
                9 => s.vectorize(Block::<9> { pass, v0 }),
                10 => s.vectorize(Block::<10> { pass, v0 }),
                11 => s.vectorize(Block::<11> { pass, v0 }),
                12 => s.vectorize(Block::<12> { pass, v0 }),
                13 => s.vectorize(Block::<13> { pass, v0 }),
                14 => s.vectorize(Block::<14> { pass, v0 }),
                15 => s.vectorize(Block::<15> { pass, v0 }),
                16 => s.vectorize(Block::<16> { pass, v0 }),
                _ => unreachable!("blocks hold 1..={MAX_VECS} vectors"),
            }
            v0 += n;
        }
    }
}

const _: () = assert!(MAX_VECS == 16, "extend the match in Pass::simd");

/// V i16 vectors (lanes 2·LANES·v0 .. 2·LANES·(v0 + V)) of every output channel of a pass.
struct Block<'a, 'p, const V: usize> {
    pass: &'a mut Pass<'p>,
    v0: usize,
}

impl<const V: usize> Vectorized for Block<'_, '_, V> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let (pass, wide) = (self.pass, 2 * S::LANES);
        let step = pass.step;
        let scale = s.splat(pass.scale);
        // SAFETY (all pointer arithmetic): v0 + V ≤ Qv / (2·LANES), so table loads end at
        // tap + Qv ≤ table length (checked per tap at construction); accumulator, output and
        // box-sum accesses end at (t0 + t_local + 1)·Qv ≤ their lengths (`is_consistent`,
        // asserted by the caller); the lists are well-formed and `starts` has channels + 1
        // entries.
        unsafe {
            let table = pass.table.as_ptr().add(self.v0 * wide);
            let taps = pass.taps.as_ptr();
            for t_local in 0..pass.channels() {
                let base = (pass.t0 + t_local) * pass.lanes + self.v0 * wide;
                let acc16 = pass.acc16.as_mut_ptr().add(base);
                let mut a = [s.zero_i16(); V];
                if !step.fresh {
                    for (v, reg) in a.iter_mut().enumerate() {
                        *reg = s.load_i16(acc16.add(v * wide));
                    }
                }
                let begin = *pass.starts.get_unchecked(t_local) as usize;
                let end = *pass.starts.get_unchecked(t_local + 1) as usize;
                for n in begin..end {
                    let src = table.add(*taps.add(n) as usize);
                    for (v, reg) in a.iter_mut().enumerate() {
                        *reg = s.add_i16(*reg, s.load_i16(src.add(v * wide)));
                    }
                }
                match step.end {
                    End::Keep => {
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
                        let boxsum = pass.boxsum.as_ptr().add(self.v0 * wide);
                        let bias = s.splat(*pass.bias.get_unchecked(t_local));
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
        }
    }
}
