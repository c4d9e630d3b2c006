//! Per-layer clocks: an Observer that timestamps layer and phase boundaries.

use std::time::{Duration, Instant};

use qcnn_model::Layer;
use qcnn_runner::{Observer, Phase};

/// Accumulates, over every image of a repeat, each layer's time and, inside quantized layers,
/// the time of each phase (table build, look-ups).
pub struct LayerClock {
    /// Per layer index: total time.
    pub layer: Vec<Duration>,
    /// Per layer index: time in `Phase::Table` and `Phase::Lookup`.
    pub table: Vec<Duration>,
    pub lookup: Vec<Duration>,
    layer_start: Instant,
    mark: Instant,
    /// The layer currently running (the one after the last finished).
    running: usize,
}

impl LayerClock {
    pub fn new(layers: usize) -> Self {
        let now = Instant::now();
        LayerClock {
            layer: vec![Duration::ZERO; layers],
            table: vec![Duration::ZERO; layers],
            lookup: vec![Duration::ZERO; layers],
            layer_start: now,
            mark: now,
            running: 0,
        }
    }

    /// Call right before a forward pass starts.
    pub fn start_image(&mut self) {
        self.running = 0;
        self.layer_start = Instant::now();
        self.mark = self.layer_start;
    }
}

impl Observer for LayerClock {
    fn after_layer(&mut self, index: usize, _layer: &Layer, _output: &[f32]) {
        let now = Instant::now();
        self.layer[index] += now - self.layer_start;
        self.layer_start = now;
        self.mark = now;
        self.running = index + 1;
    }

    fn after_phase(&mut self, phase: Phase) {
        let now = Instant::now();
        let slot = match phase {
            Phase::Table => &mut self.table,
            Phase::Lookup => &mut self.lookup,
        };
        if let Some(acc) = slot.get_mut(self.running) {
            *acc += now - self.mark;
        }
        self.mark = now;
    }
}
