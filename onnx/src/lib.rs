//! The dense AlexNet as we run it, as a standard ONNX file, so that other engines (tract,
//! onnxruntime, OpenVINO) can run the very same network on the very same weights.
//!
//! Layer by layer (Caffe semantics, METHOD.md), ONNX opset [`OPSET`]:
//! - conv → `Conv` (weights (C_t, C_s/groups, kh, kw), bias (C_t), `group`, symmetric `pads`)
//! - ReLU → `Relu`; LRN → `LRN` (ONNX divides alpha by `size` like Caffe)
//! - max pooling → `MaxPool` with `ceil_mode = 1` (Caffe's ceil rounding)
//! - fc → `Flatten` (first fc only: (C, H, W) order, as Caffe) then `Gemm` with `transB = 1`
//!   on the (C_t, C_s) weights
//! - dropout → nothing (the identity at test time); softmax → `Softmax` over axis 1.
//!
//! The graph's input is [`INPUT`], (1, 3, 227, 227) for AlexNet; its first output is named
//! after the last layer (`prob`), its second is the softmax's input (`fc8`, the logits: see
//! [`Interface::logits`]). Every node's output tensor carries its layer's name. Dense weights are
//! the stored ones, or rebuilt from the codebooks (codebook[assignment]) exactly as the dense
//! baseline rebuilds them.

pub mod import;
pub mod proto;

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use qcnn_model::arch::{ConvSpec, LrnSpec, ParamKind, ParamShape, PoolSpec};
use qcnn_model::{Architecture, LayerKind, LayerParams, Model, ModelSource, Shape};

use proto::tensor_shape_proto::{dimension, Dimension};
use proto::{
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The ONNX operator-set version the graph is written against: every op we use exists
/// unchanged there, and every peer we drive (tract, onnxruntime, OpenVINO) supports it.
pub const OPSET: i64 = 13;
/// ONNX IR version 7 is the one that goes with opset 13.
pub const IR_VERSION: i64 = 7;
/// Name of the graph's input tensor.
pub const INPUT: &str = "data";
/// `producer_name` in the file.
pub const PRODUCER: &str = "qcnn-bench";

/// Why a model could not be written as ONNX.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The architecture uses something ONNX (or our mapping) cannot express faithfully.
    #[error("layer {layer}: {problem}")]
    Unsupported { layer: String, problem: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a peer needs to feed the graph and read its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub input: String,
    /// (1, C, H, W).
    pub input_dims: Vec<usize>,
    pub output: String,
    /// (1, C_out) after an fc layer, (1, C, H, W) otherwise.
    pub output_dims: Vec<usize>,
    /// When the network ends in a softmax: the tensor it normalises (AlexNet: `fc8`, the
    /// logits), a second graph output. Probabilities near one-hot hide almost any error in
    /// the layers below; the logits do not, so agreement checks compare them too.
    pub logits: Option<String>,
    /// Dims of `logits` (the same as `output_dims`).
    pub logits_dims: Vec<usize>,
}

impl Interface {
    pub fn input_len(&self) -> usize {
        self.input_dims.iter().product()
    }
    pub fn output_len(&self) -> usize {
        self.output_dims.iter().product()
    }
}

/// The graph's input and output names and shapes for `arch` (no weights needed).
pub fn interface(arch: &Architecture) -> Result<Interface, ExportError> {
    let graph = build_graph(arch, None)?;
    Ok(graph.interface)
}

/// `model`'s dense network as an ONNX model.
pub fn export(model: &Model) -> Result<ModelProto, ExportError> {
    let graph = build_graph(&model.arch, Some(&model.params))?;
    let rebuilt = model.params.iter().any(|p| p.dense.is_none());
    let weights = if rebuilt {
        "dense weights rebuilt from the codebooks (codebook[assignment])"
    } else {
        "dense weights as stored"
    };
    let source = describe_source(&model.source, model.arch.name);
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some(PRODUCER.into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        domain: None,
        model_version: Some(1),
        doc_string: Some(format!(
            "The dense {} of qcnn-bench (Caffe semantics): {source}; {weights}.",
            model.arch.name
        )),
        graph: Some(graph.proto),
        metadata_props: vec![
            entry("qcnn.source", &source),
            entry("qcnn.weights", weights),
        ],
    })
}

/// [`export`], encoded.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, ExportError> {
    Ok(export(model)?.encode_to_vec())
}

/// Writes [`export`] to `path` (through a `.partial` file renamed at the end, so a reader
/// never sees half a file). Returns the number of bytes written.
pub fn write(model: &Model, path: &Path) -> Result<u64, ExportError> {
    let bytes = to_bytes(model)?;
    let io = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = std::fs::File::create(&partial)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(io(e));
    }
    Ok(bytes.len() as u64)
}

fn describe_source(source: &ModelSource, network: &str) -> String {
    match source {
        ModelSource::Synthetic { seed } => format!("embedded synthetic {network} (seed {seed})"),
        ModelSource::Folder(p) => format!("model folder {}", p.display()),
        ModelSource::Imported { path, format } => format!("{format} file {}", path.display()),
    }
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

/// A graph under construction, and what it offers its callers.
struct Graph {
    proto: GraphProto,
    interface: Interface,
}

/// The current tensor while layers are appended: its name and dims (batch first).
struct Cursor {
    name: String,
    dims: Vec<usize>,
}

/// Builds the graph of `arch`; with `params` (one per conv/fc layer, in order) the weights
/// become initializers, without them only the topology and shapes are checked.
fn build_graph(arch: &Architecture, params: Option<&[LayerParams]>) -> Result<Graph, ExportError> {
    let shapes = arch.shapes();
    let param_layers = arch.param_layers();
    if let Some(params) = params {
        if params.len() != param_layers.len() {
            return Err(unsupported(
                "(model)",
                format!(
                    "{} parameter sets for {} conv/fc layers",
                    params.len(),
                    param_layers.len()
                ),
            ));
        }
    }
    let input = arch.input;
    let mut cur = Cursor {
        name: INPUT.to_string(),
        dims: vec![1, input.c, input.h, input.w],
    };
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut param_index = 0;
    let mut before_softmax = None;
    for (index, layer) in arch.layers.iter().enumerate() {
        let name = layer.name;
        let in_shape = arch.input_of(index);
        let out_shape = shapes[index];
        let next = match layer.kind {
            LayerKind::Conv(_) | LayerKind::Fc { .. } => {
                let weights = params.map(|p| &p[param_index]);
                let shape = param_layers[param_index];
                param_index += 1;
                if let Some(w) = weights {
                    if w.shape != shape {
                        return Err(unsupported(name, "parameters belong to another layer"));
                    }
                }
                initializers.extend(weight_tensors(name, weights, &shape)?);
                match shape.kind {
                    ParamKind::Conv(c) => conv_node(name, &cur, out_shape, c, &mut nodes)?,
                    ParamKind::Fc => fc_node(name, &cur, in_shape, out_shape, &mut nodes),
                }
            }
            LayerKind::Relu => {
                nodes.push(node("Relu", name, &[&cur.name], vec![]));
                Cursor {
                    name: name.into(),
                    dims: cur.dims.clone(),
                }
            }
            LayerKind::Lrn(spec) => lrn_node(name, &cur, spec, &mut nodes)?,
            LayerKind::MaxPool(spec) => {
                pool_node(name, &cur, in_shape, out_shape, spec, &mut nodes)?
            }
            LayerKind::Dropout => cur,
            LayerKind::Softmax => {
                nodes.push(node("Softmax", name, &[&cur.name], vec![int("axis", 1)]));
                let out = Cursor {
                    name: name.into(),
                    dims: cur.dims.clone(),
                };
                before_softmax = (cur.name != INPUT).then_some(cur);
                out
            }
        };
        if !matches!(layer.kind, LayerKind::Softmax | LayerKind::Dropout) {
            before_softmax = None;
        }
        check_dims(name, &next.dims, out_shape)?;
        cur = next;
    }
    if nodes.is_empty() {
        return Err(unsupported("(model)", "no layer computes anything"));
    }
    let interface = Interface {
        input: INPUT.into(),
        input_dims: vec![1, input.c, input.h, input.w],
        output: cur.name.clone(),
        output_dims: cur.dims.clone(),
        logits: before_softmax.as_ref().map(|c| c.name.clone()),
        logits_dims: before_softmax.map(|c| c.dims).unwrap_or_default(),
    };
    let mut outputs = vec![value_info(&interface.output, &interface.output_dims)];
    if let Some(logits) = &interface.logits {
        outputs.push(value_info(logits, &interface.logits_dims));
    }
    let proto = GraphProto {
        node: nodes,
        name: Some(arch.name.to_ascii_lowercase()),
        initializer: initializers,
        doc_string: None,
        input: vec![value_info(&interface.input, &interface.input_dims)],
        output: outputs,
        value_info: vec![],
    };
    Ok(Graph { proto, interface })
}

/// The ONNX tensor after a layer must hold exactly the layer's Caffe shape.
fn check_dims(layer: &str, dims: &[usize], want: Shape) -> Result<(), ExportError> {
    let len: usize = dims.iter().product();
    if dims.first() != Some(&1) || len != want.len() {
        return Err(unsupported(
            layer,
            format!("ONNX tensor {dims:?} does not hold the layer's output {want:?}"),
        ));
    }
    Ok(())
}

fn conv_node(
    name: &str,
    cur: &Cursor,
    out: Shape,
    c: ConvSpec,
    nodes: &mut Vec<NodeProto>,
) -> Result<Cursor, ExportError> {
    if cur.dims.len() != 4 {
        return Err(unsupported(name, "a convolution after an fc layer"));
    }
    let (k, s, p) = (c.kernel as i64, c.stride as i64, c.pad as i64);
    let attrs = vec![
        ints("kernel_shape", &[k, k]),
        ints("strides", &[s, s]),
        ints("pads", &[p, p, p, p]),
        ints("dilations", &[1, 1]),
        int("group", c.groups as i64),
    ];
    let (w, b) = (format!("{name}_W"), format!("{name}_b"));
    nodes.push(node("Conv", name, &[&cur.name, &w, &b], attrs));
    Ok(Cursor {
        name: name.into(),
        dims: vec![1, out.c, out.h, out.w],
    })
}

/// `Flatten` (when the input is still a (1, C, H, W) map) then `Gemm(x, W, b, transB = 1)`.
fn fc_node(
    name: &str,
    cur: &Cursor,
    input: Shape,
    out: Shape,
    nodes: &mut Vec<NodeProto>,
) -> Cursor {
    let mut x = cur.name.clone();
    if cur.dims.len() != 2 {
        let flat = format!("{name}_flatten");
        nodes.push(node("Flatten", &flat, &[&cur.name], vec![int("axis", 1)]));
        x = flat;
    }
    debug_assert_eq!(input.len(), cur.dims.iter().product::<usize>());
    let attrs = vec![
        float("alpha", 1.0),
        float("beta", 1.0),
        int("transA", 0),
        int("transB", 1),
    ];
    let (w, b) = (format!("{name}_W"), format!("{name}_b"));
    nodes.push(node("Gemm", name, &[&x, &w, &b], attrs));
    Cursor {
        name: name.into(),
        dims: vec![1, out.len()],
    }
}

fn lrn_node(
    name: &str,
    cur: &Cursor,
    spec: LrnSpec,
    nodes: &mut Vec<NodeProto>,
) -> Result<Cursor, ExportError> {
    if cur.dims.len() != 4 {
        return Err(unsupported(name, "LRN after an fc layer"));
    }
    // ONNX: y = x / (bias + alpha / size · Σ x²)^beta over channels
    // [c − floor((size−1)/2), c + ceil((size−1)/2)], zero beyond the edges: Caffe's window.
    let attrs = vec![
        int("size", spec.size as i64),
        float("alpha", spec.alpha),
        float("beta", spec.beta),
        float("bias", spec.k),
    ];
    nodes.push(node("LRN", name, &[&cur.name], attrs));
    Ok(Cursor {
        name: name.into(),
        dims: cur.dims.clone(),
    })
}

fn pool_node(
    name: &str,
    cur: &Cursor,
    input: Shape,
    out: Shape,
    spec: PoolSpec,
    nodes: &mut Vec<NodeProto>,
) -> Result<Cursor, ExportError> {
    if cur.dims.len() != 4 {
        return Err(unsupported(name, "max pooling after an fc layer"));
    }
    // ONNX's ceil mode is ceil((H + 2p − k) / s) + 1 without Caffe's clip of a last window
    // that starts in the padding: refuse the (padded) shapes where the two differ.
    let onnx_extent = |size: usize| (size + 2 * spec.pad - spec.kernel).div_ceil(spec.stride) + 1;
    if (onnx_extent(input.h), onnx_extent(input.w)) != (out.h, out.w) {
        return Err(unsupported(
            name,
            "Caffe clips a last pooling window that starts in the padding; ONNX ceil_mode does not",
        ));
    }
    let (k, s, p) = (spec.kernel as i64, spec.stride as i64, spec.pad as i64);
    let attrs = vec![
        ints("kernel_shape", &[k, k]),
        ints("strides", &[s, s]),
        ints("pads", &[p, p, p, p]),
        int("ceil_mode", 1),
    ];
    nodes.push(node("MaxPool", name, &[&cur.name], attrs));
    Ok(Cursor {
        name: name.into(),
        dims: vec![1, out.c, out.h, out.w],
    })
}

/// Weight and bias initializers of a conv (W: (C_t, C_s/groups, kh, kw)) or fc (W: (C_t, C_s))
/// layer, or none when only the topology is wanted.
fn weight_tensors(
    name: &str,
    params: Option<&LayerParams>,
    shape: &ParamShape,
) -> Result<Vec<TensorProto>, ExportError> {
    let Some(params) = params else {
        return Ok(Vec::new());
    };
    let c_t = shape.out_channels();
    let dims = match shape.kind {
        ParamKind::Conv(c) => vec![c_t, shape.split_channels(), c.kernel, c.kernel],
        ParamKind::Fc => vec![c_t, shape.split_channels()],
    };
    let weights = params.dense_weights();
    if weights.len() != dims.iter().product::<usize>() {
        return Err(unsupported(
            name,
            format!("{} dense weights, expected {dims:?}", weights.len()),
        ));
    }
    if params.bias.len() != c_t {
        return Err(unsupported(
            name,
            format!("{} biases for {c_t} outputs", params.bias.len()),
        ));
    }
    let w = f32_tensor(&format!("{name}_W"), &dims, &weights);
    let b = f32_tensor(&format!("{name}_b"), &[c_t], &params.bias);
    Ok(vec![w, b])
}

/// A row-major f32 tensor, little-endian in `raw_data` (ONNX's required byte order).
fn f32_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        name: Some(name.into()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d as i64)),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

fn node(op: &str, name: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![name.to_string()],
        name: Some(name.into()),
        op_type: Some(op.into()),
        domain: None,
        attribute,
        doc_string: None,
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

fn unsupported(layer: &str, problem: impl Into<String>) -> ExportError {
    ExportError::Unsupported {
        layer: layer.into(),
        problem: problem.into(),
    }
}
