//! Helpers shared by the baselines tests.
#![allow(dead_code)]

use std::path::PathBuf;

use qcnn_baselines::{conv_shape, fc_shape, DenseConv, DenseFc, WeightedOp};
use qcnn_model::arch::{ConvSpec, LrnSpec, ParamKind, PoolSpec};
use qcnn_model::{Architecture, Layer, LayerKind, Observer, Shape};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// /work/shared (or $QCNN_SHARED), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("QCNN_SHARED") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// Keeps a copy of every layer's output.
#[derive(Default)]
pub struct Recorder {
    /// (layer index, layer name, output).
    pub outputs: Vec<(usize, &'static str, Vec<f32>)>,
}

impl Observer for Recorder {
    fn after_layer(&mut self, index: usize, layer: &Layer, output: &[f32]) {
        self.outputs.push((index, layer.name, output.to_vec()));
    }
}

impl Recorder {
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.outputs
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(_, _, o)| o.as_slice())
    }
}

pub fn values(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

pub fn conv(
    out_channels: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> LayerKind {
    LayerKind::Conv(ConvSpec {
        out_channels,
        kernel,
        stride,
        pad,
        groups,
    })
}

/// A small AlexNet: every layer kind, groups, padding, stride, an overhanging pool window.
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
            l("conv1", conv(8, 5, 2, 1, 1)),
            l("relu1", Relu),
            l("norm1", Lrn(lrn)),
            l("pool1", MaxPool(pool)),
            l("conv2", conv(6, 3, 1, 2, 2)),
            l("relu2", Relu),
            l("norm2", Lrn(LrnSpec { beta: 0.6, ..lrn })),
            l("pool2", MaxPool(pool)),
            l("conv3", conv(4, 1, 1, 0, 2)),
            l("relu3", Relu),
            l("fc4", Fc { out: 9 }),
            l("relu4", Relu),
            l("drop4", Dropout),
            l("fc5", Fc { out: 5 }),
            l("prob", Softmax),
        ],
    }
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
