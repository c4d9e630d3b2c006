//! Look-up-table fully-connected kernels (METHOD.md "Fully-connected layer", KERNELS.md
//! "Layout 2"): y_t = bias_t + Σ_m T[m][b_t^(m)] with T[m][k] = < x^(m), D^(m)_k >.
//!
//! Glossary: C_s = `shape.c_in`, C_t = `shape.c_out`, d = `spec.d`, K = `spec.k`,
//! M = ceil(C_s / d) subspaces, T the table (one row of K inner products per subspace).
//!
//! How the look-ups are vectorised: a table row T[m] (K ≤ 32 floats) lives in one or two
//! registers and one permute (`vpermps`/`vpermt2ps`) looks up 16 outputs' entries at once,
//! the 16 indices being the low bits of the 16 lanes of an index register. The permutes read
//! only the low log2(K) bits of each 32-bit lane, so several subspaces' indices are packed
//! into one 32-bit word per output and a lane shift moves to the next subspace: for K = 32,
//! six 5-bit indices per word; fc6 + fc7 + fc8 stream 11 MB of indices instead of 18 MB as
//! bytes. Measured (AVX-512): ≈ 0.85 permutes per cycle, the index stream read at ≈ 32 GB/s
//! from DRAM with a software prefetch (≈ 40 GB/s is one core's plain-read ceiling here).
//!
//! Kernel names (the ID in results): "fc-lut-f32-scalar", "fc-lut-f32-avx2",
//! "fc-lut-f32-avx512" (exact f32).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod reference;
mod scalar;

pub use reference::fc_reference;

use crate::isa::Isa;
use crate::lut::{check_fc, LutError, Phase, PqSpec};
use crate::shape::FcShape;

/// Outputs per tile: the lanes of one AVX-512 register of f32 (two AVX2 registers).
const TILE: usize = 16;
/// Tiles per block: the accumulators a kernel keeps in registers while it streams every
/// subspace of the block's indices (12 × 16 = 192 outputs). Measured on fc6/fc7: 12 is
/// ≈ 6% faster than 8; with K ≤ 64 the AVX-512 loop still needs no spills.
const BLOCK_TILES: usize = 12;
/// Table rows are a whole number of 16-float (AVX-512) registers.
const ROW_ALIGN: usize = 16;

/// How the assignments are packed into 32-bit words: `bits` per index, subspace order from
/// the low bits up, so index j of a word is (word >> j·bits) & (2^bits − 1).
///
/// `bits` depends on K only, chosen by the register family that looks it up:
/// K ≤ 16: 4 (one 16-float register), ≤ 32: 5 (two), ≤ 64: 6 (four), ≤ 128: 7 (eight),
/// ≤ 256: 8 (gathers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packing {
    bits: u32,
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
    fn per_word(self) -> usize {
        (32 / self.bits) as usize
    }

    /// Kp, the table's row pitch: the floats of the registers that hold one row (2^bits),
    /// or for gathers (K > 128) K rounded up to [`ROW_ALIGN`].
    fn row_pitch(self, k: usize) -> usize {
        if self.bits <= 7 {
            1 << self.bits
        } else {
            k.next_multiple_of(ROW_ALIGN)
        }
    }

    fn mask(self) -> u32 {
        (1 << self.bits) - 1
    }
}

/// One product-quantized fully-connected layer, prepared for the look-up kernels.
#[derive(Clone, Debug)]
pub struct FcLut {
    shape: FcShape,
    spec: PqSpec,
    /// M = ceil(C_s / d).
    subspaces: usize,
    packing: Packing,
    /// G = ceil(M / P): index words per output. The table has G·P rows; rows M.. are zero,
    /// and the padded index slots hold 0, so they add nothing.
    groups: usize,
    /// Kp ≥ K: the table's row pitch, see [`Packing::row_pitch`].
    k_pitch: usize,
    /// The codebooks transposed per subspace, layout (M, d, Kp): dim j of codeword k of
    /// subspace m at (m·d + j)·Kp + k; zero for k ≥ K. A table row is then d K-wide FMAs.
    codebooks_t: Vec<f32>,
    /// The assignments re-laid for the kernels. Outputs are grouped into tiles of [`TILE`]
    /// and tiles into blocks of [`BLOCK_TILES`] (the last block may hold fewer, n). The block
    /// starting at tile t0 begins at word t0·G·TILE and has layout (G, n, TILE): word
    /// (g, a, l) packs b_t^(m) for output t = (t0 + a)·TILE + l and subspaces
    /// m = g·P .. g·P + P − 1 (see [`Packing`]). Outputs t ≥ C_t hold index 0.
    words: Vec<u32>,
    /// Layout (tiles·TILE): bias_t, zero for t ≥ C_t.
    bias: Vec<f32>,
}

impl FcLut {
    /// Validates lengths and every index < K (LutError), then re-lays the assignments for
    /// the kernels' access pattern (see the `words` field: per block of 192 outputs, the
    /// indices of every subspace in one sequential stream, bit-packed).
    ///
    /// Buffers: `centroids` (M, K, d); `assignments` (C_t, M); `bias` (C_t).
    pub fn new(
        shape: FcShape,
        spec: PqSpec,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        let m_count = check_fc(shape, spec, centroids, assignments, bias)?;

        let packing = Packing::for_k(spec.k);
        let groups = m_count.div_ceil(packing.per_word());
        let k_pitch = packing.row_pitch(spec.k);
        let tiles = shape.c_out.div_ceil(TILE);
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(tiles * TILE, 0.0);
        let mut lut = FcLut {
            shape,
            spec,
            subspaces: m_count,
            packing,
            groups,
            k_pitch,
            codebooks_t: transpose_codebooks(spec, m_count, k_pitch, centroids),
            words: Vec::new(),
            bias: padded_bias,
        };
        lut.words = lut.pack(assignments);
        Ok(lut)
    }

    pub fn shape(&self) -> FcShape {
        self.shape
    }

    pub fn spec(&self) -> PqSpec {
        self.spec
    }

    /// Bytes of re-laid indices one forward pass streams.
    pub fn index_bytes(&self) -> usize {
        self.words.len() * 4
    }

    /// Floats of table scratch one forward pass needs: G·P rows of Kp.
    pub fn table_len(&self) -> usize {
        self.table_rows() * self.k_pitch
    }

    /// x: (C_s); y: (C_t), every element overwritten. `scratch` holds the table, layout
    /// (G·P, Kp): T[m][k] at m·Kp + k; it grows on the first call only.
    /// Calls `phase(Phase::Table)` once the table is built and `phase(Phase::Lookup)` at the
    /// end.
    ///
    /// Panics if `isa` is not available on this CPU (callers check [`Isa::require`] first)
    /// or if x or y has the wrong length: the SIMD kernels rely on both.
    pub fn forward(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut Vec<f32>,
        phase: &mut dyn FnMut(Phase),
    ) {
        assert!(isa.is_available(), "ISA {isa} is not available on this CPU");
        assert_eq!(x.len(), self.shape.c_in, "x must hold C_s floats");
        assert_eq!(y.len(), self.shape.c_out, "y must hold C_t floats");
        scratch.resize(self.table_len(), 0.0);
        let table = &mut scratch[..];
        match isa {
            Isa::Scalar => scalar::build_table(self, x, table),
            // SAFETY: the CPU has AVX2+FMA (asserted above).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::build_table(self, x, table) },
            // SAFETY: the CPU has AVX-512F (asserted above).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { avx512::build_table(self, x, table) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar ISA is available off x86_64"),
        }
        phase(Phase::Table);
        let table = &scratch[..];
        match isa {
            Isa::Scalar => scalar::lookups(self, table, y),
            // SAFETY: as above; lengths of x, y and the table were checked above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::lookups(self, table, y) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { avx512::lookups(self, table, y) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar ISA is available off x86_64"),
        }
        phase(Phase::Lookup);
    }

    /// The kernel's ID in results and on the command line.
    pub fn kernel_name(isa: Isa) -> &'static str {
        match isa {
            Isa::Scalar => "fc-lut-f32-scalar",
            Isa::Avx2 => "fc-lut-f32-avx2",
            Isa::Avx512 => "fc-lut-f32-avx512",
        }
    }

    fn table_rows(&self) -> usize {
        self.groups * self.packing.per_word()
    }

    /// Dims of subspace m that exist in x: d, or fewer for a partial last subspace.
    fn dims(&self, m: usize) -> usize {
        self.spec.d.min(self.shape.c_in - m * self.spec.d)
    }

    fn tiles(&self) -> usize {
        self.shape.c_out.div_ceil(TILE)
    }

    /// (first tile, tile count) of every block, in memory order.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let tiles = self.tiles();
        (0..tiles)
            .step_by(BLOCK_TILES)
            .map(move |t0| (t0, BLOCK_TILES.min(tiles - t0)))
    }

    /// First word of the block starting at tile t0.
    fn block_offset(&self, t0: usize) -> usize {
        t0 * self.groups * TILE
    }

    /// Packs (C_t, M) byte assignments into the `words` layout.
    fn pack(&self, assignments: &[u8]) -> Vec<u32> {
        let (m_count, per_word, bits) =
            (self.subspaces, self.packing.per_word(), self.packing.bits);
        let mut words = vec![0u32; self.tiles() * TILE * self.groups];
        for (t0, n) in self.blocks() {
            let base = self.block_offset(t0);
            for g in 0..self.groups {
                for a in 0..n {
                    for l in 0..TILE {
                        let t = (t0 + a) * TILE + l;
                        if t >= self.shape.c_out {
                            continue;
                        }
                        let row = &assignments[t * m_count..(t + 1) * m_count];
                        let subspaces = g * per_word..((g + 1) * per_word).min(m_count);
                        words[base + (g * n + a) * TILE + l] = subspaces
                            .enumerate()
                            .fold(0, |w, (j, m)| w | u32::from(row[m]) << (j as u32 * bits));
                    }
                }
            }
        }
        words
    }
}

/// (M, K, d) → (M, d, Kp), zero for k ≥ K.
fn transpose_codebooks(
    spec: PqSpec,
    m_count: usize,
    k_pitch: usize,
    centroids: &[f32],
) -> Vec<f32> {
    let (d, k) = (spec.d, spec.k);
    let mut out = vec![0.0f32; m_count * d * k_pitch];
    for m in 0..m_count {
        for kk in 0..k {
            for j in 0..d {
                out[(m * d + j) * k_pitch + kk] = centroids[(m * k + kk) * d + j];
            }
        }
    }
    out
}

/// Copies the valid outputs of `tiles` consecutive tiles starting at `tile` from `acc`
/// (tiles·TILE floats) into y, dropping outputs t ≥ C_t.
fn store_tiles(y: &mut [f32], tile: usize, acc: &[f32]) {
    let start = tile * TILE;
    let n = acc.len().min(y.len().saturating_sub(start));
    y[start..start + n].copy_from_slice(&acc[..n]);
}
