//! The AVX-512 level (F + BW): 16 f32 lanes, 32 registers. A misaligned 64-byte load costs
//! about two aligned ones here (measured on Zen 5; every load of a 64-byte vector at a float
//! offset crosses a cache line), so the conv kernels load table rows aligned and shift the
//! sums in registers (`valignd`).

use std::arch::x86_64::*;

use super::{Simd, Vectorized};
use crate::isa::Isa;
use crate::lut::fc::{FcLayout, Lookups};

/// Word indices of `shift_down_i16` by n = 0..=4: lane c takes lane c + n of (hi, lo).
static SHIFT_DOWN_I16: [[i16; 32]; 5] = {
    let mut idx = [[0i16; 32]; 5];
    let mut n = 0;
    while n < 5 {
        let mut c = 0;
        while c < 32 {
            idx[n][c] = (c + n) as i16;
            c += 1;
        }
        n += 1;
    }
    idx
};

/// Proof that the CPU has AVX-512 F/BW, AVX2 and FMA (see [`Isa::features`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512(());

impl Avx512 {
    /// The token, after checking the CPU.
    pub(crate) fn detected() -> Avx512 {
        assert!(Isa::Avx512.is_available(), "this CPU lacks AVX-512 F/BW");
        Avx512(())
    }
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    const REGISTERS: usize = 32;
    const PREFERS_ALIGNED_LOADS: bool = true;

    type F32 = __m512;
    type I32 = __m512i;
    type I16 = __m512i;

    #[inline(always)]
    fn vectorize<K: Vectorized>(self, kernel: K) -> K::Output {
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn entry<K: Vectorized>(simd: Avx512, kernel: K) -> K::Output {
            kernel.simd(simd)
        }
        // SAFETY: the token exists only on a CPU with AVX-512 F/BW, AVX2 and FMA.
        unsafe { entry(self, kernel) }
    }

    // SAFETY (every intrinsic below): the token proves the CPU has the level's features;
    // pointer methods leave validity to their callers, as documented on the trait.
    #[inline(always)]
    fn zero(self) -> __m512 {
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, v: f32) -> __m512 {
        unsafe { _mm512_set1_ps(v) }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    /// `vrsqrt14ps`: relative error < 2^−14.
    const RSQRT_EST_BITS: u32 = 14;
    #[inline(always)]
    fn rsqrt_estimate(self, v: __m512) -> __m512 {
        unsafe { _mm512_rsqrt14_ps(v) }
    }
    #[inline(always)]
    fn shift_down(self, lo: __m512, hi: __m512, n: usize) -> __m512 {
        unsafe {
            let (lo, hi) = (_mm512_castps_si512(lo), _mm512_castps_si512(hi));
            _mm512_castsi512_ps(match n {
                0 => lo,
                1 => _mm512_alignr_epi32::<1>(hi, lo),
                2 => _mm512_alignr_epi32::<2>(hi, lo),
                3 => _mm512_alignr_epi32::<3>(hi, lo),
                4 => _mm512_alignr_epi32::<4>(hi, lo),
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
    fn zero_i32(self) -> __m512i {
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    unsafe fn load_i32(self, p: *const i32) -> __m512i {
        _mm512_loadu_si512(p.cast())
    }
    #[inline(always)]
    unsafe fn store_i32(self, p: *mut i32, v: __m512i) {
        _mm512_storeu_si512(p.cast(), v)
    }
    #[inline(always)]
    fn add_i32(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_add_epi32(a, b) }
    }
    #[inline(always)]
    fn i32_to_f32(self, v: __m512i) -> __m512 {
        unsafe { _mm512_cvtepi32_ps(v) }
    }

    #[inline(always)]
    fn zero_i16(self) -> __m512i {
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    unsafe fn load_i16(self, p: *const i16) -> __m512i {
        _mm512_loadu_si512(p.cast())
    }
    #[inline(always)]
    unsafe fn store_i16(self, p: *mut i16, v: __m512i) {
        _mm512_storeu_si512(p.cast(), v)
    }
    #[inline(always)]
    unsafe fn store_i16_bytes(self, low: *mut u8, high: *mut u8, v: __m512i) {
        // Truncating narrows (AVX-512BW) of the words and of the words shifted down a byte.
        _mm256_storeu_si256(low.cast(), _mm512_cvtepi16_epi8(v));
        _mm256_storeu_si256(high.cast(), _mm512_cvtepi16_epi8(_mm512_srli_epi16::<8>(v)));
    }
    #[inline(always)]
    fn add_i16(self, a: __m512i, b: __m512i) -> __m512i {
        unsafe { _mm512_add_epi16(a, b) }
    }
    #[inline(always)]
    fn shift_down_i16(self, lo: __m512i, hi: __m512i, n: usize) -> __m512i {
        assert!(n < SHIFT_DOWN_I16.len(), "shift {n} > 4");
        // One two-source word permute (AVX-512 BW); index 32 + c picks lane c of hi.
        unsafe {
            let idx = _mm512_loadu_si512(SHIFT_DOWN_I16[n].as_ptr().cast());
            _mm512_permutex2var_epi16(lo, idx, hi)
        }
    }
    #[inline(always)]
    fn widen_i16(self, v: __m512i) -> (__m512i, __m512i) {
        unsafe {
            (
                _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v)),
                _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(v)),
            )
        }
    }
    #[inline(always)]
    fn pack_order(self, a: __m512, b: __m512) -> (__m512, __m512) {
        // packs narrows per 128-bit quarter, (x.q, y.q): x = (a.q0, a.q2, b.q0, b.q2) and
        // y = (a.q1, a.q3, b.q1, b.q3) come out in lane order.
        unsafe {
            (
                _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
            )
        }
    }
    #[inline(always)]
    fn quantize_i16(self, a: __m512, b: __m512) -> __m512i {
        unsafe { _mm512_packs_epi32(_mm512_cvtps_epi32(a), _mm512_cvtps_epi32(b)) }
    }

    /// 16 lanes at a time with masked gathers (the scalar strided loop cost about as much as
    /// conv1's table build).
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
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(s as i32));
            for x in (0..n).step_by(Self::LANES) {
                let count = (n - x).min(Self::LANES);
                let mask = ((1u32 << count) - 1) as __mmask16;
                // SAFETY: lane l < count reads src[s·(x + l)], s·(x + l) ≤ s·(n − 1) <
                // src.len() (asserted above), and writes out[x + l], x + l < n; masked-off
                // lanes touch nothing.
                let v = _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    mask,
                    offsets,
                    src.as_ptr().add(s * x),
                );
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(x), mask, v);
            }
        }
    }

    fn fc_layout(self, k: usize) -> FcLayout {
        crate::lut::fc::avx512::layout(k)
    }
    #[inline(always)]
    fn fc_lookups(self, op: Lookups<'_>) {
        crate::lut::fc::avx512::lookups(self, op)
    }
    fn fc_i16_words(self) -> bool {
        <Self as crate::lut::fc::int16::I16Select>::WORDS
    }
    #[inline(always)]
    fn fc_lookups_i16(self, op: crate::lut::fc::int16::Lookups<'_>) {
        crate::lut::fc::int16::lookups(self, op)
    }
}
