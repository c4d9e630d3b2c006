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
//! Index layout: chunk c (subspaces c·S_c .. c·S_c + n_c − 1), tile t, subspace m of the
//! chunk: G bytes (G = 4·lanes) at c·S_c·tiles·G + (t·n_c + m − c·S_c)·G. With K > 16 a tile
//! is G outputs, output t·G + j at byte order[j] (the level's interleave returns outputs in
//! that order). With K ≤ 16 ("nibbles") a tile is 2·G outputs: byte order[j] holds output
//! t·2G + j in its low 4 bits and output t·2G + G + j in its high 4 bits, half the bytes to
//! stream (fc8: 2 MB instead of 4). Outputs ≥ C_t hold index 0.

use crate::shape::FcShape;
use crate::simd::Simd;
use crate::stream::StreamBuf;
use crate::target::CacheSizes;

use super::{FcIndices, Lookups};

/// Floats per f32 table row: the layout serves K ≤ 32.
pub(crate) const ROW: usize = 32;
/// Bytes per subspace in the plane table: 4 planes of [`ROW`] bytes.
pub(crate) const ROW_BYTES: usize = 4 * ROW;

/// How far ahead of the index vector being read the stream is prefetched, in bytes.
const INDEX_PREFETCH_BYTES: usize = 4096;

/// How a plane table and its index vectors are laid out: what [`PlaneIndices::new`] needs
/// besides the layer.
pub(crate) struct PlaneFormat<'a> {
    /// G: outputs per index vector (4·lanes).
    pub group: usize,
    /// order[j]: the byte of an index vector that output j of a group takes (a permutation
    /// of 0..G).
    pub order: &'a [u8],
    /// Bytes per subspace in the plane table: [`ROW_BYTES`] for f32 entries, 64 for i16.
    pub row_bytes: usize,
    /// Chunks hold a multiple of this many subspaces (the i16 look-ups flush per group of
    /// subspaces, and a group must not straddle chunks).
    pub chunk_align: usize,
}

/// The re-laid assignments (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct PlaneIndices {
    /// G: outputs per index vector and tile.
    pub group: usize,
    /// S_c: subspaces per table chunk.
    pub chunk: usize,
    pub m_count: usize,
    pub tiles: usize,
    /// K > 16: look-ups use both 16-entry halves of a plane.
    pub wide: bool,
    /// K ≤ 16: two outputs' indices per byte (see the module doc).
    pub nibbles: bool,
    /// order[j]: the byte of a tile's index vector that holds output j's index.
    pub order: Vec<u8>,
    pub bytes: StreamBuf<u8>,
}

impl PlaneIndices {
    /// Every assignment < K ≤ 32 (checked by the caller).
    pub fn new(
        caches: CacheSizes,
        shape: FcShape,
        k: usize,
        m_count: usize,
        format: PlaneFormat<'_>,
        assignments: &[u8],
    ) -> Self {
        let PlaneFormat {
            group,
            order,
            row_bytes,
            chunk_align,
        } = format;
        assert!(group > 0 && order.len() == group && k <= ROW && chunk_align > 0);
        // Half of L1d for the chunk's planes, the rest for the index and sum streams.
        let fit = (caches.l1d / 2 / row_bytes).max(chunk_align);
        let chunk = (fit - fit % chunk_align).min(m_count.max(1));
        let nibbles = k <= 16;
        let per_byte = if nibbles { 2 } else { 1 };
        let tiles = shape.c_out.div_ceil(group * per_byte);
        let mut out = PlaneIndices {
            group,
            chunk,
            m_count,
            tiles,
            wide: k > 16 && assignments.iter().any(|&b| b >= 16),
            nibbles,
            order: order.to_vec(),
            bytes: StreamBuf::zeroed(tiles * group * m_count),
        };
        let index = |output: usize, m: usize| {
            (output < shape.c_out).then(|| assignments[output * m_count + m])
        };
        for (c, (m0, n)) in out.chunks().enumerate() {
            let base = c * chunk * tiles * group;
            for t in 0..tiles {
                for m in 0..n {
                    let at = base + (t * n + m) * group;
                    for (j, &byte) in order.iter().enumerate() {
                        let first = t * group * per_byte + j;
                        let lo = index(first, m0 + m).unwrap_or(0);
                        let hi = if nibbles {
                            index(first + group, m0 + m).unwrap_or(0)
                        } else {
                            0
                        };
                        out.bytes[at + byte as usize] = lo | hi << 4;
                    }
                }
            }
        }
        out
    }

    /// Outputs per tile: G, or 2·G with nibbles.
    pub fn tile_outputs(&self) -> usize {
        if self.nibbles {
            2 * self.group
        } else {
            self.group
        }
    }

    /// The inverse of `order`: the output of a group whose index is in byte b (the scalar
    /// twins read an index vector byte by byte).
    pub fn output_of_byte(&self) -> Vec<usize> {
        let mut output = vec![0usize; self.group];
        for (j, &byte) in self.order.iter().enumerate() {
            output[byte as usize] = j;
        }
        output
    }

    /// (first subspace, subspaces) of every chunk, in order.
    pub fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (m_count, chunk) = (self.m_count, self.chunk);
        (0..m_count)
            .step_by(chunk)
            .map(move |m0| (m0, chunk.min(m_count - m0)))
    }

    /// The scalar twin over the same layout: y_t = bias_t + Σ_m T[m][b_t^(m)], each entry
    /// rebuilt from its 4 plane bytes, summed in the kernels' order (bit-identical to them).
    pub fn lookups_scalar(&self, bias: &[f32], planes: &[u8], acc: &mut [f32], y: &mut [f32]) {
        let (g, tile) = (self.group, self.tile_outputs());
        let sums = &mut acc[..self.tiles * tile];
        sums.copy_from_slice(&bias[..self.tiles * tile]);
        let output_of_byte = self.output_of_byte();
        for (c, (m0, n)) in self.chunks().enumerate() {
            let base = c * self.chunk * self.tiles * g;
            for t in 0..self.tiles {
                for m in 0..n {
                    let idx = &self.bytes[base + (t * n + m) * g..][..g];
                    let plane = &planes[(m0 + m) * ROW_BYTES..][..ROW_BYTES];
                    let entry = |b: u8| {
                        f32::from_le_bytes(std::array::from_fn(|j| plane[j * ROW + b as usize]))
                    };
                    for (byte, &b) in idx.iter().enumerate() {
                        let output = t * tile + output_of_byte[byte];
                        if self.nibbles {
                            sums[output] += entry(b & 0x0F);
                            sums[output + g] += entry(b >> 4);
                        } else {
                            sums[output] += entry(b);
                        }
                    }
                }
            }
        }
        let c_out = y.len();
        y.copy_from_slice(&sums[..c_out]);
    }
}

/// T (M, 32) f32 → planes (M, 4, 32), a row at a time ([`split_row`]).
pub(crate) fn split(table: &[f32], planes: &mut [u8]) {
    for (row, out) in table
        .chunks_exact(ROW)
        .zip(planes.chunks_exact_mut(ROW_BYTES))
    {
        split_row(
            row.try_into().expect("a table row of 32 floats"),
            out.try_into().expect("4 planes of 32 bytes"),
        );
    }
}

/// One table row T[m] (32 floats) → its planes (4 × 32 bytes): byte j of T[m][k] at
/// planes[32·j + k]. The scalar level's loop and the default of
/// [`Simd::fc_split_row`](crate::simd::Simd::fc_split_row): the twin of the levels' shuffles.
#[inline(always)]
pub(crate) fn split_row(row: &[f32; ROW], planes: &mut [u8; ROW_BYTES]) {
    for (k, v) in row.iter().enumerate() {
        for (j, byte) in v.to_le_bytes().into_iter().enumerate() {
            planes[j * ROW + k] = byte;
        }
    }
}

/// `order[j]` for the i16 planes ([`BytePlanes::interleave_i16`]): every level's byte
/// unpack works within 16-byte blocks, so lane l of result vector v (output v·G/2 + l) comes
/// from byte 16·(l div 8) + 8·v + l mod 8. NEON (G = 16) gets the identity.
pub(crate) fn order_i16(group: usize) -> Vec<u8> {
    assert!(group.is_multiple_of(16));
    (0..group)
        .map(|j| {
            let (v, l) = (j / (group / 2), j % (group / 2));
            (16 * (l / 8) + 8 * v + l % 8) as u8
        })
        .collect()
}

/// What a level needs to look up byte planes (f32 or i16 entries).
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
    /// (low 4 bits, high 4 bits) of every byte.
    fn split_nibbles(self, v: Self::U8) -> (Self::U8, Self::U8);
    /// The i16 values whose little-endian bytes are b[0], b[1], as 2 vectors holding the
    /// group's outputs in order, given indices laid out by [`order_i16`].
    fn interleave_i16(self, b: [Self::U8; 2]) -> [Self::I16; 2];
}

/// What a level needs for the f32 byte-plane layout on top of [`BytePlanes`].
pub(crate) trait F32Planes: BytePlanes {
    /// The f32 values whose little-endian bytes are b[0] .. b[3], as 4 vectors holding the
    /// group's outputs in order, given indices laid out by [`F32Planes::byte_order`].
    fn interleave(self, b: [Self::U8; 4]) -> [Self::F32; 4];
    /// order[j]: the byte of an index vector that output j of a group takes.
    fn byte_order() -> [u8; 32];
}

/// The look-ups of the byte-plane layout (see the module doc), at level S.
#[inline(always)]
pub(crate) fn lookups<S: F32Planes>(s: S, op: Lookups<'_>) {
    let FcIndices::Planes(idx) = &op.lut.indices else {
        unreachable!("the byte-plane kernel runs on byte-plane indices only")
    };
    let (g, tile) = (idx.group, idx.tile_outputs());
    assert!(g == 4 * S::LANES && idx.bytes.len() == idx.tiles * g * idx.m_count);
    assert!(op.planes.len() >= idx.m_count * ROW_BYTES);
    assert!(op.acc.len() >= idx.tiles * tile && op.lut.bias.len() >= idx.tiles * tile);
    assert!(op.y.len() == op.lut.shape.c_out && op.y.len() <= idx.tiles * tile);
    match (idx.wide, idx.nibbles) {
        (true, _) => run::<S, true, false>(s, idx, op),
        (false, false) => run::<S, false, false>(s, idx, op),
        (false, true) => run::<S, false, true>(s, idx, op),
    }
}

#[inline(always)]
fn run<S: F32Planes, const WIDE: bool, const NIBBLES: bool>(
    s: S,
    idx: &PlaneIndices,
    op: Lookups<'_>,
) {
    let (g, tile) = (idx.group, idx.tile_outputs());
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
            // SAFETY: tile t's sums are acc/bias[t·T .. t·T + T] (T = G or 2·G outputs; both
            // hold tiles·T floats, asserted in `lookups`); its indices for the chunk are
            // bytes[base + t·n·G ..] (n·G bytes, inside the tiles·G·M bytes); subspace
            // m0 + m < M has its planes at planes[(m0 + m)·128 ..][..128], inside M·128
            // bytes (asserted).
            unsafe {
                let halves = if NIBBLES { 2 } else { 1 };
                let mut sums = [s.zero(); 8];
                for (v, sum) in sums.iter_mut().enumerate().take(4 * halves) {
                    *sum = s.load(sums_from.add(t * tile + v * S::LANES));
                }
                let indices = idx.bytes.as_ptr().add(base + t * n * g);
                for m in 0..n {
                    // The index stream runs on through the tiles and chunks: fetch ahead.
                    s.prefetch(indices.wrapping_add(m * g + INDEX_PREFETCH_BYTES));
                    let v = s.load_u8(indices.add(m * g));
                    let planes = op.planes.as_ptr().add((m0 + m) * ROW_BYTES);
                    if NIBBLES {
                        let (lo, hi) = s.split_nibbles(v);
                        add_entries::<S, false>(s, &mut sums[..4], planes, s.prepare::<false>(lo));
                        add_entries::<S, false>(s, &mut sums[4..], planes, s.prepare::<false>(hi));
                    } else {
                        add_entries::<S, WIDE>(s, &mut sums[..4], planes, s.prepare::<WIDE>(v));
                    }
                }
                for (v, sum) in sums.iter().enumerate().take(4 * halves) {
                    s.store(acc.add(t * tile + v * S::LANES), *sum);
                }
            }
        }
    }
    let c_out = op.y.len();
    op.y.copy_from_slice(&op.acc[..c_out]);
}

/// `sums[v] += T[m][idx]` for the 4·LANES outputs of one index vector: 4 plane look-ups,
/// one interleave.
///
/// # Safety
/// `planes` points to subspace m's 4 planes (128 bytes).
#[inline(always)]
unsafe fn add_entries<S: F32Planes, const WIDE: bool>(
    s: S,
    sums: &mut [S::F32],
    planes: *const u8,
    i: S::Index,
) {
    // Written out, not a closure: a closure's body is compiled without S's target features.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lut::fc::fc_reference;
    use crate::lut::PqSpec;

    #[test]
    fn scalar_twin_matches_the_reference_across_chunks_and_tails() {
        for k in [32, 16, 9] {
            twin_matches(k);
        }
    }

    fn twin_matches(k: usize) {
        let (c_in, c_out, d) = (45, 70, 4);
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
        // A permuted order, as AVX2's.
        let order: Vec<u8> = (0..32).rev().collect();
        let format = PlaneFormat {
            group: 32,
            order: &order,
            row_bytes: ROW_BYTES,
            chunk_align: 1,
        };
        let idx = PlaneIndices::new(caches, shape, k, m_count, format, &assignments);
        assert_eq!(idx.nibbles, k <= 16);
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
        padded.resize(idx.tiles * idx.tile_outputs(), 0.0);
        let mut acc = vec![0.0; padded.len()];
        let mut y = vec![f32::NAN; c_out];
        idx.lookups_scalar(&padded, &planes, &mut acc, &mut y);
        for (a, b) in y.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
