//! The dense ops on AlexNet's layer geometries (random values of realistic magnitude).
//!
//! Run pinned: `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo bench -p qcnn-kernels --bench dense`
//!
//! IDs: `<op>/<layer>[/<isa>]`: conv/conv1 … conv/conv5 (im2col + sgemm), fc/fc6 … fc/fc8
//! (sgemv; fc6's 151 MB of weights come from memory at every call, fc8's 16 MB may stay in
//! L3 between back-to-back calls), lrn/norm1|norm2/<isa>, pool/pool1|pool2|pool5, relu/relu1,
//! softmax/prob.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use qcnn_kernels::dense::{
    conv, fc, lrn, max_pool, relu, softmax, ConvScratch, LrnParams, LrnScratch, PoolScratch,
    PoolShape,
};
use qcnn_kernels::{blas, ConvShape, FcShape, Isa};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

/// (name, C_s, H_s = W_s, C_t, kernel, stride, pad, groups) of one conv layer.
type ConvRow = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

/// AlexNet's conv layers.
const CONVS: [ConvRow; 5] = [
    ("conv1", 3, 227, 96, 11, 4, 0, 1),
    ("conv2", 96, 27, 256, 5, 1, 2, 2),
    ("conv3", 256, 13, 384, 3, 1, 1, 1),
    ("conv4", 384, 13, 384, 3, 1, 1, 2),
    ("conv5", 384, 13, 256, 3, 1, 1, 2),
];

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv");
    for (i, &(name, c_in, h, c_out, kernel, stride, pad, groups)) in CONVS.iter().enumerate() {
        let shape = ConvShape {
            c_in,
            h_in: h,
            w_in: h,
            c_out,
            kernel,
            stride,
            pad,
            groups,
        };
        let taps = shape.c_in_group() * kernel * kernel;
        let w = values(i as u64, c_out * taps, 0.05);
        let b = values(i as u64 + 10, c_out, 1.0);
        let x = values(i as u64 + 20, shape.input_len(), 50.0);
        let mut y = vec![0.0; shape.output_len()];
        let mut scratch = ConvScratch::for_shape(&shape);
        group.bench_function(name, |bench| {
            bench.iter(|| conv(&shape, &w, &b, black_box(&x), &mut y, &mut scratch))
        });
    }
    group.finish();
}

fn bench_fc(c: &mut Criterion) {
    let mut group = c.benchmark_group("fc");
    for (i, (name, c_in, c_out)) in [
        ("fc6", 9216, 4096),
        ("fc7", 4096, 4096),
        ("fc8", 4096, 1000),
    ]
    .into_iter()
    .enumerate()
    {
        let shape = FcShape { c_in, c_out };
        let w = values(i as u64, c_in * c_out, 0.01);
        let b = values(i as u64 + 10, c_out, 1.0);
        let x = values(i as u64 + 20, c_in, 5.0);
        let mut y = vec![0.0; c_out];
        group.bench_function(name, |bench| {
            bench.iter(|| fc(&shape, &w, &b, black_box(&x), &mut y))
        });
    }
    group.finish();
}

fn bench_lrn(c: &mut Criterion) {
    let mut group = c.benchmark_group("lrn");
    for (name, channels, side) in [("norm1", 96, 55), ("norm2", 256, 27)] {
        let pixels = side * side;
        let mut x = values(channels as u64, channels * pixels, 60.0);
        relu(&mut x);
        let mut y = vec![0.0; x.len()];
        let mut scratch = LrnScratch::for_pixels(pixels);
        for isa in Isa::available() {
            group.bench_function(format!("{name}/{isa}"), |bench| {
                bench.iter(|| {
                    let p = &LrnParams::ALEXNET;
                    lrn(
                        p,
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
    group.finish();
}

fn bench_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("pool");
    for (name, channels, side) in [("pool1", 96, 55), ("pool2", 256, 27), ("pool5", 256, 13)] {
        let shape = PoolShape {
            channels,
            h_in: side,
            w_in: side,
            kernel: 3,
            stride: 2,
            pad: 0,
        };
        let x = values(side as u64, shape.input_len(), 50.0);
        let mut y = vec![0.0; shape.output_len()];
        let mut scratch = PoolScratch::for_shapes([&shape]);
        for isa in Isa::available() {
            group.bench_function(format!("{name}/{isa}"), |bench| {
                bench.iter(|| max_pool(&shape, isa, black_box(&x), &mut y, &mut scratch))
            });
        }
    }
    group.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let mut x = values(1, 96 * 55 * 55, 50.0);
    c.bench_function("relu/relu1", |bench| bench.iter(|| relu(black_box(&mut x))));
    let logits = values(2, 1000, 20.0);
    let mut prob = vec![0.0; 1000];
    c.bench_function("softmax/prob", |bench| {
        bench.iter(|| softmax(black_box(&logits), &mut prob, 1000))
    });
}

fn setup() -> Criterion {
    blas::set_single_thread();
    eprintln!("openblas core: {}", blas::core_name());
    Criterion::default()
}

criterion_group! {
    name = benches;
    config = setup();
    targets = bench_conv, bench_fc, bench_lrn, bench_pool, bench_elementwise
}
criterion_main!(benches);
