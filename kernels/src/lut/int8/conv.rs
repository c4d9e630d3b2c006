//! "conv-lut-i8-*": look-up convolution with integer tables (approximate).
//!
//! Glossary as in [`crate::lut::conv`]: C_s, C_t, kh = kw, s (stride), d, K, M subspaces
//! per group, H_t × W_t the output map.
//!
//! Quantization, once per layer and image (all prep steps are shared plain Rust, so every
//! ISA computes the same scale, offsets and box sums):
//! - codebook centers c_m = mean_k D^(m)_k and radii R_m = max_k ‖D^(m)_k − c_m‖ (at
//!   construction);
//! - the scale s = max over (group, m, pixel p) of ‖x_p^(m)‖·R_m, times a margin, over Q:
//!   a cheap bound on every |< x_p^(m), D^(m)_k − c_m >|, so that no entry exceeds Q (the
//!   bound is nearly reached on real data: scaling it down by 2 and clamping made the
//!   network's error 20× worse);
//! - offsets o[p][m] = < x_p^(m), c_m >, summed over m per pixel (O[p]) and over the kernel
//!   window per output position (the "box sum" B[q]);
//! - table entries q[p][m][k] = round(< x_p^(m), (D^(m)_k − c_m)/s >), clamped to [−Q, Q];
//! - y[t][q] = (bias_t + B[q]) + s·Σ_(i,j,m) q[…][m][b[t][i][j][m]].
//!
//! Error vs the exact f32 path: at most s/2 (+ f32 slack) per look-up.
//!
//! Layout ("flattened phase planes"): the zero-padded input is split into s × s phase planes
//! as in the exact kernel, but each plane is stored flattened with a row pitch of
//! pw = W_t + (kw−1)/s positions (no alignment). An output position (r, c) is the flat lane
//! q = r·pw + c (lanes with c ≥ W_t are computed and discarded), and tap (i, j) reads plane
//! (i mod s, j mod s) at lane q + (i div s)·pw + j div s: for a scalar index
//! b = b[t][i][j][m] one contiguous run of the table covers the whole band of outputs, 32
//! i16 lanes per load.
//!
//! Table layout: Layout (s², K_c, row_stride) of i16, one row per (phase plane, codeword of
//! the chunk) holding the band's (R_b + (kh−1)/s)·pw flattened positions.
//!
//! Accumulation: i16 lanes, flushed into i32 after at most ⌊32767 / Q⌋ look-ups per output
//! (after the passes [`flush_schedule`] picks), so no sum ever overflows: the integer
//! sums, hence the outputs, are exact and identical at every ISA.

use super::{isa_supported, AlignedBuf};
use crate::isa::Isa;
use crate::lut::{check_conv_buffers, check_conv_shape, LutError, Phase, PqSpec};
use crate::shape::ConvShape;

/// i16 lanes of one AVX-512 register: table rows and accumulator rows are multiples of it.
pub(crate) const LANES: usize = 32;

/// Most taps per subspace (kh·kw): 258 look-ups of |q| ≤ 127 still fit an i16 sum
/// (258 · 127 = 32766), so every layer within it gets a q range Q ≥ 127.
pub const MAX_I16_TERMS: usize = 258;

/// Largest |i16 partial sum| allowed before the flush to i32.
const I16_SUM_MAX: usize = i16::MAX as usize;

/// Look-ups per output between flushes that the q range is sized for: Q = ⌊32767 / this⌋
/// = 1820 unless one pass (one subspace and codeword chunk) has more look-ups for some
/// output channel, then Q = ⌊32767 / that count⌋. Consecutive passes are summed in i16 while
/// their look-ups stay within ⌊32767 / Q⌋ for every channel, then flushed to i32. A wider Q
/// gives a finer scale (smaller error) at the cost of more i16 → i32 flushes: 18 gives 3×3
/// kernels a flush every 2 subspaces, 5×5 every subspace (Q = 1310), and conv1 (11×11, M =
/// 1, codeword chunks) a flush after every chunk. Q = 127 (the first version) cost conv2–5
/// 3–15 % relative error on real data; 1820 costs no measurable look-up time there.
const TERMS_PER_FLUSH: usize = 18;

/// The flush schedule and Q from the per-pass look-up counts `counts[pass][list]` (pass =
/// m·chunks + chunk; list = group·C_t/groups + t_local): the passes after which the i16
/// sums are flushed (the last pass always ends the sums), and Q.
pub fn flush_schedule(counts: &[Vec<usize>]) -> (Vec<bool>, i32) {
    let widest = counts
        .iter()
        .flat_map(|c| c.iter().copied())
        .max()
        .unwrap_or(0);
    let q_max = I16_SUM_MAX / TERMS_PER_FLUSH.max(widest).max(1);
    let limit = I16_SUM_MAX / q_max;
    let mut ends = vec![false; counts.len()];
    let mut sums = vec![0usize; counts.first().map_or(0, Vec::len)];
    for (pass, c) in counts.iter().enumerate() {
        if sums.iter().zip(c).any(|(a, b)| a + b > limit) {
            ends[pass - 1] = true;
            sums.fill(0);
        }
        sums.iter_mut().zip(c).for_each(|(a, b)| *a += b);
    }
    (ends, q_max as i32)
}

/// The scale is the bound on |entries| times this margin over Q, so that the f32 rounding
/// of the dot products cannot push an entry past Q + 0.5 (the clamp is the backstop).
const SCALE_MARGIN: f32 = 1.0 + 1e-4;

/// Largest i16 table (bytes) built for a whole map with every codeword (conv2: 254 KB).
const WHOLE_TABLE_BUDGET_BYTES: usize = 512 * 1024;

/// Largest table chunk (bytes) when the layer must be cut into bands and codeword chunks.
const CHUNK_BUDGET_BYTES: usize = 384 * 1024;

/// Output rows per band when the whole map's table does not fit (conv1: see the bench).
const DEFAULT_BAND_ROWS: usize = 11;

/// How the work is scheduled. Plans with the same [`ConvLutI8::q_range`] give bit-identical
/// outputs; the codeword chunk sets the look-ups per pass, hence Q, so other plans may differ
/// within the error bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvI8Plan {
    /// R_b: output rows per band.
    pub band_rows: usize,
    /// K_c: codewords per table chunk.
    pub chunk_k: usize,
}

/// Where each value lives, for one shape and plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub stride: usize,
    pub kernel: usize,
    pub pad: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub h_out: usize,
    pub w_out: usize,
    /// (kw − 1) / s: the largest row / column offset of a tap inside its phase plane.
    pub reach: usize,
    /// s².
    pub phases: usize,
    /// pw = W_t + reach: positions per flattened plane row.
    pub pw: usize,
    pub band_rows: usize,
    pub bands: usize,
    /// Plane rows one band reads: R_b + reach.
    pub band_plane_rows: usize,
    /// Rows of each padded plane: bands · R_b + reach.
    pub x_rows: usize,
    /// Floats per (channel, phase) plane of the padded input: x_rows·pw + slack.
    pub x_plane: usize,
    /// Qv: accumulator lanes per channel and band, R_b·pw rounded up to [`LANES`].
    pub out_lanes: usize,
    /// Positions a table row must hold: (R_b + reach)·pw.
    pub row_len: usize,
    /// Positions the table builder writes per row: row_len rounded up to [`LANES`].
    pub build_len: usize,
    /// i16 between consecutive table rows (a multiple of [`LANES`]).
    pub row_stride: usize,
    pub chunk_k: usize,
    pub chunks: usize,
    /// i16 of the table: s² · K_c · row_stride.
    pub table_len: usize,
}

impl Geometry {
    fn new(shape: ConvShape, spec: PqSpec, plan: ConvI8Plan) -> Geometry {
        let s = shape.stride;
        let reach = (shape.kernel - 1) / s;
        let (h_out, w_out) = (shape.h_out(), shape.w_out());
        let pw = w_out + reach;
        let band_rows = plan.band_rows.clamp(1, h_out);
        let bands = h_out.div_ceil(band_rows);
        let band_plane_rows = band_rows + reach;
        let x_rows = bands * band_rows + reach;
        let out_lanes = (band_rows * pw).next_multiple_of(LANES);
        let row_len = band_plane_rows * pw;
        let build_len = row_len.next_multiple_of(LANES);
        // A look-up reads out_lanes positions from a tap's offset ≤ reach·pw + reach.
        let row_stride = build_len
            .max(reach * pw + reach + out_lanes)
            .next_multiple_of(LANES);
        let chunk_k = plan.chunk_k.clamp(1, spec.k);
        Geometry {
            stride: s,
            kernel: shape.kernel,
            pad: shape.pad,
            h_in: shape.h_in,
            w_in: shape.w_in,
            h_out,
            w_out,
            reach,
            phases: s * s,
            pw,
            band_rows,
            bands,
            band_plane_rows,
            x_rows,
            // The builder reads up to build_len − 1 ≥ row_len + 31 positions from a band's
            // first row, the box sum up to reach·pw + reach past the band's lanes.
            x_plane: x_rows * pw + LANES + reach,
            out_lanes,
            row_len,
            build_len,
            row_stride,
            chunk_k,
            chunks: spec.k.div_ceil(chunk_k),
            table_len: s * s * chunk_k * row_stride,
        }
    }

    /// Tap (i, j) reading codeword `code` of the chunk: its table offset for output lane 0.
    fn tap_offset(&self, i: usize, j: usize, code: usize) -> usize {
        let s = self.stride;
        let phase = (i % s) * s + j % s;
        (phase * self.chunk_k + code) * self.row_stride + (i / s) * self.pw + j / s
    }

    /// Output rows of band `band`.
    pub fn rows(&self, band: usize) -> usize {
        self.band_rows.min(self.h_out - band * self.band_rows)
    }
}

/// The default plan: the whole map and every codeword if its table fits
/// [`WHOLE_TABLE_BUDGET_BYTES`]; otherwise bands of [`DEFAULT_BAND_ROWS`] rows and the
/// largest codeword chunk within [`CHUNK_BUDGET_BYTES`].
pub fn default_plan(shape: ConvShape, spec: PqSpec) -> ConvI8Plan {
    let bytes = |band_rows, chunk_k| {
        Geometry::new(shape, spec, ConvI8Plan { band_rows, chunk_k }).table_len * 2
    };
    let h_out = shape.h_out();
    if bytes(h_out, spec.k) <= WHOLE_TABLE_BUDGET_BYTES {
        return ConvI8Plan {
            band_rows: h_out,
            chunk_k: spec.k,
        };
    }
    let band_rows = DEFAULT_BAND_ROWS.min(h_out);
    let chunk_k = (1..=spec.k)
        .rev()
        .find(|&c| bytes(band_rows, c) <= CHUNK_BUDGET_BYTES)
        .unwrap_or(1);
    ConvI8Plan { band_rows, chunk_k }
}

/// A quantized conv layer with integer tables, ready for look-ups.
#[derive(Clone, Debug)]
pub struct ConvLutI8 {
    shape: ConvShape,
    spec: PqSpec,
    plan: ConvI8Plan,
    pub(crate) geo: Geometry,
    /// M.
    m_count: usize,
    /// D: Layout (M, K, d), as given.
    centroids: Vec<f32>,
    /// c_m: Layout (M, d), the mean codeword (dims beyond the subspace's are 0).
    centers: Vec<f32>,
    /// R_m²: Layout (M), max_k ‖D_k − c_m‖² over the subspace's dims, rounded up.
    radii2: Vec<f32>,
    /// Layout (C_t).
    bias: Vec<f32>,
    /// Per list l = ((g·M + m)·chunks + chunk)·(C_t/groups) + t_local:
    /// `taps[starts[l]..starts[l + 1]]` are the table offsets ([`Geometry::tap_offset`]) of
    /// output channel t's taps whose index falls in that chunk, ascending.
    starts: Vec<u32>,
    taps: Vec<u32>,
    /// Per pass (m·chunks + chunk): whether its i16 sums are flushed to i32 after it.
    flush_after: Vec<bool>,
    /// Q: every table entry q is clamped to [−Q, Q]; F·kh·kw·Q ≤ 32767.
    q_max: i32,
}

impl ConvLutI8 {
    /// Validates lengths, shape and every index < K, and re-lays the assignments, with
    /// [`default_plan`].
    ///
    /// - `centroids`: Layout (M, K, d), M = ceil((C_s/groups) / d), shared by all groups.
    /// - `assignments`: Layout (C_t, kh, kw, M).
    /// - `bias`: Layout (C_t).
    pub fn new(
        shape: ConvShape,
        spec: PqSpec,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        check_conv_shape(shape, spec)?;
        let plan = default_plan(shape, spec);
        Self::with_plan(shape, spec, plan, centroids, assignments, bias)
    }

    /// As [`ConvLutI8::new`] with an explicit schedule (for tuning; every plan gives the same
    /// outputs bit for bit when they share Q).
    pub fn with_plan(
        shape: ConvShape,
        spec: PqSpec,
        plan: ConvI8Plan,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        check_conv_shape(shape, spec)?;
        let kk = shape.kernel * shape.kernel;
        if kk > MAX_I16_TERMS {
            return Err(LutError::Spec(format!(
                "kernel {0}×{0}: more than {MAX_I16_TERMS} taps per subspace overflow the \
                 int16 accumulators",
                shape.kernel
            )));
        }
        let m_count = check_conv_buffers(shape, spec, centroids, assignments, bias)?;
        let geo = Geometry::new(shape, spec, plan);
        let too_large = geo.table_len > u32::MAX as usize / 2
            || assignments.len() > u32::MAX as usize
            || geo.phases * geo.x_plane > u32::MAX as usize;
        if too_large {
            return Err(LutError::Spec(format!(
                "conv shape {shape:?} is too large for 32-bit table offsets"
            )));
        }
        let (starts, taps) = relay(shape, spec, &geo, assignments);
        // The invariant of every unchecked load (conv_avx512.rs): out_lanes positions read
        // from any tap stay inside the table, and the lists are well-formed.
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1])
                && *starts.last().unwrap() as usize == taps.len()
        );
        assert!(taps
            .iter()
            .all(|&tap| tap as usize + geo.out_lanes <= geo.table_len));
        let (centers, radii2) = centers_and_radii(shape, spec, centroids);
        let (flush_after, q_max) = flush_schedule(&pass_counts(shape, &geo, m_count, &starts));
        Ok(ConvLutI8 {
            shape,
            spec,
            plan: ConvI8Plan {
                band_rows: geo.band_rows,
                chunk_k: geo.chunk_k,
            },
            geo,
            m_count,
            centroids: centroids.to_vec(),
            centers,
            radii2,
            bias: bias.to_vec(),
            starts,
            taps,
            flush_after,
            q_max,
        })
    }

    pub fn shape(&self) -> ConvShape {
        self.shape
    }

    pub fn spec(&self) -> PqSpec {
        self.spec
    }

    /// Q: the largest |table entry| of this layer (its scale is the bound over Q).
    pub fn q_range(&self) -> i32 {
        self.q_max
    }

    /// The schedule in use (clamped to the shape).
    pub fn plan(&self) -> ConvI8Plan {
        self.plan
    }

    /// The kernel's ID in results and on the command line.
    pub fn kernel_name(isa: Isa) -> &'static str {
        match isa {
            Isa::Scalar => "conv-lut-i8-scalar",
            Isa::Avx2 => "conv-lut-i8-avx2 (not implemented)",
            Isa::Avx512 => "conv-lut-i8-avx512",
        }
    }

    /// Whether this family has a kernel for `isa` that runs on this CPU (AVX-512 also needs
    /// VNNI; AVX2 has none).
    pub fn supports(isa: Isa) -> bool {
        isa.is_available() && isa_supported(isa)
    }

    /// x: (C_s, H_s, W_s); y: (C_t, H_t, W_t), fully overwritten. Phase callbacks as in
    /// [`crate::lut::conv::ConvLut::forward`] (the quantization prep counts as table time).
    /// `scratch.scale()` is the scale s this image used afterwards.
    ///
    /// Panics if a length disagrees with the shape or `!Self::supports(isa)`. Non-finite
    /// inputs give unspecified (but not unsafe) outputs.
    pub fn forward(
        &self,
        isa: Isa,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut ConvI8Scratch,
        phase: &mut dyn FnMut(Phase),
    ) {
        assert!(
            Self::supports(isa),
            "no int8 conv kernel for ISA {isa} here"
        );
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
        scratch.reserve(self);
        pad_input(geo, self.shape.c_in, x, scratch.xpad.as_mut_slice());
        let scale = self.scale(scratch.xpad.as_slice(), &mut scratch.work);
        scratch.scale = scale;
        self.scaled_codebooks(scale, &mut scratch.dq);
        self.offsets(scratch.xpad.as_slice(), &mut scratch.offsets);
        let ctg = self.shape.c_out_group();
        for band in 0..geo.bands {
            for g in 0..self.shape.groups {
                box_sum(
                    geo,
                    band,
                    &scratch.offsets[g * geo.phases * geo.x_plane..][..geo.phases * geo.x_plane],
                    scratch.boxsum.as_mut_slice(),
                );
                for m in 0..self.m_count {
                    for chunk in 0..geo.chunks {
                        let src = Source {
                            band,
                            group: g,
                            subspace: m,
                            chunk,
                        };
                        self.build(isa, src, scratch);
                        phase(Phase::Table);
                        let ConvI8Scratch {
                            table,
                            acc16,
                            acc32,
                            out,
                            boxsum,
                            ..
                        } = scratch;
                        let first_list = ((g * self.m_count + m) * geo.chunks + chunk) * ctg;
                        let pass = Pass {
                            table: &table.as_slice()[..geo.table_len],
                            starts: &self.starts[first_list..=first_list + ctg],
                            taps: &self.taps,
                            acc16: acc16.as_mut_slice(),
                            acc32: acc32.as_mut_slice(),
                            out: out.as_mut_slice(),
                            boxsum: boxsum.as_slice(),
                            bias: &self.bias[g * ctg..(g + 1) * ctg],
                            t0: g * ctg,
                            lanes: geo.out_lanes,
                            scale,
                            step: self.step(m, chunk),
                            rows: geo.rows(band),
                            cols: geo.w_out,
                            pw: geo.pw,
                        };
                        run_pass(isa, pass);
                        let last = g + 1 == self.shape.groups
                            && m + 1 == self.m_count
                            && chunk + 1 == geo.chunks;
                        if !last {
                            phase(Phase::Lookup);
                        }
                    }
                }
            }
            write_band(geo, band, self.shape.c_out, scratch.out.as_slice(), y);
            phase(Phase::Lookup);
        }
    }

    /// What a pass starts from and ends with, for subspace m and codeword chunk `chunk`.
    fn step(&self, m: usize, chunk: usize) -> Step {
        let pass = m * self.geo.chunks + chunk;
        let flushed_before = self.flush_after[..pass].iter().any(|&f| f);
        let end = if pass + 1 == self.flush_after.len() {
            End::Final {
                has32: flushed_before,
            }
        } else if self.flush_after[pass] {
            End::Flush {
                first: !flushed_before,
            }
        } else {
            End::Keep
        };
        Step {
            start: pass == 0,
            fresh: pass == 0 || self.flush_after[pass - 1],
            end,
        }
    }

    /// s: the largest ‖x_p^(m)‖·R_m over groups, subspaces and pixels, with the margin, over
    /// Q (1 if that is 0 or NaN). `work` is a buffer of s² · x_plane floats.
    fn scale(&self, xpad: &[f32], work: &mut Vec<f32>) -> f32 {
        let geo = &self.geo;
        let plane = geo.phases * geo.x_plane;
        let c_group = self.shape.c_in_group();
        let d = self.spec.d;
        let mut bound2 = 0.0f32;
        work.resize(plane, 0.0);
        for g in 0..self.shape.groups {
            for m in 0..self.m_count {
                let norms = &mut work[..plane];
                norms.fill(0.0);
                for u in 0..d.min(c_group - m * d) {
                    let c = g * c_group + m * d + u;
                    for (n, v) in norms.iter_mut().zip(&xpad[c * plane..(c + 1) * plane]) {
                        *n += v * v;
                    }
                }
                let most = norms.iter().fold(0.0f32, |a, &b| a.max(b));
                bound2 = bound2.max(most * self.radii2[m]);
            }
        }
        let s = bound2.sqrt() * SCALE_MARGIN / self.q_max as f32;
        if s > 0.0 {
            s
        } else {
            1.0
        }
    }

    /// D' = (D − c_m) / s, Layout (M, K, d) (0 beyond a partial subspace's dims).
    fn scaled_codebooks(&self, scale: f32, dq: &mut Vec<f32>) {
        let (d, k) = (self.spec.d, self.spec.k);
        let inv = 1.0 / scale;
        dq.resize(self.centroids.len(), 0.0);
        for m in 0..self.m_count {
            let center = &self.centers[m * d..(m + 1) * d];
            for code in 0..k {
                let at = (m * k + code) * d;
                for u in 0..d {
                    dq[at + u] = (self.centroids[at + u] - center[u]) * inv;
                }
            }
        }
    }

    /// O_g[phase][pos] = Σ_m Σ_u x[channel][phase][pos]·c_m[u], Layout (groups, s², x_plane).
    fn offsets(&self, xpad: &[f32], out: &mut Vec<f32>) {
        let geo = &self.geo;
        let plane = geo.phases * geo.x_plane;
        let c_group = self.shape.c_in_group();
        let d = self.spec.d;
        out.resize(self.shape.groups * plane, 0.0);
        for (g, o) in out.chunks_exact_mut(plane).enumerate() {
            o.fill(0.0);
            for m in 0..self.m_count {
                for u in 0..d.min(c_group - m * d) {
                    let c = g * c_group + m * d + u;
                    let w = self.centers[m * d + u];
                    for (acc, v) in o.iter_mut().zip(&xpad[c * plane..(c + 1) * plane]) {
                        *acc += v * w;
                    }
                }
            }
        }
    }

    /// Builds one chunk of one band's quantized table (Layout (s², K_c, row_stride)).
    fn build(&self, isa: Isa, src: Source, scratch: &mut ConvI8Scratch) {
        let geo = &self.geo;
        let (d, k) = (self.spec.d, self.spec.k);
        let c_group = self.shape.c_in_group();
        let code0 = src.chunk * geo.chunk_k;
        let op = BuildOp {
            dims: d.min(c_group - src.subspace * d),
            codes: geo.chunk_k.min(k - code0),
            d,
            dq: &scratch.dq[(src.subspace * k + code0) * d..],
            xpad: scratch.xpad.as_slice(),
            channel0: src.group * c_group + src.subspace * d,
            start: src.band * geo.band_rows * geo.pw,
            q_max: self.q_max,
            geo,
        };
        let table = scratch.table.as_mut_slice();
        match isa {
            Isa::Scalar => build_scalar(&op, table),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `forward` asserted `supports(isa)`: the CPU has AVX-512 F/BW and FMA.
            Isa::Avx512 => unsafe { super::conv_avx512::build(&op, table) },
            _ => unreachable!("no int8 conv kernel for {isa}"),
        }
    }
}

/// c_m (M, d) and R_m² (M) over each subspace's dims, in f64, R² rounded up a little.
fn centers_and_radii(shape: ConvShape, spec: PqSpec, centroids: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (d, k) = (spec.d, spec.k);
    let c_group = shape.c_in_group();
    let m_count = spec.subspaces(c_group);
    let mut centers = vec![0.0f32; m_count * d];
    let mut radii2 = vec![0.0f32; m_count];
    for m in 0..m_count {
        let dims = d.min(c_group - m * d);
        let word = |code: usize, u: usize| centroids[(m * k + code) * d + u] as f64;
        let mean: Vec<f64> = (0..dims)
            .map(|u| (0..k).map(|code| word(code, u)).sum::<f64>() / k as f64)
            .collect();
        for u in 0..dims {
            centers[m * d + u] = mean[u] as f32;
        }
        let r2 = (0..k)
            .map(|code| {
                (0..dims)
                    .map(|u| (word(code, u) - centers[m * d + u] as f64).powi(2))
                    .sum::<f64>()
            })
            .fold(0.0f64, f64::max);
        radii2[m] = (r2 * (1.0 + 1e-6)) as f32;
    }
    (centers, radii2)
}

/// Which table to build: output-row band, group, subspace and codeword chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Source {
    band: usize,
    group: usize,
    subspace: usize,
    chunk: usize,
}

/// One table build: rows (phase, code) of `q = round(Σ_u x[channel0 + u][phase][start +
/// pos]·dq[code][u])` for pos < build_len (the FMA chain in u order, from 0).
pub(crate) struct BuildOp<'a> {
    pub dims: usize,
    pub codes: usize,
    pub d: usize,
    /// D' of the chunk's first codeword on: Layout (codes, d) at least.
    pub dq: &'a [f32],
    /// Layout (C_s, s², x_plane).
    pub xpad: &'a [f32],
    pub channel0: usize,
    /// The band's first plane position: r0·pw.
    pub start: usize,
    /// Q: entries are clamped to [−Q, Q] after rounding.
    pub q_max: i32,
    pub geo: &'a Geometry,
}

impl BuildOp<'_> {
    /// Whether every read and write of the build stays inside the slices (the SIMD builder
    /// relies on it).
    pub fn is_consistent(&self, table_len: usize) -> bool {
        let g = self.geo;
        let plane = g.phases * g.x_plane;
        self.dims >= 1
            && self.codes >= 1
            && self.codes <= g.chunk_k
            && self.dq.len() >= (self.codes - 1) * self.d + self.dims
            && self.start + g.build_len <= g.x_plane
            && (self.channel0 + self.dims) * plane <= self.xpad.len()
            && g.table_len <= table_len
            && g.build_len <= g.row_stride
    }
}

/// The scalar twin of the table build: positions < row_len only (the look-ups read no other).
fn build_scalar(op: &BuildOp, table: &mut [i16]) {
    let g = op.geo;
    let plane = g.phases * g.x_plane;
    for phase in 0..g.phases {
        for code in 0..op.codes {
            let w = &op.dq[code * op.d..code * op.d + op.dims];
            let row = &mut table[(phase * g.chunk_k + code) * g.row_stride..][..g.row_len];
            for (pos, out) in row.iter_mut().enumerate() {
                let mut acc = 0.0f32;
                for (u, wu) in w.iter().enumerate() {
                    let at = (op.channel0 + u) * plane + phase * g.x_plane + op.start + pos;
                    acc = op.xpad[at].mul_add(*wu, acc);
                }
                *out = quantize(acc, op.q_max);
            }
        }
    }
}

/// round-half-to-even, as `cvtps2dq` under the default rounding mode, then clamped to
/// [−Q, Q] as the SIMD builder does (the i16 sums rely on |q| ≤ Q, whatever the scale).
fn quantize(v: f32, q_max: i32) -> i16 {
    // `as` saturates (NaN → 0); the SIMD cvtps2dq gives i32::MIN for NaN / overflow, which
    // the clamp maps to −Q: outputs for non-finite inputs are unspecified anyway.
    (v.round_ties_even() as i32).clamp(-q_max, q_max) as i16
}

/// Writes the zero-padded input x (C_s, H_s, W_s) as flattened phase planes, Layout
/// (C_s, s², x_plane): plane (a, b) position y·pw + z holds input pixel
/// (s·y + a − pad, s·z + b − pad), 0 outside the input and in the slack.
pub(crate) fn pad_input(geo: &Geometry, c_in: usize, x: &[f32], xpad: &mut [f32]) {
    let s = geo.stride;
    let plane_len = geo.x_plane;
    for c in 0..c_in {
        let src = &x[c * geo.h_in * geo.w_in..(c + 1) * geo.h_in * geo.w_in];
        for a in 0..s {
            for b in 0..s {
                let start = ((c * s + a) * s + b) * plane_len;
                let plane = &mut xpad[start..start + plane_len];
                plane.fill(0.0);
                for y in 0..geo.x_rows {
                    let Some(r) = (s * y + a).checked_sub(geo.pad) else {
                        continue;
                    };
                    if r >= geo.h_in {
                        continue;
                    }
                    let input = &src[r * geo.w_in..(r + 1) * geo.w_in];
                    let row = &mut plane[y * geo.pw..(y + 1) * geo.pw];
                    for (z, out) in row.iter_mut().enumerate() {
                        if let Some(col) = (s * z + b).checked_sub(geo.pad) {
                            if col < geo.w_in {
                                *out = input[col];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// B[q] = Σ_(i,j) O[phase(i,j)][r0·pw + q + (i div s)·pw + j div s] for the band's lanes
/// q < rows·pw, in (i, j) order; 0 for the lanes beyond. `offsets`: Layout (s², x_plane);
/// `out`: Layout (Qv).
pub(crate) fn box_sum(geo: &Geometry, band: usize, offsets: &[f32], out: &mut [f32]) {
    let s = geo.stride;
    let lanes = geo.rows(band) * geo.pw;
    let start = band * geo.band_rows * geo.pw;
    out[..geo.out_lanes].fill(0.0);
    for i in 0..geo.kernel {
        for j in 0..geo.kernel {
            let phase = (i % s) * s + j % s;
            let from = phase * geo.x_plane + start + (i / s) * geo.pw + j / s;
            for (acc, o) in out[..lanes].iter_mut().zip(&offsets[from..from + lanes]) {
                *acc += o;
            }
        }
    }
}

/// Look-ups per (pass, list): `counts[m·chunks + chunk][g·C_t/groups + t_local]`, from the
/// re-laid lists.
fn pass_counts(
    shape: ConvShape,
    geo: &Geometry,
    m_count: usize,
    starts: &[u32],
) -> Vec<Vec<usize>> {
    let ctg = shape.c_out_group();
    (0..m_count * geo.chunks)
        .map(|pass| {
            (0..shape.groups * ctg)
                .map(|list| {
                    let (g, t_local) = (list / ctg, list % ctg);
                    let l = (g * m_count * geo.chunks + pass) * ctg + t_local;
                    (starts[l + 1] - starts[l]) as usize
                })
                .collect()
        })
        .collect()
}

/// Re-lays (C_t, kh, kw, M) assignments as per-(group, subspace, chunk, channel) lists of
/// table offsets, ascending.
fn relay(
    shape: ConvShape,
    spec: PqSpec,
    geo: &Geometry,
    assignments: &[u8],
) -> (Vec<u32>, Vec<u32>) {
    let m_count = spec.subspaces(shape.c_in_group());
    let kk = shape.kernel;
    let ctg = shape.c_out_group();
    let mut starts = Vec::with_capacity(shape.groups * m_count * geo.chunks * ctg + 1);
    let mut taps = Vec::with_capacity(assignments.len());
    starts.push(0u32);
    for g in 0..shape.groups {
        for m in 0..m_count {
            let mut entries = Vec::with_capacity(ctg * kk * kk);
            for t_local in 0..ctg {
                let t = g * ctg + t_local;
                for i in 0..kk {
                    for j in 0..kk {
                        let b = assignments[((t * kk + i) * kk + j) * m_count + m] as usize;
                        let (chunk, code) = (b / geo.chunk_k, b % geo.chunk_k);
                        let list = chunk * ctg + t_local;
                        entries.push((list, geo.tap_offset(i, j, code) as u32));
                    }
                }
            }
            entries.sort_unstable();
            let mut next = entries.iter().peekable();
            for list in 0..geo.chunks * ctg {
                while let Some(&(_, offset)) = next.next_if(|e| e.0 == list) {
                    taps.push(offset);
                }
                starts.push(taps.len() as u32);
            }
        }
    }
    (starts, taps)
}

/// Reusable buffers of [`ConvLutI8::forward`]: sized on first use, grown for larger layers,
/// never shrunk. One scratch may serve several layers (not concurrently).
#[derive(Clone, Debug, Default)]
pub struct ConvI8Scratch {
    /// Layout (C_s, s², x_plane): the padded input as flattened phase planes.
    xpad: AlignedBuf<f32>,
    /// Layout (s², K_c, row_stride): one chunk of one band's quantized table.
    table: AlignedBuf<i16>,
    /// Layout (C_t, Qv): i16 partial sums of the band.
    acc16: AlignedBuf<i16>,
    /// Layout (C_t, Qv): i32 sums of the flushed subspaces.
    acc32: AlignedBuf<i32>,
    /// Layout (C_t, Qv): the band's outputs before they are copied into y.
    out: AlignedBuf<f32>,
    /// Layout (Qv): B[q] of the current band and group.
    boxsum: AlignedBuf<f32>,
    /// Layout (groups, s², x_plane): O_g.
    offsets: Vec<f32>,
    /// Layout (M, K, d): D'.
    dq: Vec<f32>,
    work: Vec<f32>,
    scale: f32,
}

impl ConvI8Scratch {
    /// The scale s of the last forward pass (one per layer and image).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    fn reserve(&mut self, lut: &ConvLutI8) {
        let geo = &lut.geo;
        let c_out = lut.shape.c_out;
        self.xpad.reserve(lut.shape.c_in * geo.phases * geo.x_plane);
        self.table.reserve(geo.table_len);
        self.acc16.reserve(c_out * geo.out_lanes);
        self.acc32.reserve(c_out * geo.out_lanes);
        self.out.reserve(c_out * geo.out_lanes);
        self.boxsum.reserve(geo.out_lanes);
    }
}

/// How a pass treats its accumulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// The first pass of the group in this band: every sum starts from 0.
    pub start: bool,
    /// The i16 sums start from 0 (else from `acc16`).
    pub fresh: bool,
    pub end: End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Store the i16 sums.
    Keep,
    /// Add the i16 sums into the i32 sums (`first`: store them instead).
    Flush { first: bool },
    /// out = (bias + B) + s·(i32 sums (if `has32`) + i16 sums).
    Final { has32: bool },
}

/// The look-ups of one table for every output channel of its group, one band.
pub(crate) struct Pass<'a> {
    /// Layout (s², K_c, row_stride).
    pub table: &'a [i16],
    /// C_t/groups + 1 bounds into `taps`.
    pub starts: &'a [u32],
    pub taps: &'a [u32],
    /// Layout (C_t, Qv) each; channel t0 + t_local is the pass's channel t_local.
    pub acc16: &'a mut [i16],
    pub acc32: &'a mut [i32],
    pub out: &'a mut [f32],
    /// Layout (Qv).
    pub boxsum: &'a [f32],
    /// The group's biases, Layout (C_t/groups).
    pub bias: &'a [f32],
    pub t0: usize,
    /// Qv.
    pub lanes: usize,
    pub scale: f32,
    pub step: Step,
    /// Valid output rows and columns of the band, and the lane pitch of a row.
    pub rows: usize,
    pub cols: usize,
    pub pw: usize,
}

impl Pass<'_> {
    pub fn channels(&self) -> usize {
        self.starts.len() - 1
    }
}

fn run_pass(isa: Isa, pass: Pass) {
    match isa {
        Isa::Scalar => lookups_scalar(pass),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `forward` asserted the CPU has this family's AVX-512 level.
        Isa::Avx512 => unsafe { super::conv_avx512::run_pass(pass) },
        _ => unreachable!("no int8 conv kernel for {isa}"),
    }
}

/// The scalar twin of the look-ups: exact i32 sums of the valid lanes straight into
/// `acc32` (the SIMD kernel's i16 staging changes nothing: no partial sum overflows).
fn lookups_scalar(pass: Pass) {
    let (taps, starts) = (pass.taps, pass.starts);
    for t_local in 0..pass.channels() {
        let list = &taps[starts[t_local] as usize..starts[t_local + 1] as usize];
        let base = (pass.t0 + t_local) * pass.lanes;
        for r in 0..pass.rows {
            for c in 0..pass.cols {
                let q = r * pass.pw + c;
                let sum: i32 = list
                    .iter()
                    .map(|&tap| i32::from(pass.table[tap as usize + q]))
                    .sum();
                let acc = &mut pass.acc32[base + q];
                *acc = if pass.step.start { sum } else { *acc + sum };
                if let End::Final { .. } = pass.step.end {
                    let offset = pass.bias[t_local] + pass.boxsum[q];
                    pass.out[base + q] = offset + pass.scale * (*acc as f32);
                }
            }
        }
    }
}

/// Copies one band's valid outputs (Layout (C_t, Qv), lane r·pw + c) into y (C_t, H_t, W_t).
fn write_band(geo: &Geometry, band: usize, c_out: usize, out: &[f32], y: &mut [f32]) {
    let r0 = band * geo.band_rows;
    for t in 0..c_out {
        for r in 0..geo.rows(band) {
            let src = t * geo.out_lanes + r * geo.pw;
            let dst = (t * geo.h_out + r0 + r) * geo.w_out;
            y[dst..dst + geo.w_out].copy_from_slice(&out[src..src + geo.w_out]);
        }
    }
}
