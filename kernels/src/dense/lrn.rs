//! Cross-channel local response normalisation (Caffe's `ACROSS_CHANNELS`):
//! `y[c][p] = x[c][p] / (k + alpha/size · Σ_{c' ∈ window(c)} x[c'][p]²)^beta`,
//! window(c) = c − (size−1)/2 ..= c + (size−1)/2, channels beyond the edges count as 0.
//!
//! Vectorised by construction: a running sum of squares slides over the channels (one add and
//! one subtract per pixel per channel instead of `size` squares), and every loop runs over
//! the pixels of one channel, contiguous, so the compiler vectorises it; a block of pixels at
//! a time, so that the window's rows stay in L1. beta = 0.75 (every AlexNet LRN) avoids
//! `powf`: b^−0.75 = 1 / (√b · √√b) at the scalar level (correctly rounded), r²·(1/√r) with
//! r = 1/√b from the level's reciprocal-square-root estimate at vector levels (within
//! about 2^−19 of the scalar result, 1.7× faster on AlexNet's norm1 at AVX2).

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

    /// Odd `size`, `alpha` ≥ 0 and `k` > 0 (so the base is positive and the power defined)
    /// and normal (so is the base: the vector levels' reciprocal square roots need it),
    /// everything finite.
    pub fn is_valid(&self) -> bool {
        self.size % 2 == 1
            && self.alpha >= 0.0
            && self.k >= f32::MIN_POSITIVE
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
/// `isa` selects the vector width the same safe loops are compiled for (`Scalar` is the
/// portable x86-64 baseline build), and with beta = 0.75 how b^−0.75 is computed: the sums
/// are bit-identical at every level (no fused multiply-add is introduced), and so are the
/// results for other betas (`powf`); with beta = 0.75 a vector level's results are within
/// about 2^−19 of the scalar level's (`Estimated`), but NaN where a sum of squares
/// overflows f32 (inputs beyond about 10^19), which the scalar level divides down to 0.
/// Panics if this CPU lacks `isa` (callers check with `Isa::require` first) or a length
/// disagrees.
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
        let op = (self.params, self.pixels, self.input);
        lrn_planes(op, self.output, self.sum, Exact)
    }
}

impl Vectorized for Lrn<'_> {
    type Output = ();
    #[inline(always)]
    fn simd<S: Simd>(self, s: S) {
        let op = (self.params, self.pixels, self.input);
        lrn_planes(op, self.output, self.sum, Estimated(s))
    }
}

/// The whole op over (C, P) planes; inlined into each ISA's wrapper so that every loop below
/// is vectorised at that ISA's width.
#[inline(always)]
fn lrn_planes(
    (params, pixels, input): (&LrnParams, usize, &[f32]),
    output: &mut [f32],
    sum: &mut [f32],
    level: impl Normalise,
) {
    for start in (0..pixels).step_by(BLOCK_PIXELS) {
        let cols = start..(start + BLOCK_PIXELS).min(pixels);
        lrn_block((params, pixels, input), cols, output, sum, level);
    }
}

/// Pixels per block: the window's channels, the running sum and the outputs of one block
/// (≈ 8 rows of 2 KB) stay in L1 while the block walks the channels, so that each input and
/// output value crosses L2 once (whole planes made the op bound by L2 traffic: 4 loads
/// and 2 stores per value, norm1's 1.2 MB planes read three times).
const BLOCK_PIXELS: usize = 512;

/// [`lrn_planes`] on the pixels `cols` of every plane.
#[inline(always)]
fn lrn_block(
    (params, pixels, input): (&LrnParams, usize, &[f32]),
    cols: std::ops::Range<usize>,
    output: &mut [f32],
    sum: &mut [f32],
    level: impl Normalise,
) {
    let channels = input.len() / pixels;
    let plane = |c: usize| &input[c * pixels..][cols.clone()];
    let half = params.half();
    let sum = &mut sum[..cols.len()];

    // Before channel 0 the window holds channels 0 .. half − 1 (the rest is beyond the edge).
    sum.fill(0.0);
    for c in 0..half.min(channels) {
        add_squares(sum, plane(c));
    }
    let scale = params.alpha / params.size as f32;
    for (c, out) in output.chunks_exact_mut(pixels).enumerate() {
        let out = &mut out[cols.clone()];
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
            level.normalise_075(out, plane(c), sum, params.k, scale);
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

/// How a level computes `y = x / (k + scale·s)^0.75` (a trait, not a closure: a closure's
/// body is compiled without the level's target features).
trait Normalise: Copy {
    fn normalise_075(self, y: &mut [f32], x: &[f32], sum: &[f32], k: f32, scale: f32);
}

/// The scalar level: correctly rounded square roots and division ([`normalise_075`]).
#[derive(Clone, Copy)]
struct Exact;

impl Normalise for Exact {
    fn normalise_075(self, y: &mut [f32], x: &[f32], sum: &[f32], k: f32, scale: f32) {
        normalise_075(y, x, sum, k, scale)
    }
}

/// A vector level: b^−0.75 = r²·(1/√r) with r = 1/√b, both from the level's reciprocal
/// square-root estimate and Newton steps (`simd::rsqrt`): about 13 multiplies, FMAs and
/// estimates per vector where two square roots and a division kept the divider busy for
/// 17 cycles per AVX2 vector (6 + 6 + 5 on recent Intel cores). Each result is within about
/// 2^−19 of the correctly rounded one (two refined reciprocal roots, 2^−21 each, the second
/// of an input one ulp-ish off, and 4 roundings); the tail of fewer than LANES pixels of a
/// plane takes [`normalise_075`].
#[derive(Clone, Copy)]
struct Estimated<S>(S);

impl<S: Simd> Normalise for Estimated<S> {
    #[inline(always)]
    fn normalise_075(self, y: &mut [f32], x: &[f32], sum: &[f32], k: f32, scale: f32) {
        let s = self.0;
        let n = y.len().min(x.len()).min(sum.len());
        let body = n - n % S::LANES;
        let (kv, scale_v) = (s.splat(k), s.splat(scale));
        for i in (0..body).step_by(S::LANES) {
            // SAFETY: i + LANES ≤ body ≤ the length of y, x and sum.
            unsafe {
                let b = s.add(kv, s.mul(scale_v, s.load(sum.as_ptr().add(i))));
                let r = simd::rsqrt(s, b);
                let b_quarter = simd::rsqrt(s, r);
                let r2_x = s.mul(s.mul(r, r), s.load(x.as_ptr().add(i)));
                s.store(y.as_mut_ptr().add(i), s.mul(r2_x, b_quarter));
            }
        }
        normalise_075(&mut y[body..n], &x[body..n], &sum[body..n], k, scale);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_need_a_normal_positive_k() {
        let with_k = |k| LrnParams {
            k,
            ..LrnParams::ALEXNET
        };
        assert!(with_k(1.0).is_valid() && with_k(f32::MIN_POSITIVE).is_valid());
        for k in [0.0, -1.0, f32::MIN_POSITIVE / 2.0, f32::INFINITY, f32::NAN] {
            assert!(!with_k(k).is_valid(), "k = {k:e}");
        }
    }
}
