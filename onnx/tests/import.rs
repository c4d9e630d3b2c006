//! ONNX import: our exporter's files read back bit for bit, and bad files (an unknown
//! operator, a shape that does not fit the network, a truncated or corrupt protobuf, an old
//! opset) rejected with an error naming the node, never a panic.

use std::path::Path;

use prost::Message;
use qcnn_model::import::{identify, map_onto};
use qcnn_model::synthetic::synthetic_network;
use qcnn_model::{LayerParams, Model, ModelSource, NetworkKind};
use qcnn_onnx::import::parse;
use qcnn_onnx::proto::ModelProto;
use qcnn_testdata::tiny_alexnet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FILE: &str = "test.onnx";

/// The tiny AlexNet (groups, padding, LRN, overhanging pools, two fc layers) with random
/// dense weights.
fn tiny_model(seed: u64) -> Model {
    let arch = tiny_alexnet();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let params = arch
        .param_layers()
        .into_iter()
        .map(|shape| LayerParams {
            shape,
            bias: (0..shape.out_channels())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect(),
            codebooks: None,
            dense: Some(
                (0..shape.weight_count())
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect(),
            ),
        })
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed },
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Every layer's weights and biases equal bit for bit.
fn assert_same_weights(a: &Model, b: &Model) {
    assert_eq!(a.params.len(), b.params.len());
    for (p, q) in a.params.iter().zip(&b.params) {
        assert_eq!(p.shape, q.shape);
        assert_eq!(
            bits(&p.dense_weights()),
            bits(&q.dense_weights()),
            "layer {}",
            p.shape.index
        );
        assert_eq!(bits(&p.bias), bits(&q.bias), "layer {}", p.shape.index);
    }
}

#[test]
fn export_then_import_is_bit_identical() {
    let model = tiny_model(3);
    let bytes = qcnn_onnx::to_bytes(&model).unwrap();
    let net = parse(&bytes, Path::new(FILE)).unwrap();
    let back = map_onto(&net, &model.arch).unwrap();
    assert_same_weights(&model, &back);
    assert_eq!(
        back.source,
        ModelSource::Imported {
            path: FILE.into(),
            format: "ONNX"
        }
    );
}

#[test]
fn every_network_round_trips_and_is_identified() {
    let all: Vec<_> = NetworkKind::ALL.iter().map(|n| n.architecture()).collect();
    // CaffeNet and CNN-S at full size (AlexNet's dense weights are tested the same way by
    // the tiny net and the third-party test; VGG-16's 553 MB would only cost time).
    for kind in [NetworkKind::CaffeNet, NetworkKind::CnnS] {
        let model = synthetic_network(kind, 5);
        let bytes = qcnn_onnx::to_bytes(&model).unwrap();
        let net = parse(&bytes, Path::new(FILE)).unwrap();
        let back = identify(&net, &all).unwrap();
        assert_eq!(back.arch.name, model.arch.name);
        assert_same_weights(&model, &back);
    }
}

fn exported(model: &Model) -> ModelProto {
    qcnn_onnx::export(model).unwrap()
}

fn import_err(proto: &ModelProto) -> String {
    let bytes = proto.encode_to_vec();
    match parse(&bytes, Path::new(FILE)) {
        Err(e) => e.to_string(),
        Ok(net) => map_onto(&net, &tiny_alexnet()).unwrap_err().to_string(),
    }
}

#[test]
fn an_unknown_operator_is_named() {
    let mut proto = exported(&tiny_model(1));
    let node = &mut proto.graph.as_mut().unwrap().node[1];
    node.op_type = Some("Gelu".into());
    let err = import_err(&proto);
    assert!(
        err.contains("node 'relu1' (Gelu): unsupported operator"),
        "{err}"
    );
}

#[test]
fn a_shape_that_does_not_fit_names_the_node() {
    // conv2's weights with one output channel fewer than the network's.
    let mut model = tiny_model(1);
    let arch = model.arch.clone();
    let mut other = arch.clone();
    if let qcnn_model::LayerKind::Conv(c) = &mut other.layers[4].kind {
        c.out_channels = 8;
    }
    model.arch = other.clone();
    let shapes = other.param_layers();
    for (p, s) in model.params.iter_mut().zip(shapes) {
        p.shape = s;
        p.bias.resize(s.out_channels(), 0.0);
        p.dense.as_mut().unwrap().resize(s.weight_count(), 0.0);
    }
    let bytes = qcnn_onnx::to_bytes(&model).unwrap();
    let net = parse(&bytes, Path::new(FILE)).unwrap();
    let err = map_onto(&net, &arch).unwrap_err();
    assert_eq!(err.node, "conv2", "{err}");
    assert!(err.to_string().contains("conv 8 kernels"), "{err}");
    // Against the wrong network entirely: the input is named first.
    let err = map_onto(&net, &NetworkKind::Vgg16.architecture()).unwrap_err();
    assert_eq!(err.node, "input", "{err}");
}

#[test]
fn truncated_or_corrupt_files_are_errors_not_panics() {
    let bytes = qcnn_onnx::to_bytes(&tiny_model(2)).unwrap();
    // Every cut is an error (an empty file decodes as an empty model: no opset, no graph).
    for cut in [0, 1, 10, bytes.len() / 3, bytes.len() - 1] {
        assert!(
            parse(&bytes[..cut], Path::new(FILE)).is_err(),
            "cut at {cut}"
        );
    }
    let err = parse(&bytes[..bytes.len() / 2], Path::new(FILE))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.onnx: not a valid ONNX protobuf"),
        "{err}"
    );
    // Random byte flips: any outcome but a panic.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..300 {
        let mut bad = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bad.len());
            bad[at] = rng.random();
        }
        if let Ok(net) = parse(&bad, Path::new(FILE)) {
            let _ = map_onto(&net, &tiny_alexnet());
        }
    }
}

#[test]
fn old_opsets_and_bad_tensors_are_rejected() {
    let mut proto = exported(&tiny_model(1));
    proto.opset_import[0].version = Some(8);
    assert!(
        import_err(&proto).contains("opset 8"),
        "{}",
        import_err(&proto)
    );

    let mut proto = exported(&tiny_model(1));
    let w = &mut proto.graph.as_mut().unwrap().initializer[0];
    w.raw_data.as_mut().unwrap().truncate(8);
    let err = import_err(&proto);
    assert!(
        err.contains("node 'conv1' (Conv): tensor 'conv1_W': 8 raw bytes"),
        "{err}"
    );

    let mut proto = exported(&tiny_model(1));
    let node = &mut proto.graph.as_mut().unwrap().node[0];
    node.input[0] = "elsewhere".into();
    let err = import_err(&proto);
    assert!(err.contains("only chains"), "{err}");
}

#[test]
fn non_finite_weights_name_the_node_and_tensor() {
    // In raw_data, as our exporter writes them.
    let mut proto = exported(&tiny_model(1));
    let w = &mut proto.graph.as_mut().unwrap().initializer[0];
    w.raw_data.as_mut().unwrap()[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    let err = import_err(&proto);
    assert!(
        err.contains(
            "test.onnx: node 'conv1' (Conv): tensor 'conv1_W': value NaN at flat position 3 \
             (index [0, 0, 0, 3]"
        ),
        "{err}"
    );
    // In float_data, as other writers may.
    let mut proto = exported(&tiny_model(1));
    let b = proto
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some("conv1_b"))
        .unwrap();
    let mut values: Vec<f32> = b
        .raw_data
        .take()
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    values[2] = f32::INFINITY;
    b.float_data = values;
    let err = import_err(&proto);
    assert!(
        err.contains("node 'conv1' (Conv): tensor 'conv1_b': value inf at flat position 2"),
        "{err}"
    );
}

#[test]
fn special_and_oversized_files_are_refused_unread() {
    use qcnn_files::testing::{make_fifo, within_deadline};
    use qcnn_onnx::import::read;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.onnx");
    make_fifo(&fifo).unwrap();
    let e = within_deadline("a FIFO", 10, move || read(&fifo).unwrap_err().to_string());
    assert!(e.contains("fifo.onnx: is a FIFO (named pipe)"), "{e}");
    let zero = dir.path().join("zero.onnx");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let e = within_deadline("/dev/zero", 10, move || {
        read(&zero).unwrap_err().to_string()
    });
    assert!(e.contains("zero.onnx: is a character device"), "{e}");
    // Longer than any model: refused by its length (a sparse file: no disk, nothing read).
    let huge = dir.path().join("huge.onnx");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(qcnn_model::import::MAX_MODEL_BYTES + 1)
        .unwrap();
    let e = read(&huge).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: is 4294967297 bytes; an ONNX model is at most 4294967296 bytes",
            huge.display()
        )
    );
    // The OS message once, no source() to print it again.
    let missing = read(&dir.path().join("missing.onnx")).unwrap_err();
    assert_eq!(missing.to_string().matches("No such file").count(), 1);
    assert!(std::error::Error::source(&missing).is_none());
}
