//! The VRF seeds of the views this validator saw certified, by view.
//!
//! Every certificate of the threshold VRF scheme — a notarization, a finalization, a
//! nullification — carries the seed of its view, a threshold signature over the round that is
//! the same whichever certificate carries it. [`SeedReporter`] sits in front of marshal's wrapper
//! as Simplex's reporter and records each certified view's seed in the [`SeedBook`] before passing
//! the activity on. Proposers read the seeds they must carry from it, and the executor reads the
//! seed a finalized block executes with (docs/VALIDATORS.md §3); what a validator missed while it
//! was down it finds in the blocks instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use commonware_actor::Feedback;
use commonware_consensus::Reporter;
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf::{Seed, Seedable};
use commonware_consensus::simplex::types::Activity;
use commonware_consensus::types::View;

use crate::shared::Shared;
use crate::{Digest, Scheme, V};

/// Seeds kept at most; older views are forgotten first (a block needs seeds of views a few
/// behind the newest).
pub const SEEDS_KEPT: usize = 4096;

/// Seeds of certified views. Cheap to clone; clones share the book.
#[derive(Clone, Default)]
pub struct SeedBook {
    seeds: Arc<Mutex<BTreeMap<View, Seed<V>>>>,
}

impl SeedBook {
    /// Records a seed certified by the engine (or carried by a finalized block and verified).
    pub fn insert(&self, seed: Seed<V>) {
        let mut seeds = self.lock();
        seeds.insert(seed.round.view(), seed);
        while seeds.len() > SEEDS_KEPT {
            seeds.pop_first();
        }
    }

    /// The seed of `view`, if it was seen.
    pub fn get(&self, view: View) -> Option<Seed<V>> {
        self.lock().get(&view).cloned()
    }

    /// The newest view whose seed is known.
    pub fn newest(&self) -> Option<View> {
        self.lock().last_key_value().map(|(view, _)| *view)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<View, Seed<V>>> {
        // Every statement leaves the map valid.
        self.seeds.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Simplex's reporter: records the seed of every certificate (and the newest certified view),
/// then hands the activity to `inner` (marshal's wrapper). Certificates the engine reports are
/// verified already.
#[derive(Clone)]
pub struct SeedReporter<R> {
    /// The validator's shared state: its seed book and counters.
    pub shared: Arc<Shared>,
    /// Who gets the activity next.
    pub inner: R,
}

impl<R> SeedReporter<R> {
    fn record(&self, seed: Seed<V>) {
        let view = seed.round.view().get();
        self.shared.seeds.insert(seed);
        self.shared.metrics.view.fetch_max(view, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<R> Reporter for SeedReporter<R>
where
    R: Reporter<Activity = Activity<Scheme, Digest>>,
{
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        match &activity {
            Activity::Notarization(n) | Activity::Certification(n) => self.record(n.seed()),
            Activity::Finalization(f) => self.record(f.seed()),
            Activity::Nullification(n) => {
                if let Some(signature) = n.certificate.get() {
                    self.record(Seed::new(n.round, signature.seed_signature));
                }
            }
            _ => {}
        }
        self.inner.report(activity)
    }
}
