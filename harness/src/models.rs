//! Where the model and the networks come from: a model folder, a dense ONNX or Caffe file, or
//! the embedded default, for any of the paper's four networks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qcnn_kernels::Target;
use qcnn_model::folder::{self, ModelFolder};
use qcnn_model::import::{ForeignNet, MAX_MODEL_BYTES};
use qcnn_model::{synthetic, Architecture, Model, ModelSource, NetworkKind, Shape};
use qcnn_runner::Network;

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
    /// (default: alexnet; a dense .onnx/.caffemodel without it is matched against all four).
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

/// What a model argument (`--model`, `--dense`) names, found without reading any weights:
/// the validated-arguments step locates it, loading reads it.
#[derive(Clone, Debug)]
pub enum ModelPath {
    /// A model folder in the authors' format.
    Folder(ModelFolder),
    /// A dense ONNX file (a regular file of at most [`MAX_MODEL_BYTES`]).
    Onnx(PathBuf),
    /// A dense Caffe model: the deploy prototxt and the weights (both regular files within
    /// their limits).
    Caffe { prototxt: PathBuf, weights: PathBuf },
}

impl ModelPath {
    /// Finds what `path` is: a folder (the authors' layout, located), an `.onnx` file, a
    /// `.caffemodel` with its prototxt beside it, or a `.prototxt` with its `.caffemodel`.
    /// Files must be regular files within their size limits; anything else (a FIFO, a
    /// device, a missing companion file) is an error naming the path.
    pub fn locate(path: &Path) -> Result<ModelPath> {
        match qcnn_files::probe(path)? {
            None => bail!("{}: no such model folder or file", path.display()),
            Some(kind) if kind.is_dir() => Ok(ModelPath::Folder(folder::locate(path)?)),
            Some(kind) if kind.is_file() => Self::locate_file(path),
            Some(kind) => bail!(
                "{}: is {}, neither a model folder nor a model file",
                path.display(),
                qcnn_files::describe(kind)
            ),
        }
    }

    fn locate_file(path: &Path) -> Result<ModelPath> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let model = match ext.as_str() {
            "onnx" => ModelPath::Onnx(path.to_path_buf()),
            "caffemodel" => {
                let prototxt = qcnn_caffe::prototxt_beside(path)?.with_context(|| {
                    format!(
                        "{}: no prototxt beside it ({} or deploy.prototxt): Caffe weights need \
                         their deploy prototxt",
                        path.display(),
                        path.with_extension("prototxt").display()
                    )
                })?;
                ModelPath::Caffe {
                    prototxt,
                    weights: path.to_path_buf(),
                }
            }
            "prototxt" => {
                let weights = path.with_extension("caffemodel");
                if qcnn_files::optional_file(&weights)?.is_none() {
                    bail!(
                        "{}: give the .caffemodel (weights) as --model; no {} beside this \
                         prototxt",
                        path.display(),
                        weights.display()
                    );
                }
                ModelPath::Caffe {
                    prototxt: path.to_path_buf(),
                    weights,
                }
            }
            _ => bail!(
                "{}: not a model folder, an .onnx file or a .caffemodel (with its .prototxt)",
                path.display()
            ),
        };
        model.check_sizes()?;
        Ok(model)
    }

    /// A dense model file is within its size limit (checked again when it is read).
    fn check_sizes(&self) -> Result<()> {
        match self {
            ModelPath::Folder(_) => {}
            ModelPath::Onnx(path) => {
                qcnn_files::check_regular(path, MAX_MODEL_BYTES, "an ONNX model")?;
            }
            ModelPath::Caffe { prototxt, weights } => {
                qcnn_files::check_regular(weights, MAX_MODEL_BYTES, "a caffemodel")?;
                qcnn_files::check_regular(prototxt, qcnn_caffe::MAX_PROTOTXT_BYTES, "a prototxt")?;
            }
        }
        Ok(())
    }

    /// A dense model written by another tool: no codebooks, so only mode dense runs it.
    pub fn is_dense_file(&self) -> bool {
        !matches!(self, ModelPath::Folder(_))
    }
}

/// The architecture a command checks its arguments against before loading (d/K against the
/// layers, `--layer`, image and map sizes): `--network`'s, AlexNet without it. None for a
/// dense model file given without `--network`: which network it is shows only when it is
/// read, so those checks run right after loading ([`LoadedModel::identified`]), still before
/// any work.
pub fn architecture(model: Option<&ModelPath>, network: NetworkArg) -> Option<Architecture> {
    match (model, network.network) {
        (Some(m), None) if m.is_dense_file() => None,
        _ => Some(network.kind().architecture()),
    }
}

/// Checks that `mode`, given as `arg`, is one this build offers.
pub fn check_mode(arg: &str, mode: &str) -> Result<()> {
    if !MODES.contains(&mode) {
        bail!(
            "{arg}: unknown mode '{mode}' (this build offers: {})",
            MODES.join(", ")
        );
    }
    Ok(())
}

/// Checks the modes `arg` asks of `model`: each one this build offers, and only dense for a
/// dense model file (it has no codebooks).
pub fn check_modes_for(arg: &str, modes: &[String], model: Option<&ModelPath>) -> Result<()> {
    for mode in modes {
        check_mode(arg, mode)?;
        if mode != "dense" && model.is_some_and(ModelPath::is_dense_file) {
            bail!(
                "{arg}: mode '{mode}' needs codebooks, and a dense .onnx/.caffemodel has none; \
                 quantize it first (qcnn quantize --dense MODEL --out DIR) and give DIR"
            );
        }
    }
    Ok(())
}

/// A loaded model and, when it came from disk, the folder (mean image, class names, labels).
pub struct LoadedModel {
    pub model: Model,
    pub folder: Option<ModelFolder>,
    /// The network was identified from a dense model file (no `--network`): arguments that
    /// depend on it were not checked before loading ([`architecture`] was None).
    pub identified: bool,
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
    let Some(path) = path else {
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
        return Ok(LoadedModel {
            model,
            folder: None,
            identified: false,
        });
    };
    let foreign = match ModelPath::locate(path)? {
        ModelPath::Folder(folder) => {
            let model = folder::load_folder(&folder, &kind.architecture())
                .with_context(|| format!("reading {} as {}", path.display(), kind))?;
            return Ok(LoadedModel {
                model,
                folder: Some(folder),
                identified: false,
            });
        }
        ModelPath::Onnx(onnx) => qcnn_onnx::import::read(&onnx)?,
        ModelPath::Caffe { prototxt, weights } => qcnn_caffe::read(&prototxt, &weights)?,
    };
    Ok(LoadedModel {
        model: map_foreign(&foreign, network)?,
        folder: None,
        identified: network.network.is_none(),
    })
}

/// A dense model read from an ONNX or Caffe file, mapped onto `network` (or identified).
fn map_foreign(foreign: &ForeignNet, network: NetworkArg) -> Result<Model> {
    let model = match network.network {
        Some(kind) => qcnn_model::import::map_onto(foreign, &kind.architecture()),
        None => {
            let all: Vec<_> = NetworkKind::ALL.iter().map(|n| n.architecture()).collect();
            qcnn_model::import::identify(foreign, &all)
        }
    };
    model.with_context(|| {
        format!(
            "{}: the {} model does not fit {}",
            foreign.path.display(),
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
        // LRN at the same level as the look-ups: `--isa avx2` then plays an AVX2 machine
        // for both modes (BLAS follows `--blas-core`).
        "dense" => Box::new(qcnn_baselines::DenseNetwork::with_isa(model, target.isa)),
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
