//! "fc-lut-f32-avx2": byte planes for K ≤ 32 (`vpshufb` looks up 32 outputs' bytes of one
//! plane per 16-entry half; 4 planes, an OR per plane and 8 unpacks rebuild 32 exact f32
//! entries), packed words with gathers for K > 32.
//!
//! Why not the f32 permutes of AVX-512: `vpermps` holds 8 entries, so K = 32 takes 4
//! permutes and 3 blends per 8 look-ups, all on the one lane-crossing shuffle port (and the
//! 4 row registers, 4 index registers and 4 sums overflow the 16 registers). The byte-plane
//! form needs 16 in-lane shuffles per 32 look-ups, which recent cores issue on two ports.

use std::arch::x86_64::*;

use super::packed::{self, PackedSelect};
use super::planes::{self, BytePlanes, F32Planes};
use super::{FcIndices, FcLayout, Lookups};
use crate::simd::avx2::Avx2;
use crate::simd::Simd;

/// The layout this level looks up fastest for K codewords.
pub(crate) fn layout(k: usize) -> FcLayout {
    if k <= planes::ROW {
        FcLayout::Planes {
            group: 4 * Avx2::LANES,
            order: Avx2::byte_order(),
        }
    } else {
        FcLayout::Packed
    }
}

#[inline(always)]
pub(crate) fn lookups(s: Avx2, op: Lookups<'_>) {
    match op.lut.indices {
        FcIndices::Planes(_) => planes::lookups(s, op),
        FcIndices::Packed(_) => packed::lookups(s, op),
    }
}

// SAFETY (every intrinsic below): the token proves the CPU has AVX2 + FMA; pointer methods
// leave validity to their callers, as documented on the traits.
impl BytePlanes for Avx2 {
    type U8 = __m256i;
    /// The plane's entries 0..16 and 16..32, each broadcast to both 128-bit halves.
    type Plane = (__m256i, __m256i);
    /// (idx + 0x70, idx + 0xF0): `vpshufb` zeroes a byte whose index has bit 7 set, so the
    /// first picks entries < 16 from the low half (entries ≥ 16 get bit 7) and the second
    /// entries ≥ 16 from the high half (entries < 16 wrap to ≥ 0xF0).
    type Index = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn load_u8(self, p: *const u8) -> __m256i {
        _mm256_loadu_si256(p.cast())
    }
    #[inline(always)]
    unsafe fn load_plane<const WIDE: bool>(self, p: *const u8) -> (__m256i, __m256i) {
        let lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(p.cast()));
        let hi = if WIDE {
            _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(16).cast()))
        } else {
            lo
        };
        (lo, hi)
    }
    #[inline(always)]
    fn prepare<const WIDE: bool>(self, idx: __m256i) -> (__m256i, __m256i) {
        unsafe {
            if WIDE {
                (
                    _mm256_add_epi8(idx, _mm256_set1_epi8(0x70)),
                    _mm256_add_epi8(idx, _mm256_set1_epi8(0xF0u8 as i8)),
                )
            } else {
                (idx, idx)
            }
        }
    }
    #[inline(always)]
    fn lookup<const WIDE: bool>(
        self,
        plane: (__m256i, __m256i),
        idx: (__m256i, __m256i),
    ) -> __m256i {
        unsafe {
            let lo = _mm256_shuffle_epi8(plane.0, idx.0);
            if WIDE {
                _mm256_or_si256(lo, _mm256_shuffle_epi8(plane.1, idx.1))
            } else {
                lo
            }
        }
    }
    #[inline(always)]
    fn split_nibbles(self, v: __m256i) -> (__m256i, __m256i) {
        unsafe {
            let low = _mm256_set1_epi8(0x0F);
            (
                _mm256_and_si256(v, low),
                _mm256_and_si256(_mm256_srli_epi16::<4>(v), low),
            )
        }
    }
    #[inline(always)]
    fn interleave_i16(self, b: [__m256i; 2]) -> [__m256i; 2] {
        // Per 128-bit half: bytes (0, 1) of entries 0..8, then of entries 8..16.
        unsafe {
            [
                _mm256_unpacklo_epi8(b[0], b[1]),
                _mm256_unpackhi_epi8(b[0], b[1]),
            ]
        }
    }
}

impl F32Planes for Avx2 {
    #[inline(always)]
    fn interleave(self, b: [__m256i; 4]) -> [__m256; 4] {
        unsafe {
            // Per 128-bit half: bytes (0,1) of entries 0..8 and 8..16, then (2,3); then
            // whole entries 0..4, 4..8, 8..12, 12..16 of each half.
            let b01_lo = _mm256_unpacklo_epi8(b[0], b[1]);
            let b01_hi = _mm256_unpackhi_epi8(b[0], b[1]);
            let b23_lo = _mm256_unpacklo_epi8(b[2], b[3]);
            let b23_hi = _mm256_unpackhi_epi8(b[2], b[3]);
            [
                _mm256_castsi256_ps(_mm256_unpacklo_epi16(b01_lo, b23_lo)),
                _mm256_castsi256_ps(_mm256_unpackhi_epi16(b01_lo, b23_lo)),
                _mm256_castsi256_ps(_mm256_unpacklo_epi16(b01_hi, b23_hi)),
                _mm256_castsi256_ps(_mm256_unpackhi_epi16(b01_hi, b23_hi)),
            ]
        }
    }
    /// [`interleave`]'s vector v holds bytes 4v .. 4v + 3 (lanes 0..4) and 16 + 4v ..
    /// 16 + 4v + 3 (lanes 4..8): output 8v + l comes from byte 4v + l or 16 + 4v + l − 4.
    fn byte_order() -> [u8; 32] {
        std::array::from_fn(|j| {
            let (v, l) = (j / 8, j % 8);
            (if l < 4 { 4 * v + l } else { 16 + 4 * v + l - 4 }) as u8
        })
    }
}

/// One table row → its 4 byte planes ([`planes::split_row`]'s layout) in 16 shuffles: per 8
/// entries a byte shuffle groups each 128-bit half's bytes by significance and a dword
/// permute pairs the halves, so 64-bit block p holds plane p's 8 bytes; a 4 × 4 transpose of
/// those blocks (unpacks, then 128-bit permutes) gathers each plane. The plain loop stored
/// the 128 bytes one by one: most of the exact fc table time at this level.
#[inline(always)]
pub(crate) fn split_row(_s: Avx2, row: &[f32; planes::ROW], out: &mut [u8; planes::ROW_BYTES]) {
    // SAFETY: the token proves AVX2; `row` holds 4 vectors of 8 floats and `out` 4 of 32
    // bytes (the array types), read and written unaligned.
    unsafe {
        let by_byte = _mm256_setr_epi8(
            0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6,
            10, 14, 3, 7, 11, 15,
        );
        let pair_halves = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let v: [__m256i; 4] = std::array::from_fn(|i| {
            let x = _mm256_loadu_si256(row.as_ptr().add(8 * i).cast());
            _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(x, by_byte), pair_halves)
        });
        // Blocks (v0.p, v1.p) for p = 0, 2 (low) and 1, 3 (high), likewise for v2, v3.
        let low01 = _mm256_unpacklo_epi64(v[0], v[1]);
        let high01 = _mm256_unpackhi_epi64(v[0], v[1]);
        let low23 = _mm256_unpacklo_epi64(v[2], v[3]);
        let high23 = _mm256_unpackhi_epi64(v[2], v[3]);
        let planes = [
            _mm256_permute2x128_si256::<0x20>(low01, low23),
            _mm256_permute2x128_si256::<0x20>(high01, high23),
            _mm256_permute2x128_si256::<0x31>(low01, low23),
            _mm256_permute2x128_si256::<0x31>(high01, high23),
        ];
        for (j, plane) in planes.into_iter().enumerate() {
            _mm256_storeu_si256(out.as_mut_ptr().add(planes::ROW * j).cast(), plane);
        }
    }
}

/// Rows are read through memory by gathers (K > 32 only; K ≤ 32 uses byte planes).
impl PackedSelect for Avx2 {
    const RUN_TILES: usize = 2;
    type Row = *const f32;

    #[inline(always)]
    unsafe fn load_row<const BITS: u32>(self, p: *const f32) -> *const f32 {
        p
    }
    #[inline(always)]
    unsafe fn select<const BITS: u32>(self, row: &*const f32, idx: __m256i) -> __m256 {
        let low = _mm256_and_si256(idx, _mm256_set1_epi32((1 << BITS) - 1));
        _mm256_i32gather_ps::<4>(*row, low)
    }
    #[inline(always)]
    fn shift_right<const BITS: u32>(self, idx: __m256i) -> __m256i {
        unsafe { _mm256_srl_epi32(idx, _mm_cvtsi32_si128(BITS as i32)) }
    }
}
