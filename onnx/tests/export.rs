//! The ONNX writer: the graph it writes for AlexNet (ops, attributes, weights bit for bit),
//! the protobuf wire format against onnx.proto's field numbers, and the refusals.
//! That engines compute our network from the file is checked by the peers tests
//! (baselines/tests/peers.rs).

use prost::Message;
use qcnn_model::arch::conv;
use qcnn_model::arch::PoolSpec;
use qcnn_model::synthetic::{synthetic_model, DEFAULT_SEED};
use qcnn_model::{Architecture, Layer, LayerKind, LayerParams, Model, ModelSource, Shape};
use qcnn_onnx::proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use qcnn_onnx::{ExportError, IR_VERSION, OPSET};

fn decoded(model: &Model) -> ModelProto {
    let bytes = qcnn_onnx::to_bytes(model).expect("export");
    ModelProto::decode(bytes.as_slice()).expect("our own bytes decode")
}

fn graph(m: &ModelProto) -> &GraphProto {
    m.graph.as_ref().expect("a graph")
}

fn node<'a>(g: &'a GraphProto, name: &str) -> &'a NodeProto {
    g.node
        .iter()
        .find(|n| n.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no node {name}"))
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a AttributeProto {
    n.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{:?} has no attribute {name}", n.name))
}

fn initializer<'a>(g: &'a GraphProto, name: &str) -> &'a TensorProto {
    g.initializer
        .iter()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

fn dims(v: &qcnn_onnx::proto::ValueInfoProto) -> (String, Vec<i64>) {
    use qcnn_onnx::proto::tensor_shape_proto::dimension::Value as D;
    use qcnn_onnx::proto::type_proto::Value as T;
    let Some(T::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.clone()) else {
        panic!("not a tensor type")
    };
    let d = t.shape.unwrap().dim.into_iter().map(|d| match d.value {
        Some(D::DimValue(v)) => v,
        _ => panic!("symbolic dim"),
    });
    (v.name.clone().unwrap(), d.collect())
}

#[test]
fn alexnet_graph_is_caffes_layer_list() {
    let m = decoded(&synthetic_model(DEFAULT_SEED));
    assert_eq!(m.ir_version, Some(IR_VERSION));
    assert_eq!(m.opset_import.len(), 1);
    assert_eq!(m.opset_import[0].version, Some(OPSET));
    assert_eq!(m.opset_import[0].domain.as_deref(), Some(""));
    let g = graph(&m);
    let ops: Vec<&str> = g
        .node
        .iter()
        .map(|n| n.op_type.as_deref().unwrap())
        .collect();
    let want = "Conv Relu LRN MaxPool Conv Relu LRN MaxPool Conv Relu Conv Relu Conv Relu \
                MaxPool Flatten Gemm Relu Gemm Relu Gemm Softmax";
    assert_eq!(ops.join(" "), want);
    // Dropout is the identity: fc7 reads relu6 directly.
    assert_eq!(node(g, "fc7").input[0], "relu6");
    assert_eq!(node(g, "fc6").input[0], "fc6_flatten");
    assert_eq!(node(g, "fc6_flatten").input[0], "pool5");
    assert_eq!(g.input.len(), 1);
    assert_eq!(dims(&g.input[0]), ("data".into(), vec![1, 3, 227, 227]));
    let outputs: Vec<_> = g.output.iter().map(dims).collect();
    assert_eq!(
        outputs,
        vec![
            ("prob".into(), vec![1, 1000]),
            ("fc8".into(), vec![1, 1000])
        ]
    );
}

#[test]
fn alexnet_attributes_follow_method_md() {
    let m = decoded(&synthetic_model(DEFAULT_SEED));
    let g = graph(&m);
    let conv2 = node(g, "conv2");
    assert_eq!(conv2.input, ["pool1", "conv2_W", "conv2_b"]);
    assert_eq!(attr(conv2, "group").i, Some(2));
    assert_eq!(attr(conv2, "kernel_shape").ints, [5, 5]);
    assert_eq!(attr(conv2, "pads").ints, [2, 2, 2, 2]);
    assert_eq!(attr(conv2, "strides").ints, [1, 1]);
    assert_eq!(attr(node(g, "conv1"), "strides").ints, [4, 4]);
    assert_eq!(attr(node(g, "conv3"), "group").i, Some(1));
    let norm1 = node(g, "norm1");
    assert_eq!(attr(norm1, "size").i, Some(5));
    assert_eq!(attr(norm1, "alpha").f, Some(1e-4));
    assert_eq!(attr(norm1, "beta").f, Some(0.75));
    assert_eq!(attr(norm1, "bias").f, Some(1.0));
    let pool5 = node(g, "pool5");
    assert_eq!(attr(pool5, "ceil_mode").i, Some(1));
    assert_eq!(attr(pool5, "kernel_shape").ints, [3, 3]);
    assert_eq!(attr(pool5, "strides").ints, [2, 2]);
    let fc8 = node(g, "fc8");
    assert_eq!(attr(fc8, "transB").i, Some(1));
    // An explicit zero is still written (proto2 `optional`).
    assert_eq!(attr(fc8, "transA").i, Some(0));
    assert_eq!(attr(node(g, "prob"), "axis").i, Some(1));
}

#[test]
fn initializers_are_the_dense_weights_bit_for_bit() {
    let model = synthetic_model(DEFAULT_SEED);
    assert!(
        model.params.iter().all(|p| p.dense.is_none()),
        "rebuilt path"
    );
    let m = decoded(&model);
    let g = graph(&m);
    let want_dims: [(&str, &[i64]); 8] = [
        ("conv1", &[96, 3, 11, 11]),
        ("conv2", &[256, 48, 5, 5]),
        ("conv3", &[384, 256, 3, 3]),
        ("conv4", &[384, 192, 3, 3]),
        ("conv5", &[256, 192, 3, 3]),
        ("fc6", &[4096, 9216]),
        ("fc7", &[4096, 4096]),
        ("fc8", &[1000, 4096]),
    ];
    assert_eq!(g.initializer.len(), 16);
    for ((name, dims), params) in want_dims.iter().zip(&model.params) {
        let w = initializer(g, &format!("{name}_W"));
        let b = initializer(g, &format!("{name}_b"));
        assert_eq!(w.dims, *dims, "{name}");
        assert_eq!(b.dims, [dims[0]], "{name}");
        assert_eq!(w.data_type, Some(1), "{name}: FLOAT");
        assert_eq!(
            w.raw_data.as_deref(),
            Some(le(&params.dense_weights())),
            "{name}"
        );
        assert_eq!(b.raw_data.as_deref(), Some(le(&params.bias)), "{name}");
    }
    let doc = m.doc_string.unwrap();
    assert!(doc.contains("rebuilt from the codebooks"), "{doc}");
}

fn le(values: &[f32]) -> &'static [u8] {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Box::leak(bytes.into_boxed_slice())
}

/// (field number, wire type, value) of every top-level field of one protobuf message: the
/// wire format read without our own message types, to pin onnx.proto's field numbers.
fn wire_fields(mut bytes: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let (field, wire) = (key >> 3, key & 7);
        let value = match wire {
            0 => varint(&mut bytes).to_le_bytes().to_vec(),
            2 => {
                let len = varint(&mut bytes) as usize;
                let (v, rest) = bytes.split_at(len);
                bytes = rest;
                v.to_vec()
            }
            5 => {
                let (v, rest) = bytes.split_at(4);
                bytes = rest;
                v.to_vec()
            }
            other => panic!("unexpected wire type {other}"),
        };
        fields.push((field, wire, value));
    }
    fields.sort();
    fields
}

fn v(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

#[test]
fn wire_format_uses_onnx_proto_field_numbers() {
    let m = decoded(&synthetic_model(DEFAULT_SEED));
    let g = graph(&m);
    // AttributeProto: name = 1, type = 20 (INT = 2, INTS = 7, FLOAT = 1), i = 3, f = 2,
    // ints = 8 (proto2: unpacked, one varint field per value).
    let group = attr(node(g, "conv2"), "group").encode_to_vec();
    assert_eq!(
        wire_fields(&group),
        [(1, 2, b"group".to_vec()), (3, 0, v(2)), (20, 0, v(2))]
    );
    let pads = attr(node(g, "conv2"), "pads").encode_to_vec();
    let mut want = vec![(1, 2, b"pads".to_vec()), (20, 0, v(7))];
    want.extend((0..4).map(|_| (8, 0, v(2))));
    want.sort();
    assert_eq!(wire_fields(&pads), want);
    let beta = attr(node(g, "norm1"), "beta").encode_to_vec();
    assert_eq!(
        wire_fields(&beta),
        [
            (1, 2, b"beta".to_vec()),
            (2, 5, 0.75f32.to_le_bytes().to_vec()),
            (20, 0, v(1))
        ]
    );
    // NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
    let relu = node(g, "relu1").encode_to_vec();
    assert_eq!(
        wire_fields(&relu),
        [
            (1, 2, b"conv1".to_vec()),
            (2, 2, b"relu1".to_vec()),
            (3, 2, b"relu1".to_vec()),
            (4, 2, b"Relu".to_vec())
        ]
    );
    // TensorProto: dims = 1 (unpacked), data_type = 2, name = 8, raw_data = 9.
    let bias = initializer(g, "fc8_b").encode_to_vec();
    let fields = wire_fields(&bias);
    let keys: Vec<(u64, u64)> = fields.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(keys, [(1, 0), (2, 0), (8, 2), (9, 2)]);
    assert_eq!(fields[0].2, v(1000));
    assert_eq!(fields[1].2, v(1));
    assert_eq!(fields[3].2.len(), 4000);
    // ModelProto: ir_version = 1, producer_name = 2, graph = 7, opset_import = 8.
    let top: Vec<(u64, u64)> = wire_fields(&m.encode_to_vec())
        .iter()
        .map(|f| (f.0, f.1))
        .collect();
    for key in [(1, 0), (2, 2), (7, 2), (8, 2)] {
        assert!(top.contains(&key), "ModelProto field {key:?} missing");
    }
    // GraphProto: node = 1, initializer = 5, input = 11, output = 12.
    let mut small = g.clone();
    small.initializer.truncate(1);
    let keys: Vec<u64> = wire_fields(&small.encode_to_vec())
        .iter()
        .map(|f| f.0)
        .collect();
    for field in [1, 2, 5, 11, 12] {
        assert!(keys.contains(&field), "GraphProto field {field} missing");
    }
}

/// Conv → ReLU → pool → fc → dropout → softmax on a small input, random weights.
fn small_model(arch: Architecture) -> Model {
    let params = arch
        .param_layers()
        .into_iter()
        .map(|shape| LayerParams {
            shape,
            bias: (0..shape.out_channels()).map(|i| i as f32 * 0.1).collect(),
            codebooks: None,
            dense: Some(
                (0..shape.weight_count())
                    .map(|i| (i % 7) as f32 - 3.0)
                    .collect(),
            ),
        })
        .collect();
    Model {
        arch,
        params,
        source: ModelSource::Synthetic { seed: 0 },
    }
}

fn layer(name: &'static str, kind: LayerKind) -> Layer {
    Layer { name, kind }
}

#[test]
fn logits_are_the_tensor_before_the_softmax_across_dropout() {
    let arch = Architecture {
        name: "test",
        input: Shape::new(2, 7, 6),
        layers: vec![
            layer("c1", conv(4, 3, 1, 1, 2)),
            layer("r1", LayerKind::Relu),
            layer("f1", LayerKind::Fc { out: 5 }),
            layer("d1", LayerKind::Dropout),
            layer("p", LayerKind::Softmax),
        ],
    };
    let model = small_model(arch.clone());
    let i = qcnn_onnx::interface(&arch).unwrap();
    assert_eq!(
        (i.input.as_str(), i.input_dims.as_slice()),
        ("data", &[1, 2, 7, 6][..])
    );
    assert_eq!(
        (i.output.as_str(), i.output_dims.as_slice()),
        ("p", &[1, 5][..])
    );
    assert_eq!(i.logits.as_deref(), Some("f1"));
    assert_eq!(i.logits_dims, [1, 5]);
    let m = decoded(&model);
    let g = graph(&m);
    assert_eq!(node(g, "p").input[0], "f1");
    assert_eq!(g.output.len(), 2);
    // Without a final softmax there are no logits, and one output.
    let mut plain = arch;
    plain.layers.truncate(3);
    let i = qcnn_onnx::interface(&plain).unwrap();
    assert_eq!((i.output.as_str(), i.logits.as_deref()), ("f1", None));
    assert_eq!(graph(&decoded(&small_model(plain))).output.len(), 1);
}

#[test]
fn padded_pool_that_caffe_clips_is_refused() {
    // H = 4, k = 2, s = 3, p = 1: ceil((4 + 2 − 2) / 3) + 1 = 3 windows, but the third
    // starts at 6 − 1 = 5 ≥ H + p: Caffe drops it (2 windows), ONNX keeps it.
    let pool = PoolSpec {
        kernel: 2,
        stride: 3,
        pad: 1,
    };
    let arch = Architecture {
        name: "test",
        input: Shape::new(1, 4, 4),
        layers: vec![layer("pool", LayerKind::MaxPool(pool))],
    };
    assert_eq!(arch.shapes()[0], Shape::new(1, 2, 2));
    let err = qcnn_onnx::interface(&arch).unwrap_err();
    assert!(
        matches!(err, ExportError::Unsupported { ref layer, .. } if layer == "pool"),
        "{err}"
    );
    assert!(err.to_string().contains("clips"), "{err}");
}

#[test]
fn conv_after_fc_is_refused() {
    let arch = Architecture {
        name: "test",
        input: Shape::new(1, 3, 3),
        layers: vec![
            layer("f1", LayerKind::Fc { out: 4 }),
            layer("c1", conv(2, 1, 1, 0, 1)),
        ],
    };
    let err = qcnn_onnx::interface(&arch).unwrap_err();
    assert!(err.to_string().starts_with("layer c1:"), "{err}");
}

#[test]
fn wrong_weight_count_is_an_error_not_a_panic() {
    let arch = Architecture {
        name: "test",
        input: Shape::new(1, 3, 3),
        layers: vec![layer("f1", LayerKind::Fc { out: 4 })],
    };
    let mut model = small_model(arch);
    model.params[0].dense.as_mut().unwrap().pop();
    let err = qcnn_onnx::to_bytes(&model).unwrap_err();
    assert!(err.to_string().contains("f1"), "{err}");
}

#[test]
fn write_creates_the_file_and_errors_name_the_path() {
    let arch = Architecture {
        name: "test",
        input: Shape::new(1, 3, 3),
        layers: vec![layer("f1", LayerKind::Fc { out: 4 })],
    };
    let model = small_model(arch);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.onnx");
    let n = qcnn_onnx::write(&model, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, n);
    assert_eq!(bytes, qcnn_onnx::to_bytes(&model).unwrap());
    assert!(!dir.path().join("tiny.onnx.partial").exists());
    let missing = dir.path().join("no/such/folder/tiny.onnx");
    let err = qcnn_onnx::write(&model, &missing).unwrap_err();
    assert!(err.to_string().contains("no/such/folder"), "{err}");
}
