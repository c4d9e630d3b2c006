//! Helpers shared by the format and fuzz tests: a tiny architecture whose layers exercise
//! groups, partial subspaces and 1-bit indices, random models for it, and the shared data.
#![allow(dead_code)]

use std::path::PathBuf;

use qcnn_model::arch::{ConvSpec, LayerKind, QuantSpec};
use qcnn_model::weights::{Codebooks, LayerParams};
use qcnn_model::{Architecture, Layer, Model, ModelSource, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const PREFIX: &str = "tiny";

/// input 6×5×5 → conv (4 kernels 3×3, pad 1, groups 2: split 3) → relu → fc 100 → 3 → fc 3 → 2.
pub fn tiny_arch() -> Architecture {
    let conv = ConvSpec {
        out_channels: 4,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 2,
    };
    Architecture {
        name: "tiny",
        input: Shape::new(6, 5, 5),
        layers: vec![
            Layer {
                name: "conv1",
                kind: LayerKind::Conv(conv),
            },
            Layer {
                name: "relu1",
                kind: LayerKind::Relu,
            },
            Layer {
                name: "fc3",
                kind: LayerKind::Fc { out: 3 },
            },
            Layer {
                name: "fc4",
                kind: LayerKind::Fc { out: 2 },
            },
        ],
    }
}

/// conv d = 2 (M = 2, the last partial), K = 5 (3 bits); fc3 d = 3 (M = 34, partial), K = 16;
/// fc4 d = 1, K = 2 (1 bit).
pub fn tiny_specs() -> [QuantSpec; 3] {
    [
        QuantSpec { d: 2, k: 5 },
        QuantSpec { d: 3, k: 16 },
        QuantSpec { d: 1, k: 2 },
    ]
}

/// A random model of [`tiny_arch`]; dense weights on every layer when `dense`, codebooks
/// on every layer when `codebooks`.
pub fn tiny_model(seed: u64, codebooks: bool, dense: bool) -> Model {
    let arch = tiny_arch();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = arch
        .param_layers()
        .into_iter()
        .zip(tiny_specs())
        .map(|(shape, spec)| {
            let m = spec.subspaces(shape.split_channels());
            let mut floats =
                |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
            let bias = floats(shape.out_channels());
            let centroids = floats(m * spec.k * spec.d);
            let dense_w = floats(shape.weight_count());
            let assignments = (0..shape.out_channels() * shape.taps() * m)
                .map(|_| rng.random_range(0..spec.k) as u8)
                .collect();
            LayerParams {
                shape,
                bias,
                codebooks: codebooks.then_some(Codebooks {
                    spec,
                    subspaces: m,
                    centroids,
                    assignments,
                }),
                dense: dense.then_some(dense_w),
            }
        })
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed },
    }
}

/// /work/shared (env QCNN_SHARED overrides), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QCNN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    dir.is_dir().then_some(dir)
}

/// The authors' AlexNet distribution folder, or None after printing a visible SKIPPED line.
pub fn authors_alexnet(test: &str) -> Option<PathBuf> {
    let dir = shared_dir().map(|s| s.join("qcnn-alexnet"));
    match dir {
        Some(d) if d.join("AlexNet/Bin.Files").is_dir() => Some(d),
        _ => {
            eprintln!("SKIPPED: {test}: shared qcnn-alexnet/AlexNet/Bin.Files not found");
            None
        }
    }
}
