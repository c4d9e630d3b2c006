//! The int8 tables' quantization maths, shared plain Rust (every ISA computes the same
//! scale, offsets and box sums; see the `int8` module doc): codebook centres and radii, the
//! per-image scale, the offsets and their box sums, the flush schedule that keeps every i16
//! partial sum exact.

use super::plan::Geometry;
use super::ConvLutI8;
use crate::lut::PqSpec;
use crate::shape::ConvShape;

/// Most taps per subspace (kh·kw): 258 look-ups of |q| ≤ 127 still fit an i16 sum
/// (258 · 127 = 32766), so every layer within it gets a q range Q ≥ 127.
pub const MAX_I16_TERMS: usize = 258;

/// Largest |i16 partial sum| allowed before the flush to i32.
const I16_SUM_MAX: usize = i16::MAX as usize;

/// Look-ups per output between flushes that the q range is sized for: Q = ⌊32767 / this⌋
/// = 1820 unless one pass (one subspace and table chunk) has more look-ups for some
/// output channel, then Q = ⌊32767 / that count⌋. Consecutive passes are summed in i16 while
/// their look-ups stay within ⌊32767 / Q⌋ for every channel, then flushed to i32. A wider Q
/// gives a finer scale (smaller error) at the cost of more i16 → i32 flushes: 18 gives 3×3
/// kernels a flush every 2 subspaces, 5×5 every subspace (Q = 1310), and conv1 (11×11,
/// M = 1, chunks of one phase plane: ≤ 9 taps each) a flush every 2–3 chunks. Q = 127 (the
/// first version) cost conv2–5 3–15 % relative error on real data; 1820 costs no measurable
/// look-up time there.
const TERMS_PER_FLUSH: usize = 18;

/// The flush schedule and Q from the per-pass look-up counts `counts[pass][list]` (pass =
/// m·chunks + chunk; list = group·C_t/groups + t_local): the passes after which the i16
/// sums are flushed (the last pass always ends the sums), and Q.
pub fn flush_schedule(counts: &[Vec<usize>]) -> (Vec<bool>, i32) {
    let widest = counts
        .iter()
        .flat_map(|c| c.iter().copied())
        .max()
        .unwrap_or(0);
    let q_max = I16_SUM_MAX / TERMS_PER_FLUSH.max(widest).max(1);
    let limit = I16_SUM_MAX / q_max;
    let mut ends = vec![false; counts.len()];
    let mut sums = vec![0usize; counts.first().map_or(0, Vec::len)];
    for (pass, c) in counts.iter().enumerate() {
        if sums.iter().zip(c).any(|(a, b)| a + b > limit) {
            ends[pass - 1] = true;
            sums.fill(0);
        }
        sums.iter_mut().zip(c).for_each(|(a, b)| *a += b);
    }
    (ends, q_max as i32)
}

/// The scale is the bound on |entries| times this margin over Q. What makes |q| ≤ Q hold for
/// every finite input without a clamp (docs/KERNELS.md "int8 conv"): the squared norms are
/// within (d + 1)·2⁻²⁴ of exact ([`largest_norm2`]: f32, or f64 where f32 would underflow
/// or overflow), the bound's product, root and quotient are taken in f64 and s is rounded up
/// to f32; the f32 steps after it (the centred codewords, D' = (D − c)/s, the chained dot
/// product of at most [`MAX_DIMS`] terms) err by at most (d + 4)·2⁻²⁴ relative to
/// ‖x‖·‖D'‖ ≤ Q / margin. In all at most (2d + 5)·2⁻²⁴ ≈ 6·10⁻⁵ < 10⁻⁴: every entry is
/// below Q in magnitude before rounding.
const SCALE_MARGIN: f64 = 1.0 + 1e-4;

/// Most dims per subspace of an int8 layer: (2·MAX_DIMS + 5)·2⁻²⁴ = 6·10⁻⁵ stays inside
/// [`SCALE_MARGIN`].
pub const MAX_DIMS: usize = 512;

impl ConvLutI8 {
    /// s: the largest ‖x_p^(m)‖·R_m over groups, subspaces and pixels, with the margin, over
    /// Q, rounded up to f32 and at least the smallest normal f32 (so 1/s is finite); 1 if
    /// the bound is 0 or NaN.
    #[inline(always)]
    pub(super) fn scale(&self, xpad: &[f32]) -> f32 {
        let geo = &self.geo;
        let plane = geo.phases * geo.x_plane;
        let c_group = self.shape.c_in_group();
        let d = self.spec.d;
        let mut bound2 = 0.0f64;
        for g in 0..self.shape.groups {
            for m in 0..self.m_count {
                let channels = (0..d.min(c_group - m * d)).map(|u| g * c_group + m * d + u);
                let most = largest_norm2(channels.map(|c| &xpad[c * plane..(c + 1) * plane]));
                bound2 = bound2.max(most * self.radii2[m]);
            }
        }
        let bound = bound2.sqrt() * SCALE_MARGIN / f64::from(self.q_max);
        // Zero (no input or one codeword) or NaN: any scale gives the same entries.
        if bound.is_nan() || bound == 0.0 {
            return 1.0;
        }
        let s = bound as f32;
        let s = if f64::from(s) < bound { s.next_up() } else { s };
        s.max(f32::MIN_POSITIVE)
    }

    /// D' = (D − c_m) / s, Layout (M, K, d) (0 beyond a partial subspace's dims).
    #[inline(always)]
    pub(super) fn scaled_codebooks(&self, scale: f32, dq: &mut Vec<f32>) {
        let inv = 1.0 / scale;
        dq.resize(self.centered.len(), 0.0);
        for (out, v) in dq.iter_mut().zip(&self.centered) {
            *out = v * inv;
        }
    }

    /// O_g[phase][pos] = Σ_m Σ_u x[channel][phase][pos]·c_m[u], Layout (groups, s², x_plane).
    #[inline(always)]
    pub(super) fn offsets(&self, xpad: &[f32], out: &mut Vec<f32>) {
        let geo = &self.geo;
        let plane = geo.phases * geo.x_plane;
        let c_group = self.shape.c_in_group();
        let d = self.spec.d;
        out.resize(self.shape.groups * plane, 0.0);
        for (g, o) in out.chunks_exact_mut(plane).enumerate() {
            o.fill(0.0);
            for m in 0..self.m_count {
                for u in 0..d.min(c_group - m * d) {
                    let c = g * c_group + m * d + u;
                    let w = self.centers[m * d + u];
                    for (acc, v) in o.iter_mut().zip(&xpad[c * plane..(c + 1) * plane]) {
                        *acc += v * w;
                    }
                }
            }
        }
    }
}

/// Positions per block of [`largest_norm2_in`]: its squared norms stay in L1.
const NORM_BLOCK: usize = 512;

/// Below this largest squared norm (and for an infinite one) the f32 squares may have
/// underflowed or overflowed: [`largest_norm2`] recomputes them in f64.
const F32_NORM_MIN: f32 = 1e-30;

/// The largest squared norm over positions p of the vectors (x_0[p], x_1[p], …), NaNs
/// ignored, 0 for none, in f64. Summed in f32 (vectors twice as wide, as the int8 tables
/// always were) when the result lies in [[`F32_NORM_MIN`], f32::MAX]: then every square
/// and sum is a normal f32 or below 2⁻¹²⁶ (an absolute error of 2d·2⁻¹⁵⁰, ≈ 10⁻¹⁶ of the
/// result), so its error is within (d + 1)·2⁻²⁴ relative, which [`SCALE_MARGIN`] covers.
/// Otherwise (inputs near 10⁻¹⁵ and below, or above 10¹⁹) summed again in f64, where the
/// squares of f32 values are exact.
fn largest_norm2<'a>(planes: impl Iterator<Item = &'a [f32]> + Clone) -> f64 {
    let fast = largest_norm2_in::<f32>(planes.clone());
    if (F32_NORM_MIN..=f32::MAX).contains(&fast) {
        f64::from(fast)
    } else {
        largest_norm2_in::<f64>(planes)
    }
}

/// [`largest_norm2`] summed in T, a block of positions at a time (no buffer of the plane's
/// size is written: an f64 one cost conv1 0.15 ms, out of L2).
#[inline(always)]
fn largest_norm2_in<'a, T>(planes: impl Iterator<Item = &'a [f32]> + Clone) -> T
where
    T: Copy + Default + PartialOrd + From<f32> + std::ops::Add<Output = T>,
    T: std::ops::Mul<Output = T>,
{
    let len = planes.clone().next().map_or(0, <[f32]>::len);
    let mut norms = [T::default(); NORM_BLOCK];
    let mut most = T::default();
    for at in (0..len).step_by(NORM_BLOCK) {
        let n = NORM_BLOCK.min(len - at);
        let norms = &mut norms[..n];
        norms.fill(T::default());
        for x in planes.clone() {
            for (acc, &v) in norms.iter_mut().zip(&x[at..at + n]) {
                *acc = *acc + T::from(v) * T::from(v);
            }
        }
        let block = largest(norms);
        if block > most {
            most = block;
        }
    }
    most
}

/// The largest of `v` and 0, NaNs ignored: eight running maxima, so that the loop compiles to
/// vector compares (a fold of `max` stays scalar).
#[inline(always)]
fn largest<T: Copy + Default + PartialOrd>(v: &[T]) -> T {
    let keep = |a: T, b: T| if b > a { b } else { a };
    let mut most = [T::default(); 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::default(), |a, &b| keep(a, b));
    for chunk in chunks {
        for (m, &b) in most.iter_mut().zip(chunk) {
            *m = keep(*m, b);
        }
    }
    most.into_iter().fold(tail, keep)
}

/// c_m (M, d) and R_m² (M) over each subspace's dims, in f64 (R_m measured from the f32
/// c_m the offsets use).
pub(super) fn centers_and_radii(
    shape: ConvShape,
    spec: PqSpec,
    centroids: &[f32],
) -> (Vec<f32>, Vec<f64>) {
    let (d, k) = (spec.d, spec.k);
    let c_group = shape.c_in_group();
    let m_count = spec.subspaces(c_group);
    let mut centers = vec![0.0f32; m_count * d];
    let mut radii2 = vec![0.0f64; m_count];
    for m in 0..m_count {
        let dims = d.min(c_group - m * d);
        let word = |code: usize, u: usize| centroids[(m * k + code) * d + u] as f64;
        let mean: Vec<f64> = (0..dims)
            .map(|u| (0..k).map(|code| word(code, u)).sum::<f64>() / k as f64)
            .collect();
        for u in 0..dims {
            centers[m * d + u] = mean[u] as f32;
        }
        let r2 = (0..k)
            .map(|code| {
                (0..dims)
                    .map(|u| (word(code, u) - centers[m * d + u] as f64).powi(2))
                    .sum::<f64>()
            })
            .fold(0.0f64, f64::max);
        radii2[m] = r2;
    }
    (centers, radii2)
}

/// D − c_m, Layout (M, K, d), from D (M, K, d) and c_m (M, d).
pub(super) fn centered_codebooks(spec: PqSpec, centers: &[f32], centroids: &[f32]) -> Vec<f32> {
    let (d, k) = (spec.d, spec.k);
    centroids
        .chunks_exact(d)
        .enumerate()
        .flat_map(|(word, codeword)| {
            let center = &centers[(word / k) * d..(word / k + 1) * d];
            codeword.iter().zip(center).map(|(v, c)| v - c)
        })
        .collect()
}

/// round-half-to-even, as `cvtps2dq` under the default rounding mode; |v| < Q for finite
/// inputs (see [`SCALE_MARGIN`]), so the entry needs no clamp. (For non-finite inputs the
/// outputs are unspecified, and the levels differ: `as` saturates and maps NaN to 0,
/// `cvtps2dq` gives i32::MIN.)
pub(super) fn quantize(v: f32) -> i16 {
    v.round_ties_even() as i16
}

/// B[q] = Σ_(i,j) O[phase(i,j)][r0·pw + q + (i div s)·pw + j div s] for the band's lanes
/// q < rows·pw, in (i, j) order; 0 for the lanes beyond. `offsets`: Layout (s², x_plane);
/// `out`: Layout (Qv).
pub(super) fn box_sum(geo: &Geometry, band: usize, offsets: &[f32], out: &mut [f32]) {
    let s = geo.stride;
    let lanes = geo.rows(band) * geo.pw;
    let start = band * geo.band_rows * geo.pw;
    out[..geo.out_lanes].fill(0.0);
    for i in 0..geo.kernel {
        for j in 0..geo.kernel {
            let phase = (i % s) * s + j % s;
            let from = phase * geo.x_plane + start + (i / s) * geo.pw + j / s;
            for (acc, o) in out[..lanes].iter_mut().zip(&offsets[from..from + lanes]) {
                *acc += o;
            }
        }
    }
}

/// Look-ups per (pass, list): `counts[m·chunks + chunk][g·C_t/groups + t_local]`, from the
/// re-laid lists.
pub(super) fn pass_counts(
    shape: ConvShape,
    geo: &Geometry,
    m_count: usize,
    starts: &[u32],
) -> Vec<Vec<usize>> {
    let ctg = shape.c_out_group();
    (0..m_count * geo.chunks)
        .map(|pass| {
            (0..shape.groups * ctg)
                .map(|list| {
                    let (g, t_local) = (list / ctg, list % ctg);
                    // The channel's J lists (one per column offset) are consecutive.
                    let l = ((g * m_count * geo.chunks + pass) * ctg + t_local) * geo.shifts;
                    (starts[l + geo.shifts] - starts[l]) as usize
                })
                .collect()
        })
        .collect()
}
