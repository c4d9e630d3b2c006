//! "fc-lut-i8-*": fully-connected look-ups with an int8 table (approximate).
//!
//! Glossary as in [`crate::lut::fc`]: C_s, C_t, d, K, M = ceil(C_s / d), T the table.
//!
//! Quantization, once per layer and image (shared plain Rust: every ISA computes the same
//! table): o_m = (max_k T[m][k] + min_k T[m][k]) / 2, one scale
//! s = max_m (max_k T[m][k] − min_k T[m][k]) / 254 (times a margin), q[m][k] =
//! round((T[m][k] − o_m) / s) ∈ [−127, 127]; then y_t = (bias_t + Σ_m o_m) + s·Σ_m
//! q[m][b_t^(m)]. Error vs the exact path: at most s/2 (+ f32 slack) per look-up.
//!
//! Look-up layout: subspaces in quads of 4; a quad's table is 4·Kp bytes (Kp = K rounded up
//! to a power of two), one or more 128-byte "pieces" of two registers. Outputs are tiled by
//! 16; one 64-byte index vector holds a tile's 4 subspaces of a quad, byte 4·l + j for
//! output l and subspace j, storing (j·Kp + b) mod 128 (b itself for K > 128), so that one
//! `vpermi2b` per piece looks up all 64 bytes and one `vpdpbusd` adds each output's 4
//! values into its i32 lane. Tiles are grouped into blocks of [`BLOCK_TILES`] whose
//! accumulators stay in registers while the block's index vectors stream past.

use super::{isa_supported, AlignedBuf, Q_MAX};
use crate::isa::Isa;
use crate::lut::{check_fc, LutError, Phase, PqSpec};
use crate::shape::FcShape;

/// Outputs per tile: the i32 lanes of one AVX-512 register.
pub(crate) const TILE: usize = 16;
/// Tiles per block (accumulator registers).
pub(crate) const BLOCK_TILES: usize = 12;
/// Subspaces summed by one `vpdpbusd`.
pub(crate) const QUAD: usize = 4;
/// Bytes of one piece of a quad's table (two registers).
pub(crate) const PIECE: usize = 128;

/// The scale is the widest table row's range times this margin over 2·127, so that the f32
/// rounding of (T − o)/s can never reach 127.5.
const SCALE_MARGIN: f32 = 1.0 + 1e-4;

/// 1.5·2^23: adding it rounds an f32 of magnitude < 2^22 to an integer (half to even), which
/// then sits in the low mantissa bits. Vectorises where `round_ties_even` + cast does not.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// One product-quantized fully-connected layer, prepared for the int8 look-up kernels.
#[derive(Clone, Debug)]
pub struct FcLutI8 {
    shape: FcShape,
    spec: PqSpec,
    /// M.
    pub(crate) subspaces: usize,
    /// ceil(M / 4).
    pub(crate) quads: usize,
    /// Kp: bytes per subspace in the quantized table (K rounded up to a power of two).
    pub(crate) kp: usize,
    /// Floats per row of the f32 table: K rounded up to 16.
    kf: usize,
    /// Layout (M, d, Kf): dim u of codeword k of subspace m at (m·d + u)·Kf + k, 0 for k ≥ K.
    codebooks_t: Vec<f32>,
    /// The re-laid assignments: the block of tiles starting at tile t0 (n tiles) begins at
    /// byte t0·quads·64 and has Layout (quads, n, 64): byte (g, a, 4·l + j) indexes subspace
    /// m = 4·g + j for output t = (t0 + a)·16 + l (see the module doc); 0 for m ≥ M or t ≥ C_t.
    pub(crate) idx: Vec<u8>,
    /// Layout (tiles·16): bias_t, 0 for t ≥ C_t.
    pub(crate) bias: Vec<f32>,
}

impl FcLutI8 {
    /// Validates lengths and every index < K, then re-lays the assignments.
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
        let (d, k) = (spec.d, spec.k);
        let kf = k.next_multiple_of(16);
        let mut codebooks_t = vec![0.0f32; m_count * d * kf];
        for m in 0..m_count {
            for code in 0..k {
                for u in 0..d {
                    codebooks_t[(m * d + u) * kf + code] = centroids[(m * k + code) * d + u];
                }
            }
        }
        let tiles = shape.c_out.div_ceil(TILE);
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(tiles * TILE, 0.0);
        let mut lut = FcLutI8 {
            shape,
            spec,
            subspaces: m_count,
            quads: m_count.div_ceil(QUAD),
            kp: k.next_power_of_two(),
            kf,
            codebooks_t,
            idx: Vec::new(),
            bias: padded_bias,
        };
        lut.idx = lut.pack(assignments);
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
        self.idx.len()
    }

    /// The kernel's ID in results and on the command line.
    pub fn kernel_name(isa: Isa) -> &'static str {
        match isa {
            Isa::Scalar => "fc-lut-i8-scalar",
            Isa::Avx2 => "fc-lut-i8-avx2 (not implemented)",
            Isa::Avx512 => "fc-lut-i8-avx512",
        }
    }

    /// Whether this family has a kernel for `isa` that runs on this CPU (AVX-512 also needs
    /// VNNI; AVX2 has none).
    pub fn supports(isa: Isa) -> bool {
        isa.is_available() && isa_supported(isa)
    }

    /// x: (C_s); y: (C_t), every element overwritten. Calls `phase(Phase::Table)` once the
    /// quantized table is built and `phase(Phase::Lookup)` at the end. `scratch.scale()` is
    /// the scale s this input used afterwards.
    ///
    /// Panics if `!Self::supports(isa)` or x or y has the wrong length.
    pub fn forward(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut FcI8Scratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        assert!(Self::supports(isa), "no int8 fc kernel for ISA {isa} here");
        assert_eq!(x.len(), self.shape.c_in, "x must hold C_s floats");
        assert_eq!(y.len(), self.shape.c_out, "y must hold C_t floats");
        scratch.reserve(self);
        match isa {
            Isa::Scalar => self.quantize_table(x, scratch),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supports` checked the CPU has AVX-512F.
            Isa::Avx512 => unsafe { super::fc_avx512::quantize_table(self, x, scratch) },
            _ => unreachable!("no int8 fc kernel for {isa}"),
        }
        phase(Phase::Table);
        match isa {
            Isa::Scalar => self.lookups_scalar(scratch, y),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `supports` checked AVX-512 F/BW/VBMI/VNNI; `reserve` sized the table.
            Isa::Avx512 => unsafe { super::fc_avx512::lookups(self, scratch, y) },
            _ => unreachable!("no int8 fc kernel for {isa}"),
        }
        phase(Phase::Lookup);
    }

    /// Bytes of the quantized table: quads · 4 · Kp plus one piece of slack (a quad's pieces
    /// are loaded whole even when 4·Kp < 128).
    pub(crate) fn q_len(&self) -> usize {
        self.quads * QUAD * self.kp + PIECE
    }

    fn tiles(&self) -> usize {
        self.shape.c_out.div_ceil(TILE)
    }

    /// (first tile, tile count) of every block, in memory order.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let tiles = self.tiles();
        (0..tiles)
            .step_by(BLOCK_TILES)
            .map(move |t0| (t0, BLOCK_TILES.min(tiles - t0)))
    }

    /// First byte of the block starting at tile t0.
    pub(crate) fn block_offset(&self, t0: usize) -> usize {
        t0 * self.quads * TILE * QUAD
    }

    /// The index byte stored for codeword b of quad slot j.
    fn stored(&self, j: usize, b: u8) -> u8 {
        if self.kp <= PIECE {
            ((j * self.kp + b as usize) % PIECE) as u8
        } else {
            b
        }
    }

    /// Packs (C_t, M) assignments into the `idx` layout.
    fn pack(&self, assignments: &[u8]) -> Vec<u8> {
        let m_count = self.subspaces;
        let mut idx = vec![0u8; self.tiles() * TILE * self.quads * QUAD];
        for (t0, n) in self.blocks() {
            let base = self.block_offset(t0);
            for g in 0..self.quads {
                for a in 0..n {
                    for l in 0..TILE {
                        for j in 0..QUAD {
                            let (t, m) = ((t0 + a) * TILE + l, g * QUAD + j);
                            let b = if t < self.shape.c_out && m < m_count {
                                assignments[t * m_count + m]
                            } else {
                                0
                            };
                            idx[base + (g * n + a) * TILE * QUAD + QUAD * l + j] =
                                self.stored(j, b);
                        }
                    }
                }
            }
        }
        idx
    }

    /// The quantized table and its scale and offset sum, into `scratch` (shared by every
    /// ISA; the AVX-512 path compiles this same code with AVX-512 enabled).
    #[inline(always)]
    pub(crate) fn quantize_table(&self, x: &[f32], scratch: &mut FcI8Scratch) {
        let (d, k, kf, kp) = (self.spec.d, self.spec.k, self.kf, self.kp);
        let table = &mut scratch.table[..self.subspaces * kf];
        let mut widest = 0.0f32;
        let mut offset_sum = 0.0f32;
        for (m, row) in table.chunks_exact_mut(kf).enumerate() {
            row.fill(0.0);
            for u in 0..d.min(self.shape.c_in - m * d) {
                let xu = x[m * d + u];
                let column = &self.codebooks_t[(m * d + u) * kf..(m * d + u + 1) * kf];
                for (t, w) in row.iter_mut().zip(column) {
                    *t += xu * w;
                }
            }
            let (lo, hi) = row[..k]
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            widest = widest.max(hi - lo);
            let o = (hi + lo) * 0.5;
            scratch.offsets[m] = o;
            offset_sum += o;
        }
        let s = widest * SCALE_MARGIN / (2.0 * Q_MAX);
        let s = if s > 0.0 { s } else { 1.0 };
        let inv = 1.0 / s;
        let q = &mut scratch.q.as_mut_slice()[..self.q_len()];
        q.fill(0);
        for (m, row) in table.chunks_exact(kf).enumerate() {
            let o = scratch.offsets[m];
            for (out, &t) in q[m * kp..m * kp + k].iter_mut().zip(&row[..k]) {
                *out = round_to_i8((t - o) * inv);
            }
        }
        scratch.scale = s;
        scratch.offset_sum = offset_sum;
    }

    /// The scalar twin of the look-ups: y_t = (bias_t + Σo) + s·Σ_m q[m][b_t^(m)] over the
    /// same re-laid indices, with safe indexing.
    fn lookups_scalar(&self, scratch: &FcI8Scratch, y: &mut [f32]) {
        let q = scratch.q.as_slice();
        for (t0, n) in self.blocks() {
            let base = self.block_offset(t0);
            for a in 0..n {
                for l in 0..TILE {
                    let t = (t0 + a) * TILE + l;
                    if t >= self.shape.c_out {
                        continue;
                    }
                    let mut sum = 0i32;
                    for g in 0..self.quads {
                        for j in 0..QUAD {
                            let stored = self.idx[base + (g * n + a) * TILE * QUAD + QUAD * l + j];
                            let b = stored as usize % self.kp;
                            sum += i32::from(q[(g * QUAD + j) * self.kp + b]);
                        }
                    }
                    let offset = self.bias[t] + scratch.offset_sum;
                    y[t] = offset + scratch.scale * sum as f32;
                }
            }
        }
    }
}

/// round(v) half to even as i8, for |v| < 127.5 (guaranteed by the scale).
#[inline(always)]
fn round_to_i8(v: f32) -> i8 {
    ((v + ROUND_MAGIC).to_bits() as i32 - ROUND_MAGIC.to_bits() as i32) as i8
}

/// Reusable buffers of [`FcLutI8::forward`]: grown on first use, never shrunk.
#[derive(Clone, Debug, Default)]
pub struct FcI8Scratch {
    /// Layout (M, Kf): the f32 table.
    table: Vec<f32>,
    /// Layout (M): o_m.
    offsets: Vec<f32>,
    /// Layout (quads·4, Kp) + one piece: the quantized table, 0 beyond K and M.
    pub(crate) q: AlignedBuf<i8>,
    pub(crate) scale: f32,
    pub(crate) offset_sum: f32,
}

impl FcI8Scratch {
    /// The scale s of the last forward pass.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    fn reserve(&mut self, lut: &FcLutI8) {
        let rows = lut.subspaces * lut.kf;
        if self.table.len() < rows {
            self.table.resize(rows, 0.0);
        }
        if self.offsets.len() < lut.subspaces {
            self.offsets.resize(lut.subspaces, 0.0);
        }
        self.q.reserve(lut.q_len());
    }
}
