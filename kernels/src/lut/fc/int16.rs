//! i16-table fully-connected kernels, "fc-lut-i16-<isa>" (docs/KERNELS.md "i16 fc"): the
//! table of [`super::FcLut`] quantized per image to i16 entries. Approximate, like the int8
//! conv family, and used by the same mode.
//!
//! Quantization: the subspaces form groups of [`GROUP`]; group g's entries are
//! q = round(T / A_g · Q) (half to even), A_g = max |T| over the group's rows,
//! Q = [`Q`], so that the sum of one group's look-ups, ≤ 16 · 2047 = 32752 in magnitude,
//! never leaves an i16. Each output sums a group's entries in i16, then adds
//! s_g · Σ (s_g = A_g / Q) to its f32 sum with one FMA, group after group. The largest error
//! per look-up is s_g / 2: a per-group scale follows the table's range much more closely
//! than one per layer.
//!
//! Look-ups ([`I16Select`], per level): with AVX-512 a row (32 i16 words) is one register
//! and `vpermw` selects 32 outputs' entries from it (indices widened from bytes); with a
//! byte shuffle only (AVX2 `vpshufb`, NEON `tbl`) a row is 2 byte planes of 32 bytes (low
//! and high bytes), so a shuffle per plane and one byte unpack give 4·lanes i16 entries:
//! half the shuffles and a quarter of the unpacks of the exact f32 planes, and 16-bit adds
//! (twice the lanes of an f32 add). The index layout, chunks and tiles are the f32 planes'
//! (`planes`), with chunks a multiple of [`GROUP`] subspaces and the byte order of
//! [`planes::order_i16`] (planes) or the outputs' order (words).
//!
//! Every level computes the same bits: the f32 table rows with one FMA per dim in the same
//! order ([`TransposedCodebooks::row_scalar`]), the quantization with the same operations
//! per entry (a correctly rounded division, a product, rounding half to even:
//! `quantize_group` and its vector form), the i16 sums exactly, the flushes with one FMA
//! each; the scalar twin follows the same order.

use super::planes::{self, BytePlanes, PlaneFormat, PlaneIndices};
use super::TransposedCodebooks;
use crate::isa::Isa;
use crate::lut::{check_fc, AlignedBuf, LutError, Phase, PqSpec};
use crate::shape::FcShape;
use crate::simd::{self, Kernel, Simd, Vectorized};
use crate::target::Target;

/// Subspaces per quantization group: the i16 sums are flushed to f32 after each group.
pub const GROUP: usize = 16;
/// The q range: |q| ≤ Q, so a group's sum stays within ±32767.
pub const Q: i32 = i16::MAX as i32 / GROUP as i32;
/// Entries per table row (K ≤ 32).
const ROW: usize = planes::ROW;
/// Bytes per subspace in the table: 32 i16 words, or 2 byte planes of [`ROW`] bytes.
const ROW_BYTES: usize = 2 * ROW;
/// How far ahead of the index vector being read the stream is prefetched, in bytes.
const INDEX_PREFETCH_BYTES: usize = 4096;

/// One product-quantized fully-connected layer with i16 tables, prepared for one [`Target`].
#[derive(Clone, Debug)]
pub struct FcLutI16 {
    target: Target,
    shape: FcShape,
    spec: PqSpec,
    /// M = ceil(C_s / d).
    subspaces: usize,
    codebooks: TransposedCodebooks,
    indices: PlaneIndices,
    /// The table's layout: i16 words (a row is 32 little-endian i16) or byte planes (a row
    /// is 32 low bytes, then 32 high bytes), as the level selects entries ([`I16Select`]).
    words: bool,
    /// Layout (C_t rounded up to a tile): bias_t, zero beyond C_t.
    bias: Vec<f32>,
}

impl FcLutI16 {
    /// Whether a layer with this spec can have i16 tables (K ≤ 32: one 32-entry row).
    pub fn supports(spec: PqSpec) -> bool {
        spec.k <= ROW
    }

    /// Whether i16 tables beat the exact f32 ones for this layer at `target`: where the f32
    /// kernel looks up byte planes (4 shuffles and 8 unpacks per vector of entries, against
    /// 2 and 2 here). Where it permutes f32 rows in registers (AVX-512) it reads 5-bit packed
    /// indices, less memory than these byte indices, and measured as fast or faster
    /// (docs/KERNELS.md "i16 fc"); the scalar twin has no reason to prefer either.
    pub fn pays(target: Target, spec: PqSpec) -> bool {
        Self::supports(spec) && super::FcLut::uses_byte_planes(target, spec)
    }

    /// Validates as [`super::FcLut::new`] does, and K ≤ 32 ([`Self::supports`]).
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
        if !Self::supports(spec) {
            return Err(LutError::Spec(format!(
                "K = {} (i16 fc tables need K ≤ {ROW})",
                spec.k
            )));
        }
        let (group, words) = simd::run(target.isa, ChooseLayout);
        let order: Vec<u8> = if words {
            (0..group as u8).collect()
        } else {
            planes::order_i16(group)
        };
        let format = PlaneFormat {
            group,
            order: &order,
            row_bytes: ROW_BYTES,
            chunk_align: GROUP,
        };
        let indices = PlaneIndices::new(target.caches, shape, spec.k, m_count, format, assignments);
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(indices.tiles * indices.tile_outputs(), 0.0);
        Ok(FcLutI16 {
            target,
            shape,
            spec,
            subspaces: m_count,
            codebooks: TransposedCodebooks::new(shape, spec, centroids),
            indices,
            words,
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

    /// The kernel's ID in results and on the command line: "fc-lut-i16-<isa>".
    pub fn kernel_name(&self) -> String {
        Self::name(self.target.isa)
    }

    /// The kernel family's name at `isa`.
    pub fn name(isa: Isa) -> String {
        format!("fc-lut-i16-{isa}")
    }

    /// A short description of the layout and schedule, recorded with every run.
    pub fn plan_summary(&self) -> String {
        let p = &self.indices;
        format!(
            "i16 {}, {} outputs per vector, {} indices per byte, {} subspaces per table chunk, \
             a scale per {GROUP} subspaces (Q = {Q})",
            if self.words { "words" } else { "byte planes" },
            p.group,
            if p.nibbles { 2 } else { 1 },
            p.chunk
        )
    }

    /// Bytes of re-laid indices one forward pass streams.
    pub fn index_bytes(&self) -> usize {
        self.indices.bytes.len()
    }

    /// x: (C_s); y: (C_t), every element overwritten. Calls `phase(Phase::Table)` once the
    /// quantized table is built and `phase(Phase::Lookup)` at the end. `scratch` grows on
    /// the first call only.
    ///
    /// Panics if x or y has the wrong length: the SIMD kernels rely on both.
    pub fn forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut FcI16Scratch,
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

    /// Table entries per row the look-ups read: 16 when every index is < 16 (nibbles).
    fn width(&self) -> usize {
        if self.indices.nibbles {
            ROW / 2
        } else {
            ROW
        }
    }

    /// Quantization groups: ceil(M / GROUP).
    fn groups(&self) -> usize {
        self.subspaces.div_ceil(GROUP)
    }
}

/// Reusable buffers of [`FcLutI16::forward`]: grown on first use, never shrunk.
#[derive(Clone, Debug, Default)]
pub struct FcI16Scratch {
    /// The quantized table, Layout (M, 64 bytes): words or byte planes.
    table: AlignedBuf<u8>,
    /// s_g per group, Layout (ceil(M / GROUP)).
    scales: Vec<f32>,
    /// Partial sums between subspace chunks, Layout (C_t rounded to a tile).
    acc: AlignedBuf<f32>,
}

impl FcI16Scratch {
    fn reserve(&mut self, lut: &FcLutI16) {
        self.table.reserve(lut.subspaces * ROW_BYTES);
        self.scales.resize(lut.groups(), 0.0);
        self.acc.reserve(lut.bias.len());
    }

    /// The plane table and the scales, sized for `lut`.
    fn table(&mut self, lut: &FcLutI16) -> (&mut [u8], &mut [f32]) {
        (
            &mut self.table.as_mut_slice()[..lut.subspaces * ROW_BYTES],
            &mut self.scales[..lut.groups()],
        )
    }
}

/// (G, words): G = 4·lanes outputs per index vector at a vector level, and the table layout
/// the level reads; the scalar twin reads 32 outputs' indices from byte planes.
struct ChooseLayout;

impl Kernel for ChooseLayout {
    fn scalar(self) -> (usize, bool) {
        (32, false)
    }
}

impl Vectorized for ChooseLayout {
    type Output = (usize, bool);
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) -> (usize, bool) {
        (4 * S::LANES, s.fc_i16_words())
    }
}

/// Phase 1: per group of subspaces, the f32 rows T[m] (on the stack), their scale, and the
/// quantized entries in the level's layout.
struct BuildTable<'a> {
    lut: &'a FcLutI16,
    x: &'a [f32],
    scratch: &'a mut FcI16Scratch,
}

impl Kernel for BuildTable<'_> {
    fn scalar(self) {
        let (lut, x) = (self.lut, self.x);
        let width = lut.width();
        let (table, scales) = self.scratch.table(lut);
        let mut rows = [0.0f32; GROUP * ROW];
        for (g, (out, scale)) in table.chunks_mut(GROUP * ROW_BYTES).zip(scales).enumerate() {
            let n = out.len() / ROW_BYTES;
            for (i, row) in rows.chunks_exact_mut(ROW).take(n).enumerate() {
                lut.codebooks
                    .row_scalar(x, g * GROUP + i, &mut row[..width]);
            }
            *scale = quantize_group(&rows[..n * ROW], width, lut.words, out);
        }
    }
}

impl Vectorized for BuildTable<'_> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let (lut, x) = (self.lut, self.x);
        assert!(x.len() == lut.shape.c_in);
        let width = lut.width();
        let (table, scales) = self.scratch.table(lut);
        let mut rows = [0.0f32; GROUP * ROW];
        // The scalar twin's loop with the level's rows (a shared closure would be compiled
        // without S's target features).
        for (g, (out, scale)) in table.chunks_mut(GROUP * ROW_BYTES).zip(scales).enumerate() {
            let n = out.len() / ROW_BYTES;
            for (i, row) in rows.chunks_exact_mut(ROW).take(n).enumerate() {
                lut.codebooks.row(s, x, g * GROUP + i, &mut row[..width]);
            }
            *scale = quantize_group_simd(s, &rows[..n * ROW], width, lut.words, out);
        }
    }
}

/// A group's A_g = max |v| over the first `width` entries of its rows, and the divisor of
/// its entries: A_g, or 1 where A_g = 0 (every entry is then 0). Over A_g, then times Q, not
/// times Q / A_g: that overflows for a subnormal A_g. `None`, with `table` zeroed, if an
/// entry is not finite (the caller's s_g is then NaN). The maximum is taken on the bits
/// (|v| orders as its bits do), so that a NaN is seen, not skipped, and the loop vectorizes.
#[inline(always)]
fn group_range(rows: &[f32], width: usize, table: &mut [u8]) -> Option<(f32, f32)> {
    let mut amax_bits = 0u32;
    for row in rows.chunks_exact(ROW) {
        for v in &row[..width] {
            amax_bits = amax_bits.max(v.to_bits() & 0x7FFF_FFFF);
        }
    }
    let amax = f32::from_bits(amax_bits);
    if !amax.is_finite() {
        table.fill(0);
        return None;
    }
    Some((amax, if amax > 0.0 { amax } else { 1.0 }))
}

/// Zeroes a quantized row's entries from `used` on, in its layout (words, or byte planes).
#[inline(always)]
fn clear_past(out: &mut [u8], used: usize, words: bool) {
    if words {
        out[2 * used..].fill(0);
    } else {
        out[used..ROW].fill(0);
        out[ROW + used..].fill(0);
    }
}

/// One group's rows (n · 32 floats, the first `width` of each row used) → their i16 entries
/// q = round(T / A_g · Q) (n · 64 bytes: as words, or as byte planes, low bytes then high
/// bytes; entries ≥ width are 0), and the group's scale s_g = A_g / Q: the scalar twin's
/// form ([`quantize_group_simd`] is the levels'). A non-finite entry makes s_g NaN, so the
/// outputs say so instead of reading 0.
#[inline(always)]
fn quantize_group(rows: &[f32], width: usize, words: bool, table: &mut [u8]) -> f32 {
    let Some((amax, over)) = group_range(rows, width, table) else {
        return f32::NAN;
    };
    for (row, out) in rows
        .chunks_exact(ROW)
        .zip(table.chunks_exact_mut(ROW_BYTES))
    {
        if words {
            for (v, word) in row[..width].iter().zip(out.chunks_exact_mut(2)) {
                // SAFETY: every v is finite and |v| ≤ amax (checked above).
                let q = unsafe { quantize(*v, over) };
                word.copy_from_slice(&(q as i16).to_le_bytes());
            }
        } else {
            let (low, high) = out.split_at_mut(ROW);
            for ((v, lo), hi) in row[..width]
                .iter()
                .zip(&mut low[..width])
                .zip(&mut high[..width])
            {
                // SAFETY: every v is finite and |v| ≤ amax (checked above).
                let q = unsafe { quantize(*v, over) };
                *lo = q as u8;
                *hi = (q >> 8) as u8;
            }
        }
        clear_past(out, width, words);
    }
    amax / Q as f32
}

/// [`quantize_group`] at a vector level, with the same bits: per 2·LANES entries the same
/// correctly rounded division and product, rounded half to even by the level's conversion
/// ([`Simd::quantize_i16`]), stored as words or split into the byte planes. The plain loop
/// (scalar division, byte stores) took about a third of the i16 table phase.
#[inline(always)]
fn quantize_group_simd<S: Simd>(
    s: S,
    rows: &[f32],
    width: usize,
    words: bool,
    table: &mut [u8],
) -> f32 {
    let Some((amax, over)) = group_range(rows, width, table) else {
        return f32::NAN;
    };
    let step = 2 * S::LANES;
    // Entries from `width` to `used` are zero (their vectors are not read).
    let used = width.next_multiple_of(step);
    assert!(
        used <= ROW
            && rows.len().is_multiple_of(ROW)
            && table.len() == rows.len() / ROW * ROW_BYTES
    );
    let (over, q) = (s.splat(over), s.splat(Q as f32));
    for (row, out) in rows
        .chunks_exact(ROW)
        .zip(table.chunks_exact_mut(ROW_BYTES))
    {
        for at in (0..used).step_by(step) {
            // SAFETY: at + 2·LANES ≤ used ≤ ROW floats of `row`; `out` holds ROW_BYTES =
            // 2·ROW bytes: words at 2·at .. 2·(at + 2·LANES) ≤ 2·ROW, planes at at .. and
            // ROW + at .., 2·LANES bytes each, within ROW and 2·ROW. The entries are finite
            // with |v| ≤ amax (checked above), so each quotient times Q rounds to an integer
            // within ±Q, which the narrowing keeps.
            unsafe {
                let (a, b) = s.pack_order(
                    scaled(s, row, at, width, over, q),
                    scaled(s, row, at + S::LANES, width, over, q),
                );
                let v = s.quantize_i16(a, b);
                let dst = out.as_mut_ptr();
                if words {
                    s.store_i16(dst.add(2 * at).cast(), v);
                } else {
                    s.store_i16_bytes(dst.add(at), dst.add(ROW + at), v);
                }
            }
        }
        clear_past(out, used, words);
    }
    amax / Q as f32
}

/// `row[from..][..LANES] / over · q`, or zero from `width` on (those entries are zero: no
/// division for them). A function, not a closure: a closure body would be compiled without
/// the level's target features.
///
/// # Safety
/// `from + LANES ≤ row.len()`.
#[inline(always)]
unsafe fn scaled<S: Simd>(
    s: S,
    row: &[f32],
    from: usize,
    width: usize,
    over: S::F32,
    q: S::F32,
) -> S::F32 {
    if from < width {
        s.mul(s.div(s.load(row.as_ptr().add(from)), over), q)
    } else {
        s.zero()
    }
}

/// round(v / amax · Q), half to even.
///
/// # Safety
/// v is finite and |v| ≤ amax (amax > 0, or v = 0 and amax = 1): then |v / amax| ≤ 1 and
/// the result is an integer within ±Q (correctly rounded division and product of exact
/// bounds), which fits an i32. (A checked `as` made the callers' loops scalar.)
#[inline(always)]
unsafe fn quantize(v: f32, amax: f32) -> i32 {
    (v / amax * Q as f32)
        .round_ties_even()
        .to_int_unchecked::<i32>()
}

/// Phase 2: the look-ups, into y.
struct RunLookups<'a> {
    lut: &'a FcLutI16,
    scratch: &'a mut FcI16Scratch,
    y: &'a mut [f32],
}

/// What a level's i16 look-ups get: the layer, its quantized table and the output.
pub(crate) struct Lookups<'a> {
    pub lut: &'a FcLutI16,
    /// Layout (M, 64 bytes): a row as words or planes (`FcLutI16::words`).
    pub table: &'a [u8],
    /// Layout (ceil(M / GROUP)).
    pub scales: &'a [f32],
    /// Partial sums, Layout (C_t rounded to a tile).
    pub acc: &'a mut [f32],
    /// (C_t).
    pub y: &'a mut [f32],
}

impl Kernel for RunLookups<'_> {
    fn scalar(self) {
        let FcI16Scratch { table, scales, acc } = self.scratch;
        lookups_scalar(
            self.lut,
            table.as_slice(),
            scales,
            acc.as_mut_slice(),
            self.y,
        );
    }
}

impl Vectorized for RunLookups<'_> {
    type Output = ();

    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let FcI16Scratch { table, scales, acc } = self.scratch;
        s.fc_lookups_i16(Lookups {
            lut: self.lut,
            table: table.as_slice(),
            scales,
            acc: acc.as_mut_slice(),
            y: self.y,
        });
    }
}

/// The scalar twin: the vector levels' order (chunk, tile, group; each output's i16 group
/// sum, then one FMA into its f32 sum), one index at a time. Bit-identical to them: the
/// group sums are exact in i32 as in i16 (|sum| ≤ 32752), and exactly converted.
fn lookups_scalar(lut: &FcLutI16, table: &[u8], scales: &[f32], acc: &mut [f32], y: &mut [f32]) {
    let idx = &lut.indices;
    let (g, tile) = (idx.group, idx.tile_outputs());
    let sums = &mut acc[..idx.tiles * tile];
    sums.copy_from_slice(&lut.bias[..idx.tiles * tile]);
    // The scalar level's own layer reads byte planes (`ChooseLayout`).
    assert!(!lut.words, "the scalar twin reads byte planes");
    let output_of_byte = idx.output_of_byte();
    let mut parts = vec![0i32; tile];
    for (c, (m0, n)) in idx.chunks().enumerate() {
        let base = c * idx.chunk * idx.tiles * g;
        for t in 0..idx.tiles {
            for g0 in (0..n).step_by(GROUP) {
                parts.fill(0);
                for m in g0..(g0 + GROUP).min(n) {
                    let bytes = &idx.bytes[base + (t * n + m) * g..][..g];
                    let row = &table[(m0 + m) * ROW_BYTES..][..ROW_BYTES];
                    let entry = |b: u8| {
                        let b = b as usize;
                        i32::from(i16::from_le_bytes([row[b], row[ROW + b]]))
                    };
                    for (byte, &b) in bytes.iter().enumerate() {
                        let output = output_of_byte[byte];
                        if idx.nibbles {
                            parts[output] += entry(b & 0x0F);
                            parts[output + g] += entry(b >> 4);
                        } else {
                            parts[output] += entry(b);
                        }
                    }
                }
                let scale = scales[(m0 + g0) / GROUP];
                for (sum, &part) in sums[t * tile..][..tile].iter_mut().zip(&parts) {
                    *sum = (part as f32).mul_add(scale, *sum);
                }
            }
        }
    }
    let c_out = y.len();
    y.copy_from_slice(&sums[..c_out]);
}

/// The look-ups at level S (see the module doc).
#[inline(always)]
pub(crate) fn lookups<S: I16Select>(s: S, op: Lookups<'_>) {
    let idx = &op.lut.indices;
    let (g, tile) = (idx.group, idx.tile_outputs());
    assert!(g == 4 * S::LANES && idx.bytes.len() == idx.tiles * g * idx.m_count);
    assert!(op.lut.words == S::WORDS);
    assert!(op.table.len() >= idx.m_count * ROW_BYTES);
    assert!(op.scales.len() == idx.m_count.div_ceil(GROUP));
    // Every chunk starts a group: the scale of subspace m0 + g0's group is (m0 + g0) / GROUP.
    assert!(idx.chunk.is_multiple_of(GROUP) || idx.chunk >= idx.m_count);
    assert!(op.acc.len() >= idx.tiles * tile && op.lut.bias.len() >= idx.tiles * tile);
    assert!(op.y.len() == op.lut.shape.c_out && op.y.len() <= idx.tiles * tile);
    match (idx.wide, idx.nibbles) {
        (true, _) => run::<S, true, false>(s, op),
        (false, false) => run::<S, false, false>(s, op),
        (false, true) => run::<S, false, true>(s, op),
    }
}

#[inline(always)]
fn run<S: I16Select, const WIDE: bool, const NIBBLES: bool>(s: S, op: Lookups<'_>) {
    let idx = &op.lut.indices;
    let (g, tile) = (idx.group, idx.tile_outputs());
    let halves = if NIBBLES { 2 } else { 1 };
    let (bias, acc) = (op.lut.bias.as_ptr(), op.acc.as_mut_ptr());
    if idx.m_count == 0 {
        op.acc[..op.lut.bias.len()].copy_from_slice(&op.lut.bias);
    }
    for (c, (m0, n)) in idx.chunks().enumerate() {
        let base = c * idx.chunk * idx.tiles * g;
        let sums_from = if c == 0 { bias } else { acc.cast_const() };
        for t in 0..idx.tiles {
            // SAFETY: tile t's sums are acc/bias[t·T .. t·T + T] (T = G or 2·G outputs, 4 or
            // 8 vectors; both hold tiles·T floats, asserted in `lookups`); its indices for
            // the chunk are bytes[base + t·n·G ..] (n·G bytes, inside the tiles·G·M bytes);
            // subspace m0 + m < M has its row at table[(m0 + m)·64 ..][..64], inside
            // M·64 bytes, and its group's scale at (m0 + m) / GROUP < ceil(M / GROUP)
            // (asserted). The i16 sums never wrap: a group adds ≤ GROUP entries of |q| ≤ Q.
            unsafe {
                let mut sums = [s.zero(); 8];
                for (v, sum) in sums.iter_mut().enumerate().take(4 * halves) {
                    *sum = s.load(sums_from.add(t * tile + v * S::LANES));
                }
                let indices = idx.bytes.as_ptr().add(base + t * n * g);
                for g0 in (0..n).step_by(GROUP) {
                    let mut parts = [s.zero_i16(); 4];
                    for m in g0..(g0 + GROUP).min(n) {
                        // The index stream runs on through the tiles and chunks: fetch ahead.
                        s.prefetch(indices.wrapping_add(m * g + INDEX_PREFETCH_BYTES));
                        let row = op.table.as_ptr().add((m0 + m) * ROW_BYTES);
                        s.add_i16_entries::<WIDE, NIBBLES>(&mut parts, indices.add(m * g), row);
                    }
                    let scale = s.splat(*op.scales.get_unchecked((m0 + g0) / GROUP));
                    for (p, part) in parts.iter().enumerate().take(2 * halves) {
                        let (a, b) = s.widen_i16(*part);
                        sums[2 * p] = s.fma(s.i32_to_f32(a), scale, sums[2 * p]);
                        sums[2 * p + 1] = s.fma(s.i32_to_f32(b), scale, sums[2 * p + 1]);
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

/// How a level selects i16 table entries for one index vector.
pub(crate) trait I16Select: Simd {
    /// The table layout it reads: i16 words, or byte planes (see [`FcLutI16`]).
    const WORDS: bool;
    /// `parts[0..2] += row[idx]` for the G = 4·LANES outputs of the index vector at `indices`
    /// (2 i16 vectors, outputs in order), and with NIBBLES (K ≤ 16: two indices per byte)
    /// `parts[2..4] += row[high nibble]` for the next G outputs. WIDE: indices reach 16.
    ///
    /// # Safety
    /// `indices` is valid for reading G bytes, every index (nibble) < 32 (< 16 unless WIDE);
    /// `row` points to one table row of 64 bytes in the level's layout.
    unsafe fn add_i16_entries<const WIDE: bool, const NIBBLES: bool>(
        self,
        parts: &mut [Self::I16; 4],
        indices: *const u8,
        row: *const u8,
    );
}

/// Every level with a byte shuffle ([`BytePlanes`]: AVX2, NEON) reads byte planes: per
/// index vector 2 plane look-ups (4 with nibbles) and one byte interleave each.
impl<S: BytePlanes> I16Select for S {
    const WORDS: bool = false;
    #[inline(always)]
    unsafe fn add_i16_entries<const WIDE: bool, const NIBBLES: bool>(
        self,
        parts: &mut [S::I16; 4],
        indices: *const u8,
        row: *const u8,
    ) {
        let v = self.load_u8(indices);
        if NIBBLES {
            let (lo, hi) = self.split_nibbles(v);
            add_planes::<S, false>(self, &mut parts[..2], row, self.prepare::<false>(lo));
            add_planes::<S, false>(self, &mut parts[2..], row, self.prepare::<false>(hi));
        } else {
            add_planes::<S, WIDE>(self, &mut parts[..2], row, self.prepare::<WIDE>(v));
        }
    }
}

/// `parts[v] += q[m][idx]` for the 4·LANES outputs of one index vector (2 i16 vectors): 2
/// plane look-ups, one interleave.
///
/// # Safety
/// `planes` points to subspace m's 2 planes (64 bytes).
#[inline(always)]
unsafe fn add_planes<S: BytePlanes, const WIDE: bool>(
    s: S,
    parts: &mut [S::I16],
    planes: *const u8,
    i: S::Index,
) {
    let bytes = [
        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes), i),
        s.lookup::<WIDE>(s.load_plane::<WIDE>(planes.add(ROW)), i),
    ];
    let entries = s.interleave_i16(bytes);
    for (part, e) in parts.iter_mut().zip(entries) {
        *part = s.add_i16(*part, e);
    }
}
