//! How a layer's dense weights are cut into product-quantization sub-vectors (METHOD.md,
//! FORMAT.md "rebuilt from the codebooks").
//!
//! The dense weights have Caffe's layout, conv (C_t, C_s/groups, kh, kw) and fc (C_t, C_s).
//! Sub-vector (t, tap, m) is the d group-local input channels m·d … m·d + d_m − 1 of output
//! channel t at kernel tap `tap` = i·kw + j (fc: one tap); d_m = d except for a partial
//! subspace (a layer narrower than d). Sub-codebook m is shared by every tap and every group.

use qcnn_model::arch::{ParamShape, QuantSpec};
use qcnn_model::Codebooks;

/// The cut of one layer: which weights form which sub-vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// C_t.
    pub c_t: usize,
    /// Channels a sub-vector runs over: C_s/groups (conv), C_s (fc).
    pub channels: usize,
    /// kh·kw (1 for fc).
    pub taps: usize,
    pub d: usize,
    pub k: usize,
    /// M = ceil(channels / d).
    pub subspaces: usize,
}

impl Split {
    pub fn new(shape: &ParamShape, spec: QuantSpec) -> Self {
        let channels = shape.split_channels();
        Split {
            c_t: shape.out_channels(),
            channels,
            taps: shape.taps(),
            d: spec.d,
            k: spec.k,
            subspaces: spec.subspaces(channels),
        }
    }

    pub fn spec(&self) -> QuantSpec {
        QuantSpec {
            d: self.d,
            k: self.k,
        }
    }

    /// d_m: the real dims of subspace m (d, or fewer for a partial subspace).
    pub fn dims(&self, m: usize) -> usize {
        self.d.min(self.channels - m * self.d)
    }

    /// Sub-vectors per subspace: C_t·kh·kw.
    pub fn points(&self) -> usize {
        self.c_t * self.taps
    }

    /// Dense weights per output channel: C_s/groups · kh·kw.
    pub fn row_len(&self) -> usize {
        self.channels * self.taps
    }

    /// Position of b[t][tap][m] in assignments, Layout (C_t, kh, kw, M) or (C_t, M).
    pub fn assignment(&self, t: usize, tap: usize, m: usize) -> usize {
        (t * self.taps + tap) * self.subspaces + m
    }

    /// Position of W[t][c][tap] in the dense weights, Layout (C_t, C_s/groups, kh·kw).
    pub fn weight(&self, t: usize, c: usize, tap: usize) -> usize {
        (t * self.channels + c) * self.taps + tap
    }

    /// The sub-vectors of subspace m: Layout (C_t·kh·kw, d_m), row t·taps + tap holds
    /// W[t][m·d + a][tap] for a < d_m. `weights` has the dense layout.
    pub fn gather(&self, weights: &[f32], m: usize) -> Vec<f32> {
        let dm = self.dims(m);
        let mut out = Vec::with_capacity(self.points() * dm);
        for t in 0..self.c_t {
            for tap in 0..self.taps {
                out.extend((0..dm).map(|a| weights[self.weight(t, m * self.d + a, tap)]));
            }
        }
        out
    }

    /// Empty codebooks of this cut: centroids (M, K, d) and assignments all zero.
    pub fn empty_codebooks(&self) -> Codebooks {
        Codebooks {
            spec: self.spec(),
            subspaces: self.subspaces,
            centroids: vec![0.0; self.subspaces * self.k * self.d],
            assignments: vec![0; self.points() * self.subspaces],
        }
    }
}

/// ‖a − b‖ / ‖b‖ accumulated in f64: 0 when a = b, infinite when b = 0 ≠ a.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "relative_error of slices of different lengths"
    );
    let (diff, norm) = squared_sums(a, b);
    ratio(diff, norm)
}

/// The relative error over several maps taken together: sqrt(Σ‖a_n − b_n‖² / Σ‖b_n‖²).
pub fn relative_error_all(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    assert_eq!(a.len(), b.len(), "relative_error_all of different counts");
    let (mut diff, mut norm) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            x.len(),
            y.len(),
            "relative_error_all of maps of different lengths"
        );
        let (d, n) = squared_sums(x, y);
        diff += d;
        norm += n;
    }
    ratio(diff, norm)
}

/// (‖a − b‖², ‖b‖²) in f64.
fn squared_sums(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(d, n), (&x, &y)| {
        let (x, y) = (f64::from(x), f64::from(y));
        (d + (x - y) * (x - y), n + y * y)
    })
}

fn ratio(diff: f64, norm: f64) -> f64 {
    match (diff == 0.0, norm == 0.0) {
        (true, _) => 0.0,
        (false, true) => f64::INFINITY,
        (false, false) => (diff / norm).sqrt(),
    }
}
