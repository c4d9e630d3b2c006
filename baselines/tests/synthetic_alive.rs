//! The embedded synthetic model stays alive through the dense network: no ReLU output is all
//! zero in any layer and the fc8 logits are not all equal, for every synthetic image tried.

use qcnn_baselines::DenseNetwork;
use qcnn_model::synthetic::{synthetic_image, synthetic_model, DEFAULT_SEED};
use qcnn_model::{Layer, LayerKind};
use qcnn_runner::{Network, Observer};

/// Records, per layer, whether every value is finite, the fraction of values > 0, and whether
/// the values are not all equal.
#[derive(Default)]
struct Liveness {
    layers: Vec<(&'static str, LayerKind, bool, f64, bool)>,
}

impl Observer for Liveness {
    fn after_layer(&mut self, _index: usize, layer: &Layer, output: &[f32]) {
        let finite = output.iter().all(|v| v.is_finite());
        let positive = output.iter().filter(|&&v| v > 0.0).count() as f64 / output.len() as f64;
        let varied = output.iter().any(|&v| v != output[0]);
        self.layers
            .push((layer.name, layer.kind, finite, positive, varied));
    }
}

#[test]
fn synthetic_model_is_alive_in_every_layer() {
    for (seed, images) in [(DEFAULT_SEED, 0..4), (1, 0..2)] {
        let model = synthetic_model(seed);
        let mut net = DenseNetwork::new(&model);
        for i in images {
            let mut seen = Liveness::default();
            let prob = net.forward(&synthetic_image(seed, i), &mut seen).to_vec();
            assert_eq!(seen.layers.len(), model.arch.layers.len());
            for (name, kind, finite, positive, varied) in seen.layers {
                let at = format!("seed {seed} image {i} {name}");
                assert!(finite, "{at}: non-finite output");
                if matches!(kind, LayerKind::Relu) {
                    assert!(positive > 0.0, "{at}: all zero");
                }
                if name == "fc8" {
                    assert!(varied, "{at}: logits all equal");
                }
            }
            let sum: f32 = prob.iter().sum();
            assert!(
                (sum - 1.0).abs() < 1e-4,
                "seed {seed} image {i}: softmax sums to {sum}"
            );
        }
    }
}
