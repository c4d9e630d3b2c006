//! "fc-lut-f32-avx2": 8 look-ups per `vpermps` on 8-float pieces of the table row, merged
//! by blends on the higher index bits (K ≤ 32), or gathers (K > 32). A tile of 16 outputs
//! is two ymm registers; 2 tiles (4 accumulators) run at a time, which with 16 registers
//! leaves room for the row and the index words.

use std::arch::x86_64::*;

use super::{store_tiles, FcLut, BLOCK_TILES, TILE};

/// Lanes per ymm register.
const LANES: usize = 8;
/// Tiles per run in full blocks (register budget, see the module comment).
const RUN_TILES: usize = 2;
const _: () = assert!(BLOCK_TILES.is_multiple_of(RUN_TILES));

/// T[m][0..Kp] = Σ_j x[m·d + j] · D^T[m][j][0..Kp], 8 codewords per FMA; rows m ≥ M zero.
///
/// # Safety
/// The CPU has AVX2 and FMA. (Memory accesses are bounds-checked slices.)
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn build_table(lut: &FcLut, x: &[f32], table: &mut [f32]) {
    let (d, kp) = (lut.spec.d, lut.k_pitch);
    for (m, row) in table.chunks_exact_mut(kp).enumerate() {
        if m >= lut.subspaces {
            row.fill(0.0);
            continue;
        }
        let dims = lut.dims(m);
        for (c, out) in row.chunks_exact_mut(LANES).enumerate() {
            let mut acc = _mm256_setzero_ps();
            for j in 0..dims {
                let column = &lut.codebooks_t[(m * d + j) * kp + c * LANES..][..LANES];
                let xj = _mm256_set1_ps(x[m * d + j]);
                acc = _mm256_fmadd_ps(xj, _mm256_loadu_ps(column.as_ptr()), acc);
            }
            _mm256_storeu_ps(out.as_mut_ptr(), acc);
        }
    }
}

/// y_t = bias_t + Σ_m T[m][b_t^(m)] for every output.
///
/// # Safety
/// The CPU has AVX2 and FMA; `table` holds G·P rows of Kp floats (built by
/// [`build_table`]); y holds C_t floats. `lut`'s layout invariants come from `FcLut::new`.
#[target_feature(enable = "avx2,fma")]
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

/// Full blocks run [`RUN_TILES`] tiles at a time, the last partial block one tile at a
/// time. Tiles that reach past C_t are written to a spill buffer and copied.
#[target_feature(enable = "avx2,fma")]
unsafe fn lookups_for<const BITS: i32>(lut: &FcLut, table: &[f32], y: &mut [f32]) {
    let mut spill = [0.0f32; RUN_TILES * TILE];
    for (t0, n) in lut.blocks() {
        // SAFETY (all pointer arithmetic below): FcLut::new sized `words` as tiles·TILE·G
        // with block t0 at block_offset(t0) and layout (G, n, TILE), so block t0's words are
        // [block_offset(t0), block_offset(t0) + G·n·TILE); `bias` holds tiles·TILE floats;
        // `out` is y where the nt tiles lie inside C_t, else the spill buffer.
        let words = lut.words.as_ptr().add(lut.block_offset(t0));
        let stride = n * TILE;
        let nt = if n == BLOCK_TILES { RUN_TILES } else { 1 };
        for a in (0..n).step_by(nt) {
            let tile = t0 + a;
            let inside = (tile + nt) * TILE <= y.len();
            let out = if inside {
                y.as_mut_ptr().add(tile * TILE)
            } else {
                spill.as_mut_ptr()
            };
            let block = Block {
                table: table.as_ptr(),
                k_pitch: lut.k_pitch,
                words: words.add(a * TILE),
                stride,
                groups: lut.groups,
                per_word: lut.packing.per_word(),
                bias: lut.bias.as_ptr().add(tile * TILE),
                out,
            };
            if nt == RUN_TILES {
                tiles::<BITS, { 2 * RUN_TILES }>(&block);
            } else {
                tiles::<BITS, 2>(&block);
            }
            if !inside {
                store_tiles(y, tile, &spill[..nt * TILE]);
            }
        }
    }
}

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
    /// Biases in, outputs out: one float per lane of the run.
    bias: *const f32,
    out: *mut f32,
}

/// (`BITS` is i32 here because the AVX2 shift intrinsics take an i32 count.)
/// A run of NV / 2 tiles (NV ymm accumulators), every subspace streamed once.
///
/// # Safety
/// AVX2+FMA; `b`'s pointers valid as documented on [`Block`]; every packed index < K ≤ Kp
/// (checked by FcLut::new), so the gathers of [`Row::select`] stay inside the row.
#[inline(always)]
unsafe fn tiles<const BITS: i32, const NV: usize>(b: &Block) {
    // A runtime count on purpose: with the constant P, LLVM unrolls the loop and hoists
    // the permutes above their adds, spilling them to the stack.
    let per_word = b.per_word;
    // Half-tiles are contiguous (lanes 0..8 then 8..16), so vector v sits at v·LANES.
    let mut acc = [_mm256_setzero_ps(); NV];
    for (v, acc) in acc.iter_mut().enumerate() {
        *acc = _mm256_loadu_ps(b.bias.add(v * LANES));
    }
    for g in 0..b.groups {
        let group = b.words.add(g * b.stride);
        let mut idx = [_mm256_setzero_si256(); NV];
        for (v, idx) in idx.iter_mut().enumerate() {
            *idx = _mm256_loadu_si256(group.add(v * LANES).cast());
        }
        for j in 0..per_word {
            let row = Row::<BITS>::load(b.table.add((g * per_word + j) * b.k_pitch));
            for v in 0..NV {
                acc[v] = _mm256_add_ps(acc[v], row.select(idx[v]));
                idx[v] = _mm256_srli_epi32::<BITS>(idx[v]);
            }
        }
    }
    for (v, acc) in acc.iter().enumerate() {
        _mm256_storeu_ps(b.out.add(v * LANES), *acc);
    }
}

/// One table row T[m]: 2 (K ≤ 16) or 4 (K ≤ 32) ymm registers, or a pointer for gathers.
struct Row<const BITS: i32> {
    regs: [__m256; 4],
    ptr: *const f32,
}

impl<const BITS: i32> Row<BITS> {
    /// # Safety
    /// AVX2; `ptr` points to a row of Kp floats, Kp = 2^BITS for BITS ≤ 5.
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        let count = match BITS {
            4 => 2,
            5 => 4,
            _ => 0,
        };
        let mut regs = [_mm256_setzero_ps(); 4];
        for (r, reg) in regs.iter_mut().enumerate().take(count) {
            *reg = _mm256_loadu_ps(ptr.add(r * LANES));
        }
        Row { regs, ptr }
    }

    /// T[m][idx_l] for the 8 lanes, reading the low BITS bits of each lane.
    ///
    /// # Safety
    /// AVX2; the low BITS bits of every lane are < K (the row's length).
    #[inline(always)]
    unsafe fn select(&self, idx: __m256i) -> __m256 {
        let t = &self.regs;
        // `blendv` picks by each lane's sign bit: shift the deciding index bit up to it.
        let bit3 = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx));
        match BITS {
            4 => {
                let lo = _mm256_permutevar8x32_ps(t[0], idx);
                let hi = _mm256_permutevar8x32_ps(t[1], idx);
                _mm256_blendv_ps(lo, hi, bit3)
            }
            5 => {
                let bit4 = _mm256_castsi256_ps(_mm256_slli_epi32::<27>(idx));
                let q0 = _mm256_permutevar8x32_ps(t[0], idx);
                let q1 = _mm256_permutevar8x32_ps(t[1], idx);
                let q2 = _mm256_permutevar8x32_ps(t[2], idx);
                let q3 = _mm256_permutevar8x32_ps(t[3], idx);
                let lo = _mm256_blendv_ps(q0, q1, bit3);
                let hi = _mm256_blendv_ps(q2, q3, bit3);
                _mm256_blendv_ps(lo, hi, bit4)
            }
            _ => {
                let low = _mm256_and_si256(idx, _mm256_set1_epi32((1 << BITS) - 1));
                _mm256_i32gather_ps::<4>(self.ptr, low)
            }
        }
    }
}
