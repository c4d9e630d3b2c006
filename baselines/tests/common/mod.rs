//! Helpers shared by the baselines tests.
#![allow(dead_code, unused_imports)]

use qcnn_baselines::{DenseConv, DenseFc};
use qcnn_model::arch::ParamKind;
use qcnn_model::Architecture;
use qcnn_runner::{conv_shape, fc_shape, WeightedOp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use qcnn_runner::LayerRecorder as Recorder;
pub use qcnn_testdata::{shared_dir, tiny_alexnet};

pub fn values(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Random weights for every conv/fc layer: (weights, bias) in Caffe layout.
pub fn random_params(arch: &Architecture, seed: u64) -> Vec<(Vec<f32>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    arch.param_layers()
        .iter()
        .map(|p| {
            let w = values(&mut rng, p.weight_count());
            (w, values(&mut rng, p.out_channels()))
        })
        .collect()
}

pub fn dense_ops(arch: &Architecture, params: &[(Vec<f32>, Vec<f32>)]) -> Vec<Box<dyn WeightedOp>> {
    let layers = arch.param_layers();
    layers
        .iter()
        .zip(params)
        .map(|(p, (w, b))| -> Box<dyn WeightedOp> {
            match p.kind {
                ParamKind::Conv(_) => Box::new(DenseConv::new(conv_shape(p), w.clone(), b.clone())),
                ParamKind::Fc => Box::new(DenseFc::new(fc_shape(p), w.clone(), b.clone())),
            }
        })
        .collect()
}
