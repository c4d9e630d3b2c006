//! k-means (Lloyd's algorithm) over the weight sub-vectors of one subspace: the plain PQ of
//! the paper's training phase (METHOD.md "Plain PQ").
//!
//! - Seeding: k-means++ (the first centroid uniformly at random, every next one a point drawn
//!   with probability ∝ its squared distance to the nearest centroid chosen so far), from a
//!   caller-seeded RNG, so a seed fixes the result.
//! - Assignment: the nearest centroid, from ‖x‖² − 2·x·c + ‖c‖² with the x·c products of a
//!   block of points and every centroid in one `sgemm` ([`assign`]; plain twin
//!   [`assign_reference`]); centroids within that formula's rounding error of the best are
//!   compared by their directly computed distances. Ties go to the lowest index.
//! - Update: each centroid becomes the mean of its points. An empty cluster takes the point
//!   farthest from its own centroid (which then leaves its old cluster on the next
//!   assignment), so no codeword is wasted while points are badly represented.
//! - Stop: after `max_iterations`, when no label changes, or when an iteration lowers the
//!   inertia (Σ squared distances) by at most `tolerance` × its previous value. A final
//!   assignment makes every label the nearest of the final centroids.
//!
//! Layouts: points (n, d) row-major; centroids (K, d); labels and distances (n).

use rand::Rng;

use crate::linalg::gemm;

/// Points per block of the assignment step: a block's score matrix (block × K floats) stays
/// in the L2 cache.
const ASSIGN_BLOCK: usize = 1024;
/// Safety factor on the rounding-error bound of a BLAS score, below which two centroids
/// count as a near tie and are compared by their exact distances.
const TIE_SLACK: f32 = 4.0;

/// When k-means stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeansParams {
    /// At most this many Lloyd iterations (assignment + update).
    pub max_iterations: usize,
    /// Stop once an iteration lowers the inertia by at most this fraction.
    pub tolerance: f64,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            max_iterations: 50,
            tolerance: 1e-4,
        }
    }
}

/// The result of clustering n points of d dims into K clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    /// Layout (K, d).
    pub centroids: Vec<f32>,
    /// Layout (n): the index of the nearest centroid of every point.
    pub labels: Vec<u8>,
    /// Σ over points of the squared distance to their centroid.
    pub inertia: f64,
    /// Lloyd iterations run.
    pub iterations: usize,
}

/// Clusters `points` (Layout (n, d)) into `k` clusters.
///
/// Panics unless d ≥ 1, 1 ≤ k ≤ 256 (labels are bytes), n ≥ k and `points` holds n·d floats:
/// callers check settings first (`spec::check_spec`).
pub fn kmeans(
    points: &[f32],
    d: usize,
    k: usize,
    params: &KMeansParams,
    rng: &mut impl Rng,
) -> Clustering {
    assert!(
        d >= 1 && (1..=256).contains(&k),
        "k-means needs d ≥ 1 and 1 ≤ K ≤ 256"
    );
    assert_eq!(points.len() % d, 0, "points must be whole rows of d floats");
    let n = points.len() / d;
    assert!(n >= k, "k-means needs at least K = {k} points, got {n}");
    let mut centroids = seed_plus_plus(points, d, k, rng);
    let mut labels = vec![0u8; n];
    let mut previous = vec![u8::MAX; n];
    let mut dist = vec![0.0f32; n];
    let mut prev_inertia = f64::INFINITY;
    let mut iterations = 0;
    while iterations < params.max_iterations {
        iterations += 1;
        let inertia = assign(points, d, &centroids, k, &mut labels, &mut dist);
        let changed = labels != previous;
        update_centroids(points, d, k, &labels, &mut dist, &mut centroids);
        let converged =
            prev_inertia.is_finite() && prev_inertia - inertia <= params.tolerance * prev_inertia;
        if !changed || converged {
            break;
        }
        prev_inertia = inertia;
        previous.copy_from_slice(&labels);
    }
    let inertia = assign(points, d, &centroids, k, &mut labels, &mut dist);
    Clustering {
        centroids,
        labels,
        inertia,
        iterations,
    }
}

/// k-means++ seeding: Layout (K, d). Distances are computed as Σ (x − c)², so a point equal
/// to a chosen centroid has weight exactly 0 and is never drawn again while others remain.
fn seed_plus_plus(points: &[f32], d: usize, k: usize, rng: &mut impl Rng) -> Vec<f32> {
    let n = points.len() / d;
    let point = |i: usize| &points[i * d..(i + 1) * d];
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centroids.extend_from_slice(point(first));
    let mut d2: Vec<f32> = (0..n)
        .map(|i| squared_distance(point(i), point(first)))
        .collect();
    for _ in 1..k {
        let total: f64 = d2.iter().map(|&v| f64::from(v)).sum();
        let chosen = if total > 0.0 {
            draw(&d2, total, rng)
        } else {
            // Fewer distinct points than K: any point (the duplicate cluster stays empty and
            // is handled by the update step).
            rng.random_range(0..n)
        };
        let c = point(chosen).to_vec();
        for (i, v) in d2.iter_mut().enumerate() {
            *v = v.min(squared_distance(point(i), &c));
        }
        centroids.extend_from_slice(&c);
    }
    centroids
}

/// Index i drawn with probability weights[i] / total (weights ≥ 0, total = their sum > 0).
fn draw(weights: &[f32], total: f64, rng: &mut impl Rng) -> usize {
    let target = rng.random::<f64>() * total;
    let mut acc = 0.0f64;
    let mut last_positive = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            acc += f64::from(w);
            last_positive = i;
            if acc > target {
                return i;
            }
        }
    }
    // Rounding left the running sum just below the target.
    last_positive
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Assigns every point (Layout (n, d)) to its nearest centroid (Layout (K, d)): fills
/// `labels` and `dist` (squared distances, Layout (n)) and returns Σ dist. The products x·c
/// of a block of points with every centroid come from one `sgemm`.
pub fn assign(
    points: &[f32],
    d: usize,
    centroids: &[f32],
    k: usize,
    labels: &mut [u8],
    dist: &mut [f32],
) -> f64 {
    let n = points.len() / d;
    assert_eq!(centroids.len(), k * d, "centroids must be (K, d)");
    assert!(
        labels.len() == n && dist.len() == n,
        "labels and dist must hold n values"
    );
    let c_norm: Vec<f32> = centroids
        .chunks_exact(d)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    let c_max = c_norm.iter().fold(0.0f32, |m, &v| m.max(v));
    let mut scores = vec![0.0f32; ASSIGN_BLOCK.min(n) * k];
    let mut total = 0.0f64;
    for start in (0..n).step_by(ASSIGN_BLOCK) {
        let rows = ASSIGN_BLOCK.min(n - start);
        let block = &points[start * d..(start + rows) * d];
        let scores = &mut scores[..rows * k];
        // scores = −2 · X_block · Cᵀ, Layout (rows, K).
        gemm(false, true, rows, k, d, -2.0, block, centroids, 0.0, scores);
        for (r, row) in scores.chunks_exact(k).enumerate() {
            let x = &block[r * d..(r + 1) * d];
            let (best, best_dist) = nearest_of_row(x, row, centroids, &c_norm, c_max);
            labels[start + r] = best as u8;
            dist[start + r] = best_dist;
            total += f64::from(best_dist);
        }
    }
    total
}

/// The nearest centroid of point `x` given its BLAS scores −2·x·c (one per centroid): the
/// least score + ‖c‖², then, among the centroids within the rounding error of that score
/// (near ties, e.g. two codewords closer than √ε), the first of least Σ (x − c)² computed
/// directly. Returns (index, squared distance).
fn nearest_of_row(
    x: &[f32],
    scores: &[f32],
    centroids: &[f32],
    c_norm: &[f32],
    c_max: f32,
) -> (usize, f32) {
    let d = x.len();
    let best_score = scores
        .iter()
        .zip(c_norm)
        .map(|(s, c)| s + c)
        .fold(f32::INFINITY, f32::min);
    let x_norm: f32 = x.iter().map(|v| v * v).sum();
    // |computed − exact| of a score is at most about d·ε·(‖x‖² + ‖c‖²); twice that on both sides.
    let slack = TIE_SLACK * (d as f32 + 2.0) * f32::EPSILON * (x_norm + c_max) + f32::MIN_POSITIVE;
    let mut best = (0, f32::INFINITY);
    for (c, (s, cn)) in scores.iter().zip(c_norm).enumerate() {
        if s + cn <= best_score + slack {
            let dist = squared_distance(x, &centroids[c * d..(c + 1) * d]);
            if dist < best.1 {
                best = (c, dist);
            }
        }
    }
    best
}

/// The plain twin of [`assign`]: for every point, the first centroid of least Σ (x − c)²
/// (in f64). Returns (labels, squared distances).
pub fn assign_reference(
    points: &[f32],
    d: usize,
    centroids: &[f32],
    k: usize,
) -> (Vec<u8>, Vec<f64>) {
    let mut labels = Vec::new();
    let mut dists = Vec::new();
    for x in points.chunks_exact(d) {
        let mut best = (0usize, f64::INFINITY);
        for c in 0..k {
            let centroid = &centroids[c * d..(c + 1) * d];
            let dist: f64 = x
                .iter()
                .zip(centroid)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum();
            if dist < best.1 {
                best = (c, dist);
            }
        }
        labels.push(best.0 as u8);
        dists.push(best.1);
    }
    (labels, dists)
}

/// Every centroid becomes the mean of its points (sums in f64); each empty cluster takes the
/// point farthest from its centroid (`dist`), which is then not taken again.
fn update_centroids(
    points: &[f32],
    d: usize,
    k: usize,
    labels: &[u8],
    dist: &mut [f32],
    centroids: &mut [f32],
) {
    let mut sums = vec![0.0f64; k * d];
    let mut counts = vec![0usize; k];
    for (x, &l) in points.chunks_exact(d).zip(labels) {
        let l = usize::from(l);
        counts[l] += 1;
        for (s, &v) in sums[l * d..(l + 1) * d].iter_mut().zip(x) {
            *s += f64::from(v);
        }
    }
    for c in 0..k {
        let target = &mut centroids[c * d..(c + 1) * d];
        if counts[c] > 0 {
            for (t, s) in target.iter_mut().zip(&sums[c * d..(c + 1) * d]) {
                *t = (s / counts[c] as f64) as f32;
            }
        } else if let Some(far) = farthest(dist) {
            target.copy_from_slice(&points[far * d..(far + 1) * d]);
            dist[far] = -1.0;
        }
    }
}

/// The point with the largest positive distance, if any.
fn farthest(dist: &[f32]) -> Option<usize> {
    let (i, &v) = dist
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))?;
    (v > 0.0).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{prop_assert, proptest};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A BLAS label may differ from the plain one only on a near tie: its exact distance is
    /// within this fraction of the point's and centroids' squared scale of the best.
    const TIE_TOLERANCE: f64 = 1e-5;
    /// Reconstruction error of exactly representable data (relative L2).
    const EXACT_TOLERANCE: f64 = 1e-6;

    fn values(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    proptest! {
        #[test]
        fn blas_assignment_matches_its_twin(n in 1usize..2100, d in 1usize..10, k in 1usize..40, seed: u64) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let points = values(&mut rng, n * d);
            let centroids = values(&mut rng, k * d);
            let (mut labels, mut dist) = (vec![0u8; n], vec![0.0f32; n]);
            let total = assign(&points, d, &centroids, k, &mut labels, &mut dist);
            let (_, want) = assign_reference(&points, d, &centroids, k);
            for i in 0..n {
                let c = &centroids[usize::from(labels[i]) * d..][..d];
                let x = &points[i * d..][..d];
                let got: f64 = x.iter().zip(c).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
                prop_assert!(got - want[i] <= TIE_TOLERANCE * d as f64, "point {i}: {got} vs {}", want[i]);
                prop_assert!((f64::from(dist[i]) - got).abs() <= TIE_TOLERANCE * d as f64 * 4.0);
            }
            let want_total: f64 = want.iter().sum();
            prop_assert!((total - want_total).abs() <= TIE_TOLERANCE * (n * d) as f64 * 4.0);
        }

        #[test]
        fn exactly_representable_points_are_recovered(
            k in 1usize..40, d in 1usize..9, extra in 0usize..300, seed: u64,
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let codebook = values(&mut rng, k * d);
            // Every codeword used at least once, then random ones.
            let labels: Vec<usize> = (0..k).chain((0..extra).map(|_| rng.random_range(0..k))).collect();
            let points: Vec<f32> = labels.iter().flat_map(|&l| codebook[l * d..(l + 1) * d].to_vec()).collect();
            let result = kmeans(&points, d, k, &KMeansParams::default(), &mut rng);
            let rebuilt: Vec<f32> = result.labels.iter().flat_map(|&l| {
                result.centroids[usize::from(l) * d..][..d].to_vec()
            }).collect();
            let err = crate::split::relative_error(&rebuilt, &points);
            prop_assert!(err <= EXACT_TOLERANCE, "relative error {err}");
        }
    }

    /// Found by proptest (k = 27, d = 1): codewords 1e-4 apart were confused by the rounding
    /// of ‖x‖² − 2·x·c + ‖c‖²; near ties are now decided by exact distances.
    #[test]
    fn codewords_closer_than_the_rounding_of_the_blas_formula_are_told_apart() {
        let codebook = [0.9f32, 0.9001, -0.5, 0.25];
        let points: Vec<f32> = (0..40).map(|i| codebook[i % 4]).collect();
        let result = kmeans(
            &points,
            1,
            4,
            &KMeansParams::default(),
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        let rebuilt: Vec<f32> = result
            .labels
            .iter()
            .map(|&l| result.centroids[usize::from(l)])
            .collect();
        assert_eq!(rebuilt, points);
    }

    #[test]
    fn fewer_distinct_points_than_clusters_still_work() {
        // 3 distinct points, 10 copies each, 8 clusters: empty clusters and zero distances.
        let points: Vec<f32> = (0..30).flat_map(|i| [(i % 3) as f32, 1.0]).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let result = kmeans(&points, 2, 8, &KMeansParams::default(), &mut rng);
        assert!(result.labels.iter().all(|&l| l < 8));
        assert!(result.inertia.abs() < 1e-9, "{}", result.inertia);
    }

    #[test]
    fn an_empty_cluster_takes_the_farthest_point() {
        // Two clusters, both centroids on the left group: one ends up empty and must move to
        // the far point.
        let points = [0.0f32, 0.1, 0.2, 10.0];
        let mut centroids = vec![0.1f32, 0.1];
        let (mut labels, mut dist) = (vec![0u8; 4], vec![0.0f32; 4]);
        assign(&points, 1, &centroids, 2, &mut labels, &mut dist);
        update_centroids(&points, 1, 2, &labels, &mut dist, &mut centroids);
        assert_eq!(centroids[1], 10.0, "{centroids:?}");
    }

    #[test]
    fn lloyd_iterations_run_until_the_tolerance() {
        // Found by measuring: the first iteration compared against an infinite previous
        // inertia and stopped at once.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let points = values(&mut rng, 2000 * 2);
        let params = KMeansParams::default();
        let result = kmeans(&points, 2, 32, &params, &mut rng);
        assert!(result.iterations > 2, "{} iterations", result.iterations);
        let one = kmeans(
            &points,
            2,
            32,
            &KMeansParams {
                max_iterations: 1,
                ..params
            },
            &mut ChaCha8Rng::seed_from_u64(2),
        );
        assert!(
            result.inertia < one.inertia,
            "{} vs {}",
            result.inertia,
            one.inertia
        );
    }

    #[test]
    fn same_seed_same_clustering() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let points = values(&mut rng, 500 * 4);
        let run = |seed| {
            kmeans(
                &points,
                4,
                16,
                &KMeansParams::default(),
                &mut ChaCha8Rng::seed_from_u64(seed),
            )
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9).centroids, run(10).centroids);
    }
}
