//! AlexNet's conv layers (random codebooks, assignments and input): the look-up kernels at
//! every available ISA against the dense layer (im2col + one `cblas::sgemm` per group, the
//! weights rebuilt from the codebooks), one thread, one image.
//!
//! Run: `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo bench -p qcnn-kernels --bench lut_conv`
//!
//! Before the criterion groups it prints a split table: medians and minima of `SPLIT_RUNS`
//! interleaved rounds (a calibration loop, the dense layer, then each ISA's forward, so that
//! other work on a shared machine slows every series alike), with the table-build / look-up
//! split timed from the kernels' phase callbacks. Env knobs:
//! `QCNN_BENCH_SPLIT_ONLY=1` prints the table and skips criterion;
//! `QCNN_CONV_PLAN=band_rows,chunk_k,block_rows[,chunk_phases[,table_subspaces]]` overrides
//! the default plan of every layer (chunk_phases defaults to all phase planes,
//! table_subspaces to 1);
//! `QCNN_BENCH_LAYERS=2,3` restricts the layers (1-based); `QCNN_BENCH_CODES=n` draws the
//! assignments from n codewords only (`common::codes_drawn`); `QCNN_BENCH_ISAS=avx512,avx2` the
//! ISAs of the split table (empty: dense only); `QCNN_CACHES=l1d=32K,l2=512K` the caches the
//! default plans are sized for.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cblas::{Layout, Transpose};
use criterion::{criterion_group, criterion_main, Criterion};
use qcnn_kernels::lut::conv::{default_plan, ConvLut, ConvPlan, ConvScratch};
use qcnn_kernels::{blas, ConvShape, Isa, Phase, PqSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SPLIT_RUNS: usize = 101;
const SPEC: PqSpec = PqSpec { d: 8, k: 128 };

struct Layer {
    name: &'static str,
    shape: ConvShape,
    /// The layer prepared for every available ISA, in `Isa::available()` order.
    luts: Vec<(Isa, ConvLut)>,
    /// Rebuilt dense weights, Layout (C_t, C_s/groups, kh, kw).
    weights: Vec<f32>,
    bias: Vec<f32>,
    x: Vec<f32>,
}

fn alexnet() -> Vec<Layer> {
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
    let all = [
        ("conv1", conv(3, 227, 96, 11, 4, 0, 1)),
        ("conv2", conv(96, 27, 256, 5, 1, 2, 2)),
        ("conv3", conv(256, 13, 384, 3, 1, 1, 1)),
        ("conv4", conv(384, 13, 384, 3, 1, 1, 2)),
        ("conv5", conv(384, 13, 256, 3, 1, 1, 2)),
    ];
    let wanted: Option<Vec<usize>> = std::env::var("QCNN_BENCH_LAYERS").ok().map(|s| {
        s.split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("QCNN_BENCH_LAYERS: 1-based layer numbers")
            })
            .collect()
    });
    let plan: Option<ConvPlan> = std::env::var("QCNN_CONV_PLAN").ok().map(|s| {
        let v: Vec<usize> = s
            .split(',')
            .map(|n| {
                n.trim().parse().expect(
                    "QCNN_CONV_PLAN: band_rows,chunk_k,block_rows[,chunk_phases[,table_subspaces]]",
                )
            })
            .collect();
        ConvPlan {
            band_rows: v[0],
            chunk_k: v[1],
            block_rows: v[2],
            chunk_phases: v.get(3).copied().unwrap_or(usize::MAX),
            table_subspaces: v.get(4).copied().unwrap_or(1),
        }
    });
    all.into_iter()
        .enumerate()
        .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w.contains(&(n + 1))))
        .map(|(n, (name, shape))| layer(name, shape, plan, n as u64))
        .collect()
}

fn layer(name: &'static str, shape: ConvShape, plan: Option<ConvPlan>, seed: u64) -> Layer {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c_group = shape.c_in_group();
    let m_count = SPEC.subspaces(c_group);
    let kk = shape.kernel;
    let centroids: Vec<f32> = (0..m_count * SPEC.k * SPEC.d)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let codes = common::codes_drawn(SPEC.k);
    let assignments: Vec<u8> = (0..shape.c_out * kk * kk * m_count)
        .map(|_| rng.random_range(0..codes) as u8)
        .collect();
    let bias: Vec<f32> = (0..shape.c_out)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let x: Vec<f32> = (0..shape.input_len())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let caches = common::caches();
    let luts = Isa::available()
        .into_iter()
        .map(|isa| {
            let target = common::target(isa, caches);
            let plan = plan.map_or_else(
                || default_plan(target, shape, SPEC),
                |p| ConvPlan {
                    band_rows: p.band_rows.min(shape.h_out()),
                    ..p
                },
            );
            let lut =
                ConvLut::with_plan(target, shape, SPEC, plan, &centroids, &assignments, &bias)
                    .expect("valid layer");
            (isa, lut)
        })
        .collect();
    // W[t][c][i][j] = D[c / d][b[t][i][j][c / d]][c % d] (FORMAT.md).
    let mut weights = vec![0.0; shape.c_out * c_group * kk * kk];
    for t in 0..shape.c_out {
        for c in 0..c_group {
            for tap in 0..kk * kk {
                let (m, u) = (c / SPEC.d, c % SPEC.d);
                let b = assignments[(t * kk * kk + tap) * m_count + m] as usize;
                weights[(t * c_group + c) * kk * kk + tap] =
                    centroids[(m * SPEC.k + b) * SPEC.d + u];
            }
        }
    }
    Layer {
        name,
        shape,
        luts,
        weights,
        bias,
        x,
    }
}

/// Caffe's dense conv: im2col (C_s/groups·kh·kw × H_t·W_t) then `Y_g = W_g · col_g + bias`.
fn dense_conv(l: &Layer, col: &mut Vec<f32>, y: &mut [f32]) {
    let s = l.shape;
    let (cg, tg, kk) = (s.c_in_group(), s.c_out_group(), s.kernel);
    let p = s.h_out() * s.w_out();
    let rows = cg * kk * kk;
    col.resize(rows * p, 0.0);
    for g in 0..s.groups {
        for c in 0..cg {
            let plane = &l.x[(g * cg + c) * s.h_in * s.w_in..][..s.h_in * s.w_in];
            for i in 0..kk {
                for j in 0..kk {
                    im2col_row(s, plane, i, j, &mut col[((c * kk + i) * kk + j) * p..][..p]);
                }
            }
        }
        let out = &mut y[g * tg * p..(g + 1) * tg * p];
        for (t, o) in out.chunks_exact_mut(p).enumerate() {
            o.fill(l.bias[g * tg + t]);
        }
        // SAFETY: A is tg × rows (lda rows), B rows × p (ldb p), C tg × p (ldc p); the slices
        // hold exactly that.
        unsafe {
            cblas::sgemm(
                Layout::RowMajor,
                Transpose::None,
                Transpose::None,
                tg as i32,
                p as i32,
                rows as i32,
                1.0,
                &l.weights[g * tg * rows..(g + 1) * tg * rows],
                rows as i32,
                &col[..rows * p],
                p as i32,
                1.0,
                out,
                p as i32,
            );
        }
    }
}

/// One im2col row: tap (i, j) of one input plane at every output position (H_t, W_t), 0 in
/// the padding; the valid run of each output row is one copy at stride 1.
fn im2col_row(s: ConvShape, plane: &[f32], i: usize, j: usize, dst: &mut [f32]) {
    let (ho, wo) = (s.h_out(), s.w_out());
    // Output columns q with 0 ≤ q·stride + j − pad < W_s: lo..hi.
    let lo = s.pad.saturating_sub(j).div_ceil(s.stride).min(wo);
    let hi = (s.w_in + s.pad)
        .saturating_sub(j)
        .div_ceil(s.stride)
        .clamp(lo, wo);
    for (r, out) in dst.chunks_exact_mut(wo).enumerate().take(ho) {
        let row = (r * s.stride + i).wrapping_sub(s.pad);
        if row >= s.h_in || lo == hi {
            out.fill(0.0);
            continue;
        }
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        let src = &plane[row * s.w_in..][..s.w_in];
        let first = lo * s.stride + j - s.pad;
        if s.stride == 1 {
            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        } else {
            for (o, v) in out[lo..hi]
                .iter_mut()
                .zip(src[first..].iter().step_by(s.stride))
            {
                *o = *v;
            }
        }
    }
}

impl Layer {
    fn lut(&self, isa: Isa) -> &ConvLut {
        &self
            .luts
            .iter()
            .find(|(i, _)| *i == isa)
            .expect("a forced ISA is available")
            .1
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One forward's milliseconds: total, and the table / look-up split from the phase callbacks.
fn timed_forward(l: &Layer, isa: Isa, y: &mut [f32], scratch: &mut ConvScratch) -> [f64; 3] {
    let (mut table, mut lookup) = (Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    let mut last = start;
    l.lut(isa).forward(black_box(&l.x), y, scratch, &mut |p| {
        let now = Instant::now();
        match p {
            Phase::Table => table += now - last,
            Phase::Lookup => lookup += now - last,
        }
        last = now;
    });
    let total = start.elapsed();
    [total, table, lookup].map(|d| d.as_secs_f64() * 1e3)
}

fn dense_ms(l: &Layer, col: &mut Vec<f32>, y: &mut [f32]) -> f64 {
    let start = Instant::now();
    dense_conv(l, col, y);
    start.elapsed().as_secs_f64() * 1e3
}

/// Calibration, printed next to the figures because this machine's cores are shared with
/// other work: the rate of aligned 64-byte load + add pairs from L1 (8 independent chains)
/// right now, per ns (a quiet Zen 5 core at ≈ 4.2 GHz does ≈ 8.5).
#[cfg(target_arch = "x86_64")]
fn peak_load_adds_per_ns() -> f64 {
    use std::arch::x86_64::*;
    #[target_feature(enable = "avx512f")]
    unsafe fn run(buf: &[f32], iters: usize) -> f32 {
        let mut a = [_mm512_setzero_ps(); 8];
        let p = buf.as_ptr();
        for i in 0..iters {
            let base = p.add((i * 128) & 2047);
            for (k, reg) in a.iter_mut().enumerate() {
                *reg = _mm512_add_ps(*reg, _mm512_loadu_ps(base.add(16 * k)));
            }
        }
        let mut s = _mm512_setzero_ps();
        for reg in a {
            s = _mm512_add_ps(s, reg);
        }
        _mm512_reduce_add_ps(s)
    }
    if !Isa::Avx512.is_available() {
        return f64::NAN;
    }
    let buf = vec![1e-9f32; 2048 + 128 + 16];
    // Aligned loads: start on a 64-byte boundary.
    let buf = &buf[buf.as_ptr().align_offset(64).min(16)..];
    let iters = 100_000;
    let start = Instant::now();
    // SAFETY: AVX-512F checked above; reads stay below 2047 + 128 floats.
    black_box(unsafe { run(black_box(buf), iters) });
    (iters * 8) as f64 / start.elapsed().as_secs_f64() / 1e9
}

#[cfg(not(target_arch = "x86_64"))]
fn peak_load_adds_per_ns() -> f64 {
    f64::NAN
}

/// METHOD.md's look-up count: H_t·W_t·C_t·kh·kw·M.
fn lookups(s: ConvShape) -> f64 {
    (s.h_out() * s.w_out() * s.c_out * s.kernel * s.kernel * SPEC.subspaces(s.c_in_group())) as f64
}

/// Medians of `SPLIT_RUNS` interleaved rounds (calibration, dense, then each ISA once per
/// round, so slow phases of the shared machine hit every series alike).
fn print_split(layers: &[Layer]) {
    eprintln!(
        "OpenBLAS core: {}, threads: {}",
        blas::core_name(),
        blas::num_threads()
    );
    eprintln!(
        "medians (and minima) of {SPLIT_RUNS} interleaved rounds; table/lookup: phase callbacks"
    );
    eprintln!(
        "layer  kernel               R_b,K_c,Rblk,P_c,S_p total_ms  min_ms table_ms tbl_min lookup_ms lkp_min lookups/ns dense_ms dns_min speedup min_spd calib/ns"
    );
    let isas: Vec<Isa> = match std::env::var("QCNN_BENCH_ISAS") {
        Ok(list) => list
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                n.trim()
                    .parse::<Isa>()
                    .expect("QCNN_BENCH_ISAS")
                    .require()
                    .expect("ISA")
            })
            .collect(),
        Err(_) => Isa::available(),
    };
    for l in layers {
        let mut y = vec![0.0; l.shape.output_len()];
        let mut col = Vec::new();
        let mut scratches: Vec<ConvScratch> = isas.iter().map(|_| ConvScratch::default()).collect();
        let (mut calib, mut dense) = (Vec::new(), Vec::new());
        let mut runs: Vec<Vec<[f64; 3]>> = isas.iter().map(|_| Vec::new()).collect();
        for round in 0..SPLIT_RUNS + 3 {
            let c = peak_load_adds_per_ns();
            let d = dense_ms(l, &mut col, &mut y);
            let r: Vec<_> = isas
                .iter()
                .zip(&mut scratches)
                .map(|(&isa, s)| timed_forward(l, isa, &mut y, s))
                .collect();
            if round >= 3 {
                calib.push(c);
                dense.push(d);
                runs.iter_mut().zip(r).for_each(|(v, t)| v.push(t));
            }
        }
        let (calib, dense_min, dense) = (median(calib), min(&dense), median(dense));
        if isas.is_empty() {
            eprintln!(
                "{:6} dense only: median {dense:.3} ms, min {dense_min:.3} ms, calib {calib:.2}",
                l.name
            );
        }
        for (isa, r) in isas.iter().zip(runs) {
            let total_min = min(&r.iter().map(|t| t[0]).collect::<Vec<_>>());
            let [total, table, lookup] =
                [0, 1, 2].map(|k| median(r.iter().map(|t| t[k]).collect()));
            let [table_min, lookup_min] =
                [1, 2].map(|k| min(&r.iter().map(|t| t[k]).collect::<Vec<_>>()));
            let plan = l.lut(*isa).plan();
            eprintln!(
                "{:6} {:20} {:>3},{:>3},{:>2},{:>2},{:<2} {:8.3} {:8.3} {:8.3} {:7.3} {:9.3} {:7.3} {:10.1} {:8.3} {:8.3} {:6.2}x {:6.2}x {:6.2}",
                l.name,
                ConvLut::name(*isa),
                plan.band_rows,
                plan.chunk_k,
                plan.block_rows,
                plan.chunk_phases,
                plan.table_subspaces,
                total,
                total_min,
                table,
                table_min,
                lookup,
                lookup_min,
                lookups(l.shape) / (lookup_min * 1e6),
                dense,
                dense_min,
                dense / total,
                dense_min / total_min,
                calib,
            );
        }
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn bench(c: &mut Criterion) {
    blas::set_single_thread();
    let layers = alexnet();
    print_split(&layers);
    if std::env::var("QCNN_BENCH_SPLIT_ONLY").is_ok() {
        return;
    }
    for l in &layers {
        let mut group = c.benchmark_group(l.name);
        let mut y = vec![0.0; l.shape.output_len()];
        let mut col = Vec::new();
        group.bench_function("dense-im2col-sgemm", |b| {
            b.iter(|| dense_conv(l, &mut col, &mut y))
        });
        let mut scratch = ConvScratch::default();
        for (_, lut) in &l.luts {
            group.bench_function(lut.kernel_name(), |b| {
                b.iter(|| lut.forward(black_box(&l.x), &mut y, &mut scratch, &mut |_| {}))
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
