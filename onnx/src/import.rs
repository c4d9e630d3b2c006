//! Reading a dense CNN from an ONNX file written by any tool (opset ≥ 9) into a
//! [`ForeignNet`], which `qcnn_model::import` maps onto one of the known layer lists.
//!
//! The graph must be a chain: each computing node reads the previous one's output (plus
//! constant initializers). Operators, with Caffe's meaning:
//! - `Conv` (2-D, square kernel, equal strides, symmetric pads, dilations 1, any `group`),
//!   weights (C_t, C_s/group, kh, kw), optional bias;
//! - `Relu`; `LRN` (ONNX divides alpha by `size` as Caffe does); `MaxPool` (pads symmetric,
//!   `ceil_mode` kept: the matcher checks it gives Caffe's sizes);
//! - `Gemm` (alpha = beta = 1, transA = 0; `transB = 1` takes B (C_t, C_s), `transB = 0`
//!   B (C_s, C_t), transposed here) and `MatMul` with a constant (C_s, C_t) followed by an
//!   `Add` of the bias;
//! - `Flatten` (axis 1) and `Reshape` to two dims before an fc layer (Caffe's fc flattens in
//!   (C, H, W) order, as they do); `Dropout` and `Identity` are the identity; `Softmax` over
//!   the class axis; `Constant` nodes feed Reshape shapes.
//!
//! Nothing is trusted: a truncated or malformed protobuf, a tensor whose bytes do not match
//! its dims, an unknown operator or attribute value gives an error naming the node.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message;
use qcnn_model::arch::{ConvSpec, LayerKind, LrnSpec, PoolSpec};
use qcnn_model::import::{ForeignLayer, ForeignNet, Tensor, MAX_MODEL_BYTES};
use qcnn_model::Shape;

use crate::proto::tensor_shape_proto::dimension;
use crate::proto::{
    type_proto, AttributeProto, DataType, GraphProto, ModelProto, NodeProto, TensorProto,
};

/// The oldest operator set whose operators (as listed above) mean what this reader assumes.
pub const MIN_OPSET: i64 = 9;

/// Why an ONNX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not a regular file of at most [`MAX_MODEL_BYTES`], or cannot be read.
    #[error(transparent)]
    File(qcnn_files::FileError),
    #[error("{}: not a valid ONNX protobuf (truncated or corrupt?): {cause}", path.display())]
    Decode {
        path: PathBuf,
        cause: prost::DecodeError,
    },
    #[error("{}: {problem}", path.display())]
    Model { path: PathBuf, problem: String },
    #[error("{}: node '{node}' ({op}): {problem}", path.display())]
    Node {
        path: PathBuf,
        node: String,
        op: String,
        problem: String,
    },
}

/// Reads the ONNX file at `path`: a regular file of at most [`MAX_MODEL_BYTES`], checked
/// before it is read.
pub fn read(path: &Path) -> Result<ForeignNet, ImportError> {
    let bytes = qcnn_files::read_regular(path, MAX_MODEL_BYTES, "an ONNX model")
        .map_err(ImportError::File)?;
    parse(&bytes, path)
}

/// Parses ONNX bytes; `path` names the errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<ForeignNet, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|cause| ImportError::Decode {
        path: path.to_path_buf(),
        cause,
    })?;
    let model_error = |problem: String| ImportError::Model {
        path: path.to_path_buf(),
        problem,
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .ok_or_else(|| model_error("no opset_import for the standard (ai.onnx) domain".into()))?;
    if opset < MIN_OPSET {
        return Err(model_error(format!(
            "opset {opset}: this reader needs opset ≥ {MIN_OPSET} (re-export the model)"
        )));
    }
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| model_error("the file holds no graph".into()))?;
    Reader::new(graph, opset, path)?.read()
}

/// Walks the graph's nodes in order, keeping the name of the tensor the chain is at.
struct Reader<'a> {
    graph: &'a GraphProto,
    opset: i64,
    path: &'a Path,
    /// Initializers and Constant outputs by name.
    constants: HashMap<&'a str, &'a TensorProto>,
    layers: Vec<ForeignLayer>,
}

impl<'a> Reader<'a> {
    fn new(graph: &'a GraphProto, opset: i64, path: &'a Path) -> Result<Self, ImportError> {
        let mut constants = HashMap::new();
        for t in &graph.initializer {
            constants.insert(t.name.as_deref().unwrap_or(""), t);
        }
        Ok(Reader {
            graph,
            opset,
            path,
            constants,
            layers: Vec::new(),
        })
    }

    fn model_error(&self, problem: String) -> ImportError {
        ImportError::Model {
            path: self.path.to_path_buf(),
            problem,
        }
    }

    fn read(mut self) -> Result<ForeignNet, ImportError> {
        let (mut current, input) = self.graph_input()?;
        let nodes = &self.graph.node;
        let mut i = 0;
        while i < nodes.len() {
            let node = &nodes[i];
            let op = node.op_type.as_deref().unwrap_or("");
            if op == "Constant" {
                let value = attr(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| self.node_error(node, "Constant without a tensor `value`"))?;
                let out = node.output.first().map(String::as_str).unwrap_or("");
                self.constants.insert(out, value);
                i += 1;
                continue;
            }
            let data = node.input.first().map(String::as_str).unwrap_or("");
            if data != current {
                return Err(self.node_error(
                    node,
                    &format!(
                        "reads tensor '{data}', not '{current}' (the previous layer's output): \
                         only chains of layers are supported"
                    ),
                ));
            }
            let mut consumed = 1;
            if let Some(layer) = self.node(node, nodes.get(i + 1), &mut consumed)? {
                self.layers.push(layer);
            }
            let last = &nodes[i + consumed - 1];
            current = last
                .output
                .first()
                .map(String::as_str)
                .ok_or_else(|| self.node_error(last, "has no output"))?;
            i += consumed;
        }
        Ok(ForeignNet {
            path: self.path.to_path_buf(),
            format: "ONNX",
            input: Some(input),
            layers: self.layers,
        })
    }

    /// The graph's data input (the first input that is not an initializer) and its
    /// (C, H, W), batch 1 or symbolic.
    fn graph_input(&self) -> Result<(&'a str, Shape), ImportError> {
        let input = self
            .graph
            .input
            .iter()
            .find(|v| !self.constants.contains_key(v.name.as_deref().unwrap_or("")))
            .ok_or_else(|| self.model_error("the graph has no data input".into()))?;
        let name = input.name.as_deref().unwrap_or("");
        let dims: Option<Vec<Option<i64>>> = input
            .r#type
            .as_ref()
            .and_then(|t| match &t.value {
                Some(type_proto::Value::TensorType(t)) => t.shape.as_ref(),
                None => None,
            })
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match d.value {
                        Some(dimension::Value::DimValue(v)) => Some(v),
                        _ => None,
                    })
                    .collect()
            });
        let shape = match dims.as_deref() {
            Some([_, Some(c), Some(h), Some(w)]) if *c > 0 && *h > 0 && *w > 0 => {
                Shape::new(*c as usize, *h as usize, *w as usize)
            }
            other => {
                return Err(self.model_error(format!(
                    "input '{name}': dims {other:?}, expected (N, C, H, W) with C, H, W known"
                )))
            }
        };
        Ok((name, shape))
    }

    fn node_error(&self, node: &NodeProto, problem: &str) -> ImportError {
        ImportError::Node {
            path: self.path.to_path_buf(),
            node: node_name(node),
            op: node.op_type.clone().unwrap_or_default(),
            problem: problem.to_string(),
        }
    }

    /// One node (and, for MatMul, the Add after it: `consumed` becomes 2) as a layer; None
    /// for nodes that only reshape.
    fn node(
        &self,
        node: &NodeProto,
        next: Option<&NodeProto>,
        consumed: &mut usize,
    ) -> Result<Option<ForeignLayer>, ImportError> {
        let op = node.op_type.as_deref().unwrap_or("");
        let simple = |kind| {
            Ok(Some(ForeignLayer {
                name: node_name(node),
                kind,
                ceil: false,
                weights: None,
                bias: None,
            }))
        };
        match op {
            "Conv" => self.conv(node).map(Some),
            "Relu" => simple(LayerKind::Relu),
            "LRN" => self.lrn(node).map(Some),
            "MaxPool" => self.max_pool(node).map(Some),
            "Gemm" => self.gemm(node).map(Some),
            "MatMul" => self.matmul(node, next, consumed).map(Some),
            "Dropout" => simple(LayerKind::Dropout),
            "Softmax" => {
                self.softmax(node)?;
                simple(LayerKind::Softmax)
            }
            "Flatten" => self.flatten(node).map(|()| None),
            "Reshape" => self.reshape(node).map(|()| None),
            "Identity" => Ok(None),
            _ => Err(self.node_error(
                node,
                "unsupported operator (supported: Conv, Relu, LRN, MaxPool, Gemm, MatMul + Add, \
                 Dropout, Flatten, Reshape, Softmax, Identity, Constant)",
            )),
        }
    }

    fn conv(&self, node: &NodeProto) -> Result<ForeignLayer, ImportError> {
        let bad = |p: &str| self.node_error(node, p);
        if let Some(pad) = attr_string(node, "auto_pad").filter(|p| p != "NOTSET") {
            return Err(bad(&format!("auto_pad {pad}: give explicit pads")));
        }
        let weights = self.weight(node, 1)?;
        let &[c_t, _, kh, kw] = weights.dims.as_slice() else {
            return Err(bad(&format!(
                "weights {:?}: expected 4 dims (C_t, C_s/group, kh, kw)",
                weights.dims
            )));
        };
        if let Some(k) = ints(node, "kernel_shape") {
            if k != [kh as i64, kw as i64] {
                return Err(bad(&format!(
                    "kernel_shape {k:?} does not match the weights {:?}",
                    weights.dims
                )));
            }
        }
        if kh != kw {
            return Err(bad(&format!(
                "kernel {kh}×{kw}: only square kernels are supported"
            )));
        }
        let stride = self.square(node, "strides", 1)?;
        let pad = self.symmetric_pads(node)?;
        if ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(bad("dilations other than 1 are not supported"));
        }
        let groups = attr(node, "group").and_then(|a| a.i).unwrap_or(1);
        if groups < 1 {
            return Err(bad(&format!("group {groups}")));
        }
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(_) => Some(self.weight(node, 2)?),
            None => None,
        };
        Ok(ForeignLayer {
            name: node_name(node),
            kind: LayerKind::Conv(ConvSpec {
                out_channels: c_t,
                kernel: kh,
                stride,
                pad,
                groups: groups as usize,
            }),
            ceil: false,
            weights: Some(weights),
            bias,
        })
    }

    fn lrn(&self, node: &NodeProto) -> Result<ForeignLayer, ImportError> {
        let size = attr(node, "size")
            .and_then(|a| a.i)
            .filter(|&s| s > 0)
            .ok_or_else(|| self.node_error(node, "LRN needs a positive `size`"))?;
        let float = |name, default| attr(node, name).and_then(|a| a.f).unwrap_or(default);
        Ok(ForeignLayer {
            name: node_name(node),
            kind: LayerKind::Lrn(LrnSpec {
                size: size as usize,
                alpha: float("alpha", 1e-4),
                beta: float("beta", 0.75),
                k: float("bias", 1.0),
            }),
            ceil: false,
            weights: None,
            bias: None,
        })
    }

    fn max_pool(&self, node: &NodeProto) -> Result<ForeignLayer, ImportError> {
        let bad = |p: &str| self.node_error(node, p);
        if let Some(pad) = attr_string(node, "auto_pad").filter(|p| p != "NOTSET") {
            return Err(bad(&format!("auto_pad {pad}: give explicit pads")));
        }
        if ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err(bad("dilations other than 1 are not supported"));
        }
        let kernel = self.square(node, "kernel_shape", 0)?;
        if kernel == 0 {
            return Err(bad("MaxPool needs a kernel_shape"));
        }
        Ok(ForeignLayer {
            name: node_name(node),
            kind: LayerKind::MaxPool(PoolSpec {
                kernel,
                stride: self.square(node, "strides", 1)?,
                pad: self.symmetric_pads(node)?,
            }),
            ceil: attr(node, "ceil_mode").and_then(|a| a.i).unwrap_or(0) == 1,
            weights: None,
            bias: None,
        })
    }

    fn gemm(&self, node: &NodeProto) -> Result<ForeignLayer, ImportError> {
        let bad = |p: &str| self.node_error(node, p);
        let float = |name| attr(node, name).and_then(|a| a.f).unwrap_or(1.0);
        let int = |name| attr(node, name).and_then(|a| a.i).unwrap_or(0);
        if float("alpha") != 1.0 || float("beta") != 1.0 || int("transA") != 0 {
            return Err(bad("only alpha = 1, beta = 1, transA = 0 is supported"));
        }
        let b = self.weight(node, 1)?;
        let weights = match (int("transB"), b.dims.as_slice()) {
            (1, [_, _]) => b,
            (0, [_, _]) => b.transposed(),
            (_, dims) => return Err(bad(&format!("B {dims:?}: expected a 2-D constant"))),
        };
        let bias = match node.input.get(2).filter(|n| !n.is_empty()) {
            Some(_) => Some(self.weight(node, 2)?),
            None => None,
        };
        Ok(fc_layer(node, weights, bias))
    }

    /// MatMul(x, W (C_s, C_t)) and the Add(·, bias) that must follow it.
    fn matmul(
        &self,
        node: &NodeProto,
        next: Option<&NodeProto>,
        consumed: &mut usize,
    ) -> Result<ForeignLayer, ImportError> {
        let w = self.weight(node, 1)?;
        if w.dims.len() != 2 {
            return Err(
                self.node_error(node, &format!("weights {:?}: expected (C_s, C_t)", w.dims))
            );
        }
        let out = node.output.first().map(String::as_str).unwrap_or("");
        let add = next.filter(|n| {
            n.op_type.as_deref() == Some("Add") && n.input.first().map(String::as_str) == Some(out)
        });
        let bias = match add {
            Some(add) => {
                *consumed = 2;
                Some(self.weight(add, 1)?)
            }
            None => None,
        };
        Ok(fc_layer(node, w.transposed(), bias))
    }

    fn softmax(&self, node: &NodeProto) -> Result<(), ImportError> {
        // Opset < 13 flattens from `axis` (default 1); ≥ 13 normalises along `axis`
        // (default −1). On (1, classes) both mean the class axis.
        let axis = attr(node, "axis")
            .and_then(|a| a.i)
            .unwrap_or(if self.opset < 13 { 1 } else { -1 });
        if axis == 1 || axis == -1 {
            Ok(())
        } else {
            Err(self.node_error(
                node,
                &format!("softmax over axis {axis}: only the class axis"),
            ))
        }
    }

    fn flatten(&self, node: &NodeProto) -> Result<(), ImportError> {
        match attr(node, "axis").and_then(|a| a.i).unwrap_or(1) {
            1 => Ok(()),
            axis => Err(self.node_error(
                node,
                &format!("Flatten axis {axis}: only axis 1 (keep the batch)"),
            )),
        }
    }

    /// A reshape to (batch, features): shape (1, −1), (−1, n), (0, −1), (1, n) and the like.
    fn reshape(&self, node: &NodeProto) -> Result<(), ImportError> {
        let shape = self.int64_constant(node, 1)?;
        match shape.as_slice() {
            [first, _] if [-1, 0, 1].contains(first) => Ok(()),
            other => Err(self.node_error(
                node,
                &format!(
                    "Reshape to {other:?}: only flattening to (batch, features) before an fc layer"
                ),
            )),
        }
    }

    /// A square attribute (kernel_shape, strides): both values equal, else `default` if absent.
    fn square(&self, node: &NodeProto, name: &str, default: usize) -> Result<usize, ImportError> {
        match ints(node, name) {
            None => Ok(default),
            Some([a, b]) if a == b && *a >= 0 => Ok(*a as usize),
            Some(v) => {
                Err(self.node_error(node, &format!("{name} {v:?}: only equal values in H and W")))
            }
        }
    }

    /// `pads` (top, left, bottom, right), all equal.
    fn symmetric_pads(&self, node: &NodeProto) -> Result<usize, ImportError> {
        match ints(node, "pads") {
            None => Ok(0),
            Some(p @ [a, ..]) if p.len() == 4 && p.iter().all(|v| v == a) && *a >= 0 => {
                Ok(*a as usize)
            }
            Some(p) => Err(self.node_error(
                node,
                &format!("pads {p:?}: only equal padding on all sides"),
            )),
        }
    }

    /// Input `k` of `node` as a constant f32 tensor.
    fn weight(&self, node: &NodeProto, k: usize) -> Result<Tensor, ImportError> {
        let name = node.input.get(k).map(String::as_str).unwrap_or("");
        let t = self.constants.get(name).ok_or_else(|| {
            self.node_error(
                node,
                &format!("input {k} ('{name}') is not a constant (initializer)"),
            )
        })?;
        float_tensor(t).map_err(|p| self.node_error(node, &format!("tensor '{name}': {p}")))
    }

    /// Input `k` of `node` as a constant int64 vector (Reshape's shape).
    fn int64_constant(&self, node: &NodeProto, k: usize) -> Result<Vec<i64>, ImportError> {
        let name = node.input.get(k).map(String::as_str).unwrap_or("");
        let t = self.constants.get(name).ok_or_else(|| {
            self.node_error(node, &format!("shape input '{name}' is not a constant"))
        })?;
        int64_tensor(t).map_err(|p| self.node_error(node, &format!("tensor '{name}': {p}")))
    }
}

fn fc_layer(node: &NodeProto, weights: Tensor, bias: Option<Tensor>) -> ForeignLayer {
    ForeignLayer {
        name: node_name(node),
        kind: LayerKind::Fc {
            out: weights.dims[0],
        },
        ceil: false,
        weights: Some(weights),
        bias,
    }
}

/// The node's name, else its first output (unnamed nodes are common).
fn node_name(node: &NodeProto) -> String {
    node.name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| node.output.first().cloned())
        .unwrap_or_else(|| "(unnamed)".into())
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn ints<'n>(node: &'n NodeProto, name: &str) -> Option<&'n [i64]> {
    attr(node, name).map(|a| a.ints.as_slice())
}

fn attr_string(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

/// The tensor's dims, each ≥ 0, and their product (checked).
fn dims_of(t: &TensorProto) -> Result<(Vec<usize>, usize), String> {
    let mut count: usize = 1;
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| format!("negative dim in {:?}", t.dims))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("dims {:?} overflow", t.dims))?;
        dims.push(d);
    }
    Ok((dims, count))
}

/// A FLOAT tensor, from `raw_data` (little-endian) or `float_data`; the element count must
/// match the dims exactly before anything is allocated, and every value must be finite.
fn float_tensor(t: &TensorProto) -> Result<Tensor, String> {
    if t.data_type != Some(DataType::Float as i32) {
        return Err(format!(
            "data type {:?}, expected FLOAT (1)",
            t.data_type.unwrap_or(0)
        ));
    }
    if t.data_location == Some(1) {
        return Err("weights in an external file are not supported (save with them inside)".into());
    }
    let (dims, count) = dims_of(t)?;
    let data = match &t.raw_data {
        Some(raw) => {
            if raw.len() != count.saturating_mul(4) {
                return Err(format!(
                    "{} raw bytes for dims {dims:?} ({count} floats)",
                    raw.len()
                ));
            }
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        None => {
            if t.float_data.len() != count {
                return Err(format!("{} floats for dims {dims:?}", t.float_data.len()));
            }
            t.float_data.clone()
        }
    };
    let tensor = Tensor { dims, data };
    tensor.check_finite()?;
    Ok(tensor)
}

/// An INT64 tensor (a Reshape shape).
fn int64_tensor(t: &TensorProto) -> Result<Vec<i64>, String> {
    if t.data_type != Some(DataType::Int64 as i32) {
        return Err(format!(
            "data type {:?}, expected INT64 (7)",
            t.data_type.unwrap_or(0)
        ));
    }
    let (_, count) = dims_of(t)?;
    let values: Vec<i64> = match &t.raw_data {
        Some(raw) if raw.len() == count.saturating_mul(8) => raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect(),
        Some(raw) => return Err(format!("{} raw bytes for {count} int64 values", raw.len())),
        None => t.int64_data.clone(),
    };
    if values.len() != count {
        return Err(format!("{} values for {count} elements", values.len()));
    }
    Ok(values)
}
