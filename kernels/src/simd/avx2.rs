//! The AVX2 level: 8 f32 lanes, 16 registers. A misaligned 32-byte load crosses a cache line
//! for half the offsets; conv kernels load table rows aligned where the sums fit the registers
//! (3×3 kernels: 5-8 % faster look-ups on AlexNet's conv3-conv5 than loading at every
//! offset, measured on a Xeon SPR core at `--isa avx2`).

use std::arch::x86_64::*;

use super::{Simd, Vectorized};
use crate::isa::Isa;
use crate::lut::fc::planes::{ROW, ROW_BYTES};
use crate::lut::fc::{FcLayout, Lookups};

/// Proof that the CPU has AVX2 and FMA (see [`Isa::features`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, after checking the CPU.
    pub(crate) fn detected() -> Avx2 {
        assert!(Isa::Avx2.is_available(), "this CPU lacks AVX2 + FMA");
        Avx2(())
    }
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    const REGISTERS: usize = 16;
    const PREFERS_ALIGNED_LOADS: bool = true;

    type F32 = __m256;
    type I32 = __m256i;
    type I16 = __m256i;

    #[inline(always)]
    fn vectorize<K: Vectorized>(self, kernel: K) -> K::Output {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn entry<K: Vectorized>(simd: Avx2, kernel: K) -> K::Output {
            kernel.simd(simd)
        }
        // SAFETY: the token exists only on a CPU with AVX2 + FMA.
        unsafe { entry(self, kernel) }
    }

    // SAFETY (every intrinsic below): the token proves the CPU has AVX2 + FMA; pointer
    // methods leave validity to their callers, as documented on the trait.
    #[inline(always)]
    fn zero(self) -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, v: f32) -> __m256 {
        unsafe { _mm256_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    /// `vrsqrtps`: relative error ≤ 1.5·2^−12 (Intel SDM; AMD's is within it).
    const RSQRT_EST_BITS: u32 = 11;
    #[inline(always)]
    fn rsqrt_estimate(self, v: __m256) -> __m256 {
        unsafe { _mm256_rsqrt_ps(v) }
    }
    #[inline(always)]
    fn shift_down(self, lo: __m256, hi: __m256, n: usize) -> __m256 {
        unsafe {
            // (lo's upper half, hi's lower half), then a byte shift within each 128-bit half.
            let mid = _mm256_castps_si256(_mm256_permute2f128_ps::<0x21>(lo, hi));
            let lo = _mm256_castps_si256(lo);
            _mm256_castsi256_ps(match n {
                0 => lo,
                1 => _mm256_alignr_epi8::<4>(mid, lo),
                2 => _mm256_alignr_epi8::<8>(mid, lo),
                3 => _mm256_alignr_epi8::<12>(mid, lo),
                4 => mid,
                _ => unreachable!("shift {n} > 4"),
            })
        }
    }

    #[inline(always)]
    fn prefetch(self, p: *const u8) {
        // SAFETY: a prefetch never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }

    #[inline(always)]
    fn zero_i32(self) -> __m256i {
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    unsafe fn load_i32(self, p: *const i32) -> __m256i {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn store_i32(self, p: *mut i32, v: __m256i) {
        _mm256_storeu_si256(p.cast(), v)
    }
    #[inline(always)]
    fn add_i32(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_add_epi32(a, b) }
    }
    #[inline(always)]
    fn i32_to_f32(self, v: __m256i) -> __m256 {
        unsafe { _mm256_cvtepi32_ps(v) }
    }

    #[inline(always)]
    fn zero_i16(self) -> __m256i {
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    unsafe fn load_i16(self, p: *const i16) -> __m256i {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn store_i16(self, p: *mut i16, v: __m256i) {
        _mm256_storeu_si256(p.cast(), v)
    }
    #[inline(always)]
    unsafe fn store_i16_bytes(self, low: *mut u8, high: *mut u8, v: __m256i) {
        // Per 128-bit half: its 8 low bytes, then its 8 high bytes; then the quadwords in
        // the order (low 0-7, low 8-15, high 0-7, high 8-15).
        let by_half = _mm256_setr_epi8(
            0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14, 1, 3,
            5, 7, 9, 11, 13, 15,
        );
        let planes = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(v, by_half));
        _mm_storeu_si128(low.cast(), _mm256_castsi256_si128(planes));
        _mm_storeu_si128(high.cast(), _mm256_extracti128_si256::<1>(planes));
    }
    #[inline(always)]
    fn add_i16(self, a: __m256i, b: __m256i) -> __m256i {
        unsafe { _mm256_add_epi16(a, b) }
    }
    #[inline(always)]
    fn shift_down_i16(self, lo: __m256i, hi: __m256i, n: usize) -> __m256i {
        unsafe {
            // (lo's upper half, hi's lower half), then a byte shift within each 128-bit half.
            let mid = _mm256_permute2x128_si256::<0x21>(lo, hi);
            match n {
                0 => lo,
                1 => _mm256_alignr_epi8::<2>(mid, lo),
                2 => _mm256_alignr_epi8::<4>(mid, lo),
                3 => _mm256_alignr_epi8::<6>(mid, lo),
                4 => _mm256_alignr_epi8::<8>(mid, lo),
                _ => unreachable!("shift {n} > 4"),
            }
        }
    }
    #[inline(always)]
    fn widen_i16(self, v: __m256i) -> (__m256i, __m256i) {
        unsafe {
            (
                _mm256_cvtepi16_epi32(_mm256_castsi256_si128(v)),
                _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(v)),
            )
        }
    }
    #[inline(always)]
    fn pack_order(self, a: __m256, b: __m256) -> (__m256, __m256) {
        // packs narrows per 128-bit half, (x.h, y.h): x = (a.lo, b.lo) and y = (a.hi, b.hi)
        // come out in lane order.
        unsafe {
            (
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            )
        }
    }
    #[inline(always)]
    fn quantize_i16(self, a: __m256, b: __m256) -> __m256i {
        unsafe { _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b)) }
    }

    /// 8 lanes at a time with masked gathers, as the AVX-512 level does: the plain loop
    /// (several scalar instructions per float) was a tenth of conv1's table phase.
    #[inline(always)]
    fn copy_strided(self, src: &[f32], s: usize, out: &mut [f32]) {
        let n = out.len();
        if n == 0 {
            return;
        }
        assert!(
            super::strided_gather_fits(src.len(), s, n, Self::LANES),
            "strided copy operands"
        );
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let offsets = _mm256_mullo_epi32(lanes, _mm256_set1_epi32(s as i32));
            for x in (0..n).step_by(Self::LANES) {
                let count = ((n - x).min(Self::LANES)) as i32;
                // Lane l is on when l < count (its sign bit set).
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
                // SAFETY: lane l < count reads src[s·(x + l)], s·(x + l) ≤ s·(n − 1) <
                // src.len() (asserted above), and writes out[x + l], x + l < n; masked-off
                // lanes touch nothing.
                let v = _mm256_mask_i32gather_ps::<4>(
                    _mm256_setzero_ps(),
                    src.as_ptr().add(s * x),
                    offsets,
                    _mm256_castsi256_ps(mask),
                );
                _mm256_maskstore_ps(out.as_mut_ptr().add(x), mask, v);
            }
        }
    }

    #[inline(always)]
    fn fc_split_row(self, row: &[f32; ROW], planes: &mut [u8; ROW_BYTES]) {
        crate::lut::fc::avx2::split_row(self, row, planes)
    }
    fn fc_layout(self, k: usize) -> FcLayout {
        crate::lut::fc::avx2::layout(k)
    }
    #[inline(always)]
    fn fc_lookups(self, op: Lookups<'_>) {
        crate::lut::fc::avx2::lookups(self, op)
    }
    fn fc_i16_words(self) -> bool {
        <Self as crate::lut::fc::int16::I16Select>::WORDS
    }
    #[inline(always)]
    fn fc_lookups_i16(self, op: crate::lut::fc::int16::Lookups<'_>) {
        crate::lut::fc::int16::lookups(self, op)
    }
}
