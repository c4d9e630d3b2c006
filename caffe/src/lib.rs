//! Reading a dense CNN from Caffe files: the structure (layers, their parameters, the input
//! shape) from the `.prototxt` text, the weights from the `.caffemodel` protobuf, matched by
//! layer name as Caffe's own `CopyTrainedLayersFrom` does. Both the current `layer` list
//! and the deprecated V1 `layers` list are read, in either file. The result is a
//! [`ForeignNet`] that `qcnn_model::import` maps onto one of the known layer lists.
//!
//! Layer types: Input / Data (the input shape), Convolution, ReLU, LRN (across channels),
//! Pooling (MAX; Caffe rounds sizes up), InnerProduct, Dropout, Softmax, Flatten and Split
//! (no-ops here). Anything else is an error naming the layer.

pub mod proto;
pub mod prototxt;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use prost::Message as _;
use qcnn_model::arch::{ConvSpec, LayerKind, LrnSpec, PoolSpec};
use qcnn_model::import::{ForeignLayer, ForeignNet, Tensor, MAX_MODEL_BYTES};
use qcnn_model::Shape;

use proto::{
    v1_type_name, BlobProto, ConvolutionParameter, InnerProductParameter, LrnParameter,
    NetParameter, PoolingParameter,
};

/// Why Caffe files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaffeError {
    /// A file is not a regular file within its size limit ([`MAX_MODEL_BYTES`] for the
    /// weights, [`MAX_PROTOTXT_BYTES`] for the text), or cannot be read.
    #[error(transparent)]
    File(qcnn_files::FileError),
    #[error("{}: not a valid caffemodel protobuf (truncated or corrupt?): {cause}", path.display())]
    Decode {
        path: PathBuf,
        cause: prost::DecodeError,
    },
    #[error("{}: {problem}", path.display())]
    Text { path: PathBuf, problem: String },
    #[error("{}: layer '{layer}' ({kind}): {problem}", path.display())]
    Layer {
        path: PathBuf,
        layer: String,
        kind: String,
        problem: String,
    },
}

/// The largest prototxt read: a deploy prototxt of the paper's networks is a few KB.
pub const MAX_PROTOTXT_BYTES: u64 = 4 << 20;

/// The prototxt for `caffemodel`: `<stem>.prototxt`, else `deploy.prototxt`, beside it;
/// None when neither is there. Something else of either name (a folder, a FIFO, a broken
/// link) is an error, never a reason to look further.
pub fn prototxt_beside(caffemodel: &Path) -> Result<Option<PathBuf>, qcnn_files::FileError> {
    let same_stem = caffemodel.with_extension("prototxt");
    let deploy = caffemodel.with_file_name("deploy.prototxt");
    for candidate in [same_stem, deploy] {
        if let Some(found) = qcnn_files::optional_file(&candidate)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Reads the net described by `prototxt` with the weights of `caffemodel`: both regular
/// files within their size limits, checked before either is read.
pub fn read(prototxt: &Path, caffemodel: &Path) -> Result<ForeignNet, CaffeError> {
    qcnn_files::check_regular(caffemodel, MAX_MODEL_BYTES, "a caffemodel")
        .map_err(CaffeError::File)?;
    let text = qcnn_files::read_regular_text(prototxt, MAX_PROTOTXT_BYTES, "a prototxt")
        .map_err(CaffeError::File)?;
    let weights = qcnn_files::read_regular(caffemodel, MAX_MODEL_BYTES, "a caffemodel")
        .map_err(CaffeError::File)?;
    parse(&text, prototxt, &weights, caffemodel)
}

/// Parses prototxt text and caffemodel bytes; the paths name the errors.
pub fn parse(
    text: &str,
    prototxt: &Path,
    weights: &[u8],
    caffemodel: &Path,
) -> Result<ForeignNet, CaffeError> {
    let text_error = |problem: String| CaffeError::Text {
        path: prototxt.to_path_buf(),
        problem,
    };
    let tree = prototxt::parse(text).map_err(|e| text_error(e.to_string()))?;
    let structure = prototxt::net_parameter(&tree).map_err(text_error)?;
    let trained = NetParameter::decode(weights).map_err(|cause| CaffeError::Decode {
        path: caffemodel.to_path_buf(),
        cause,
    })?;
    let blobs = blobs_by_name(&trained);
    let reader = Reader {
        prototxt,
        caffemodel,
        blobs: &blobs,
    };
    reader.net(&structure)
}

/// One layer of either list, as the reader needs it.
struct Layer<'a> {
    name: String,
    kind: String,
    bottom: &'a [String],
    top: &'a [String],
    conv: Option<&'a ConvolutionParameter>,
    ip: Option<&'a InnerProductParameter>,
    lrn: Option<&'a LrnParameter>,
    pool: Option<&'a PoolingParameter>,
    softmax_axis: Option<i64>,
    input_shape: Option<Vec<i64>>,
}

fn layers(net: &NetParameter) -> Vec<Layer<'_>> {
    let current = net.layer.iter().map(|l| Layer {
        name: l.name.clone().unwrap_or_default(),
        kind: l.r#type.clone().unwrap_or_default(),
        bottom: &l.bottom,
        top: &l.top,
        conv: l.convolution_param.as_ref(),
        ip: l.inner_product_param.as_ref(),
        lrn: l.lrn_param.as_ref(),
        pool: l.pooling_param.as_ref(),
        softmax_axis: l.softmax_param.as_ref().and_then(|s| s.axis),
        input_shape: l
            .input_param
            .as_ref()
            .and_then(|p| p.shape.first())
            .map(|s| s.dim.clone()),
    });
    let v1 = net.layers.iter().map(|l| Layer {
        name: l.name.clone().unwrap_or_default(),
        kind: v1_type_name(l.r#type.unwrap_or(0)),
        bottom: &l.bottom,
        top: &l.top,
        conv: l.convolution_param.as_ref(),
        ip: l.inner_product_param.as_ref(),
        lrn: l.lrn_param.as_ref(),
        pool: l.pooling_param.as_ref(),
        softmax_axis: l.softmax_param.as_ref().and_then(|s| s.axis),
        input_shape: None,
    });
    current.chain(v1).collect()
}

/// Every layer's blobs by layer name (both lists).
fn blobs_by_name(net: &NetParameter) -> HashMap<String, &[BlobProto]> {
    let current = net
        .layer
        .iter()
        .map(|l| (l.name.clone().unwrap_or_default(), l.blobs.as_slice()));
    let v1 = net
        .layers
        .iter()
        .map(|l| (l.name.clone().unwrap_or_default(), l.blobs.as_slice()));
    current.chain(v1).filter(|(_, b)| !b.is_empty()).collect()
}

struct Reader<'a> {
    prototxt: &'a Path,
    caffemodel: &'a Path,
    blobs: &'a HashMap<String, &'a [BlobProto]>,
}

impl Reader<'_> {
    fn layer_error(&self, layer: &Layer, problem: impl Into<String>) -> CaffeError {
        CaffeError::Layer {
            path: self.prototxt.to_path_buf(),
            layer: layer.name.clone(),
            kind: layer.kind.clone(),
            problem: problem.into(),
        }
    }

    fn net(&self, structure: &NetParameter) -> Result<ForeignNet, CaffeError> {
        let all = layers(structure);
        if !structure.layer.is_empty() && !structure.layers.is_empty() {
            return Err(CaffeError::Text {
                path: self.prototxt.to_path_buf(),
                problem: "both `layer` and V1 `layers` lists: use one".into(),
            });
        }
        let mut input = net_input(structure);
        let mut current: Option<String> = structure.input.first().cloned();
        let mut out = Vec::new();
        for layer in &all {
            if matches!(
                layer.kind.as_str(),
                "Input" | "Data" | "ImageData" | "MemoryData"
            ) {
                if let Some(dims) = &layer.input_shape {
                    input = shape_of(dims);
                }
                current = layer.top.first().cloned();
                continue;
            }
            let bottom = layer.bottom.first();
            if let (Some(cur), Some(bottom)) = (&current, bottom) {
                if bottom != cur {
                    return Err(self.layer_error(
                        layer,
                        format!(
                            "reads blob '{bottom}', not '{cur}' (the previous layer's output): \
                             only chains of layers are supported"
                        ),
                    ));
                }
            }
            if layer.bottom.len() > 1 {
                return Err(self.layer_error(
                    layer,
                    "more than one input blob (a training prototxt? give the deploy one)",
                ));
            }
            current = layer.top.first().cloned().or(current);
            if let Some(l) = self.layer(layer)? {
                out.push(l);
            }
        }
        Ok(ForeignNet {
            path: self.caffemodel.to_path_buf(),
            format: "Caffe",
            input,
            layers: out,
        })
    }

    fn layer(&self, layer: &Layer) -> Result<Option<ForeignLayer>, CaffeError> {
        let plain = |kind| ForeignLayer {
            name: layer.name.clone(),
            kind,
            ceil: true,
            weights: None,
            bias: None,
        };
        Ok(Some(match layer.kind.as_str() {
            "Convolution" => self.conv(layer)?,
            "InnerProduct" => self.inner_product(layer)?,
            "ReLU" => plain(LayerKind::Relu),
            "Dropout" => plain(LayerKind::Dropout),
            "LRN" => plain(LayerKind::Lrn(self.lrn(layer)?)),
            "Pooling" => plain(LayerKind::MaxPool(self.pool(layer)?)),
            "Softmax" => match layer.softmax_axis.unwrap_or(1) {
                1 => plain(LayerKind::Softmax),
                axis => return Err(self.layer_error(layer, format!("softmax over axis {axis}"))),
            },
            "Flatten" | "Split" => return Ok(None),
            "SoftmaxWithLoss" | "Accuracy" => {
                return Err(self.layer_error(
                    layer,
                    "a training layer: give the deploy prototxt (input, no loss or accuracy)",
                ))
            }
            _ => {
                return Err(self.layer_error(
                    layer,
                    "unsupported layer type (supported: Input, Convolution, ReLU, LRN, \
                     Pooling MAX, InnerProduct, Dropout, Softmax, Flatten)",
                ))
            }
        }))
    }

    fn conv(&self, layer: &Layer) -> Result<ForeignLayer, CaffeError> {
        let p = layer
            .conv
            .ok_or_else(|| self.layer_error(layer, "no convolution_param"))?;
        let bad = |problem: String| self.layer_error(layer, problem);
        let kernel = square(&p.kernel_size, p.kernel_h, p.kernel_w, None)
            .map_err(|e| bad(format!("kernel: {e}")))?;
        let stride = square(&p.stride, p.stride_h, p.stride_w, Some(1))
            .map_err(|e| bad(format!("stride: {e}")))?;
        let pad =
            square(&p.pad, p.pad_h, p.pad_w, Some(0)).map_err(|e| bad(format!("pad: {e}")))?;
        if p.dilation.iter().any(|&d| d != 1) {
            return Err(bad("dilation other than 1 is not supported".into()));
        }
        let out = p
            .num_output
            .filter(|&n| n > 0)
            .ok_or_else(|| bad("no num_output".into()))?;
        let (weights, bias) = self.weights(layer, p.bias_term.unwrap_or(true))?;
        Ok(ForeignLayer {
            name: layer.name.clone(),
            kind: LayerKind::Conv(ConvSpec {
                out_channels: out as usize,
                kernel,
                stride,
                pad,
                groups: p.group.unwrap_or(1).max(1) as usize,
            }),
            ceil: true,
            weights: Some(weights),
            bias,
        })
    }

    fn inner_product(&self, layer: &Layer) -> Result<ForeignLayer, CaffeError> {
        let p = layer
            .ip
            .ok_or_else(|| self.layer_error(layer, "no inner_product_param"))?;
        if p.axis.unwrap_or(1) != 1 {
            return Err(self.layer_error(layer, "axis other than 1 is not supported"));
        }
        let out = p
            .num_output
            .filter(|&n| n > 0)
            .ok_or_else(|| self.layer_error(layer, "no num_output"))?;
        let (w, bias) = self.weights(layer, p.bias_term.unwrap_or(true))?;
        // Legacy blobs are (1, 1, C_t, C_s): keep the last two dims.
        let trailing = |t: Tensor| {
            let n = t.dims.len();
            if n > 2 && t.dims[..n - 2].iter().all(|&d| d == 1) {
                Tensor {
                    dims: t.dims[n - 2..].to_vec(),
                    data: t.data,
                }
            } else {
                t
            }
        };
        let w = trailing(w);
        let w = if p.transpose.unwrap_or(false) && w.dims.len() == 2 {
            w.transposed()
        } else {
            w
        };
        Ok(ForeignLayer {
            name: layer.name.clone(),
            kind: LayerKind::Fc { out: out as usize },
            ceil: true,
            weights: Some(w),
            bias,
        })
    }

    fn lrn(&self, layer: &Layer) -> Result<LrnSpec, CaffeError> {
        let p = layer.lrn.cloned().unwrap_or_default();
        if p.norm_region.unwrap_or(0) != 0 {
            return Err(self.layer_error(layer, "WITHIN_CHANNEL LRN is not supported"));
        }
        Ok(LrnSpec {
            size: p.local_size.unwrap_or(5) as usize,
            alpha: p.alpha.unwrap_or(1.0),
            beta: p.beta.unwrap_or(0.75),
            k: p.k.unwrap_or(1.0),
        })
    }

    fn pool(&self, layer: &Layer) -> Result<PoolSpec, CaffeError> {
        let p = layer
            .pool
            .ok_or_else(|| self.layer_error(layer, "no pooling_param"))?;
        let bad = |problem: String| self.layer_error(layer, problem);
        if p.pool.unwrap_or(0) != 0 {
            return Err(bad("only MAX pooling is supported".into()));
        }
        if p.global_pooling.unwrap_or(false) {
            return Err(bad("global pooling is not supported".into()));
        }
        Ok(PoolSpec {
            kernel: square(&p.kernel_size, p.kernel_h, p.kernel_w, None)
                .map_err(|e| bad(format!("kernel: {e}")))?,
            stride: square(&p.stride, p.stride_h, p.stride_w, Some(1))
                .map_err(|e| bad(format!("stride: {e}")))?,
            pad: square(&p.pad, p.pad_h, p.pad_w, Some(0)).map_err(|e| bad(format!("pad: {e}")))?,
        })
    }

    /// The layer's weight blob and (if `bias_term`) its bias blob, from the caffemodel.
    fn weights(
        &self,
        layer: &Layer,
        bias_term: bool,
    ) -> Result<(Tensor, Option<Tensor>), CaffeError> {
        let missing = || CaffeError::Layer {
            path: self.caffemodel.to_path_buf(),
            layer: layer.name.clone(),
            kind: layer.kind.clone(),
            problem: "no weights of this name in the caffemodel".into(),
        };
        let blobs = self.blobs.get(&layer.name).ok_or_else(missing)?;
        let want = if bias_term { 2 } else { 1 };
        if blobs.len() != want {
            return Err(CaffeError::Layer {
                path: self.caffemodel.to_path_buf(),
                layer: layer.name.clone(),
                kind: layer.kind.clone(),
                problem: format!(
                    "{} blobs, expected {want} (weights{})",
                    blobs.len(),
                    if bias_term { " and bias" } else { "" }
                ),
            });
        }
        let tensor = |b: &BlobProto, what: &str| {
            blob_tensor(b).map_err(|problem| CaffeError::Layer {
                path: self.caffemodel.to_path_buf(),
                layer: layer.name.clone(),
                kind: layer.kind.clone(),
                problem: format!("{what}: {problem}"),
            })
        };
        let weights = tensor(&blobs[0], "weights")?;
        let bias = match blobs.get(1) {
            Some(b) => Some(tensor(b, "bias")?),
            None => None,
        };
        Ok((weights, bias))
    }
}

/// The net's input (C, H, W) from `input_shape` or `input_dim` (N, C, H, W).
fn net_input(net: &NetParameter) -> Option<Shape> {
    if let Some(shape) = net.input_shape.first() {
        return shape_of(&shape.dim);
    }
    if net.input_dim.len() >= 4 {
        return shape_of(&net.input_dim[..4]);
    }
    None
}

fn shape_of(dims: &[i64]) -> Option<Shape> {
    match dims {
        [_, c, h, w] if *c > 0 && *h > 0 && *w > 0 => {
            Some(Shape::new(*c as usize, *h as usize, *w as usize))
        }
        _ => None,
    }
}

/// One value for both axes: `values` (one, or two equal), else `h`/`w` (equal), else the
/// default.
fn square(
    values: &[u64],
    h: Option<u64>,
    w: Option<u64>,
    default: Option<u64>,
) -> Result<usize, String> {
    let v = match (values, h, w) {
        ([v], None, None) => *v,
        ([a, b], None, None) if a == b => *a,
        ([], Some(h), Some(w)) if h == w => h,
        ([], None, None) => default.ok_or("missing")?,
        _ => {
            return Err(format!(
                "{values:?} / {h:?}×{w:?}: only one value for both axes"
            ))
        }
    };
    usize::try_from(v).map_err(|_| format!("{v} is too large"))
}

/// A blob's dims (shape, else the legacy 4-D dims) and values (f32 or f64), the count
/// checked against the dims, every value finite (an f64 beyond f32's range is not).
fn blob_tensor(b: &BlobProto) -> Result<Tensor, String> {
    let raw: Vec<i64> = match &b.shape {
        Some(s) => s.dim.clone(),
        None => [b.num, b.channels, b.height, b.width]
            .iter()
            .map(|d| d.unwrap_or(0))
            .collect(),
    };
    let mut count: usize = 1;
    let mut dims = Vec::with_capacity(raw.len());
    for &d in &raw {
        let d = usize::try_from(d).map_err(|_| format!("negative dim in {raw:?}"))?;
        count = count
            .checked_mul(d)
            .ok_or_else(|| format!("dims {raw:?} overflow"))?;
        dims.push(d);
    }
    let data: Vec<f32> = if !b.data.is_empty() {
        b.data.clone()
    } else {
        b.double_data.iter().map(|&v| v as f32).collect()
    };
    if data.len() != count {
        return Err(format!("{} values for dims {dims:?} ({count})", data.len()));
    }
    let tensor = Tensor { dims, data };
    tensor.check_finite()?;
    Ok(tensor)
}
