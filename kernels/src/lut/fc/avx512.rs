//! "fc-lut-f32-avx512": table rows in registers, 16 look-ups per permute (KERNELS.md
//! "Layout 2"). A block of 12 tiles (192 outputs) keeps its accumulators in 12 zmm
//! registers while the block's index words stream past once.

use std::arch::x86_64::*;

use super::{store_tiles, FcLut, BLOCK_TILES, TILE};

/// T[m][0..Kp] = Σ_j x[m·d + j] · D^T[m][j][0..Kp], 16 codewords per FMA; rows m ≥ M zero.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn build_table(lut: &FcLut, x: &[f32], table: &mut [f32]) {
    let (d, kp, m_count) = (lut.spec.d, lut.k_pitch, lut.subspaces);
    assert!(x.len() == lut.shape.c_in && table.len() == lut.table_len());
    assert!(lut.codebooks_t.len() == m_count * d * kp && kp.is_multiple_of(16));
    let (xs, codebooks, out) = (x.as_ptr(), lut.codebooks_t.as_ptr(), table.as_mut_ptr());
    for m in 0..m_count {
        let dims = lut.dims(m);
        for c in (0..kp).step_by(16) {
            let mut acc = _mm512_setzero_ps();
            for j in 0..dims {
                // SAFETY: m·d + j < C_s (dims(m) ≤ C_s − m·d), (m·d + j)·Kp + c + 16 ≤
                // M·d·Kp and m·Kp + c + 16 ≤ G·P·Kp, all asserted above.
                let column = _mm512_loadu_ps(codebooks.add((m * d + j) * kp + c));
                acc = _mm512_fmadd_ps(_mm512_set1_ps(*xs.add(m * d + j)), column, acc);
            }
            _mm512_storeu_ps(out.add(m * kp + c), acc);
        }
    }
    table[m_count * kp..].fill(0.0);
}

/// y_t = bias_t + Σ_m T[m][b_t^(m)] for every output.
///
/// # Safety
/// The CPU has AVX-512F; `table` holds G·P rows of Kp floats (built by [`build_table`]);
/// y holds C_t floats. The layout invariants of `lut` were established by `FcLut::new`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn lookups(lut: &FcLut, table: &[f32], y: &mut [f32]) {
    assert!(table.len() >= lut.table_len() && y.len() == lut.shape.c_out);
    match lut.packing.bits {
        4 => lookups_for::<4>(lut, table, y),
        5 => lookups_for::<5>(lut, table, y),
        6 => lookups_for::<6>(lut, table, y),
        7 => lookups_for::<7>(lut, table, y),
        8 => lookups_for::<8>(lut, table, y),
        bits => unreachable!("no packing has {bits} bits"),
    }
}

/// One block (up to BLOCK_TILES tiles) at a time, accumulators in registers. The last block's tiles
/// that reach past C_t are written to a spill buffer and copied.
#[target_feature(enable = "avx512f")]
unsafe fn lookups_for<const BITS: u32>(lut: &FcLut, table: &[f32], y: &mut [f32]) {
    let mut spill = [0.0f32; BLOCK_TILES * TILE];
    for (t0, n) in lut.blocks() {
        let inside = (t0 + n) * TILE <= y.len();
        // SAFETY: FcLut::new sized `words` as tiles·TILE·G with block t0 at block_offset(t0)
        // and layout (G, n, TILE), so block t0's words are [block_offset(t0),
        // block_offset(t0) + G·n·TILE); `bias` holds tiles·TILE floats; `out` is y where
        // the n tiles lie inside C_t, else the spill buffer of BLOCK_TILES tiles.
        let block = Block {
            table: table.as_ptr(),
            k_pitch: lut.k_pitch,
            words: lut.words.as_ptr().add(lut.block_offset(t0)),
            stride: n * TILE,
            groups: lut.groups,
            per_word: lut.packing.per_word(),
            bias: lut.bias.as_ptr().add(t0 * TILE),
            out: if inside {
                y.as_mut_ptr().add(t0 * TILE)
            } else {
                spill.as_mut_ptr()
            },
        };
        // A register count per block size: 1..=BLOCK_TILES accumulators.
        match n {
            12 => tiles::<BITS, 12>(&block),
            11 => tiles::<BITS, 11>(&block),
            10 => tiles::<BITS, 10>(&block),
            9 => tiles::<BITS, 9>(&block),
            8 => tiles::<BITS, 8>(&block),
            7 => tiles::<BITS, 7>(&block),
            6 => tiles::<BITS, 6>(&block),
            5 => tiles::<BITS, 5>(&block),
            4 => tiles::<BITS, 4>(&block),
            3 => tiles::<BITS, 3>(&block),
            2 => tiles::<BITS, 2>(&block),
            1 => tiles::<BITS, 1>(&block),
            _ => unreachable!("blocks hold 1..={BLOCK_TILES} tiles"),
        }
        if !inside {
            store_tiles(y, t0, &spill[..n * TILE]);
        }
    }
}

const _: () = assert!(BLOCK_TILES == 12, "extend the match in lookups_for");

/// Pointers for a run of consecutive tiles of one block.
struct Block {
    /// The table, (G·P, Kp).
    table: *const f32,
    k_pitch: usize,
    /// Word (g, a, lane) of the run's tile a is at words + g·stride + a·TILE + lane.
    words: *const u32,
    stride: usize,
    groups: usize,
    /// P, indices per word (32 / BITS).
    per_word: usize,
    /// (NT·TILE) biases in, (NT·TILE) outputs out.
    bias: *const f32,
    out: *mut f32,
}

/// NT tiles: accumulators in registers, every subspace streamed once.
///
/// # Safety
/// AVX-512F; `b`'s pointers valid as documented on [`Block`]; every packed index < K ≤ Kp
/// (checked by FcLut::new), so the gathers of [`Row::select`] stay inside the row.
#[inline(always)]
unsafe fn tiles<const BITS: u32, const NT: usize>(b: &Block) {
    // A runtime count on purpose: with the constant P, LLVM unrolls the loop and hoists all
    // P·NT permutes above their adds, spilling most of them to the stack.
    let per_word = b.per_word;
    let mut acc = [_mm512_setzero_ps(); NT];
    for (a, acc) in acc.iter_mut().enumerate() {
        *acc = _mm512_loadu_ps(b.bias.add(a * TILE));
    }
    for g in 0..b.groups {
        let group = b.words.add(g * b.stride);
        prefetch_ahead(group, b.stride);
        let mut idx = [_mm512_setzero_si512(); NT];
        for (a, idx) in idx.iter_mut().enumerate() {
            *idx = _mm512_loadu_si512(group.add(a * TILE).cast());
        }
        for j in 0..per_word {
            let row = Row::<BITS>::load(b.table.add((g * per_word + j) * b.k_pitch));
            for a in 0..NT {
                acc[a] = _mm512_add_ps(acc[a], row.select(idx[a]));
                // The next subspace's index moves into the low bits the permutes read.
                idx[a] = _mm512_srli_epi32::<BITS>(idx[a]);
            }
        }
    }
    for (a, acc) in acc.iter().enumerate() {
        _mm512_storeu_ps(b.out.add(a * TILE), *acc);
    }
}

/// One table row T[m], as registers for K ≤ 128 (2^BITS / 16 of them) or as a pointer
/// for gathers (K > 128).
struct Row<const BITS: u32> {
    regs: [__m512; 8],
    ptr: *const f32,
}

impl<const BITS: u32> Row<BITS> {
    /// # Safety
    /// AVX-512F; `ptr` points to a row of Kp = 2^BITS floats (BITS ≤ 7) or K floats.
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        let count = if BITS <= 7 { 1 << (BITS - 4) } else { 0 };
        let mut regs = [_mm512_setzero_ps(); 8];
        for (r, reg) in regs.iter_mut().enumerate().take(count) {
            *reg = _mm512_loadu_ps(ptr.add(r * 16));
        }
        Row { regs, ptr }
    }

    /// T[m][idx_l] for the 16 lanes, reading the low BITS bits of each lane.
    ///
    /// # Safety
    /// AVX-512F; for BITS = 8 the low 8 bits of every lane are < K (the row's length).
    #[inline(always)]
    unsafe fn select(&self, idx: __m512i) -> __m512 {
        let t = &self.regs;
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
                _mm512_i32gather_ps::<4>(low, self.ptr)
            }
        }
    }
}

/// How far ahead of the group being read the index stream is prefetched, in bytes. The
/// blocks follow each other in memory, so the stream runs on into the next block.
const PREFETCH_BYTES: usize = 16384;

/// Prefetches the `stride` words (one group of the run) PREFETCH_BYTES ahead of `group`.
/// Without it, a cold index stream arrives at ≈ 11 GB/s; the look-ups consume 30+ GB/s.
#[inline(always)]
unsafe fn prefetch_ahead(group: *const u32, stride: usize) {
    // `wrapping_add`: the address may lie past the end of `words`; prefetches never fault.
    let ahead = group.cast::<u8>().wrapping_add(PREFETCH_BYTES);
    for line in (0..stride * 4).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line).cast());
    }
}
