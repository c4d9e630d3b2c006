//! "conv-lut-i8-<isa>": look-up convolution with integer tables, a separate, clearly
//! labelled kernel family whose results differ from the exact f32 kernels by the table
//! quantization (docs/KERNELS.md "int8 conv"). The error bound is documented below and
//! measured by the tests and every run.
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
//! - table entries q[p][m][k] = round(< x_p^(m), (D^(m)_k − c_m)/s >), |q| ≤ Q without a
//!   clamp: the scale's margin covers every rounding of the bound and after it, the squared
//!   norms falling back to f64 where f32 would underflow or overflow
//!   (`quant::SCALE_MARGIN`);
//! - y[t][q] = (bias_t + B[q]) + s·Σ_(i,j,m) q[…][m][b[t][i][j][m]].
//!
//! Error vs the exact f32 path: at most s/2 (+ f32 slack) per look-up.
//!
//! Layout ("flattened phase planes"): the zero-padded input is split into s × s phase planes
//! as in the exact kernel, but each plane is stored flattened with a row pitch pw of at
//! least W_t + (kw−1)/s positions: a power of two up to 32, a multiple of 32 beyond (so
//! that rows and vectors tile each other). An output position (r, c) is the flat lane
//! q = r·pw + c (lanes with c ≥ W_t are computed and discarded), and tap (i, j) reads plane
//! (i mod s, j mod s) at lane q + (i div s)·pw + j div s: for a scalar index
//! b = b[t][i][j][m] one contiguous run of the table covers the whole band of outputs,
//! 2·LANES i16 lanes per load (AVX-512: 32, AVX2: 16, NEON: 8). Levels where a misaligned
//! load costs two load the run from the row offset (i div s)·pw, aligned, into one set of
//! sums per column offset j div s, and shift the sets into place once per block
//! (`lookup.rs`).
//!
//! Table layout: Layout (P_c, K_c, row_stride) of i16 per chunk of P_c phase planes × K_c
//! codewords, one row per (phase plane, codeword) of the chunk holding the band's
//! (R_b + (kh−1)/s)·pw flattened positions.
//!
//! Accumulation: i16 lanes, flushed into i32 after at most ⌊32767 / Q⌋ look-ups per output
//! (after the passes [`flush_schedule`] picks), so no sum ever overflows: the integer
//! sums, hence the outputs, are exact and identical at every ISA.
//!
//! Files: [`plan`] (schedule and geometry), [`quant`] (the quantization maths, shared plain
//! Rust), `build` (phase 1), `lookup` (phase 2), each with its scalar twin; the
//! re-layout and the table-by-table schedule are shared with the f32 family
//! (`lut::schedule`).

mod build;
mod lookup;
pub mod plan;
pub mod quant;

pub use plan::{default_plan, ConvI8Plan};
pub use quant::{flush_schedule, MAX_DIMS, MAX_I16_TERMS};

use crate::isa::Isa;
use crate::lut::pad::{PadInput, Plain, StridedCopy};
use crate::lut::schedule::{self, Source};
use crate::lut::{check_conv_buffers, check_conv_shape, AlignedBuf, LutError, Phase, PqSpec};
use crate::shape::ConvShape;
use crate::simd;
use crate::target::Target;
use build::{Build, BuildOp};
use lookup::{End, Pass, Step};
use plan::Geometry;

/// i16 lanes of the widest register (AVX-512): table rows and accumulator rows are
/// multiples of it, hence of every level's vector.
pub(crate) const LANES: usize = 32;

/// A quantized conv layer with integer tables, ready for look-ups.
#[derive(Clone, Debug)]
pub struct ConvLutI8 {
    target: Target,
    shape: ConvShape,
    spec: PqSpec,
    plan: ConvI8Plan,
    pub(crate) geo: Geometry,
    /// M.
    m_count: usize,
    /// c_m: Layout (M, d), the mean codeword (dims beyond the subspace's are 0).
    centers: Vec<f32>,
    /// D − c_m: Layout (M, K, d), rounded to f32 once here instead of once per image (the
    /// same f32 subtraction either way).
    centered: Vec<f32>,
    /// R_m²: Layout (M), max_k ‖D_k − c_m‖² over the subspace's dims, in f64 (see
    /// `quant::SCALE_MARGIN`).
    radii2: Vec<f64>,
    /// Layout (C_t).
    bias: Vec<f32>,
    /// Per list l = (((g·M + m)·chunks + chunk)·(C_t/groups) + t_local)·J + shift:
    /// `taps[starts[l]..starts[l + 1]]` are the table row offsets ([`Geometry::tap`]) of
    /// output channel t's taps with column offset `shift` whose index falls in that chunk,
    /// ascending.
    starts: Vec<u32>,
    taps: Vec<u32>,
    /// Per pass (m·chunks + chunk): whether its i16 sums are flushed to i32 after it.
    flush_after: Vec<bool>,
    /// Q: every table entry has |q| ≤ Q (by the scale, `quant::SCALE_MARGIN`); F·kh·kw·Q
    /// ≤ 32767.
    q_max: i32,
}

impl ConvLutI8 {
    /// Validates lengths, shape and every index < K, and re-lays the assignments, with
    /// [`default_plan`] for `target`.
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

    /// As [`ConvLutI8::new`] with an explicit schedule (for tuning; every plan gives the same
    /// outputs bit for bit when they share Q).
    pub fn with_plan(
        target: Target,
        shape: ConvShape,
        spec: PqSpec,
        plan: ConvI8Plan,
        centroids: &[f32],
        assignments: &[u8],
        bias: &[f32],
    ) -> Result<Self, LutError> {
        target
            .isa
            .require()
            .map_err(|e| LutError::Spec(e.to_string()))?;
        check_conv_shape(shape, spec)?;
        let kk = shape.kernel * shape.kernel;
        if kk > MAX_I16_TERMS {
            return Err(LutError::Spec(format!(
                "kernel {0}×{0}: more than {MAX_I16_TERMS} taps per subspace overflow the \
                 int16 accumulators",
                shape.kernel
            )));
        }
        if spec.d > MAX_DIMS {
            return Err(LutError::Spec(format!(
                "subspaces of {} dims: int8 tables allow at most {MAX_DIMS} (the scale's \
                 rounding margin)",
                spec.d
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
        let (ctg, shifts) = (shape.c_out_group(), geo.shifts);
        let (starts, taps) = schedule::relay(
            shape,
            m_count,
            1,
            geo.chunks * ctg * shifts,
            assignments,
            |t, i, j, _, b| {
                let (chunk, shift, row) = geo.tap(i, j, b);
                ((chunk * ctg + t) * shifts + shift, row as u32)
            },
        );
        // The invariant of every unchecked load (lookup.rs): out_lanes positions read from
        // any tap's row at any shift stay inside the table, and the lists are well-formed.
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1])
                && *starts.last().unwrap() as usize == taps.len()
        );
        assert!(taps
            .iter()
            .all(|&row| row as usize + shifts - 1 + geo.out_lanes <= geo.table_len));
        let (centers, radii2) = quant::centers_and_radii(shape, spec, centroids);
        let centered = quant::centered_codebooks(spec, &centers, centroids);
        let counts = quant::pass_counts(shape, &geo, m_count, &starts);
        let (flush_after, q_max) = flush_schedule(&counts);
        Ok(ConvLutI8 {
            target,
            shape,
            spec,
            plan: ConvI8Plan {
                band_rows: geo.band_rows,
                chunk_k: geo.grid.chunk_k,
                chunk_phases: geo.grid.chunk_phases,
                aligned_rows: plan.aligned_rows,
            },
            geo,
            m_count,
            centers,
            centered,
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

    pub fn target(&self) -> Target {
        self.target
    }

    /// Q: the largest |table entry| of this layer (its scale is the bound over Q).
    pub fn q_range(&self) -> i32 {
        self.q_max
    }

    /// The schedule in use (clamped to the shape).
    pub fn plan(&self) -> ConvI8Plan {
        self.plan
    }

    /// The schedule in words, recorded with every run.
    pub fn plan_summary(&self) -> String {
        let (p, g) = (self.plan, &self.geo);
        let rows = if p.aligned_rows { "aligned" } else { "compact" };
        format!(
            "{} band(s) of {} rows, chunks of {}/{} planes × {}/{} codewords, {rows} rows of \
             {}, Q = {}",
            g.bands,
            p.band_rows,
            p.chunk_phases,
            g.phases,
            p.chunk_k,
            self.spec.k,
            g.pw,
            self.q_max
        )
    }

    /// The kernel's ID in results and on the command line: "conv-lut-i8-<isa>".
    pub fn kernel_name(&self) -> String {
        Self::name(self.target.isa)
    }

    /// The kernel family's name at `isa`.
    pub fn name(isa: Isa) -> String {
        format!("conv-lut-i8-{isa}")
    }

    /// x: (C_s, H_s, W_s); y: (C_t, H_t, W_t), fully overwritten. Phase callbacks as in
    /// [`crate::lut::conv::ConvLut::forward`] (the quantization prep counts as table time).
    /// `scratch.scale()` is the scale s this image used afterwards.
    ///
    /// Panics if a length disagrees with the shape. Non-finite inputs give unspecified (but
    /// not unsafe) outputs.
    pub fn forward(
        &self,
        x: &[f32],
        y: &mut [f32],
        scratch: &mut ConvI8Scratch,
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
        scratch.reserve(self);
        simd::run(
            self.target.isa,
            Prep {
                lut: self,
                x,
                scratch: &mut *scratch,
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
            self.m_count,
            geo.chunks,
            phase,
        );
    }

    /// What a pass starts from and ends with, for subspace m and table chunk `chunk`.
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
            fresh: pass == 0 || self.flush_after[pass - 1],
            end,
        }
    }
}

/// The per-image quantization prep: padded input (`lut::pad`, copies), scale, scaled
/// codebooks, offsets. The maths is plain Rust (`quant`), run through `simd::run` only so
/// that its element-wise loops are compiled with the level's features: every element's
/// operations and their order are the same at every level (no FMA contraction, no
/// reassociated sums), so the results are bit-identical.
struct Prep<'a> {
    lut: &'a ConvLutI8,
    x: &'a [f32],
    scratch: &'a mut ConvI8Scratch,
}

impl Prep<'_> {
    #[inline(always)]
    fn run(self, level: impl StridedCopy) {
        let (lut, scratch) = (self.lut, self.scratch);
        PadInput {
            planes: lut.geo.planes(),
            c_in: lut.shape.c_in,
            x: self.x,
            xpad: scratch.xpad.as_mut_slice(),
        }
        .pad(level);
        let scale = lut.scale(scratch.xpad.as_slice());
        scratch.scale = scale;
        lut.scaled_codebooks(scale, &mut scratch.dq);
        lut.offsets(scratch.xpad.as_slice(), &mut scratch.offsets);
    }
}

impl simd::Vectorized for Prep<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: simd::Simd>(self, s: S) {
        self.run(s)
    }
}

impl simd::Kernel for Prep<'_> {
    fn scalar(self) {
        self.run(Plain)
    }
}

/// One forward pass's steps (see [`schedule::run`]).
struct Steps<'a> {
    lut: &'a ConvLutI8,
    scratch: &'a mut ConvI8Scratch,
    y: &'a mut [f32],
}

impl schedule::Steps for Steps<'_> {
    fn group_start(&mut self, band: usize, group: usize) {
        let geo = &self.lut.geo;
        let plane_set = geo.phases * geo.x_plane;
        quant::box_sum(
            geo,
            band,
            &self.scratch.offsets[group * plane_set..][..plane_set],
            self.scratch.boxsum.as_mut_slice(),
        );
    }

    fn build(&mut self, src: Source) {
        let lut = self.lut;
        let (geo, d, k) = (&lut.geo, lut.spec.d, lut.spec.k);
        let c_group = lut.shape.c_in_group();
        let (phases, codes) = geo.grid.span(src.chunk);
        let ConvI8Scratch {
            dq, xpad, table, ..
        } = &mut *self.scratch;
        let op = BuildOp {
            dims: d.min(c_group - src.table * d),
            phases,
            codes: codes.len(),
            d,
            dq: &dq[(src.table * k + codes.start) * d..],
            xpad: xpad.as_slice(),
            channel0: src.group * c_group + src.table * d,
            start: src.band * geo.band_rows * geo.pw,
            band: src.band,
            geo,
        };
        let table = table.as_mut_slice();
        simd::run(lut.target.isa, Build { op, table });
    }

    fn lookups(&mut self, src: Source) {
        let lut = self.lut;
        let (geo, ctg) = (&lut.geo, lut.shape.c_out_group());
        let first_list =
            ((src.group * lut.m_count + src.table) * geo.chunks + src.chunk) * ctg * geo.shifts;
        let ConvI8Scratch {
            table,
            acc16,
            acc32,
            out,
            boxsum,
            scale,
            ..
        } = &mut *self.scratch;
        let pass = Pass {
            table: &table.as_slice()[..geo.table_len],
            starts: &lut.starts[first_list..=first_list + ctg * geo.shifts],
            shifts: geo.shifts,
            row_pitch: geo.pw,
            taps: &lut.taps,
            acc16: acc16.as_mut_slice(),
            acc32: acc32.as_mut_slice(),
            out: out.as_mut_slice(),
            boxsum: boxsum.as_slice(),
            bias: &lut.bias[src.group * ctg..(src.group + 1) * ctg],
            t0: src.group * ctg,
            lanes: geo.out_lanes,
            scale: *scale,
            step: lut.step(src.table, src.chunk),
        };
        simd::run(lut.target.isa, pass);
    }

    fn band_end(&mut self, band: usize) {
        let (geo, c_out) = (&self.lut.geo, self.lut.shape.c_out);
        write_band(geo, band, c_out, self.scratch.out.as_slice(), self.y);
    }
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
