//! The dense ops against their reference twins on random shapes (STYLE.md 2–5).
//!
//! Each test is a problem: a struct with inputs, `reference()` (the twin) and `run()` (the
//! fast op, writing into a NaN-filled output so unwritten elements show up).

mod common;

use proptest::prelude::*;
use qcnn_kernels::blas;
use qcnn_kernels::dense::reference::{
    conv_reference, fc_reference, lrn_reference, max_pool_reference, max_relative_error,
    relu_reference, softmax_reference,
};
use qcnn_kernels::dense::{
    conv, fc, lrn, max_pool, relu, softmax, ConvScratch, LrnParams, LrnScratch, PoolScratch,
    PoolShape,
};
use qcnn_kernels::{ConvShape, FcShape, Isa};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// f32 GEMM/GEMV sums in another order than the f64 twin. On random problems the error is
/// measured against the largest sum of absolute terms, max|a−b| / max_t Σ|w·x| (the scale
/// f32 rounding works at: a single output may cancel to near 0); on AlexNet's layers against
/// max|b|. A missing or wrong term moves an output by ≈ Σ|w·x| / taps, far above this.
const BLAS_TOL: f32 = 1e-5;
/// LRN: a sliding f32 sum of squares and √/division instead of f64 `powf`.
const LRN_TOL: f32 = 1e-5;
/// LRN with beta = 0.75 at a vector level against the scalar build, element by element:
/// b^−0.75 from refined reciprocal square roots (2^−21 each) instead of correctly rounded
/// √ and ÷, about 2^−19 (lrn.rs `Estimated`).
const LRN_ESTIMATE_TOL: f32 = 2e-6;
/// Softmax: f32 `exp` and a sum of up to 1100 terms against f64.
const SOFTMAX_TOL: f32 = 1e-5;

fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    let err = max_relative_error(got, want);
    assert!(err <= tol, "{what}: relative error {err:e} > {tol:e}");
}

/// max|got − want| / max|magnitude|, `magnitude` being the twin run on absolute values.
fn assert_close_to_magnitude(got: &[f32], want: &[f32], magnitude: &[f32], what: &str) {
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    let scale = magnitude.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let err = if diff == 0.0 { 0.0 } else { diff / scale };
    assert!(
        err <= BLAS_TOL,
        "{what}: error {err:e} of the largest Σ|w·x| > {BLAS_TOL:e}"
    );
}

fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

// ---------------------------------------------------------------------------- conv

#[derive(Debug, Clone)]
struct ConvProblem {
    shape: ConvShape,
    weights: Vec<f32>,
    bias: Vec<f32>,
    input: Vec<f32>,
}

impl ConvProblem {
    fn new(shape: ConvShape, seed: u64) -> Self {
        let w_len = shape.c_out * shape.c_in_group() * shape.kernel * shape.kernel;
        ConvProblem {
            weights: values(seed, w_len, 1.0),
            bias: values(seed + 1, shape.c_out, 1.0),
            input: values(seed + 2, shape.input_len(), 1.0),
            shape,
        }
    }
    fn reference(&self) -> Vec<f32> {
        conv_reference(&self.shape, &self.weights, &self.bias, &self.input)
    }
    fn run(&self, scratch: &mut ConvScratch) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.shape.output_len()];
        conv(
            &self.shape,
            &self.weights,
            &self.bias,
            &self.input,
            &mut out,
            scratch,
        );
        out
    }
    /// The twin on |W|, |x|, |bias|: Σ|terms| per output.
    fn magnitude(&self) -> Vec<f32> {
        let (w, b, x) = (abs(&self.weights), abs(&self.bias), abs(&self.input));
        conv_reference(&self.shape, &w, &b, &x)
    }
    fn check(&self) {
        let got = self.run(&mut ConvScratch::new());
        let what = format!("{:?}", self.shape);
        assert_close_to_magnitude(&got, &self.reference(), &self.magnitude(), &what);
    }
}

fn conv_shapes() -> impl Strategy<Value = ConvShape> {
    (
        (1usize..=2, 1usize..=5, 1usize..=6),
        (
            1usize..=5,
            prop::sample::select(vec![1usize, 2, 4]),
            0usize..=2,
        ),
        (1usize..=19, 1usize..=19),
    )
        .prop_map(
            |((groups, cin_g, cout_g), (kernel, stride, pad), (h, w))| ConvShape {
                c_in: groups * cin_g,
                h_in: h,
                w_in: w,
                c_out: groups * cout_g,
                kernel,
                stride,
                pad,
                groups,
            },
        )
        .prop_filter("kernel must fit the padded input", |s| s.is_valid())
}

proptest! {
    #[test]
    fn conv_matches_reference(shape in conv_shapes(), seed in any::<u64>()) {
        blas::set_single_thread();
        ConvProblem::new(shape, seed).check();
    }
}

#[test]
fn conv_kernel_11_stride_4_matches_reference() {
    // conv1's geometry on a smaller map, with an odd width and a ragged last window.
    let shape = ConvShape {
        c_in: 3,
        h_in: 38,
        w_in: 41,
        c_out: 7,
        kernel: 11,
        stride: 4,
        pad: 0,
        groups: 1,
    };
    ConvProblem::new(shape, 11).check();
}

#[test]
fn conv_pointwise_reads_input_directly() {
    let shape = ConvShape {
        c_in: 6,
        h_in: 5,
        w_in: 7,
        c_out: 4,
        kernel: 1,
        stride: 1,
        pad: 0,
        groups: 2,
    };
    ConvProblem::new(shape, 1).check();
}

#[test]
fn conv_scratch_is_reused_across_shapes() {
    // A big layer then a small one through the same scratch: stale im2col data must not leak.
    let big = ConvShape {
        c_in: 4,
        h_in: 9,
        w_in: 9,
        c_out: 2,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let small = ConvShape {
        c_in: 2,
        h_in: 4,
        w_in: 3,
        c_out: 3,
        kernel: 2,
        stride: 1,
        pad: 2,
        groups: 1,
    };
    let mut scratch = ConvScratch::for_shape(&big);
    for p in [ConvProblem::new(big, 5), ConvProblem::new(small, 6)] {
        let got = p.run(&mut scratch);
        assert_close_to_magnitude(&got, &p.reference(), &p.magnitude(), "reuse");
    }
}

/// AlexNet's five conv layers and fc8 at full size: the BLAS kernels OpenBLAS picks for
/// large matrices (and, in the SkylakeX child run, its AVX-512 kernels) against the twins.
#[test]
fn alexnet_layers_match_reference() {
    blas::set_single_thread();
    let conv = |c_in, h, c_out, kernel, stride, pad, groups| ConvShape {
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kernel,
        stride,
        pad,
        groups,
    };
    let layers = [
        conv(3, 227, 96, 11, 4, 0, 1),
        conv(96, 27, 256, 5, 1, 2, 2),
        conv(256, 13, 384, 3, 1, 1, 1),
        conv(384, 13, 384, 3, 1, 1, 2),
        conv(384, 13, 256, 3, 1, 1, 2),
    ];
    let mut scratch = ConvScratch::new();
    for (i, shape) in layers.into_iter().enumerate() {
        let p = ConvProblem::new(shape, 100 + i as u64);
        let err = max_relative_error(&p.run(&mut scratch), &p.reference());
        eprintln!("conv{}: relative error {err:e}", i + 1);
        assert!(err <= BLAS_TOL, "conv{}: {err:e}", i + 1);
    }
    let p = FcProblem::new(
        FcShape {
            c_in: 4096,
            c_out: 1000,
        },
        7,
    );
    let err = max_relative_error(&p.run(), &p.reference());
    eprintln!("fc8: relative error {err:e}");
    assert!(err <= BLAS_TOL, "fc8: {err:e}");
}

/// The conv shapes CNN-S and VGG-16 add, at full size against the twin: CNN-S conv1 (7×7
/// stride 2 on 224×224) and conv2 (5×5 pad 1), VGG-16 conv1_1 (3 channels), conv1_2
/// (224×224×64) and a 512-channel 3×3 conv (conv5_1).
#[test]
fn paper_network_conv_layers_match_reference() {
    blas::set_single_thread();
    let conv = |c_in, h, c_out, kernel, stride, pad| ConvShape {
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kernel,
        stride,
        pad,
        groups: 1,
    };
    let layers = [
        ("cnn-s conv1", conv(3, 224, 96, 7, 2, 0)),
        ("cnn-s conv2", conv(96, 37, 256, 5, 1, 1)),
        ("vgg16 conv1_1", conv(3, 224, 64, 3, 1, 1)),
        ("vgg16 conv1_2", conv(64, 224, 64, 3, 1, 1)),
        ("vgg16 conv5_1", conv(512, 14, 512, 3, 1, 1)),
    ];
    let mut scratch = ConvScratch::new();
    for (i, (name, shape)) in layers.into_iter().enumerate() {
        let p = ConvProblem::new(shape, 400 + i as u64);
        let err = max_relative_error(&p.run(&mut scratch), &p.reference());
        eprintln!("{name}: relative error {err:e}");
        assert!(err <= BLAS_TOL, "{name}: {err:e}");
    }
}

// ---------------------------------------------------------------------------- fc

#[derive(Debug, Clone)]
struct FcProblem {
    shape: FcShape,
    weights: Vec<f32>,
    bias: Vec<f32>,
    input: Vec<f32>,
}

impl FcProblem {
    fn new(shape: FcShape, seed: u64) -> Self {
        FcProblem {
            weights: values(seed, shape.c_in * shape.c_out, 1.0),
            bias: values(seed + 1, shape.c_out, 1.0),
            input: values(seed + 2, shape.c_in, 1.0),
            shape,
        }
    }
    fn reference(&self) -> Vec<f32> {
        fc_reference(&self.shape, &self.weights, &self.bias, &self.input)
    }
    fn run(&self) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.shape.c_out];
        fc(
            &self.shape,
            &self.weights,
            &self.bias,
            &self.input,
            &mut out,
        );
        out
    }
    fn magnitude(&self) -> Vec<f32> {
        let (w, b, x) = (abs(&self.weights), abs(&self.bias), abs(&self.input));
        fc_reference(&self.shape, &w, &b, &x)
    }
    fn check(&self) {
        let what = format!("{:?}", self.shape);
        assert_close_to_magnitude(&self.run(), &self.reference(), &self.magnitude(), &what);
    }
}

proptest! {
    #[test]
    fn fc_matches_reference(c_in in 1usize..=300, c_out in 1usize..=70, seed in any::<u64>()) {
        blas::set_single_thread();
        FcProblem::new(FcShape { c_in, c_out }, seed).check();
    }
}

// ---------------------------------------------------------------------------- LRN

#[derive(Debug, Clone)]
struct LrnProblem {
    params: LrnParams,
    channels: usize,
    pixels: usize,
    input: Vec<f32>,
}

impl LrnProblem {
    fn reference(&self) -> Vec<f32> {
        lrn_reference(&self.params, self.channels, self.pixels, &self.input)
    }
    fn run(&self, isa: Isa, scratch: &mut LrnScratch) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.input.len()];
        let (c, p) = (self.channels, self.pixels);
        lrn(&self.params, isa, c, p, &self.input, &mut out, scratch);
        out
    }
    /// The scalar build against the twin, and every available ISA against the scalar
    /// build: bit-identical, except with beta = 0.75 (estimated b^−0.75 at vector levels)
    /// within [`LRN_ESTIMATE_TOL`] of each element.
    fn check(&self) {
        let scalar = self.run(Isa::Scalar, &mut LrnScratch::new());
        let what = format!("{:?} C={} P={}", self.params, self.channels, self.pixels);
        assert_close(&scalar, &self.reference(), LRN_TOL, &what);
        for isa in tested_isas() {
            let got = self.run(isa, &mut LrnScratch::new());
            if self.params.beta == 0.75 && isa != Isa::Scalar {
                // Element by element, so that a NaN fails (a fold of `max` would skip it).
                for (p, (a, b)) in got.iter().zip(&scalar).enumerate() {
                    let err = if a == b { 0.0 } else { (a - b).abs() / b.abs() };
                    assert!(
                        err <= LRN_ESTIMATE_TOL,
                        "{what}: {isa} gives {a:e} at {p}, scalar {b:e} ({err:e} apart)"
                    );
                }
            } else {
                let same = got
                    .iter()
                    .zip(&scalar)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{what}: {isa} differs from scalar");
            }
        }
    }
}

/// The ISAs this CPU runs; [`required_isa_levels_are_tested`] fails when CI requires one
/// that is not among them (STYLE.md 7: never test fewer levels silently).
fn tested_isas() -> Vec<Isa> {
    Isa::available()
}

/// Every level CI requires (`QCNN_REQUIRE_ISA`, set by `.ci/run` from /proc/cpuinfo) is
/// among the levels the LRN and pooling twins are tested at (common/mod.rs).
#[test]
fn required_isa_levels_are_tested() {
    common::tested_levels("dense LRN and pooling", common::REQUIRE, tested_isas());
}

fn lrn_problems(beta: BoxedStrategy<f32>) -> impl Strategy<Value = LrnProblem> {
    (
        prop::sample::select(vec![1usize, 3, 5, 7]),
        1usize..=12,
        // Pixel counts around the SIMD widths 4, 8, 16 (and their ±1 tails).
        1usize..=40,
        (1e-4f32..2.0, beta, 0.5f32..2.0),
        any::<u64>(),
    )
        .prop_map(
            |(size, channels, pixels, (alpha, beta, k), seed)| LrnProblem {
                params: LrnParams {
                    size,
                    alpha,
                    beta,
                    k,
                },
                channels,
                pixels,
                input: values(seed, channels * pixels, 3.0),
            },
        )
}

proptest! {
    #[test]
    fn lrn_beta_075_matches_reference(p in lrn_problems(Just(0.75f32).boxed())) {
        p.check();
    }

    #[test]
    fn lrn_general_beta_matches_reference(p in lrn_problems((0.1f32..1.5).boxed())) {
        p.check();
    }
}

#[test]
fn lrn_alexnet_norm1_matches_reference() {
    // AlexNet's parameters and norm1's geometry; ReLU'd inputs of a realistic magnitude.
    let (channels, pixels) = (96, 55 * 55);
    let mut input = values(3, channels * pixels, 60.0);
    relu(&mut input);
    let p = LrnProblem {
        params: LrnParams::ALEXNET,
        channels,
        pixels,
        input,
    };
    p.check();
}

#[test]
fn lrn_fewer_channels_than_the_window() {
    for channels in 1..=4 {
        let p = LrnProblem {
            params: LrnParams {
                size: 5,
                alpha: 0.5,
                beta: 0.75,
                k: 1.0,
            },
            channels,
            pixels: 9,
            input: values(channels as u64, channels * 9, 2.0),
        };
        p.check();
    }
}

// ---------------------------------------------------------------------------- pooling

fn pool_shapes() -> impl Strategy<Value = PoolShape> {
    (
        1usize..=4,
        1usize..=15,
        1usize..=15,
        1usize..=5,
        1usize..=4,
        0usize..=2,
    )
        .prop_map(|(channels, h_in, w_in, kernel, stride, pad)| PoolShape {
            channels,
            h_in,
            w_in,
            kernel,
            stride,
            pad,
        })
        .prop_filter("Caffe pooling geometry", |s| s.is_valid())
}

/// Every available level against Caffe's loop, exactly (a max is exact: no tolerance), and
/// bit for bit against the scalar build (signed zeros and NaN payloads included).
fn check_pool_input(shape: &PoolShape, input: &[f32]) {
    let run = |isa: Isa| {
        let mut out = vec![f32::NAN; shape.output_len()];
        max_pool(shape, isa, input, &mut out, &mut PoolScratch::new());
        out
    };
    let scalar = run(Isa::Scalar);
    assert_eq!(scalar, max_pool_reference(shape, input), "{shape:?}");
    for isa in tested_isas() {
        let got = run(isa);
        let same = got
            .iter()
            .zip(&scalar)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{shape:?}: pooling at {isa} differs from scalar");
    }
}

fn check_pool(shape: &PoolShape, seed: u64) {
    check_pool_input(shape, &values(seed, shape.input_len(), 5.0));
}

proptest! {
    #[test]
    fn max_pool_matches_reference(shape in pool_shapes(), seed in any::<u64>()) {
        check_pool(&shape, seed);
    }
}

#[test]
fn max_pool_overhanging_windows() {
    // AlexNet's 3×3 stride 2 on 13×13 → 6×6 and 6×6 → 3×3 (ceil: the last window overhangs).
    for size in [13, 6, 55, 27] {
        let shape = PoolShape {
            channels: 3,
            h_in: size,
            w_in: size,
            kernel: 3,
            stride: 2,
            pad: 0,
        };
        check_pool(&shape, size as u64);
    }
    let shape = PoolShape {
        channels: 1,
        h_in: 6,
        w_in: 6,
        kernel: 3,
        stride: 2,
        pad: 0,
    };
    assert_eq!((shape.h_out(), shape.w_out()), (3, 3));
}

#[test]
fn max_pool_ignores_nan_like_caffe() {
    // Caffe's `if (v > max)` never takes a NaN, wherever it sits in the window.
    let shape = PoolShape {
        channels: 2,
        h_in: 4,
        w_in: 5,
        kernel: 3,
        stride: 2,
        pad: 1,
    };
    let mut input = values(4, shape.input_len(), 5.0);
    for i in [0, 1, 7, 12, 20, 26] {
        input[i] = f32::NAN;
    }
    assert!(max_pool_reference(&shape, &input)
        .iter()
        .all(|v| !v.is_nan()));
    check_pool_input(&shape, &input);
}

#[test]
fn max_pool_signed_zeros_and_nan_give_the_same_bits_at_every_level() {
    // Ties of −0 and +0 resolve by fold order, and NaN never wins: every level must fold each
    // window in the scalar build's order. AlexNet's widths, with vector tails.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let pick = [0.0f32, -0.0, -1.0, f32::NAN, 0.5];
    for (size, stride) in [(55, 2), (27, 2), (13, 2), (21, 1)] {
        let shape = PoolShape {
            channels: 2,
            h_in: size,
            w_in: size,
            kernel: 3,
            stride,
            pad: 0,
        };
        let input: Vec<f32> = (0..shape.input_len())
            .map(|_| pick[rng.random_range(0..pick.len())])
            .collect();
        check_pool_input(&shape, &input);
    }
}

// ---------------------------------------------------------------------------- ReLU, softmax

proptest! {
    #[test]
    fn relu_matches_reference(len in 0usize..=70, seed in any::<u64>()) {
        let input = values(seed, len, 1.0);
        let mut x = input.clone();
        relu(&mut x);
        prop_assert_eq!(x, relu_reference(&input));
    }

    #[test]
    fn softmax_matches_reference(
        channels in 1usize..=1100,
        positions in 1usize..=3,
        scale in 0.1f32..60.0,
        seed in any::<u64>(),
    ) {
        let input = values(seed, channels * positions, scale);
        let mut out = vec![f32::NAN; input.len()];
        softmax(&input, &mut out, channels);
        assert_close(&out, &softmax_reference(&input, channels), SOFTMAX_TOL, "softmax");
    }
}

#[test]
fn relu_keeps_nan_like_caffe() {
    let mut x = [f32::NAN, -1.0, 2.0, -0.0];
    relu(&mut x);
    assert!(x[0].is_nan());
    assert_eq!(&x[1..], &[0.0, 2.0, -0.0]);
}

// ---------------------------------------------------------------------------- BLAS core type

/// Prints the OpenBLAS core type, for the parent of the SkylakeX child run to read.
#[test]
fn blas_core_is_reported() {
    let core = blas::core_name();
    assert!(!core.is_empty());
    println!("openblas core: {core}");
}

/// The BLAS-backed tests this binary re-runs under `OPENBLAS_CORETYPE=SkylakeX`.
#[cfg(target_arch = "x86_64")]
const SKYLAKEX_CHILD_TESTS: [&str; 4] = [
    "conv_matches_reference",
    "fc_matches_reference",
    "alexnet_layers_match_reference",
    "blas_core_is_reported",
];

/// The program runs OpenBLAS with its SkylakeX (AVX-512) kernels while this environment
/// defaults to Haswell: the core type is read when the library loads, so the BLAS tests are
/// re-run in a child process of this same test binary with the core forced.
#[test]
#[cfg(target_arch = "x86_64")]
fn dense_ops_pass_under_skylakex_blas() {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("SKIPPED: this CPU lacks avx512f, OpenBLAS cannot run its SkylakeX kernels");
        return;
    }
    let exe = std::env::current_exe().expect("path of the running test binary");
    let out = std::process::Command::new(exe)
        .arg("--exact")
        .args(SKYLAKEX_CHILD_TESTS)
        .args(["--nocapture", "--test-threads", "1"])
        .env("OPENBLAS_CORETYPE", "SkylakeX")
        .output()
        .expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "BLAS tests fail under SkylakeX:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("openblas core: SkylakeX"),
        "OPENBLAS_CORETYPE=SkylakeX was not honoured:\n{stdout}"
    );
    let passed = format!("{} passed", SKYLAKEX_CHILD_TESTS.len());
    assert!(stdout.contains(&passed), "expected '{passed}':\n{stdout}");
    eprintln!("{stderr}");
}
