//! Dense models written by other tools (ONNX, Caffe) mapped onto one of the known layer
//! lists: a reader turns its file into a [`ForeignNet`] (one [`ForeignLayer`] per node or
//! layer, weights already in Caffe's layout), and [`map_onto`] checks it layer by layer
//! against an [`Architecture`], naming the first node that does not fit.
//!
//! Matching rules: dropout is the identity at test time, so dropout layers are skipped on
//! both sides; a file that ends without the final softmax gets it (no parameters, the same
//! top-k); everything else must agree exactly: layer kinds, kernel sizes, strides, padding,
//! groups, output counts, LRN constants (to f32 rounding), and every weight and bias shape.

use std::path::PathBuf;

use crate::arch::{pool_extent, Architecture, LayerKind, LrnSpec, ParamKind, PoolSpec, Shape};
use crate::weights::LayerParams;
use crate::{Model, ModelSource};

/// One node (ONNX) or layer (Caffe) of a foreign file, in graph order.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignLayer {
    /// Its name in the file, for errors.
    pub name: String,
    /// What it computes. Only `Conv`, `Fc`, `Relu`, `Lrn`, `MaxPool`, `Dropout` and `Softmax`.
    pub kind: LayerKind,
    /// Max pooling only: whether the output size rounds up (Caffe, ONNX `ceil_mode = 1`) or
    /// down (ONNX's default).
    pub ceil: bool,
    /// Conv and fc: the weights in Caffe's layout, conv (C_t, C_s/groups, kh, kw), fc
    /// (C_t, C_s), with their dims as the file gives them.
    pub weights: Option<Tensor>,
    /// Conv and fc: the bias (C_t); None when the layer has none (zeros).
    pub bias: Option<Tensor>,
}

/// A dense tensor: dims (outermost first) and row-major values, `data.len()` = prod(dims).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A matrix (rows, cols) as (cols, rows): fc weights stored (C_s, C_t) become (C_t, C_s).
    pub fn transposed(&self) -> Tensor {
        let (rows, cols) = (self.dims[0], self.dims[1]);
        let mut data = vec![0.0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Tensor {
            dims: vec![cols, rows],
            data,
        }
    }

    /// Refuses the first NaN or infinity (`Err`: its flat position and index): a dense model
    /// with a non-finite weight is a load error, like a model file of the authors' format.
    pub fn check_finite(&self) -> Result<(), String> {
        match crate::format::first_non_finite(&self.data, &self.dims) {
            None => Ok(()),
            Some(problem) => Err(problem),
        }
    }
}

/// The largest dense model file read (an ONNX file, a `.caffemodel`): 4 GiB, VGG-16's
/// 553 MB with room to spare. A larger file is refused before it is read (the whole file is
/// held in memory while it is decoded).
pub const MAX_MODEL_BYTES: u64 = 4 << 30;

/// A whole foreign file.
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignNet {
    /// The file (for provenance and errors).
    pub path: PathBuf,
    /// "ONNX", "Caffe".
    pub format: &'static str,
    /// The input (C, H, W) the file declares, when it declares one.
    pub input: Option<Shape>,
    pub layers: Vec<ForeignLayer>,
}

/// Why a foreign net does not fit a layer list.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{network}: {node}: {problem}")]
pub struct MapError {
    /// The network it was matched against.
    pub network: &'static str,
    /// The first node or layer that does not fit, as the file names it (or "input", or
    /// "end of file").
    pub node: String,
    pub problem: String,
    /// Layers that matched before it: how close this network came.
    pub matched: usize,
}

/// Maps `net` onto `arch`: one [`LayerParams`] per conv/fc layer with the file's dense
/// weights. The model's source is [`ModelSource::Imported`].
pub fn map_onto(net: &ForeignNet, arch: &Architecture) -> Result<Model, MapError> {
    let mut matcher = Matcher {
        arch,
        matched: 0,
        params: Vec::new(),
    };
    if let Some(input) = net.input {
        if input != arch.input {
            return Err(matcher.fail(
                "input",
                format!(
                    "the file's input is {}×{}×{}, {} takes {}×{}×{}",
                    input.c, input.h, input.w, arch.name, arch.input.c, arch.input.h, arch.input.w
                ),
            ));
        }
    }
    let ours: Vec<usize> = (0..arch.layers.len())
        .filter(|&i| arch.layers[i].kind != LayerKind::Dropout)
        .collect();
    let theirs: Vec<&ForeignLayer> = net
        .layers
        .iter()
        .filter(|l| l.kind != LayerKind::Dropout)
        .collect();
    for (k, &index) in ours.iter().enumerate() {
        let Some(foreign) = theirs.get(k) else {
            let rest_is_softmax = ours[k..]
                .iter()
                .all(|&i| arch.layers[i].kind == LayerKind::Softmax);
            if rest_is_softmax {
                break;
            }
            return Err(matcher.fail(
                "end of file",
                format!(
                    "the file ends after {k} layers; {} goes on with {} ({})",
                    arch.name,
                    arch.layers[index].name,
                    describe(&arch.layers[index].kind)
                ),
            ));
        };
        matcher.layer(index, foreign)?;
    }
    if let Some(extra) = theirs.get(ours.len()) {
        return Err(matcher.fail(
            &extra.name,
            format!(
                "{} ends here, the file goes on with {}",
                arch.name,
                describe(&extra.kind)
            ),
        ));
    }
    Ok(Model {
        arch: arch.clone(),
        params: matcher.params,
        source: ModelSource::Imported {
            path: net.path.clone(),
            format: net.format,
        },
    })
}

/// Tries every candidate in turn; returns the first that fits, else the error of the one
/// that matched the most layers (the user most likely meant that one).
pub fn identify(net: &ForeignNet, candidates: &[Architecture]) -> Result<Model, MapError> {
    let mut best: Option<MapError> = None;
    for arch in candidates {
        match map_onto(net, arch) {
            Ok(model) => return Ok(model),
            Err(e) if best.as_ref().is_none_or(|b| e.matched > b.matched) => best = Some(e),
            Err(_) => {}
        }
    }
    Err(best.unwrap_or_else(|| MapError {
        network: "(none)",
        node: "input".into(),
        problem: "no network to match against".into(),
        matched: 0,
    }))
}

struct Matcher<'a> {
    arch: &'a Architecture,
    matched: usize,
    params: Vec<LayerParams>,
}

impl Matcher<'_> {
    fn fail(&self, node: &str, problem: String) -> MapError {
        MapError {
            network: self.arch.name,
            node: node.to_string(),
            problem,
            matched: self.matched,
        }
    }

    /// Checks `foreign` against layer `index` of the architecture; keeps its parameters.
    fn layer(&mut self, index: usize, foreign: &ForeignLayer) -> Result<(), MapError> {
        let ours = &self.arch.layers[index];
        let input = self.arch.input_of(index);
        let node = foreign.name.as_str();
        let mismatch = |what: String| {
            self.fail(
                node,
                format!(
                    "{what}; {} has {} here ({})",
                    self.arch.name,
                    ours.name,
                    describe(&ours.kind)
                ),
            )
        };
        match (ours.kind, foreign.kind) {
            (LayerKind::Conv(a), LayerKind::Conv(b)) if a == b => {}
            (LayerKind::Fc { out: a }, LayerKind::Fc { out: b }) if a == b => {}
            (LayerKind::Relu, LayerKind::Relu) | (LayerKind::Softmax, LayerKind::Softmax) => {}
            (LayerKind::Lrn(a), LayerKind::Lrn(b)) if lrn_equal(a, b) => {}
            (LayerKind::MaxPool(a), LayerKind::MaxPool(b)) if a == b => {
                let floor = |size: usize| (size + 2 * b.pad - b.kernel) / b.stride + 1;
                let want = (pool_extent(input.h, a), pool_extent(input.w, a));
                if !foreign.ceil && (floor(input.h), floor(input.w)) != want {
                    return Err(mismatch(format!(
                        "max pooling rounds its output size down ({}×{} from {}×{}), Caffe's \
                         rounds up ({}×{}): set ceil_mode = 1",
                        floor(input.h),
                        floor(input.w),
                        input.h,
                        input.w,
                        want.0,
                        want.1
                    )));
                }
            }
            (_, other) => return Err(mismatch(format!("the file has {}", describe(&other)))),
        }
        if ours.has_params() {
            let shape = self
                .arch
                .param_layers()
                .into_iter()
                .find(|p| p.index == index)
                .expect("a conv/fc layer has a parameter shape");
            let want: Vec<usize> = match shape.kind {
                ParamKind::Conv(c) => vec![
                    shape.out_channels(),
                    shape.split_channels(),
                    c.kernel,
                    c.kernel,
                ],
                ParamKind::Fc => vec![shape.out_channels(), shape.split_channels()],
            };
            let weights = foreign
                .weights
                .as_ref()
                .ok_or_else(|| self.fail(node, "no weights".into()))?;
            if weights.dims != want {
                return Err(self.fail(
                    node,
                    format!(
                        "weights {:?}, {} ({}) needs {want:?} for its input {}×{}×{}",
                        weights.dims, ours.name, self.arch.name, input.c, input.h, input.w
                    ),
                ));
            }
            let c_t = shape.out_channels();
            let bias = match &foreign.bias {
                None => vec![0.0; c_t],
                Some(b) if b.data.len() == c_t => b.data.clone(),
                Some(b) => {
                    return Err(self.fail(
                        node,
                        format!("bias {:?}, {} needs {c_t} values", b.dims, ours.name),
                    ))
                }
            };
            self.params.push(LayerParams {
                shape,
                bias,
                codebooks: None,
                dense: Some(weights.data.clone()),
            });
        }
        self.matched += 1;
        Ok(())
    }
}

/// Equal up to f32 rounding of the constants (files store alpha = 1e-4 as f32 or f64).
fn lrn_equal(a: LrnSpec, b: LrnSpec) -> bool {
    let close = |x: f32, y: f32| (x - y).abs() <= 1e-6 * x.abs().max(y.abs());
    a.size == b.size && close(a.alpha, b.alpha) && close(a.beta, b.beta) && close(a.k, b.k)
}

/// A layer kind in words, for errors.
pub fn describe(kind: &LayerKind) -> String {
    match *kind {
        LayerKind::Conv(c) => format!(
            "conv {} kernels {}×{}, stride {}, pad {}, groups {}",
            c.out_channels, c.kernel, c.kernel, c.stride, c.pad, c.groups
        ),
        LayerKind::Fc { out } => format!("fully connected, {out} outputs"),
        LayerKind::Relu => "ReLU".into(),
        LayerKind::Lrn(l) => format!(
            "LRN size {}, alpha {}, beta {}, k {}",
            l.size, l.alpha, l.beta, l.k
        ),
        LayerKind::MaxPool(PoolSpec {
            kernel,
            stride,
            pad,
        }) => format!("max pooling {kernel}×{kernel}, stride {stride}, pad {pad}"),
        LayerKind::Dropout => "dropout".into(),
        LayerKind::Softmax => "softmax".into(),
    }
}
