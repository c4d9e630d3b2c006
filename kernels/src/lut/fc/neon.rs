//! "fc-lut-f32-neon": byte planes for K ≤ 32 (`tbl` looks up 16 outputs' bytes of one plane
//! in a 32-entry table per instruction; 4 look-ups and 8 zips rebuild 16 exact f32 entries),
//! packed words with per-lane loads for K > 32 (NEON has no gather).

use std::arch::aarch64::*;

use super::packed::{self, PackedSelect};
use super::planes::{self, BytePlanes, F32Planes};
use super::{FcIndices, FcLayout, Lookups};
use crate::simd::neon::Neon;
use crate::simd::Simd;

/// The layout this level looks up fastest for K codewords.
pub(crate) fn layout(k: usize) -> FcLayout {
    if k <= planes::ROW {
        FcLayout::Planes {
            group: 4 * Neon::LANES,
            order: Neon::byte_order(),
        }
    } else {
        FcLayout::Packed
    }
}

/// One table row → its 4 byte planes ([`planes::split_row`]'s layout): `ld4` loads 16
/// entries and de-interleaves their bytes by significance, one register per plane.
#[inline(always)]
pub(crate) fn split_row(_s: Neon, row: &[f32; planes::ROW], out: &mut [u8; planes::ROW_BYTES]) {
    let bytes = row.as_ptr().cast::<u8>();
    let out = out.as_mut_ptr();
    for half in 0..2 {
        // SAFETY: the token proves NEON; `row` holds 2 × 64 bytes and `out` 4 planes of
        // 2 × 16 bytes (the array types).
        unsafe {
            let v = vld4q_u8(bytes.add(64 * half));
            let plane = |j: usize| out.add(planes::ROW * j + 16 * half);
            vst1q_u8(plane(0), v.0);
            vst1q_u8(plane(1), v.1);
            vst1q_u8(plane(2), v.2);
            vst1q_u8(plane(3), v.3);
        }
    }
}

#[inline(always)]
pub(crate) fn lookups(s: Neon, op: Lookups<'_>) {
    match op.lut.indices {
        FcIndices::Planes(_) => planes::lookups(s, op),
        FcIndices::Packed(_) => packed::lookups(s, op),
    }
}

// SAFETY (every intrinsic below): the token proves the CPU has NEON; pointer methods leave
// validity to their callers, as documented on the traits.
impl BytePlanes for Neon {
    type U8 = uint8x16_t;
    /// The plane's entries 0..16 and 16..32 (the second unused when no index reaches 16).
    type Plane = uint8x16x2_t;
    /// `tbl` returns 0 for an index past the table: the indices need no preparation.
    type Index = uint8x16_t;

    #[inline(always)]
    unsafe fn load_u8(self, p: *const u8) -> uint8x16_t {
        vld1q_u8(p)
    }
    #[inline(always)]
    unsafe fn load_plane<const WIDE: bool>(self, p: *const u8) -> uint8x16x2_t {
        let lo = vld1q_u8(p);
        let hi = if WIDE { vld1q_u8(p.add(16)) } else { lo };
        uint8x16x2_t(lo, hi)
    }
    #[inline(always)]
    fn prepare<const WIDE: bool>(self, idx: uint8x16_t) -> uint8x16_t {
        idx
    }
    #[inline(always)]
    fn lookup<const WIDE: bool>(self, plane: uint8x16x2_t, idx: uint8x16_t) -> uint8x16_t {
        unsafe {
            if WIDE {
                vqtbl2q_u8(plane, idx)
            } else {
                vqtbl1q_u8(plane.0, idx)
            }
        }
    }
    #[inline(always)]
    fn split_nibbles(self, v: uint8x16_t) -> (uint8x16_t, uint8x16_t) {
        unsafe { (vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)) }
    }
    #[inline(always)]
    fn interleave_i16(self, b: [uint8x16_t; 2]) -> [int16x8_t; 2] {
        // Bytes (0, 1) of entries 0..8, then of entries 8..16: outputs in order.
        unsafe {
            [
                vreinterpretq_s16_u8(vzip1q_u8(b[0], b[1])),
                vreinterpretq_s16_u8(vzip2q_u8(b[0], b[1])),
            ]
        }
    }
}

impl F32Planes for Neon {
    #[inline(always)]
    fn interleave(self, b: [uint8x16_t; 4]) -> [float32x4_t; 4] {
        unsafe {
            // Bytes (0, 1) of entries 0..8 and 8..16, then (2, 3); then whole entries.
            let b01_lo = vreinterpretq_u16_u8(vzip1q_u8(b[0], b[1]));
            let b01_hi = vreinterpretq_u16_u8(vzip2q_u8(b[0], b[1]));
            let b23_lo = vreinterpretq_u16_u8(vzip1q_u8(b[2], b[3]));
            let b23_hi = vreinterpretq_u16_u8(vzip2q_u8(b[2], b[3]));
            [
                vreinterpretq_f32_u16(vzip1q_u16(b01_lo, b23_lo)),
                vreinterpretq_f32_u16(vzip2q_u16(b01_lo, b23_lo)),
                vreinterpretq_f32_u16(vzip1q_u16(b01_hi, b23_hi)),
                vreinterpretq_f32_u16(vzip2q_u16(b01_hi, b23_hi)),
            ]
        }
    }
    /// The zips keep the outputs in order: output j's index is byte j.
    fn byte_order() -> [u8; 32] {
        std::array::from_fn(|j| j as u8)
    }
}

/// Rows are read through memory one lane at a time (K > 32 only).
impl PackedSelect for Neon {
    /// 3 tiles of 16 outputs: 12 sum registers, 12 index registers.
    const RUN_TILES: usize = 3;
    type Row = *const f32;

    #[inline(always)]
    unsafe fn load_row<const BITS: u32>(self, p: *const f32) -> *const f32 {
        p
    }
    #[inline(always)]
    unsafe fn select<const BITS: u32>(self, row: &*const f32, idx: int32x4_t) -> float32x4_t {
        let mask = (1u32 << BITS) - 1;
        let idx = vreinterpretq_u32_s32(idx);
        let at = |lane: u32| *row.add((lane & mask) as usize);
        let values = [
            at(vgetq_lane_u32::<0>(idx)),
            at(vgetq_lane_u32::<1>(idx)),
            at(vgetq_lane_u32::<2>(idx)),
            at(vgetq_lane_u32::<3>(idx)),
        ];
        vld1q_f32(values.as_ptr())
    }
    #[inline(always)]
    fn shift_right<const BITS: u32>(self, idx: int32x4_t) -> int32x4_t {
        unsafe {
            let shift = vdupq_n_s32(-(BITS as i32));
            vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(idx), shift))
        }
    }
}
