//! Max pooling with Caffe's geometry: output size ceil((H + 2·pad − k) / stride) + 1, so the
//! last window may overhang the input; windows are clipped to the input (padding never wins).

/// One max-pooling's geometry over a (C, H, W) feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolShape {
    pub channels: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl PoolShape {
    pub fn h_out(&self) -> usize {
        extent(self.h_in, self.kernel, self.stride, self.pad)
    }
    pub fn w_out(&self) -> usize {
        extent(self.w_in, self.kernel, self.stride, self.pad)
    }
    pub fn input_len(&self) -> usize {
        self.channels * self.h_in * self.w_in
    }
    pub fn output_len(&self) -> usize {
        self.channels * self.h_out() * self.w_out()
    }
    /// Caffe's conditions: positive sizes, pad < kernel, the kernel fits the padded input.
    pub fn is_valid(&self) -> bool {
        self.channels > 0
            && self.h_in > 0
            && self.w_in > 0
            && self.kernel > 0
            && self.stride > 0
            && self.pad < self.kernel
            && self.h_in + 2 * self.pad >= self.kernel
            && self.w_in + 2 * self.pad >= self.kernel
    }
}

/// ceil((size + 2·pad − k) / stride) + 1, then Caffe's clip: the last window must start
/// inside the input plus the leading pad.
fn extent(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    let mut out = (size + 2 * pad - kernel).div_ceil(stride) + 1;
    if pad > 0 && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    out
}

/// The input range a window starting at `o·stride − pad` covers, clipped to 0..size.
/// Empty when the window lies beyond the input, which Caffe's geometry allows when
/// kernel < stride and pad = 0; the output is then −FLT_MAX, as in Caffe.
fn window(o: usize, kernel: usize, stride: usize, pad: usize, size: usize) -> (usize, usize) {
    let start = o * stride;
    let end = (start + kernel - pad).min(size);
    (start.saturating_sub(pad).min(end), end)
}

/// One row of column maxima, reused across calls: Layout (W_in).
#[derive(Clone, Debug, Default)]
pub struct PoolScratch {
    column_max: Vec<f32>,
}

impl PoolScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch large enough for inputs `w_in` wide, so that [`max_pool`] never allocates.
    pub fn for_width(w_in: usize) -> Self {
        PoolScratch {
            column_max: vec![0.0; w_in],
        }
    }
}

/// `output[c][oh][ow]` = max of `input[c]` over the clipped window of (oh, ow).
///
/// `input`: Layout (C, H_in, W_in); `output`: Layout (C, H_out, W_out), fully overwritten.
/// Separable: per output row, the maxima over the window's rows of every input column
/// (contiguous, vectorised), then the maxima of those over each window's columns.
pub fn max_pool(shape: &PoolShape, input: &[f32], output: &mut [f32], scratch: &mut PoolScratch) {
    assert!(shape.is_valid(), "invalid pool shape {shape:?}");
    assert_eq!(input.len(), shape.input_len(), "pool input length");
    assert_eq!(output.len(), shape.output_len(), "pool output length");
    let (h, w, w_out) = (shape.h_in, shape.w_in, shape.w_out());
    let (k, s, p) = (shape.kernel, shape.stride, shape.pad);
    if scratch.column_max.len() < w {
        scratch.column_max.resize(w, 0.0);
    }
    let column_max = &mut scratch.column_max[..w];
    let planes = input.chunks_exact(h * w);
    for (plane, out) in planes.zip(output.chunks_exact_mut(shape.h_out() * w_out)) {
        for (oh, out_row) in out.chunks_exact_mut(w_out).enumerate() {
            let (h0, h1) = window(oh, k, s, p, h);
            column_max.fill(f32::MIN);
            for row in plane[h0 * w..h1 * w].chunks_exact(w) {
                for (m, &v) in column_max.iter_mut().zip(row) {
                    *m = caffe_max(*m, v);
                }
            }
            if k == 3 {
                row_max::<3>(out_row, column_max, s, p);
            } else {
                for (ow, o) in out_row.iter_mut().enumerate() {
                    let (w0, w1) = window(ow, k, s, p, w);
                    *o = fold_max(&column_max[w0..w1]);
                }
            }
        }
    }
}

/// The horizontal pass for a compile-time kernel width `K` (AlexNet's 3): windows inside the
/// row (`lo..hi`) take `K` unrolled maxima without bounds checks; clipped ones (edges,
/// overhang) take the general path.
fn row_max<const K: usize>(out_row: &mut [f32], column_max: &[f32], stride: usize, pad: usize) {
    let (w, w_out) = (column_max.len(), out_row.len());
    // Inside: ow·stride − pad ≥ 0 and ow·stride − pad + K ≤ w.
    let lo = pad.div_ceil(stride).min(w_out);
    let hi = match (w + pad).checked_sub(K) {
        Some(room) => (room / stride + 1).clamp(lo, w_out),
        None => lo,
    };
    for ow in (0..lo).chain(hi..w_out) {
        let (w0, w1) = window(ow, K, stride, pad, w);
        out_row[ow] = fold_max(&column_max[w0..w1]);
    }
    if lo < hi {
        let windows = column_max[lo * stride - pad..].windows(K).step_by(stride);
        for (o, win) in out_row[lo..hi].iter_mut().zip(windows) {
            *o = fold_max(win);
        }
    }
}

#[inline(always)]
fn fold_max(values: &[f32]) -> f32 {
    values.iter().fold(f32::MIN, |m, &v| caffe_max(m, v))
}

/// Caffe's comparison `if (v > m) m = v`: a NaN never replaces the running max.
#[inline(always)]
fn caffe_max(m: f32, v: f32) -> f32 {
    if v > m {
        v
    } else {
        m
    }
}
