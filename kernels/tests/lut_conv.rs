//! The look-up-table conv kernels against `conv_reference` at every ISA this CPU has
//! (STYLE.md 2–7): random problems (proptest), SIMD tails, partial subspaces, stride 4,
//! bands and codeword chunks, NaN-filled outputs, exact integer problems, bad inputs.

mod common;

use proptest::prelude::*;
use qcnn_kernels::blas;
use qcnn_kernels::lut::conv::{conv_reference, default_plan, ConvLut, ConvPlan, ConvScratch};
use qcnn_kernels::{CacheSizes, ConvShape, Isa, LutError, Phase, PqSpec, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Allowed |y − y_ref| relative to the magnitude |bias| + Σ_(i,j,m) Σ_u |x_u|·|D_u| of the
/// terms of each output: f32 tables and sums in another order than the f64 reference
/// (≈ 84 f32 ulps of the magnitude; the worst-case bound for n terms is n ulps).
const REL_TOL: f32 = 1e-5;

/// One look-up conv problem: inputs, the oracle and the kernel under test.
#[derive(Clone, Debug)]
struct Problem {
    shape: ConvShape,
    spec: PqSpec,
    plan: Option<ConvPlan>,
    /// Layout (M, K, d).
    centroids: Vec<f32>,
    /// Layout (C_t, kh, kw, M).
    assignments: Vec<u8>,
    bias: Vec<f32>,
    /// Layout (C_s, H_s, W_s).
    x: Vec<f32>,
}

impl Problem {
    /// Random values in [−1, 1), or small integers (exact in f32 in any order) if `integers`.
    fn new(shape: ConvShape, spec: PqSpec, seed: u64, integers: bool) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let m = spec.subspaces(shape.c_in_group());
        let mut values = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| match integers {
                    true => rng.random_range(-4i32..=4) as f32,
                    false => rng.random_range(-1.0f32..1.0),
                })
                .collect()
        };
        let centroids = values(m * spec.k * spec.d);
        let bias = values(shape.c_out);
        let x = values(shape.input_len());
        let assignments = (0..shape.c_out * shape.kernel * shape.kernel * m)
            .map(|_| rng.random_range(0..spec.k) as u8)
            .collect();
        Problem {
            shape,
            spec,
            plan: None,
            centroids,
            assignments,
            bias,
            x,
        }
    }

    fn with_plan(mut self, plan: ConvPlan) -> Problem {
        self.plan = Some(plan);
        self
    }

    /// The layer prepared for `isa` (default caches), with the problem's plan if it has one.
    fn lut(&self, isa: Isa) -> Result<ConvLut, LutError> {
        let (s, p, t) = (self.shape, self.spec, Target::for_isa(isa));
        let (c, a, b) = (&self.centroids, &self.assignments, &self.bias);
        match self.plan {
            None => ConvLut::new(t, s, p, c, a, b),
            Some(plan) => ConvLut::with_plan(t, s, p, plan, c, a, b),
        }
    }

    fn reference(&self) -> Vec<f32> {
        conv_reference(
            self.shape,
            self.spec,
            &self.centroids,
            &self.assignments,
            &self.bias,
            &self.x,
        )
    }

    /// Per output: |bias| + Σ |x|·|D| over its terms, the scale of its rounding error.
    fn magnitude(&self) -> Vec<f32> {
        let abs = |v: &[f32]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        conv_reference(
            self.shape,
            self.spec,
            &abs(&self.centroids),
            &self.assignments,
            &abs(&self.bias),
            &abs(&self.x),
        )
    }

    /// The kernel's output, from a NaN-filled buffer so unwritten elements show up.
    fn run(&self, lut: &ConvLut, scratch: &mut ConvScratch) -> Vec<f32> {
        let mut y = vec![f32::NAN; self.shape.output_len()];
        lut.forward(&self.x, &mut y, scratch, &mut |_| {});
        y
    }

    /// Every available ISA against the reference, within `REL_TOL` of the magnitude.
    fn check(&self) {
        let (want, mag) = (self.reference(), self.magnitude());
        for isa in Isa::available() {
            let lut = self.lut(isa).expect("valid problem");
            let got = self.run(&lut, &mut ConvScratch::default());
            assert_within(
                &got,
                &want,
                &mag,
                &format!("{isa} {:?} {:?} {:?}", self.shape, self.spec, lut.plan()),
            );
        }
    }

    /// Every available ISA equals the reference exactly (integer problems).
    fn check_exact(&self) {
        let want = self.reference();
        for isa in Isa::available() {
            let lut = self.lut(isa).expect("valid problem");
            let got = self.run(&lut, &mut ConvScratch::default());
            assert_eq!(
                got,
                want,
                "{isa} {:?} {:?} {:?}",
                self.shape,
                self.spec,
                lut.plan()
            );
        }
    }
}

fn assert_within(got: &[f32], want: &[f32], mag: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    for (n, ((g, w), m)) in got.iter().zip(want).zip(mag).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= REL_TOL * m.max(f32::MIN_POSITIVE),
            "{what}: y[{n}] = {g}, reference {w} (|Δ| = {err:e}, magnitude {m:e})"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> ConvShape {
    ConvShape {
        c_in,
        h_in: h,
        w_in: w,
        c_out,
        kernel,
        stride,
        pad,
        groups,
    }
}

const KS: [usize; 6] = [2, 16, 32, 64, 128, 256];
/// Dims per subspace: every path of the f32 table builder (1–4 channels one chain, 5–8 two,
/// above 8 passes of 8 channels adding into the stored sums), full and partial subspaces.
const DS: [usize; 7] = [1, 2, 3, 4, 5, 8, 12];

/// Random shapes: groups 1–2, odd channel counts (partial subspaces), kernel 1–5, stride 1–4,
/// padding 0–2, widths around the 8- and 16-lane boundaries.
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
        .prop_map(|((groups, cin_g, cout_g), (kernel, stride, pad), (h, w))| {
            conv(
                groups * cin_g,
                h,
                w,
                groups * cout_g,
                kernel,
                stride,
                pad,
                groups,
            )
        })
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
    // proptest's default: 256 cases, or PROPTEST_CASES.

    #[test]
    fn random_problems_match_reference(shape in shapes(), spec in specs(), seed in any::<u64>()) {
        blas::set_single_thread();
        Problem::new(shape, spec, seed, false).check();
    }

    /// Any band height, codeword chunk, phase-plane chunk and number of subspaces per table
    /// computes the same function.
    #[test]
    fn random_plans_match_reference(
        shape in shapes(), spec in specs(), seed in any::<u64>(), band in 1usize..=12, chunk in 1usize..=256, block_rows in 1usize..=16, chunk_phases in 1usize..=20, table_subspaces in 1usize..=5,
    ) {
        blas::set_single_thread();
        Problem::new(shape, spec, seed, false).with_plan(ConvPlan { band_rows: band, chunk_k: chunk, chunk_phases, block_rows, table_subspaces }).check();
    }

    /// Small integers: every sum is exact in f32, so any order gives the reference bit for bit.
    #[test]
    fn integer_problems_are_exact(shape in shapes(), spec in specs(), seed in any::<u64>(), band in 1usize..=12) {
        blas::set_single_thread();
        let chunk = spec.k / 3 + 1;
        let block_rows = band / 2 + 1;
        let chunk_phases = band % 3 + 1;
        let table_subspaces = band % 4 + 1;
        Problem::new(shape, spec, seed, true).with_plan(ConvPlan { band_rows: band, chunk_k: chunk, chunk_phases, block_rows, table_subspaces }).check_exact();
    }
}

#[test]
fn simd_tails_around_8_and_16_lanes() {
    blas::set_single_thread();
    let spec = PqSpec { d: 4, k: 16 };
    for w_out in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65] {
        // kernel 3, pad 1, stride 1: W_t = W_s.
        Problem::new(conv(5, 3, w_out, 3, 3, 1, 1, 1), spec, w_out as u64, false).check();
    }
}

#[test]
fn partial_subspace_three_channels_d8() {
    blas::set_single_thread();
    let spec = PqSpec { d: 8, k: 128 };
    Problem::new(conv(3, 9, 17, 4, 3, 1, 1, 1), spec, 1, false).check();
    Problem::new(conv(6, 9, 17, 4, 3, 1, 2, 2), spec, 2, false).check();
}

#[test]
fn kernel_11_stride_4_like_conv1() {
    blas::set_single_thread();
    let spec = PqSpec { d: 8, k: 128 };
    // 43 → 9 output columns, 51 → 11 rows; a ragged last window on the right.
    let p = Problem::new(conv(3, 51, 45, 6, 11, 4, 0, 1), spec, 3, false);
    p.check();
    // Codeword chunks, phase-plane chunks (a ragged last one: 16 = 3 · 5 + 1), and both.
    for (chunk_k, chunk_phases) in [(20, 16), (128, 2), (128, 5), (20, 3)] {
        p.clone()
            .with_plan(ConvPlan {
                band_rows: 2,
                chunk_k,
                chunk_phases,
                block_rows: 1,
                table_subspaces: 1,
            })
            .check();
    }
    Problem::new(conv(3, 51, 45, 6, 11, 4, 0, 1), spec, 4, true).check_exact();
}

/// AlexNet's five conv layers at full size with the default plans (conv1 in bands and
/// chunks), one scratch shared across layers as in the network.
#[test]
fn alexnet_conv_layers_match_reference() {
    blas::set_single_thread();
    let spec = PqSpec { d: 8, k: 128 };
    let layers = [
        conv(3, 227, 227, 96, 11, 4, 0, 1),
        conv(96, 27, 27, 256, 5, 1, 2, 2),
        conv(256, 13, 13, 384, 3, 1, 1, 1),
        conv(384, 13, 13, 384, 3, 1, 1, 2),
        conv(384, 13, 13, 256, 3, 1, 1, 2),
    ];
    let mut scratch = ConvScratch::default();
    for (n, shape) in layers.into_iter().enumerate() {
        let p = Problem::new(shape, spec, 100 + n as u64, false);
        let (want, mag) = (p.reference(), p.magnitude());
        for isa in Isa::available() {
            let lut = p.lut(isa).unwrap();
            assert_eq!(lut.plan(), default_plan(Target::for_isa(isa), shape, spec));
            let got = p.run(&lut, &mut scratch);
            assert_within(&got, &want, &mag, &format!("conv{} {isa}", n + 1));
        }
    }
}

/// AlexNet's conv1 with the plans of 512 KB, 1 MB and 2 MB L2s (1 or 2 phase planes per
/// chunk, bands of 5 or 8 rows with a shorter last one), every ISA.
#[test]
fn alexnet_conv1_matches_reference_with_each_l2_plan() {
    blas::set_single_thread();
    let spec = PqSpec { d: 8, k: 128 };
    let shape = conv(3, 227, 227, 96, 11, 4, 0, 1);
    let p = Problem::new(shape, spec, 150, false);
    let (want, mag) = (p.reference(), p.magnitude());
    let mut scratch = ConvScratch::default();
    for l2 in [512 << 10, 1 << 20, 2 << 20] {
        for isa in Isa::available() {
            let caches = CacheSizes {
                l1d: 48 << 10,
                l2,
                l3: 32 << 20,
            };
            let plan = default_plan(Target::new(isa, caches), shape, spec);
            let lut = p.clone().with_plan(plan).lut(isa).unwrap();
            let got = p.run(&lut, &mut scratch);
            assert_within(&got, &want, &mag, &format!("conv1 {isa} {plan:?}"));
        }
    }
}

/// The conv shapes CNN-S and VGG-16 add to AlexNet's (the paper's other networks), at full
/// size with the default plans, every ISA, one scratch shared as in the network: CNN-S's
/// 7×7 stride-2 conv1 on 224×224 and its 5×5 pad-1 conv2; VGG-16's 3-channel conv1_1, its
/// 224×224×64 maps (conv1_2) and a 3×3 stride-1 conv with 512 channels (conv5_1 size).
#[test]
fn paper_network_conv_layers_match_reference() {
    blas::set_single_thread();
    let spec = PqSpec { d: 8, k: 128 };
    let layers = [
        ("cnn-s conv1", conv(3, 224, 224, 96, 7, 2, 0, 1)),
        ("cnn-s conv2", conv(96, 37, 37, 256, 5, 1, 1, 1)),
        ("cnn-s conv3", conv(256, 18, 18, 512, 3, 1, 1, 1)),
        ("vgg16 conv1_1", conv(3, 224, 224, 64, 3, 1, 1, 1)),
        ("vgg16 conv1_2", conv(64, 224, 224, 64, 3, 1, 1, 1)),
        ("vgg16 conv5_1", conv(512, 14, 14, 512, 3, 1, 1, 1)),
    ];
    let mut scratch = ConvScratch::default();
    for (n, (name, shape)) in layers.into_iter().enumerate() {
        let p = Problem::new(shape, spec, 200 + n as u64, false);
        let (want, mag) = (p.reference(), p.magnitude());
        for isa in Isa::available() {
            let lut = p.lut(isa).unwrap();
            assert_eq!(lut.plan(), default_plan(Target::for_isa(isa), shape, spec));
            let got = p.run(&lut, &mut scratch);
            assert_within(&got, &want, &mag, &format!("{name} {isa} {:?}", lut.plan()));
        }
    }
}

#[test]
fn scratch_is_reused_across_shapes() {
    blas::set_single_thread();
    let big = Problem::new(
        conv(16, 20, 30, 8, 5, 1, 2, 2),
        PqSpec { d: 4, k: 64 },
        7,
        true,
    );
    let small = Problem::new(
        conv(3, 5, 6, 2, 3, 2, 1, 1),
        PqSpec { d: 2, k: 16 },
        8,
        true,
    );
    for isa in Isa::available() {
        let (lb, ls) = (big.lut(isa).unwrap(), small.lut(isa).unwrap());
        let mut scratch = ConvScratch::default();
        for _ in 0..2 {
            assert_eq!(
                small.run(&ls, &mut scratch),
                small.reference(),
                "{isa} small"
            );
            assert_eq!(big.run(&lb, &mut scratch), big.reference(), "{isa} big");
        }
    }
}

#[test]
fn phases_alternate_and_end_with_lookup() {
    blas::set_single_thread();
    let p = Problem::new(
        conv(8, 9, 9, 4, 3, 1, 1, 2),
        PqSpec { d: 4, k: 16 },
        9,
        false,
    )
    .with_plan(ConvPlan {
        band_rows: 4,
        chunk_k: 8,
        chunk_phases: 1,
        block_rows: 2,
        table_subspaces: 1,
    });
    let lut = p.lut(Isa::Scalar).unwrap();
    let mut phases = Vec::new();
    let mut y = vec![0.0; p.shape.output_len()];
    lut.forward(&p.x, &mut y, &mut ConvScratch::default(), &mut |ph| {
        phases.push(ph)
    });
    // 3 bands × 2 groups × 1 subspace × 2 chunks tables, each followed by its look-ups.
    assert_eq!(phases.len(), 2 * 3 * 2 * 2);
    assert!(phases.chunks(2).all(|w| w == [Phase::Table, Phase::Lookup]));
}

#[test]
fn index_not_below_k_is_an_error() {
    let mut p = Problem::new(
        conv(5, 4, 4, 3, 2, 1, 0, 1),
        PqSpec { d: 2, k: 16 },
        10,
        false,
    );
    p.assignments[17] = 16;
    assert_eq!(
        p.lut(Isa::Scalar).unwrap_err(),
        LutError::IndexOutOfRange {
            position: 17,
            value: 16,
            k: 16
        }
    );
    p.assignments[17] = 255;
    assert!(matches!(
        p.lut(Isa::Scalar),
        Err(LutError::IndexOutOfRange { value: 255, .. })
    ));
}

#[test]
fn wrong_lengths_and_shapes_are_errors() {
    let p = Problem::new(
        conv(5, 4, 4, 3, 2, 1, 0, 1),
        PqSpec { d: 2, k: 16 },
        11,
        false,
    );
    let (s, spec, t) = (p.shape, p.spec, Target::for_isa(Isa::Scalar));
    let short = &p.centroids[1..];
    assert!(matches!(
        ConvLut::new(t, s, spec, short, &p.assignments, &p.bias),
        Err(LutError::Length { .. })
    ));
    let short = &p.assignments[1..];
    assert!(matches!(
        ConvLut::new(t, s, spec, &p.centroids, short, &p.bias),
        Err(LutError::Length { .. })
    ));
    assert!(matches!(
        ConvLut::new(t, s, spec, &p.centroids, &p.assignments, &[]),
        Err(LutError::Length { .. })
    ));
    let bad = ConvShape { groups: 2, ..s };
    assert!(matches!(
        ConvLut::new(t, bad, spec, &p.centroids, &p.assignments, &p.bias),
        Err(LutError::Spec(_))
    ));
    let bad = ConvShape { kernel: 9, ..s };
    assert!(matches!(
        ConvLut::new(t, bad, spec, &p.centroids, &p.assignments, &p.bias),
        Err(LutError::Spec(_))
    ));
    let bad = PqSpec { d: 0, k: 16 };
    assert!(matches!(
        ConvLut::new(t, s, bad, &p.centroids, &p.assignments, &p.bias),
        Err(LutError::Spec(_))
    ));
}

#[test]
fn kernel_names() {
    assert_eq!(ConvLut::name(Isa::Scalar), "conv-lut-f32-scalar");
    assert_eq!(ConvLut::name(Isa::Avx2), "conv-lut-f32-avx2");
    assert_eq!(ConvLut::name(Isa::Avx512), "conv-lut-f32-avx512");
    assert_eq!(ConvLut::name(Isa::Neon), "conv-lut-f32-neon");
    let p = Problem::new(
        conv(5, 4, 4, 3, 2, 1, 0, 1),
        PqSpec { d: 2, k: 16 },
        1,
        false,
    );
    for isa in Isa::available() {
        assert_eq!(p.lut(isa).unwrap().kernel_name(), ConvLut::name(isa));
    }
}

/// Every level CI requires (`QCNN_REQUIRE_ISA`, set by `.ci/run` from /proc/cpuinfo) is
/// among the levels this suite tests, `Isa::available()` (common/mod.rs).
#[test]
fn required_isa_levels_are_tested() {
    common::tested_levels("conv-lut-f32", common::REQUIRE, Isa::available());
}

// ---------------------------------------------------------------- authors' golden outputs

/// Agreement with the authors' own quantized-mode outputs (docs/METHOD.md: ≈ 1e-5,
/// max |a − b| / max |b| per layer, summation order explains the rest).
const GOLDEN_TOL: f32 = 1e-5;

/// /work/shared, or QCNN_SHARED.
fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("QCNN_SHARED")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

/// A `.bin` array (FORMAT.md): int32 n, n int32 dims, then the elements (f32 here).
fn read_bin(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let int = |k: usize| i32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    let dims: Vec<usize> = (0..int(0)).map(|k| int(1 + k)).collect();
    let data = bytes[4 + 4 * dims.len()..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(
        data.len(),
        dims.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (dims, data)
}

/// A `.cbn` array (FORMAT.md): dims, bits b, then 4096-byte blocks of ⌊32768 / b⌋ indices
/// packed MSB-first.
fn read_cbn(path: &std::path::Path) -> (Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let int = |k: usize| i32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap()) as usize;
    let dims: Vec<usize> = (0..int(0)).map(|k| int(1 + k)).collect();
    let bits = int(1 + dims.len());
    let count: usize = dims.iter().product();
    let per_block = 32768 / bits;
    let body = &bytes[4 * (2 + dims.len())..];
    let values = (0..count)
        .map(|n| {
            let block = &body[(n / per_block) * 4096..][..4096];
            let first_bit = (n % per_block) * bits;
            (0..bits).fold(0u8, |v, k| {
                let bit = first_bit + k;
                (v << 1) | ((block[bit / 8] >> (7 - bit % 8)) & 1)
            })
        })
        .collect();
    (dims, values)
}

/// Each conv layer of the authors' AlexNet on the golden image's input to that layer, at every
/// ISA, against the authors' own look-up-table output for it.
#[test]
fn authors_alexnet_conv_layers_match_golden_outputs() {
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
    blas::set_single_thread();
    let relu = |v: Vec<f32>| v.into_iter().map(|a| a.max(0.0)).collect::<Vec<_>>();
    let layers = [
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
    let mut scratch = ConvScratch::default();
    for (nn, name, shape, x) in layers {
        let file =
            |kind: &str, ext: &str| model.join(format!("bvlc_alexnet_aCaF.{kind}.{nn}.{ext}"));
        let (cdims, centroids) = read_bin(&file("ctrdLst", "bin"));
        let (_, assignments) = read_cbn(&file("asmtLst", "cbn"));
        let (_, bias) = read_bin(&file("biasVec", "bin"));
        let spec = PqSpec {
            d: cdims[2],
            k: cdims[1],
        };
        let want = read_bin(&golden.join(format!("{name}.bin"))).1;
        let max_want = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for isa in Isa::available() {
            let target = Target::for_isa(isa);
            let lut =
                ConvLut::new(target, shape, spec, &centroids, &assignments, &bias).expect(name);
            let mut y = vec![f32::NAN; shape.output_len()];
            lut.forward(&x, &mut y, &mut scratch, &mut |_| {});
            let err = y
                .iter()
                .zip(&want)
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()))
                / max_want;
            eprintln!("{name} {isa}: max |Δ| / max |golden| = {err:.2e}");
            assert!(
                err <= GOLDEN_TOL,
                "{name} {isa}: relative error {err:e} > {GOLDEN_TOL:e}"
            );
        }
    }
}
