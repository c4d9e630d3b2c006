//! Where the model and the networks come from: a model folder or the embedded default.

use std::path::Path;

use anyhow::{bail, Context, Result};
use qcnn_kernels::Target;
use qcnn_model::folder::{self, ModelFolder};
use qcnn_model::{synthetic, Model, ModelSource, Network};

/// Every mode this build offers, in the order tables show them.
pub const MODES: &[&str] = &["dense", "qcnn", "qcnn-int8"];

/// File-name prefix of the embedded default when written in the authors' format.
pub const SYNTHETIC_PREFIX: &str = "qcnn_synthetic_alexnet";

/// A loaded model and, when it came from disk, the folder (mean image, class names, labels).
pub struct LoadedModel {
    pub model: Model,
    pub folder: Option<ModelFolder>,
}

/// Loads `path` (a repository root, an AlexNet folder or a Bin.Files folder), or the embedded
/// synthetic AlexNet when no path is given. The embedded model goes through the same encoder
/// and decoder as files on disk, so it exercises the same checks.
pub fn load(path: Option<&Path>, seed: u64) -> Result<LoadedModel> {
    match path {
        Some(path) => {
            let folder = folder::locate(path)?;
            let model = folder::load_folder(&folder, &qcnn_model::alexnet())?;
            Ok(LoadedModel {
                model,
                folder: Some(folder),
            })
        }
        None => {
            let generated = synthetic::synthetic_model(seed);
            let files = folder::encode_files(&generated, SYNTHETIC_PREFIX);
            let model = folder::decode_files(
                &files,
                SYNTHETIC_PREFIX,
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
    match (&loaded.model.source, &loaded.folder) {
        (ModelSource::Synthetic { seed }, _) => format!("embedded synthetic AlexNet (seed {seed})"),
        (_, Some(f)) => format!("{} (prefix {})", f.bin_dir.display(), f.prefix),
        (ModelSource::Folder(p), None) => p.display().to_string(),
    }
}
