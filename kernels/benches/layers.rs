//! Every AlexNet layer, in network order: the dense baseline's kernel and each look-up kernel
//! at every ISA this CPU runs, on the layer's real geometry (random values of realistic
//! magnitude, codebooks in the authors' configuration, dense weights rebuilt from them).
//!
//! Run pinned, with OpenBLAS's AVX-512 kernels:
//! `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo bench -p qcnn-kernels --bench layers`
//! Compare runs locally with criterion's baselines:
//! `… --bench layers -- --save-baseline before`, change code, `… -- --baseline before`;
//! a filter selects layers or kernels, e.g. `-- conv3/` or `-- avx2`.
//! Wall-clock times move by ±20 % between runs on a shared machine: CI gates on instruction
//! counts instead (`ci/gate.sh`), never on these.
//!
//! IDs: `<layer>/<kernel>`, the layer's name in AlexNet and the kernel's own name:
//! conv: `sgemm-openblas` (im2col + sgemm, the dense baseline) and `conv-lut-f32-<isa>`;
//! fc: `sgemv-openblas` and `fc-lut-f32-<isa>`; relu: `relu`; norm: `lrn-<isa>`;
//! pool: `pool-<isa>`; prob: `softmax`. drop6/drop7 are the identity at test time: no bench.
//! Inputs and weights stay in cache between back-to-back calls where they fit (fc6's 151 MB
//! of dense weights never do; see `lut_fc.rs` for cold-cache figures).

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use qcnn_kernels::dense::{
    self, lrn_kernel_name, pool_kernel_name, LrnParams, LrnScratch, PoolScratch, PoolShape,
    CONV_KERNEL, FC_KERNEL,
};
use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::fc::{FcLut, FcScratch};
use qcnn_kernels::{blas, ConvShape, FcShape, Isa, PqSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The authors' quantization (METHOD.md): conv layers d = 8, K = 128.
const CONV_SPEC: PqSpec = PqSpec { d: 8, k: 128 };
/// fc6 and fc7: d = 4, K = 32.
const FC67_SPEC: PqSpec = PqSpec { d: 4, k: 32 };
/// fc8: d = 1, K = 16.
const FC8_SPEC: PqSpec = PqSpec { d: 1, k: 16 };

/// What one AlexNet layer computes.
#[derive(Clone, Copy, Debug)]
enum Op {
    Conv(ConvShape),
    Relu { len: usize },
    Lrn { channels: usize, pixels: usize },
    Pool(PoolShape),
    Fc(FcShape, PqSpec),
    Softmax { len: usize },
}

fn conv(c_in: usize, h: usize, c_out: usize, kernel: usize, stride: usize, pad: usize) -> Op {
    let groups = if c_in == 3 || c_in == 256 { 1 } else { 2 };
    Op::Conv(ConvShape {
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kernel,
        stride,
        pad,
        groups,
    })
}

fn pool(channels: usize, side: usize) -> Op {
    Op::Pool(PoolShape {
        channels,
        h_in: side,
        w_in: side,
        kernel: 3,
        stride: 2,
        pad: 0,
    })
}

/// AlexNet (METHOD.md's table), without the dropout layers.
fn alexnet() -> Vec<(&'static str, Op)> {
    vec![
        ("conv1", conv(3, 227, 96, 11, 4, 0)),
        ("relu1", Op::Relu { len: 96 * 55 * 55 }),
        (
            "norm1",
            Op::Lrn {
                channels: 96,
                pixels: 55 * 55,
            },
        ),
        ("pool1", pool(96, 55)),
        ("conv2", conv(96, 27, 256, 5, 1, 2)),
        ("relu2", Op::Relu { len: 256 * 27 * 27 }),
        (
            "norm2",
            Op::Lrn {
                channels: 256,
                pixels: 27 * 27,
            },
        ),
        ("pool2", pool(256, 27)),
        ("conv3", conv(256, 13, 384, 3, 1, 1)),
        ("relu3", Op::Relu { len: 384 * 13 * 13 }),
        ("conv4", conv(384, 13, 384, 3, 1, 1)),
        ("relu4", Op::Relu { len: 384 * 13 * 13 }),
        ("conv5", conv(384, 13, 256, 3, 1, 1)),
        ("relu5", Op::Relu { len: 256 * 13 * 13 }),
        ("pool5", pool(256, 13)),
        (
            "fc6",
            Op::Fc(
                FcShape {
                    c_in: 9216,
                    c_out: 4096,
                },
                FC67_SPEC,
            ),
        ),
        ("relu6", Op::Relu { len: 4096 }),
        (
            "fc7",
            Op::Fc(
                FcShape {
                    c_in: 4096,
                    c_out: 4096,
                },
                FC67_SPEC,
            ),
        ),
        ("relu7", Op::Relu { len: 4096 }),
        (
            "fc8",
            Op::Fc(
                FcShape {
                    c_in: 4096,
                    c_out: 1000,
                },
                FC8_SPEC,
            ),
        ),
        ("prob", Op::Softmax { len: 1000 }),
    ]
}

/// A seeded stream per layer.
fn rng(layer: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(layer.bytes().fold(7, |s, b| s * 31 + u64::from(b)))
}

fn uniform(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// Random PQ parameters: centroids Layout (M, K, d), assignments (rows, M) in range.
fn codebooks(rng: &mut ChaCha8Rng, spec: PqSpec, m: usize, rows: usize) -> (Vec<f32>, Vec<u8>) {
    let centroids = uniform(rng, m * spec.k * spec.d, 0.05);
    let assignments = (0..rows * m)
        .map(|_| rng.random_range(0..spec.k) as u8)
        .collect();
    (centroids, assignments)
}

/// Dense conv weights, Layout (C_t, C_s/groups, kh, kw), rebuilt from the codebooks:
/// W[t][c][i][j] = D[c / d][b[t][i][j][c / d]][c % d] (FORMAT.md); assignments
/// Layout (C_t, kh, kw, M).
fn rebuild_conv(s: &ConvShape, spec: PqSpec, centroids: &[f32], assignments: &[u8]) -> Vec<f32> {
    let (cg, taps) = (s.c_in_group(), s.kernel * s.kernel);
    let m_count = spec.subspaces(cg);
    let mut w = vec![0.0; s.c_out * cg * taps];
    for t in 0..s.c_out {
        for c in 0..cg {
            for tap in 0..taps {
                let b = assignments[(t * taps + tap) * m_count + c / spec.d] as usize;
                w[(t * cg + c) * taps + tap] =
                    centroids[((c / spec.d) * spec.k + b) * spec.d + c % spec.d];
            }
        }
    }
    w
}

/// Dense fc weights, Layout (C_t, C_s): W[t][c] = D[c / d][b_t^(c / d)][c % d].
fn rebuild_fc(s: &FcShape, spec: PqSpec, centroids: &[f32], assignments: &[u8]) -> Vec<f32> {
    let m_count = spec.subspaces(s.c_in);
    let mut w = vec![0.0; s.c_out * s.c_in];
    for (t, row) in w.chunks_exact_mut(s.c_in).enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            let b = assignments[t * m_count + c / spec.d] as usize;
            *v = centroids[((c / spec.d) * spec.k + b) * spec.d + c % spec.d];
        }
    }
    w
}

fn bench_conv(c: &mut Criterion, layer: &str, shape: ConvShape) {
    let mut rng = rng(layer);
    let m = CONV_SPEC.subspaces(shape.c_in_group());
    let rows = shape.c_out * shape.kernel * shape.kernel;
    let (centroids, assignments) = codebooks(&mut rng, CONV_SPEC, m, rows);
    let bias = uniform(&mut rng, shape.c_out, 1.0);
    let x = uniform(&mut rng, shape.input_len(), 50.0);
    let mut y = vec![0.0; shape.output_len()];
    let weights = rebuild_conv(&shape, CONV_SPEC, &centroids, &assignments);
    let mut col = dense::ConvScratch::for_shape(&shape);
    c.bench_function(&format!("{layer}/{CONV_KERNEL}"), |b| {
        b.iter(|| dense::conv(&shape, &weights, &bias, black_box(&x), &mut y, &mut col))
    });
    let mut scratch = ConvScratch::default();
    for isa in Isa::available() {
        let target = common::target(isa, common::caches());
        let lut = ConvLut::new(target, shape, CONV_SPEC, &centroids, &assignments, &bias)
            .expect("valid layer");
        c.bench_function(&format!("{layer}/{}", lut.kernel_name()), |b| {
            b.iter(|| lut.forward(black_box(&x), &mut y, &mut scratch, &mut |_| {}))
        });
    }
}

fn bench_fc(c: &mut Criterion, layer: &str, shape: FcShape, spec: PqSpec) {
    let mut rng = rng(layer);
    let m = spec.subspaces(shape.c_in);
    let (centroids, assignments) = codebooks(&mut rng, spec, m, shape.c_out);
    let bias = uniform(&mut rng, shape.c_out, 1.0);
    let x = uniform(&mut rng, shape.c_in, 5.0);
    let mut y = vec![0.0; shape.c_out];
    let weights = rebuild_fc(&shape, spec, &centroids, &assignments);
    c.bench_function(&format!("{layer}/{FC_KERNEL}"), |b| {
        b.iter(|| dense::fc(&shape, &weights, &bias, black_box(&x), &mut y))
    });
    drop(weights);
    let mut scratch = FcScratch::default();
    for isa in Isa::available() {
        let target = common::target(isa, common::caches());
        let lut =
            FcLut::new(target, shape, spec, &centroids, &assignments, &bias).expect("valid layer");
        c.bench_function(&format!("{layer}/{}", lut.kernel_name()), |b| {
            b.iter(|| lut.forward(black_box(&x), &mut y, &mut scratch, &mut |_| {}))
        });
    }
}

fn bench_lrn(c: &mut Criterion, layer: &str, channels: usize, pixels: usize) {
    // LRN follows a ReLU: non-negative activations of a few tens.
    let mut x = uniform(&mut rng(layer), channels * pixels, 60.0);
    dense::relu(&mut x);
    let mut y = vec![0.0; x.len()];
    let mut scratch = LrnScratch::for_pixels(pixels);
    let p = LrnParams::ALEXNET;
    for isa in Isa::available() {
        c.bench_function(&format!("{layer}/{}", lrn_kernel_name(isa)), |b| {
            b.iter(|| {
                dense::lrn(
                    &p,
                    isa,
                    channels,
                    pixels,
                    black_box(&x),
                    &mut y,
                    &mut scratch,
                )
            })
        });
    }
}

fn bench_layer(c: &mut Criterion, layer: &str, op: Op) {
    match op {
        Op::Conv(shape) => bench_conv(c, layer, shape),
        Op::Fc(shape, spec) => bench_fc(c, layer, shape, spec),
        Op::Lrn { channels, pixels } => bench_lrn(c, layer, channels, pixels),
        Op::Relu { len } => {
            let mut x = uniform(&mut rng(layer), len, 50.0);
            c.bench_function(&format!("{layer}/relu"), |b| {
                b.iter(|| dense::relu(black_box(&mut x)))
            });
        }
        Op::Pool(shape) => {
            let x = uniform(&mut rng(layer), shape.input_len(), 50.0);
            let mut y = vec![0.0; shape.output_len()];
            let mut scratch = PoolScratch::for_shapes([&shape]);
            for isa in Isa::available() {
                c.bench_function(&format!("{layer}/{}", pool_kernel_name(isa)), |b| {
                    b.iter(|| dense::max_pool(&shape, isa, black_box(&x), &mut y, &mut scratch))
                });
            }
        }
        Op::Softmax { len } => {
            let logits = uniform(&mut rng(layer), len, 20.0);
            let mut prob = vec![0.0; len];
            c.bench_function(&format!("{layer}/softmax"), |b| {
                b.iter(|| dense::softmax(black_box(&logits), &mut prob, len))
            });
        }
    }
}

fn layers(c: &mut Criterion) {
    blas::set_single_thread();
    eprintln!(
        "OpenBLAS core: {} ({}); look-up ISAs: {:?}",
        blas::core_name(),
        blas::config(),
        Isa::available()
    );
    for (layer, op) in alexnet() {
        bench_layer(c, layer, op);
    }
}

criterion_group! {
    name = benches;
    // Short runs: 49 benchmarks in about 2 minutes; pass `--measurement-time` for more.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    targets = layers
}
criterion_main!(benches);
