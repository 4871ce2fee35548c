//! What a validator knows about its set, for `/metrics` and `atoma status`: who is in it, who
//! led the newest view this validator took part in, and which peers are alive.
//!
//! A peer counts as **connected** when a heartbeat from it arrived within the last
//! [`LIVE_BEATS`] beats of this validator. Every validator gossips a heartbeat every
//! [`HEARTBEAT`] carrying the height it executed, so `atoma status` can also say how far behind
//! a peer is. The p2p layer knows its connections too, but does not say; a heartbeat is also the
//! stronger statement — the peer is not only connected, it runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::PublicKey;

/// How often a validator tells its peers it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Beats within which a peer's heartbeat must have arrived for it to count as connected.
pub const LIVE_BEATS: u64 = 3;

/// The set and this validator's place in it.
#[derive(Clone, Debug)]
pub struct Membership {
    /// Every validator's identity, in the set's order (the order leaders are named by).
    pub participants: Vec<PublicKey>,
    /// This validator's index in `participants`.
    pub index: usize,
}

impl Membership {
    /// The membership of `me` in a set of `participants`; `None` if `me` is not in it.
    pub fn new(participants: Vec<PublicKey>, me: &PublicKey) -> Option<Self> {
        let index = participants.iter().position(|p| p == me)?;
        Some(Membership { participants, index })
    }

    /// How many may fail: the largest `f` with `n ≥ 3f + 1`.
    pub fn max_faulty(&self) -> usize {
        crate::committee::max_faulty(self.participants.len())
    }

    /// The index of `key` in the set.
    pub fn position(&self, key: &PublicKey) -> Option<usize> {
        self.participants.iter().position(|p| p == key)
    }
}

/// The newest leader seen and the peers' heartbeats.
#[derive(Default)]
pub struct Liveness {
    /// This validator's heartbeats so far.
    beats: AtomicU64,
    /// `leader index + 1` of the newest view this validator proposed or verified in (0: none).
    leader: AtomicU64,
    /// The view that leader led.
    leader_view: AtomicU64,
    /// Each peer: the beat at which its last heartbeat arrived, and the height it reported.
    heard: Mutex<BTreeMap<PublicKey, (u64, u64)>>,
}

impl Liveness {
    /// Records that `leader` (an index in the set) leads `view`, unless a newer view is known.
    pub fn led(&self, view: u64, leader: usize) {
        if self.leader_view.fetch_max(view, Ordering::Relaxed) <= view {
            self.leader.store(leader as u64 + 1, Ordering::Relaxed);
        }
    }

    /// The newest view's leader (an index in the set) and that view.
    pub fn leader(&self) -> Option<(u64, usize)> {
        let leader = self.leader.load(Ordering::Relaxed).checked_sub(1)?;
        Some((self.leader_view.load(Ordering::Relaxed), usize::try_from(leader).ok()?))
    }

    /// Counts one of this validator's own heartbeats.
    pub fn beat(&self) {
        self.beats.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a heartbeat from `peer`, which has executed `height`.
    pub fn heard(&self, peer: &PublicKey, height: u64) {
        let now = self.beats.load(Ordering::Relaxed);
        self.heard.lock().unwrap_or_else(PoisonError::into_inner).insert(peer.clone(), (now, height));
    }

    /// The peers heard from within [`LIVE_BEATS`], with the height each reported.
    pub fn connected(&self) -> BTreeMap<PublicKey, u64> {
        let now = self.beats.load(Ordering::Relaxed);
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        heard
            .iter()
            .filter(|(_, (at, _))| now.saturating_sub(*at) < LIVE_BEATS)
            .map(|(peer, (_, height))| (peer.clone(), *height))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::{Signer as _, ed25519};

    use super::*;

    fn key(seed: u64) -> PublicKey {
        ed25519::PrivateKey::from_seed(seed).public_key()
    }

    #[test]
    fn a_peer_is_connected_until_it_misses_its_beats() {
        let liveness = Liveness::default();
        liveness.heard(&key(1), 7);
        liveness.heard(&key(2), 9);
        assert_eq!(liveness.connected().len(), 2);
        for _ in 0..LIVE_BEATS - 1 {
            liveness.beat();
        }
        liveness.heard(&key(2), 12);
        assert_eq!(liveness.connected().into_iter().collect::<Vec<_>>(), {
            let mut both = vec![(key(1), 7), (key(2), 12)];
            both.sort();
            both
        });
        liveness.beat();
        assert_eq!(liveness.connected().into_iter().collect::<Vec<_>>(), vec![(key(2), 12)]);
    }

    #[test]
    fn the_newest_view_names_the_leader() {
        let liveness = Liveness::default();
        assert_eq!(liveness.leader(), None);
        liveness.led(5, 2);
        liveness.led(4, 1);
        assert_eq!(liveness.leader(), Some((5, 2)));
        liveness.led(6, 0);
        assert_eq!(liveness.leader(), Some((6, 0)));
    }

    #[test]
    fn membership_finds_its_index_and_fault_tolerance() {
        let keys: Vec<_> = (0..7).map(key).collect();
        let me = Membership::new(keys.clone(), &keys[3]).expect("a member");
        assert_eq!((me.index, me.max_faulty()), (3, 2));
        assert!(Membership::new(keys, &key(99)).is_none());
    }
}
