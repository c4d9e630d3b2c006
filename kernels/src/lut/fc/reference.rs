//! The oracle: the paper's formula, read straight from the codebooks and the original
//! assignments, with safe indexing and no tables.

use crate::lut::PqSpec;
use crate::shape::FcShape;

/// y_t = bias_t + Σ_m < x^(m), D^(m)_{b_t^(m)} > for every output t.
///
/// Buffers: `centroids` (M, K, d); `assignments` (C_t, M); `bias` (C_t); `x` (C_s);
/// returns y (C_t). A partial last subspace (C_s not a multiple of d) uses the first
/// C_s − (M−1)·d dims of its codewords. Panics on inconsistent lengths (it is a test oracle;
/// the fast path validates in [`super::FcLut::new`]).
pub fn fc_reference(
    shape: FcShape,
    spec: PqSpec,
    centroids: &[f32],
    assignments: &[u8],
    bias: &[f32],
    x: &[f32],
) -> Vec<f32> {
    let (c_s, d, k) = (shape.c_in, spec.d, spec.k);
    let m_count = spec.subspaces(c_s);
    assert_eq!(centroids.len(), m_count * k * d, "centroids (M, K, d)");
    assert_eq!(
        assignments.len(),
        shape.c_out * m_count,
        "assignments (C_t, M)"
    );
    assert_eq!(bias.len(), shape.c_out, "bias (C_t)");
    assert_eq!(x.len(), c_s, "x (C_s)");
    (0..shape.c_out)
        .map(|t| {
            let mut y = bias[t];
            for m in 0..m_count {
                let b = assignments[t * m_count + m] as usize;
                assert!(
                    b < k,
                    "assignment {b} of output {t}, subspace {m} is not below K = {k}"
                );
                let codeword = &centroids[(m * k + b) * d..(m * k + b + 1) * d];
                let sub = &x[m * d..((m + 1) * d).min(c_s)];
                y += sub.iter().zip(codeword).map(|(a, w)| a * w).sum::<f32>();
            }
            y
        })
        .collect()
}
