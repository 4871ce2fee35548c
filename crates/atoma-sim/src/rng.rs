//! The simulator's only source of randomness: one ChaCha20 stream seeded from the run's `u64`.
//!
//! Every choice of the run — keys, which actor acts, what it sends, block times, faults, crash
//! points — is drawn from this stream in a fixed order, so a seed names exactly one run.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// A deterministic generator with the few draws the simulator needs.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha20Rng);

impl SimRng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(ChaCha20Rng::seed_from_u64(seed))
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`), by rejection so that no value is favoured; 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Draws below 2^64 mod n would make small values likelier; discard them.
        let reject_below = n.wrapping_neg() % n;
        loop {
            let draw = self.0.next_u64();
            if draw >= reject_below {
                return draw % n;
            }
        }
    }

    /// Uniform in `low..=high` (`low ≤ high`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        debug_assert!(low <= high, "empty range {low}..={high}");
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability `permille / 1000`.
    pub fn chance(&mut self, permille: u64) -> bool {
        self.below(1000) < permille
    }

    /// A uniform element, or `None` when `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let len = u64::try_from(items.len()).ok()?;
        let index = usize::try_from(self.below(len)).ok()?;
        items.get(index)
    }

    /// A uniform index into a slice of `len` elements (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        let draw = self.below(u64::try_from(len).unwrap_or(u64::MAX));
        usize::try_from(draw).unwrap_or(0)
    }

    /// 32 uniform bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        out
    }

    /// `len` uniform bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.0.fill_bytes(&mut out);
        out
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_stream() {
        let (mut a, mut b, mut c) = (SimRng::new(7), SimRng::new(7), SimRng::new(8));
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn draws_stay_in_bounds_and_cover_them() {
        let mut rng = SimRng::new(1);
        let mut seen = [0u32; 5];
        for _ in 0..2000 {
            let v = rng.range(3, 7);
            assert!((3..=7).contains(&v));
            seen[usize::try_from(v - 3).unwrap()] += 1;
        }
        assert!(seen.iter().all(|n| *n > 300), "{seen:?}");
        assert_eq!(rng.below(0), 0);
        assert!(rng.pick::<u8>(&[]).is_none());
        let hits = (0..10_000).filter(|_| rng.chance(250)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        let _ = rng.range(0, u64::MAX);
    }
}
