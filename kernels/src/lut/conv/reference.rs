//! The oracle: the paper's formula, straight from the codebooks and the original
//! assignments, with safe indexing and no re-layout (METHOD.md "Convolutional layer").

use crate::lut::PqSpec;
use crate::shape::ConvShape;

/// `y[t][q] = bias_t + Σ_(i,j) Σ_m T[q·stride − pad + (i, j)][m][b[t][i][j][m]]`, with
/// `T[p][m][k] = < x_p^(m), D^(m)_k >` computed per group and summed in f64.
///
/// - `centroids`: Layout (M, K, d), M = ceil((C_s/groups) / d), shared by every group; when
///   the last subspace is partial only its first (C_s/groups − (M−1)·d) dims count.
/// - `assignments`: Layout (C_t, kh, kw, M), every value < K.
/// - `bias`: Layout (C_t).
/// - `x`: Layout (C_s, H_s, W_s). Returns y, Layout (C_t, H_t, W_t).
///
/// Panics if a length disagrees with `shape` and `spec` or an index is ≥ K: it is a test
/// oracle, fed by code that already validated its inputs.
pub fn conv_reference(
    shape: ConvShape,
    spec: PqSpec,
    centroids: &[f32],
    assignments: &[u8],
    bias: &[f32],
    x: &[f32],
) -> Vec<f32> {
    assert!(shape.is_valid(), "invalid conv shape {shape:?}");
    let (d, k) = (spec.d, spec.k);
    let c_group = shape.c_in_group();
    let m_count = spec.subspaces(c_group);
    let kk = shape.kernel;
    assert_eq!(centroids.len(), m_count * k * d, "centroids (M, K, d)");
    assert_eq!(
        assignments.len(),
        shape.c_out * kk * kk * m_count,
        "assignments (C_t, kh, kw, M)"
    );
    assert_eq!(bias.len(), shape.c_out, "bias (C_t)");
    assert_eq!(x.len(), shape.input_len(), "x (C_s, H_s, W_s)");

    let (h_out, w_out) = (shape.h_out(), shape.w_out());
    let mut y = vec![0.0f32; shape.output_len()];
    for g in 0..shape.groups {
        let table = group_table(shape, spec, centroids, x, g);
        let at = |row: usize, col: usize, m: usize, code: usize| {
            table[((row * shape.w_in + col) * m_count + m) * k + code]
        };
        for t in g * shape.c_out_group()..(g + 1) * shape.c_out_group() {
            for r in 0..h_out {
                for c in 0..w_out {
                    let mut sum = bias[t] as f64;
                    for i in 0..kk {
                        for j in 0..kk {
                            // Input pixel q·stride − pad + (i, j); the padding adds nothing.
                            let row = (r * shape.stride + i).checked_sub(shape.pad);
                            let col = (c * shape.stride + j).checked_sub(shape.pad);
                            let (Some(row), Some(col)) = (row, col) else {
                                continue;
                            };
                            if row >= shape.h_in || col >= shape.w_in {
                                continue;
                            }
                            for m in 0..m_count {
                                let b = assignments[((t * kk + i) * kk + j) * m_count + m];
                                assert!((b as usize) < k, "assignment {b} ≥ K = {k}");
                                sum += at(row, col, m, b as usize);
                            }
                        }
                    }
                    y[(t * h_out + r) * w_out + c] = sum as f32;
                }
            }
        }
    }
    y
}

/// Group g's table, Layout (H_s, W_s, M, K): `T[p][m][k] = < x_p^(m), D^(m)_k >` in f64,
/// over the dims of subspace m that exist (the last one may be partial).
fn group_table(shape: ConvShape, spec: PqSpec, centroids: &[f32], x: &[f32], g: usize) -> Vec<f64> {
    let (d, k) = (spec.d, spec.k);
    let c_group = shape.c_in_group();
    let m_count = spec.subspaces(c_group);
    let plane = shape.h_in * shape.w_in;
    let mut table = vec![0.0f64; plane * m_count * k];
    for p in 0..plane {
        for m in 0..m_count {
            for code in 0..k {
                let mut dot = 0.0f64;
                for u in 0..d.min(c_group - m * d) {
                    let channel = g * c_group + m * d + u;
                    dot += x[channel * plane + p] as f64 * centroids[(m * k + code) * d + u] as f64;
                }
                table[(p * m_count + m) * k + code] = dot;
            }
        }
    }
    table
}
