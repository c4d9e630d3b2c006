//! Test support shared by every crate: where the authors' files are, and a layer recorder.
//!
//! The authors' model and golden outputs are never committed; tests read them from
//! `shared/` beside the checkout (`$QCNN_SHARED` overrides) and skip visibly without them.

use std::path::PathBuf;

pub use qcnn_kernels::dense::reference::max_relative_error;

use crate::{Layer, Observer};

/// `$QCNN_SHARED`, else `shared/` beside the workspace, if it exists.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QCNN_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    dir.is_dir().then_some(dir)
}

/// `shared_dir()/relative` if it exists; otherwise prints a visible SKIPPED line for `test`.
pub fn shared_or_skip(test: &str, relative: &str) -> Option<PathBuf> {
    let path = shared_dir()
        .map(|d| d.join(relative))
        .filter(|p| p.exists());
    if path.is_none() {
        eprintln!("SKIPPED: {test}: shared data '{relative}' not found (set QCNN_SHARED)");
    }
    path
}

/// Keeps a copy of every layer's output of a forward pass.
#[derive(Default)]
pub struct LayerRecorder {
    /// (layer index, layer name, output).
    pub outputs: Vec<(usize, &'static str, Vec<f32>)>,
}

impl Observer for LayerRecorder {
    fn after_layer(&mut self, index: usize, layer: &Layer, output: &[f32]) {
        self.outputs.push((index, layer.name, output.to_vec()));
    }
}

impl LayerRecorder {
    /// The output of the layer called `name`.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.outputs
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(_, _, o)| o.as_slice())
    }
}
