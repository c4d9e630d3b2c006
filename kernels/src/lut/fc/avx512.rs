//! "fc-lut-f32-avx512": table rows in registers, 16 look-ups per permute (`vpermt2ps`
//! looks up a 32-entry row in two registers), packed indices for every K. A block of 12
//! tiles (192 outputs) keeps its sums in 12 zmm registers while the block's index words
//! stream past once.
//!
//! The i16 tables ("fc-lut-i16-avx512", `int16`): a row of 32 i16 words is one register,
//! and `vpermw` selects 32 outputs' entries per instruction (3 instructions per 32 look-ups
//! with the byte-index widening and the add, against 16 per 64 for byte planes).

use std::arch::x86_64::*;

use super::int16::I16Select;
use super::packed::{self, PackedSelect};
use super::{FcLayout, Lookups};
use crate::simd::avx512::Avx512;

/// The layout this level looks up fastest: packed words for every K.
pub(crate) fn layout(_k: usize) -> FcLayout {
    FcLayout::Packed
}

#[inline(always)]
pub(crate) fn lookups(s: Avx512, op: Lookups<'_>) {
    packed::lookups(s, op)
}

// SAFETY (every intrinsic below): the token proves the CPU has AVX-512 F/BW; pointer
// methods leave validity to their callers, as documented on the trait.
impl PackedSelect for Avx512 {
    /// 12 sums, measured ≈ 6 % faster than 8 on fc6/fc7; with K ≤ 64 no spills.
    const RUN_TILES: usize = 12;
    /// T[m] as 2^BITS / 16 registers (K ≤ 128), or the row's address for gathers (K > 128).
    type Row = ([__m512; 8], *const f32);

    #[inline(always)]
    unsafe fn load_row<const BITS: u32>(self, p: *const f32) -> Self::Row {
        let count = if BITS <= 7 { 1 << (BITS - 4) } else { 0 };
        let mut regs = [_mm512_setzero_ps(); 8];
        for (r, reg) in regs.iter_mut().enumerate().take(count) {
            *reg = _mm512_loadu_ps(p.add(r * 16));
        }
        (regs, p)
    }

    #[inline(always)]
    unsafe fn select<const BITS: u32>(self, row: &Self::Row, idx: __m512i) -> __m512 {
        let t = &row.0;
        match BITS {
            4 => _mm512_permutexvar_ps(idx, t[0]),
            5 => _mm512_permutex2var_ps(t[0], idx, t[1]),
            6 => {
                let lo = _mm512_permutex2var_ps(t[0], idx, t[1]);
                let hi = _mm512_permutex2var_ps(t[2], idx, t[3]);
                let bit5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
                _mm512_mask_blend_ps(bit5, lo, hi)
            }
            7 => {
                let q0 = _mm512_permutex2var_ps(t[0], idx, t[1]);
                let q1 = _mm512_permutex2var_ps(t[2], idx, t[3]);
                let q2 = _mm512_permutex2var_ps(t[4], idx, t[5]);
                let q3 = _mm512_permutex2var_ps(t[6], idx, t[7]);
                let bit5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
                let bit6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
                let lo = _mm512_mask_blend_ps(bit5, q0, q1);
                let hi = _mm512_mask_blend_ps(bit5, q2, q3);
                _mm512_mask_blend_ps(bit6, lo, hi)
            }
            _ => {
                let low = _mm512_and_si512(idx, _mm512_set1_epi32(0xFF));
                _mm512_i32gather_ps::<4>(low, row.1)
            }
        }
    }

    #[inline(always)]
    fn shift_right<const BITS: u32>(self, idx: __m512i) -> __m512i {
        unsafe { _mm512_srli_epi32::<BITS>(idx) }
    }
}

// SAFETY (every intrinsic below): the token proves the CPU has AVX-512 F/BW; the pointers
// are valid as `add_i16_entries` requires of its callers (G = 64 index bytes, a 64-byte row).
impl I16Select for Avx512 {
    /// A row of 32 i16 is one register: `vpermw` selects any of its entries.
    const WORDS: bool = true;
    #[inline(always)]
    unsafe fn add_i16_entries<const WIDE: bool, const NIBBLES: bool>(
        self,
        parts: &mut [__m512i; 4],
        indices: *const u8,
        row: *const u8,
    ) {
        let table = _mm512_loadu_si512(row.cast());
        for half in 0..2 {
            // 32 byte indices widened to words; `vpermw` reads their low 5 bits.
            let idx = _mm512_cvtepu8_epi16(_mm256_loadu_si256(indices.add(32 * half).cast()));
            if NIBBLES {
                let lo = _mm512_and_si512(idx, _mm512_set1_epi16(0x0F));
                let hi = _mm512_srli_epi16::<4>(idx);
                parts[half] = _mm512_add_epi16(parts[half], _mm512_permutexvar_epi16(lo, table));
                parts[2 + half] =
                    _mm512_add_epi16(parts[2 + half], _mm512_permutexvar_epi16(hi, table));
            } else {
                parts[half] = _mm512_add_epi16(parts[half], _mm512_permutexvar_epi16(idx, table));
            }
        }
    }
}
