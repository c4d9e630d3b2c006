//! What every forward pass (dense, quantized, peers) offers the harness.

pub use qcnn_kernels::Phase;
use qcnn_model::Layer;

/// Watches a forward pass layer by layer. The harness implements it with clocks; `--dump-layers`
/// with a file writer. Networks call it; they never read clocks themselves.
pub trait Observer {
    /// Layer `index` has finished and `output` holds its result (Caffe shape of that layer).
    fn after_layer(&mut self, _index: usize, _layer: &Layer, _output: &[f32]) {}
    /// Inside a quantized layer, `phase` has just finished (may repeat, e.g. per row band).
    fn after_phase(&mut self, _phase: Phase) {}
}

/// Watches nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

/// One image in (3×227×227, preprocessed), class probabilities out.
pub trait Network {
    /// The mode name used everywhere: CLI value, result column, report label.
    fn mode(&self) -> String;
    /// The kernel names actually used, for the results' provenance.
    fn kernels(&self) -> String;
    /// Per conv/fc layer: (layer, kernel, its schedule in words), for the results'
    /// provenance (empty where there is nothing to plan).
    fn plans(&self) -> Vec<(String, String, String)> {
        Vec::new()
    }
    fn forward(&mut self, input: &[f32], observer: &mut dyn Observer) -> &[f32];
}

/// Where a forward pass first produced a NaN or an infinity.
#[derive(Clone, Debug, PartialEq)]
pub struct NonFinite {
    /// Index of the layer in the architecture's list.
    pub index: usize,
    pub layer: &'static str,
    /// Flat position in that layer's output.
    pub position: usize,
    pub value: f32,
}

impl std::fmt::Display for NonFinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layer {} (#{}) output {} at flat position {}",
            self.layer,
            self.index + 1,
            self.value,
            self.position
        )
    }
}

/// Watches a forward pass for the first layer output holding a NaN or an infinity, so that a
/// run whose outputs become non-finite can say where (finite weights can still overflow f32).
#[derive(Debug, Default)]
pub struct FiniteWatch {
    pub first: Option<NonFinite>,
}

impl Observer for FiniteWatch {
    fn after_layer(&mut self, index: usize, layer: &Layer, output: &[f32]) {
        if self.first.is_some() {
            return;
        }
        if let Some(position) = output.iter().position(|v| !v.is_finite()) {
            self.first = Some(NonFinite {
                index,
                layer: layer.name,
                position,
                value: output[position],
            });
        }
    }
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
