//! Op counts and storage of the model actually run.

use qcnn_model::format::{bits_for, CBN_BLOCK_BYTES};
use qcnn_model::Model;
use qcnn_results::{LayerOps, Storage};

/// Dense multiply-adds over (table multiply-adds + look-ups) of every conv and fc layer
/// (METHOD.md: 4.156 for the authors' configuration).
pub fn theoretical_speedup(model: &Model) -> f64 {
    let ops = layer_ops(model);
    let dense: u64 = ops.iter().map(|l| l.dense_macs).sum();
    let quantized: u64 = ops.iter().map(|l| l.table_macs + l.lookups).sum();
    dense as f64 / quantized as f64
}

/// Per-layer op counts of the model as quantized (a layer without codebooks counts dense).
pub fn layer_ops(model: &Model) -> Vec<LayerOps> {
    model
        .params
        .iter()
        .map(|p| {
            let (table_macs, lookups) = match &p.codebooks {
                Some(cb) => (p.shape.table_macs(cb.spec), p.shape.lookups(cb.spec)),
                None => (0, p.shape.dense_macs()),
            };
            LayerOps {
                layer: model.arch.layers[p.shape.index].name.to_string(),
                dense_macs: p.shape.dense_macs(),
                table_macs,
                lookups,
            }
        })
        .collect()
}

/// Bytes on disk in the authors' format: dense f32 files vs codebooks + packed indices.
pub fn storage(model: &Model) -> Storage {
    let mut s = Storage::default();
    for p in &model.params {
        let bias = bin_len(1, p.bias.len());
        let dims = if p.shape.taps() > 1 { 4 } else { 2 };
        s.dense_bytes += bias + bin_len(dims, p.shape.weight_count());
        s.quantized_bytes += bias;
        if let Some(cb) = &p.codebooks {
            s.quantized_bytes += bin_len(3, cb.centroids.len())
                + cbn_len(dims, cb.assignments.len(), bits_for(cb.spec.k));
        }
    }
    s
}

/// FORMAT.md: 4 + 4n + 4·count.
fn bin_len(ndims: usize, count: usize) -> u64 {
    (4 + 4 * ndims + 4 * count) as u64
}

/// FORMAT.md: 4 + 4n + 4 + 4096·ceil(count / floor(32768 / b)).
fn cbn_len(ndims: usize, count: usize, bits: u32) -> u64 {
    let per_block = CBN_BLOCK_BYTES * 8 / bits as usize;
    (8 + 4 * ndims + CBN_BLOCK_BYTES * count.div_ceil(per_block)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbn_length_matches_format_md_example() {
        // fc7: dims (4096, 1024), b = 5 → 2,625,552 bytes.
        assert_eq!(cbn_len(2, 4096 * 1024, 5), 2_625_552);
    }

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
