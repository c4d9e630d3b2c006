//! The paper's networks as data: layer lists, shapes, op counts and storage; weights and
//! codebooks; the authors' file format and model folders; image preprocessing; the embedded
//! synthetic defaults.

pub mod arch;
pub mod cost;
pub mod error;
pub mod folder;
pub mod format;
pub mod import;
pub mod preprocess;
pub mod synthetic;
pub mod weights;

pub use arch::{alexnet, Architecture, Layer, LayerKind, NetworkKind, QuantSpec, Shape};
pub use error::{ModelError, Result};
pub use weights::{Codebooks, LayerParams};

/// Where a model came from, for the results' provenance.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// The embedded synthetic AlexNet with this seed.
    Synthetic { seed: u64 },
    /// A model folder (the `Bin.Files` directory that was read).
    Folder(std::path::PathBuf),
    /// A dense model written by another tool (`format`: "ONNX", "Caffe"), mapped onto one
    /// of the known layer lists (see [`import`]).
    Imported {
        path: std::path::PathBuf,
        format: &'static str,
    },
}

/// A whole model: architecture plus the parameters of every conv and fc layer, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub arch: Architecture,
    /// One entry per `arch.param_layers()`, same order.
    pub params: Vec<LayerParams>,
    pub source: ModelSource,
}

impl Model {
    /// The parameters of the layer at `index` in `arch.layers`, if it is a conv or fc layer.
    pub fn params_of(&self, index: usize) -> Option<&LayerParams> {
        self.params.iter().find(|p| p.shape.index == index)
    }
}
