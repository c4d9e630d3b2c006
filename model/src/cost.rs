//! What a network costs per image and on disk, dense against Q-CNN: the paper's analysis
//! (METHOD.md). `qcnn theory` prints it and `qcnn reproduce` records it, both from
//! [`network_cost`], so the two can never disagree.
//!
//! Per conv/fc layer: dense multiply-adds; Q-CNN table multiply-adds plus look-up-adds (one
//! look-up-add counts as one multiply-add, as the authors count); storage in the authors'
//! file format (FORMAT.md): dense `convKnl`/`fcntWei` + `biasVec` files against `ctrdLst` +
//! bit-packed `asmtLst` + `biasVec` files, headers and 4096-byte blocks included.

use crate::arch::{Architecture, ParamKind, ParamShape, QuantSpec};
use crate::format::{bits_for, CBN_BLOCK_BYTES};
use crate::Model;

/// One conv or fc layer's costs.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerCost {
    pub layer: &'static str,
    pub shape: ParamShape,
    /// The layer's d/K; None: it stays dense (its Q-CNN cost is its dense cost).
    pub spec: Option<QuantSpec>,
    /// Dense multiply-adds: H_t·W_t·C_t·kh·kw·(C_s/groups).
    pub dense_macs: u64,
    /// Multiply-adds building the look-up table: H_s·W_s·C_s·K (0 when dense).
    pub table_macs: u64,
    /// Look-up-adds: H_t·W_t·C_t·kh·kw·M (the dense multiply-adds when dense).
    pub lookups: u64,
    /// Bytes of the dense weight and bias files.
    pub dense_bytes: u64,
    /// Bytes of the codebook, packed-index and bias files (the dense files when dense).
    pub quantized_bytes: u64,
}

impl LayerCost {
    /// Table multiply-adds plus look-ups.
    pub fn quantized_ops(&self) -> u64 {
        self.table_macs + self.lookups
    }
    /// Dense ops over Q-CNN ops.
    pub fn speedup(&self) -> f64 {
        ratio(self.dense_macs, self.quantized_ops())
    }
    /// Dense bytes over quantized bytes.
    pub fn compression(&self) -> f64 {
        ratio(self.dense_bytes, self.quantized_bytes)
    }
}

/// Every conv/fc layer's costs, in layer order, and their totals.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkCost {
    pub layers: Vec<LayerCost>,
}

impl NetworkCost {
    pub fn dense_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.dense_macs).sum()
    }
    pub fn quantized_ops(&self) -> u64 {
        self.layers.iter().map(LayerCost::quantized_ops).sum()
    }
    /// The theoretical speed-up of the whole network (METHOD.md: 4.156 for AlexNet).
    pub fn speedup(&self) -> f64 {
        ratio(self.dense_macs(), self.quantized_ops())
    }
    pub fn dense_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.dense_bytes).sum()
    }
    pub fn quantized_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.quantized_bytes).sum()
    }
    pub fn compression(&self) -> f64 {
        ratio(self.dense_bytes(), self.quantized_bytes())
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b as f64
}

/// The costs of `arch` quantized layer by layer with `specs` (one per `param_layers()`,
/// None for a layer left dense).
///
/// # Panics
/// If `specs` does not hold one entry per conv/fc layer (a bug of the caller).
pub fn network_cost(arch: &Architecture, specs: &[Option<QuantSpec>]) -> NetworkCost {
    let shapes = arch.param_layers();
    assert_eq!(specs.len(), shapes.len(), "one spec per conv/fc layer");
    let layers = shapes
        .into_iter()
        .zip(specs)
        .map(|(shape, &spec)| layer_cost(arch.layers[shape.index].name, shape, spec))
        .collect();
    NetworkCost { layers }
}

/// The costs of `model` as it is quantized (a layer without codebooks counts dense).
pub fn model_cost(model: &Model) -> NetworkCost {
    let specs: Vec<Option<QuantSpec>> = model
        .params
        .iter()
        .map(|p| p.codebooks.as_ref().map(|cb| cb.spec))
        .collect();
    network_cost(&model.arch, &specs)
}

fn layer_cost(layer: &'static str, shape: ParamShape, spec: Option<QuantSpec>) -> LayerCost {
    let dims = match shape.kind {
        ParamKind::Conv(_) => 4,
        ParamKind::Fc => 2,
    };
    let bias = bin_len(1, shape.out_channels());
    let dense_bytes = bias + bin_len(dims, shape.weight_count());
    let dense_macs = shape.dense_macs();
    let Some(q) = spec else {
        return LayerCost {
            layer,
            shape,
            spec,
            dense_macs,
            table_macs: 0,
            lookups: dense_macs,
            dense_bytes,
            quantized_bytes: dense_bytes,
        };
    };
    let m = q.subspaces(shape.split_channels());
    let indices = shape.out_channels() * shape.taps() * m;
    LayerCost {
        layer,
        shape,
        spec,
        dense_macs,
        table_macs: shape.table_macs(q),
        lookups: shape.lookups(q),
        dense_bytes,
        quantized_bytes: bias + bin_len(3, m * q.k * q.d) + cbn_len(dims, indices, bits_for(q.k)),
    }
}

/// A `.bin` file of `count` f32 with `ndims` dims: 4 + 4·n + 4·count bytes (FORMAT.md).
pub fn bin_len(ndims: usize, count: usize) -> u64 {
    (4 + 4 * ndims + 4 * count) as u64
}

/// A `.cbn` file: 4 + 4·n + 4 + 4096·ceil(count / floor(32768 / b)) bytes (FORMAT.md).
pub fn cbn_len(ndims: usize, count: usize, bits: u32) -> u64 {
    let per_block = CBN_BLOCK_BYTES * 8 / bits as usize;
    (8 + 4 * ndims + CBN_BLOCK_BYTES * count.div_ceil(per_block)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{alexnet, authors_quantization, conv, Layer, LayerKind, Shape};

    fn some(specs: Vec<QuantSpec>) -> Vec<Option<QuantSpec>> {
        specs.into_iter().map(Some).collect()
    }

    /// The formulas of METHOD.md written out by hand, one layer of each type.
    #[test]
    fn op_counts_follow_the_formula_per_layer_type() {
        // conv: C_s = 6, 7×9 input, 4 kernels of 3×3, stride 2, pad 1, 2 groups (C_s/g = 3,
        // a partial subspace for d = 2: M = 2), K = 5.
        let arch = Architecture {
            name: "formula",
            input: Shape::new(6, 7, 9),
            layers: vec![
                Layer {
                    name: "c",
                    kind: conv(4, 3, 2, 1, 2),
                },
                Layer {
                    name: "f",
                    kind: LayerKind::Fc { out: 10 },
                },
            ],
        };
        let q = QuantSpec { d: 2, k: 5 };
        let cost = network_cost(&arch, &[Some(q), Some(q)]);
        let (h_t, w_t) = ((7 + 2 - 3) / 2 + 1, (9 + 2 - 3) / 2 + 1);
        assert_eq!((h_t, w_t), (4, 5));
        let c = &cost.layers[0];
        assert_eq!(c.dense_macs, (h_t * w_t * 4 * 3 * 3 * 3) as u64);
        assert_eq!(c.table_macs, (7 * 9 * 6 * 5) as u64);
        assert_eq!(c.lookups, (h_t * w_t * 4 * 3 * 3 * 2) as u64);
        // fc: C_s = 4·4·5 = 80 inputs, C_t = 10, M = 40.
        let f = &cost.layers[1];
        assert_eq!(f.dense_macs, 80 * 10);
        assert_eq!(f.table_macs, 80 * 5);
        assert_eq!(f.lookups, 10 * 40);
        // A dense layer costs the same on both sides.
        let dense = network_cost(&arch, &[None, Some(q)]);
        assert_eq!(dense.layers[0].quantized_ops(), dense.layers[0].dense_macs);
        assert_eq!(dense.layers[0].compression(), 1.0);
    }

    #[test]
    fn alexnet_at_the_authors_settings_is_4_156() {
        let a = alexnet();
        let cost = network_cost(&a, &some(authors_quantization(&a)));
        assert!((cost.speedup() - 4.156).abs() < 5e-4, "{}", cost.speedup());
        // ≈ 244 MB dense vs ≈ 13 MB quantized (METHOD.md).
        assert!((243e6..245e6).contains(&(cost.dense_bytes() as f64)));
        assert!((12e6..14e6).contains(&(cost.quantized_bytes() as f64)));
    }

    #[test]
    fn cbn_length_matches_format_md_example() {
        // fc7: dims (4096, 1024), b = 5 → 2,625,552 bytes.
        assert_eq!(cbn_len(2, 4096 * 1024, 5), 2_625_552);
    }
}
