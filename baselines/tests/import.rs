//! Dense models from other tools run through our dense network: an ONNX AlexNet written by
//! the `onnx` Python package's own helpers (opset 11, MatMul + Add, Gemm with transB = 0,
//! Dropout, Flatten) gives the same layer outputs as the same weights read from our format,
//! and our own export imports back to the same outputs.
//!
//! The third-party test needs `python3` with the `onnx` package (`pip install onnx`); it
//! prints `SKIPPED: ...` without them.

mod common;

use std::path::Path;
use std::process::Command;

use common::Recorder;
use qcnn_baselines::DenseNetwork;
use qcnn_model::import::map_onto;
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{alexnet, folder, Model};
use qcnn_runner::{Network, NoObserver};
use qcnn_testdata::max_relative_error;

/// Layer outputs may differ by summation order at most (they are computed by the same code
/// from the same weights, so in practice they are equal).
const TOLERANCE: f32 = 1e-5;

/// The synthetic AlexNet with its weights stored dense (as a trained model is).
fn dense_alexnet() -> Model {
    let mut model = synthetic_model(DEFAULT_SEED);
    for p in &mut model.params {
        p.dense = Some(p.dense_weights().into_owned());
        p.codebooks = None;
    }
    model
}

/// Every layer's output of `a` and `b` on two synthetic images within [`TOLERANCE`].
fn assert_same_outputs(a: &Model, b: &Model) {
    let (mut na, mut nb) = (DenseNetwork::new(a), DenseNetwork::new(b));
    for i in 0..2 {
        let image = synthetic_image(DEFAULT_SEED, i);
        let (mut ra, mut rb) = (Recorder::default(), Recorder::default());
        na.forward(&image, &mut ra);
        nb.forward(&image, &mut rb);
        assert_eq!(ra.outputs.len(), rb.outputs.len());
        for ((_, name, x), (_, _, y)) in ra.outputs.iter().zip(&rb.outputs) {
            let err = max_relative_error(x, y);
            assert!(err <= TOLERANCE, "image {i}, {name}: relative error {err}");
        }
    }
}

fn python_with_onnx() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-I", "-c", "import onnx, numpy"])
        .current_dir(std::env::temp_dir())
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some("python3")
}

#[test]
fn third_party_onnx_alexnet_matches_our_format() {
    let Some(python) = python_with_onnx() else {
        eprintln!(
            "SKIPPED: third_party_onnx_alexnet_matches_our_format: python3 with the `onnx` \
             package not found (pip install onnx)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dense_alexnet();
    let bins = dir.path().join("bins");
    folder::save(&model, &bins, "dense").unwrap();
    let from_folder = folder::load_folder(&folder::locate(&bins).unwrap(), &alexnet()).unwrap();
    let onnx_path = dir.path().join("third_party.onnx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/third_party_onnx.py");
    let out = Command::new(python)
        .arg("-I")
        .arg(&script)
        .arg(&bins)
        .arg("dense")
        .arg(&onnx_path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let net = qcnn_onnx::import::read(&onnx_path).unwrap();
    let imported = map_onto(&net, &alexnet()).unwrap();
    for (p, q) in imported.params.iter().zip(&from_folder.params) {
        assert_eq!(p.dense, q.dense, "layer {}: weights", p.shape.index);
        assert_eq!(p.bias, q.bias, "layer {}: bias", p.shape.index);
    }
    assert_same_outputs(&imported, &from_folder);
}

#[test]
fn our_export_imports_back_to_the_same_outputs() {
    let model = dense_alexnet();
    let bytes = qcnn_onnx::to_bytes(&model).unwrap();
    let net = qcnn_onnx::import::parse(&bytes, Path::new("export.onnx")).unwrap();
    let imported = map_onto(&net, &model.arch).unwrap();
    assert_same_outputs(&imported, &model);
    // And the imported network classifies like the original.
    let image = synthetic_image(DEFAULT_SEED, 3);
    let a = DenseNetwork::new(&model)
        .forward(&image, &mut NoObserver)
        .to_vec();
    let b = DenseNetwork::new(&imported)
        .forward(&image, &mut NoObserver)
        .to_vec();
    assert_eq!(a, b);
}
