//! The packed-word layout (docs/KERNELS.md "fc: packed words"): a table row T[m] (K ≤ 128
//! floats) lives in registers and one permute looks up a tile of 16 outputs' entries, the
//! 16 indices being the low bits of the 16 lanes of an index vector. The permutes read only
//! the low log2(K) bits of each 32-bit lane, so several subspaces' indices are packed into
//! one 32-bit word per output and a lane shift moves to the next subspace: for K = 32, six
//! 5-bit indices per word (fc6 + fc7 + fc8 stream 11 MB of indices instead of 18 MB as
//! bytes). Measured (AVX-512, Zen 5): ≈ 0.85 permutes per cycle, the index stream read at
//! ≈ 32 GB/s from DRAM with a software prefetch.
//!
//! The scalar twin reads the same words one index at a time (the authors' loop).

use crate::lut::PqSpec;
use crate::shape::FcShape;
use crate::simd::Simd;
use crate::stream::StreamBuf;

use super::Lookups;

/// Outputs per tile: the lanes of one AVX-512 register of f32 (two AVX2 registers, four
/// NEON ones).
pub(crate) const TILE: usize = 16;
/// Tiles per block: the index words of a block are one sequential stream (12 × 16 = 192
/// outputs); a level runs a block [`PackedSelect::RUN_TILES`] tiles at a time.
pub(crate) const BLOCK_TILES: usize = 12;
/// Table rows are a whole number of 16-float (AVX-512) registers.
const ROW_ALIGN: usize = 16;

/// How the assignments are packed into 32-bit words: `bits` per index, subspace order from
/// the low bits up, so index j of a word is (word >> j·bits) & (2^bits − 1).
///
/// `bits` depends on K only: K ≤ 16: 4 (one 16-float register), ≤ 32: 5 (two), ≤ 64: 6
/// (four), ≤ 128: 7 (eight), ≤ 256: 8 (gathers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packing {
    pub bits: u32,
}

impl Packing {
    fn for_k(k: usize) -> Packing {
        let bits = match k {
            0..=16 => 4,
            17..=32 => 5,
            33..=64 => 6,
            65..=128 => 7,
            _ => 8,
        };
        Packing { bits }
    }

    /// P: indices per 32-bit word.
    pub fn per_word(self) -> usize {
        (32 / self.bits) as usize
    }

    fn mask(self) -> u32 {
        (1 << self.bits) - 1
    }
}

/// The re-laid assignments. Outputs are grouped into tiles of [`TILE`] and tiles into
/// blocks of [`BLOCK_TILES`] (the last block may hold fewer, n). The block starting at tile
/// t0 begins at word t0·G·TILE and has layout (G, n, TILE): word (g, a, l) packs b_t^(m) for
/// output t = (t0 + a)·TILE + l and subspaces m = g·P .. g·P + P − 1 (see [`Packing`]).
/// Outputs t ≥ C_t and subspaces m ≥ M hold index 0 (their table rows are zero).
#[derive(Clone, Debug)]
pub(crate) struct PackedIndices {
    pub packing: Packing,
    /// G = ceil(M / P): index words per output. The table has G·P rows; rows M.. are zero.
    pub groups: usize,
    tiles: usize,
    pub words: StreamBuf<u32>,
}

impl PackedIndices {
    /// Packs (C_t, M) byte assignments (every index < K, checked by the caller).
    pub fn new(shape: FcShape, spec: PqSpec, m_count: usize, assignments: &[u8]) -> Self {
        let packing = Packing::for_k(spec.k);
        let (per_word, bits) = (packing.per_word(), packing.bits);
        let groups = m_count.div_ceil(per_word);
        let tiles = shape.c_out.div_ceil(TILE);
        let mut out = PackedIndices {
            packing,
            groups,
            tiles,
            words: StreamBuf::zeroed(tiles * TILE * groups),
        };
        for (t0, n) in out.blocks() {
            let base = out.block_offset(t0);
            for g in 0..groups {
                for a in 0..n {
                    for l in 0..TILE {
                        let t = (t0 + a) * TILE + l;
                        if t >= shape.c_out {
                            continue;
                        }
                        let row = &assignments[t * m_count..(t + 1) * m_count];
                        let subspaces = g * per_word..((g + 1) * per_word).min(m_count);
                        out.words[base + (g * n + a) * TILE + l] = subspaces
                            .enumerate()
                            .fold(0, |w, (j, m)| w | u32::from(row[m]) << (j as u32 * bits));
                    }
                }
            }
        }
        out
    }

    /// Kp, the table's row pitch: the floats of the registers that hold one row (2^bits),
    /// or for gathers (K > 128) K rounded up to 16.
    pub fn row_pitch(&self, k: usize) -> usize {
        if self.packing.bits <= 7 {
            1 << self.packing.bits
        } else {
            k.next_multiple_of(ROW_ALIGN)
        }
    }

    /// G·P: rows of the table.
    pub fn table_rows(&self) -> usize {
        self.groups * self.packing.per_word()
    }

    /// (first tile, tile count) of every block, in memory order.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let tiles = self.tiles;
        (0..tiles)
            .step_by(BLOCK_TILES)
            .map(move |t0| (t0, BLOCK_TILES.min(tiles - t0)))
    }

    /// First word of the block starting at tile t0.
    pub fn block_offset(&self, t0: usize) -> usize {
        t0 * self.groups * TILE
    }

    /// The scalar twin: y_t = bias_t + Σ_m T[m][b_t^(m)], tile by tile, safe indexing.
    /// `table`: Layout (G·P, Kp).
    pub fn lookups_scalar(&self, bias: &[f32], kp: usize, table: &[f32], y: &mut [f32]) {
        let (bits, mask) = (self.packing.bits, self.packing.mask());
        let per_word = self.packing.per_word();
        for (t0, n) in self.blocks() {
            let base = self.block_offset(t0);
            for a in 0..n {
                let tile = t0 + a;
                let mut acc = [0.0f32; TILE];
                acc.copy_from_slice(&bias[tile * TILE..(tile + 1) * TILE]);
                for g in 0..self.groups {
                    let words = &self.words[base + (g * n + a) * TILE..][..TILE];
                    for (out, &word) in acc.iter_mut().zip(words) {
                        for j in 0..per_word {
                            let b = (word >> (j as u32 * bits)) & mask;
                            *out += table[(g * per_word + j) * kp + b as usize];
                        }
                    }
                }
                store_tiles(y, tile, &acc);
            }
        }
    }
}

/// Copies the valid outputs of consecutive tiles starting at `tile` from `acc` into y,
/// dropping outputs t ≥ C_t.
fn store_tiles(y: &mut [f32], tile: usize, acc: &[f32]) {
    let start = tile * TILE;
    let n = acc.len().min(y.len().saturating_sub(start));
    y[start..start + n].copy_from_slice(&acc[..n]);
}

/// What a level needs for the packed layout: a table row held for look-ups and the select.
pub(crate) trait PackedSelect: Simd {
    /// Tiles whose accumulators one run keeps in registers (≤ [`BLOCK_TILES`]).
    const RUN_TILES: usize;
    /// A table row T[m] ready for [`PackedSelect::select`].
    type Row: Copy;
    /// # Safety
    /// `p` points to a row of Kp floats ([`PackedIndices::row_pitch`]) for this `BITS`.
    unsafe fn load_row<const BITS: u32>(self, p: *const f32) -> Self::Row;
    /// T[m][idx_l] for every lane l, reading the low BITS bits of each lane.
    ///
    /// # Safety
    /// For rows a level reads through memory (gathers), the low BITS bits of every lane are
    /// < K (checked when the layer was prepared).
    unsafe fn select<const BITS: u32>(self, row: &Self::Row, idx: Self::I32) -> Self::F32;
    /// Logical right shift of every lane by BITS.
    fn shift_right<const BITS: u32>(self, idx: Self::I32) -> Self::I32;
}

/// How far ahead of the group being read the index stream is prefetched, in bytes. The
/// blocks follow each other in memory, so the stream runs on into the next block. Without
/// it a cold index stream arrived at ≈ 11 GB/s (AVX-512, Zen 5); the look-ups consume 30+.
const PREFETCH_BYTES: usize = 16384;

/// Accumulator vectors per tile, at most (NEON: 4 lanes).
const MAX_TILE_VECS: usize = 4;

/// y_t = bias_t + Σ_m T[m][b_t^(m)] for every output: a block's runs of tiles keep their
/// accumulators in registers while the block's index words stream past once.
#[inline(always)]
pub(crate) fn lookups<S: PackedSelect>(s: S, op: Lookups<'_>) {
    let super::FcIndices::Packed(idx) = &op.lut.indices else {
        unreachable!("the packed kernel runs on packed indices only")
    };
    let lut = op.lut;
    let rows = idx.table_rows();
    assert!(op.table.len() >= rows * lut.k_pitch && op.y.len() == lut.shape.c_out);
    assert!(S::LANES * MAX_TILE_VECS >= TILE && TILE.is_multiple_of(S::LANES));
    assert!(lut.bias.len() >= idx.tiles * TILE);
    match idx.packing.bits {
        4 => lookups_for::<S, 4>(s, idx, op.table, lut, op.y),
        5 => lookups_for::<S, 5>(s, idx, op.table, lut, op.y),
        6 => lookups_for::<S, 6>(s, idx, op.table, lut, op.y),
        7 => lookups_for::<S, 7>(s, idx, op.table, lut, op.y),
        8 => lookups_for::<S, 8>(s, idx, op.table, lut, op.y),
        bits => unreachable!("no packing has {bits} bits"),
    }
}

#[inline(always)]
fn lookups_for<S: PackedSelect, const BITS: u32>(
    s: S,
    idx: &PackedIndices,
    table: &[f32],
    lut: &super::FcLut,
    y: &mut [f32],
) {
    let c_out = y.len();
    let mut spill = [0.0f32; BLOCK_TILES * TILE];
    for (t0, n) in idx.blocks() {
        let mut a = 0;
        while a < n {
            let run = S::RUN_TILES.min(n - a);
            let tile = t0 + a;
            let inside = (tile + run) * TILE <= c_out;
            // SAFETY: PackedIndices::new sized `words` as tiles·TILE·G with block t0 at
            // block_offset(t0) and layout (G, n, TILE), so the run's words lie inside; the
            // bias holds tiles·TILE floats (asserted by `lookups`); `out` is y where the run
            // lies inside C_t, else the spill buffer of BLOCK_TILES tiles.
            let block = Block {
                table: table.as_ptr(),
                k_pitch: lut.k_pitch,
                words: unsafe { idx.words.as_ptr().add(idx.block_offset(t0) + a * TILE) },
                stride: n * TILE,
                groups: idx.groups,
                per_word: idx.packing.per_word(),
                bias: unsafe { lut.bias.as_ptr().add(tile * TILE) },
                out: if inside {
                    unsafe { y.as_mut_ptr().add(tile * TILE) }
                } else {
                    spill.as_mut_ptr()
                },
            };
            // SAFETY: the block's pointers are valid as documented on `Block`; every packed
            // index is < K (checked by FcLut::new).
            unsafe {
                match run {
                    1 => tiles::<S, BITS, 1>(s, &block),
                    2 => tiles::<S, BITS, 2>(s, &block),
                    3 => tiles::<S, BITS, 3>(s, &block),
                    4 => tiles::<S, BITS, 4>(s, &block),
                    5 => tiles::<S, BITS, 5>(s, &block),
                    6 => tiles::<S, BITS, 6>(s, &block),
                    7 => tiles::<S, BITS, 7>(s, &block),
                    8 => tiles::<S, BITS, 8>(s, &block),
                    9 => tiles::<S, BITS, 9>(s, &block),
                    10 => tiles::<S, BITS, 10>(s, &block),
                    11 => tiles::<S, BITS, 11>(s, &block),
                    12 => tiles::<S, BITS, 12>(s, &block),
                    _ => unreachable!("runs hold 1..={BLOCK_TILES} tiles"),
                }
            }
            if !inside {
                store_tiles(y, tile, &spill[..run * TILE]);
            }
            a += run;
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
/// `b`'s pointers valid as documented on [`Block`]; every packed index < K ≤ Kp.
#[inline(always)]
unsafe fn tiles<S: PackedSelect, const BITS: u32, const NT: usize>(s: S, b: &Block) {
    let vecs = TILE / S::LANES;
    // A runtime count on purpose: with the constant P, LLVM unrolls the loop and hoists all
    // P·NT permutes above their adds, spilling most of them to the stack.
    let per_word = b.per_word;
    let mut acc = [[s.zero(); MAX_TILE_VECS]; NT];
    for (a, tile) in acc.iter_mut().enumerate() {
        for (v, reg) in tile.iter_mut().enumerate().take(vecs) {
            *reg = s.load(b.bias.add(a * TILE + v * S::LANES));
        }
    }
    for g in 0..b.groups {
        let group = b.words.add(g * b.stride);
        prefetch_ahead(s, group, NT * TILE);
        let mut idx = [[s.zero_i32(); MAX_TILE_VECS]; NT];
        for (a, tile) in idx.iter_mut().enumerate() {
            for (v, reg) in tile.iter_mut().enumerate().take(vecs) {
                *reg = s.load_i32(group.add(a * TILE + v * S::LANES).cast());
            }
        }
        for j in 0..per_word {
            let row = s.load_row::<BITS>(b.table.add((g * per_word + j) * b.k_pitch));
            for a in 0..NT {
                for v in 0..vecs {
                    acc[a][v] = s.add(acc[a][v], s.select::<BITS>(&row, idx[a][v]));
                    // The next subspace's index moves into the low bits the select reads.
                    idx[a][v] = s.shift_right::<BITS>(idx[a][v]);
                }
            }
        }
    }
    for (a, tile) in acc.iter().enumerate() {
        for (v, reg) in tile.iter().enumerate().take(vecs) {
            s.store(b.out.add(a * TILE + v * S::LANES), *reg);
        }
    }
}

/// Prefetches the run's `words` words of one group PREFETCH_BYTES ahead.
#[inline(always)]
fn prefetch_ahead<S: PackedSelect>(s: S, group: *const u32, words: usize) {
    // `wrapping_add`: the address may lie past the end of `words`; prefetches never fault.
    let ahead = group.cast::<u8>().wrapping_add(PREFETCH_BYTES);
    for line in (0..words * 4).step_by(64) {
        s.prefetch(ahead.wrapping_add(line));
    }
}
