//! The application marshal asks to propose and to verify consensus blocks.
//!
//! **Propose** builds on the parent consensus gives — never on the executed tip: it carries the
//! seeds the chain needs (the parent's view's, and the nullified view's right after it when
//! there is one), stamps the proposer's clock, serves the local testnet's pending time controls,
//! and fills the block from the pool with the transactions that follow each sender's nonce on
//! that chain: the executed nonces plus the ancestors not executed yet, which the ancestry
//! stream yields. **Verify** checks what it can from the block and its parent alone: its view,
//! its timestamp, its seeds against the group key, that the time controls appear only on a
//! local testnet, and every transaction's size, encoding, chain id and signature (batched, on
//! every core). Nonces are not checked: a transaction whose nonce does not follow is skipped when
//! its block is executed (docs/VALIDATORS.md §2).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atoma_types::SignedTransaction;
use bytes::Bytes;
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf::Seed;
use commonware_consensus::types::View;
use commonware_consensus::{Application, Heightable};
use commonware_cryptography::{Digested, Digestible};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Spawner};
use futures::StreamExt;

use crate::block::{ConsensusBlock, MAX_CONTROLS, round};
use crate::pool::Pending;
use crate::shared::{Proposal, Shared};
use crate::{Context, Scheme, V};

/// How far ahead of a verifier's clock a block's timestamp may be before the verifier waits for
/// its clock to catch up (it never refuses a block for that).
pub const MAX_CLOCK_DRIFT_MS: u64 = 2_000;
/// How long a block may be ahead of the verifier's clock at all; beyond it the block is refused.
pub const MAX_CLOCK_LEAD_MS: u64 = 600_000;
/// How long a proposer waits for a seed it must carry before it declines to propose (the view
/// is then nullified).
pub const SEED_WAIT: Duration = Duration::from_secs(1);
/// Unexecuted ancestors a proposer looks through; beyond them it proposes an empty block.
pub const MAX_PENDING_ANCESTORS: usize = 256;
/// How long a leader whose parent block is empty waits for a transaction or a time control
/// before it proposes an empty block. An idle chain then makes a few blocks a second instead of
/// one per round of votes (each costs every validator threshold-signature work and an fsync); a
/// transaction that arrives meanwhile is proposed at once. A leader whose parent holds
/// transactions never waits: the parent executes with the seed of the leader's view, so the
/// leader's view must not be slowed.
pub const IDLE_PROPOSAL_WAIT: Duration = Duration::from_millis(200);

/// The application. Cheap to clone; clones share the node's state.
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
}

impl App {
    /// The application of the node whose state is `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        App { shared }
    }

    /// Records who leads the context's view (for `/metrics` and `atoma status`).
    fn saw_leader(&self, context: &Context) {
        if let Some(leader) = self.shared.membership.position(&context.leader) {
            self.shared.liveness.led(context.round.view().get(), leader);
        }
    }

    /// Waits until the pool holds a transaction or a time control is pending, for at most
    /// [`IDLE_PROPOSAL_WAIT`].
    async fn wait_for_work<E: Clock>(&self, clock: &E) {
        let step = Duration::from_millis(1);
        let mut waited = Duration::ZERO;
        while waited < IDLE_PROPOSAL_WAIT && self.shared.pool().is_empty() && self.shared.controls.is_empty()
        {
            clock.sleep(step).await;
            waited += step;
        }
    }

    /// The seed of `view`, waiting up to [`SEED_WAIT`] for the engine to report it.
    async fn seed<E: Clock>(&self, clock: &E, view: View) -> Option<Seed<V>> {
        let step = Duration::from_millis(2);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(seed) = self.shared.seeds.get(view) {
                return Some(seed);
            }
            if waited >= SEED_WAIT {
                return None;
            }
            clock.sleep(step).await;
            waited += step;
        }
    }

    /// The transactions and time controls of the unexecuted ancestors, starting from the
    /// parent; `None` when there are too many to look through.
    async fn pending(
        &self,
        parent: &ConsensusBlock,
        ancestry: &mut impl Ancestry<ConsensusBlock>,
    ) -> Option<(Pending, BTreeSet<u64>)> {
        let executed = self.shared.ledger.tip().height;
        let mut pending = Pending::default();
        let mut served = BTreeSet::new();
        let mut block = parent.clone();
        for _ in 0..MAX_PENDING_ANCESTORS {
            if block.height.get() <= executed {
                return Some((pending, served));
            }
            served.extend(block.controls.iter().copied());
            for bytes in &block.transactions {
                // Ancestors were verified before they were notarized; a transaction that does not
                // decode is skipped when executed and counts for nothing here.
                if let Ok(signed) = SignedTransaction::from_bytes(bytes)
                    && let Ok(tx) = signed.decode_transaction()
                {
                    pending.add(tx.sender, tx.nonce, signed.digest());
                }
            }
            block = ancestry.next().await?.inner().clone();
        }
        None
    }

    fn now_ms<E: Clock>(clock: &E) -> u64 {
        let since = clock.current().duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the seed is `view`'s and verifies against the group key.
    fn seed_is(&self, seed: &Seed<V>, view: View) -> bool {
        if seed.round != round(view) {
            return false;
        }
        // The seed book holds only seeds the engine verified (or a quorum finalized), and a
        // threshold signature is unique: one equal to it needs no pairing.
        self.shared.seeds.get(view).is_some_and(|known| known == *seed) || seed.verify(&self.shared.verifier)
    }

    /// The checks of `verify` that need no waiting.
    fn check(&self, block: &ConsensusBlock, parent: &ConsensusBlock, context: &Context) -> bool {
        let (parent_view, _) = context.parent;
        if block.view != context.round.view() || parent.view != parent_view {
            return false;
        }
        if block.timestamp_ms < parent.timestamp_ms || block.clock_offset_ms < parent.clock_offset_ms {
            return false;
        }
        let controls = block.clock_offset_ms != parent.clock_offset_ms
            || block.advance_epoch
            || !block.controls.is_empty();
        if controls && !self.shared.local_network {
            return false;
        }
        let parent_seed_ok = match (&block.parent_seed, parent_view.is_zero()) {
            (None, true) => true,
            (Some(seed), false) => self.seed_is(seed, parent_view),
            _ => false,
        };
        let skipped = block.view.get() > parent_view.get().saturating_add(1);
        let skip_seed_ok = match (&block.skip_seed, skipped) {
            (None, false) => true,
            (Some(seed), true) => self.seed_is(seed, View::new(parent_view.get() + 1)),
            _ => false,
        };
        parent_seed_ok && skip_seed_ok && self.transactions_verify(&block.transactions)
    }

    /// Every transaction decodes, names this chain and is signed by its sender.
    fn transactions_verify(&self, transactions: &[Bytes]) -> bool {
        let signed: Result<Vec<SignedTransaction>, _> =
            transactions.iter().map(|bytes| SignedTransaction::from_bytes(bytes)).collect();
        let Ok(signed) = signed else { return false };
        self.shared.verify_transactions(signed).iter().all(Result::is_ok)
    }
}

impl<E> Application<E> for App
where
    E: Clock + Spawner,
{
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = ConsensusBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (clock, context): (E, Context),
        ancestry: impl Ancestry<ConsensusBlock>,
        _input: (),
    ) -> Option<Digested<ConsensusBlock>> {
        self.saw_leader(&context);
        let mut ancestry = ancestry;
        let parent = ancestry.next().await?;
        let parent = parent.inner().clone();
        if parent.transactions.is_empty() && parent.controls.is_empty() {
            self.wait_for_work(&clock).await;
        }
        let view = context.round.view();
        let parent_seed =
            if parent.view.is_zero() { None } else { Some(self.seed(&clock, parent.view).await?) };
        let skip_seed = if view.get() > parent.view.get().saturating_add(1) {
            Some(self.seed(&clock, View::new(parent.view.get() + 1)).await?)
        } else {
            None
        };
        let (transactions, (controls, advance_ms, advance_epoch)) =
            match self.pending(&parent, &mut ancestry).await {
                Some((pending, served)) if self.shared.local_network => {
                    (self.shared.select(&pending), self.shared.controls.select(&served, MAX_CONTROLS))
                }
                Some((pending, _)) => (self.shared.select(&pending), (Vec::new(), 0, false)),
                None => (Vec::new(), (Vec::new(), 0, false)),
            };
        let block = ConsensusBlock {
            parent: parent.digest(),
            height: parent.height().next(),
            view,
            timestamp_ms: Self::now_ms(&clock).max(parent.timestamp_ms),
            clock_offset_ms: parent.clock_offset_ms.saturating_add(advance_ms),
            advance_epoch,
            controls,
            parent_seed,
            skip_seed,
            transactions,
        };
        self.shared.metrics.proposed(block.transactions.len());
        self.shared.proposed(Proposal {
            height: block.height.get(),
            view: view.get(),
            newest_seed_view: self.shared.seeds.newest().map(|v| v.get()),
        });
        Some(Digested::compute(block, &Sequential).await)
    }

    async fn verify(
        &mut self,
        (clock, context): (E, Context),
        ancestry: impl Ancestry<ConsensusBlock>,
    ) -> bool {
        self.saw_leader(&context);
        let mut ancestry = ancestry;
        let Some(block) = ancestry.next().await else { return false };
        let Some(parent) = ancestry.next().await else { return false };
        let (block, parent) = (block.inner(), parent.inner());
        if !self.check(block, parent, &context) {
            return false;
        }
        // A block from the future: refused far ahead, waited for just ahead — the verifier's
        // clock may be the one that is behind.
        let ahead = block.timestamp_ms.saturating_sub(Self::now_ms(&clock));
        if ahead > MAX_CLOCK_LEAD_MS {
            return false;
        }
        if ahead > MAX_CLOCK_DRIFT_MS {
            let until = UNIX_EPOCH + Duration::from_millis(block.timestamp_ms - MAX_CLOCK_DRIFT_MS);
            clock.sleep_until(until.max(SystemTime::UNIX_EPOCH)).await;
        }
        true
    }
}
