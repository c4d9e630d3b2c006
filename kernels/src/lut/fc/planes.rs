//! The byte-plane layout (docs/KERNELS.md "fc: byte planes"), for K ≤ 32: a table row T[m]
//! (32 floats) is stored as 4 planes of 32 bytes, plane j holding byte j (little-endian) of
//! every entry. A byte shuffle with 16- or 32-entry tables (AVX2 `vpshufb` on two 16-byte
//! halves, NEON `tbl` on two registers) then looks up one plane for 4·lanes outputs at once,
//! one byte index per output; 4 look-ups and an interleave of the planes rebuild the exact
//! f32 entries, which are added to the outputs' sums.
//!
//! Schedule: the subspaces are cut into chunks whose planes fit the L1 data cache (a chunk
//! of S_c subspaces is S_c · 128 bytes); per chunk, every tile of outputs loads its sums,
//! adds the chunk's look-ups, and stores them (to a scratch buffer, or to y after the last
//! chunk). The index stream is laid out in that order, so it is read sequentially.
//!
//! Index layout: chunk c (subspaces c·S_c .. c·S_c + n_c − 1), tile t (outputs t·G ..
//! t·G + G − 1, G = 4·lanes), subspace m of the chunk: G bytes at c·S_c·tiles·G +
//! (t·n_c + m − c·S_c)·G, output t·G + j at byte order[j] of them (the level's interleave
//! returns outputs in that order). Outputs ≥ C_t hold index 0.

use crate::shape::FcShape;
use crate::simd::Simd;
use crate::target::CacheSizes;

use super::{FcIndices, Lookups};

/// Floats per f32 table row: the layout serves K ≤ 32.
pub(crate) const ROW: usize = 32;
/// Bytes per subspace in the plane table: 4 planes of [`ROW`] bytes.
pub(crate) const ROW_BYTES: usize = 4 * ROW;

/// How far ahead of the index vector being read the stream is prefetched, in bytes.
const INDEX_PREFETCH_BYTES: usize = 4096;

/// The re-laid assignments (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct PlaneIndices {
    /// G: outputs per index vector and tile.
    pub group: usize,
    /// S_c: subspaces per table chunk.
    pub chunk: usize,
    m_count: usize,
    tiles: usize,
    /// K > 16: look-ups use both 16-entry halves of a plane.
    wide: bool,
    /// order[j]: the byte of a tile's index vector that holds output j's index.
    order: Vec<u8>,
    pub bytes: Vec<u8>,
}

impl PlaneIndices {
    /// `order[j]`: the byte output j of a tile takes (a permutation of 0..G); every
    /// assignment < K ≤ 32 (checked by the caller).
    pub fn new(
        caches: CacheSizes,
        shape: FcShape,
        m_count: usize,
        group: usize,
        order: &[u8],
        assignments: &[u8],
    ) -> Self {
        assert!(group > 0 && order.len() == group);
        // Half of L1d for the chunk's planes, the rest for the index and sum streams.
        let chunk = (caches.l1d / 2 / ROW_BYTES).clamp(1, m_count.max(1));
        let tiles = shape.c_out.div_ceil(group);
        let mut out = PlaneIndices {
            group,
            chunk,
            m_count,
            tiles,
            wide: assignments.iter().any(|&b| b >= 16),
            order: order.to_vec(),
            bytes: vec![0u8; tiles * group * m_count],
        };
        for (c, (m0, n)) in out.chunks().enumerate() {
            let base = c * chunk * tiles * group;
            for t in 0..tiles {
                for m in 0..n {
                    let at = base + (t * n + m) * group;
                    for (j, &byte) in order.iter().enumerate() {
                        let output = t * group + j;
                        if output < shape.c_out {
                            out.bytes[at + byte as usize] = assignments[output * m_count + m0 + m];
                        }
                    }
                }
            }
        }
        out
    }

    /// (first subspace, subspaces) of every chunk, in order.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (m_count, chunk) = (self.m_count, self.chunk);
        (0..m_count)
            .step_by(chunk)
            .map(move |m0| (m0, chunk.min(m_count - m0)))
    }

    /// The scalar twin over the same layout: y_t = bias_t + Σ_m T[m][b_t^(m)], each entry
    /// rebuilt from its 4 plane bytes, summed in the kernels' order (bit-identical to them).
    pub fn lookups_scalar(&self, bias: &[f32], planes: &[u8], acc: &mut [f32], y: &mut [f32]) {
        let g = self.group;
        let sums = &mut acc[..self.tiles * g];
        sums.copy_from_slice(&bias[..self.tiles * g]);
        let mut output_of_byte = vec![0usize; g];
        for (j, &byte) in self.order.iter().enumerate() {
            output_of_byte[byte as usize] = j;
        }
        for (c, (m0, n)) in self.chunks().enumerate() {
            let base = c * self.chunk * self.tiles * g;
            for t in 0..self.tiles {
                for m in 0..n {
                    let idx = &self.bytes[base + (t * n + m) * g..][..g];
                    let plane = &planes[(m0 + m) * ROW_BYTES..][..ROW_BYTES];
                    for (byte, &b) in idx.iter().enumerate() {
                        let entry = f32::from_le_bytes(std::array::from_fn(|j| {
                            plane[j * ROW + b as usize]
                        }));
                        sums[t * g + output_of_byte[byte]] += entry;
                    }
                }
            }
        }
        let c_out = y.len();
        y.copy_from_slice(&sums[..c_out]);
    }
}

/// T (M, 32) f32 → planes (M, 4, 32): byte j of T[m][k] at planes[m·128 + 32·j + k].
pub(crate) fn split(table: &[f32], planes: &mut [u8]) {
    for (row, out) in table
        .chunks_exact(ROW)
        .zip(planes.chunks_exact_mut(ROW_BYTES))
    {
        for (k, v) in row.iter().enumerate() {
            for (j, byte) in v.to_le_bytes().into_iter().enumerate() {
                out[j * ROW + k] = byte;
            }
        }
    }
}

/// What a level needs for the byte-plane layout.
pub(crate) trait BytePlanes: Simd {
    /// 4·LANES bytes: one index per output of a group.
    type U8: Copy;
    /// One byte plane of a table row, ready for look-ups (16 or 32 entries).
    type Plane: Copy;
    /// An index vector prepared for look-ups in 16- or 32-entry planes.
    type Index: Copy;
    /// # Safety
    /// `p` is valid for reading 4·LANES bytes.
    unsafe fn load_u8(self, p: *const u8) -> Self::U8;
    /// # Safety
    /// `p` is valid for reading 32 bytes (WIDE) or 16.
    unsafe fn load_plane<const WIDE: bool>(self, p: *const u8) -> Self::Plane;
    /// Every byte < 32 (WIDE) or < 16.
    fn prepare<const WIDE: bool>(self, idx: Self::U8) -> Self::Index;
    /// plane[idx_b] for every byte b.
    fn lookup<const WIDE: bool>(self, plane: Self::Plane, idx: Self::Index) -> Self::U8;
    /// The f32 values whose little-endian bytes are b[0] .. b[3], as 4 vectors holding the
    /// group's outputs in order, given indices laid out by [`BytePlanes::byte_order`].
    fn interleave(self, b: [Self::U8; 4]) -> [Self::F32; 4];
    /// order[j]: the byte of an index vector that output j of a group takes.
    fn byte_order() -> [u8; 32];
}

/// The look-ups of the byte-plane layout (see the module doc), at level S.
#[inline(always)]
pub(crate) fn lookups<S: BytePlanes>(s: S, op: Lookups<'_>) {
    let FcIndices::Planes(idx) = &op.lut.indices else {
        unreachable!("the byte-plane kernel runs on byte-plane indices only")
    };
    let g = idx.group;
    assert!(g == 4 * S::LANES && idx.bytes.len() == idx.tiles * g * idx.m_count);
    assert!(op.planes.len() >= idx.m_count * ROW_BYTES);
    assert!(op.acc.len() >= idx.tiles * g && op.lut.bias.len() >= idx.tiles * g);
    assert!(op.y.len() == op.lut.shape.c_out && op.y.len() <= idx.tiles * g);
    if idx.wide {
        run::<S, true>(s, idx, op);
    } else {
        run::<S, false>(s, idx, op);
    }
}

#[inline(always)]
fn run<S: BytePlanes, const WIDE: bool>(s: S, idx: &PlaneIndices, op: Lookups<'_>) {
    let g = idx.group;
    let chunks = idx.m_count.div_ceil(idx.chunk);
    if chunks == 0 {
        // No subspaces: y = bias.
        let c_out = op.y.len();
        op.y.copy_from_slice(&op.lut.bias[..c_out]);
        return;
    }
    let (bias, acc) = (op.lut.bias.as_ptr(), op.acc.as_mut_ptr());
    for (c, (m0, n)) in idx.chunks().enumerate() {
        let base = c * idx.chunk * idx.tiles * g;
        let sums_from = if c == 0 { bias } else { acc.cast_const() };
        for t in 0..idx.tiles {
            // SAFETY: tile t's sums are acc/bias[t·G .. t·G + G] (both hold tiles·G floats,
            // asserted in `lookups`); its indices for the chunk are bytes[base + t·n·G ..]
            // (n·G bytes, inside the tiles·G·M bytes); subspace m0 + m < M has its planes
            // at planes[(m0 + m)·128 ..][..128], inside M·128 bytes (asserted).
            unsafe {
                let mut sums = [s.zero(); 4];
                for (v, sum) in sums.iter_mut().enumerate() {
                    *sum = s.load(sums_from.add(t * g + v * S::LANES));
                }
                let indices = idx.bytes.as_ptr().add(base + t * n * g);
                for m in 0..n {
                    // The index stream runs on through the tiles and chunks: fetch ahead.
                    s.prefetch(indices.wrapping_add(m * g + INDEX_PREFETCH_BYTES));
                    let i = s.prepare::<WIDE>(s.load_u8(indices.add(m * g)));
                    let planes = op.planes.as_ptr().add((m0 + m) * ROW_BYTES);
                    // Written out, not a closure: a closure's body is compiled without S's
                    // target features.
                    let bytes = [
                        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes), i),
                        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes.add(ROW)), i),
                        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes.add(2 * ROW)), i),
                        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes.add(3 * ROW)), i),
                    ];
                    let entries = s.interleave(bytes);
                    for (sum, e) in sums.iter_mut().zip(entries) {
                        *sum = s.add(*sum, e);
                    }
                }
                for (v, sum) in sums.iter().enumerate() {
                    s.store(acc.add(t * g + v * S::LANES), *sum);
                }
            }
        }
    }
    let c_out = op.y.len();
    op.y.copy_from_slice(&op.acc[..c_out]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lut::fc::fc_reference;
    use crate::lut::PqSpec;

    #[test]
    fn scalar_twin_matches_the_reference_across_chunks_and_tails() {
        let (c_in, c_out, d, k) = (45, 70, 4, 32);
        let spec = PqSpec { d, k };
        let m_count = spec.subspaces(c_in);
        let f = |i: usize| ((i * 7919) % 97) as f32 / 97.0 - 0.5;
        let centroids: Vec<f32> = (0..m_count * k * d).map(f).collect();
        let assignments: Vec<u8> = (0..c_out * m_count).map(|i| (i * 31 % k) as u8).collect();
        let bias: Vec<f32> = (0..c_out).map(|i| f(i + 3)).collect();
        let x: Vec<f32> = (0..c_in).map(|i| f(i + 11)).collect();
        let shape = FcShape { c_in, c_out };
        let want = fc_reference(shape, spec, &centroids, &assignments, &bias, &x);
        let caches = CacheSizes {
            l1d: 3 * ROW_BYTES * 2,
            ..CacheSizes::FALLBACK
        };
        let order: Vec<u8> = (0..32).collect();
        let idx = PlaneIndices::new(caches, shape, m_count, 32, &order, &assignments);
        assert_eq!(idx.chunk, 3);
        let mut table = vec![0.0f32; m_count * ROW];
        for m in 0..m_count {
            for code in 0..k {
                table[m * ROW + code] = (0..d.min(c_in - m * d))
                    .map(|u| x[m * d + u] * centroids[(m * k + code) * d + u])
                    .sum();
            }
        }
        let mut planes = vec![0u8; m_count * ROW_BYTES];
        split(&table, &mut planes);
        let mut padded = bias.clone();
        padded.resize(idx.tiles * 32, 0.0);
        let mut acc = vec![0.0; padded.len()];
        let mut y = vec![f32::NAN; c_out];
        idx.lookups_scalar(&padded, &planes, &mut acc, &mut y);
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
