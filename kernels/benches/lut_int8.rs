//! AlexNet's conv layers (random codebooks, assignments and inputs): the int8-table kernels
//! ("conv-lut-i8-*", approximate) against the exact f32 look-up kernels at the same ISA and
//! the dense BLAS layers, one thread, one image, with each int8 layer's error vs the exact
//! path.
//!
//! Run: `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo bench -p qcnn-kernels --bench lut_int8`
//!
//! Prints per layer the minimum and median of `RUNS` interleaved rounds (dense, exact and
//! int8, so that other work on a shared machine slows every series alike), the int8
//! table-build / look-up split (from the phase callbacks, minima), and max |Δ| / max |y| of
//! int8 vs exact. Env knobs: `QCNN_I8_PLAN=band_rows,chunk_k[,aligned_rows 0/1[,chunk_phases]]`
//! (chunk_phases default: every plane) overrides
//! the int8 plan of every layer; `QCNN_BENCH_LAYERS=1,3` restricts the layers (1-based);
//! `QCNN_BENCH_RUNS=n`; `QCNN_BENCH_CODES=n` draws the assignments from n codewords only
//! (`common::codes_drawn`);
//! `QCNN_BENCH_ISA=avx2` the level (default: the best); `QCNN_CACHES` the plans' caches.

mod common;

use std::hint::black_box;
use std::time::Instant;

use qcnn_kernels::lut::conv::{ConvLut, ConvScratch};
use qcnn_kernels::lut::int8::{default_plan, ConvI8Plan, ConvI8Scratch, ConvLutI8};
use qcnn_kernels::{blas, dense, ConvShape, Isa, Phase, PqSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DEFAULT_RUNS: usize = 51;

fn conv(
    c_in: usize,
    h: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> ConvShape {
    ConvShape {
        c_in,
        h_in: h,
        w_in: h,
        c_out,
        kernel,
        stride,
        pad,
        groups,
    }
}

fn values(rng: &mut ChaCha8Rng, n: usize, lo: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..1.0)).collect()
}

fn indices(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<u8> {
    (0..n).map(|_| rng.random_range(0..k) as u8).collect()
}

/// Seconds of one call of `f`.
fn time(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0] * 1e3, v[v.len() / 2] * 1e3)
}

fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let max_b = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / max_b
}

/// A forward pass run with the given phase callback.
type Forward<'a> = dyn FnMut(&mut dyn FnMut(Phase)) + 'a;

/// Time split of one int8 forward: (table, look-ups) seconds from the phase callbacks.
fn split(run: &mut Forward) -> (f64, f64) {
    let (mut table, mut lookup) = (0.0, 0.0);
    let mut last = Instant::now();
    run(&mut |p| {
        let now = Instant::now();
        let dt = (now - last).as_secs_f64();
        last = now;
        match p {
            Phase::Table => table += dt,
            Phase::Lookup => lookup += dt,
        }
    });
    (table, lookup)
}

struct Row {
    name: &'static str,
    dense: Vec<f64>,
    exact: Vec<f64>,
    int8: Vec<f64>,
    table: Vec<f64>,
    lookup: Vec<f64>,
    err: f32,
    scale: f32,
}

fn main() {
    blas::set_single_thread();
    let runs: usize = std::env::var("QCNN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_RUNS);
    let wanted: Option<Vec<usize>> = std::env::var("QCNN_BENCH_LAYERS").ok().map(|s| {
        s.split(',')
            .map(|n| n.trim().parse().expect("QCNN_BENCH_LAYERS: 1-based"))
            .collect()
    });
    let plan: Option<ConvI8Plan> = std::env::var("QCNN_I8_PLAN").ok().map(|s| {
        let v: Vec<usize> = s
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("band_rows,chunk_k[,aligned_rows 0/1[,chunk_phases]]")
            })
            .collect();
        ConvI8Plan {
            band_rows: v[0],
            chunk_k: v[1],
            aligned_rows: v.get(2).is_none_or(|&a| a != 0),
            chunk_phases: v.get(3).copied().unwrap_or(usize::MAX),
        }
    });
    let isa = match std::env::var("QCNN_BENCH_ISA") {
        Ok(name) => name
            .parse::<Isa>()
            .and_then(Isa::require)
            .expect("QCNN_BENCH_ISA"),
        Err(_) => Isa::detect(),
    };
    let target = common::target(isa, common::caches());
    println!(
        "int8 {} / exact {} / dense {} (OpenBLAS core {}), {runs} interleaved rounds, ms",
        ConvLutI8::name(isa),
        ConvLut::name(isa),
        dense::CONV_KERNEL,
        blas::core_name()
    );
    let want = |n: usize| wanted.as_ref().is_none_or(|w| w.contains(&n));
    let mut rows = Vec::new();
    let spec = PqSpec { d: 8, k: 128 };
    let convs = [
        ("conv1", conv(3, 227, 96, 11, 4, 0, 1), -1.0),
        ("conv2", conv(96, 27, 256, 5, 1, 2, 2), 0.0),
        ("conv3", conv(256, 13, 384, 3, 1, 1, 1), 0.0),
        ("conv4", conv(384, 13, 384, 3, 1, 1, 2), 0.0),
        ("conv5", conv(384, 13, 256, 3, 1, 1, 2), 0.0),
    ];
    for (n, (name, shape, lo)) in convs.into_iter().enumerate() {
        if !want(n + 1) {
            continue;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let m = spec.subspaces(shape.c_in_group());
        let kk = shape.kernel * shape.kernel;
        let centroids = values(&mut rng, m * spec.k * spec.d, -1.0);
        let assignments = indices(&mut rng, shape.c_out * kk * m, common::codes_drawn(spec.k));
        let bias = values(&mut rng, shape.c_out, -1.0);
        let x = values(&mut rng, shape.input_len(), lo);
        let weights = values(&mut rng, shape.c_out * shape.c_in_group() * kk, -1.0);
        let exact = ConvLut::new(target, shape, spec, &centroids, &assignments, &bias).unwrap();
        let plan = plan.unwrap_or_else(|| default_plan(target, shape, spec));
        let int8 = ConvLutI8::with_plan(target, shape, spec, plan, &centroids, &assignments, &bias)
            .unwrap();
        let (mut ye, mut yi, mut yd) = (
            vec![0.0; shape.output_len()],
            vec![0.0; shape.output_len()],
            vec![0.0; shape.output_len()],
        );
        let (mut se, mut si, mut sd) = (
            ConvScratch::default(),
            ConvI8Scratch::default(),
            dense::ConvScratch::new(),
        );
        let mut row = Row {
            name,
            dense: vec![],
            exact: vec![],
            int8: vec![],
            table: vec![],
            lookup: vec![],
            err: 0.0,
            scale: 0.0,
        };
        for _ in 0..runs {
            row.dense.push(time(&mut || {
                dense::conv(&shape, &weights, &bias, black_box(&x), &mut yd, &mut sd)
            }));
            row.exact.push(time(&mut || {
                exact.forward(black_box(&x), &mut ye, &mut se, &mut |_| {})
            }));
            row.int8.push(time(&mut || {
                int8.forward(black_box(&x), &mut yi, &mut si, &mut |_| {})
            }));
            let (t, l) = split(&mut |cb| int8.forward(&x, &mut yi, &mut si, cb));
            row.table.push(t);
            row.lookup.push(l);
        }
        row.err = rel_err(&yi, &ye);
        row.scale = si.scale();
        eprintln!("{name}: int8 plan {}", int8.plan_summary());
        rows.push(row);
    }
    println!(
        "{:<6} {:>15} {:>15} {:>15} {:>9} {:>9} {:>8} {:>8} {:>10}",
        "layer",
        "dense min/med",
        "exact min/med",
        "int8 min/med",
        "i8 table",
        "i8 look",
        "ex/i8",
        "de/i8",
        "i8 err"
    );
    let (mut sd, mut se, mut si) = (0.0, 0.0, 0.0);
    for r in rows {
        let (d, e, i) = (stats(r.dense), stats(r.exact), stats(r.int8));
        let (t, l) = (stats(r.table).0, stats(r.lookup).0);
        sd += d.0;
        se += e.0;
        si += i.0;
        println!(
            "{:<6} {:>7.3}/{:>7.3} {:>7.3}/{:>7.3} {:>7.3}/{:>7.3} {:>9.3} {:>9.3} {:>7.2}x {:>7.2}x {:>10.2e}  (s = {:.2e})",
            r.name, d.0, d.1, e.0, e.1, i.0, i.1, t, l, e.0 / i.0, d.0 / i.0, r.err, r.scale
        );
    }
    println!("sum of minima: dense {sd:.3}, exact {se:.3}, int8 {si:.3} ms");
}
