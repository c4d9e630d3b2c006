//! The paper's four networks on their synthetic defaults: the dense forward pass matches
//! the plain reference twins layer by layer, and the Q-CNN at every ISA matches the dense
//! network with weights rebuilt from the same codebooks to 1e-5 per layer.

use qcnn_baselines::reference::reference_layer;
use qcnn_baselines::DenseNetwork;
use qcnn_kernels::{blas, Isa};
use qcnn_model::synthetic::{synthetic_input, synthetic_network, DEFAULT_SEED};
use qcnn_model::{Model, NetworkKind};
use qcnn_quantized::{QuantizedNetwork, TableKind};
use qcnn_runner::{LayerRecorder, Network};
use qcnn_testdata::max_relative_error;

/// Same function, different summation order (f32 vs f64 twins, look-ups vs sgemm).
const LAYER_TOL: f32 = 1e-5;

fn record(network: &mut dyn Network, input: &[f32]) -> LayerRecorder {
    let mut rec = LayerRecorder::default();
    network.forward(input, &mut rec);
    rec
}

/// Every layer of the dense network against its twin fed the dense network's own previous
/// output.
fn dense_matches_twins(model: &Model, input: &[f32]) {
    let dense = record(&mut DenseNetwork::new(model), input);
    let weights: Vec<Vec<f32>> = model
        .params
        .iter()
        .map(|p| p.dense_weights().into_owned())
        .collect();
    let params: Vec<(&[f32], &[f32])> = weights
        .iter()
        .zip(&model.params)
        .map(|(w, p)| (&w[..], &p.bias[..]))
        .collect();
    let mut prev = input;
    for (index, name, got) in &dense.outputs {
        let want = reference_layer(&model.arch, &params, *index, prev);
        let err = max_relative_error(got, &want);
        eprintln!(
            "{} dense {name:>8}: relative error to the twin {err:.2e}",
            model.arch.name
        );
        assert!(err <= LAYER_TOL, "{} {name}: {err:e}", model.arch.name);
        prev = got;
    }
}

/// Every conv/fc layer of the Q-CNN at every ISA against the dense network.
fn quantized_matches_dense(model: &Model, input: &[f32]) {
    let dense = record(&mut DenseNetwork::new(model), input);
    for isa in Isa::available() {
        let target = qcnn_kernels::Target::for_isa(isa);
        let mut q = QuantizedNetwork::new(model, target, TableKind::F32).unwrap();
        let got = record(&mut q, input);
        for ((_, name, a), (_, _, b)) in got.outputs.iter().zip(&dense.outputs) {
            let err = max_relative_error(a, b);
            assert!(
                err <= LAYER_TOL,
                "{} {isa} {name}: {err:e}",
                model.arch.name
            );
        }
        eprintln!(
            "{} qcnn at {isa}: every layer within {LAYER_TOL:e} of dense",
            model.arch.name
        );
    }
}

fn check(network: NetworkKind) {
    blas::set_single_thread();
    let model = synthetic_network(network, DEFAULT_SEED);
    let input = synthetic_input(model.arch.input, DEFAULT_SEED, 0);
    dense_matches_twins(&model, &input);
    quantized_matches_dense(&model, &input);
}

#[test]
fn alexnet() {
    check(NetworkKind::AlexNet);
}

#[test]
fn caffenet() {
    check(NetworkKind::CaffeNet);
}

#[test]
fn cnn_s() {
    check(NetworkKind::CnnS);
}

#[test]
fn vgg16() {
    check(NetworkKind::Vgg16);
}
