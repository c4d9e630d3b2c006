//! Error correction, the paper's training-phase contribution (METHOD.md "Training phase"):
//! choose the codebooks and assignments of one layer to minimise its *response* error on
//! calibration inputs rather than its weight error.
//!
//! # The problem
//! Per group g, let X_g (U × P) hold the layer's input as im2col columns: column p is one
//! sampled (image, output position) pair, row (c, tap) the input channel c of the group at
//! kernel tap `tap` (0 in the zero padding); an fc layer is a 1×1 conv on a 1×1 map, one
//! column per image. The quantized weights Ŵ (C_t × U) have in row t, subspace m and tap τ
//! the codeword D_m[b(t, τ, m)] (d_m dims). With the target Y* (C_t × P, the dense network's
//! response minus the bias, which both sides share), error correction minimises
//!
//! E = Σ_t ‖y*_t − ŵ_t·X_g(t)‖²,
//!
//! alternating over subspaces m, with everything outside subspace m fixed. X's rows are
//! stored subspace-major, row (m, τ, a) for channel m·d + a, so subspace m's rows form one
//! slab X_m ((kh·kw·d_m) × P) and its weights ŵ_t,m one contiguous piece of ŵ_t.
//!
//! Notation for one subspace m: G = X_m·X_mᵀ (the Gram matrix, kh·kw·d_m square, one per
//! group), r_t = y*_t − ŵ_t·X (the current residual row), f_t = X_m·r_tᵀ, and E_t the
//! (kh·kw·d_m × K·d_m) 0/1 matrix that places codeword b(t, τ, m) at tap τ: ŵ_t,m = E_t·c with
//! c = (D_m[0], …, D_m[K−1]) the K·d_m unknowns (a partial subspace's codewords only have
//! d_m real dims; their padding dims stay as they are).
//!
//! # (a) Codebook update: linear least squares in the K·d_m unknowns c
//! Row t's residual without subspace m is r'_t = r_t + ŵ_t,mᵀ·X_m, and subspace m adds
//! (E_t·c)ᵀ·X_m, so E(c) = Σ_t ‖r'_t − cᵀE_tᵀ·X_m‖². Setting its gradient to zero gives the
//! normal equations
//!
//! H·c = g, H = Σ_t E_tᵀ·G·E_t, g = Σ_t E_tᵀ·X_m·r'_tᵀ = Σ_t E_tᵀ·(f_t + G·ŵ_t,m).
//!
//! H couples codewords that share a kernel (taps τ, σ of kernel t using codewords b_τ, b_σ add
//! the block G[τ, σ] at (b_τ, b_σ)); for fc (one tap) it is block diagonal. We solve
//! (H + λI)·c = g + λ·c_old with λ = ridge · mean(diag H) ([`crate::linalg::solve_ridge`],
//! Cholesky in f64): this is the minimiser of E(c) + λ‖c − c_old‖², so E never rises, and a
//! codeword no sub-vector uses keeps its value.
//!
//! # (b) Assignment update: try every codeword, the rest fixed
//! For each output t and tap τ in turn, replacing codeword c_b by c_k changes row t's error by
//! q_k − 2·c_kᵀ·v + const, with q_k = c_kᵀ·G_ττ·c_k and v = f_t,τ + G_ττ·c_b (f_t,τ the τ block
//! of f_t); the best k is kept (the current one on ties), and f_t is updated by
//! −G[:, τ]·(c_k − c_b), so the next tap sees the changed residual: a greedy, exact descent.
//!
//! # Cost
//! Per subspace: F = R·X_mᵀ and the residual update R −= ΔŴ_m·X_m (two `sgemm`s, together two
//! forward passes of the layer over all subspaces), H in C_t·(kh·kw·d_m)² adds, one Cholesky
//! of K·d_m unknowns, assignments in C_t·kh·kw·K·d_m. The residual is recomputed from
//! scratch after every sweep. Conv layers use at most `max_columns` (image, position)
//! columns, sampled uniformly without replacement when the calibration maps have more.

use std::ops::Range;

use qcnn_model::arch::{ParamKind, ParamShape, QuantSpec};
use qcnn_model::Codebooks;
use rand::Rng;

use crate::error::{QuantizeError, Result};
use crate::linalg::{gemm, solve_ridge};
use crate::split::Split;

/// How error correction runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EcParams {
    /// Sweeps over all subspaces, each a codebook then an assignment update per subspace.
    pub iterations: usize,
    /// At most this many (image, output position) columns per layer (sampled beyond).
    pub max_columns: usize,
    /// λ of the codebook update, relative to the mean diagonal of H. It pulls codewords
    /// towards their previous values along directions the calibration inputs barely excite;
    /// with a small calibration set a tiny λ lets them grow without bound there (measured on
    /// the authors' AlexNet, 8 BMPs, fc6 at d = 4, K = 16: λ = 1e-6 gave a weight error of 6.3
    /// and a held-out response error of 0.71, λ = 1e-2 gave 0.56 and 0.48, conv layers alike).
    pub ridge: f64,
}

impl Default for EcParams {
    fn default() -> Self {
        EcParams {
            iterations: 4,
            max_columns: 8192,
            ridge: 1e-2,
        }
    }
}

impl EcParams {
    /// The relative ridges the solver uses as given: [`crate::linalg::MIN_RIDGE`]..=10^6
    /// (a smaller one would be raised silently; a larger one freezes every codeword).
    pub const RIDGE_RANGE: std::ops::RangeInclusive<f64> = crate::linalg::MIN_RIDGE..=1e6;

    /// Checks the ridge against [`Self::RIDGE_RANGE`] (NaN, ±∞ and negatives are refused);
    /// `Err` names the allowed range.
    pub fn check_ridge(ridge: f64) -> std::result::Result<(), String> {
        if !Self::RIDGE_RANGE.contains(&ridge) {
            return Err(format!(
                "{ridge} is outside the allowed range {:e}..={:e} (a finite, positive ridge)",
                Self::RIDGE_RANGE.start(),
                Self::RIDGE_RANGE.end()
            ));
        }
        Ok(())
    }
}

/// Bytes [`EcProblem::new`] allocates for a layer of `shape` quantized with d = `spec.d`
/// from `images` calibration images and at most `max_columns` columns: X (U × P per group)
/// and the target (C_t × P), f32. For checking a request against memory before any work.
pub fn problem_bytes(
    shape: &ParamShape,
    spec: QuantSpec,
    images: usize,
    max_columns: usize,
) -> u64 {
    let geo = Geometry::of(shape);
    let split = Split::new(shape, spec);
    let columns = (images as u64)
        .saturating_mul(geo.positions() as u64)
        .min(max_columns as u64);
    let rows = (geo.groups * split.row_len() + split.c_t) as u64;
    rows.saturating_mul(columns).saturating_mul(4)
}

/// A conv layer's geometry; an fc layer is a 1×1 conv of its flattened input on a 1×1 map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub groups: usize,
    /// C_s/groups.
    pub c_in_group: usize,
    /// C_t/groups.
    pub c_out_group: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    pub h_out: usize,
    pub w_out: usize,
}

impl Geometry {
    pub fn of(shape: &ParamShape) -> Self {
        match shape.kind {
            ParamKind::Conv(c) => Geometry {
                groups: c.groups,
                c_in_group: shape.input.c / c.groups,
                c_out_group: c.out_channels / c.groups,
                h_in: shape.input.h,
                w_in: shape.input.w,
                kernel: c.kernel,
                stride: c.stride,
                pad: c.pad,
                h_out: shape.output.h,
                w_out: shape.output.w,
            },
            ParamKind::Fc => Geometry {
                groups: 1,
                c_in_group: shape.input.len(),
                c_out_group: shape.output.len(),
                h_in: 1,
                w_in: 1,
                kernel: 1,
                stride: 1,
                pad: 0,
                h_out: 1,
                w_out: 1,
            },
        }
    }

    /// H_t·W_t output positions per image.
    pub fn positions(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Floats of one input map, (C_s, H_s, W_s).
    pub fn input_len(&self) -> usize {
        self.groups * self.c_in_group * self.h_in * self.w_in
    }

    /// Floats of one output map, (C_t, H_t, W_t).
    pub fn output_len(&self) -> usize {
        self.groups * self.c_out_group * self.positions()
    }

    /// The input value group `g`, group-local channel `c`, tap (i, j) reads for output
    /// position (oh, ow) of `map`; 0 in the padding.
    #[allow(clippy::too_many_arguments)]
    fn tap_value(
        &self,
        map: &[f32],
        g: usize,
        c: usize,
        i: usize,
        j: usize,
        oh: usize,
        ow: usize,
    ) -> f32 {
        let ih = (oh * self.stride + i).checked_sub(self.pad);
        let iw = (ow * self.stride + j).checked_sub(self.pad);
        match (ih, iw) {
            (Some(ih), Some(iw)) if ih < self.h_in && iw < self.w_in => {
                let ch = g * self.c_in_group + c;
                map[(ch * self.h_in + ih) * self.w_in + iw]
            }
            _ => 0.0,
        }
    }
}

/// One layer's error-correction data: the inputs (from the already-quantized layers below)
/// at sampled columns and the dense network's responses there.
#[derive(Clone, Debug)]
pub struct EcProblem {
    geo: Geometry,
    split: Split,
    /// P: sampled (image, output position) columns.
    columns: usize,
    /// Per group g: X_g, Layout (U, P), U = kh·kw·C_s/groups; row (m, τ, a) at
    /// kh·kw·m·d + τ·d_m + a holds group-local channel m·d + a at tap τ = i·kw + j.
    x: Vec<Vec<f32>>,
    /// Y* − bias, Layout (C_t, P).
    target: Vec<f32>,
}

impl EcProblem {
    /// Builds the problem from calibration maps: `inputs[n]` (C_s, H_s, W_s) is image n's
    /// input to this layer in the quantized network, `responses[n]` (C_t, H_t, W_t) the dense
    /// network's output of this layer (with bias) for image n, `bias` (C_t). Uses every
    /// (image, position) column when there are at most `max_columns`, else that many drawn
    /// without replacement with `rng`.
    pub fn new(
        shape: &ParamShape,
        spec: QuantSpec,
        inputs: &[Vec<f32>],
        responses: &[Vec<f32>],
        bias: &[f32],
        max_columns: usize,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let geo = Geometry::of(shape);
        let split = Split::new(shape, spec);
        check_maps(&geo, inputs, responses, bias)?;
        if max_columns == 0 {
            return Err(QuantizeError::Invalid(
                "error correction needs at least one column (max_columns = 0)".into(),
            ));
        }
        let total = inputs.len() * geo.positions();
        let chosen: Vec<usize> = if total <= max_columns {
            (0..total).collect()
        } else {
            let mut picked = rand::seq::index::sample(rng, total, max_columns).into_vec();
            picked.sort_unstable();
            picked
        };
        let x = (0..geo.groups)
            .map(|g| im2col_columns(&geo, &split, g, inputs, &chosen))
            .collect();
        let p = chosen.len();
        let mut target = vec![0.0f32; split.c_t * p];
        for (j, &col) in chosen.iter().enumerate() {
            let (n, q) = (col / geo.positions(), col % geo.positions());
            for (t, &b) in bias.iter().enumerate() {
                target[t * p + j] = responses[n][t * geo.positions() + q] - b;
            }
        }
        Ok(EcProblem {
            geo,
            split,
            columns: p,
            x,
            target,
        })
    }

    /// P, the columns used.
    pub fn columns(&self) -> usize {
        self.columns
    }

    pub fn split(&self) -> &Split {
        &self.split
    }

    /// The response error E = ‖Y* − Ŵ·X‖² of codebooks `cb` on the sampled columns.
    pub fn objective(&self, cb: &Codebooks) -> f64 {
        let w = row_order_weights(&self.split, cb);
        let (_, e) = self.residual(&w);
        e
    }

    /// Rows of subspace m in X_g: kh·kw·m·d .. + kh·kw·d_m.
    fn slab(&self, m: usize) -> Range<usize> {
        let start = self.split.taps * m * self.split.d;
        start..start + self.split.taps * self.split.dims(m)
    }

    /// Output channels of group g.
    fn outputs(&self, g: usize) -> Range<usize> {
        g * self.geo.c_out_group..(g + 1) * self.geo.c_out_group
    }

    /// U, the rows of X_g.
    fn units(&self) -> usize {
        self.split.row_len()
    }

    /// R = Y* − Ŵ·X (Layout (C_t, P)) and ‖R‖².
    fn residual(&self, w: &[f32]) -> (Vec<f32>, f64) {
        let (p, u) = (self.columns, self.units());
        let mut r = self.target.clone();
        for g in 0..self.geo.groups {
            let rows = self.outputs(g);
            let w_g = &w[rows.start * u..rows.end * u];
            let r_g = &mut r[rows.start * p..rows.end * p];
            gemm(
                false,
                false,
                rows.len(),
                p,
                u,
                -1.0,
                w_g,
                &self.x[g],
                1.0,
                r_g,
            );
        }
        let e = r.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        (r, e)
    }
}

fn check_maps(
    geo: &Geometry,
    inputs: &[Vec<f32>],
    responses: &[Vec<f32>],
    bias: &[f32],
) -> Result<()> {
    if inputs.is_empty() {
        return Err(QuantizeError::calibration(
            "(error correction)",
            "the calibration set is empty",
        ));
    }
    let bad = |what: String| Err(QuantizeError::Invalid(format!("error correction: {what}")));
    if inputs.len() != responses.len() {
        return bad(format!(
            "{} input maps but {} responses",
            inputs.len(),
            responses.len()
        ));
    }
    if let Some(n) = inputs.iter().position(|x| x.len() != geo.input_len()) {
        return bad(format!(
            "input map {n} holds {} floats, expected {}",
            inputs[n].len(),
            geo.input_len()
        ));
    }
    if let Some(n) = responses.iter().position(|y| y.len() != geo.output_len()) {
        return bad(format!(
            "response {n} holds {} floats, expected {}",
            responses[n].len(),
            geo.output_len()
        ));
    }
    if bias.len() != geo.groups * geo.c_out_group {
        return bad(format!(
            "bias holds {} floats, expected C_t = {}",
            bias.len(),
            geo.groups * geo.c_out_group
        ));
    }
    Ok(())
}

/// X_g at the chosen columns, Layout (U, P), rows subspace-major (see [`EcProblem`]).
fn im2col_columns(
    geo: &Geometry,
    split: &Split,
    g: usize,
    inputs: &[Vec<f32>],
    chosen: &[usize],
) -> Vec<f32> {
    let p = chosen.len();
    let mut x = vec![0.0f32; split.row_len() * p];
    for (col, &pick) in chosen.iter().enumerate() {
        let (n, q) = (pick / geo.positions(), pick % geo.positions());
        let (oh, ow) = (q / geo.w_out, q % geo.w_out);
        for c in 0..geo.c_in_group {
            let (m, a) = (c / split.d, c % split.d);
            let dm = split.dims(m);
            for i in 0..geo.kernel {
                for j in 0..geo.kernel {
                    let tap = i * geo.kernel + j;
                    let row = split.taps * m * split.d + tap * dm + a;
                    x[row * p + col] = geo.tap_value(&inputs[n], g, c, i, j, oh, ow);
                }
            }
        }
    }
    x
}

/// Ŵ with columns in X's row order: Layout (C_t, U); row t, column (m, τ, a) holds
/// D_m[b(t, τ, m)][a].
fn row_order_weights(split: &Split, cb: &Codebooks) -> Vec<f32> {
    let u = split.row_len();
    let mut w = vec![0.0f32; split.c_t * u];
    for t in 0..split.c_t {
        for m in 0..split.subspaces {
            let dm = split.dims(m);
            for tap in 0..split.taps {
                let b = usize::from(cb.assignments[split.assignment(t, tap, m)]);
                let start = t * u + split.taps * m * split.d + tap * dm;
                w[start..start + dm].copy_from_slice(&cb.codeword(m, b)[..dm]);
            }
        }
    }
    w
}

/// Runs `params.iterations` sweeps of error correction on `cb` (initialised, e.g. by plain
/// PQ). `on_subspace` is called after every subspace of every sweep (for progress bars).
/// Returns E before the first sweep and after each sweep (non-increasing up to rounding).
pub fn error_correct(
    problem: &EcProblem,
    cb: &mut Codebooks,
    params: &EcParams,
    on_subspace: &mut dyn FnMut(),
) -> Vec<f64> {
    check_codebooks(problem, cb);
    let mut solver = Solver::new(problem, cb);
    let mut trace = vec![solver.error];
    for _ in 0..params.iterations {
        for m in 0..problem.split.subspaces {
            solver.subspace(m, cb, params.ridge, true, true);
            on_subspace();
        }
        solver.refresh();
        trace.push(solver.error);
    }
    trace
}

/// One codebook update (a) of subspace m alone (for tests against the plain twin).
pub fn codebook_step(problem: &EcProblem, cb: &mut Codebooks, m: usize, ridge: f64) {
    check_codebooks(problem, cb);
    Solver::new(problem, cb).subspace(m, cb, ridge, true, false);
}

/// One assignment update (b) of subspace m alone (for tests against the plain twin).
pub fn assignment_step(problem: &EcProblem, cb: &mut Codebooks, m: usize) {
    check_codebooks(problem, cb);
    Solver::new(problem, cb).subspace(m, cb, 0.0, false, true);
}

fn check_codebooks(problem: &EcProblem, cb: &Codebooks) {
    let s = &problem.split;
    assert_eq!(cb.spec, s.spec(), "codebooks of another (d, K)");
    assert_eq!(
        cb.centroids.len(),
        s.subspaces * s.k * s.d,
        "centroids (M, K, d)"
    );
    assert_eq!(
        cb.assignments.len(),
        s.points() * s.subspaces,
        "assignments (C_t, kh, kw, M)"
    );
    assert!(
        cb.assignments.iter().all(|&b| usize::from(b) < s.k),
        "assignments < K"
    );
}

/// The state of one layer's error correction.
struct Solver<'a> {
    problem: &'a EcProblem,
    /// Ŵ in X's row order, Layout (C_t, U).
    w: Vec<f32>,
    /// R = Y* − Ŵ·X, Layout (C_t, P).
    r: Vec<f32>,
    /// ‖R‖² when R was last recomputed.
    error: f64,
    /// gram[g][m] = X_g,m·X_g,mᵀ, Layout (kh·kw·d_m, kh·kw·d_m).
    gram: Vec<Vec<Vec<f32>>>,
}

impl<'a> Solver<'a> {
    fn new(problem: &'a EcProblem, cb: &Codebooks) -> Self {
        let w = row_order_weights(&problem.split, cb);
        let (r, error) = problem.residual(&w);
        let p = problem.columns;
        let gram = (0..problem.geo.groups)
            .map(|g| {
                (0..problem.split.subspaces)
                    .map(|m| {
                        let rows = problem.slab(m);
                        let x_m = &problem.x[g][rows.start * p..rows.end * p];
                        let mut gm = vec![0.0f32; rows.len() * rows.len()];
                        gemm(
                            false,
                            true,
                            rows.len(),
                            rows.len(),
                            p,
                            1.0,
                            x_m,
                            x_m,
                            0.0,
                            &mut gm,
                        );
                        gm
                    })
                    .collect()
            })
            .collect();
        Solver {
            problem,
            w,
            r,
            error,
            gram,
        }
    }

    /// Recomputes R from scratch (no drift from incremental updates).
    fn refresh(&mut self) {
        let (r, error) = self.problem.residual(&self.w);
        self.r = r;
        self.error = error;
    }

    /// Updates subspace m: its codebook (a) and/or its assignments (b), then R.
    fn subspace(
        &mut self,
        m: usize,
        cb: &mut Codebooks,
        ridge: f64,
        codebook: bool,
        assignments: bool,
    ) {
        let pr = self.problem;
        let (p, u) = (pr.columns, pr.units());
        let slab = pr.slab(m);
        let wd = slab.len();
        // F = R·X_mᵀ, Layout (C_t, kh·kw·d_m): row t is f_t.
        let mut f = vec![0.0f32; pr.split.c_t * wd];
        for g in 0..pr.geo.groups {
            let rows = pr.outputs(g);
            let x_m = &pr.x[g][slab.start * p..slab.end * p];
            let r_g = &self.r[rows.start * p..rows.end * p];
            gemm(
                false,
                true,
                rows.len(),
                wd,
                p,
                1.0,
                r_g,
                x_m,
                0.0,
                &mut f[rows.start * wd..rows.end * wd],
            );
        }
        let before = self.slab_weights(m);
        if codebook {
            self.update_codebook(m, cb, &mut f, ridge);
        }
        if assignments {
            self.update_assignments(m, cb, &mut f);
        }
        // R −= (Ŵ_m,new − Ŵ_m,old)·X_m.
        let delta: Vec<f32> = self
            .slab_weights(m)
            .iter()
            .zip(&before)
            .map(|(a, b)| a - b)
            .collect();
        for g in 0..pr.geo.groups {
            let rows = pr.outputs(g);
            let x_m = &pr.x[g][slab.start * p..slab.end * p];
            let d_g = &delta[rows.start * wd..rows.end * wd];
            gemm(
                false,
                false,
                rows.len(),
                p,
                wd,
                -1.0,
                d_g,
                x_m,
                1.0,
                &mut self.r[rows.start * p..rows.end * p],
            );
        }
        debug_assert_eq!(self.w.len(), pr.split.c_t * u);
    }

    /// Ŵ_m, Layout (C_t, kh·kw·d_m).
    fn slab_weights(&self, m: usize) -> Vec<f32> {
        let (u, slab) = (self.problem.units(), self.problem.slab(m));
        (0..self.problem.split.c_t)
            .flat_map(|t| self.w[t * u + slab.start..t * u + slab.end].iter().copied())
            .collect()
    }

    /// (a): solves (H + λI)·c = g + λ·c_old for subspace m's codebook; updates Ŵ_m and F.
    fn update_codebook(&mut self, m: usize, cb: &mut Codebooks, f: &mut [f32], ridge: f64) {
        let pr = self.problem;
        let s = &pr.split;
        let (dm, taps, u, slab) = (s.dims(m), s.taps, pr.units(), pr.slab(m));
        let wd = slab.len();
        let n = s.k * dm;
        let mut h = vec![0.0f64; n * n];
        let mut rhs = vec![0.0f64; n];
        for t in 0..s.c_t {
            let gm = &self.gram[t / pr.geo.c_out_group][m];
            let w_t = &self.w[t * u + slab.start..t * u + slab.end];
            let b: Vec<usize> = (0..taps)
                .map(|tap| usize::from(cb.assignments[s.assignment(t, tap, m)]))
                .collect();
            for tau in 0..taps {
                for a in 0..dm {
                    let row = tau * dm + a;
                    let g_row = &gm[row * wd..(row + 1) * wd];
                    let gw: f64 = g_row
                        .iter()
                        .zip(w_t)
                        .map(|(&x, &y)| f64::from(x) * f64::from(y))
                        .sum();
                    rhs[b[tau] * dm + a] += f64::from(f[t * wd + row]) + gw;
                    let h_row = &mut h[(b[tau] * dm + a) * n..(b[tau] * dm + a + 1) * n];
                    for (sigma, &b_sigma) in b.iter().enumerate() {
                        let g_block = &g_row[sigma * dm..(sigma + 1) * dm];
                        for (hv, &gv) in h_row[b_sigma * dm..(b_sigma + 1) * dm]
                            .iter_mut()
                            .zip(g_block)
                        {
                            *hv += f64::from(gv);
                        }
                    }
                }
            }
        }
        let anchor: Vec<f64> = (0..s.k)
            .flat_map(|k| cb.codeword(m, k)[..dm].iter().map(|&v| f64::from(v)))
            .collect();
        let c = solve_ridge(h, n, &rhs, &anchor, ridge);
        for k in 0..s.k {
            let start = (m * s.k + k) * s.d;
            for a in 0..dm {
                cb.centroids[start + a] = c[k * dm + a] as f32;
            }
        }
        // New Ŵ_m; f_t −= G·(ŵ_t,new − ŵ_t,old).
        for t in 0..s.c_t {
            let gm = &self.gram[t / pr.geo.c_out_group][m];
            let mut delta = vec![0.0f32; wd];
            for tap in 0..taps {
                let b = usize::from(cb.assignments[s.assignment(t, tap, m)]);
                let new = &cb.codeword(m, b)[..dm];
                let old = &mut self.w[t * u + slab.start + tap * dm..][..dm];
                for a in 0..dm {
                    delta[tap * dm + a] = new[a] - old[a];
                    old[a] = new[a];
                }
            }
            subtract_gram_times(gm, wd, &delta, 0..wd, &mut f[t * wd..(t + 1) * wd]);
        }
    }

    /// (b): for every output t and tap τ in turn, the codeword of subspace m with the least
    /// response error of row t, the others fixed; updates Ŵ_m, F and the assignments.
    fn update_assignments(&mut self, m: usize, cb: &mut Codebooks, f: &mut [f32]) {
        let pr = self.problem;
        let s = &pr.split;
        let (dm, taps, k, u, slab) = (s.dims(m), s.taps, s.k, pr.units(), pr.slab(m));
        let wd = slab.len();
        let codes: Vec<f64> = (0..k)
            .flat_map(|c| cb.codeword(m, c)[..dm].iter().map(|&v| f64::from(v)))
            .collect();
        // Per group: gc Layout (taps, K, d_m) = G_ττ·c_k; q Layout (taps, K) = c_k·G_ττ·c_k.
        let per_group: Vec<(Vec<f64>, Vec<f64>)> = (0..pr.geo.groups)
            .map(|g| tap_quadratics(&self.gram[g][m], wd, taps, dm, &codes))
            .collect();
        let mut delta = vec![0.0f32; dm];
        let mut v = vec![0.0f64; dm];
        for t in 0..s.c_t {
            let (gc, q) = &per_group[t / pr.geo.c_out_group];
            let gm = &self.gram[t / pr.geo.c_out_group][m];
            for tap in 0..taps {
                let index = s.assignment(t, tap, m);
                let b = usize::from(cb.assignments[index]);
                let f_tap = &f[t * wd + tap * dm..t * wd + (tap + 1) * dm];
                for a in 0..dm {
                    v[a] = f64::from(f_tap[a]) + gc[(tap * k + b) * dm + a];
                }
                let score = |c: usize| {
                    q[tap * k + c]
                        - 2.0
                            * codes[c * dm..(c + 1) * dm]
                                .iter()
                                .zip(&v)
                                .map(|(x, y)| x * y)
                                .sum::<f64>()
                };
                let (mut best, mut best_score) = (b, score(b));
                for c in 0..k {
                    let sc = score(c);
                    if sc < best_score {
                        best = c;
                        best_score = sc;
                    }
                }
                if best == b {
                    continue;
                }
                for a in 0..dm {
                    delta[a] = (codes[best * dm + a] - codes[b * dm + a]) as f32;
                    self.w[t * u + slab.start + tap * dm + a] = codes[best * dm + a] as f32;
                }
                subtract_gram_times(
                    gm,
                    wd,
                    &delta,
                    tap * dm..(tap + 1) * dm,
                    &mut f[t * wd..(t + 1) * wd],
                );
                cb.assignments[index] = best as u8;
            }
        }
    }
}

/// f −= G[:, cols]·delta, G Layout (wd, wd), `delta` as long as `cols`.
fn subtract_gram_times(gm: &[f32], wd: usize, delta: &[f32], cols: Range<usize>, f: &mut [f32]) {
    for (row, fv) in f.iter_mut().enumerate() {
        let g = &gm[row * wd + cols.start..row * wd + cols.end];
        *fv -= g.iter().zip(delta).map(|(x, y)| x * y).sum::<f32>();
    }
}

/// For one group's Gram G (wd × wd) and codewords `codes` (Layout (K, d_m)): G_ττ·c_k for
/// every tap and codeword (Layout (taps, K, d_m)) and c_k·G_ττ·c_k (Layout (taps, K)).
fn tap_quadratics(
    gm: &[f32],
    wd: usize,
    taps: usize,
    dm: usize,
    codes: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let k = codes.len() / dm;
    let mut gc = vec![0.0f64; taps * k * dm];
    let mut q = vec![0.0f64; taps * k];
    for tap in 0..taps {
        for c in 0..k {
            let code = &codes[c * dm..(c + 1) * dm];
            for a in 0..dm {
                let row = (tap * dm + a) * wd + tap * dm;
                gc[(tap * k + c) * dm + a] = gm[row..row + dm]
                    .iter()
                    .zip(code)
                    .map(|(&x, y)| f64::from(x) * y)
                    .sum();
            }
            q[tap * k + c] = code
                .iter()
                .zip(&gc[(tap * k + c) * dm..(tap * k + c + 1) * dm])
                .map(|(x, y)| x * y)
                .sum();
        }
    }
    (gc, q)
}

/// Plain twins of the error-correction steps: explicit sums over every column, read straight
/// from the formulas (slow; for tests on small layers).
pub mod reference {
    use super::*;
    use crate::linalg::{cholesky_reference, cholesky_solve};

    /// ŷ[t][p] = Σ_{m, τ, a} D_m[b(t, τ, m)][a] · X_g(t)[(m, τ, a)][p], in f64.
    fn response(pr: &EcProblem, cb: &Codebooks, t: usize, p: usize) -> f64 {
        let s = &pr.split;
        let x = &pr.x[t / pr.geo.c_out_group];
        let mut y = 0.0;
        for m in 0..s.subspaces {
            for tap in 0..s.taps {
                let code = cb.codeword(m, usize::from(cb.assignments[s.assignment(t, tap, m)]));
                for (a, &c) in code.iter().take(s.dims(m)).enumerate() {
                    let row = s.taps * m * s.d + tap * s.dims(m) + a;
                    y += f64::from(c) * f64::from(x[row * pr.columns + p]);
                }
            }
        }
        y
    }

    /// Σ_p (y*[t][p] − ŷ[t][p])² of one output row.
    fn row_error(pr: &EcProblem, cb: &Codebooks, t: usize) -> f64 {
        (0..pr.columns)
            .map(|p| (f64::from(pr.target[t * pr.columns + p]) - response(pr, cb, t, p)).powi(2))
            .sum()
    }

    /// E = Σ_t Σ_p (y*[t][p] − ŷ[t][p])².
    pub fn objective(pr: &EcProblem, cb: &Codebooks) -> f64 {
        (0..pr.split.c_t).map(|t| row_error(pr, cb, t)).sum()
    }

    /// (a) from an explicit design matrix A (rows (t, p), columns (k, a)): A[(t,p)][(k,a)] =
    /// Σ_{τ: b(t,τ,m) = k} X[(m, τ, a)][p]; solves (AᵀA + λI)·c = Aᵀ·r' + λ·c_old.
    pub fn codebook_step(pr: &EcProblem, cb: &mut Codebooks, m: usize, ridge: f64) {
        let s = &pr.split;
        let dm = s.dims(m);
        let n = s.k * dm;
        let mut without = cb.clone();
        for k in 0..s.k {
            let start = (m * s.k + k) * s.d;
            without.centroids[start..start + dm].fill(0.0);
        }
        let mut h = vec![0.0f64; n * n];
        let mut rhs = vec![0.0f64; n];
        for t in 0..s.c_t {
            let x = &pr.x[t / pr.geo.c_out_group];
            for p in 0..pr.columns {
                let mut a_row = vec![0.0f64; n];
                for tap in 0..s.taps {
                    let k = usize::from(cb.assignments[s.assignment(t, tap, m)]);
                    for a in 0..dm {
                        let row = s.taps * m * s.d + tap * dm + a;
                        a_row[k * dm + a] += f64::from(x[row * pr.columns + p]);
                    }
                }
                let r = f64::from(pr.target[t * pr.columns + p]) - response(pr, &without, t, p);
                for i in 0..n {
                    rhs[i] += a_row[i] * r;
                    for j in 0..n {
                        h[i * n + j] += a_row[i] * a_row[j];
                    }
                }
            }
        }
        let anchor: Vec<f64> = (0..s.k)
            .flat_map(|k| cb.codeword(m, k)[..dm].iter().map(|&v| f64::from(v)))
            .collect();
        let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
        if mean_diag <= 0.0 {
            return;
        }
        let lambda = ridge.max(f64::EPSILON) * mean_diag;
        for i in 0..n {
            h[i * n + i] += lambda;
            rhs[i] += lambda * anchor[i];
        }
        cholesky_reference(&mut h, n).expect("H + λI is positive definite");
        cholesky_solve(&h, n, &mut rhs);
        for k in 0..s.k {
            let start = (m * s.k + k) * s.d;
            for a in 0..dm {
                cb.centroids[start + a] = rhs[k * dm + a] as f32;
            }
        }
    }

    /// (b) by brute force: for each t and τ in order, the row error of every codeword, keeping
    /// the current one unless another is strictly better (the first such on ties).
    pub fn assignment_step(pr: &EcProblem, cb: &mut Codebooks, m: usize) {
        let s = pr.split;
        for t in 0..s.c_t {
            for tap in 0..s.taps {
                let index = s.assignment(t, tap, m);
                let current = cb.assignments[index];
                let mut best = (current, row_error(pr, cb, t));
                for k in 0..s.k {
                    cb.assignments[index] = k as u8;
                    let e = row_error(pr, cb, t);
                    if e < best.1 {
                        best = (k as u8, e);
                    }
                }
                cb.assignments[index] = best.0;
            }
        }
    }
}
