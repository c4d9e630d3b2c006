//! "fc-lut-i8-avx512": byte-permute look-ups (`vpermi2b`, AVX-512 VBMI) summed 4 subspaces
//! at a time with `vpdpbusd` (AVX-512 VNNI): 2 instructions per 64 look-ups for K ≤ 32.

use std::arch::x86_64::*;

use super::fc::{FcI8Scratch, FcLutI8, BLOCK_TILES, PIECE, QUAD, TILE};

/// The shared quantization code, compiled with AVX-512 enabled (same IEEE operations in the
/// same order as the scalar path: LLVM never fuses or reorders them).
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn quantize_table(lut: &FcLutI8, x: &[f32], scratch: &mut FcI8Scratch) {
    lut.quantize_table(x, scratch);
}

/// y_t = (bias_t + Σo) + s·Σ_m q[m][b_t^(m)] for every output.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/VBMI/VNNI; `scratch.q` holds the quantized table of `lut`
/// (q_len bytes); the layout invariants of `lut.idx` were established by `FcLutI8::new`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
pub(super) unsafe fn lookups(lut: &FcLutI8, scratch: &FcI8Scratch, y: &mut [f32]) {
    let q = scratch.q.as_slice();
    assert!(q.len() >= lut.q_len() && y.len() == lut.shape().c_out);
    match lut.kp {
        0..=32 => lookups_for::<1>(lut, scratch, y),
        64 => lookups_for::<2>(lut, scratch, y),
        128 => lookups_for::<4>(lut, scratch, y),
        256 => lookups_for::<8>(lut, scratch, y),
        kp => unreachable!("Kp = {kp} is not a power of two ≤ 256"),
    }
}

/// P pieces of 128 bytes per quad's table.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,avx512vnni")]
unsafe fn lookups_for<const P: usize>(lut: &FcLutI8, scratch: &FcI8Scratch, y: &mut [f32]) {
    let masks = piece_masks::<P>(lut.kp);
    let mut spill = [0.0f32; BLOCK_TILES * TILE];
    let c_out = y.len();
    for (t0, n) in lut.blocks() {
        let inside = (t0 + n) * TILE <= c_out;
        // SAFETY: `FcLutI8::new` sized `idx` as tiles·16·quads·4 bytes with block t0 at
        // block_offset(t0) and Layout (quads, n, 64); `bias` holds tiles·16 floats; the
        // table holds quads·4·Kp + 128 bytes, so every quad's P pieces (4·Kp bytes, or 128
        // when 4·Kp < 128) are inside; `out` is y where the block lies inside C_t, else the
        // spill buffer of BLOCK_TILES tiles.
        let block = Block {
            q: scratch.q.as_slice().as_ptr(),
            quad_bytes: QUAD * lut.kp,
            idx: lut.idx.as_ptr().add(lut.block_offset(t0)),
            stride: n * TILE * QUAD,
            quads: lut.quads,
            bias: lut.bias.as_ptr().add(t0 * TILE),
            out: if inside {
                y.as_mut_ptr().add(t0 * TILE)
            } else {
                spill.as_mut_ptr()
            },
            scale: scratch.scale,
            offset_sum: scratch.offset_sum,
        };
        match n {
            12 => tiles::<P, 12>(&block, &masks),
            11 => tiles::<P, 11>(&block, &masks),
            10 => tiles::<P, 10>(&block, &masks),
            9 => tiles::<P, 9>(&block, &masks),
            8 => tiles::<P, 8>(&block, &masks),
            7 => tiles::<P, 7>(&block, &masks),
            6 => tiles::<P, 6>(&block, &masks),
            5 => tiles::<P, 5>(&block, &masks),
            4 => tiles::<P, 4>(&block, &masks),
            3 => tiles::<P, 3>(&block, &masks),
            2 => tiles::<P, 2>(&block, &masks),
            1 => tiles::<P, 1>(&block, &masks),
            _ => unreachable!("blocks hold 1..={BLOCK_TILES} tiles"),
        }
        if !inside {
            let start = t0 * TILE;
            y[start..].copy_from_slice(&spill[..c_out - start]);
        }
    }
}

const _: () = assert!(BLOCK_TILES == 12, "extend the match in lookups_for");

/// Per piece p, the index bytes (4·l + j) whose subspace slot j lives in that piece. For
/// Kp = 256 (P = 8) piece 2·j + h holds slot j's codewords h·128 .. h·128 + 127: its mask
/// is slot j's and is further split by bit 7 of each index at look-up time.
fn piece_masks<const P: usize>(kp: usize) -> [u64; 8] {
    let mut masks = [0u64; 8];
    let pattern = |slots: u64| slots * 0x1111_1111_1111_1111;
    for j in 0..QUAD {
        let piece = if kp <= PIECE { j * kp / PIECE } else { 2 * j };
        masks[piece] |= pattern(1 << j);
        if kp > PIECE {
            masks[piece + 1] |= pattern(1 << j);
        }
    }
    masks
}

/// Pointers for one block of tiles.
struct Block {
    /// The quantized table: quad g's pieces at g·quad_bytes.
    q: *const i8,
    quad_bytes: usize,
    /// Index vector (g, a) at idx + g·stride + a·64.
    idx: *const u8,
    stride: usize,
    quads: usize,
    /// (NT·16) biases in, (NT·16) outputs out.
    bias: *const f32,
    out: *mut f32,
    scale: f32,
    offset_sum: f32,
}

/// NT tiles: i32 accumulators in registers, every quad streamed once.
///
/// # Safety
/// AVX-512 F/BW/VBMI/VNNI; the pointers of `b` valid as documented on [`Block`].
#[inline(always)]
unsafe fn tiles<const P: usize, const NT: usize>(b: &Block, masks: &[u64; 8]) {
    let ones = _mm512_set1_epi8(1);
    let mut acc = [_mm512_setzero_si512(); NT];
    for g in 0..b.quads {
        let group = b.idx.add(g * b.stride);
        prefetch_ahead(group, b.stride);
        let table = b.q.add(g * b.quad_bytes);
        let mut pieces = [[_mm512_setzero_si512(); 2]; P];
        for (p, regs) in pieces.iter_mut().enumerate() {
            regs[0] = _mm512_loadu_si512(table.add(p * PIECE).cast());
            regs[1] = _mm512_loadu_si512(table.add(p * PIECE + 64).cast());
        }
        for (a, acc) in acc.iter_mut().enumerate() {
            let idx = _mm512_loadu_si512(group.add(a * TILE * QUAD).cast());
            let values = select::<P>(&pieces, idx, masks);
            // u8 ones × i8 values: each i32 lane adds its output's 4 subspaces.
            *acc = _mm512_dpbusd_epi32(*acc, ones, values);
        }
    }
    let scale = _mm512_set1_ps(b.scale);
    let offset_sum = _mm512_set1_ps(b.offset_sum);
    for (a, acc) in acc.iter().enumerate() {
        let offset = _mm512_add_ps(_mm512_loadu_ps(b.bias.add(a * TILE)), offset_sum);
        let y = _mm512_add_ps(offset, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(*acc)));
        _mm512_storeu_ps(b.out.add(a * TILE), y);
    }
}

/// The 64 table bytes the index bytes select.
#[inline(always)]
unsafe fn select<const P: usize>(
    pieces: &[[__m512i; 2]; P],
    idx: __m512i,
    masks: &[u64; 8],
) -> __m512i {
    if P == 1 {
        return _mm512_permutex2var_epi8(pieces[0][0], idx, pieces[0][1]);
    }
    // Codewords ≥ 128 (K > 128): bit 7 of the index picks the second piece of a slot.
    let high = if P == 8 { _mm512_movepi8_mask(idx) } else { 0 };
    let mut out = _mm512_setzero_si512();
    for (p, regs) in pieces.iter().enumerate() {
        let mut mask = masks[p];
        if P == 8 {
            mask &= if p % 2 == 1 { high } else { !high };
        }
        let part = _mm512_maskz_permutex2var_epi8(mask, regs[0], idx, regs[1]);
        out = _mm512_or_si512(out, part);
    }
    out
}

/// How far ahead of the quad being read the index stream is prefetched, in bytes.
const PREFETCH_BYTES: usize = 16384;

/// Prefetches the `stride` bytes of one quad's index vectors PREFETCH_BYTES ahead.
#[inline(always)]
unsafe fn prefetch_ahead(group: *const u8, stride: usize) {
    // `wrapping_add`: the address may lie past the end of `idx`; prefetches never fault.
    let ahead = group.wrapping_add(PREFETCH_BYTES);
    for line in (0..stride).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
    }
}
