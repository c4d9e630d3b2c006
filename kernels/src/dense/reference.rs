//! Plain twins of the dense ops: direct loops straight from the formulas, safe indexing, no
//! BLAS. They are the tests' oracles, so they favour obviousness over speed, and sums
//! accumulate in f64 (more accurate than any f32 order the fast ops may use).

use super::lrn::LrnParams;
use super::pool::PoolShape;
use crate::shape::{ConvShape, FcShape};

/// max |got − want| / max |want|: the relative error measure of every dense test.
/// 0 when both are all zero; infinite when `want` is all zero and `got` is not, or on NaN.
pub fn max_relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "compared slices differ in length");
    let mut diff = 0.0f32;
    for (&a, &b) in got.iter().zip(want) {
        let d = (a - b).abs();
        if d.is_nan() {
            return f32::INFINITY;
        }
        diff = diff.max(d);
    }
    let scale = want.iter().fold(0.0f32, |m, &b| m.max(b.abs()));
    if diff == 0.0 {
        0.0
    } else if scale == 0.0 {
        f32::INFINITY
    } else {
        diff / scale
    }
}

/// Direct convolution:
/// `y[t][oh][ow] = bias[t] + Σ_{c, i, j} W[t][c][i][j] · x[g·C_s/groups + c][oh·s − p + i][ow·s − p + j]`
/// with g = t / (C_t/groups), c over the group's input channels, taps outside the input = 0.
/// Layouts as in [`super::conv::conv`].
pub fn conv_reference(shape: &ConvShape, weights: &[f32], bias: &[f32], input: &[f32]) -> Vec<f32> {
    assert!(shape.is_valid());
    let (cin_g, cout_g, k) = (shape.c_in_group(), shape.c_out_group(), shape.kernel);
    let (h, w, h_out, w_out) = (shape.h_in, shape.w_in, shape.h_out(), shape.w_out());
    let mut output = vec![0.0f32; shape.output_len()];
    for t in 0..shape.c_out {
        let g = t / cout_g;
        for oh in 0..h_out {
            for ow in 0..w_out {
                let mut acc = bias[t] as f64;
                for c in 0..cin_g {
                    for i in 0..k {
                        for j in 0..k {
                            let ih = (oh * shape.stride + i) as isize - shape.pad as isize;
                            let iw = (ow * shape.stride + j) as isize - shape.pad as isize;
                            if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                continue;
                            }
                            let x = input[((g * cin_g + c) * h + ih as usize) * w + iw as usize];
                            let wt = weights[((t * cin_g + c) * k + i) * k + j];
                            acc += wt as f64 * x as f64;
                        }
                    }
                }
                output[(t * h_out + oh) * w_out + ow] = acc as f32;
            }
        }
    }
    output
}

/// `y[t] = bias[t] + Σ_s W[t][s] · x[s]`, W Layout (C_t, C_s).
pub fn fc_reference(shape: &FcShape, weights: &[f32], bias: &[f32], input: &[f32]) -> Vec<f32> {
    (0..shape.c_out)
        .map(|t| {
            let mut acc = bias[t] as f64;
            for s in 0..shape.c_in {
                acc += weights[t * shape.c_in + s] as f64 * input[s] as f64;
            }
            acc as f32
        })
        .collect()
}

/// `y = max(x, 0)`.
pub fn relu_reference(input: &[f32]) -> Vec<f32> {
    input
        .iter()
        .map(|&x| if x < 0.0 { 0.0 } else { x })
        .collect()
}

/// `y[c][p] = x[c][p] / (k + alpha/size · Σ_{c' = c − half}^{c + half} x[c'][p]²)^beta`,
/// channels outside 0..C skipped. Layout (C, P), P = `pixels`.
pub fn lrn_reference(
    params: &LrnParams,
    channels: usize,
    pixels: usize,
    input: &[f32],
) -> Vec<f32> {
    let half = params.half() as isize;
    let mut output = vec![0.0f32; channels * pixels];
    for c in 0..channels {
        for p in 0..pixels {
            let mut sum = 0.0f64;
            for n in c as isize - half..=c as isize + half {
                if n >= 0 && n < channels as isize {
                    let x = input[n as usize * pixels + p] as f64;
                    sum += x * x;
                }
            }
            let base = params.k as f64 + params.alpha as f64 / params.size as f64 * sum;
            output[c * pixels + p] =
                (input[c * pixels + p] as f64 / base.powf(params.beta as f64)) as f32;
        }
    }
    output
}

/// Caffe's max pooling loop, literally: `hstart = oh·s − pad`, `hend = min(hstart + k, H)`,
/// `hstart = max(hstart, 0)` (likewise for w), max over the window, starting from −FLT_MAX.
pub fn max_pool_reference(shape: &PoolShape, input: &[f32]) -> Vec<f32> {
    let (h, w, h_out, w_out) = (
        shape.h_in as isize,
        shape.w_in as isize,
        shape.h_out(),
        shape.w_out(),
    );
    let (k, s, p) = (
        shape.kernel as isize,
        shape.stride as isize,
        shape.pad as isize,
    );
    let mut output = vec![0.0f32; shape.output_len()];
    for c in 0..shape.channels {
        for oh in 0..h_out {
            for ow in 0..w_out {
                let hstart = oh as isize * s - p;
                let wstart = ow as isize * s - p;
                let hend = (hstart + k).min(h);
                let wend = (wstart + k).min(w);
                let mut m = f32::MIN;
                for ih in hstart.max(0)..hend {
                    for iw in wstart.max(0)..wend {
                        let v = input[((c as isize * h + ih) * w + iw) as usize];
                        if v > m {
                            m = v;
                        }
                    }
                }
                output[(c * h_out + oh) * w_out + ow] = m;
            }
        }
    }
    output
}

/// `y[c][p] = exp(x[c][p]) / Σ_c' exp(x[c'][p])`, computed in f64 with the max subtracted.
/// Layout (C, P), P = len / `channels`.
pub fn softmax_reference(input: &[f32], channels: usize) -> Vec<f32> {
    let positions = input.len() / channels;
    let mut output = vec![0.0f32; input.len()];
    for p in 0..positions {
        let xs: Vec<f64> = (0..channels)
            .map(|c| input[c * positions + p] as f64)
            .collect();
        let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = xs.iter().map(|x| (x - max).exp()).sum();
        for (c, x) in xs.iter().enumerate() {
            output[c * positions + p] = ((x - max).exp() / total) as f32;
        }
    }
    output
}
