//! Caffe import on a small net encoded here: the tiny AlexNet of the tests (groups, padding,
//! two LRNs, overhanging pools, dropout, two fc layers, softmax) written as a deploy
//! prototxt and a caffemodel, in the current `layer` form and in the V1 `layers` form
//! (legacy 4-D blob dims), read back bit for bit; bad files get errors naming the layer.

use std::path::Path;

use prost::Message;
use qcnn_caffe::proto::{
    v1_type_value, BlobProto, BlobShape, LayerParameter, NetParameter, V1LayerParameter,
};
use qcnn_caffe::{parse, CaffeError};
use qcnn_model::import::map_onto;
use qcnn_testdata::tiny_alexnet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PROTOTXT: &str = "deploy.prototxt";
const CAFFEMODEL: &str = "weights.caffemodel";

/// The layer part of the deploy prototxt in the current form.
const LAYERS: &str = r#"
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 16 kernel_size: 5 stride: 2 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1"
  lrn_param { local_size: 3 alpha: 0.3 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 16 kernel_size: 3 pad: 2 group: 2 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "norm2" type: "LRN" bottom: "conv2" top: "norm2"
  lrn_param { local_size: 3 alpha: 0.3 beta: 0.6 } }
layer { name: "pool2" type: "Pooling" bottom: "norm2" top: "pool2"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3"
  convolution_param { num_output: 8 kernel_size: 1 group: 2 } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "fc4" type: "InnerProduct" bottom: "conv3" top: "fc4"
  inner_product_param { num_output: 32 } }
layer { name: "relu4" type: "ReLU" bottom: "fc4" top: "fc4" }
layer { name: "drop4" type: "Dropout" bottom: "fc4" top: "fc4" dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc5" type: "InnerProduct" bottom: "fc4" top: "fc5"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc5" top: "prob" }
"#;

/// The current form with an Input layer.
fn prototxt() -> String {
    format!(
        "name: \"tiny\"\nlayer {{ name: \"data\" type: \"Input\" top: \"data\"\n  \
         input_param {{ shape {{ dim: 1 dim: 3 dim: 19 dim: 17 }} }} }}\n{LAYERS}"
    )
}

/// The V1 form: `layers`, enum types, `input_dim`.
fn prototxt_v1() -> String {
    let body = LAYERS
        .replace("layer {", "layers {")
        .replace("\"Convolution\"", "CONVOLUTION")
        .replace("\"ReLU\"", "RELU")
        .replace("\"LRN\"", "LRN")
        .replace("\"Pooling\"", "POOLING")
        .replace("\"InnerProduct\"", "INNER_PRODUCT")
        .replace("\"Dropout\"", "DROPOUT")
        .replace("\"Softmax\"", "SOFTMAX");
    format!("name: \"tiny\"\ninput: \"data\"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 19\ninput_dim: 17\n{body}")
}

/// A conv/fc layer's name, weight dims, weights and bias, in Caffe's layout.
type LayerWeights = (&'static str, Vec<usize>, Vec<f32>, Vec<f32>);

/// Random weights and biases per conv/fc layer of the tiny net.
fn weights() -> Vec<LayerWeights> {
    let arch = tiny_alexnet();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    arch.param_layers()
        .into_iter()
        .map(|p| {
            let dims = match p.kind {
                qcnn_model::arch::ParamKind::Conv(c) => {
                    vec![p.out_channels(), p.split_channels(), c.kernel, c.kernel]
                }
                qcnn_model::arch::ParamKind::Fc => vec![p.out_channels(), p.split_channels()],
            };
            let w = (0..p.weight_count())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let b = (0..p.out_channels())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            (arch.layers[p.index].name, dims, w, b)
        })
        .collect()
}

fn blob(dims: &[usize], data: &[f32]) -> BlobProto {
    BlobProto {
        shape: Some(BlobShape {
            dim: dims.iter().map(|&d| d as i64).collect(),
        }),
        data: data.to_vec(),
        ..Default::default()
    }
}

/// Legacy 4-D dims, leading 1s (fc weights (1, 1, C_t, C_s), biases (1, 1, 1, C_t)).
fn legacy_blob(dims: &[usize], data: &[f32]) -> BlobProto {
    let mut d = vec![1i64; 4 - dims.len()];
    d.extend(dims.iter().map(|&x| x as i64));
    BlobProto {
        num: Some(d[0]),
        channels: Some(d[1]),
        height: Some(d[2]),
        width: Some(d[3]),
        data: data.to_vec(),
        ..Default::default()
    }
}

fn caffemodel() -> Vec<u8> {
    let layer = weights()
        .into_iter()
        .map(|(name, dims, w, b)| LayerParameter {
            name: Some(name.into()),
            r#type: Some(
                if dims.len() == 4 {
                    "Convolution"
                } else {
                    "InnerProduct"
                }
                .into(),
            ),
            blobs: vec![blob(&dims, &w), blob(&[b.len()], &b)],
            ..Default::default()
        })
        .collect();
    NetParameter {
        name: Some("tiny".into()),
        layer,
        ..Default::default()
    }
    .encode_to_vec()
}

fn caffemodel_v1() -> Vec<u8> {
    let layers = weights()
        .into_iter()
        .map(|(name, dims, w, b)| V1LayerParameter {
            name: Some(name.into()),
            r#type: v1_type_value(if dims.len() == 4 {
                "Convolution"
            } else {
                "InnerProduct"
            }),
            blobs: vec![legacy_blob(&dims, &w), legacy_blob(&[b.len()], &b)],
            ..Default::default()
        })
        .collect();
    NetParameter {
        layers,
        ..Default::default()
    }
    .encode_to_vec()
}

fn read(text: &str, model: &[u8]) -> Result<qcnn_model::import::ForeignNet, CaffeError> {
    parse(text, Path::new(PROTOTXT), model, Path::new(CAFFEMODEL))
}

fn assert_weights_match(text: &str, model: &[u8]) {
    let net = read(text, model).unwrap();
    let imported = map_onto(&net, &tiny_alexnet()).unwrap();
    for (p, (name, _, w, b)) in imported.params.iter().zip(weights()) {
        assert_eq!(p.dense.as_deref(), Some(&w[..]), "{name}: weights");
        assert_eq!(p.bias, b, "{name}: bias");
    }
}

#[test]
fn current_form_reads_back_bit_for_bit() {
    assert_weights_match(&prototxt(), &caffemodel());
}

#[test]
fn v1_form_with_legacy_blobs_reads_back_bit_for_bit() {
    assert_weights_match(&prototxt_v1(), &caffemodel_v1());
    // The two forms mix across the files as Caffe allows (structure V1, weights current).
    assert_weights_match(&prototxt_v1(), &caffemodel());
}

fn err(text: &str, model: &[u8]) -> String {
    match read(text, model) {
        Err(e) => e.to_string(),
        Ok(net) => map_onto(&net, &tiny_alexnet()).unwrap_err().to_string(),
    }
}

#[test]
fn bad_files_name_the_layer() {
    let unknown = prototxt().replace(
        "type: \"ReLU\" bottom: \"conv2\"",
        "type: \"PReLU\" bottom: \"conv2\"",
    );
    let e = err(&unknown, &caffemodel());
    assert!(
        e.contains("layer 'relu2' (PReLU): unsupported layer type"),
        "{e}"
    );

    let shape = prototxt().replace(
        "num_output: 16 kernel_size: 3",
        "num_output: 12 kernel_size: 3",
    );
    let e = err(&shape, &caffemodel());
    assert!(
        e.contains("conv2: ") && e.contains("conv 12 kernels"),
        "{e}"
    );

    let bytes = caffemodel();
    let e = err(&prototxt(), &bytes[..bytes.len() - 7]);
    assert!(
        e.contains("weights.caffemodel: not a valid caffemodel protobuf"),
        "{e}"
    );

    let e = err(
        &prototxt().replace("name: \"fc5\"", "name: \"fc5b\""),
        &bytes,
    );
    assert!(
        e.contains("layer 'fc5b' (InnerProduct): no weights of this name"),
        "{e}"
    );

    let training = prototxt().replace("type: \"Softmax\"", "type: \"SoftmaxWithLoss\"");
    let e = err(&training, &bytes);
    assert!(e.contains("give the deploy prototxt"), "{e}");

    let e = err("layer { name: \"x\" ", &bytes);
    assert!(e.contains("deploy.prototxt: line 1"), "{e}");

    let ave = prototxt().replacen("pool: MAX", "pool: AVE", 1);
    assert!(err(&ave, &bytes).contains("only MAX pooling"));
}

#[test]
fn corrupt_caffemodels_never_panic() {
    let bytes = caffemodel();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..300 {
        let mut bad = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bad.len());
            bad[at] = rng.random();
        }
        if let Ok(net) = read(&prototxt(), &bad) {
            let _ = map_onto(&net, &tiny_alexnet());
        }
    }
}

/// The caffemodel with `edit` applied to one layer's blobs.
fn caffemodel_with(layer: &str, edit: impl Fn(&mut Vec<BlobProto>)) -> Vec<u8> {
    let mut net = NetParameter::decode(&caffemodel()[..]).unwrap();
    let found = net
        .layer
        .iter_mut()
        .find(|l| l.name.as_deref() == Some(layer))
        .unwrap();
    edit(&mut found.blobs);
    net.encode_to_vec()
}

#[test]
fn non_finite_weights_name_the_layer_and_blob() {
    let nan = caffemodel_with("conv2", |blobs| blobs[0].data[7] = f32::NAN);
    let e = err(&prototxt(), &nan);
    assert!(
        e.contains(
            "weights.caffemodel: layer 'conv2' (Convolution): weights: value NaN at flat \
             position 7 (index [0, 0, 2, 1]"
        ),
        "{e}"
    );
    let inf = caffemodel_with("fc5", |blobs| blobs[1].data[3] = f32::NEG_INFINITY);
    let e = err(&prototxt(), &inf);
    assert!(
        e.contains("layer 'fc5' (InnerProduct): bias: value -inf at flat position 3"),
        "{e}"
    );
    // A double beyond f32's range becomes infinite: refused, not rounded to a number.
    let huge = caffemodel_with("fc4", |blobs| {
        blobs[1].double_data = vec![1e300; blobs[1].data.len()];
        blobs[1].data.clear();
    });
    let e = err(&prototxt(), &huge);
    assert!(
        e.contains("layer 'fc4' (InnerProduct): bias: value inf at flat position 0"),
        "{e}"
    );
}

#[test]
fn special_files_are_refused_unread() {
    use qcnn_files::testing::{make_fifo, within_deadline};
    let dir = tempfile::tempdir().unwrap();
    let prototxt_path = dir.path().join("net.prototxt");
    let weights_path = dir.path().join("net.caffemodel");
    std::fs::write(&prototxt_path, prototxt()).unwrap();
    std::fs::write(&weights_path, caffemodel()).unwrap();
    qcnn_caffe::read(&prototxt_path, &weights_path).unwrap();

    // A FIFO as the prototxt, /dev/zero as the weights: errors at once, nothing read.
    let fifo = dir.path().join("fifo.prototxt");
    make_fifo(&fifo).unwrap();
    let zero = dir.path().join("zero.caffemodel");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (f, w) = (fifo.clone(), weights_path.clone());
    let e = within_deadline("a FIFO prototxt", 10, move || {
        qcnn_caffe::read(&f, &w).unwrap_err().to_string()
    });
    assert!(e.contains("fifo.prototxt: is a FIFO (named pipe)"), "{e}");
    let (p, z) = (prototxt_path.clone(), zero.clone());
    let e = within_deadline("/dev/zero weights", 10, move || {
        qcnn_caffe::read(&p, &z).unwrap_err().to_string()
    });
    assert!(e.contains("zero.caffemodel: is a character device"), "{e}");

    // Weights larger than any model are refused by their length (a sparse file: no disk).
    let huge = dir.path().join("huge.caffemodel");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(qcnn_model::import::MAX_MODEL_BYTES + 1)
        .unwrap();
    let e = qcnn_caffe::read(&prototxt_path, &huge)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("huge.caffemodel: is 4294967297 bytes; a caffemodel is at most 4294967296"),
        "{e}"
    );

    // The prototxt beside a caffemodel: a folder of that name is an error, not "absent".
    assert_eq!(
        qcnn_caffe::prototxt_beside(&weights_path).unwrap(),
        Some(prototxt_path)
    );
    let other = dir.path().join("other.caffemodel");
    std::fs::create_dir(dir.path().join("other.prototxt")).unwrap();
    let e = qcnn_caffe::prototxt_beside(&other).unwrap_err().to_string();
    assert!(e.contains("other.prototxt: is a directory"), "{e}");
    let lonely = tempfile::tempdir().unwrap();
    assert_eq!(
        qcnn_caffe::prototxt_beside(&lonely.path().join("x.caffemodel")).unwrap(),
        None
    );
}
