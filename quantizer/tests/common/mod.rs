//! Helpers shared by the quantizer tests: a tiny AlexNet, random dense models, shared data.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;

use qcnn_model::arch::{ParamShape, QuantSpec};
use qcnn_model::{Architecture, LayerParams, Model, ModelSource};
use qcnn_quantizer::Calibration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use qcnn_testdata::tiny_alexnet;

/// /work/shared (or $QCNN_SHARED), if present; prints SKIPPED otherwise.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("QCNN_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    if dir.join("qcnn-alexnet").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: shared data {} not found (set QCNN_SHARED)",
            dir.display()
        );
        None
    }
}

pub fn values(rng: &mut ChaCha8Rng, len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|_| scale * rng.random_range(-1.0f32..1.0))
        .collect()
}

/// Settings the tiny model takes: conv d = 4, K = 8; fc4 d = 4, K = 8; fc5 d = 2, K = 4.
pub fn tiny_specs(arch: &Architecture) -> Vec<QuantSpec> {
    qcnn_quantizer::layer_specs(
        arch,
        QuantSpec { d: 4, k: 8 },
        QuantSpec { d: 4, k: 8 },
        QuantSpec { d: 2, k: 4 },
    )
}

/// Dense weights only (no codebooks): He-scaled uniform weights, small positive biases.
pub fn random_dense_model(arch: &Architecture, seed: u64) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = arch
        .param_layers()
        .into_iter()
        .map(|shape| {
            let fan_in = (shape.split_channels() * shape.taps()) as f32;
            let dense = values(&mut rng, shape.weight_count(), (6.0 / fan_in).sqrt());
            let bias = (0..shape.out_channels())
                .map(|_| rng.random_range(0.0f32..0.1))
                .collect();
            LayerParams {
                shape,
                bias,
                codebooks: None,
                dense: Some(dense),
            }
        })
        .collect();
    Model {
        arch: arch.clone(),
        params,
        source: ModelSource::Synthetic { seed },
    }
}

/// `count` random inputs for `arch` (uniform in −1 … 1).
pub fn random_calibration(arch: &Architecture, count: usize, seed: u64) -> Calibration {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images = (0..count)
        .map(|_| values(&mut rng, arch.input.len(), 1.0))
        .collect();
    Calibration::new(images, arch.input.len(), format!("random (seed {seed})")).unwrap()
}

/// The param layer called `name`.
pub fn param(arch: &Architecture, name: &str) -> ParamShape {
    let index = arch.position(name).unwrap();
    arch.param_layers()
        .into_iter()
        .find(|p| p.index == index)
        .unwrap()
}
