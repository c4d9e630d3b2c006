//! Look-up-table convolution (docs/METHOD.md "Convolutional layer", docs/KERNELS.md "conv").
//!
//! Per group g and subspace m, the table holds `T[m][k][p] = < x_p^(m), D^(m)_k >` with the
//! column of the input pixel p innermost, so that for one output channel t, kernel tap (i, j)
//! and subspace m (one scalar index b = b[t][i][j][m]) the contribution to a row of outputs is
//! a contiguous run of `T[m][b]`: vector loads and adds, no gathers.
//!
//! Glossary: C_s = `shape.c_in`, C_t = `shape.c_out`, kh = kw = `shape.kernel`,
//! s = `shape.stride`, d = `spec.d`, K = `spec.k`, M = ceil((C_s/groups) / d) subspaces,
//! H_t × W_t the output map, T the table.
//!
//! Input layout ("phase planes"): the zero-padded input is split into s × s phase planes,
//! plane (a, b) holding padded pixels (s·y + a, s·x + b) at (y, x); tap (i, j) then reads
//! plane (i mod s, j mod s) at (r + i div s, c + j div s) for output (r, c): a stride-1
//! access. Rows have a pitch that is a multiple of 16 floats.
//!
//! Table layout: Layout (S_p, P_c, rows, K_c, pitch): per subspace of the table, for each
//! phase-plane row of the chunk's P_c phase planes, the K_c codewords' rows one after the
//! other. One output row's taps then read only kh/s table rows of K_c
//! codewords (conv3: 3 × 128 × 64 B = 24 KB, an L1-sized slice that every output channel
//! reuses), and output row r + 1 reuses two of them. Padding pixels have zero entries, and
//! lanes beyond W_t (discarded) may read into the next codeword: no bounds checks remain.
//!
//! Schedule ([`ConvPlan`], sized from the target's caches in [`plan`]): the output rows are
//! cut into bands; per band, per group, per table of S_p subspaces, per chunk (P_c phase
//! planes × K_c codewords), one table is built (per subspace a small GEMM: D_m (K_c × d)
//! times the band's input rows (d × P) per phase plane), then every output channel of the
//! group adds its taps that index that chunk (of every subspace of the table) into
//! accumulators, a register block of output rows at a time, all channels per
//! block so the block's table slice stays in cache. With a 1 MB L2 the AlexNet layers
//! conv2–conv5 use one table per (group, subspace) for the whole map; conv1 (128 × 227²
//! entries) uses bands of rows and chunks of phase planes with every codeword (P_c = 2 of its
//! 16 planes, 458 KB). Chunking
//! phase planes rather than codewords keeps each (channel, column offset) tap list the same
//! length for every channel (a plane's taps are fixed by the kernel's geometry, a codeword
//! chunk's are random), so the tap loops' exits are predicted, and each table row is one GEMM
//! over all K codewords. Measured on conv1: table 0.39 → 0.33 ms; look-ups unchanged at
//! ≈ 0.82 ms, bound by L2 reads (a 2-row block's 96 channels touch its whole 256 KB table
//! slice, each 64-byte line ≈ 3 times, in random order). With an artificial assignment whose
//! per-block slice was half as large, the same kernel did the look-ups in 0.65 ms.
//!
//! Alignment: tap (i, j) reads its table rows from column j div s. The assignments are re-laid
//! as per-channel lists grouped by that column offset, so a level where misaligned loads are
//! dear (AVX-512) can load every table row aligned into one accumulator set per offset and
//! shift the sets into place once per block (see lookup.rs): on this project's Zen 5 machine
//! a misaligned 64-byte load costs about as much as two aligned ones.
//!
//! Kernel names (the ID in results): "conv-lut-f32-<isa>" (exact f32, summation order
//! differs from [`conv_reference`]).

mod lookup;
pub mod plan;
mod reference;
mod table;

pub use plan::{default_plan, ConvPlan};
pub use reference::conv_reference;

use crate::isa::Isa;
use crate::lut::pad::{PadInput, PhasePlanes};
use crate::lut::schedule::{self, ChunkGrid, Source};
use crate::lut::{check_conv_buffers, check_conv_shape, AlignedBuf, LutError, Phase, PqSpec};
use crate::shape::ConvShape;
use crate::simd::{self, Kernel, Simd, Vectorized};
use crate::target::Target;

/// Table rows are a whole number of AVX-512 registers (16 f32): every row starts a new,
/// 64-byte aligned vector.
const ROW_ALIGN: usize = 16;

/// Where the table, its input and the accumulators put each value, for one shape and plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    stride: usize,
    kernel: usize,
    pad: usize,
    h_in: usize,
    w_in: usize,
    h_out: usize,
    w_out: usize,
    /// s²: phase planes.
    phases: usize,
    /// Floats per phase-plane row (≥ W_t + (kw−1)/s, a multiple of [`ROW_ALIGN`]).
    pitch: usize,
    /// R_b: output rows per band.
    band_rows: usize,
    bands: usize,
    /// Phase-plane rows one band reads: R_b + (kh−1)/s.
    band_plane_rows: usize,
    /// Rows of each phase plane of the padded input: bands · R_b + (kh−1)/s.
    x_rows: usize,
    /// Floats between one codeword's consecutive rows in the table: K_c · pitch.
    row_stride: usize,
    /// How the table is cut into chunks of P_c phase planes × K_c codewords ([`ChunkGrid`]).
    grid: ChunkGrid,
    /// `grid.count()`.
    chunks: usize,
    /// M: subspaces per group.
    subspaces: usize,
    /// S_p: subspaces per table, each a sub-table of `sub_len` floats.
    table_subspaces: usize,
    /// Tables per group: ceil(M / S_p).
    tables: usize,
    /// Floats of one subspace's sub-table: P_c · band_plane_rows · K_c · pitch.
    sub_len: usize,
    /// Floats of the table buffer: S_p · sub_len + slack read only by discarded lanes.
    table_len: usize,
    /// Column offsets a tap can have in its phase plane: (kw−1)/s + 1.
    shifts: usize,
}

impl Geometry {
    /// The padded input's layout: (C_s, s², x_rows, pitch).
    fn planes(&self) -> PhasePlanes {
        PhasePlanes {
            stride: self.stride,
            pad: self.pad,
            h_in: self.h_in,
            w_in: self.w_in,
            rows: self.x_rows,
            pitch: self.pitch,
            plane_len: self.x_rows * self.pitch,
        }
    }

    pub(crate) fn new(shape: ConvShape, spec: PqSpec, plan: ConvPlan) -> Geometry {
        let s = shape.stride;
        let reach = (shape.kernel - 1) / s;
        let (h_out, w_out) = (shape.h_out(), shape.w_out());
        let band_rows = plan.band_rows.clamp(1, h_out);
        let bands = h_out.div_ceil(band_rows);
        let band_plane_rows = band_rows + reach;
        let pitch = (w_out + reach).next_multiple_of(ROW_ALIGN);
        let grid = ChunkGrid::new(s * s, plan.chunk_phases, spec.k, plan.chunk_k);
        let row_stride = grid.chunk_k * pitch;
        // Unaligned kernels read a row's pitch floats from its start + a column offset ≤ reach
        // (lanes beyond W_t, discarded): keep that much slack after the table.
        let slack = reach.next_multiple_of(ROW_ALIGN);
        let subspaces = spec.subspaces(shape.c_in_group());
        let table_subspaces = plan.table_subspaces.clamp(1, subspaces.max(1));
        let sub_len = grid.chunk_phases * band_plane_rows * row_stride;
        Geometry {
            stride: s,
            kernel: shape.kernel,
            pad: shape.pad,
            h_in: shape.h_in,
            w_in: shape.w_in,
            h_out,
            w_out,
            phases: s * s,
            pitch,
            band_rows,
            bands,
            band_plane_rows,
            x_rows: bands * band_rows + reach,
            row_stride,
            grid,
            chunks: grid.count(),
            subspaces,
            table_subspaces,
            tables: subspaces.div_ceil(table_subspaces),
            sub_len,
            table_len: table_subspaces * sub_len + slack,
            shifts: reach + 1,
        }
    }

    /// The phase plane tap (i, j) reads: (i mod s, j mod s) as one index.
    fn tap_phase(&self, i: usize, j: usize) -> usize {
        (i % self.stride) * self.stride + j % self.stride
    }

    /// The chunk holding tap (i, j)'s table rows for codeword b.
    fn tap_chunk(&self, i: usize, j: usize, b: usize) -> usize {
        self.grid.locate(self.tap_phase(i, j), b).0
    }

    /// Where tap (i, j) of the table's subspace m_local, reading codeword b, starts in its
    /// chunk's table, for the band's first output row: the aligned offset of its table row
    /// (sub-table, phase plane, row, codeword) and its column offset j div s inside that row.
    fn tap_offset(&self, i: usize, j: usize, m_local: usize, b: usize) -> (usize, usize) {
        let (_, local, code) = self.grid.locate(self.tap_phase(i, j), b);
        let row = (local * self.band_plane_rows + i / self.stride) * self.grid.chunk_k + code;
        (m_local * self.sub_len + row * self.pitch, j / self.stride)
    }

    /// The rows of band `band`'s table (0..band_plane_rows) whose phase-plane rows, in
    /// planes of row phase `a`, hold input pixels: padded row s·(r0 + row) + a in
    /// pad..pad + H_s. The other rows are padding, and their table rows are zero.
    fn data_rows(&self, a: usize, band: usize) -> std::ops::Range<usize> {
        let first = band * self.band_rows;
        self.planes().rows_inside(a, first, self.band_plane_rows)
    }

    /// Floats of the padded input, Layout (C_s, s², x_rows, pitch).
    fn xpad_len(&self, c_in: usize) -> usize {
        c_in * self.phases * self.x_rows * self.pitch
    }
}

/// A quantized conv layer, prepared for one [`Target`].
#[derive(Clone, Debug)]
pub struct ConvLut {
    target: Target,
    shape: ConvShape,
    spec: PqSpec,
    plan: ConvPlan,
    geo: Geometry,
    /// D: Layout (M, K, d), as given.
    centroids: Vec<f32>,
    /// Layout (C_t).
    bias: Vec<f32>,
    /// The re-laid assignments: for list l = ((g·T + u)·chunks + chunk)·(C_t/groups) +
    /// t_local (T = ceil(M / S_p) tables per group) and column offset o < shifts,
    /// `taps[starts[l·shifts + o]..starts[l·shifts + o + 1]]` are the aligned table offsets
    /// (see `Geometry::tap_offset`) of the taps (i, j) with j div s = o of output channel t,
    /// in every subspace m of table u, whose phase plane and index b = b[t][i][j][m] fall in
    /// that chunk (see `Geometry::tap_chunk`; read as codeword b mod K_c), ascending.
    starts: Vec<u32>,
    taps: Vec<u32>,
}

impl ConvLut {
    /// Validates lengths, shape (ConvShape::is_valid) and every index < K; re-lays the
    /// assignments for the kernel's access pattern, with [`default_plan`] for `target`.
    ///
    /// - `centroids`: Layout (M, K, d), M = ceil((C_s/groups) / d), shared by all groups.
    /// - `assignments`: Layout (C_t, kh, kw, M).
    /// - `bias`: Layout (C_t).
    pub fn new(
        target: Target,
        shape: ConvShape,
        spec: PqSpec,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        check_conv_shape(shape, spec)?;
        let plan = default_plan(target, shape, spec);
        Self::with_plan(target, shape, spec, plan, centroids, assignments, bias)
    }

    /// As [`ConvLut::new`] with an explicit schedule (for tuning; any plan gives the same
    /// result up to summation order).
    pub fn with_plan(
        target: Target,
        shape: ConvShape,
        spec: PqSpec,
        plan: ConvPlan,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        target
            .isa
            .require()
            .map_err(|e| LutError::Spec(e.to_string()))?;
        check_conv_shape(shape, spec)?;
        let m_count = check_conv_buffers(shape, spec, centroids, assignments, bias)?;
        let geo = Geometry::new(shape, spec, plan);
        // Table offsets and list bounds are u32, BLAS dimensions i32.
        let x_plane_set = geo.phases * geo.x_rows * geo.pitch;
        let too_large = geo.table_len > i32::MAX as usize
            || x_plane_set > i32::MAX as usize
            || assignments.len() > u32::MAX as usize;
        if too_large {
            return Err(LutError::Spec(format!(
                "conv shape {shape:?} is too large for 32-bit table offsets"
            )));
        }
        let ctg = shape.c_out_group();
        let lists = geo.chunks * ctg * geo.shifts;
        let (starts, taps) = schedule::relay(
            shape,
            m_count,
            geo.table_subspaces,
            lists,
            assignments,
            |t, i, j, m_local, b| {
                let (offset, shift) = geo.tap_offset(i, j, m_local, b);
                (
                    (geo.tap_chunk(i, j, b) * ctg + t) * geo.shifts + shift,
                    offset as u32,
                )
            },
        );
        // The invariant every unchecked load relies on (see lookup.rs): a block of up to R_b
        // rows × pitch floats read from any tap + column offset stays inside the table, and
        // the lists are well-formed.
        let last_read = (geo.band_rows - 1) * geo.row_stride + geo.pitch + geo.shifts - 1;
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1])
                && *starts.last().unwrap() as usize == taps.len()
        );
        assert!(taps
            .iter()
            .all(|&tap| tap as usize + last_read <= geo.table_len));
        let plan = ConvPlan {
            band_rows: geo.band_rows,
            chunk_k: geo.grid.chunk_k,
            chunk_phases: geo.grid.chunk_phases,
            block_rows: plan.block_rows.max(1),
            table_subspaces: geo.table_subspaces,
        };
        Ok(ConvLut {
            target,
            shape,
            spec,
            plan,
            geo,
            centroids: centroids.to_vec(),
            bias: bias.to_vec(),
            starts,
            taps,
        })
    }

    pub fn shape(&self) -> ConvShape {
        self.shape
    }

    pub fn spec(&self) -> PqSpec {
        self.spec
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The schedule in use (clamped to the shape).
    pub fn plan(&self) -> ConvPlan {
        self.plan
    }

    /// The schedule in words, recorded with every run.
    pub fn plan_summary(&self) -> String {
        let (p, g) = (self.plan, &self.geo);
        format!(
            "{} band(s) of {} rows, chunks of {}/{} phase planes × {}/{} codewords, {} subspace(s) per table, blocks of ≤ {} rows",
            g.bands, p.band_rows, p.chunk_phases, g.phases, p.chunk_k, self.spec.k, p.table_subspaces, p.block_rows
        )
    }

    /// The kernel's ID in results and on the command line: "conv-lut-f32-<isa>".
    pub fn kernel_name(&self) -> String {
        Self::name(self.target.isa)
    }

    /// The kernel family's name at `isa`.
    pub fn name(isa: Isa) -> String {
        format!("conv-lut-f32-{isa}")
    }

    /// x: (C_s, H_s, W_s); y: (C_t, H_t, W_t), fully overwritten. Calls phase(Phase::Table)
    /// when a table (or a band of it) is built and phase(Phase::Lookup) when its look-ups are
    /// done (repeats per band, group, subspace and chunk).
    ///
    /// Panics if a length disagrees with the shape.
    pub fn forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut ConvScratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        assert_eq!(
            x.len(),
            self.shape.input_len(),
            "conv input (C_s, H_s, W_s)"
        );
        assert_eq!(
            y.len(),
            self.shape.output_len(),
            "conv output (C_t, H_t, W_t)"
        );
        let geo = &self.geo;
        scratch.reserve(geo, self.shape);
        let isa = self.target.isa;
        let xpad = scratch.xpad.as_mut_slice();
        simd::run(
            isa,
            PadInput {
                planes: geo.planes(),
                c_in: self.shape.c_in,
                x,
                xpad,
            },
        );
        let mut steps = Steps {
            lut: self,
            scratch,
            y,
        };
        schedule::run(
            &mut steps,
            geo.bands,
            self.shape.groups,
            geo.tables,
            geo.chunks,
            phase,
        );
    }

    /// The look-ups of one table: group g's output channels, one band.
    fn pass<'a>(&'a self, src: Source, table: &'a [f32], acc: &'a mut [f32]) -> Pass<'a> {
        let geo = &self.geo;
        let ctg = self.shape.c_out_group();
        let first_list =
            ((src.group * geo.tables + src.table) * geo.chunks + src.chunk) * ctg * geo.shifts;
        let r0 = src.band * geo.band_rows;
        Pass {
            table: &table[..geo.table_len],
            starts: &self.starts[first_list..=first_list + ctg * geo.shifts],
            shifts: geo.shifts,
            taps: &self.taps,
            acc,
            bias: &self.bias[src.group * ctg..(src.group + 1) * ctg],
            t0: src.group * ctg,
            first: src.table == 0 && src.chunk == 0,
            rows: geo.band_rows.min(geo.h_out - r0),
            block_rows: self.plan.block_rows,
            cols: geo.w_out,
            row_stride: geo.row_stride,
            pitch: geo.pitch,
            acc_row_stride: self.shape.c_out * geo.pitch,
        }
    }
}

/// One forward pass's steps (see [`schedule::run`]).
struct Steps<'a> {
    lut: &'a ConvLut,
    scratch: &'a mut ConvScratch,
    y: &'a mut [f32],
}

impl schedule::Steps for Steps<'_> {
    fn build(&mut self, src: Source) {
        let build = table::BuildTable {
            lut: self.lut,
            src,
            xpad: self.scratch.xpad.as_slice(),
            table: self.scratch.table.as_mut_slice(),
        };
        simd::run(self.lut.target.isa, build);
    }

    fn lookups(&mut self, src: Source) {
        let ConvScratch { table, acc, .. } = &mut *self.scratch;
        let pass = self.lut.pass(src, table.as_slice(), acc.as_mut_slice());
        simd::run(self.lut.target.isa, Lookups(pass));
    }

    fn band_end(&mut self, band: usize) {
        let (geo, c_out) = (&self.lut.geo, self.lut.shape.c_out);
        write_band(geo, band, c_out, self.scratch.acc.as_slice(), self.y);
    }
}

/// Reusable buffers of [`ConvLut::forward`]: sized on first use, grown when a larger layer
/// uses them, never shrunk. One scratch may serve several layers (not concurrently).
#[derive(Clone, Debug, Default)]
pub struct ConvScratch {
    /// The zero-padded input split into phase planes: Layout (C_s, s², x_rows, pitch).
    xpad: AlignedBuf<f32>,
    /// One chunk of one band's table: Layout (S_p, P_c, R_b + (kh−1)/s, K_c, pitch) + slack.
    table: AlignedBuf<f32>,
    /// One band's accumulators: Layout (R_b, C_t, pitch).
    acc: AlignedBuf<f32>,
}

impl ConvScratch {
    fn reserve(&mut self, geo: &Geometry, shape: ConvShape) {
        self.xpad.reserve(geo.xpad_len(shape.c_in));
        self.table.reserve(geo.table_len);
        self.acc.reserve(shape.c_out * geo.band_rows * geo.pitch);
    }
}

/// The look-ups of one table (one band, group, subspace and chunk) for every output channel
/// of the group.
struct Pass<'a> {
    /// The chunk's table, Layout (S_p, P_c, R_b + (kh−1)/s, K_c, pitch) + slack.
    table: &'a [f32],
    /// (C_t/groups)·shifts + 1 bounds into `taps`: per output channel of the group, one list
    /// per column offset.
    starts: &'a [u32],
    /// Column offsets: (kw−1)/s + 1.
    shifts: usize,
    taps: &'a [u32],
    /// Layout (R_b, C_t, pitch); channel t0 + t_local is this pass's channel t_local.
    acc: &'a mut [f32],
    /// The group's biases, Layout (C_t/groups).
    bias: &'a [f32],
    t0: usize,
    /// The first table of the band: accumulators start from the bias instead of memory.
    first: bool,
    /// Output rows of this band (R_b, or fewer in the last band).
    rows: usize,
    /// Most rows per register block.
    block_rows: usize,
    /// W_t: the valid columns of each accumulator row.
    cols: usize,
    /// Floats between a codeword's consecutive rows in the table (K_c · pitch).
    row_stride: usize,
    /// Floats per table row and per accumulator row.
    pitch: usize,
    /// Floats between consecutive accumulator rows (C_t · pitch).
    acc_row_stride: usize,
}

impl Pass<'_> {
    /// Channel t_local's accumulator in band row `row`.
    fn acc_offset(&self, row: usize, t_local: usize) -> usize {
        row * self.acc_row_stride + (self.t0 + t_local) * self.pitch
    }

    /// Floats the accumulators must hold: the band's rows of every channel.
    fn acc_len(&self) -> usize {
        self.rows.saturating_sub(1) * self.acc_row_stride + (self.t0 + self.channels()) * self.pitch
    }

    /// Channels of the pass.
    fn channels(&self) -> usize {
        (self.starts.len() - 1) / self.shifts
    }
}

/// A pass as a unit of work for [`simd::run`].
struct Lookups<'a>(Pass<'a>);

impl Kernel for Lookups<'_> {
    fn scalar(mut self) {
        lookup::run_pass_scalar(&mut self.0);
    }
}

impl Vectorized for Lookups<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(mut self, s: S) {
        lookup::run_pass(s, &mut self.0);
    }
}

/// Copies one band's valid accumulators (rows < H_t, columns < W_t) into y (C_t, H_t, W_t).
fn write_band(geo: &Geometry, band: usize, c_out: usize, acc: &[f32], y: &mut [f32]) {
    let r0 = band * geo.band_rows;
    let rows = geo.band_rows.min(geo.h_out - r0);
    for t in 0..c_out {
        for r in 0..rows {
            let src = (r * c_out + t) * geo.pitch;
            let dst = (t * geo.h_out + r0 + r) * geo.w_out;
            y[dst..dst + geo.w_out].copy_from_slice(&acc[src..src + geo.w_out]);
        }
    }
}

/// A register block of the look-ups: `rows` output rows × `vecs` vectors of a row, starting at
/// band row `row` and vector `vec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    row: usize,
    rows: usize,
    vec: usize,
    vecs: usize,
}

/// Cuts `rows` × `vecs_per_row` vectors into blocks of at most `max_vecs` per row chunk,
/// `max_rows` rows and `max_regs` registers in all, balanced so that no block is much smaller
/// than the others.
fn blocks(
    rows: usize,
    vecs_per_row: usize,
    max_vecs: usize,
    max_regs: usize,
    max_rows: usize,
) -> Vec<Block> {
    let col_chunks = vecs_per_row.div_ceil(max_vecs);
    let mut out = Vec::new();
    for (vec, vecs) in balanced(vecs_per_row, col_chunks) {
        let row_chunks = rows.div_ceil((max_regs / vecs).clamp(1, max_rows.max(1)));
        for (row, rows) in balanced(rows, row_chunks) {
            out.push(Block {
                row,
                rows,
                vec,
                vecs,
            });
        }
    }
    out
}

/// `n` split into `parts` consecutive runs whose lengths differ by at most one: (start, len).
fn balanced(n: usize, parts: usize) -> impl Iterator<Item = (usize, usize)> {
    let (base, extra) = (n / parts, n % parts);
    (0..parts).scan(0, move |start, p| {
        let len = base + usize::from(p < extra);
        let run = (*start, len);
        *start += len;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_runs_cover_exactly() {
        for n in 1..40 {
            for parts in 1..=n {
                let runs: Vec<_> = balanced(n, parts).collect();
                assert_eq!(runs.len(), parts);
                assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), n);
                assert!(runs.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
            }
        }
    }

    #[test]
    fn blocks_respect_register_budget() {
        for rows in 1..30 {
            for vpr in 1..9 {
                let bs = blocks(rows, vpr, 4, 16, 16);
                assert!(bs
                    .iter()
                    .all(|b| b.vecs <= 4 && b.rows * b.vecs <= 16 && b.rows > 0));
                assert_eq!(
                    bs.iter().map(|b| b.rows * b.vecs).sum::<usize>(),
                    rows * vpr
                );
            }
        }
    }

    #[test]
    fn data_rows_are_the_rows_inside_the_input() {
        for (h_in, kernel, stride, pad, band_rows) in [
            (13, 3, 1, 1, 13),
            (227, 11, 4, 0, 5),
            (9, 3, 2, 2, 2),
            (5, 5, 3, 2, 1),
        ] {
            let shape = ConvShape {
                c_in: 1,
                h_in,
                w_in: h_in,
                c_out: 1,
                kernel,
                stride,
                pad,
                groups: 1,
            };
            let plan = ConvPlan {
                band_rows,
                chunk_k: 2,
                chunk_phases: 1,
                block_rows: 1,
                table_subspaces: 1,
            };
            let g = Geometry::new(shape, PqSpec { d: 1, k: 2 }, plan);
            for band in 0..g.bands {
                for a in 0..stride {
                    let rows = g.data_rows(a, band);
                    for row in 0..g.band_plane_rows {
                        let padded = stride * (band * g.band_rows + row) + a;
                        let inside = (pad..pad + h_in).contains(&padded);
                        assert_eq!(
                            rows.contains(&row),
                            inside,
                            "{shape:?} band {band} a {a} row {row}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn alexnet_geometry() {
        let spec = PqSpec { d: 8, k: 128 };
        // A Zen 5 core: 48 KB L1d, 1 MB L2.
        let target = Target::new(
            Isa::Scalar,
            crate::target::CacheSizes {
                l1d: 48 << 10,
                l2: 1 << 20,
                l3: 32 << 20,
            },
        );
        let conv3 = ConvShape {
            c_in: 256,
            h_in: 13,
            w_in: 13,
            c_out: 384,
            kernel: 3,
            stride: 1,
            pad: 1,
            groups: 1,
        };
        let g = Geometry::new(conv3, spec, default_plan(target, conv3, spec));
        assert_eq!(
            (g.pitch, g.bands, g.band_plane_rows, g.chunks, g.shifts),
            (16, 1, 15, 1, 3)
        );
        let conv1 = ConvShape {
            c_in: 3,
            h_in: 227,
            w_in: 227,
            c_out: 96,
            kernel: 11,
            stride: 4,
            pad: 0,
            groups: 1,
        };
        let g = Geometry::new(conv1, spec, default_plan(target, conv1, spec));
        assert_eq!((g.pitch, g.shifts, g.phases), (64, 3, 16));
        assert_eq!(
            (g.band_rows, g.grid.chunk_k, g.grid.chunk_phases),
            (5, 128, 2)
        );
        let conv2 = ConvShape {
            c_in: 96,
            h_in: 27,
            w_in: 27,
            c_out: 256,
            kernel: 5,
            stride: 1,
            pad: 2,
            groups: 2,
        };
        let g = Geometry::new(conv2, spec, default_plan(target, conv2, spec));
        assert_eq!((g.pitch, g.bands, g.chunks, g.shifts), (32, 1, 1, 5));
    }
}
