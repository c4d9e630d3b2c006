//! The parameters of a conv or fc layer: bias, product-quantized codebooks, dense weights.

use std::borrow::Cow;

use crate::arch::{ParamKind, ParamShape, QuantSpec};

/// Product-quantized weights of one layer (METHOD.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Codebooks {
    pub spec: QuantSpec,
    /// M, the number of subspaces: ceil(split_channels / d).
    pub subspaces: usize,
    /// Layout (M, K, d): codeword k of subspace m starts at (m·K + k)·d.
    pub centroids: Vec<f32>,
    /// Layout conv (C_t, kh, kw, M), fc (C_t, M). Every entry is < K (checked at load).
    pub assignments: Vec<u8>,
}

impl Codebooks {
    /// Codeword `k` of subspace `m` (d floats).
    pub fn codeword(&self, m: usize, k: usize) -> &[f32] {
        let d = self.spec.d;
        let start = (m * self.spec.k + k) * d;
        &self.centroids[start..start + d]
    }
}

/// Everything a conv or fc layer needs. At least one of `codebooks` and `dense` is present.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    pub shape: ParamShape,
    /// (C_t).
    pub bias: Vec<f32>,
    pub codebooks: Option<Codebooks>,
    /// Caffe layout: conv (C_t, C_s/groups, kh, kw); fc (C_t, C_s).
    pub dense: Option<Vec<f32>>,
}

impl LayerParams {
    /// The dense weights: the stored ones, or rebuilt as codebook[assignment] (FORMAT.md).
    pub fn dense_weights(&self) -> Cow<'_, [f32]> {
        match (&self.dense, &self.codebooks) {
            (Some(w), _) => Cow::Borrowed(w),
            (None, Some(cb)) => Cow::Owned(rebuild_dense(&self.shape, cb)),
            (None, None) => unreachable!("a loaded layer has codebooks or dense weights"),
        }
    }
}

/// conv `W[t][c][i][j] = ctrd[c / d][asmt[t][i][j][c / d]][c % d]`;
/// fc `W[t][m·d + j] = ctrd[m][asmt[t][m]][j]`. A partial last subspace uses its first dims.
pub fn rebuild_dense(shape: &ParamShape, cb: &Codebooks) -> Vec<f32> {
    let c_t = shape.out_channels();
    let c_s = shape.split_channels();
    let taps = shape.taps();
    let d = cb.spec.d;
    let m_count = cb.subspaces;
    let mut w = vec![0.0f32; c_t * c_s * taps];
    for t in 0..c_t {
        for c in 0..c_s {
            let (m, j) = (c / d, c % d);
            for tap in 0..taps {
                let b = cb.assignments[(t * taps + tap) * m_count + m] as usize;
                w[(t * c_s + c) * taps + tap] = cb.codeword(m, b)[j];
            }
        }
    }
    debug_assert!(matches!(shape.kind, ParamKind::Conv(_) | ParamKind::Fc));
    w
}
