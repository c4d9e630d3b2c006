//! "conv-lut-i8-avx512": the int8 conv kernel's table build and look-ups.
//!
//! Build: 32 positions at a time (two f32 registers), the FMA chain over the subspace's dims
//! in the scalar twin's order, `cvtps2dq` (round half to even) and one word permute packing
//! the two i32 vectors into 32 i16 lanes.
//!
//! Look-ups: a register block of up to [`MAX_VECS`] i16 vectors (32 output lanes each) per
//! output channel; one load + `vpaddw` per tap and vector, i.e. 32 look-ups per instruction
//! pair; the i16 sums are flushed to i32 (and at the end converted to f32 outputs) as
//! [`Step`] says.

use std::arch::x86_64::*;

use super::conv::{BuildOp, End, Pass, LANES};

/// Most i16 accumulator registers per block (of 32).
const MAX_VECS: usize = 16;

/// Builds one chunk of one band's table (see [`BuildOp`]).
///
/// # Safety
/// The CPU must have AVX-512 F/BW and FMA.
#[target_feature(enable = "avx512f,avx512bw,fma")]
pub(super) unsafe fn build(op: &BuildOp, table: &mut [i16]) {
    assert!(op.is_consistent(table.len()), "int8 table build operands");
    match op.dims {
        1 => build_dims::<1>(op, table),
        2 => build_dims::<2>(op, table),
        3 => build_dims::<3>(op, table),
        4 => build_dims::<4>(op, table),
        5 => build_dims::<5>(op, table),
        6 => build_dims::<6>(op, table),
        7 => build_dims::<7>(op, table),
        8 => build_dims::<8>(op, table),
        _ => build_any(op, table),
    }
}

/// The word indices that pack the low halves of two i32 vectors into one i16 vector.
#[target_feature(enable = "avx512f")]
unsafe fn pack_index() -> __m512i {
    let mut idx = [0i16; 32];
    for (l, v) in idx.iter_mut().enumerate() {
        *v = 2 * l as i16;
    }
    _mm512_loadu_si512(idx.as_ptr().cast())
}

/// clamp(round(a), −Q, Q) for 32 positions (a0: 0..16, a1: 16..32) as i16, stored at
/// `dst`; `q` holds Q in every lane.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_q(dst: *mut i16, a0: __m512, a1: __m512, pack: __m512i, q: __m512i) {
    let clamp = |v: __m512i| {
        _mm512_max_epi32(
            _mm512_min_epi32(v, q),
            _mm512_sub_epi32(_mm512_setzero_si512(), q),
        )
    };
    let (i0, i1) = (clamp(_mm512_cvtps_epi32(a0)), clamp(_mm512_cvtps_epi32(a1)));
    _mm512_storeu_si512(dst.cast(), _mm512_permutex2var_epi16(i0, pack, i1));
}

/// N dims held in registers across the chunk's codewords.
#[target_feature(enable = "avx512f,avx512bw,fma")]
unsafe fn build_dims<const N: usize>(op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let plane = g.phases * g.x_plane;
    let pack = pack_index();
    let q = _mm512_set1_epi32(op.q_max);
    // SAFETY (all accesses): `build` asserted `op.is_consistent`: channel0 + N ≤ C_s planes
    // in xpad, start + build_len ≤ x_plane (reads of x), (codes − 1)·d + N ≤ dq.len(),
    // every row (phase·K_c + code)·row_stride + build_len ≤ table_len ≤ table.len().
    let x = op.xpad.as_ptr().add(op.channel0 * plane + op.start);
    let dq = op.dq.as_ptr();
    for phase in 0..g.phases {
        let xp = x.add(phase * g.x_plane);
        let rows = table.as_mut_ptr().add(phase * g.chunk_k * g.row_stride);
        for pos in (0..g.build_len).step_by(LANES) {
            let mut xs = [[_mm512_setzero_ps(); 2]; N];
            for (u, reg) in xs.iter_mut().enumerate() {
                reg[0] = _mm512_loadu_ps(xp.add(u * plane + pos));
                reg[1] = _mm512_loadu_ps(xp.add(u * plane + pos + 16));
            }
            for code in 0..op.codes {
                let w = dq.add(code * op.d);
                let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                for (u, reg) in xs.iter().enumerate() {
                    let wu = _mm512_set1_ps(*w.add(u));
                    a0 = _mm512_fmadd_ps(reg[0], wu, a0);
                    a1 = _mm512_fmadd_ps(reg[1], wu, a1);
                }
                store_q(rows.add(code * g.row_stride + pos), a0, a1, pack, q);
            }
        }
    }
}

/// Any number of dims, read from memory in the chain.
#[target_feature(enable = "avx512f,avx512bw,fma")]
unsafe fn build_any(op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let plane = g.phases * g.x_plane;
    let pack = pack_index();
    let q = _mm512_set1_epi32(op.q_max);
    // SAFETY: as in `build_dims`, with dims in place of N.
    let x = op.xpad.as_ptr().add(op.channel0 * plane + op.start);
    for phase in 0..g.phases {
        let xp = x.add(phase * g.x_plane);
        let rows = table.as_mut_ptr().add(phase * g.chunk_k * g.row_stride);
        for code in 0..op.codes {
            let w = op.dq.as_ptr().add(code * op.d);
            for pos in (0..g.build_len).step_by(LANES) {
                let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                for u in 0..op.dims {
                    let wu = _mm512_set1_ps(*w.add(u));
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(u * plane + pos)), wu, a0);
                    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(u * plane + pos + 16)), wu, a1);
                }
                store_q(rows.add(code * g.row_stride + pos), a0, a1, pack, q);
            }
        }
    }
}

/// Runs the look-ups of one pass, a register block of output lanes at a time, every output
/// channel of the group per block (the block's table columns stay in cache).
///
/// # Safety
/// The CPU must have AVX-512 F/BW; `pass` must satisfy the construction-time invariants of
/// [`super::ConvLutI8::with_plan`] (well-formed lists, tap + Qv ≤ table length) and its
/// accumulator, output and box-sum buffers must hold C_t·Qv (Qv) elements.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn run_pass(mut pass: Pass) {
    let vecs = pass.lanes / LANES;
    assert!(pass.lanes.is_multiple_of(LANES) && pass.boxsum.len() >= pass.lanes);
    let end_t = pass.t0 + pass.channels();
    assert!(
        pass.acc16.len() >= end_t * pass.lanes
            && pass.acc32.len() >= end_t * pass.lanes
            && pass.out.len() >= end_t * pass.lanes
    );
    let blocks = vecs.div_ceil(MAX_VECS);
    let (base, extra) = (vecs / blocks, vecs % blocks);
    let mut v0 = 0;
    for b in 0..blocks {
        let n = base + usize::from(b < extra);
        match n {
            1 => block::<1>(&mut pass, v0),
            2 => block::<2>(&mut pass, v0),
            3 => block::<3>(&mut pass, v0),
            4 => block::<4>(&mut pass, v0),
            5 => block::<5>(&mut pass, v0),
            6 => block::<6>(&mut pass, v0),
            7 => block::<7>(&mut pass, v0),
            8 => block::<8>(&mut pass, v0),
            9 => block::<9>(&mut pass, v0),
            10 => block::<10>(&mut pass, v0),
            11 => block::<11>(&mut pass, v0),
            12 => block::<12>(&mut pass, v0),
            13 => block::<13>(&mut pass, v0),
            14 => block::<14>(&mut pass, v0),
            15 => block::<15>(&mut pass, v0),
            16 => block::<16>(&mut pass, v0),
            _ => unreachable!("blocks hold 1..={MAX_VECS} vectors"),
        }
        v0 += n;
    }
}

const _: () = assert!(MAX_VECS == 16, "extend the match in run_pass");

/// V vectors (lanes 32·v0 .. 32·(v0 + V)) of every output channel of the pass.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn block<const V: usize>(pass: &mut Pass, v0: usize) {
    // SAFETY (all pointer arithmetic): v0 + V ≤ Qv/32, so table loads end at tap + Qv ≤
    // table length (checked per tap at construction); accumulator, output and box-sum
    // accesses end at (t0 + t_local + 1)·Qv ≤ their lengths (asserted in `run_pass`); the
    // lists are well-formed and `starts` has channels + 1 entries.
    let table = pass.table.as_ptr().add(v0 * LANES);
    let taps = pass.taps.as_ptr();
    let step = pass.step;
    let scale = _mm512_set1_ps(pass.scale);
    for t_local in 0..pass.channels() {
        let base = (pass.t0 + t_local) * pass.lanes + v0 * LANES;
        let acc16 = pass.acc16.as_mut_ptr().add(base);
        let mut a = [_mm512_setzero_si512(); V];
        if !step.fresh {
            for (v, reg) in a.iter_mut().enumerate() {
                *reg = _mm512_loadu_si512(acc16.add(v * LANES).cast());
            }
        }
        let begin = *pass.starts.get_unchecked(t_local) as usize;
        let end = *pass.starts.get_unchecked(t_local + 1) as usize;
        for n in begin..end {
            let src = table.add(*taps.add(n) as usize);
            for (v, reg) in a.iter_mut().enumerate() {
                *reg = _mm512_add_epi16(*reg, _mm512_loadu_si512(src.add(v * LANES).cast()));
            }
        }
        match step.end {
            End::Keep => {
                for (v, reg) in a.iter().enumerate() {
                    _mm512_storeu_si512(acc16.add(v * LANES).cast(), *reg);
                }
            }
            End::Flush { first } => {
                let acc32 = pass.acc32.as_mut_ptr().add(base);
                for (v, reg) in a.iter().enumerate() {
                    let (lo, hi) = widen(*reg);
                    let dst = acc32.add(v * LANES);
                    let (lo, hi) = if first {
                        (lo, hi)
                    } else {
                        (
                            _mm512_add_epi32(lo, _mm512_loadu_si512(dst.cast())),
                            _mm512_add_epi32(hi, _mm512_loadu_si512(dst.add(16).cast())),
                        )
                    };
                    _mm512_storeu_si512(dst.cast(), lo);
                    _mm512_storeu_si512(dst.add(16).cast(), hi);
                }
            }
            End::Final { has32 } => {
                let acc32 = pass.acc32.as_ptr().add(base);
                let out = pass.out.as_mut_ptr().add(base);
                let boxsum = pass.boxsum.as_ptr().add(v0 * LANES);
                let bias = _mm512_set1_ps(*pass.bias.get_unchecked(t_local));
                for (v, reg) in a.iter().enumerate() {
                    let (lo, hi) = widen(*reg);
                    for (half, sum) in [(0, lo), (16, hi)] {
                        let at = v * LANES + half;
                        let sum = if has32 {
                            _mm512_add_epi32(sum, _mm512_loadu_si512(acc32.add(at).cast()))
                        } else {
                            sum
                        };
                        let offset = _mm512_add_ps(bias, _mm512_loadu_ps(boxsum.add(at)));
                        let y =
                            _mm512_add_ps(offset, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(sum)));
                        _mm512_storeu_ps(out.add(at), y);
                    }
                }
            }
        }
    }
}

/// The 32 i16 lanes of `a` as two vectors of 16 i32 lanes (lanes 0..16, 16..32).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn widen(a: __m512i) -> (__m512i, __m512i) {
    (
        _mm512_cvtepi16_epi32(_mm512_castsi512_si256(a)),
        _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(a)),
    )
}
