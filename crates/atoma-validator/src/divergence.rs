//! Comparing state digests across validators (docs/VALIDATORS.md §6).
//!
//! At every snapshot height each validator gossips the combined state digest it reached there.
//! Honest validators execute the same blocks with the same seeds, so they report the same digest;
//! a validator that differs from `f + 1` others who agree among themselves differs from at least
//! one honest validator, so its own state is the wrong one: it stops (`EStateDiverged`) rather
//! than serve it. A peer that differs from this validator alone is only logged, by name.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::PublicKey;

/// Heights remembered at most.
const HEIGHTS_KEPT: usize = 64;

/// What this validator and its peers reported, by height.
pub struct Divergence {
    /// `f`: how many validators may be faulty.
    max_faulty: usize,
    reports: Mutex<BTreeMap<u64, Reports>>,
    diverged: AtomicBool,
}

#[derive(Default)]
struct Reports {
    ours: Option<[u8; 32]>,
    peers: BTreeMap<PublicKey, [u8; 32]>,
}

impl Divergence {
    /// A tracker for a set that tolerates `max_faulty` faulty validators.
    pub fn new(max_faulty: usize) -> Self {
        Divergence { max_faulty, reports: Mutex::new(BTreeMap::new()), diverged: AtomicBool::new(false) }
    }

    /// Whether this validator found its state diverged: it must stop.
    pub fn diverged(&self) -> bool {
        self.diverged.load(Ordering::SeqCst)
    }

    /// Records this validator's own digest at `height`.
    pub fn ours(&self, height: u64, digest: [u8; 32]) {
        self.update(height, |reports| reports.ours = Some(digest));
    }

    /// Records a peer's digest at `height`.
    pub fn report(&self, peer: &PublicKey, height: u64, digest: [u8; 32]) {
        self.update(height, |reports| {
            reports.peers.insert(peer.clone(), digest);
        });
    }

    fn update(&self, height: u64, change: impl FnOnce(&mut Reports)) {
        let mut reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        change(reports.entry(height).or_default());
        while reports.len() > HEIGHTS_KEPT {
            reports.pop_first();
        }
        if let Some(at) = reports.get(&height) {
            self.judge(height, at);
        }
    }

    fn judge(&self, height: u64, reports: &Reports) {
        let Some(ours) = reports.ours else { return };
        let mut others: BTreeMap<[u8; 32], usize> = BTreeMap::new();
        for (peer, digest) in &reports.peers {
            if *digest != ours {
                *others.entry(*digest).or_default() += 1;
                tracing::warn!(%peer, height, "a peer reports another state digest than this validator's");
            }
        }
        if others.values().any(|agreeing| *agreeing > self.max_faulty)
            && !self.diverged.swap(true, Ordering::SeqCst)
        {
            tracing::error!(
                height,
                "this validator's state digest differs from {} or more validators who agree: it stops (EStateDiverged)",
                self.max_faulty + 1
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer, ed25519};
    use commonware_math::algebra::Random;

    fn peer(i: u64) -> PublicKey {
        ed25519::PrivateKey::random(rand_chacha::ChaCha20Rng::from_seed_u64(i)).public_key()
    }

    trait FromU64 {
        fn from_seed_u64(i: u64) -> Self;
    }

    impl FromU64 for rand_chacha::ChaCha20Rng {
        fn from_seed_u64(i: u64) -> Self {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            <Self as rand_core::SeedableRng>::from_seed(seed)
        }
    }

    #[test]
    fn a_minority_is_logged_a_quorum_against_us_stops_us() {
        // n = 4, f = 1: two others agreeing against us are more than f.
        let d = Divergence::new(1);
        d.ours(100, [1; 32]);
        d.report(&peer(1), 100, [2; 32]);
        assert!(!d.diverged(), "one peer alone may be the faulty one");
        d.report(&peer(2), 100, [1; 32]);
        assert!(!d.diverged());
        d.report(&peer(3), 100, [2; 32]);
        assert!(d.diverged(), "f + 1 agree on another digest: at least one honest validator differs from us");
        let late = Divergence::new(1);
        late.report(&peer(1), 7, [2; 32]);
        late.report(&peer(2), 7, [2; 32]);
        assert!(!late.diverged(), "nothing to compare before our own digest");
        late.ours(7, [1; 32]);
        assert!(late.diverged());
    }
}
