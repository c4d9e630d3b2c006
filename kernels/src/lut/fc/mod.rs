//! Look-up-table fully-connected kernels (docs/METHOD.md "Fully-connected layer",
//! docs/KERNELS.md "fc"): y_t = bias_t + Σ_m T[m][b_t^(m)] with T[m][k] = < x^(m), D^(m)_k >.
//!
//! Glossary: C_s = `shape.c_in`, C_t = `shape.c_out`, d = `spec.d`, K = `spec.k`,
//! M = ceil(C_s / d) subspaces, T the table (one row of K inner products per subspace).
//!
//! A look-up selects, for many outputs at once, each output's entry of one table row. How
//! one instruction does that depends on the ISA, and so does the index layout
//! ([`FcLayout`], chosen per level and K when the layer is prepared):
//! - [`FcLayout::Packed`] ([`packed`]): the row lives in registers as f32 and one permute
//!   selects 16 outputs' entries (AVX-512 `vpermt2ps`); indices are bit-packed per output,
//!   several subspaces per 32-bit word. Also the layout of the scalar twin, and of the other
//!   levels for K > 32 (gathers or per-lane loads).
//! - [`FcLayout::Planes`] ([`planes`]): the f32 row is split into 4 byte planes (byte j of
//!   every entry) and a byte shuffle selects 32 (AVX2 `vpshufb`) or 16 (NEON `tbl`) outputs'
//!   bytes per instruction; 4 shuffles and an interleave rebuild the exact f32 values.
//!   Indices are one byte per output and subspace. On AVX2, where a cross-lane f32 permute
//!   handles 8 entries, this halves the shuffle work for K ≤ 32.
//!
//! Kernel names (the ID in results): "fc-lut-f32-<isa>" (exact f32).

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;
pub mod int16;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon;
pub(crate) mod packed;
pub(crate) mod planes;
mod reference;

pub use int16::{FcI16Scratch, FcLutI16};
pub use reference::fc_reference;

use crate::isa::Isa;
use crate::lut::{check_fc, AlignedBuf, LutError, Phase, PqSpec};
use crate::shape::FcShape;
use crate::simd::{self, Kernel, Simd, Vectorized};
use crate::target::Target;

/// How a prepared layer's indices and table are laid out for its ISA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FcLayout {
    /// Bit-packed index words, f32 table rows ([`packed`]).
    Packed,
    /// Byte indices, byte-plane tables ([`planes`]); `group` outputs per index vector
    /// (4·lanes), output j of a group stored at byte `order[j]`.
    Planes { group: usize, order: [u8; 32] },
}

/// The index layout a level wants for K codewords (each level's choice, see the module doc).
struct ChooseLayout {
    k: usize,
}

impl Kernel for ChooseLayout {
    fn scalar(self) -> FcLayout {
        FcLayout::Packed
    }
}

impl Vectorized for ChooseLayout {
    type Output = FcLayout;
    #[inline(always)]
    fn simd<S: Simd>(self, simd: S) -> FcLayout {
        simd.fc_layout(self.k)
    }
}

/// The re-laid assignments of one layer.
#[derive(Clone, Debug)]
pub(crate) enum FcIndices {
    Packed(packed::PackedIndices),
    Planes(planes::PlaneIndices),
}

/// One product-quantized fully-connected layer, prepared for one [`Target`].
#[derive(Clone, Debug)]
pub struct FcLut {
    target: Target,
    shape: FcShape,
    spec: PqSpec,
    /// M = ceil(C_s / d).
    subspaces: usize,
    /// Kp ≥ K: floats per row of the f32 table (the layout's choice).
    k_pitch: usize,
    codebooks: TransposedCodebooks,
    indices: FcIndices,
    /// Layout (C_t rounded up to the layout's tile): bias_t, zero beyond C_t.
    bias: Vec<f32>,
}

impl FcLut {
    /// Validates lengths and every index < K (LutError), then re-lays the assignments in the
    /// layout `target.isa` looks up fastest.
    ///
    /// Buffers: `centroids` (M, K, d); `assignments` (C_t, M); `bias` (C_t).
    pub fn new(
        target: Target,
        shape: FcShape,
        spec: PqSpec,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        target
            .isa
            .require()
            .map_err(|e| LutError::Spec(e.to_string()))?;
        let m_count = check_fc(shape, spec, centroids, assignments, bias)?;
        let (indices, k_pitch, tile) = match simd::run(target.isa, ChooseLayout { k: spec.k }) {
            FcLayout::Packed => {
                let p = packed::PackedIndices::new(shape, spec, m_count, assignments);
                let pitch = p.row_pitch(spec.k);
                (FcIndices::Packed(p), pitch, packed::TILE)
            }
            FcLayout::Planes { group, order } => {
                let format = planes::PlaneFormat {
                    group,
                    order: &order[..group],
                    row_bytes: planes::ROW_BYTES,
                    chunk_align: 1,
                };
                let p = planes::PlaneIndices::new(
                    target.caches,
                    shape,
                    spec.k,
                    m_count,
                    format,
                    assignments,
                );
                let tile = p.tile_outputs();
                (FcIndices::Planes(p), planes::ROW, tile)
            }
        };
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(shape.c_out.next_multiple_of(tile), 0.0);
        Ok(FcLut {
            target,
            shape,
            spec,
            subspaces: m_count,
            k_pitch,
            codebooks: TransposedCodebooks::new(shape, spec, centroids),
            indices,
            bias: padded_bias,
        })
    }

    pub fn shape(&self) -> FcShape {
        self.shape
    }

    pub fn spec(&self) -> PqSpec {
        self.spec
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The kernel's ID in results and on the command line: "fc-lut-f32-<isa>".
    pub fn kernel_name(&self) -> String {
        Self::name(self.target.isa)
    }

    /// The kernel family's name at `isa`.
    pub fn name(isa: Isa) -> String {
        format!("fc-lut-f32-{isa}")
    }

    /// Whether a layer with K codewords is looked up in byte planes at `target`'s level (the
    /// levels without an f32 permute wide enough for the row: docs/KERNELS.md "fc").
    pub fn uses_byte_planes(target: Target, spec: PqSpec) -> bool {
        target.isa.require().is_ok()
            && matches!(
                simd::run(target.isa, ChooseLayout { k: spec.k }),
                FcLayout::Planes { .. }
            )
    }

    /// A short description of the layout and schedule, recorded with every run.
    pub fn plan_summary(&self) -> String {
        match &self.indices {
            FcIndices::Packed(p) => format!("packed {}-bit indices", p.packing.bits),
            FcIndices::Planes(p) => format!(
                "byte planes, {} outputs per vector, {} indices per byte, {} subspaces per table chunk",
                p.group,
                if p.nibbles { 2 } else { 1 },
                p.chunk
            ),
        }
    }

    /// Bytes of re-laid indices one forward pass streams.
    pub fn index_bytes(&self) -> usize {
        match &self.indices {
            FcIndices::Packed(p) => p.words.len() * 4,
            FcIndices::Planes(p) => p.bytes.len(),
        }
    }

    /// x: (C_s); y: (C_t), every element overwritten. Calls `phase(Phase::Table)` once the
    /// table is built and `phase(Phase::Lookup)` at the end. `scratch` grows on the first
    /// call only.
    ///
    /// Panics if x or y has the wrong length: the SIMD kernels rely on both.
    pub fn forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut FcScratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        assert_eq!(x.len(), self.shape.c_in, "x must hold C_s floats");
        assert_eq!(y.len(), self.shape.c_out, "y must hold C_t floats");
        scratch.reserve(self);
        let isa = self.target.isa;
        simd::run(
            isa,
            BuildTable {
                lut: self,
                x,
                scratch,
            },
        );
        phase(Phase::Table);
        simd::run(
            isa,
            RunLookups {
                lut: self,
                scratch,
                y,
            },
        );
        phase(Phase::Lookup);
    }

    /// Rows of the f32 table: M, or G·P for packed words (the padding rows are zero).
    fn table_rows(&self) -> usize {
        match &self.indices {
            FcIndices::Packed(p) => p.table_rows(),
            FcIndices::Planes(_) => self.subspaces,
        }
    }
}

/// The sub-codebooks transposed per subspace, so that a table row is d Kp-wide FMAs.
#[derive(Clone, Debug)]
pub(crate) struct TransposedCodebooks {
    d: usize,
    /// K rounded up to [`COLUMN_ALIGN`]: floats per column. Not the table's row pitch: the
    /// codebooks are read from memory for every image (the look-ups' index stream evicts
    /// them), so fc8's 16 codewords are not padded to its 32-entry table rows.
    pitch: usize,
    /// C_s.
    c_in: usize,
    /// Layout (M, d, pitch): dim j of codeword k of subspace m at (m·d + j)·pitch + k; zero
    /// for k ≥ K.
    data: Vec<f32>,
}

/// Columns of the transposed codebooks are a whole number of the widest vector (16 f32).
const COLUMN_ALIGN: usize = 16;

impl TransposedCodebooks {
    /// `centroids`: (M, K, d), length checked by the caller.
    pub(crate) fn new(shape: FcShape, spec: PqSpec, centroids: &[f32]) -> Self {
        let (d, k) = (spec.d, spec.k);
        let m_count = spec.subspaces(shape.c_in);
        let pitch = k.next_multiple_of(COLUMN_ALIGN);
        let mut data = vec![0.0f32; m_count * d * pitch];
        for m in 0..m_count {
            for kk in 0..k {
                for j in 0..d {
                    data[(m * d + j) * pitch + kk] = centroids[(m * k + kk) * d + j];
                }
            }
        }
        TransposedCodebooks {
            d,
            pitch,
            c_in: shape.c_in,
            data,
        }
    }

    /// Dims of subspace m that exist in x: d, or fewer for a partial last subspace.
    fn dims(&self, m: usize) -> usize {
        self.d.min(self.c_in - m * self.d)
    }

    /// D^T[m][j][..pitch]: dim j of every codeword of subspace m.
    fn column(&self, m: usize, j: usize) -> &[f32] {
        &self.data[(m * self.d + j) * self.pitch..][..self.pitch]
    }

    /// `row = T[m][..row.len()]` in the scalar twins' order: for each entry, x_j · D_k[j]
    /// fused-multiply-added over j = 0, 1, …, which is the vector levels' order (one FMA per
    /// dim, from 0), so every level gets the same bits.
    pub(crate) fn row_scalar(&self, x: &[f32], m: usize, row: &mut [f32]) {
        row.fill(0.0);
        for j in 0..self.dims(m) {
            let xj = x[m * self.d + j];
            for (t, w) in row.iter_mut().zip(self.column(m, j)) {
                *t = xj.mul_add(*w, *t);
            }
        }
    }

    /// `row = T[m][..row.len()] = Σ_j x[m·d + j] · D^T[m][j][..row.len()]` (a multiple of
    /// LANES; zero beyond the columns' pitch), one FMA per dim from j = 0
    /// ([`Self::row_scalar`]'s order).
    ///
    /// The row's vectors 4 at a time (all of a 1- or 2-vector row), dims outer: each
    /// vector's sum is a chain of d dependent FMAs, and one vector at a time left those
    /// chains back to back.
    #[inline(always)]
    pub(crate) fn row<S: Simd>(&self, s: S, x: &[f32], m: usize, row: &mut [f32]) {
        let (d, pitch) = (self.d, self.pitch);
        let dims = self.dims(m);
        assert!(row.len().is_multiple_of(S::LANES));
        // Both multiples of LANES (the pitch of COLUMN_ALIGN).
        let n = row.len().min(pitch);
        let columns = &self.data[m * d * pitch..][..(dims - 1) * pitch + n];
        let xs = &x[m * d..m * d + dims];
        if n < row.len() {
            row[n..].fill(0.0);
        }
        let row = &mut row[..n];
        match n / S::LANES {
            1 => self.row_vectors::<S, 1>(s, xs, columns, row),
            2 => self.row_vectors::<S, 2>(s, xs, columns, row),
            4 => self.row_vectors::<S, 4>(s, xs, columns, row),
            vecs => {
                // Longer rows (packed layouts, K > 32): blocks of 4, then single vectors.
                for v in (0..vecs).step_by(4) {
                    let at = v * S::LANES;
                    let (columns, out) = (&columns[at..], &mut row[at..]);
                    if v + 4 <= vecs {
                        self.row_vectors::<S, 4>(s, xs, columns, out);
                    } else {
                        for tail in 0..vecs - v {
                            let at = tail * S::LANES;
                            self.row_vectors::<S, 1>(s, xs, &columns[at..], &mut out[at..]);
                        }
                    }
                }
            }
        }
    }

    /// The first V vectors of a row: `out[..V·LANES] = Σ_j xs[j] · columns[j·pitch..][..V·LANES]`.
    #[inline(always)]
    fn row_vectors<S: Simd, const V: usize>(
        &self,
        s: S,
        xs: &[f32],
        columns: &[f32],
        out: &mut [f32],
    ) {
        let pitch = self.pitch;
        assert!(
            !xs.is_empty()
                && columns.len() >= (xs.len() - 1) * pitch + V * S::LANES
                && out.len() >= V * S::LANES
        );
        let mut acc = [s.zero(); V];
        for (j, &xj) in xs.iter().enumerate() {
            let b = s.splat(xj);
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: j·pitch + (v + 1)·LANES ≤ (dims − 1)·pitch + V·LANES ≤ columns.len()
                // (asserted above).
                *a = s.fma(
                    b,
                    unsafe { s.load(columns.as_ptr().add(j * pitch + v * S::LANES)) },
                    *a,
                );
            }
        }
        for (v, a) in acc.into_iter().enumerate() {
            // SAFETY: `out` holds at least V·LANES floats (asserted above).
            unsafe { s.store(out.as_mut_ptr().add(v * S::LANES), a) };
        }
    }
}

/// Reusable buffers of [`FcLut::forward`]: grown on first use, never shrunk. One scratch
/// may serve several layers (not concurrently).
#[derive(Clone, Debug, Default)]
pub struct FcScratch {
    /// The f32 table, Layout (rows, Kp) (see [`FcLut::table_rows`]).
    table: AlignedBuf<f32>,
    /// Planes layout: the table as byte planes, Layout (M, 4, 32).
    planes: AlignedBuf<u8>,
    /// Planes layout: partial sums between subspace chunks, Layout (C_t rounded to a tile).
    acc: AlignedBuf<f32>,
}

impl FcScratch {
    fn reserve(&mut self, lut: &FcLut) {
        self.table.reserve(lut.table_rows() * lut.k_pitch);
        if let FcIndices::Planes(_) = lut.indices {
            self.planes.reserve(lut.subspaces * planes::ROW_BYTES);
            self.acc.reserve(lut.bias.len());
        }
    }
}

/// Phase 1: T[m][0..Kp] = Σ_j x[m·d + j] · D^T[m][j][0..Kp]; rows m ≥ M zero; for the planes
/// layout, each row is then split into its byte planes (the vector levels split each row as
/// it is computed, without storing the f32 table).
struct BuildTable<'a> {
    lut: &'a FcLut,
    x: &'a [f32],
    scratch: &'a mut FcScratch,
}

impl Kernel for BuildTable<'_> {
    fn scalar(self) {
        let (lut, x) = (self.lut, self.x);
        let kp = lut.k_pitch;
        let rows = lut.table_rows();
        let table = &mut self.scratch.table.as_mut_slice()[..rows * kp];
        for (m, row) in table.chunks_exact_mut(kp).enumerate() {
            row.fill(0.0);
            if m >= lut.subspaces {
                continue;
            }
            // Unfused, as the twin always was: the exact family is compared with a
            // tolerance, and a software FMA would slow `--isa scalar` (the i16 twin needs
            // the fused order: `TransposedCodebooks::row_scalar`).
            for j in 0..lut.codebooks.dims(m) {
                let xj = x[m * lut.spec.d + j];
                for (t, w) in row.iter_mut().zip(lut.codebooks.column(m, j)) {
                    *t += xj * w;
                }
            }
        }
        self.split_planes();
    }
}

impl Vectorized for BuildTable<'_> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let (lut, x) = (self.lut, self.x);
        let (kp, m_count) = (lut.k_pitch, lut.subspaces);
        assert!(x.len() == lut.shape.c_in && kp.is_multiple_of(S::LANES));
        if let FcIndices::Planes(p) = &lut.indices {
            // Each row straight into its byte planes: the f32 table never leaves registers
            // and the stack, and K ≤ 16 computes only the 16 entries its look-ups read.
            let width = if p.nibbles {
                planes::ROW / 2
            } else {
                planes::ROW
            };
            let out = &mut self.scratch.planes.as_mut_slice()[..m_count * planes::ROW_BYTES];
            let mut row = [0.0f32; planes::ROW];
            for (m, dst) in out.chunks_exact_mut(planes::ROW_BYTES).enumerate() {
                lut.codebooks.row(s, x, m, &mut row[..width]);
                s.fc_split_row(&row, dst.try_into().expect("4 planes of 32 bytes"));
            }
            return;
        }
        let rows = lut.table_rows();
        let table = &mut self.scratch.table.as_mut_slice()[..rows * kp];
        for (m, row) in table.chunks_exact_mut(kp).take(m_count).enumerate() {
            lut.codebooks.row(s, x, m, row);
        }
        table[m_count * kp..].fill(0.0);
    }
}

impl BuildTable<'_> {
    /// Planes layout: byte j of T[m][k] to planes[m][j][k] (little-endian bytes).
    #[inline(always)]
    fn split_planes(self) {
        if let FcIndices::Planes(_) = self.lut.indices {
            let m_count = self.lut.subspaces;
            let table = &self.scratch.table.as_slice()[..m_count * planes::ROW];
            let out = &mut self.scratch.planes.as_mut_slice()[..m_count * planes::ROW_BYTES];
            planes::split(table, out);
        }
    }
}

/// Phase 2: the look-ups of the layout, into y.
struct RunLookups<'a> {
    lut: &'a FcLut,
    scratch: &'a mut FcScratch,
    y: &'a mut [f32],
}

/// What a level's fc look-up primitive gets: the layer, its table and the output.
pub(crate) struct Lookups<'a> {
    pub lut: &'a FcLut,
    /// Packed: the f32 table, Layout (G·P, Kp).
    pub table: &'a [f32],
    /// Planes: Layout (M, 4, 32).
    pub planes: &'a [u8],
    /// Planes: partial sums, Layout (C_t rounded to a tile).
    pub acc: &'a mut [f32],
    /// (C_t).
    pub y: &'a mut [f32],
}

impl Kernel for RunLookups<'_> {
    fn scalar(self) {
        match &self.lut.indices {
            FcIndices::Packed(p) => p.lookups_scalar(
                &self.lut.bias,
                self.lut.k_pitch,
                self.scratch.table.as_slice(),
                self.y,
            ),
            FcIndices::Planes(p) => p.lookups_scalar(
                &self.lut.bias,
                self.scratch.planes.as_slice(),
                self.scratch.acc.as_mut_slice(),
                self.y,
            ),
        }
    }
}

impl Vectorized for RunLookups<'_> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let FcScratch { table, planes, acc } = self.scratch;
        s.fc_lookups(Lookups {
            lut: self.lut,
            table: table.as_slice(),
            planes: planes.as_slice(),
            acc: acc.as_mut_slice(),
            y: self.y,
        });
    }
}
