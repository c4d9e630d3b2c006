//! The performance gate: instruction counts (callgrind `Ir`) of the key kernels on AlexNet's
//! layers and of one whole quantized forward pass, measured by gungraun under valgrind.
//!
//! Run it through `ci/gate.sh`, which installs the runner, runs this file and compares the
//! counts with `results/gate-baseline.json`. By hand:
//! `cargo bench -p qcnn-gate --bench gate -- --output-format=json`.
//!
//! Gate keys (the baseline's IDs) are `<id>/<function>` with `_` read as `-`: e.g.
//! `conv3/conv-lut-f32-avx2`, `fc6/sgemv-openblas`, `norm1/lrn-avx2`, `alexnet/qcnn-avx2`:
//! the layer and the kernel's own name (`ConvLut::kernel_name`, `lrn_kernel_name`, …).
//!
//! Why the counts are repeatable: every ISA is forced (valgrind 3.19 has no AVX-512, so the
//! gate covers scalar and AVX2; a missing level fails the setup, it is never skipped),
//! OpenBLAS's core type and thread count are fixed by the config below and the rest of the
//! environment is cleared, inputs come from seeded ChaCha8 streams, and each case is run once
//! untimed in its setup so that the measured call allocates nothing and finds the CPU-feature
//! cache filled. Only the benchmark function is counted (gungraun's toggle); the setup that
//! builds the case and the drop of the returned case are not.
//!
//! Self-test hook: a key listed in `QCNN_GATE_SLOW` (comma-separated) runs its kernel twice
//! in the measured call — a deliberately slowed kernel. The variable is read in the setup,
//! so the measured code is the same whether or not it is set.

use std::hint::black_box;

use gungraun::{
    library_benchmark, library_benchmark_group, main, Callgrind, LibraryBenchmarkConfig,
};
use qcnn_kernels::dense::{self, LrnParams, LrnScratch, PoolScratch, PoolShape};
use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::{FcI16Scratch, FcLut, FcLutI16, FcScratch};
use qcnn_kernels::lut::int8::{ConvI8Scratch, ConvLutI8};
use qcnn_kernels::{blas, ConvShape, FcShape, Isa, PqSpec, Target};
use qcnn_model::arch::{alexnet, authors_quantization, ParamShape};
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{Architecture, LayerKind};
use qcnn_quantized::{QuantizedNetwork, TableKind};
use qcnn_runner::NoObserver;
use qcnn_runner::{conv_shape, fc_shape, lrn_params, pool_shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Comma-separated gate keys whose kernel runs twice in the measured call (self-test).
const SLOW_ENV: &str = "QCNN_GATE_SLOW";

/// How often the measured call runs the kernel of `key`: 2 if the self-test slows it, else 1.
fn repeats(key: &str) -> usize {
    let slow = std::env::var(SLOW_ENV).unwrap_or_default();
    if slow.split(',').any(|k| k.trim() == key) {
        eprintln!("{SLOW_ENV}: {key} runs twice (deliberately slowed)");
        2
    } else {
        1
    }
}

/// The ISA a case was asked for; failing here (not skipping) is what keeps the gate honest.
fn forced(isa: Isa) -> Isa {
    blas::set_single_thread();
    isa.require()
        .unwrap_or_else(|e| panic!("the gate forces {isa}: {e}"))
}

/// A seeded stream per layer, so each case is reproducible alone.
fn rng(layer: &str) -> ChaCha8Rng {
    let seed = layer
        .bytes()
        .fold(DEFAULT_SEED, |s, b| s.wrapping_mul(31) ^ u64::from(b));
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// The conv or fc layer `name` of AlexNet, and its PQ spec in the authors' configuration.
fn param_layer(arch: &Architecture, name: &str) -> (ParamShape, PqSpec) {
    let specs = authors_quantization(arch);
    arch.param_layers()
        .into_iter()
        .zip(specs)
        .find(|(p, _)| arch.layers[p.index].name == name)
        .map(|(p, q)| (p, PqSpec { d: q.d, k: q.k }))
        .unwrap_or_else(|| panic!("AlexNet has no conv/fc layer {name}"))
}

/// Random codebooks, Layout (M, K, d), and assignments, Layout (C_t, kh, kw, M) for conv or
/// (C_t, M) for fc, in range.
fn codebooks(rng: &mut ChaCha8Rng, spec: PqSpec, m: usize, rows: usize) -> (Vec<f32>, Vec<u8>) {
    let centroids = uniform(rng, m * spec.k * spec.d, 0.05);
    let assignments = (0..rows * m)
        .map(|_| rng.random_range(0..spec.k) as u8)
        .collect();
    (centroids, assignments)
}

/// One look-up conv layer, ready to run: Layouts x (C_s, H_s, W_s), y (C_t, H_t, W_t).
struct ConvCase {
    lut: ConvLut,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: ConvScratch,
    repeats: usize,
}

impl ConvCase {
    fn run(&mut self) {
        let ConvCase {
            lut, x, y, scratch, ..
        } = self;
        lut.forward(black_box(x), y, scratch, &mut |_| {});
    }
}

fn conv_case(layer: &str, isa: Isa) -> ConvCase {
    let isa = forced(isa);
    let (p, spec) = param_layer(&alexnet(), layer);
    let shape = conv_shape(&p);
    let mut rng = rng(layer);
    let m = spec.subspaces(shape.c_in_group());
    let (centroids, assignments) =
        codebooks(&mut rng, spec, m, shape.c_out * shape.kernel * shape.kernel);
    let bias = uniform(&mut rng, shape.c_out, 1.0);
    let target = Target::for_isa(isa);
    let lut =
        ConvLut::new(target, shape, spec, &centroids, &assignments, &bias).expect("valid layer");
    let mut case = ConvCase {
        repeats: repeats(&format!("{layer}/{}", lut.kernel_name())),
        lut,
        x: uniform(&mut rng, shape.input_len(), 50.0),
        y: vec![0.0; shape.output_len()],
        scratch: ConvScratch::default(),
    };
    case.run();
    case
}

/// One int8-table look-up conv layer (the approximate family), like [`ConvCase`].
struct ConvI8Case {
    lut: ConvLutI8,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: ConvI8Scratch,
    repeats: usize,
}

impl ConvI8Case {
    fn run(&mut self) {
        let ConvI8Case {
            lut, x, y, scratch, ..
        } = self;
        lut.forward(black_box(x), y, scratch, &mut |_| {});
    }
}

fn conv_i8_case(layer: &str, isa: Isa) -> ConvI8Case {
    let isa = forced(isa);
    let (p, spec) = param_layer(&alexnet(), layer);
    let shape = conv_shape(&p);
    let mut rng = rng(layer);
    let m = spec.subspaces(shape.c_in_group());
    let (centroids, assignments) =
        codebooks(&mut rng, spec, m, shape.c_out * shape.kernel * shape.kernel);
    let bias = uniform(&mut rng, shape.c_out, 1.0);
    let target = Target::for_isa(isa);
    let lut =
        ConvLutI8::new(target, shape, spec, &centroids, &assignments, &bias).expect("valid layer");
    let mut case = ConvI8Case {
        repeats: repeats(&format!("{layer}/{}", lut.kernel_name())),
        lut,
        x: uniform(&mut rng, shape.input_len(), 50.0),
        y: vec![0.0; shape.output_len()],
        scratch: ConvI8Scratch::default(),
    };
    case.run();
    case
}

/// One look-up fc layer: Layouts x (C_s), y (C_t); `scratch` holds the table.
struct FcCase {
    lut: FcLut,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: FcScratch,
    repeats: usize,
}

impl FcCase {
    fn run(&mut self) {
        let FcCase {
            lut, x, y, scratch, ..
        } = self;
        lut.forward(black_box(x), y, scratch, &mut |_| {});
    }
}

/// AlexNet's fc layer `layer` with seeded codebooks, assignments, bias and input:
/// (shape, spec, centroids, assignments, bias, x).
fn fc_inputs(layer: &str) -> (FcShape, PqSpec, Vec<f32>, Vec<u8>, Vec<f32>, Vec<f32>) {
    let (p, spec) = param_layer(&alexnet(), layer);
    let shape = fc_shape(&p);
    let mut rng = rng(layer);
    let m = spec.subspaces(shape.c_in);
    let (centroids, assignments) = codebooks(&mut rng, spec, m, shape.c_out);
    let bias = uniform(&mut rng, shape.c_out, 1.0);
    let x = uniform(&mut rng, shape.c_in, 5.0);
    (shape, spec, centroids, assignments, bias, x)
}

fn fc_case(layer: &str, isa: Isa) -> FcCase {
    let target = Target::for_isa(forced(isa));
    let (shape, spec, centroids, assignments, bias, x) = fc_inputs(layer);
    let lut =
        FcLut::new(target, shape, spec, &centroids, &assignments, &bias).expect("valid layer");
    let mut case = FcCase {
        repeats: repeats(&format!("{layer}/{}", lut.kernel_name())),
        lut,
        x,
        y: vec![0.0; shape.c_out],
        scratch: FcScratch::default(),
    };
    case.run();
    case
}

/// The same layer with i16 tables (the int8 mode's fc where they pay).
struct FcI16Case {
    lut: FcLutI16,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: FcI16Scratch,
    repeats: usize,
}

impl FcI16Case {
    fn run(&mut self) {
        let FcI16Case {
            lut, x, y, scratch, ..
        } = self;
        lut.forward(black_box(x), y, scratch, &mut |_| {});
    }
}

fn fc_i16_case(layer: &str, isa: Isa) -> FcI16Case {
    let target = Target::for_isa(forced(isa));
    let (shape, spec, centroids, assignments, bias, x) = fc_inputs(layer);
    let lut =
        FcLutI16::new(target, shape, spec, &centroids, &assignments, &bias).expect("valid layer");
    let mut case = FcI16Case {
        repeats: repeats(&format!("{layer}/{}", lut.kernel_name())),
        lut,
        x,
        y: vec![0.0; shape.c_out],
        scratch: FcI16Scratch::default(),
    };
    case.run();
    case
}

/// The dense conv (im2col + OpenBLAS sgemm). Layouts: weights (C_t, C_s/groups, kh, kw).
struct DenseConvCase {
    shape: ConvShape,
    weights: Vec<f32>,
    bias: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: dense::ConvScratch,
    repeats: usize,
}

impl DenseConvCase {
    fn run(&mut self) {
        let c = self;
        dense::conv(
            &c.shape,
            &c.weights,
            &c.bias,
            black_box(&c.x),
            &mut c.y,
            &mut c.scratch,
        );
    }
}

fn dense_conv_case(layer: &str) -> DenseConvCase {
    forced(Isa::Scalar);
    let (p, _) = param_layer(&alexnet(), layer);
    let shape = conv_shape(&p);
    let mut rng = rng(layer);
    let taps = shape.c_in_group() * shape.kernel * shape.kernel;
    let mut case = DenseConvCase {
        shape,
        weights: uniform(&mut rng, shape.c_out * taps, 0.05),
        bias: uniform(&mut rng, shape.c_out, 1.0),
        x: uniform(&mut rng, shape.input_len(), 50.0),
        y: vec![0.0; shape.output_len()],
        scratch: dense::ConvScratch::for_shape(&shape),
        repeats: repeats(&format!("{layer}/{}", dense::CONV_KERNEL)),
    };
    case.run();
    case
}

/// The dense fc (OpenBLAS sgemv). Layout: weights (C_t, C_s).
struct DenseFcCase {
    shape: FcShape,
    weights: Vec<f32>,
    bias: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    repeats: usize,
}

impl DenseFcCase {
    fn run(&mut self) {
        let c = self;
        dense::fc(&c.shape, &c.weights, &c.bias, black_box(&c.x), &mut c.y);
    }
}

fn dense_fc_case(layer: &str) -> DenseFcCase {
    forced(Isa::Scalar);
    let (p, _) = param_layer(&alexnet(), layer);
    let shape = fc_shape(&p);
    let mut rng = rng(layer);
    // sgemv's instruction count does not depend on the values: one random row, repeated, is
    // as good as 38 M random weights and far cheaper to make under valgrind.
    let row = uniform(&mut rng, shape.c_in, 0.01);
    let mut case = DenseFcCase {
        shape,
        weights: row.repeat(shape.c_out),
        bias: uniform(&mut rng, shape.c_out, 1.0),
        x: uniform(&mut rng, shape.c_in, 5.0),
        y: vec![0.0; shape.c_out],
        repeats: repeats(&format!("{layer}/{}", dense::FC_KERNEL)),
    };
    case.run();
    case
}

/// LRN on the ReLU'd input of norm1/norm2: Layout (C, H·W).
struct LrnCase {
    params: LrnParams,
    isa: Isa,
    channels: usize,
    pixels: usize,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: LrnScratch,
    repeats: usize,
}

impl LrnCase {
    fn run(&mut self) {
        let c = self;
        let (channels, pixels) = (c.channels, c.pixels);
        dense::lrn(
            &c.params,
            c.isa,
            channels,
            pixels,
            black_box(&c.x),
            &mut c.y,
            &mut c.scratch,
        );
    }
}

fn lrn_case(layer: &str, isa: Isa) -> LrnCase {
    let isa = forced(isa);
    let arch = alexnet();
    let index = arch.position(layer).expect("an AlexNet layer");
    let LayerKind::Lrn(spec) = arch.layers[index].kind else {
        panic!("{layer} is not an LRN layer")
    };
    let input = arch.input_of(index);
    let pixels = input.h * input.w;
    let mut x = uniform(&mut rng(layer), input.c * pixels, 60.0);
    dense::relu(&mut x);
    let mut case = LrnCase {
        params: lrn_params(spec),
        isa,
        channels: input.c,
        pixels,
        y: vec![0.0; x.len()],
        x,
        scratch: LrnScratch::for_pixels(pixels),
        repeats: repeats(&format!("{layer}/{}", dense::lrn_kernel_name(isa))),
    };
    case.run();
    case
}

/// Max pooling: Layouts x (C, H_s, W_s), y (C, H_t, W_t).
struct PoolCase {
    shape: PoolShape,
    isa: Isa,
    x: Vec<f32>,
    y: Vec<f32>,
    scratch: PoolScratch,
    repeats: usize,
}

impl PoolCase {
    fn run(&mut self) {
        let c = self;
        dense::max_pool(&c.shape, c.isa, black_box(&c.x), &mut c.y, &mut c.scratch);
    }
}

fn pool_case(layer: &str, isa: Isa) -> PoolCase {
    let isa = forced(isa);
    let arch = alexnet();
    let index = arch.position(layer).expect("an AlexNet layer");
    let LayerKind::MaxPool(spec) = arch.layers[index].kind else {
        panic!("{layer} is not a max-pooling layer")
    };
    let shape = pool_shape(arch.input_of(index), spec);
    let mut case = PoolCase {
        shape,
        isa,
        x: uniform(&mut rng(layer), shape.input_len(), 50.0),
        y: vec![0.0; shape.output_len()],
        scratch: PoolScratch::for_shapes([&shape]),
        repeats: repeats(&format!("{layer}/{}", dense::pool_kernel_name(isa))),
    };
    case.run();
    case
}

/// One image through the whole quantized AlexNet (the embedded synthetic model, seeded).
/// Note: the pipeline's LRN runs at `Isa::detect()`, which under valgrind 3.19 is AVX2.
struct ForwardCase {
    net: QuantizedNetwork,
    image: Vec<f32>,
    repeats: usize,
}

impl ForwardCase {
    fn run(&mut self) {
        use qcnn_runner::Network;
        black_box(self.net.forward(black_box(&self.image), &mut NoObserver));
    }
}

fn forward_case(isa: Isa, tables: TableKind) -> ForwardCase {
    let isa = forced(isa);
    let model = synthetic_model(DEFAULT_SEED);
    let net =
        QuantizedNetwork::new(&model, Target::for_isa(isa), tables).expect("the synthetic model");
    let mut case = ForwardCase {
        net,
        image: synthetic_image(DEFAULT_SEED, 0),
        repeats: repeats(&format!("alexnet/{}-{isa}", tables.mode())),
    };
    case.run();
    case
}

// Each function is one kernel; each bench ID one layer. The measured call runs the kernel
// `repeats` times (1 unless the self-test slows it) and returns the case, so that freeing
// its buffers is not counted.

macro_rules! measured {
    ($case:ident) => {{
        for _ in 0..$case.repeats {
            $case.run();
        }
        $case
    }};
}

#[library_benchmark]
#[bench::conv1(args = ("conv1", Isa::Scalar), setup = conv_case)]
#[bench::conv2(args = ("conv2", Isa::Scalar), setup = conv_case)]
#[bench::conv3(args = ("conv3", Isa::Scalar), setup = conv_case)]
#[bench::conv4(args = ("conv4", Isa::Scalar), setup = conv_case)]
#[bench::conv5(args = ("conv5", Isa::Scalar), setup = conv_case)]
fn conv_lut_f32_scalar(mut case: ConvCase) -> ConvCase {
    measured!(case)
}

#[library_benchmark]
#[bench::conv1(args = ("conv1", Isa::Avx2), setup = conv_case)]
#[bench::conv2(args = ("conv2", Isa::Avx2), setup = conv_case)]
#[bench::conv3(args = ("conv3", Isa::Avx2), setup = conv_case)]
#[bench::conv4(args = ("conv4", Isa::Avx2), setup = conv_case)]
#[bench::conv5(args = ("conv5", Isa::Avx2), setup = conv_case)]
fn conv_lut_f32_avx2(mut case: ConvCase) -> ConvCase {
    measured!(case)
}

#[library_benchmark]
#[bench::conv1(args = ("conv1", Isa::Scalar), setup = conv_i8_case)]
#[bench::conv2(args = ("conv2", Isa::Scalar), setup = conv_i8_case)]
#[bench::conv3(args = ("conv3", Isa::Scalar), setup = conv_i8_case)]
#[bench::conv4(args = ("conv4", Isa::Scalar), setup = conv_i8_case)]
#[bench::conv5(args = ("conv5", Isa::Scalar), setup = conv_i8_case)]
fn conv_lut_i8_scalar(mut case: ConvI8Case) -> ConvI8Case {
    measured!(case)
}

#[library_benchmark]
#[bench::conv1(args = ("conv1", Isa::Avx2), setup = conv_i8_case)]
#[bench::conv2(args = ("conv2", Isa::Avx2), setup = conv_i8_case)]
#[bench::conv3(args = ("conv3", Isa::Avx2), setup = conv_i8_case)]
#[bench::conv4(args = ("conv4", Isa::Avx2), setup = conv_i8_case)]
#[bench::conv5(args = ("conv5", Isa::Avx2), setup = conv_i8_case)]
fn conv_lut_i8_avx2(mut case: ConvI8Case) -> ConvI8Case {
    measured!(case)
}

#[library_benchmark]
#[bench::fc6(args = ("fc6", Isa::Scalar), setup = fc_case)]
#[bench::fc7(args = ("fc7", Isa::Scalar), setup = fc_case)]
#[bench::fc8(args = ("fc8", Isa::Scalar), setup = fc_case)]
fn fc_lut_f32_scalar(mut case: FcCase) -> FcCase {
    measured!(case)
}

#[library_benchmark]
#[bench::fc6(args = ("fc6", Isa::Avx2), setup = fc_case)]
#[bench::fc7(args = ("fc7", Isa::Avx2), setup = fc_case)]
#[bench::fc8(args = ("fc8", Isa::Avx2), setup = fc_case)]
fn fc_lut_f32_avx2(mut case: FcCase) -> FcCase {
    measured!(case)
}

#[library_benchmark]
#[bench::fc6(args = ("fc6", Isa::Scalar), setup = fc_i16_case)]
#[bench::fc7(args = ("fc7", Isa::Scalar), setup = fc_i16_case)]
#[bench::fc8(args = ("fc8", Isa::Scalar), setup = fc_i16_case)]
fn fc_lut_i16_scalar(mut case: FcI16Case) -> FcI16Case {
    measured!(case)
}

#[library_benchmark]
#[bench::fc6(args = ("fc6", Isa::Avx2), setup = fc_i16_case)]
#[bench::fc7(args = ("fc7", Isa::Avx2), setup = fc_i16_case)]
#[bench::fc8(args = ("fc8", Isa::Avx2), setup = fc_i16_case)]
fn fc_lut_i16_avx2(mut case: FcI16Case) -> FcI16Case {
    measured!(case)
}

#[library_benchmark]
#[bench::conv1(args = ("conv1"), setup = dense_conv_case)]
#[bench::conv2(args = ("conv2"), setup = dense_conv_case)]
#[bench::conv3(args = ("conv3"), setup = dense_conv_case)]
#[bench::conv4(args = ("conv4"), setup = dense_conv_case)]
#[bench::conv5(args = ("conv5"), setup = dense_conv_case)]
fn sgemm_openblas(mut case: DenseConvCase) -> DenseConvCase {
    measured!(case)
}

#[library_benchmark]
#[bench::fc6(args = ("fc6"), setup = dense_fc_case)]
#[bench::fc7(args = ("fc7"), setup = dense_fc_case)]
#[bench::fc8(args = ("fc8"), setup = dense_fc_case)]
fn sgemv_openblas(mut case: DenseFcCase) -> DenseFcCase {
    measured!(case)
}

#[library_benchmark]
#[bench::norm1(args = ("norm1", Isa::Scalar), setup = lrn_case)]
#[bench::norm2(args = ("norm2", Isa::Scalar), setup = lrn_case)]
fn lrn_scalar(mut case: LrnCase) -> LrnCase {
    measured!(case)
}

#[library_benchmark]
#[bench::norm1(args = ("norm1", Isa::Avx2), setup = lrn_case)]
#[bench::norm2(args = ("norm2", Isa::Avx2), setup = lrn_case)]
fn lrn_avx2(mut case: LrnCase) -> LrnCase {
    measured!(case)
}

#[library_benchmark]
#[bench::pool1(args = ("pool1", Isa::Scalar), setup = pool_case)]
#[bench::pool2(args = ("pool2", Isa::Scalar), setup = pool_case)]
#[bench::pool5(args = ("pool5", Isa::Scalar), setup = pool_case)]
fn pool_scalar(mut case: PoolCase) -> PoolCase {
    measured!(case)
}

#[library_benchmark]
#[bench::pool1(args = ("pool1", Isa::Avx2), setup = pool_case)]
#[bench::pool2(args = ("pool2", Isa::Avx2), setup = pool_case)]
#[bench::pool5(args = ("pool5", Isa::Avx2), setup = pool_case)]
fn pool_avx2(mut case: PoolCase) -> PoolCase {
    measured!(case)
}

#[library_benchmark]
#[bench::alexnet(args = (Isa::Scalar, TableKind::F32), setup = forward_case)]
fn qcnn_scalar(mut case: ForwardCase) -> ForwardCase {
    measured!(case)
}

#[library_benchmark]
#[bench::alexnet(args = (Isa::Avx2, TableKind::F32), setup = forward_case)]
fn qcnn_avx2(mut case: ForwardCase) -> ForwardCase {
    measured!(case)
}

#[library_benchmark]
#[bench::alexnet(args = (Isa::Avx2, TableKind::Int8), setup = forward_case)]
fn qcnn_int8_avx2(mut case: ForwardCase) -> ForwardCase {
    measured!(case)
}

library_benchmark_group!(
    name = lookup,
    benchmarks = [
        conv_lut_f32_scalar,
        conv_lut_f32_avx2,
        conv_lut_i8_scalar,
        conv_lut_i8_avx2,
        fc_lut_f32_scalar,
        fc_lut_f32_avx2,
        fc_lut_i16_scalar,
        fc_lut_i16_avx2
    ]
);

library_benchmark_group!(
    name = dense_ops,
    benchmarks = [
        sgemm_openblas,
        sgemv_openblas,
        lrn_scalar,
        lrn_avx2,
        pool_scalar,
        pool_avx2
    ]
);

library_benchmark_group!(
    name = network,
    benchmarks = [qcnn_scalar, qcnn_avx2, qcnn_int8_avx2]
);

main!(
    config = LibraryBenchmarkConfig::default()
        .env_clear(true)
        // OpenBLAS picks its kernels from this at load time: AVX2 kernels, which valgrind
        // runs (its AVX-512 ones would die with SIGILL), and one thread.
        .envs([("OPENBLAS_CORETYPE", "Haswell"), ("OPENBLAS_NUM_THREADS", "1")])
        .pass_through_env(SLOW_ENV)
        // Only `Ir` is gated: the cache simulation would only add run time.
        .tool(Callgrind::with_args(["--cache-sim=no"]));
    library_benchmark_groups = lookup, dense_ops, network
);
