//! The dense AlexNet as we run it, as an ncnn model (a `.param` text file and a `.bin` weight
//! file), so that ncnn, the engine phones ship CNNs with, runs the very same network on the
//! very same weights.
//!
//! The formats (ncnn's docs/developer-guide/param-and-model-file-structure.md and
//! operators.md): the `.param` file is the magic `7767517`, a line `<layers> <blobs>`, then one
//! line per layer: `<type> <name> <inputs> <outputs> <input blobs> <output blobs> <id>=<value>…`.
//! The `.bin` file is every weighted layer's buffers in layer order: the weights behind a
//! 4-byte storage flag (all zero: raw little-endian f32), then the biases as raw f32 without
//! a flag (ncnn loads them with the type forced), each 32-bit aligned.
//!
//! Layer by layer (Caffe semantics, METHOD.md), as ncnn's own caffe2ncnn maps them:
//! - conv → `Convolution` (`groups` = 1) or `ConvolutionDepthWise` with `7=groups` (ncnn's
//!   grouped convolution); weights (C_t, C_s/groups, kh, kw) as Caffe stores them, bias on
//! - ReLU → `ReLU` (slope 0)
//! - LRN → `LRN` across channels: ncnn computes x·(bias + alpha/size·Σx²)^−beta over
//!   channels [c − size/2, c + size/2], Caffe's formula and window for odd sizes
//! - max pooling → `Pooling` with pad mode 0 ("full padding": ceil rounding of the output
//!   size, windows padded with −FLT_MAX)
//! - fc → `InnerProduct` on the (C, H, W)-ordered input, weights (C_t, C_s)
//! - dropout → nothing (the identity at test time); softmax → `Softmax` over axis 0 (the
//!   channels of a map, the values of a vector), `1=1` (ncnn's fixed axis handling).
//!
//! Every blob is named after the layer that produces it; the input blob is [`INPUT`].

use std::io::Write;
use std::path::{Path, PathBuf};

use qcnn_model::arch::{ConvSpec, LrnSpec, ParamKind, ParamShape, PoolSpec};
use qcnn_model::{Architecture, LayerKind, LayerParams, Model, Shape};

/// First line of every `.param` file.
pub const MAGIC: u32 = 7_767_517;
/// Name of the input blob.
pub const INPUT: &str = "data";
/// ncnn's weight-buffer flag for raw little-endian float32 data.
const F32_FLAG: [u8; 4] = [0; 4];
/// ncnn reads a parameter value into a 16-byte buffer: longer values are cut.
const MAX_VALUE_CHARS: usize = 15;

/// Why a model could not be written for ncnn.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The architecture uses something ncnn (or our mapping) cannot express faithfully.
    #[error("layer {layer}: {problem}")]
    Unsupported { layer: String, problem: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The blobs a runner feeds and reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blobs {
    /// [`INPUT`].
    pub input: String,
    /// The input map, (C, H, W).
    pub input_shape: Shape,
    /// The last layer's blob (`prob` for AlexNet).
    pub output: String,
    /// Its Caffe shape ((C_out, 1, 1) after an fc layer).
    pub output_shape: Shape,
    /// When the network ends in a softmax: the blob it normalises (AlexNet: `fc8`, the
    /// logits), worth comparing because near one-hot probabilities hide most errors.
    pub logits: Option<String>,
}

/// A model in ncnn's two files, held in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct NcnnModel {
    /// The `.param` file's text.
    pub param: String,
    /// The `.bin` file's bytes.
    pub bin: Vec<u8>,
    pub blobs: Blobs,
}

/// The blobs of `arch`'s ncnn network (no weights needed).
pub fn blobs(arch: &Architecture) -> Result<Blobs, ExportError> {
    Ok(build(arch, None)?.blobs)
}

/// `model`'s dense network (stored dense weights, or rebuilt from the codebooks exactly as the
/// dense baseline rebuilds them) as an ncnn model.
pub fn export(model: &Model) -> Result<NcnnModel, ExportError> {
    build(&model.arch, Some(&model.params))
}

/// Writes [`export`] to `param` and `bin` (each through a `.partial` file renamed at the end,
/// so a reader never sees half a file). Returns the blobs.
pub fn write(model: &Model, param: &Path, bin: &Path) -> Result<Blobs, ExportError> {
    let net = export(model)?;
    write_file(param, net.param.as_bytes())?;
    write_file(bin, &net.bin)?;
    Ok(net.blobs)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = std::fs::File::create(&partial)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(source) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(ExportError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// A layer's type and its `id=value` parameters.
type LayerSpec = (&'static str, Vec<(&'static str, String)>);

/// The current blob while layers are appended, and whether it is still a (C, H, W) map.
struct Cursor {
    blob: String,
    is_map: bool,
}

/// Builds the network of `arch`; with `params` (one per conv/fc layer, in order) the weights
/// go into the `.bin` bytes, without them only the topology is checked.
fn build(arch: &Architecture, params: Option<&[LayerParams]>) -> Result<NcnnModel, ExportError> {
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
    let mut lines = vec![line(
        "Input",
        INPUT,
        &[],
        &[
            ("0", input.w.to_string()),
            ("1", input.h.to_string()),
            ("2", input.c.to_string()),
        ],
    )];
    let mut bin = Vec::new();
    let mut cur = Cursor {
        blob: INPUT.into(),
        is_map: true,
    };
    let mut param_index = 0;
    let mut before_softmax: Option<String> = None;
    for (index, layer) in arch.layers.iter().enumerate() {
        let name = layer.name;
        check_name(name)?;
        let out_shape = shapes[index];
        let (kind, values): LayerSpec = match layer.kind {
            LayerKind::Conv(_) | LayerKind::Fc { .. } => {
                let shape = param_layers[param_index];
                let weights = params.map(|p| &p[param_index]);
                param_index += 1;
                if let Some(w) = weights {
                    append_weights(name, w, &shape, &mut bin)?;
                }
                match shape.kind {
                    ParamKind::Conv(c) => conv(name, &cur, &shape, c)?,
                    ParamKind::Fc => fc(&shape),
                }
            }
            LayerKind::Relu => ("ReLU", vec![("0", float(0.0))]),
            LayerKind::Lrn(spec) => lrn(name, &cur, spec)?,
            LayerKind::MaxPool(spec) => pool(name, &cur, arch.input_of(index), out_shape, spec)?,
            LayerKind::Dropout => continue,
            LayerKind::Softmax => ("Softmax", vec![("0", "0".into()), ("1", "1".into())]),
        };
        before_softmax = match layer.kind {
            LayerKind::Softmax => (cur.blob != INPUT).then(|| cur.blob.clone()),
            _ => None,
        };
        lines.push(line(kind, name, &[&cur.blob], &values));
        cur = Cursor {
            blob: name.into(),
            is_map: cur.is_map && !matches!(layer.kind, LayerKind::Fc { .. }),
        };
    }
    if lines.len() == 1 {
        return Err(unsupported("(model)", "no layer computes anything"));
    }
    // Every layer line makes exactly one new blob (the Input layer makes `data`).
    let mut param = format!("{MAGIC}\n{} {}\n", lines.len(), lines.len());
    for l in &lines {
        param.push_str(l);
        param.push('\n');
    }
    let blobs = Blobs {
        input: INPUT.into(),
        input_shape: input,
        output: cur.blob,
        output_shape: shapes.last().copied().unwrap_or(input),
        logits: before_softmax,
    };
    Ok(NcnnModel { param, bin, blobs })
}

/// One layer line; an Input layer has no input blob.
fn line(kind: &str, name: &str, inputs: &[&str], values: &[(&str, String)]) -> String {
    let mut s = format!("{kind:<24} {name:<16} {} 1", inputs.len());
    for blob in inputs {
        s.push(' ');
        s.push_str(blob);
    }
    s.push(' ');
    s.push_str(name);
    for (key, value) in values {
        s.push_str(&format!(" {key}={value}"));
    }
    s
}

/// Blob and layer names are read as whitespace-separated words of at most 255 bytes.
fn check_name(name: &str) -> Result<(), ExportError> {
    if name.is_empty() || name.len() > 255 || name.chars().any(|c| c.is_whitespace()) {
        return Err(unsupported(
            name,
            "an ncnn layer name must be 1 to 255 bytes without spaces",
        ));
    }
    if name == INPUT {
        return Err(unsupported(name, "the input blob's name"));
    }
    Ok(())
}

/// A float as ncnn's parser reads it: it must contain a `.` or an `e` to be taken as a float,
/// and at most 15 characters. `{:e}` is the shortest representation that reads back as the
/// same f32 (at most 9 significant digits), e.g. `1e-4`, `7.5e-1`.
fn float(v: f32) -> String {
    let s = format!("{v:e}");
    debug_assert!(s.len() <= MAX_VALUE_CHARS && v.is_finite(), "{s}");
    s
}

fn conv(
    name: &str,
    cur: &Cursor,
    shape: &ParamShape,
    c: ConvSpec,
) -> Result<LayerSpec, ExportError> {
    if !cur.is_map {
        return Err(unsupported(name, "a convolution after an fc layer"));
    }
    let mut values = vec![
        ("0", c.out_channels.to_string()),
        ("1", c.kernel.to_string()),
        ("3", c.stride.to_string()),
        ("4", c.pad.to_string()),
        ("5", "1".to_string()),
        ("6", shape.weight_count().to_string()),
    ];
    if c.groups == 1 {
        return Ok(("Convolution", values));
    }
    values.push(("7", c.groups.to_string()));
    Ok(("ConvolutionDepthWise", values))
}

fn fc(shape: &ParamShape) -> LayerSpec {
    let values = vec![
        ("0", shape.out_channels().to_string()),
        ("1", "1".to_string()),
        ("2", shape.weight_count().to_string()),
    ];
    ("InnerProduct", values)
}

fn lrn(name: &str, cur: &Cursor, spec: LrnSpec) -> Result<LayerSpec, ExportError> {
    if !cur.is_map {
        return Err(unsupported(name, "LRN after an fc layer"));
    }
    // ncnn's window [c − size/2, c + size/2] is Caffe's [c − (size−1)/2, c + (size−1)/2]
    // only for odd sizes.
    if spec.size.is_multiple_of(2) {
        return Err(unsupported(
            name,
            format!(
                "LRN size {} is even: ncnn centres its window differently from Caffe",
                spec.size
            ),
        ));
    }
    let values = vec![
        ("0", "0".to_string()),
        ("1", spec.size.to_string()),
        ("2", float(spec.alpha)),
        ("3", float(spec.beta)),
        ("4", float(spec.k)),
    ];
    Ok(("LRN", values))
}

fn pool(
    name: &str,
    cur: &Cursor,
    input: Shape,
    out: Shape,
    spec: PoolSpec,
) -> Result<LayerSpec, ExportError> {
    if !cur.is_map {
        return Err(unsupported(name, "max pooling after an fc layer"));
    }
    // ncnn's full padding rounds up like Caffe but without Caffe's clip of a last window that
    // starts in the padding: refuse the (padded) shapes where the two differ.
    let ncnn_extent = |size: usize| (size + 2 * spec.pad - spec.kernel).div_ceil(spec.stride) + 1;
    if (ncnn_extent(input.h), ncnn_extent(input.w)) != (out.h, out.w) {
        return Err(unsupported(
            name,
            "Caffe clips a last pooling window that starts in the padding; ncnn's full padding does not",
        ));
    }
    let values = vec![
        ("0", "0".to_string()),
        ("1", spec.kernel.to_string()),
        ("2", spec.stride.to_string()),
        ("3", spec.pad.to_string()),
        ("4", "0".to_string()),
        ("5", "0".to_string()),
    ];
    Ok(("Pooling", values))
}

/// The layer's weights (flagged raw f32) then its biases (raw f32), as ncnn's Convolution,
/// ConvolutionDepthWise and InnerProduct load them.
fn append_weights(
    name: &str,
    params: &LayerParams,
    shape: &ParamShape,
    bin: &mut Vec<u8>,
) -> Result<(), ExportError> {
    if params.shape != *shape {
        return Err(unsupported(name, "parameters belong to another layer"));
    }
    let weights = params.dense_weights();
    if weights.len() != shape.weight_count() {
        return Err(unsupported(
            name,
            format!(
                "{} dense weights, expected {}",
                weights.len(),
                shape.weight_count()
            ),
        ));
    }
    let c_t = shape.out_channels();
    if params.bias.len() != c_t {
        return Err(unsupported(
            name,
            format!("{} biases for {c_t} outputs", params.bias.len()),
        ));
    }
    bin.reserve(4 + 4 * (weights.len() + c_t));
    bin.extend_from_slice(&F32_FLAG);
    bin.extend(weights.iter().flat_map(|v| v.to_le_bytes()));
    bin.extend(params.bias.iter().flat_map(|v| v.to_le_bytes()));
    Ok(())
}

fn unsupported(layer: &str, problem: impl Into<String>) -> ExportError {
    ExportError::Unsupported {
        layer: layer.into(),
        problem: problem.into(),
    }
}
