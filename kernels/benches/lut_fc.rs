//! The fc look-up kernels on AlexNet's fc6, fc7, fc8 (random codebooks and assignments in
//! the authors' configuration) against the dense `cblas_sgemv` on the rebuilt weights.
//!
//! Run pinned: `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo bench -p qcnn-kernels --bench lut_fc`
//!
//! IDs: `<layer>/<kernel>/<cache>`, layer in fc6, fc7, fc8 or fc678 (the three in a row);
//! kernel `fc-lut-f32-<isa>`, `fc-lut-i16-<isa>` (the i16 tables of the `qcnn-int8` mode),
//! either with `-table` (the table-build phase alone), or `fc-dense-sgemv`; cache `warm` (back-to-back repeats: the 11 MB of look-up indices stay
//! in the 32 MB L3, the 232 MB of dense weights cannot) or `cold` (a 64 MB buffer is read
//! before every timed call, untimed, as the conv layers would do in a network).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use qcnn_kernels::lut::fc::{FcI16Scratch, FcLut, FcLutI16, FcScratch};
use qcnn_kernels::{blas, FcShape, Isa, Phase, PqSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Larger than L2 + L3, so reading it evicts a layer's indices and weights.
const EVICT_BYTES: usize = 64 << 20;

struct Layer {
    name: &'static str,
    /// The layer prepared for every available ISA (each with its own index layout).
    luts: Vec<(Isa, FcLut)>,
    /// The same with i16 tables.
    luts16: Vec<(Isa, FcLutI16)>,
    /// Dense weights rebuilt from the codebooks, layout (C_t, C_s).
    dense: Vec<f32>,
    /// (C_t).
    bias: Vec<f32>,
    /// (C_s).
    x: Vec<f32>,
}

impl Layer {
    fn random(name: &'static str, c_in: usize, c_out: usize, d: usize, k: usize) -> Layer {
        let mut rng = ChaCha8Rng::seed_from_u64(c_in as u64 * 31 + c_out as u64);
        let (shape, spec) = (FcShape { c_in, c_out }, PqSpec { d, k });
        let m_count = spec.subspaces(c_in);
        let mut floats =
            |n: usize, s: f32| -> Vec<f32> { (0..n).map(|_| rng.random_range(-s..s)).collect() };
        let centroids = floats(m_count * k * d, 0.01);
        let bias = floats(c_out, 0.1);
        let x = floats(c_in, 1.0);
        let assignments: Vec<u8> = (0..c_out * m_count)
            .map(|_| rng.random_range(0..k) as u8)
            .collect();
        // fc W[t][m·d + j] = D[m][b_t^(m)][j] (FORMAT.md).
        let mut dense = vec![0.0f32; c_out * c_in];
        for t in 0..c_out {
            for c in 0..c_in {
                let (m, j) = (c / d, c % d);
                let b = assignments[t * m_count + m] as usize;
                dense[t * c_in + c] = centroids[(m * k + b) * d + j];
            }
        }
        let caches = common::caches();
        let luts = Isa::available()
            .into_iter()
            .map(|isa| {
                let t = common::target(isa, caches);
                let lut = FcLut::new(t, shape, spec, &centroids, &assignments, &bias);
                (isa, lut.expect("valid layer"))
            })
            .collect();
        let luts16 = Isa::available()
            .into_iter()
            .map(|isa| {
                let t = common::target(isa, caches);
                let lut = FcLutI16::new(t, shape, spec, &centroids, &assignments, &bias);
                (isa, lut.expect("valid layer"))
            })
            .collect();
        Layer {
            name,
            luts,
            luts16,
            dense,
            bias,
            x,
        }
    }

    fn lut(&self, isa: Isa) -> &FcLut {
        &self
            .luts
            .iter()
            .find(|(i, _)| *i == isa)
            .expect("available")
            .1
    }

    fn lut16(&self, isa: Isa) -> &FcLutI16 {
        &self
            .luts16
            .iter()
            .find(|(i, _)| *i == isa)
            .expect("available")
            .1
    }

    fn c_out(&self) -> usize {
        self.luts[0].1.shape().c_out
    }

    fn lut_forward(&self, isa: Isa, y: &mut [f32], scratch: &mut FcScratch) {
        self.lut(isa).forward(&self.x, y, scratch, &mut |_| {});
    }

    fn lut16_forward(&self, isa: Isa, y: &mut [f32], scratch: &mut FcI16Scratch) {
        self.lut16(isa).forward(&self.x, y, scratch, &mut |_| {});
    }

    /// y = bias + W x with one BLAS thread.
    fn dense_forward(&self, y: &mut [f32]) {
        let FcShape { c_in, c_out } = self.luts[0].1.shape();
        y.copy_from_slice(&self.bias);
        // SAFETY: W is (C_t, C_s) row-major with lda = C_s, x has C_s and y C_t elements.
        unsafe {
            cblas::sgemv(
                cblas::Layout::RowMajor,
                cblas::Transpose::None,
                c_out as i32,
                c_in as i32,
                1.0,
                &self.dense,
                c_in as i32,
                &self.x,
                1,
                1.0,
                y,
                1,
            );
        }
    }
}

fn layers() -> Vec<Layer> {
    vec![
        Layer::random("fc6", 9216, 4096, 4, 32),
        Layer::random("fc7", 4096, 4096, 4, 32),
        Layer::random("fc8", 4096, 1000, 1, 16),
    ]
}

/// Reads every cache line of `buf`, so whatever was cached before is gone.
fn evict(buf: &[u8]) {
    let sum = buf.iter().step_by(64).fold(0u8, |s, &b| s.wrapping_add(b));
    black_box(sum);
}

/// Times `f` only, evicting the caches before each call.
fn cold(iters: u64, buf: &[u8], mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        evict(buf);
        let start = Instant::now();
        f();
        total += start.elapsed();
    }
    total
}

fn bench(c: &mut Criterion) {
    blas::set_single_thread();
    eprintln!("OpenBLAS core: {} ({})", blas::core_name(), blas::config());
    let layers = layers();
    let evict_buf: Vec<u8> = (0..EVICT_BYTES).map(|i| i as u8).collect();
    for layer in &layers {
        for (isa, lut) in &layer.luts {
            eprintln!(
                "{} {isa}: {:?} {:?}, {:.1} MB of indices, {}",
                layer.name,
                lut.shape(),
                lut.spec(),
                lut.index_bytes() as f64 / 1e6,
                lut.plan_summary()
            );
        }
        let mut group = c.benchmark_group(layer.name);
        group
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        let mut y = vec![0.0f32; layer.c_out()];
        let mut scratch = FcScratch::default();
        let mut scratch16 = FcI16Scratch::default();
        for isa in Isa::available() {
            let name = FcLutI16::name(isa);
            group.bench_function(format!("{name}/warm"), |b| {
                b.iter(|| layer.lut16_forward(isa, &mut y, &mut scratch16))
            });
            group.bench_function(format!("{name}-table/warm"), |b| {
                b.iter_custom(|iters| {
                    phase_time(iters, |on_phase| {
                        layer
                            .lut16(isa)
                            .forward(&layer.x, &mut y, &mut scratch16, on_phase)
                    })
                })
            });
            if isa != Isa::Scalar {
                group.bench_function(format!("{name}/cold"), |b| {
                    b.iter_custom(|iters| {
                        cold(iters, &evict_buf, || {
                            layer.lut16_forward(isa, &mut y, &mut scratch16)
                        })
                    })
                });
            }
        }
        for isa in Isa::available() {
            let name = FcLut::name(isa);
            group.bench_function(format!("{name}/warm"), |b| {
                b.iter(|| layer.lut_forward(isa, &mut y, &mut scratch))
            });
            group.bench_function(format!("{name}-table/warm"), |b| {
                b.iter_custom(|iters| {
                    phase_time(iters, |on_phase| {
                        layer
                            .lut(isa)
                            .forward(&layer.x, &mut y, &mut scratch, on_phase)
                    })
                })
            });
            if isa != Isa::Scalar {
                group.bench_function(format!("{name}/cold"), |b| {
                    b.iter_custom(|iters| {
                        cold(iters, &evict_buf, || {
                            layer.lut_forward(isa, &mut y, &mut scratch)
                        })
                    })
                });
            }
        }
        group.bench_function("fc-dense-sgemv/warm", |b| {
            b.iter(|| layer.dense_forward(&mut y))
        });
        group.bench_function("fc-dense-sgemv/cold", |b| {
            b.iter_custom(|iters| cold(iters, &evict_buf, || layer.dense_forward(&mut y)))
        });
        group.finish();
    }
    bench_all_three(c, &layers, &evict_buf);
}

/// Time from the call to the Phase::Table report, summed over `iters` calls of `forward`
/// (which reports its phases to the callback it is given).
fn phase_time(iters: u64, mut forward: impl FnMut(&mut dyn FnMut(Phase))) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        forward(&mut |phase| {
            if phase == Phase::Table {
                total += start.elapsed();
            }
        });
    }
    total
}

/// fc6, fc7, fc8 in a row, as in the network (each layer on its own random input).
fn bench_all_three(c: &mut Criterion, layers: &[Layer], evict_buf: &[u8]) {
    let mut group = c.benchmark_group("fc678");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let mut ys: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.c_out()]).collect();
    let mut scratch = FcScratch::default();
    let mut scratch16 = FcI16Scratch::default();
    for isa in Isa::available().into_iter().filter(|&i| i != Isa::Scalar) {
        let name = FcLut::name(isa);
        let mut run = || {
            for (layer, y) in layers.iter().zip(&mut ys) {
                layer.lut_forward(isa, y, &mut scratch);
            }
        };
        group.bench_function(format!("{name}/warm"), |b| b.iter(&mut run));
        group.bench_function(format!("{name}/cold"), |b| {
            b.iter_custom(|iters| cold(iters, evict_buf, &mut run))
        });
        let name = FcLutI16::name(isa);
        let mut run16 = || {
            for (layer, y) in layers.iter().zip(&mut ys) {
                layer.lut16_forward(isa, y, &mut scratch16);
            }
        };
        group.bench_function(format!("{name}/warm"), |b| b.iter(&mut run16));
        group.bench_function(format!("{name}/cold"), |b| {
            b.iter_custom(|iters| cold(iters, evict_buf, &mut run16))
        });
    }
    let mut run_dense = || {
        for (layer, y) in layers.iter().zip(&mut ys) {
            layer.dense_forward(y);
        }
    };
    group.bench_function("fc-dense-sgemv/warm", |b| b.iter(&mut run_dense));
    group.bench_function("fc-dense-sgemv/cold", |b| {
        b.iter_custom(|iters| cold(iters, evict_buf, &mut run_dense))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
