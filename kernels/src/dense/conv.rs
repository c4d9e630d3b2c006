//! Convolution as im2col + one `sgemm` per group: Caffe's CPU algorithm.
//!
//! Per group g, with K = C_s/groups · kh · kw and P = H_t · W_t:
//! `Y_g (C_t/groups × P) = W_g (C_t/groups × K) · col_g (K × P) + bias`,
//! where `col_g` holds, for every kernel tap (c, i, j) (a row) and output position q (a
//! column), the input value that tap reads at q, or 0 in the padding.

use cblas::{Layout, Transpose};

use super::blas_int;
use crate::shape::ConvShape;

/// The im2col matrix of one group, reused across calls and layers.
///
/// Layout (C_s/groups · kh · kw, H_t · W_t): row (c, i, j), column (oh, ow).
#[derive(Clone, Debug, Default)]
pub struct ConvScratch {
    col: Vec<f32>,
}

impl ConvScratch {
    /// An empty scratch; [`conv`] grows it on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch already large enough for `shape`, so that [`conv`] never allocates.
    pub fn for_shape(shape: &ConvShape) -> Self {
        let mut s = Self::new();
        s.reserve(shape);
        s
    }

    /// Grows the buffer to hold `shape`'s im2col matrix (no-op when it already does).
    pub fn reserve(&mut self, shape: &ConvShape) {
        let len = col_len(shape);
        if self.col.len() < len {
            self.col.resize(len, 0.0);
        }
    }
}

/// im2col length of one group; 0 for a 1×1, stride-1, unpadded conv, which reads its input
/// directly.
pub fn col_len(shape: &ConvShape) -> usize {
    if is_pointwise(shape) {
        0
    } else {
        shape.c_in_group() * shape.kernel * shape.kernel * shape.h_out() * shape.w_out()
    }
}

/// A 1×1, stride-1, unpadded conv: the input (C_s/groups × H·W) already is the im2col matrix.
fn is_pointwise(shape: &ConvShape) -> bool {
    shape.kernel == 1 && shape.stride == 1 && shape.pad == 0
}

/// `output = conv(input, weights) + bias`, Caffe semantics (groups, stride, zero padding).
///
/// - `weights`: Layout (C_t, C_s/groups, kh, kw) (Caffe's).
/// - `bias`: Layout (C_t).
/// - `input`: Layout (C_s, H_s, W_s); `output`: Layout (C_t, H_t, W_t), fully overwritten.
///
/// Panics if `shape` is invalid or a slice length disagrees with it: these are programming
/// errors, checked before any BLAS call reads memory.
pub fn conv(
    shape: &ConvShape,
    weights: &[f32],
    bias: &[f32],
    input: &[f32],
    output: &mut [f32],
    scratch: &mut ConvScratch,
) {
    assert!(shape.is_valid(), "invalid conv shape {shape:?}");
    let (cin_g, cout_g) = (shape.c_in_group(), shape.c_out_group());
    let taps = cin_g * shape.kernel * shape.kernel;
    let plane_in = shape.h_in * shape.w_in;
    let p = shape.h_out() * shape.w_out();
    assert_eq!(weights.len(), shape.c_out * taps, "conv weights length");
    assert_eq!(bias.len(), shape.c_out, "conv bias length");
    assert_eq!(input.len(), shape.input_len(), "conv input length");
    assert_eq!(output.len(), shape.output_len(), "conv output length");
    scratch.reserve(shape);

    for g in 0..shape.groups {
        let in_g = &input[g * cin_g * plane_in..][..cin_g * plane_in];
        let w_g = &weights[g * cout_g * taps..][..cout_g * taps];
        let bias_g = &bias[g * cout_g..][..cout_g];
        let out_g = &mut output[g * cout_g * p..][..cout_g * p];
        let col: &[f32] = if is_pointwise(shape) {
            in_g
        } else {
            let col = &mut scratch.col[..taps * p];
            im2col(shape, in_g, col);
            col
        };
        for (row, &b) in out_g.chunks_exact_mut(p).zip(bias_g) {
            row.fill(b);
        }
        gemm_accumulate(cout_g, p, taps, w_g, col, out_g);
    }
}

/// `c += a · b` for row-major `a` (m × k), `b` (k × n), `c` (m × n), by OpenBLAS.
fn gemm_accumulate(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "gemm operand sizes"
    );
    // SAFETY: the assert makes a, b and c exactly the row-major matrices the call describes,
    // so OpenBLAS reads and writes only inside them.
    unsafe {
        cblas::sgemm(
            Layout::RowMajor,
            Transpose::None,
            Transpose::None,
            blas_int(m),
            blas_int(n),
            blas_int(k),
            1.0,
            a,
            blas_int(k),
            b,
            blas_int(n),
            1.0,
            c,
            blas_int(n),
        );
    }
}

/// Fills `col` (Layout (C_s/groups · kh · kw, H_t · W_t)) from one group's input
/// (Layout (C_s/groups, H_s, W_s)). Padding positions become 0.
///
/// Kernel columns j and j − stride read the same input one output column apart:
/// `row_j[oh][ow] = row_{j−stride}[oh][ow + 1]`. With stride > 1, where every row is a
/// strided gather (conv1: 2/3 of its im2col time), only the first `stride` rows of each
/// (c, i) are gathered; every other row is one contiguous copy of an earlier row shifted by
/// one element, plus its last output column (which has no right neighbour) read directly.
/// With stride 1 every row is already a run of contiguous copies from the small input plane,
/// which measured slightly faster than the shifted copy.
fn im2col(shape: &ConvShape, input: &[f32], col: &mut [f32]) {
    let (h, w, k) = (shape.h_in, shape.w_in, shape.kernel);
    let p = shape.h_out() * shape.w_out();
    let mut blocks = col.chunks_exact_mut(k * p);
    for plane in input.chunks_exact(h * w) {
        for i in 0..k {
            // The k rows (c, i, 0..k).
            let block = blocks.next().expect("col has k rows per (c, i)");
            for j in 0..k {
                let (done, rest) = block.split_at_mut(j * p);
                let row = &mut rest[..p];
                let earlier = j.checked_sub(shape.stride).filter(|_| shape.stride > 1);
                match earlier {
                    Some(earlier) => shift_row(plane, &done[earlier * p..][..p], row, i, j, shape),
                    None => gather_row(plane, row, i, j, shape),
                }
            }
        }
    }
}

/// Row (c, i, j) read from the input plane, output row by output row.
fn gather_row(plane: &[f32], row: &mut [f32], i: usize, j: usize, shape: &ConvShape) {
    let (h, w, w_out) = (shape.h_in, shape.w_in, shape.w_out());
    let (lo, hi) = valid_outputs(j, shape.pad, shape.stride, w, w_out);
    for (oh, dst) in row.chunks_exact_mut(w_out).enumerate() {
        match (oh * shape.stride + i).checked_sub(shape.pad) {
            Some(ih) if ih < h => copy_row(&plane[ih * w..][..w], dst, lo, hi, j, shape),
            _ => dst.fill(0.0),
        }
    }
}

/// Row (c, i, j) as row (c, i, j − stride) shifted left by one, then the last output column
/// of every output row read from the input (0 in the padding).
fn shift_row(
    plane: &[f32],
    earlier: &[f32],
    row: &mut [f32],
    i: usize,
    j: usize,
    shape: &ConvShape,
) {
    let (h, w, w_out) = (shape.h_in, shape.w_in, shape.w_out());
    let n = row.len();
    row[..n - 1].copy_from_slice(&earlier[1..]);
    let iw = ((w_out - 1) * shape.stride + j)
        .checked_sub(shape.pad)
        .filter(|&iw| iw < w);
    for (oh, dst) in row.chunks_exact_mut(w_out).enumerate() {
        let ih = (oh * shape.stride + i)
            .checked_sub(shape.pad)
            .filter(|&ih| ih < h);
        dst[w_out - 1] = match (ih, iw) {
            (Some(ih), Some(iw)) => plane[ih * w + iw],
            _ => 0.0,
        };
    }
}

/// One im2col row segment: `dst[ow] = src[ow·stride + j − pad]` for ow in lo..hi, 0 outside.
fn copy_row(src: &[f32], dst: &mut [f32], lo: usize, hi: usize, j: usize, shape: &ConvShape) {
    dst[..lo].fill(0.0);
    dst[hi..].fill(0.0);
    if lo == hi {
        return;
    }
    let first = lo * shape.stride + j - shape.pad;
    if shape.stride == 1 {
        dst[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
    } else {
        let taps = src[first..].iter().step_by(shape.stride);
        for (d, &s) in dst[lo..hi].iter_mut().zip(taps) {
            *d = s;
        }
    }
}

/// The output columns `lo..hi` whose tap at kernel column `j` reads inside the input row:
/// 0 ≤ ow·stride + j − pad < w.
fn valid_outputs(j: usize, pad: usize, stride: usize, w: usize, w_out: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(j).div_ceil(stride).min(w_out);
    let hi = (w + pad)
        .saturating_sub(j)
        .div_ceil(stride)
        .clamp(lo, w_out);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_outputs_cover_exactly_the_inside_taps() {
        for (pad, stride, w, k) in [(0, 1, 5, 3), (2, 1, 3, 5), (1, 4, 9, 3), (2, 3, 1, 5)] {
            let w_out = (w + 2 * pad - k) / stride + 1;
            for j in 0..k {
                let (lo, hi) = valid_outputs(j, pad, stride, w, w_out);
                for ow in 0..w_out {
                    let iw = (ow * stride + j) as isize - pad as isize;
                    let inside = iw >= 0 && iw < w as isize;
                    assert_eq!(
                        inside,
                        (lo..hi).contains(&ow),
                        "{pad} {stride} {w} {k} {j} {ow}"
                    );
                }
            }
        }
    }
}
