//! Op counts and storage of the model actually run, as `meta.json` records them: the same
//! figures `qcnn theory` prints (both come from `qcnn_model::cost::model_cost`).

use qcnn_model::cost::{model_cost, NetworkCost};
use qcnn_model::Model;
use qcnn_results::{LayerOps, Storage};

/// Dense multiply-adds over (table multiply-adds + look-ups) of every conv and fc layer
/// (METHOD.md: 4.156 for the authors' configuration).
pub fn theoretical_speedup(model: &Model) -> f64 {
    model_cost(model).speedup()
}

/// Per-layer op counts of the model as quantized (a layer without codebooks counts dense).
pub fn layer_ops(model: &Model) -> Vec<LayerOps> {
    layer_ops_of(&model_cost(model))
}

/// The op counts of `cost` in the results' schema.
pub fn layer_ops_of(cost: &NetworkCost) -> Vec<LayerOps> {
    cost.layers
        .iter()
        .map(|l| LayerOps {
            layer: l.layer.to_string(),
            dense_macs: l.dense_macs,
            table_macs: l.table_macs,
            lookups: l.lookups,
        })
        .collect()
}

/// Bytes on disk in the authors' format: dense f32 files vs codebooks + packed indices.
pub fn storage(model: &Model) -> Storage {
    let cost = model_cost(model);
    Storage {
        dense_bytes: cost.dense_bytes(),
        quantized_bytes: cost.quantized_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_model_has_the_authors_theoretical_speedup() {
        let model = qcnn_model::synthetic::synthetic_model(1);
        assert!((theoretical_speedup(&model) - 4.156).abs() < 1e-3);
        let s = storage(&model);
        // ≈ 244 MB dense vs ≈ 13 MB quantized (METHOD.md).
        assert!((230e6..250e6).contains(&(s.dense_bytes as f64)), "{s:?}");
        assert!((10e6..16e6).contains(&(s.quantized_bytes as f64)), "{s:?}");
    }
}
