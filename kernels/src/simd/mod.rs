//! The vector instruction sets behind one small trait (docs/KERNELS.md "One body per
//! family").
//!
//! Each look-up family writes its inner loops once, generic over [`Simd`]: loads, adds,
//! fused multiply-adds, a register shift, 16-bit integer adds, widening and quantization.
//! An ISA is one file here that implements the trait for a zero-sized token (which only
//! [`run`] creates, after checking the CPU), plus its fc look-up primitive (the one
//! operation whose best form differs by instruction set: see `lut::fc`). [`run`] is the only
//! place that matches on [`Isa`]; the tests run every kernel at every level
//! [`Isa::available`] lists, so a new level is tested without edits.
//!
//! Why a token and `#[inline(always)]`: every method is a thin wrapper over an intrinsic
//! that is sound only on a CPU with the level's features. Holding the token proves the check
//! was made; the generic bodies are `#[inline(always)]` so that they are compiled inside the
//! level's `#[target_feature]` entry ([`Simd::vectorize`]), where the intrinsics inline.

use crate::isa::Isa;
use crate::lut::fc::planes::{ROW, ROW_BYTES};

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;

/// A unit of work with a vector body, generic over the level.
pub(crate) trait Vectorized {
    type Output;
    /// The vector body. Implementations are `#[inline(always)]`: they are compiled inside
    /// the level's `#[target_feature]` entry ([`Simd::vectorize`]).
    fn simd<S: Simd>(self, simd: S) -> Self::Output;
}

/// A unit of work with a plain twin and a vector body: what [`run`] dispatches.
pub(crate) trait Kernel: Vectorized {
    /// The plain twin (the `*-scalar` kernel): safe indexing, the fallback everywhere.
    fn scalar(self) -> Self::Output;
}

/// Runs `kernel` at `isa`.
///
/// Panics if this CPU lacks `isa`: callers check once with [`Isa::require`], and every
/// kernel's `forward` asserts it before any work.
pub(crate) fn run<K: Kernel>(isa: Isa, kernel: K) -> K::Output {
    assert!(isa.is_available(), "ISA {isa} is not available on this CPU");
    match isa {
        Isa::Scalar => kernel.scalar(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::Avx2::detected().vectorize(kernel),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::Avx512::detected().vectorize(kernel),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::Neon::detected().vectorize(kernel),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("x86 levels are never available here"),
        #[cfg(not(target_arch = "aarch64"))]
        Isa::Neon => unreachable!("NEON is never available here"),
    }
}

/// One vector ISA. Implemented by zero-sized tokens that exist only on a CPU with the
/// level's features ([`run`] checks before it creates one), so the methods are safe to call
/// with a token in hand; raw-pointer methods are `unsafe` for their memory accesses only.
///
/// Lane counts: `F32` and `I32` hold [`Simd::LANES`] lanes, `I16` twice as many.
pub(crate) trait Simd: Copy + 'static {
    /// f32 (and i32) lanes per vector.
    const LANES: usize;
    /// Vector registers a kernel may plan its register blocks for.
    const REGISTERS: usize;
    /// Whether a misaligned vector load costs about two aligned ones (AVX-512; AVX2, where
    /// half the offsets split a cache line): conv kernels then load table rows aligned and
    /// shift sums in registers instead, when the sums fit the registers.
    const PREFERS_ALIGNED_LOADS: bool;

    type F32: Copy;
    type I32: Copy;
    type I16: Copy;

    /// Runs `kernel.simd(self)` compiled with this level's target features, as a function
    /// of its own (one per kernel type: large bodies stay separate functions).
    fn vectorize<K: Vectorized>(self, kernel: K) -> K::Output;

    // f32 lanes.
    fn zero(self) -> Self::F32;
    fn splat(self, v: f32) -> Self::F32;
    /// # Safety
    /// `p` is valid for reading [`Simd::LANES`] floats (no alignment needed).
    unsafe fn load(self, p: *const f32) -> Self::F32;
    /// # Safety
    /// `p` is valid for writing [`Simd::LANES`] floats (no alignment needed).
    unsafe fn store(self, p: *mut f32, v: Self::F32);
    fn add(self, a: Self::F32, b: Self::F32) -> Self::F32;
    fn mul(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// a / b, correctly rounded (as the scalar `/`).
    fn div(self, a: Self::F32, b: Self::F32) -> Self::F32;
    /// a·b + c with one rounding.
    fn fma(self, a: Self::F32, b: Self::F32, c: Self::F32) -> Self::F32;
    /// ≈ 1/√v for v > 0, within a relative 2^−[`Simd::RSQRT_EST_BITS`] (the level's
    /// estimate instruction); see [`rsqrt`] for a refined one.
    fn rsqrt_estimate(self, v: Self::F32) -> Self::F32;
    /// Bits of [`Simd::rsqrt_estimate`]'s relative precision the level guarantees.
    const RSQRT_EST_BITS: u32;
    /// Lanes `n ..` of `lo` followed by the first `n` lanes of `hi` (lane c of the result is
    /// lane c + n of the 2·LANES-lane vector (hi, lo)); 0 ≤ n ≤ 4 and n < LANES.
    fn shift_down(self, lo: Self::F32, hi: Self::F32, n: usize) -> Self::F32;

    // i32 lanes.
    fn zero_i32(self) -> Self::I32;
    /// # Safety
    /// As [`Simd::load`], for i32.
    unsafe fn load_i32(self, p: *const i32) -> Self::I32;
    /// # Safety
    /// As [`Simd::store`], for i32.
    unsafe fn store_i32(self, p: *mut i32, v: Self::I32);
    fn add_i32(self, a: Self::I32, b: Self::I32) -> Self::I32;
    fn i32_to_f32(self, v: Self::I32) -> Self::F32;

    // i16 lanes (2·LANES).
    fn zero_i16(self) -> Self::I16;
    /// # Safety
    /// `p` is valid for reading 2·[`Simd::LANES`] i16.
    unsafe fn load_i16(self, p: *const i16) -> Self::I16;
    /// # Safety
    /// `p` is valid for writing 2·[`Simd::LANES`] i16.
    unsafe fn store_i16(self, p: *mut i16, v: Self::I16);
    /// Lane c's low byte to `low[c]` and its high byte to `high[c]`, for c < 2·LANES
    /// (little-endian byte planes of the lanes).
    ///
    /// # Safety
    /// `low` and `high` are each valid for writing 2·[`Simd::LANES`] bytes.
    unsafe fn store_i16_bytes(self, low: *mut u8, high: *mut u8, v: Self::I16);
    /// Wrapping 16-bit add (callers bound their sums so that it never wraps).
    fn add_i16(self, a: Self::I16, b: Self::I16) -> Self::I16;
    /// As [`Simd::shift_down`], for i16 lanes: lane c of the result is lane c + n of the
    /// 4·LANES-lane vector (hi, lo); 0 ≤ n ≤ 4.
    fn shift_down_i16(self, lo: Self::I16, hi: Self::I16, n: usize) -> Self::I16;
    /// The i16 lanes as i32: (lanes 0..LANES, lanes LANES..2·LANES).
    fn widen_i16(self, v: Self::I16) -> (Self::I32, Self::I32);
    /// The lanes of (a, b) rearranged for [`Simd::quantize_i16`]: lane-wise maths on them
    /// and then `quantize_i16` gives the results in lane order (a's lanes first). Once per
    /// input vector, not per result, where inputs are reused.
    fn pack_order(self, a: Self::F32, b: Self::F32) -> (Self::F32, Self::F32);
    /// round(a), round(b) (half to even), narrowed with saturation to one i16 vector: lane
    /// order if (a, b) are [`Simd::pack_order`]ed (the level's narrowing interleaves
    /// otherwise). Lanes of |value| ≥ 2³¹ or NaN give unspecified values.
    fn quantize_i16(self, a: Self::F32, b: Self::F32) -> Self::I16;

    /// Hints that the cache line at `p` will be read soon (never faults, whatever `p`).
    fn prefetch(self, _p: *const u8) {}

    /// `out[x] = src[s·x]` for x < out.len(); `src` holds at least s·(out.len() − 1) + 1
    /// floats. A level with gathers overrides it.
    fn copy_strided(self, src: &[f32], s: usize, out: &mut [f32]) {
        copy_strided_plain(src, s, out)
    }

    /// One exact fc table row (32 floats) → its 4 byte planes, byte j of entry k at
    /// `planes[32·j + k]` (`lut::fc::planes::split_row`, the plain loop; levels with byte
    /// planes override it).
    fn fc_split_row(self, row: &[f32; ROW], planes: &mut [u8; ROW_BYTES]) {
        crate::lut::fc::planes::split_row(row, planes)
    }
    /// The fc index layout this level looks up fastest for K codewords (`lut::fc`).
    fn fc_layout(self, k: usize) -> crate::lut::fc::FcLayout;
    /// The fc look-ups of a layer prepared with [`Simd::fc_layout`] (`lut::fc`).
    fn fc_lookups(self, op: crate::lut::fc::Lookups<'_>);
    /// Whether the level's i16 fc look-ups read i16 words (else byte planes;
    /// `lut::fc::int16::I16Select`).
    fn fc_i16_words(self) -> bool;
    /// The look-ups of an i16-table fc layer (`lut::fc::int16`).
    fn fc_lookups_i16(self, op: crate::lut::fc::int16::Lookups<'_>);
}

/// 1/√v for v > 0 within a relative 2^−21 (and the steps' roundings): the level's estimate,
/// refined by Newton steps r ← r·(3/2 − v/2·r²), each taking a relative error ε to
/// (3/2)·ε² + O(ε³) < 2·ε², i.e. 2^−p to better than 2^−(2p−1): AVX2's 11-bit and AVX-512's
/// 14-bit estimates take one step, NEON's 8-bit one two. Not correctly rounded, and the
/// estimates differ between levels: results agree across levels to a few ulps, not bit for
/// bit. v = +∞, 0 or a subnormal (which x86 estimates treat as 0) gives NaN (0·∞ in the
/// step), where 1/√v would be 0 or large: callers keep v normal and finite (LRN: b ≥ k,
/// a normal f32 by `LrnParams::is_valid`).
#[inline(always)]
pub(crate) fn rsqrt<S: Simd>(s: S, v: S::F32) -> S::F32 {
    let minus_half_v = s.mul(s.splat(-0.5), v);
    let mut r = s.rsqrt_estimate(v);
    let mut bits = S::RSQRT_EST_BITS;
    while bits < 21 {
        let t = s.fma(s.mul(minus_half_v, r), r, s.splat(1.5));
        r = s.mul(r, t);
        bits = 2 * bits - 1;
    }
    r
}

/// Whether n ≥ 1 floats at stride s, gathered `lanes` at a time, stay inside a source of
/// `src_len` floats (s·(n − 1) < src_len) and their lane offsets s·l (l < lanes) fit the
/// gathers' i32 indices: the precondition the gathering levels' `copy_strided` assert (x86
/// only: NEON has no gathers).
#[cfg(target_arch = "x86_64")]
pub(crate) fn strided_gather_fits(src_len: usize, s: usize, n: usize, lanes: usize) -> bool {
    s.checked_mul(n - 1).is_some_and(|last| last < src_len)
        && s.checked_mul(lanes)
            .is_some_and(|span| span <= i32::MAX as usize)
}

/// `out[x] = src[s·x]` for x < out.len(): the plain loop of [`Simd::copy_strided`], also the
/// scalar level's (`lut::pad`).
#[inline(always)]
pub(crate) fn copy_strided_plain(src: &[f32], s: usize, out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(src.iter().step_by(s)) {
        *o = *v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This CPU's vector levels, said on stderr with what is tested at them. The kernel
    /// suites (kernels/tests) fail when a level CI requires is missing; these unit tests say
    /// which they ran.
    fn vector_levels(what: &str) -> Vec<Isa> {
        let levels: Vec<Isa> = Isa::available()
            .into_iter()
            .filter(|&i| i != Isa::Scalar)
            .collect();
        eprintln!("{what} tested at vector levels {levels:?}");
        levels
    }

    /// [`rsqrt`] over every available level, on values across f32's normal range.
    struct Rsqrts<'a>(&'a [f32], &'a mut Vec<f32>);

    impl Kernel for Rsqrts<'_> {
        fn scalar(self) {}
    }

    impl Vectorized for Rsqrts<'_> {
        type Output = ();
        #[inline(always)]
        fn simd<S: Simd>(self, s: S) {
            for chunk in self.0.chunks_exact(S::LANES) {
                let mut out = vec![0.0f32; S::LANES];
                // SAFETY: chunk and out hold LANES floats.
                unsafe { s.store(out.as_mut_ptr(), rsqrt(s, s.load(chunk.as_ptr()))) };
                self.1.extend(out);
            }
        }
    }

    #[test]
    fn refined_rsqrt_is_within_2_pow_minus_21() {
        let values: Vec<f32> = (0..4096)
            .map(|i| 10f32.powf(-37.0 + 74.0 * i as f32 / 4095.0) * (1.0 + (i % 7) as f32 / 7.0))
            .collect();
        for isa in vector_levels("refined rsqrt") {
            let mut got = Vec::new();
            run(isa, Rsqrts(&values, &mut got));
            assert_eq!(got.len(), values.len(), "{isa}");
            for (&v, &r) in values.iter().zip(&got) {
                let want = 1.0 / (v as f64).sqrt();
                let err = ((r as f64 - want) / want).abs();
                assert!(
                    err <= 2f64.powi(-21),
                    "{isa}: rsqrt({v:e}) = {r:e}, error {err:e}"
                );
            }
        }
    }

    /// [`Simd::store_i16_bytes`] of consecutive i16 vectors at one level: (low, high) planes.
    struct BytePlanesOf<'a>(&'a [i16], &'a mut (Vec<u8>, Vec<u8>));

    impl Kernel for BytePlanesOf<'_> {
        fn scalar(self) {}
    }

    impl Vectorized for BytePlanesOf<'_> {
        type Output = ();
        #[inline(always)]
        fn simd<S: Simd>(self, s: S) {
            let (low, high) = self.1;
            for chunk in self.0.chunks_exact(2 * S::LANES) {
                let (mut lo, mut hi) = (vec![0u8; 2 * S::LANES], vec![0u8; 2 * S::LANES]);
                // SAFETY: chunk holds 2·LANES i16; lo and hi 2·LANES bytes each.
                unsafe {
                    let v = s.load_i16(chunk.as_ptr());
                    s.store_i16_bytes(lo.as_mut_ptr(), hi.as_mut_ptr(), v);
                }
                low.extend(lo);
                high.extend(hi);
            }
        }
    }

    /// Every level, including those whose kernels store i16 words rather than byte planes
    /// (AVX-512), so that no level's implementation goes untested.
    #[test]
    fn i16_byte_planes_are_the_little_endian_bytes_in_lane_order() {
        let values: Vec<i16> = (0..64i32)
            .map(|i| (i * 1031 - 32768 + i * i * 7) as i16)
            .collect();
        for isa in vector_levels("i16 byte planes") {
            let mut got = (Vec::new(), Vec::new());
            run(isa, BytePlanesOf(&values, &mut got));
            let low: Vec<u8> = values.iter().map(|v| v.to_le_bytes()[0]).collect();
            let high: Vec<u8> = values.iter().map(|v| v.to_le_bytes()[1]).collect();
            assert_eq!((got.0, got.1), (low, high), "{isa}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn strided_gathers_fit_only_inside_the_source_and_i32_offsets() {
        // The last element s·(n − 1) must lie inside the source.
        assert!(strided_gather_fits(10, 3, 4, 8));
        assert!(!strided_gather_fits(9, 3, 4, 8));
        assert!(strided_gather_fits(1, 7, 1, 16));
        // Lane offsets s·l for l < lanes as i32, and no overflow on absurd strides.
        let s = i32::MAX as usize / 8;
        assert!(strided_gather_fits(usize::MAX, s, 2, 8));
        assert!(!strided_gather_fits(usize::MAX, s + 1, 2, 8));
        assert!(!strided_gather_fits(usize::MAX, usize::MAX / 2, 3, 8));
    }
}
