//! The NEON level (aarch64 Advanced SIMD): 4 f32 lanes, 32 registers. Misaligned loads
//! cost no more than aligned ones on current cores, so conv kernels load at any offset.

use std::arch::aarch64::*;

use super::{Simd, Vectorized};
use crate::isa::Isa;
use crate::lut::fc::planes::{ROW, ROW_BYTES};
use crate::lut::fc::{FcLayout, Lookups};

/// Proof that the CPU has NEON (every aarch64 Linux CPU; still checked, see
/// [`Isa::features`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Neon(());

impl Neon {
    /// The token, after checking the CPU.
    pub(crate) fn detected() -> Neon {
        assert!(Isa::Neon.is_available(), "this CPU lacks NEON");
        Neon(())
    }
}

impl Simd for Neon {
    const LANES: usize = 4;
    const REGISTERS: usize = 32;
    const PREFERS_ALIGNED_LOADS: bool = false;

    type F32 = float32x4_t;
    type I32 = int32x4_t;
    type I16 = int16x8_t;

    #[inline(always)]
    fn vectorize<K: Vectorized>(self, kernel: K) -> K::Output {
        #[target_feature(enable = "neon")]
        unsafe fn entry<K: Vectorized>(simd: Neon, kernel: K) -> K::Output {
            kernel.simd(simd)
        }
        // SAFETY: the token exists only on a CPU with NEON.
        unsafe { entry(self, kernel) }
    }

    // SAFETY (every intrinsic below): the token proves the CPU has NEON; pointer methods
    // leave validity to their callers, as documented on the trait.
    #[inline(always)]
    fn zero(self) -> float32x4_t {
        unsafe { vdupq_n_f32(0.0) }
    }
    #[inline(always)]
    fn splat(self, v: f32) -> float32x4_t {
        unsafe { vdupq_n_f32(v) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> float32x4_t {
        vld1q_f32(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: float32x4_t) {
        vst1q_f32(p, v)
    }
    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // vfmaq_f32(c, a, b) = c + a·b, one rounding.
        unsafe { vfmaq_f32(c, a, b) }
    }
    /// `frsqrte`: an 8-bit estimate (Arm ARM: relative error < 2^−8).
    const RSQRT_EST_BITS: u32 = 8;
    #[inline(always)]
    fn rsqrt_estimate(self, v: float32x4_t) -> float32x4_t {
        unsafe { vrsqrteq_f32(v) }
    }
    #[inline(always)]
    fn shift_down(self, lo: float32x4_t, hi: float32x4_t, n: usize) -> float32x4_t {
        unsafe {
            match n {
                0 => lo,
                1 => vextq_f32::<1>(lo, hi),
                2 => vextq_f32::<2>(lo, hi),
                3 => vextq_f32::<3>(lo, hi),
                4 => hi,
                _ => unreachable!("shift {n} > 4"),
            }
        }
    }

    #[inline(always)]
    fn prefetch(self, p: *const u8) {
        // SAFETY: PRFM is a hint: it never faults and has no architectural effect.
        unsafe {
            std::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
        }
    }

    #[inline(always)]
    fn zero_i32(self) -> int32x4_t {
        unsafe { vdupq_n_s32(0) }
    }
    #[inline(always)]
    unsafe fn load_i32(self, p: *const i32) -> int32x4_t {
        vld1q_s32(p)
    }
    #[inline(always)]
    unsafe fn store_i32(self, p: *mut i32, v: int32x4_t) {
        vst1q_s32(p, v)
    }
    #[inline(always)]
    fn add_i32(self, a: int32x4_t, b: int32x4_t) -> int32x4_t {
        unsafe { vaddq_s32(a, b) }
    }
    #[inline(always)]
    fn i32_to_f32(self, v: int32x4_t) -> float32x4_t {
        unsafe { vcvtq_f32_s32(v) }
    }

    #[inline(always)]
    fn zero_i16(self) -> int16x8_t {
        unsafe { vdupq_n_s16(0) }
    }
    #[inline(always)]
    unsafe fn load_i16(self, p: *const i16) -> int16x8_t {
        vld1q_s16(p)
    }
    #[inline(always)]
    unsafe fn store_i16(self, p: *mut i16, v: int16x8_t) {
        vst1q_s16(p, v)
    }
    #[inline(always)]
    unsafe fn store_i16_bytes(self, low: *mut u8, high: *mut u8, v: int16x8_t) {
        let words = vreinterpretq_u16_s16(v);
        vst1_u8(low, vmovn_u16(words));
        vst1_u8(high, vshrn_n_u16::<8>(words));
    }
    #[inline(always)]
    fn add_i16(self, a: int16x8_t, b: int16x8_t) -> int16x8_t {
        unsafe { vaddq_s16(a, b) }
    }
    #[inline(always)]
    fn shift_down_i16(self, lo: int16x8_t, hi: int16x8_t, n: usize) -> int16x8_t {
        unsafe {
            match n {
                0 => lo,
                1 => vextq_s16::<1>(lo, hi),
                2 => vextq_s16::<2>(lo, hi),
                3 => vextq_s16::<3>(lo, hi),
                4 => vextq_s16::<4>(lo, hi),
                _ => unreachable!("shift {n} > 4"),
            }
        }
    }
    #[inline(always)]
    fn widen_i16(self, v: int16x8_t) -> (int32x4_t, int32x4_t) {
        unsafe { (vmovl_s16(vget_low_s16(v)), vmovl_high_s16(v)) }
    }
    #[inline(always)]
    fn pack_order(self, a: float32x4_t, b: float32x4_t) -> (float32x4_t, float32x4_t) {
        // The narrowing keeps lane order.
        (a, b)
    }
    #[inline(always)]
    fn quantize_i16(self, a: float32x4_t, b: float32x4_t) -> int16x8_t {
        // vcvtnq: round to nearest, ties to even (as the scalar twin's round_ties_even), then
        // the saturating narrow.
        unsafe { vqmovn_high_s32(vqmovn_s32(vcvtnq_s32_f32(a)), vcvtnq_s32_f32(b)) }
    }

    #[inline(always)]
    fn fc_split_row(self, row: &[f32; ROW], planes: &mut [u8; ROW_BYTES]) {
        crate::lut::fc::neon::split_row(self, row, planes)
    }
    fn fc_layout(self, k: usize) -> FcLayout {
        crate::lut::fc::neon::layout(k)
    }
    #[inline(always)]
    fn fc_lookups(self, op: Lookups<'_>) {
        crate::lut::fc::neon::lookups(self, op)
    }
    fn fc_i16_words(self) -> bool {
        <Self as crate::lut::fc::int16::I16Select>::WORDS
    }
    #[inline(always)]
    fn fc_lookups_i16(self, op: crate::lut::fc::int16::Lookups<'_>) {
        crate::lut::fc::int16::lookups(self, op)
    }
}
