//! Max pooling with Caffe's geometry: output size ceil((H + 2·pad − k) / stride) + 1, so the
//! last window may overhang the input; windows are clipped to the input (padding never wins).

use crate::isa::Isa;
use crate::simd::{self, Kernel, Simd, Vectorized};

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

/// Reused across calls: one row of column maxima (Layout (W_in)) for the row-at-a-time path,
/// and a plane's vertical then horizontal window maxima (Layout (H_in · W_in) each) for the
/// whole-plane path (see `pool_planes` for which geometry takes which).
#[derive(Clone, Debug, Default)]
pub struct PoolScratch {
    column_max: Vec<f32>,
    vertical: Vec<f32>,
    windows: Vec<f32>,
}

impl PoolScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch large enough for every one of `shapes`, so that [`max_pool`] never allocates.
    pub fn for_shapes<'a>(shapes: impl IntoIterator<Item = &'a PoolShape>) -> Self {
        let mut scratch = Self::new();
        for shape in shapes {
            scratch.fit(shape);
        }
        scratch
    }

    fn fit(&mut self, shape: &PoolShape) {
        let plane = shape.h_in * shape.w_in;
        for (buffer, len) in [
            (&mut self.column_max, shape.w_in),
            (&mut self.vertical, plane),
            (&mut self.windows, plane),
        ] {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
    }
}

/// The kernel name of [`max_pool`] at `isa`, for results' provenance: "pool-<isa>".
pub fn pool_kernel_name(isa: Isa) -> String {
    format!("pool-{isa}")
}

/// `output[c][oh][ow]` = max of `input[c]` over the clipped window of (oh, ow).
///
/// `input`: Layout (C, H_in, W_in); `output`: Layout (C, H_out, W_out), fully overwritten.
/// Separable: the maxima over each window's rows of every input column, then the maxima of
/// those over each window's columns. `isa` only selects the vector width the same safe loops
/// are compiled for, as for [`lrn`](super::lrn): a max is exact and every level folds each
/// window in the same order, so every level returns the same bits. Panics if this CPU lacks
/// `isa` or a length disagrees.
pub fn max_pool(
    shape: &PoolShape,
    isa: Isa,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut PoolScratch,
) {
    assert!(shape.is_valid(), "invalid pool shape {shape:?}");
    assert!(isa.is_available(), "pooling at {isa}, which this CPU lacks");
    assert_eq!(input.len(), shape.input_len(), "pool input length");
    assert_eq!(output.len(), shape.output_len(), "pool output length");
    scratch.fit(shape);
    simd::run(
        isa,
        Pool {
            shape,
            input,
            output,
            scratch,
        },
    );
}

/// The op as a unit of work for [`simd::run`]: the same safe loops at every level, compiled
/// for that level's vector width.
struct Pool<'a> {
    shape: &'a PoolShape,
    input: &'a [f32],
    output: &'a mut [f32],
    scratch: &'a mut PoolScratch,
}

impl Kernel for Pool<'_> {
    fn scalar(self) {
        pool_planes(self.shape, self.input, self.output, self.scratch)
    }
}

impl Vectorized for Pool<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, _: S) {
        pool_planes(self.shape, self.input, self.output, self.scratch)
    }
}

/// The whole op; inlined into each level's wrapper so that its loops are vectorised at that
/// level's width. Unclipped 2- and 3-wide windows at strides 1–3 (AlexNet's 3/2, VGG's 2/2)
/// take whole-plane passes ([`pool_plane`]); every other geometry (padding, an overhanging
/// last window as in CNN-S's 3/3 pools, other window sizes) goes a row at a time
/// ([`pool_plane_by_rows`]), whose per-row windows handle clipping.
#[inline(always)]
fn pool_planes(shape: &PoolShape, input: &[f32], output: &mut [f32], scratch: &mut PoolScratch) {
    let (plane_in, plane_out) = (shape.h_in * shape.w_in, shape.h_out() * shape.w_out());
    let planes = input
        .chunks_exact(plane_in)
        .zip(output.chunks_exact_mut(plane_out));
    let unclipped = shape.pad == 0
        && (shape.h_out() - 1) * shape.stride + shape.kernel <= shape.h_in
        && (shape.w_out() - 1) * shape.stride + shape.kernel <= shape.w_in;
    let (v, h) = (
        &mut scratch.vertical[..plane_in],
        &mut scratch.windows[..plane_in],
    );
    macro_rules! whole_planes {
        ($k:literal, $s:literal) => {
            planes.for_each(|(x, y)| pool_plane::<$k, $s>(shape, x, y, v, h))
        };
    }
    match (unclipped, shape.kernel, shape.stride) {
        (true, 2, 1) => whole_planes!(2, 1),
        (true, 2, 2) => whole_planes!(2, 2),
        (true, 3, 1) => whole_planes!(3, 1),
        (true, 3, 2) => whole_planes!(3, 2),
        (true, 3, 3) => whole_planes!(3, 3),
        _ => {
            let column_max = &mut scratch.column_max[..shape.w_in];
            planes.for_each(|(x, y)| pool_plane_by_rows(shape, x, y, column_max))
        }
    }
}

/// One plane whose windows all lie inside it (no padding, no overhang), in whole-plane
/// contiguous passes that the compiler vectorises without a tail per row:
/// `vertical[i]` folds the K rows below input position i (for every row up to the last
/// window's first, including the rows between window starts when S > 1), `windows[i]` folds
/// the K columns of `vertical` from i (across row ends too: those sums are never read), and
/// output (oh, ow) is `windows[S·oh·W + S·ow]`. Each window is folded rows first, then
/// columns, in order, exactly as [`pool_plane_by_rows`] does.
#[inline(always)]
fn pool_plane<const K: usize, const S: usize>(
    shape: &PoolShape,
    x: &[f32],
    y: &mut [f32],
    vertical: &mut [f32],
    windows: &mut [f32],
) {
    let (w, w_out) = (shape.w_in, shape.w_out());
    let len = ((shape.h_out() - 1) * S + 1) * w;
    fold_shifted::<K>(&mut vertical[..len], x, w);
    fold_shifted::<K>(&mut windows[..len + 1 - K], &vertical[..len], 1);
    for (oh, out_row) in y.chunks_exact_mut(w_out).enumerate() {
        let starts = windows[S * oh * w..].iter().step_by(S);
        for (o, &m) in out_row.iter_mut().zip(starts) {
            *o = m;
        }
    }
}

/// `out[i]` = the fold of `src[i + j·step]`, j = 0..K, from `f32::MIN`, in order of j.
/// Needs `src.len() ≥ out.len() + (K − 1)·step`.
#[inline(always)]
fn fold_shifted<const K: usize>(out: &mut [f32], src: &[f32], step: usize) {
    let n = out.len();
    let (a, b) = (&src[..n], &src[step..step + n]);
    match K {
        2 => {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = caffe_max(caffe_max(f32::MIN, a), b);
            }
        }
        3 => {
            let c = &src[2 * step..2 * step + n];
            for (((o, &a), &b), &c) in out.iter_mut().zip(a).zip(b).zip(c) {
                *o = caffe_max(caffe_max(caffe_max(f32::MIN, a), b), c);
            }
        }
        _ => unreachable!("fold_shifted is instantiated for K = 2 and 3"),
    }
}

/// Any geometry, one output row at a time: the maxima over the window's rows of every input
/// column, then each window's columns (3-wide windows inside the row unrolled, [`row_max`]).
#[inline(always)]
fn pool_plane_by_rows(shape: &PoolShape, x: &[f32], y: &mut [f32], column_max: &mut [f32]) {
    let (h, w, w_out) = (shape.h_in, shape.w_in, shape.w_out());
    let (k, s, p) = (shape.kernel, shape.stride, shape.pad);
    for (oh, out_row) in y.chunks_exact_mut(w_out).enumerate() {
        let (h0, h1) = window(oh, k, s, p, h);
        column_max.fill(f32::MIN);
        for row in x[h0 * w..h1 * w].chunks_exact(w) {
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

/// The horizontal pass for a compile-time kernel width `K` (3): windows inside the row
/// (`lo..hi`) take `K` unrolled maxima without bounds checks; clipped ones (edges, overhang)
/// take the general path.
#[inline(always)]
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
