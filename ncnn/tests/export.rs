//! The ncnn writer: the `.param` text it writes for AlexNet (layer types, blob chain, every
//! parameter id ncnn reads), the `.bin` layout bit for bit, and the refusals. That ncnn
//! computes our network from the files is checked by the peers tests
//! (baselines/tests/peers.rs).

use std::collections::BTreeMap;

use qcnn_model::arch::{conv, LrnSpec, PoolSpec};
use qcnn_model::synthetic::{synthetic_model, DEFAULT_SEED};
use qcnn_model::{Architecture, Layer, LayerKind, LayerParams, Model, ModelSource, Shape};
use qcnn_ncnn::{ExportError, INPUT, MAGIC};

/// One layer line of a `.param` file, read as ncnn's ParamDict reads it.
#[derive(Debug)]
struct ParamLine {
    kind: String,
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    values: BTreeMap<i32, String>,
}

impl ParamLine {
    fn int(&self, key: i32) -> i64 {
        self.values[&key]
            .parse()
            .unwrap_or_else(|_| panic!("{}: {key} is not an int", self.name))
    }
    fn float(&self, key: i32) -> f32 {
        let v = &self.values[&key];
        assert!(
            v.contains('.') || v.contains('e'),
            "{v}: ncnn reads it as an int"
        );
        ncnn_float(v)
    }
}

/// The header counts and the layer lines.
fn parse(param: &str) -> (usize, usize, Vec<ParamLine>) {
    let mut lines = param.lines();
    assert_eq!(lines.next(), Some(MAGIC.to_string().as_str()));
    let counts: Vec<usize> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let layers = lines
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (n_in, n_out): (usize, usize) = (w[2].parse().unwrap(), w[3].parse().unwrap());
            let inputs = w[4..4 + n_in].iter().map(|s| s.to_string()).collect();
            let outputs = w[4 + n_in..4 + n_in + n_out]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let values = w[4 + n_in + n_out..]
                .iter()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    assert!(v.len() <= 15, "{kv}: ncnn cuts values at 15 characters");
                    (k.parse().unwrap(), v.to_string())
                })
                .collect();
            ParamLine {
                kind: w[0].into(),
                name: w[1].into(),
                inputs,
                outputs,
                values,
            }
        })
        .collect();
    (counts[0], counts[1], layers)
}

/// ncnn's `vstr_to_float` (src/paramdict.cpp): sign, integer digits, fraction digits, exponent,
/// in double, then cast to float.
fn ncnn_float(s: &str) -> f32 {
    let b = s.as_bytes();
    let mut i = 0;
    let negative = b[i] == b'-';
    if b[i] == b'+' || b[i] == b'-' {
        i += 1;
    }
    let mut v1: u32 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v1 = v1 * 10 + u32::from(b[i] - b'0');
        i += 1;
    }
    let mut v = f64::from(v1);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let (mut pow10, mut v2) = (1u32, 0u32);
        while i < b.len() && b[i].is_ascii_digit() {
            v2 = v2 * 10 + u32::from(b[i] - b'0');
            pow10 *= 10;
            i += 1;
        }
        v += f64::from(v2) / f64::from(pow10);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let up = b[i] != b'-';
        if b[i] == b'+' || b[i] == b'-' {
            i += 1;
        }
        let mut expon = 0u32;
        while i < b.len() && b[i].is_ascii_digit() {
            expon = expon * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let mut scale = 1.0f64;
        while expon >= 8 {
            scale *= 1e8;
            expon -= 8;
        }
        while expon > 0 {
            scale *= 10.0;
            expon -= 1;
        }
        v = if up { v * scale } else { v / scale };
    }
    assert_eq!(i, b.len(), "{s}: trailing characters");
    if negative {
        -(v as f32)
    } else {
        v as f32
    }
}

fn layer<'a>(layers: &'a [ParamLine], name: &str) -> &'a ParamLine {
    layers
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no layer {name}"))
}

#[test]
fn alexnet_param_is_caffes_layer_list() {
    let net = qcnn_ncnn::export(&synthetic_model(DEFAULT_SEED)).unwrap();
    let (layer_count, blob_count, layers) = parse(&net.param);
    assert_eq!(layer_count, layers.len());
    // Every layer makes one blob, and no two layers make the same one.
    let mut blobs: Vec<&str> = layers
        .iter()
        .flat_map(|l| &l.outputs)
        .map(String::as_str)
        .collect();
    blobs.sort();
    blobs.dedup();
    assert_eq!(blob_count, blobs.len());
    assert_eq!(blob_count, layers.len());
    let kinds: Vec<&str> = layers.iter().map(|l| l.kind.as_str()).collect();
    let want = "Input Convolution ReLU LRN Pooling ConvolutionDepthWise ReLU LRN Pooling \
                Convolution ReLU ConvolutionDepthWise ReLU ConvolutionDepthWise ReLU Pooling \
                InnerProduct ReLU InnerProduct ReLU InnerProduct Softmax";
    assert_eq!(kinds.join(" "), want);
    // A chain: each layer reads the blob the one before made (dropout is the identity).
    for pair in layers.windows(2) {
        assert_eq!(pair[1].inputs, pair[0].outputs, "{}", pair[1].name);
        assert_eq!(pair[1].outputs, [pair[1].name.clone()]);
    }
    assert_eq!(layer(&layers, "fc7").inputs, ["relu6"]);
    let input = &layers[0];
    assert_eq!((input.name.as_str(), input.inputs.len()), (INPUT, 0));
    assert_eq!((input.int(0), input.int(1), input.int(2)), (227, 227, 3));
    assert_eq!(net.blobs.input, "data");
    assert_eq!(net.blobs.input_shape, Shape::new(3, 227, 227));
    assert_eq!(net.blobs.output, "prob");
    assert_eq!(net.blobs.output_shape, Shape::new(1000, 1, 1));
    assert_eq!(net.blobs.logits.as_deref(), Some("fc8"));
}

#[test]
fn alexnet_parameters_follow_method_md() {
    let net = qcnn_ncnn::export(&synthetic_model(DEFAULT_SEED)).unwrap();
    let (_, _, layers) = parse(&net.param);
    let conv1 = layer(&layers, "conv1");
    // num_output, kernel, stride, pad, bias_term, weight_data_size.
    let ints = |l: &ParamLine, keys: &[i32]| keys.iter().map(|&k| l.int(k)).collect::<Vec<_>>();
    assert_eq!(
        ints(conv1, &[0, 1, 3, 4, 5, 6]),
        [96, 11, 4, 0, 1, 96 * 3 * 121]
    );
    assert!(
        !conv1.values.contains_key(&7),
        "no group on a plain convolution"
    );
    let conv2 = layer(&layers, "conv2");
    assert_eq!(
        ints(conv2, &[0, 1, 3, 4, 5, 6, 7]),
        [256, 5, 1, 2, 1, 256 * 48 * 25, 2]
    );
    assert_eq!(
        ints(layer(&layers, "conv3"), &[0, 1, 4, 6]),
        [384, 3, 1, 384 * 256 * 9]
    );
    assert_eq!(layer(&layers, "conv5").int(7), 2);
    let norm1 = layer(&layers, "norm1");
    assert_eq!(ints(norm1, &[0, 1]), [0, 5], "across channels, size 5");
    assert_eq!(
        (norm1.float(2), norm1.float(3), norm1.float(4)),
        (1e-4, 0.75, 1.0)
    );
    let pool5 = layer(&layers, "pool5");
    // max, kernel, stride, pad, not global, full padding (ceil rounding).
    assert_eq!(ints(pool5, &[0, 1, 2, 3, 4, 5]), [0, 3, 2, 0, 0, 0]);
    assert_eq!(
        ints(layer(&layers, "fc6"), &[0, 1, 2]),
        [4096, 1, 4096 * 9216]
    );
    assert_eq!(
        ints(layer(&layers, "fc8"), &[0, 1, 2]),
        [1000, 1, 1000 * 4096]
    );
    assert_eq!(layer(&layers, "relu1").float(0), 0.0);
    assert_eq!(ints(layer(&layers, "prob"), &[0, 1]), [0, 1]);
}

#[test]
fn bin_is_flagged_weights_then_biases_bit_for_bit() {
    let model = synthetic_model(DEFAULT_SEED);
    assert!(
        model.params.iter().all(|p| p.dense.is_none()),
        "rebuilt path"
    );
    let net = qcnn_ncnn::export(&model).unwrap();
    let mut at = 0;
    for params in &model.params {
        let name = model.arch.layers[params.shape.index].name;
        assert_eq!(&net.bin[at..at + 4], [0, 0, 0, 0], "{name}: raw f32 flag");
        at += 4;
        let w = le(&params.dense_weights());
        assert_eq!(&net.bin[at..at + w.len()], &w[..], "{name}: weights");
        at += w.len();
        let b = le(&params.bias);
        assert_eq!(&net.bin[at..at + b.len()], &b[..], "{name}: biases");
        at += b.len();
    }
    assert_eq!(at, net.bin.len(), "nothing after fc8's biases");
    assert_eq!(net.bin.len() % 4, 0, "32-bit aligned");
}

fn le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn floats_read_back_exactly_through_ncnns_parser() {
    // LRN parameters are the only floats: write a run of awkward values through them.
    let awkward = [
        1e-4f32,
        0.75,
        1.0,
        2.0,
        0.3,
        1.0 / 3.0,
        123_456.79,
        7.006_492e-10,
        3.402_823_5e38,
        1.175_494_4e-38,
        0.1,
        0.6,
        -2.5,
    ];
    for (i, &value) in awkward.iter().enumerate() {
        let mut model = tiny(i as u64);
        for layer in &mut model.arch.layers {
            if let LayerKind::Lrn(spec) = &mut layer.kind {
                spec.alpha = value;
                spec.k = value.abs().max(1e-3);
            }
        }
        let net = qcnn_ncnn::export(&model).unwrap();
        let (_, _, layers) = parse(&net.param);
        let norm = layer(&layers, "norm1");
        assert_eq!(
            norm.float(2),
            value,
            "alpha {value:e} written as {}",
            norm.values[&2]
        );
        assert_eq!(norm.float(4), value.abs().max(1e-3));
    }
}

/// A small network with weights (dense, stored), as the peers tests use.
fn tiny(seed: u64) -> Model {
    let arch = qcnn_testdata::tiny_alexnet();
    let params = arch
        .param_layers()
        .into_iter()
        .map(|shape| LayerParams {
            shape,
            bias: vec![seed as f32; shape.out_channels()],
            codebooks: None,
            dense: Some(vec![0.5; shape.weight_count()]),
        })
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed },
    }
}

#[test]
fn tiny_network_ends_in_its_softmax_and_logits() {
    let blobs = qcnn_ncnn::blobs(&qcnn_testdata::tiny_alexnet()).unwrap();
    assert_eq!(blobs.output, "prob");
    assert_eq!(blobs.logits.as_deref(), Some("fc5"));
    assert_eq!(blobs.output_shape, Shape::new(10, 1, 1));
    assert_eq!(blobs.input_shape, Shape::new(3, 19, 17));
}

#[test]
fn write_puts_the_two_files_in_place() {
    let model = tiny(3);
    let dir = tempfile::tempdir().unwrap();
    let (param, bin) = (dir.path().join("m.param"), dir.path().join("m.bin"));
    let blobs = qcnn_ncnn::write(&model, &param, &bin).unwrap();
    let net = qcnn_ncnn::export(&model).unwrap();
    assert_eq!(std::fs::read_to_string(&param).unwrap(), net.param);
    assert_eq!(std::fs::read(&bin).unwrap(), net.bin);
    assert_eq!(blobs, net.blobs);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let err = qcnn_ncnn::write(&model, &dir.path().join("no/such/m.param"), &bin).unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/m.param"), "{err}");
}

fn arch(layers: Vec<(&'static str, LayerKind)>, input: Shape) -> Architecture {
    Architecture {
        name: "test network",
        input,
        layers: layers
            .into_iter()
            .map(|(name, kind)| Layer { name, kind })
            .collect(),
    }
}

fn refusal(a: &Architecture) -> String {
    match qcnn_ncnn::blobs(a) {
        Err(ExportError::Unsupported { layer, problem }) => format!("{layer}: {problem}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn what_ncnn_cannot_express_is_refused_naming_the_layer() {
    let lrn = |size| {
        LayerKind::Lrn(LrnSpec {
            size,
            alpha: 1e-4,
            beta: 0.75,
            k: 1.0,
        })
    };
    let even = arch(
        vec![("c", conv(4, 3, 1, 0, 1)), ("n", lrn(4))],
        Shape::new(3, 8, 8),
    );
    let e = refusal(&even);
    assert!(e.starts_with("n: ") && e.contains("even"), "{e}");
    // Caffe clips a last window that would start in the padding; ncnn does not.
    // H = 4, k = 2, s = 3, p = 1: ceil((4 + 2 − 2) / 3) + 1 = 3 windows, but the third
    // starts at 6 − 1 = 5 ≥ H + p: Caffe drops it.
    let clipped = PoolSpec {
        kernel: 2,
        stride: 3,
        pad: 1,
    };
    let clip = arch(
        vec![
            ("c", conv(4, 1, 1, 0, 1)),
            ("p", LayerKind::MaxPool(clipped)),
        ],
        Shape::new(3, 4, 4),
    );
    assert_eq!(clip.shapes()[1], Shape::new(4, 2, 2));
    let e = refusal(&clip);
    assert!(e.starts_with("p: ") && e.contains("clips"), "{e}");
    let after_fc = arch(
        vec![("f", LayerKind::Fc { out: 8 }), ("c", conv(4, 1, 1, 0, 1))],
        Shape::new(3, 4, 4),
    );
    assert!(refusal(&after_fc).starts_with("c: a convolution after an fc"));
    let spaced = arch(vec![("my conv", conv(4, 1, 1, 0, 1))], Shape::new(3, 4, 4));
    assert!(refusal(&spaced).contains("without spaces"));
    let named_like_input = arch(vec![("data", conv(4, 1, 1, 0, 1))], Shape::new(3, 4, 4));
    assert!(refusal(&named_like_input).contains("input blob"));
    let nothing = arch(vec![("d", LayerKind::Dropout)], Shape::new(3, 4, 4));
    assert!(refusal(&nothing).contains("no layer computes anything"));
}

#[test]
fn parameters_that_do_not_fit_are_refused() {
    let mut model = tiny(1);
    model.params.pop();
    let e = qcnn_ncnn::export(&model).unwrap_err().to_string();
    assert!(e.contains("parameter sets for"), "{e}");
    let mut model = tiny(1);
    model.params[1].bias.pop();
    let e = qcnn_ncnn::export(&model).unwrap_err().to_string();
    assert!(
        e.starts_with("layer conv2: ") && e.contains("biases"),
        "{e}"
    );
    let mut model = tiny(1);
    model.params[0].dense.as_mut().unwrap().push(1.0);
    let e = qcnn_ncnn::export(&model).unwrap_err().to_string();
    assert!(
        e.starts_with("layer conv1: ") && e.contains("dense weights"),
        "{e}"
    );
}
