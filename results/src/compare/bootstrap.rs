//! The bootstrap confidence interval of the relative change of a median between two sets of
//! measurements, resampled as they were measured: repeats (of every pooled run), then the
//! values (images) within each repeat (a two-level, or cluster, bootstrap).
//!
//! Resampling whole repeats, not only images, keeps what varies between repeats (a busier
//! machine, another core frequency) in the interval: the images of one repeat are not
//! independent of each other. The repeats of several pooled runs are all clusters of one
//! level: resampling runs as a level of its own would, with the handful of runs a CI job
//! keeps, make every interval about as wide as one run's (a resample of 4 runs is one run
//! 4 times once in 64 draws). The estimator is criterion's: the change of the statistic is
//! computed on each pair of resamples (one per side, drawn independently), and the interval
//! is the percentile interval of those changes.
//!
//! Limit: a percentile interval never reaches beyond the most extreme resample, so with few
//! repeats (a layer's time is one value per repeat) it is no wider than the repeats' own
//! spread; more repeats, or pooled runs, make layer verdicts trustworthy.
//!
//! Seeded ([`rand_chacha::ChaCha8Rng`], whose stream is fixed across platforms and crate
//! versions), so a verdict is a pure function of the data, the options and the seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Measurements of one quantity on one side, grouped as they were taken. Layout (repeats,
/// values): `clusters[k]` holds the values of one repeat of one run (one per image for times
/// per image, one value for a layer's time per repeat). Empty clusters are ignored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clustered {
    pub clusters: Vec<Vec<f64>>,
}

impl Clustered {
    /// Drops empty clusters, so that every resample draws from real values.
    pub fn new(clusters: Vec<Vec<f64>>) -> Self {
        Clustered {
            clusters: clusters.into_iter().filter(|c| !c.is_empty()).collect(),
        }
    }

    /// Every value, pooled.
    pub fn pooled(&self) -> Vec<f64> {
        self.clusters.iter().flatten().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.clusters.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One bootstrap resample, pooled into `out` (cleared first): as many clusters as there
    /// are, drawn with replacement; within each, as many values as it has, drawn with
    /// replacement.
    fn resample_into(&self, rng: &mut ChaCha8Rng, out: &mut Vec<f64>) {
        out.clear();
        let n = self.clusters.len();
        for _ in 0..n {
            let cluster = &self.clusters[rng.random_range(0..n)];
            let m = cluster.len();
            out.extend((0..m).map(|_| cluster[rng.random_range(0..m)]));
        }
    }
}

/// How the interval is computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapPlan {
    /// Two-sided confidence level of the interval, in (0, 1).
    pub confidence: f64,
    /// Resample pairs drawn.
    pub resamples: usize,
    pub seed: u64,
}

/// The relative change `new / base − 1` of the median, with its bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeEstimate {
    /// Median of all base values, of all new values.
    pub base: f64,
    pub new: f64,
    /// `new / base − 1` of the two medians.
    pub change: f64,
    /// Percentile interval of the change over the resample pairs.
    pub low: f64,
    pub high: f64,
}

/// The change of the median from `base` to `new`; None when a side has no values, or a
/// median (of the data or of a resample) is not positive, where a relative change means
/// nothing. `plan.resamples` must be at least 1.
pub fn median_change(
    base: &Clustered,
    new: &Clustered,
    plan: &BootstrapPlan,
) -> Option<ChangeEstimate> {
    let base_median = median_in_place(&mut base.pooled())?;
    let new_median = median_in_place(&mut new.pooled())?;
    if base_median <= 0.0 || plan.resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    let (mut b, mut n) = (Vec::new(), Vec::new());
    let mut changes = Vec::with_capacity(plan.resamples);
    for _ in 0..plan.resamples {
        base.resample_into(&mut rng, &mut b);
        new.resample_into(&mut rng, &mut n);
        let (mb, mn) = (median_in_place(&mut b)?, median_in_place(&mut n)?);
        if mb <= 0.0 {
            return None;
        }
        changes.push(mn / mb - 1.0);
    }
    let alpha = (1.0 - plan.confidence) / 2.0;
    changes.sort_by(f64::total_cmp);
    Some(ChangeEstimate {
        base: base_median,
        new: new_median,
        change: new_median / base_median - 1.0,
        low: percentile(&changes, alpha),
        high: percentile(&changes, 1.0 - alpha),
    })
}

/// The median, reordering `values` (linear time: no full sort per resample).
fn median_in_place(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (lower, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    Some(if n % 2 == 1 {
        upper
    } else {
        // The largest value below the upper middle is the lower middle.
        let below = lower.iter().copied().max_by(f64::total_cmp)?;
        (below + upper) / 2.0
    })
}

/// The `q`-quantile of sorted values, linearly interpolated between order statistics.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A seed for one compared quantity: the user's seed mixed with the quantity's name
/// (FNV-1a), so each row's verdict depends on its own data only, not on which other rows
/// were compared before it.
pub fn seed_for(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: BootstrapPlan = BootstrapPlan {
        confidence: 0.95,
        resamples: 2000,
        seed: 1,
    };

    #[test]
    fn median_in_place_matches_the_sorting_median() {
        for values in [
            vec![3.0],
            vec![2.0, 1.0],
            vec![5.0, 1.0, 4.0, 2.0],
            vec![9.0, 7.0, 8.0, 1.0, 2.0, 2.0],
        ] {
            let expected = crate::stats::median(&values);
            assert_eq!(median_in_place(&mut values.clone()), expected, "{values:?}");
        }
        assert_eq!(median_in_place(&mut []), None);
    }

    #[test]
    fn percentile_interpolates_between_order_statistics() {
        let v = [0.0, 10.0, 20.0];
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 0.25), 5.0);
        assert_eq!(percentile(&v, 1.0), 20.0);
    }

    #[test]
    fn empty_groups_are_dropped_and_empty_sides_give_none() {
        let n = Clustered::new(vec![vec![], vec![1.0], vec![]]);
        assert_eq!(n.clusters, vec![vec![1.0]]);
        assert_eq!(median_change(&Clustered::default(), &n, &PLAN), None);
        let zero = Clustered::new(vec![vec![0.0, 0.0]]);
        assert_eq!(median_change(&zero, &n, &PLAN), None, "a zero base median");
    }

    #[test]
    fn identical_constant_sides_have_a_zero_width_interval_at_zero() {
        let a = Clustered::new(vec![vec![2.0; 5]; 3]);
        let e = median_change(&a, &a, &PLAN).unwrap();
        assert_eq!((e.change, e.low, e.high), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_interval_brackets_the_estimate_and_is_reproducible() {
        let base = Clustered::new(vec![vec![10.0, 10.4, 9.8, 10.1], vec![10.3, 9.9, 10.2]]);
        let new = Clustered::new(vec![vec![11.0, 11.3, 10.9], vec![11.2, 11.1, 10.8, 11.4]]);
        let e = median_change(&base, &new, &PLAN).unwrap();
        assert!(e.low <= e.change && e.change <= e.high, "{e:?}");
        assert!(e.low > 0.0, "a clear 10% shift: {e:?}");
        assert_eq!(median_change(&base, &new, &PLAN), Some(e));
        let other_seed = BootstrapPlan { seed: 2, ..PLAN };
        assert_ne!(median_change(&base, &new, &other_seed), Some(e));
    }

    #[test]
    fn differing_repeats_widen_the_interval() {
        // Same values, but in the second layout each repeat is shifted as a whole: the
        // nested bootstrap must see that the repeats disagree.
        let flat: Vec<f64> = (0..40).map(|i| 10.0 + 0.01 * f64::from(i % 5)).collect();
        let calm = Clustered::new(vec![flat[..20].to_vec(), flat[20..].to_vec()]);
        let shifted = Clustered::new(vec![
            flat[..20].iter().map(|v| v * 0.95).collect(),
            flat[20..].iter().map(|v| v * 1.05).collect(),
        ]);
        let width = |e: ChangeEstimate| e.high - e.low;
        let calm_w = width(median_change(&calm, &calm, &PLAN).unwrap());
        let shifted_w = width(median_change(&shifted, &shifted, &PLAN).unwrap());
        assert!(shifted_w > 5.0 * calm_w, "{calm_w} vs {shifted_w}");
    }

    #[test]
    fn seeds_differ_per_key() {
        assert_ne!(seed_for(7, "mode qcnn"), seed_for(7, "mode dense"));
        assert_eq!(seed_for(7, "x"), seed_for(7, "x"));
    }
}
