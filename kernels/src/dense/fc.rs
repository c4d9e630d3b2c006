//! Fully connected layer at batch 1: one `sgemv` (memory-bound: every weight is read once).

use cblas::{Layout, Transpose};

use super::blas_int;
use crate::shape::FcShape;

/// `output = weights · input + bias`.
///
/// - `weights`: Layout (C_t, C_s) (Caffe's: one row per output).
/// - `bias`, `output`: Layout (C_t); `input`: Layout (C_s) (a feature map flattened in
///   C, H, W order). `output` is fully overwritten.
///
/// Panics if a slice length disagrees with `shape` (a programming error, checked before BLAS
/// reads memory).
pub fn fc(shape: &FcShape, weights: &[f32], bias: &[f32], input: &[f32], output: &mut [f32]) {
    assert!(
        shape.c_in > 0 && shape.c_out > 0,
        "empty fc shape {shape:?}"
    );
    assert_eq!(weights.len(), shape.c_out * shape.c_in, "fc weights length");
    assert_eq!(bias.len(), shape.c_out, "fc bias length");
    assert_eq!(input.len(), shape.c_in, "fc input length");
    assert_eq!(output.len(), shape.c_out, "fc output length");
    output.copy_from_slice(bias);
    // SAFETY: the asserts make weights a row-major C_t × C_s matrix, input C_s long and
    // output C_t long, as the call describes.
    unsafe {
        cblas::sgemv(
            Layout::RowMajor,
            Transpose::None,
            blas_int(shape.c_out),
            blas_int(shape.c_in),
            1.0,
            weights,
            blas_int(shape.c_in),
            input,
            1,
            1.0,
            output,
            1,
        );
    }
}
