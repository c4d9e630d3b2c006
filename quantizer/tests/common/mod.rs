//! Helpers shared by the quantizer tests: a tiny AlexNet, random dense models, shared data.
#![allow(dead_code)]

use std::path::PathBuf;

use qcnn_model::arch::{ConvSpec, LrnSpec, ParamShape, PoolSpec, QuantSpec};
use qcnn_model::{Architecture, Layer, LayerKind, LayerParams, Model, ModelSource, Shape};
use qcnn_quantizer::Calibration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

fn conv(out_channels: usize, kernel: usize, stride: usize, pad: usize, groups: usize) -> LayerKind {
    LayerKind::Conv(ConvSpec {
        out_channels,
        kernel,
        stride,
        pad,
        groups,
    })
}

/// A small AlexNet: conv1 on 3 channels (a partial subspace for d = 4), grouped conv2 and
/// conv3 with padding and a 1×1 kernel, LRN, pooling, two fc layers and a softmax.
/// Shapes: 3×19×17 → conv1 16×9×8 → pool1 16×4×4 → conv2 16×6×6 → pool2 16×3×3 →
/// conv3 8×3×3 → fc4 32 → fc5 10.
pub fn tiny_alexnet() -> Architecture {
    use LayerKind::*;
    let l = |name, kind| Layer { name, kind };
    let lrn = LrnSpec {
        size: 3,
        alpha: 0.3,
        beta: 0.75,
        k: 1.0,
    };
    let pool = PoolSpec {
        kernel: 3,
        stride: 2,
        pad: 0,
    };
    Architecture {
        input: Shape::new(3, 19, 17),
        layers: vec![
            l("conv1", conv(16, 5, 2, 1, 1)),
            l("relu1", Relu),
            l("norm1", Lrn(lrn)),
            l("pool1", MaxPool(pool)),
            l("conv2", conv(16, 3, 1, 2, 2)),
            l("relu2", Relu),
            l("pool2", MaxPool(pool)),
            l("conv3", conv(8, 1, 1, 0, 2)),
            l("relu3", Relu),
            l("fc4", Fc { out: 32 }),
            l("relu4", Relu),
            l("drop4", Dropout),
            l("fc5", Fc { out: 10 }),
            l("prob", Softmax),
        ],
    }
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
