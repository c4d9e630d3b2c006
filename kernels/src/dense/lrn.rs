//! Cross-channel local response normalisation (Caffe's `ACROSS_CHANNELS`):
//! `y[c][p] = x[c][p] / (k + alpha/size · Σ_{c' ∈ window(c)} x[c'][p]²)^beta`,
//! window(c) = c − (size−1)/2 ..= c + (size−1)/2, channels beyond the edges count as 0.
//!
//! Vectorised by construction: a running sum of squares slides over the channels (one add and
//! one subtract per pixel per channel instead of `size` squares), and every loop runs over
//! the pixels of one channel, contiguous, so the compiler vectorises it. beta = 0.75 (every
//! AlexNet LRN) avoids `powf`: b^−0.75 = 1 / (√b · √√b).

use crate::isa::Isa;
use crate::simd::{self, Kernel, Simd, Vectorized};

/// Caffe's LRN parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    /// Channels in the window (odd, as Caffe requires).
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl LrnParams {
    /// AlexNet's norm1/norm2: size 5, alpha 1e-4, beta 0.75, k 1.
    pub const ALEXNET: LrnParams = LrnParams {
        size: 5,
        alpha: 1e-4,
        beta: 0.75,
        k: 1.0,
    };

    /// Odd `size`, `alpha` ≥ 0 and `k` > 0 (so the base is positive and the power defined),
    /// everything finite.
    pub fn is_valid(&self) -> bool {
        self.size % 2 == 1
            && self.alpha >= 0.0
            && self.k > 0.0
            && self.alpha.is_finite()
            && self.beta.is_finite()
            && self.k.is_finite()
    }

    /// Channels before (and after) the centre of the window.
    pub fn half(&self) -> usize {
        (self.size - 1) / 2
    }
}

/// The running sum of squares, one entry per pixel of a channel: Layout (H · W).
#[derive(Clone, Debug, Default)]
pub struct LrnScratch {
    sum: Vec<f32>,
}

impl LrnScratch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A scratch large enough for `pixels` (H · W), so that [`lrn`] never allocates.
    pub fn for_pixels(pixels: usize) -> Self {
        LrnScratch {
            sum: vec![0.0; pixels],
        }
    }
}

/// The kernel name of [`lrn`] at `isa`, for results' provenance: "lrn-<isa>".
pub fn lrn_kernel_name(isa: Isa) -> String {
    format!("lrn-{isa}")
}

/// Applies LRN to `input` (Layout (C, H · W), C = `channels`, H · W = `pixels`) into
/// `output` (same layout, fully overwritten).
///
/// `isa` only selects the vector width the same safe loops are compiled for (`Scalar` is the
/// portable x86-64 baseline build); the results are bit-identical at every level (no fused
/// multiply-add is introduced, √ and ÷ are correctly rounded). Panics if this CPU lacks
/// `isa` (callers check with `Isa::require` first) or a length disagrees.
pub fn lrn(
    params: &LrnParams,
    isa: Isa,
    channels: usize,
    pixels: usize,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut LrnScratch,
) {
    assert!(params.is_valid(), "invalid LRN parameters {params:?}");
    assert!(isa.is_available(), "LRN at {isa}, which this CPU lacks");
    assert_eq!(input.len(), channels * pixels, "LRN input length");
    assert_eq!(output.len(), channels * pixels, "LRN output length");
    if pixels == 0 {
        return;
    }
    if scratch.sum.len() < pixels {
        scratch.sum.resize(pixels, 0.0);
    }
    let sum = &mut scratch.sum[..pixels];
    simd::run(
        isa,
        Lrn {
            params,
            pixels,
            input,
            output,
            sum,
        },
    );
}

/// The op as a unit of work for [`simd::run`]: the same safe loops at every level, compiled
/// for that level's vector width.
struct Lrn<'a> {
    params: &'a LrnParams,
    pixels: usize,
    input: &'a [f32],
    output: &'a mut [f32],
    sum: &'a mut [f32],
}

impl Kernel for Lrn<'_> {
    fn scalar(self) {
        lrn_planes(self.params, self.pixels, self.input, self.output, self.sum)
    }
}

impl Vectorized for Lrn<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, _: S) {
        lrn_planes(self.params, self.pixels, self.input, self.output, self.sum)
    }
}

/// The whole op over (C, P) planes; inlined into each ISA's wrapper so that every loop below
/// is vectorised at that ISA's width.
#[inline(always)]
fn lrn_planes(
    params: &LrnParams,
    pixels: usize,
    input: &[f32],
    output: &mut [f32],
    sum: &mut [f32],
) {
    let channels = input.len() / pixels;
    let plane = |c: usize| &input[c * pixels..][..pixels];
    let half = params.half();

    // Before channel 0 the window holds channels 0 .. half − 1 (the rest is beyond the edge).
    sum.fill(0.0);
    for c in 0..half.min(channels) {
        add_squares(sum, plane(c));
    }
    let scale = params.alpha / params.size as f32;
    for (c, out) in output.chunks_exact_mut(pixels).enumerate() {
        // Slide the window from c − 1 to c: channel c + half enters, c − 1 − half leaves.
        let enters = (c + half < channels).then(|| plane(c + half));
        let leaves = c.checked_sub(half + 1).map(plane);
        match (enters, leaves) {
            (Some(a), Some(r)) => slide_squares(sum, a, r),
            (Some(a), None) => add_squares(sum, a),
            (None, Some(r)) => sub_squares(sum, r),
            (None, None) => {}
        }
        if params.beta == 0.75 {
            normalise_075(out, plane(c), sum, params.k, scale);
        } else {
            normalise_powf(out, plane(c), sum, params.k, scale, params.beta);
        }
    }
}

#[inline(always)]
fn add_squares(sum: &mut [f32], x: &[f32]) {
    for (s, &v) in sum.iter_mut().zip(x) {
        *s += v * v;
    }
}

#[inline(always)]
fn sub_squares(sum: &mut [f32], x: &[f32]) {
    for (s, &v) in sum.iter_mut().zip(x) {
        *s -= v * v;
    }
}

#[inline(always)]
fn slide_squares(sum: &mut [f32], enters: &[f32], leaves: &[f32]) {
    for ((s, &a), &r) in sum.iter_mut().zip(enters).zip(leaves) {
        *s += a * a - r * r;
    }
}

/// `y = x / (k + scale·s)^0.75` as `x / (√b · √√b)`: two square roots and one division,
/// all vectorisable, instead of a `powf` call per pixel.
#[inline(always)]
fn normalise_075(y: &mut [f32], x: &[f32], sum: &[f32], k: f32, scale: f32) {
    for ((y, &x), &s) in y.iter_mut().zip(x).zip(sum) {
        let b = k + scale * s;
        let r = b.sqrt();
        *y = x / (r * r.sqrt());
    }
}

#[inline(always)]
fn normalise_powf(y: &mut [f32], x: &[f32], sum: &[f32], k: f32, scale: f32, beta: f32) {
    for ((y, &x), &s) in y.iter_mut().zip(x).zip(sum) {
        *y = x * (k + scale * s).powf(-beta);
    }
}
