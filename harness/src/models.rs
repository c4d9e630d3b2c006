//! Where the model and the networks come from: a model folder or the embedded default, for
//! any of the paper's four networks.

use std::path::Path;

use anyhow::{bail, Context, Result};
use qcnn_kernels::Target;
use qcnn_model::folder::{self, ModelFolder};
use qcnn_model::{synthetic, Model, ModelSource, Network, NetworkKind, Shape};

/// Every mode this build offers, in the order tables show them.
pub const MODES: &[&str] = &["dense", "qcnn", "qcnn-int8"];

/// File-name prefix of an embedded default network written in the authors' format:
/// `qcnn_synthetic_<name>` (`qcnn_synthetic_alexnet`, `qcnn_synthetic_cnn_s`).
pub fn synthetic_prefix(network: NetworkKind) -> String {
    format!("qcnn_synthetic_{}", network.name().replace('-', "_"))
}

/// `--network`, shared by every command that builds a network.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct NetworkArg {
    /// Which of the paper's networks: alexnet, caffenet, cnn-s or vgg16. It picks the
    /// embedded synthetic default and the layer list a model folder is read with
    /// (default: alexnet).
    #[arg(long, value_parser = parse_network)]
    pub network: Option<NetworkKind>,
}

impl NetworkArg {
    /// The network asked for, else AlexNet.
    pub fn kind(&self) -> NetworkKind {
        self.network.unwrap_or(NetworkKind::AlexNet)
    }
}

fn parse_network(text: &str) -> Result<NetworkKind, String> {
    text.parse()
}

/// A loaded model and, when it came from disk, the folder (mean image, class names, labels).
pub struct LoadedModel {
    pub model: Model,
    pub folder: Option<ModelFolder>,
}

impl LoadedModel {
    /// The network's input shape (C, H, W).
    pub fn input(&self) -> Shape {
        self.model.arch.input
    }
}

/// Loads `path` as `network`: a model folder in the authors' format (a repository root, an
/// AlexNet folder or a Bin.Files folder), or a dense model written by another tool (an
/// `.onnx` file, or a `.caffemodel` with its `.prototxt` beside it), mapped onto the
/// network's layer list (without --network, onto whichever of the four it fits). Without a
/// path, the embedded synthetic `network`; it goes through the same encoder and decoder as
/// files on disk, so it exercises the same checks.
pub fn load(path: Option<&Path>, network: NetworkArg, seed: u64) -> Result<LoadedModel> {
    let kind = network.kind();
    match path {
        Some(path) if path.is_file() => Ok(LoadedModel {
            model: import(path, network)?,
            folder: None,
        }),
        Some(path) => {
            let folder = folder::locate(path)?;
            let model = folder::load_folder(&folder, &kind.architecture())
                .with_context(|| format!("reading {} as {}", path.display(), kind))?;
            Ok(LoadedModel {
                model,
                folder: Some(folder),
            })
        }
        None => {
            let generated = synthetic::synthetic_network(kind, seed);
            let prefix = synthetic_prefix(kind);
            let files = folder::encode_files(&generated, &prefix);
            let model = folder::decode_files(
                &files,
                &prefix,
                &generated.arch,
                ModelSource::Synthetic { seed },
            )
            .context("decoding the embedded synthetic model")?;
            Ok(LoadedModel {
                model,
                folder: None,
            })
        }
    }
}

/// A dense model from an ONNX or Caffe file, mapped onto `network` (or identified).
fn import(path: &Path, network: NetworkArg) -> Result<Model> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let foreign = match ext.as_str() {
        "onnx" => qcnn_onnx::import::read(path)?,
        "caffemodel" => {
            let prototxt = qcnn_caffe::prototxt_beside(path).with_context(|| {
                format!(
                    "{}: no prototxt beside it ({} or deploy.prototxt): Caffe weights need \
                     their deploy prototxt",
                    path.display(),
                    path.with_extension("prototxt").display()
                )
            })?;
            qcnn_caffe::read(&prototxt, path)?
        }
        "prototxt" => {
            let weights = path.with_extension("caffemodel");
            if !weights.is_file() {
                bail!(
                    "{}: give the .caffemodel (weights) as --model; no {} beside this prototxt",
                    path.display(),
                    weights.display()
                );
            }
            qcnn_caffe::read(path, &weights)?
        }
        _ => bail!(
            "{}: not a model folder, an .onnx file or a .caffemodel (with its .prototxt)",
            path.display()
        ),
    };
    let model = match network.network {
        Some(kind) => qcnn_model::import::map_onto(&foreign, &kind.architecture()),
        None => {
            let all: Vec<_> = NetworkKind::ALL.iter().map(|n| n.architecture()).collect();
            qcnn_model::import::identify(&foreign, &all)
        }
    };
    model.with_context(|| {
        format!(
            "{}: the {} model does not fit {}",
            path.display(),
            foreign.format,
            network.network.map_or(
                "any of the known networks (closest shown)".to_string(),
                |n| n.to_string()
            )
        )
    })
}

/// Builds the network that runs `mode` on `model`, with look-up kernels prepared for
/// `target`.
pub fn network(mode: &str, model: &Model, target: Target) -> Result<Box<dyn Network>> {
    use qcnn_quantized::{QuantizedNetwork, TableKind};
    Ok(match mode {
        "dense" => Box::new(qcnn_baselines::DenseNetwork::new(model)),
        "qcnn" => Box::new(QuantizedNetwork::new(model, target, TableKind::F32)?),
        "qcnn-int8" => Box::new(QuantizedNetwork::new(model, target, TableKind::Int8)?),
        other => bail!(
            "unknown mode '{other}' (this build offers: {})",
            MODES.join(", ")
        ),
    })
}

/// Describes the model's origin in one line.
pub fn describe(loaded: &LoadedModel) -> String {
    let name = loaded.model.arch.name;
    match (&loaded.model.source, &loaded.folder) {
        (ModelSource::Synthetic { seed }, _) => {
            format!("embedded synthetic {name} (seed {seed})")
        }
        (_, Some(f)) => format!("{} (prefix {}, {name})", f.bin_dir.display(), f.prefix),
        (ModelSource::Folder(p), None) => format!("{} ({name})", p.display()),
        (ModelSource::Imported { path, format }, None) => {
            format!("{format} file {} ({name}, dense)", path.display())
        }
    }
}

/// Synthetic input image `index` for `loaded`'s network.
pub fn synthetic_input(loaded: &LoadedModel, seed: u64, index: usize) -> Vec<f32> {
    synthetic::synthetic_input(loaded.input(), seed, index)
}
