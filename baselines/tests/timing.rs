//! A quick per-layer timing of the dense AlexNet, for development (the harness does the real
//! measurements). Ignored by default; run pinned with the SkylakeX BLAS kernels:
//! `OPENBLAS_CORETYPE=SkylakeX taskset -c 1 cargo test --release -p qcnn-baselines
//!  --test timing -- --ignored --nocapture`

mod common;

use std::time::Instant;

use common::shared_dir;
use qcnn_baselines::DenseNetwork;
use qcnn_kernels::blas;
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{folder, Layer};
use qcnn_runner::{Network, Observer};

const WARM_UP: usize = 3;
const IMAGES: usize = 20;

/// Seconds since the previous layer ended, summed per layer over all images.
struct LayerClock {
    last: Instant,
    names: Vec<&'static str>,
    seconds: Vec<f64>,
}

impl Observer for LayerClock {
    fn after_layer(&mut self, index: usize, layer: &Layer, _output: &[f32]) {
        let now = Instant::now();
        if self.seconds.len() <= index {
            self.seconds.resize(index + 1, 0.0);
            self.names.resize(index + 1, "");
        }
        self.seconds[index] += (now - self.last).as_secs_f64();
        self.names[index] = layer.name;
        self.last = now;
    }
}

#[test]
#[ignore = "timing run, for development: see the module doc"]
fn dense_alexnet_timing() {
    blas::set_single_thread();
    let model = match shared_dir() {
        Some(s) => folder::load(&s.join("qcnn-alexnet")).expect("load the authors' model"),
        None => synthetic_model(DEFAULT_SEED),
    };
    let images: Vec<_> = (0..4).map(|i| synthetic_image(DEFAULT_SEED, i)).collect();
    let mut net = DenseNetwork::new(&model);
    let mut clock = LayerClock {
        last: Instant::now(),
        names: Vec::new(),
        seconds: Vec::new(),
    };
    for i in 0..WARM_UP {
        net.forward(&images[i % images.len()], &mut clock);
    }
    clock.seconds.clear();
    let mut totals = Vec::new();
    for i in 0..IMAGES {
        let start = Instant::now();
        clock.last = start;
        net.forward(&images[i % images.len()], &mut clock);
        totals.push(start.elapsed().as_secs_f64() * 1e3);
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "openblas core {}, source {:?}",
        blas::core_name(),
        model.source
    );
    for (name, s) in clock.names.iter().zip(&clock.seconds) {
        println!("{name:>6} {:8.3} ms", s * 1e3 / IMAGES as f64);
    }
    let mean = totals.iter().sum::<f64>() / IMAGES as f64;
    let (min, median) = (totals[0], totals[IMAGES / 2]);
    println!("total: mean {mean:.2} ms, median {median:.2} ms, min {min:.2} ms per image");
}
