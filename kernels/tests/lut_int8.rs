//! The int8-table conv kernels ("conv-lut-i8-*", approximate): every vector kernel equals
//! its scalar int8 twin bit for bit at every ISA this CPU has (integer sums are exact, every
//! float step is the same IEEE operation in the same order), and the exact f32 reference
//! bounds the approximation error by n·s/2 for n look-ups of scale s (plus f32 slack).
//! Random problems (proptest), SIMD tails, partial subspaces, stride 4, bands and chunks,
//! i16 flushes, bad inputs, AlexNet shapes with random codebooks, and the authors' AlexNet
//! layers on the golden image.

mod common;

use proptest::prelude::*;
use qcnn_kernels::lut::conv::conv_reference;
use qcnn_kernels::lut::int8::{ConvI8Plan, ConvI8Scratch, ConvLutI8, MAX_DIMS, MAX_I16_TERMS};
use qcnn_kernels::{ConvShape, Isa, LutError, PqSpec, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Per look-up, the quantization error is at most s/2; this much more (in units of s)
/// covers the f32 rounding of the scaled dot products (≈ d·127·2^−24).
const Q_SLACK: f32 = 1e-3;
/// f32 slack relative to the magnitude of the terms of an output (offsets, bias, sums in
/// another order than the f64 reference).
const F32_REL: f32 = 1e-5;
/// Per conv layer on the golden image's own input to it (max |Δ| / max |y| vs the exact
/// kernel): measured conv1 2.4e-3, conv2 3.8e-3, conv3 4.6e-3, conv4 1.0e-2, conv5 3.0e-3
/// with the per-layer q range (Q = 127 everywhere gave 2.0e-2, 5.1e-2, 5.9e-2, 1.5e-1,
/// 4.9e-2); 1.5× headroom.
const CONV_REAL_TOL: [f32; 5] = [3.6e-3, 5.8e-3, 7e-3, 1.5e-2, 4.6e-3];

/// The ISAs this CPU has (every level has an int8 kernel), scalar first.
fn isas() -> Vec<Isa> {
    Isa::available()
}

/// Every level CI requires (`QCNN_REQUIRE_ISA`, set by `.ci/run` from /proc/cpuinfo) is
/// among the levels tested here: every level has an int8 kernel, so none is left out.
#[test]
fn required_isa_levels_are_tested() {
    common::tested_levels("conv-lut-i8", common::REQUIRE, isas());
}

#[allow(clippy::too_many_arguments)]
fn conv(
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    s: usize,
    p: usize,
    g: usize,
) -> ConvShape {
    ConvShape {
        c_in,
        h_in: h,
        w_in: w,
        c_out,
        kernel: k,
        stride: s,
        pad: p,
        groups: g,
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|a| a.to_bits()).collect()
}

/// max |a − b| / max |b|.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let max_b = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / max_b.max(f32::MIN_POSITIVE)
}

// ------------------------------------------------------------------------------ conv

/// One int8 conv problem: inputs, the scalar twin, the SIMD kernels and the f32 oracle.
#[derive(Clone, Debug)]
struct ConvProblem {
    shape: ConvShape,
    spec: PqSpec,
    plan: Option<ConvI8Plan>,
    /// Layout (M, K, d).
    centroids: Vec<f32>,
    /// Layout (C_t, kh, kw, M).
    assignments: Vec<u8>,
    bias: Vec<f32>,
    /// Layout (C_s, H_s, W_s).
    x: Vec<f32>,
}

impl ConvProblem {
    /// Codebooks and bias in [−1, 1), inputs in [lo, 1).
    fn new(shape: ConvShape, spec: PqSpec, seed: u64, x_lo: f32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let m = spec.subspaces(shape.c_in_group());
        let centroids = (0..m * spec.k * spec.d)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let bias = (0..shape.c_out)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let x = (0..shape.input_len())
            .map(|_| rng.random_range(x_lo..1.0))
            .collect();
        let assignments = (0..shape.c_out * shape.kernel * shape.kernel * m)
            .map(|_| rng.random_range(0..spec.k) as u8)
            .collect();
        ConvProblem {
            shape,
            spec,
            plan: None,
            centroids,
            assignments,
            bias,
            x,
        }
    }

    fn with_plan(mut self, plan: ConvI8Plan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// The layer prepared for `isa` (default caches), with the problem's plan if it has one.
    fn lut(&self, isa: Isa) -> Result<ConvLutI8, LutError> {
        let (s, p, t) = (self.shape, self.spec, Target::for_isa(isa));
        let (c, a, b) = (&self.centroids, &self.assignments, &self.bias);
        match self.plan {
            None => ConvLutI8::new(t, s, p, c, a, b),
            Some(plan) => ConvLutI8::with_plan(t, s, p, plan, c, a, b),
        }
    }

    /// The kernel's output (from a NaN-filled buffer) and the scale it used.
    fn run(&self, lut: &ConvLutI8) -> (Vec<f32>, f32) {
        let mut y = vec![f32::NAN; self.shape.output_len()];
        let mut scratch = ConvI8Scratch::default();
        lut.forward(&self.x, &mut y, &mut scratch, &mut |_| {});
        (y, scratch.scale())
    }

    /// The kernel at `isa` with the problem's plan.
    fn run_at(&self, isa: Isa) -> (Vec<f32>, f32) {
        self.run(&self.lut(isa).expect("valid problem"))
    }

    /// Per output: |bias| + Σ |x|·(|D_b| + |c_m|): the scale of its f32 rounding error.
    fn magnitude(&self) -> Vec<f32> {
        let (d, k) = (self.spec.d, self.spec.k);
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let m_count = self.spec.subspaces(self.shape.c_in_group());
        let mut centers = vec![0.0f32; self.centroids.len()];
        for m in 0..m_count {
            for u in 0..d {
                let c = (0..k)
                    .map(|b| self.centroids[(m * k + b) * d + u])
                    .sum::<f32>()
                    / k as f32;
                for b in 0..k {
                    centers[(m * k + b) * d + u] = c.abs();
                }
            }
        }
        let r = |cw: &[f32], bias: &[f32]| {
            conv_reference(
                self.shape,
                self.spec,
                cw,
                &self.assignments,
                bias,
                &abs(&self.x),
            )
        };
        let zeros = vec![0.0; self.shape.c_out];
        r(&abs(&self.centroids), &abs(&self.bias))
            .iter()
            .zip(r(&centers, &zeros))
            .map(|(a, b)| a + b)
            .collect()
    }

    /// SIMD == scalar bit for bit, and every ISA within the bound of the f32 reference.
    fn check(&self) {
        let lut = self.lut(Isa::Scalar).expect("valid problem");
        let (scalar, s) = self.run(&lut);
        assert!(
            scalar.iter().all(|v| v.is_finite()),
            "scalar wrote every output"
        );
        self.check_bound(&scalar, s, lut.plan());
        for isa in isas().into_iter().skip(1) {
            let fast = self.lut(isa).expect("valid problem");
            // The level's default plan may differ from the scalar one (row layout): its twin
            // runs the same plan.
            let twin = self.clone().with_plan(fast.plan()).lut(Isa::Scalar);
            let (want, s_twin) = self.run(&twin.expect("valid problem"));
            let (y, s_isa) = self.run(&fast);
            assert_eq!(s_isa.to_bits(), s_twin.to_bits(), "{isa}: scale");
            assert!(
                bits(&y) == bits(&want),
                "{isa} differs from scalar: {:?} {:?} {:?}",
                self.shape,
                self.spec,
                fast.plan()
            );
            self.check_bound(&y, s_isa, fast.plan());
        }
    }

    /// `got` (scale s, plan) within the quantization bound of the f32 reference.
    fn check_bound(&self, got: &[f32], s: f32, plan: ConvI8Plan) {
        let want = conv_reference(
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
            &self.x,
        );
        let m_count = self.spec.subspaces(self.shape.c_in_group());
        let n = (self.shape.kernel * self.shape.kernel * m_count) as f32;
        for (i, ((g, w), mag)) in got.iter().zip(&want).zip(self.magnitude()).enumerate() {
            let bound = n * s * (0.5 + Q_SLACK) + F32_REL * mag;
            assert!(
                (g - w).abs() <= bound,
                "{:?} {:?} {:?}: y[{i}] = {g}, exact {w}, |Δ| = {:e} > {bound:e} (s = {s:e})",
                self.shape,
                self.spec,
                plan,
                (g - w).abs()
            );
        }
    }
}

const KS: [usize; 6] = [2, 16, 32, 64, 128, 256];
/// Dims per subspace: every path of the int8 table builder (1–8 channels held in registers,
/// above 8 read from memory), full and partial subspaces.
const DS: [usize; 7] = [1, 2, 3, 4, 5, 8, 12];

/// Random shapes: groups 1–2, odd channel counts (partial subspaces), kernel 1–5, stride
/// 1–4, padding 0–2, widths around the 32-lane boundaries.
fn shapes() -> impl Strategy<Value = ConvShape> {
    (
        (1usize..=2, 1usize..=19, 1usize..=5),
        (
            1usize..=5,
            prop::sample::select(vec![1usize, 1, 2, 3, 4]),
            0usize..=2,
        ),
        (1usize..=12, 1usize..=40),
    )
        .prop_map(|((g, cin, cout), (k, s, p), (h, w))| conv(g * cin, h, w, g * cout, k, s, p, g))
        .prop_filter("kernel must fit the padded input", |s| s.is_valid())
}

fn specs() -> impl Strategy<Value = PqSpec> {
    (
        prop::sample::select(DS.to_vec()),
        prop::sample::select(KS.to_vec()),
    )
        .prop_map(|(d, k)| PqSpec { d, k })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_random_problems(shape in shapes(), spec in specs(), seed in any::<u64>(), signed in any::<bool>()) {
        ConvProblem::new(shape, spec, seed, if signed { -1.0 } else { 0.0 }).check();
    }

    /// Any band height, chunk (phase planes × codewords) and row layout: same bound, and
    /// SIMD == scalar.
    #[test]
    fn conv_random_plans(shape in shapes(), spec in specs(), seed in any::<u64>(), band in 1usize..=12, chunk in 1usize..=256, chunk_phases in 1usize..=16, aligned_rows in any::<bool>()) {
        ConvProblem::new(shape, spec, seed, -1.0)
            .with_plan(ConvI8Plan { band_rows: band, chunk_k: chunk, chunk_phases, aligned_rows })
            .check();
    }
}

/// Every plan with the same Q gives the same outputs bit for bit (the integer sums are
/// exact); plans with another Q (codeword chunks change the look-ups per pass) stay within
/// the bound.
#[test]
fn conv_plans_agree_bit_for_bit() {
    let shape = conv(10, 23, 29, 6, 5, 2, 2, 2);
    let spec = PqSpec { d: 3, k: 64 };
    let p = ConvProblem::new(shape, spec, 7, -1.0);
    let mut same_q = 0;
    for isa in isas() {
        let lut = p.lut(isa).unwrap();
        let (want, _) = p.run(&lut);
        let plans = [
            (1, 1, 4),
            (2, 7, 4),
            (3, 64, 4),
            (12, 13, 4),
            (5, 32, 4),
            (1, 64, 4),
            (7, 64, 4),
            (3, 64, 1),
            (5, 64, 3),
            (2, 9, 2),
        ];
        for ((band, chunk, chunk_phases), aligned_rows) in
            plans.into_iter().zip([true, false].repeat(5))
        {
            let q = p.clone().with_plan(ConvI8Plan {
                band_rows: band,
                chunk_k: chunk,
                chunk_phases,
                aligned_rows,
            });
            let other = q.lut(isa).unwrap();
            if other.q_range() == lut.q_range() {
                let (got, _) = q.run(&other);
                assert!(
                    bits(&got) == bits(&want),
                    "{isa} plan {band},{chunk},{chunk_phases}"
                );
                same_q += 1;
            } else {
                q.check();
            }
        }
    }
    assert!(same_q >= 2, "some plans share Q with the default");
}

/// Band lanes R·pw around multiples of 32 and a register block's 16 vectors.
#[test]
fn conv_simd_tails() {
    let spec = PqSpec { d: 4, k: 16 };
    for w in [1, 7, 15, 16, 17, 29, 30, 31, 32, 33, 63, 64, 65, 100] {
        // kernel 3, pad 1: pw = W + 2; h = 1, 2, 5 rows.
        for h in [1, 2, 5] {
            ConvProblem::new(conv(5, h, w, 3, 3, 1, 1, 1), spec, w as u64, -1.0).check();
        }
    }
    // 27 rows × 31 = 837 lanes: two blocks (like conv2); 40 rows × 40: several.
    ConvProblem::new(conv(3, 27, 27, 2, 5, 1, 2, 1), spec, 1, -1.0).check();
    ConvProblem::new(conv(3, 40, 38, 2, 3, 1, 1, 1), spec, 2, -1.0).check();
}

#[test]
fn conv_partial_subspaces_and_stride_4() {
    let spec = PqSpec { d: 8, k: 128 };
    ConvProblem::new(conv(3, 9, 17, 4, 3, 1, 1, 1), spec, 1, -1.0).check();
    ConvProblem::new(conv(6, 9, 17, 4, 3, 1, 2, 2), spec, 2, -1.0).check();
    ConvProblem::new(conv(3, 47, 51, 5, 11, 4, 0, 1), spec, 3, -1.0).check();
    ConvProblem::new(conv(3, 47, 51, 5, 11, 4, 0, 1), spec, 3, -1.0)
        .with_plan(ConvI8Plan {
            band_rows: 3,
            chunk_k: 20,
            chunk_phases: 16,
            aligned_rows: true,
        })
        .check();
    // Phase-plane chunks (conv1's default where a plane's table fits), with a partial last
    // chunk of planes, and both kinds of chunk at once.
    for (chunk_k, chunk_phases) in [(128, 1), (128, 5), (20, 3)] {
        ConvProblem::new(conv(3, 47, 51, 5, 11, 4, 0, 1), spec, 4, -1.0)
            .with_plan(ConvI8Plan {
                band_rows: 4,
                chunk_k,
                chunk_phases,
                aligned_rows: false,
            })
            .check();
    }
}

/// More than 258 look-ups per output: the i16 sums are flushed to i32 (F = 258 / 9 = 28
/// subspaces of a 3×3 kernel), several times; inputs at the top of the range. Every level,
/// the scalar twin included, stages its sums in i16, so a flush missing from the schedule
/// would wrap a sum at every level and break the bound checked here.
#[test]
fn conv_flushes_before_i16_overflow() {
    let spec = PqSpec { d: 1, k: 2 };
    let shape = conv(100, 6, 7, 3, 3, 1, 1, 1);
    const _: () = assert!(9 * 100 > 3 * MAX_I16_TERMS);
    let mut p = ConvProblem::new(shape, spec, 5, 0.0);
    // Two codewords ±1 and positive inputs: every entry is ±127-ish, sums reach ±100·9·127.
    p.centroids = (0..100).flat_map(|_| [1.0f32, -1.0]).collect();
    p.assignments.iter_mut().for_each(|b| *b = 0);
    p.x.iter_mut().for_each(|v| *v = 1.0);
    p.check();
}

/// The table entries are not clamped: |q| ≤ Q rests on the scale alone (`quant::SCALE_MARGIN`).
/// Here every look-up reads the entry of the input's own direction, which reaches Q exactly,
/// and every output sums 25 of them in one pass: 25·Q = 32750, 17 short of the i16 limit,
/// so one entry of Q + 1 would wrap a sum. Input magnitudes from 1e-22 to 1e25 cover
/// squared norms that are subnormal in f32 (near 1e-21, where an f32 bound misjudged s by
/// up to 10⁻³ and this test failed without the clamp), normal ones, and ones that overflow
/// f32 (above 1e19).
#[test]
fn tiny_inputs_never_overflow_the_i16_sums() {
    let spec = PqSpec { d: 2, k: 2 };
    let shape = conv(2, 7, 6, 3, 5, 1, 0, 1);
    let mut p = ConvProblem::new(shape, spec, 3, 0.0);
    // Codewords (±1, 0): centre 0, radius 1.
    p.centroids = vec![1.0, 0.0, -1.0, 0.0];
    p.assignments.iter_mut().for_each(|b| *b = 0);
    // No bias, so that outputs of 25λ keep their digits.
    p.bias.fill(0.0);
    let lut = p.lut(Isa::Scalar).expect("valid problem");
    assert_eq!(lut.q_range(), 32767 / 25);
    let full = (25 * lut.q_range()) as f32;
    let plane = shape.h_in * shape.w_in;
    for n in 0..=470 {
        let lambda = 10f32.powf(-22.0 + n as f32 * 0.1);
        p.x[..plane].fill(lambda);
        p.x[plane..].fill(0.0);
        p.check();
        // Every sum is 25·Q: the entries reach the bound, so the test is at the edge.
        let (y, s) = p.run_at(Isa::Scalar);
        for v in y {
            let sum = f64::from(v) / f64::from(s);
            assert!(
                (sum - f64::from(full)).abs() < 0.5,
                "λ = {lambda:e}: sum {sum}"
            );
        }
    }
}

#[test]
fn conv_zero_input_gives_bias() {
    let shape = conv(4, 5, 6, 3, 3, 1, 1, 1);
    let mut p = ConvProblem::new(shape, PqSpec { d: 2, k: 16 }, 9, -1.0);
    p.x.iter_mut().for_each(|v| *v = 0.0);
    for isa in isas() {
        let (y, s) = p.run_at(isa);
        assert_eq!(s, 1.0);
        for (t, chunk) in y.chunks(shape.h_out() * shape.w_out()).enumerate() {
            assert!(chunk.iter().all(|&v| v == p.bias[t]), "{isa}");
        }
    }
}

#[test]
fn conv_bad_inputs_are_errors() {
    let shape = conv(4, 5, 6, 3, 3, 1, 1, 1);
    let spec = PqSpec { d: 2, k: 16 };
    let p = ConvProblem::new(shape, spec, 1, -1.0);
    let t = Target::for_isa(Isa::Scalar);
    let short = &p.centroids[1..];
    assert!(matches!(
        ConvLutI8::new(t, shape, spec, short, &p.assignments, &p.bias),
        Err(LutError::Length { .. })
    ));
    let mut bad = p.assignments.clone();
    bad[3] = 16;
    assert!(matches!(
        ConvLutI8::new(t, shape, spec, &p.centroids, &bad, &p.bias),
        Err(LutError::IndexOutOfRange { position: 3, .. })
    ));
    // Subspaces of more than MAX_DIMS dims: the scale's rounding margin no longer holds.
    let wide = PqSpec {
        d: MAX_DIMS + 1,
        k: 2,
    };
    let w = ConvProblem::new(conv(MAX_DIMS + 1, 3, 3, 1, 1, 1, 0, 1), wide, 1, 0.0);
    assert!(matches!(
        ConvLutI8::new(t, w.shape, wide, &w.centroids, &w.assignments, &w.bias),
        Err(LutError::Spec(_))
    ));
    // 17 × 17 taps > 258 look-ups per subspace: the i16 sums could overflow.
    let big = conv(1, 17, 17, 1, 17, 1, 0, 1);
    let q = ConvProblem::new(big, PqSpec { d: 1, k: 2 }, 1, 0.0);
    assert!(matches!(
        ConvLutI8::new(t, big, q.spec, &q.centroids, &q.assignments, &q.bias),
        Err(LutError::Spec(_))
    ));
}

#[test]
fn kernel_names_carry_the_isa() {
    assert_eq!(ConvLutI8::name(Isa::Avx512), "conv-lut-i8-avx512");
    assert_eq!(ConvLutI8::name(Isa::Neon), "conv-lut-i8-neon");
    let p = ConvProblem::new(
        conv(4, 5, 6, 3, 3, 1, 1, 1),
        PqSpec { d: 2, k: 16 },
        1,
        -1.0,
    );
    for isa in isas() {
        assert_eq!(p.lut(isa).unwrap().kernel_name(), ConvLutI8::name(isa));
    }
    eprintln!("int8 kernels at: {:?}", isas());
}

/// AlexNet's conv shapes with random codebooks (d = 8, K = 128) and inputs in [0, 1)
/// (conv1: [−1, 1)): SIMD == scalar, the bound, and the relative error reported.
#[test]
fn conv_alexnet_shapes_random_codebooks() {
    let spec = PqSpec { d: 8, k: 128 };
    let layers = [
        ("conv1", conv(3, 227, 227, 96, 11, 4, 0, 1), -1.0),
        ("conv2", conv(96, 27, 27, 256, 5, 1, 2, 2), 0.0),
        ("conv3", conv(256, 13, 13, 384, 3, 1, 1, 1), 0.0),
        ("conv4", conv(384, 13, 13, 384, 3, 1, 1, 2), 0.0),
        ("conv5", conv(384, 13, 13, 256, 3, 1, 1, 2), 0.0),
    ];
    for (n, (name, shape, lo)) in layers.into_iter().enumerate() {
        let p = ConvProblem::new(shape, spec, n as u64, lo);
        p.check();
        let (y, s) = p.run_at(*isas().last().unwrap());
        let want = conv_reference(shape, spec, &p.centroids, &p.assignments, &p.bias, &p.x);
        eprintln!(
            "{name} (random codebooks): max |Δ| / max |y| = {:.2e}, s = {s:.3e}",
            rel_err(&y, &want)
        );
    }
}

/// The conv shapes CNN-S and VGG-16 add (7×7 stride 2 on 224×224, 5×5 pad 1, 3-channel
/// 3×3 on 224×224, 224×224×64 maps, 512 channels 3×3): SIMD == scalar twin and the bound.
#[test]
fn conv_paper_network_shapes_random_codebooks() {
    let spec = PqSpec { d: 8, k: 128 };
    let layers = [
        ("cnn-s conv1", conv(3, 224, 224, 96, 7, 2, 0, 1), -1.0),
        ("cnn-s conv2", conv(96, 37, 37, 256, 5, 1, 1, 1), 0.0),
        ("vgg16 conv1_1", conv(3, 224, 224, 64, 3, 1, 1, 1), -1.0),
        ("vgg16 conv1_2", conv(64, 224, 224, 64, 3, 1, 1, 1), 0.0),
        ("vgg16 conv5_1", conv(512, 14, 14, 512, 3, 1, 1, 1), 0.0),
    ];
    for (n, (name, shape, lo)) in layers.into_iter().enumerate() {
        let p = ConvProblem::new(shape, spec, 300 + n as u64, lo);
        p.check();
        eprintln!("{name}: int8 twins agree");
    }
}

// ----------------------------------------------------------- the authors' AlexNet, real data

fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("QCNN_SHARED")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A `.bin` array (FORMAT.md): int32 n, n int32 dims, then f32 elements.
fn read_bin(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let int = |k: usize| i32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    let dims: Vec<usize> = (0..int(0)).map(|k| int(1 + k)).collect();
    let data = bytes[4 + 4 * dims.len()..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (dims, data)
}

/// A `.cbn` array (FORMAT.md): dims, bits b, 4096-byte blocks of ⌊32768 / b⌋ indices, MSB
/// first.
fn read_cbn(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let int = |k: usize| i32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    let dims: Vec<usize> = (0..int(0)).map(|k| int(1 + k)).collect();
    let bits = int(1 + dims.len());
    let per_block = 32768 / bits;
    let body = &bytes[4 * (2 + dims.len())..];
    (0..dims.iter().product::<usize>())
        .map(|n| {
            let block = &body[(n / per_block) * 4096..][..4096];
            let first = (n % per_block) * bits;
            (0..bits).fold(0u8, |v, k| {
                (v << 1) | ((block[(first + k) / 8] >> (7 - (first + k) % 8)) & 1)
            })
        })
        .collect()
}

/// The authors' quantized AlexNet conv layers on the golden image's input to each layer:
/// int8 vs the exact f32 kernel at every level, relative error reported, within
/// [`CONV_REAL_TOL`].
#[test]
fn authors_alexnet_layers_int8_vs_exact() {
    use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
    let shared = shared_dir();
    let (model, golden) = (
        shared.join("qcnn-alexnet/AlexNet/Bin.Files"),
        shared.join("golden/ILSVRC2012_val_00000001"),
    );
    if !model.is_dir() || !golden.is_dir() {
        eprintln!(
            "SKIPPED: authors' model or golden outputs not found under {}",
            shared.display()
        );
        return;
    }
    let relu = |v: Vec<f32>| v.into_iter().map(|a| a.max(0.0)).collect::<Vec<_>>();
    let file = |kind: &str, nn: &str, ext: &str| {
        model.join(format!("bvlc_alexnet_aCaF.{kind}.{nn}.{ext}"))
    };
    let params = |nn: &str| {
        let (cdims, centroids) = read_bin(&file("ctrdLst", nn, "bin"));
        let spec = PqSpec {
            d: cdims[2],
            k: cdims[1],
        };
        (
            spec,
            centroids,
            read_cbn(&file("asmtLst", nn, "cbn")),
            read_bin(&file("biasVec", nn, "bin")).1,
        )
    };
    let convs = [
        (
            "01",
            "conv1",
            conv(3, 227, 227, 96, 11, 4, 0, 1),
            read_bin(&golden.join("input.bin")).1,
        ),
        (
            "05",
            "conv2",
            conv(96, 27, 27, 256, 5, 1, 2, 2),
            read_bin(&golden.join("pool1.bin")).1,
        ),
        (
            "09",
            "conv3",
            conv(256, 13, 13, 384, 3, 1, 1, 1),
            read_bin(&golden.join("pool2.bin")).1,
        ),
        (
            "11",
            "conv4",
            conv(384, 13, 13, 384, 3, 1, 1, 2),
            relu(read_bin(&golden.join("conv3.bin")).1),
        ),
        (
            "13",
            "conv5",
            conv(384, 13, 13, 256, 3, 1, 1, 2),
            relu(read_bin(&golden.join("conv4.bin")).1),
        ),
    ];
    for ((nn, name, shape, x), tol) in convs.into_iter().zip(CONV_REAL_TOL) {
        let (spec, c, a, b) = params(nn);
        let scalar = Target::for_isa(Isa::Scalar);
        let exact = ConvLut::new(scalar, shape, spec, &c, &a, &b).unwrap();
        let mut want = vec![0.0; shape.output_len()];
        exact.forward(&x, &mut want, &mut ConvScratch::default(), &mut |_| {});
        for isa in isas() {
            let lut = ConvLutI8::new(Target::for_isa(isa), shape, spec, &c, &a, &b).unwrap();
            let mut scratch = ConvI8Scratch::default();
            let mut y = vec![f32::NAN; shape.output_len()];
            lut.forward(&x, &mut y, &mut scratch, &mut |_| {});
            let err = rel_err(&y, &want);
            eprintln!("{name} {isa} (authors' codebooks, golden input): int8 vs exact max |Δ| / max |y| = {err:.2e}, s = {:.3e}, Q = {}", scratch.scale(), lut.q_range());
            assert!(err <= tol, "{name} {isa}: {err:e} > {tol}");
        }
    }
}
