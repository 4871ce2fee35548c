//! A latency histogram of fixed size: exact below 128 µs, then 64 buckets per power of two
//! (a relative error under 1.6%), with the exact minimum, maximum and mean kept beside it. A run
//! of any length costs the same 30 KiB per client, and merging two is adding their buckets.

use std::time::Duration;

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Buckets per power of two above [`LINEAR`]: 2^SUB_BITS.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// 128 exact buckets, then 64 for each power of two from 2^7 to 2^63.
const BUCKETS: usize = LINEAR as usize + (64 - 7) * SUB as usize;

/// Counts of latencies in microseconds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: u128,
    min_us: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, sum_us: 0, min_us: u64::MAX, max_us: 0 }
    }
}

fn bucket(value_us: u64) -> usize {
    if value_us < LINEAR {
        return value_us as usize;
    }
    let exponent = 63 - value_us.leading_zeros(); // ≥ 7
    let sub = (value_us >> (exponent - SUB_BITS)) & (SUB - 1);
    LINEAR as usize + (exponent as usize - 7) * SUB as usize + sub as usize
}

/// The largest value that falls into `index`.
fn upper_bound(index: usize) -> u64 {
    if index < LINEAR as usize {
        return index as u64;
    }
    let offset = index - LINEAR as usize;
    let exponent = (offset / SUB as usize) as u32 + 7;
    let sub = (offset % SUB as usize) as u64;
    let low = (1u64 << exponent) | (sub << (exponent - SUB_BITS));
    low.saturating_add((1u64 << (exponent - SUB_BITS)) - 1)
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)] += 1;
        self.total += 1;
        self.sum_us += u128::from(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency that `q` (0.0–1.0) of the counted ones do not exceed, to within the bucket
    /// width (rounded up, and never above the maximum); zero when nothing was counted.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        // The rank of the wanted value, 1-based: ⌈q·n⌉, at least 1.
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(upper_bound(index).min(self.max_us).max(self.min_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    /// The largest latency counted.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The smallest latency counted (zero when none).
    pub fn min(&self) -> Duration {
        if self.total == 0 { Duration::ZERO } else { Duration::from_micros(self.min_us) }
    }

    /// The mean latency (zero when none).
    pub fn mean(&self) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(u64::try_from(self.sum_us / u128::from(self.total)).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in (0..5000).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(b >= last, "{v}");
            assert!(upper_bound(b) >= v, "{v} > bound {}", upper_bound(b));
            // Within 1/64 of the value above the exact range.
            assert!(v < LINEAR || upper_bound(b) - v <= v / SUB, "{v}");
            last = b;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_of_a_known_set() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let close = |d: Duration, ms: u64| {
            let want = ms as f64 * 1000.0;
            (d.as_micros() as f64 - want).abs() <= want / 64.0 + 1.0
        };
        assert!(close(h.quantile(0.5), 50), "{:?}", h.quantile(0.5));
        assert!(close(h.quantile(0.99), 99), "{:?}", h.quantile(0.99));
        assert_eq!(h.quantile(1.0), Duration::from_millis(100));
        assert_eq!(h.max(), Duration::from_millis(100));
        assert_eq!(h.min(), Duration::from_millis(1));
        assert_eq!(h.mean(), Duration::from_micros(50_500));
        let mut other = Histogram::default();
        other.record(Duration::from_secs(2));
        h.merge(&other);
        assert_eq!((h.count(), h.max()), (101, Duration::from_secs(2)));
    }
}
