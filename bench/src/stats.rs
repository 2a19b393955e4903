//! Percentiles of latency samples and median / spread of repeated runs.

use serde::{Deserialize, Serialize};

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank method: the
/// smallest sample with at least `q` of all samples at or below it.
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// p50 and p99 of unsorted samples (sorts them).
pub fn p50_p99(samples: &mut [u64]) -> Option<(u64, u64)> {
    samples.sort_unstable();
    Some((percentile(samples, 0.50)?, percentile(samples, 0.99)?))
}

/// Median and range of a figure measured in several runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    /// Summarize `values`, ignoring non-finite ones; `None` if nothing is left.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
        Some(Self { median, min: v[0], max: v[v.len() - 1], runs: v.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        let v = [10, 20, 30];
        assert_eq!(percentile(&v, 0.5), Some(20));
        assert_eq!(percentile(&v, 0.99), Some(30));
    }

    #[test]
    fn p50_p99_sorts() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(p50_p99(&mut v), Some((3, 5)));
        assert_eq!(p50_p99(&mut []), None);
    }

    #[test]
    fn spread() {
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { median: 2.0, min: 1.0, max: 3.0, runs: 3 }));
        assert_eq!(Spread::of(&[4.0, 1.0]).map(|s| s.median), Some(2.5));
        assert_eq!(Spread::of(&[f64::NAN, 2.0]).map(|s| s.runs), Some(1));
        assert_eq!(Spread::of(&[]), None);
    }
}
