//! The bridge from marshal to the ledger: finalized consensus blocks, in height order, become
//! ledger blocks, applied and made durable before marshal is told.
//!
//! Marshal hands every finalized block to [`Finalized`] (its reporter) with an acknowledgement,
//! at least once, in height order; a few may wait unacknowledged at a time. The executor takes
//! them in order. For each it needs the seed of the view right after the block's
//! (docs/VALIDATORS.md §3): from the seed book when this validator saw that view certified, or
//! else from the next finalized blocks, which carry it. It then derives the ledger block
//! ([`ledger_block`]), applies it (`Ledger::apply_verified`, the pool's verified transactions reused: one redb commit), answers the block's
//! submitters and controls, clears the pool, and only then acknowledges. A block at or below the
//! executed tip — marshal redelivers after a restart — is acknowledged at once.
//!
//! An acknowledgement is never dropped (a dropped one stops marshal): if a finalized block cannot
//! be applied — which takes more than `f` faulty validators, or a bug — the executor halts, keeps
//! the acknowledgement, refuses every waiter, and reports the failure by name.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use atoma_contract::hash::blake2b256;
use atoma_ledger::state::epoch_due;
use atoma_ledger::{ApplyOutcome, ChainError, VerifiedBlock};
use atoma_types::{Block, BlockHeader, LedgerError, SignedTransaction};
use commonware_actor::Feedback;
use commonware_codec::Encode;
use commonware_consensus::marshal::Update;
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf::Seed;
use commonware_consensus::types::View;
use commonware_consensus::{Heightable, Reporter};
use commonware_cryptography::Digested;
use commonware_runtime::Clock;
use commonware_utils::acknowledgement::{Acknowledgement, Exact};
use futures::StreamExt;
use futures::channel::mpsc;

use crate::V;
use crate::block::ConsensusBlock;
use crate::shared::Shared;

/// A finalized block and its acknowledgement.
pub type Delivery = (Digested<ConsensusBlock>, Exact);

/// Marshal's reporter: passes finalized blocks to the executor, and notes the finalized tip.
#[derive(Clone)]
pub struct Finalized {
    deliveries: mpsc::UnboundedSender<Delivery>,
    shared: Arc<Shared>,
}

impl Finalized {
    /// A reporter feeding the executor that reads `deliveries`.
    pub fn new(shared: Arc<Shared>) -> (Self, mpsc::UnboundedReceiver<Delivery>) {
        let (deliveries, receiver) = mpsc::unbounded();
        (Finalized { deliveries, shared }, receiver)
    }
}

impl Reporter for Finalized {
    type Activity = Update<ConsensusBlock>;

    fn report(&mut self, update: Update<ConsensusBlock>) -> Feedback {
        match update {
            Update::Tip(_, height, _) => {
                self.shared.metrics.finalized_height.fetch_max(height.get(), Ordering::Relaxed);
                Feedback::Ok
            }
            Update::Block(block, ack) => match self.deliveries.unbounded_send((block, ack)) {
                Ok(()) => Feedback::Ok,
                // The executor stopped (it halted); the acknowledgement goes back with the error
                // and is dropped by marshal's side of the channel, which is stopping too.
                Err(_) => Feedback::Closed,
            },
        }
    }
}

/// Why the executor stopped.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    /// A finalized block could not be applied.
    #[error("finalized block {height} could not be applied: {cause}")]
    Refused {
        /// Its height.
        height: u64,
        /// The ledger's error, with its cause chain.
        cause: String,
    },
    /// This validator's state differs from the others' (docs/VALIDATORS.md §6).
    #[error("this validator's state diverged from the other validators' (EStateDiverged)")]
    Diverged,
    /// Marshal delivered a block that does not follow the executed tip.
    #[error("marshal delivered block {got} after the executed tip {tip}")]
    Gap {
        /// The delivered height.
        got: u64,
        /// The executed tip.
        tip: u64,
    },
}

/// What the executor tells the rest of the validator: a snapshot height's state digest, to be
/// compared with the other validators'.
pub type OnSnapshot = Box<dyn Fn(u64, [u8; 32]) + Send>;

/// Runs the executor until marshal closes the channel. If a block cannot be applied, it records
/// why in `shared.halted`, refuses every waiter and parks, holding the acknowledgements it has —
/// marshal then waits rather than stops, and the operator restarts the validator.
pub async fn run<E: Clock>(
    clock: E,
    shared: Arc<Shared>,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    on_snapshot: OnSnapshot,
) {
    let mut queue: VecDeque<Delivery> = VecDeque::new();
    let mut closed = false;
    loop {
        while let Ok(delivery) = deliveries.try_recv() {
            queue.push_back(delivery);
        }
        let step = match queue.front() {
            Some(_) if shared.diverged() => Step::Halt(Halt::Diverged),
            Some(_) => step(&clock, &shared, &queue, &on_snapshot),
            None => Step::Wait,
        };
        match step {
            Step::Done => {
                if let Some((_, ack)) = queue.pop_front() {
                    ack.acknowledge();
                }
            }
            Step::Halt(halt) => {
                tracing::error!("the executor halts: {halt}");
                shared.halt(halt.to_string());
                shared.waiters.stop();
                // Never drop an acknowledgement: park with them (and whatever else arrives).
                let _held = (queue, deliveries);
                futures::future::pending::<()>().await;
                return;
            }
            Step::Wait if closed => {
                // Marshal is gone; nothing more can arrive. Park until the validator stops.
                clock.sleep(Duration::from_secs(3600)).await;
            }
            Step::Wait => {
                futures::select_biased! {
                    next = deliveries.next() => match next {
                        Some(delivery) => queue.push_back(delivery),
                        None => closed = true,
                    },
                    () = futures::FutureExt::fuse(clock.sleep(Duration::from_millis(2))) => {}
                }
            }
        }
    }
}

enum Step {
    /// The front block is applied (or was already): acknowledge it.
    Done,
    /// The front block's seed is not known yet.
    Wait,
    /// The front block cannot be applied.
    Halt(Halt),
}

/// Tries to execute the block at the front of `queue`.
fn step<E: Clock>(clock: &E, shared: &Shared, queue: &VecDeque<Delivery>, on_snapshot: &OnSnapshot) -> Step {
    let Some((front, _)) = queue.front() else { return Step::Wait };
    let block = front.inner();
    let tip = shared.ledger.tip();
    let height = block.height().get();
    if height <= tip.height {
        return Step::Done;
    }
    if height != tip.height + 1 {
        return Step::Halt(Halt::Gap { got: height, tip: tip.height });
    }
    let later: Vec<&ConsensusBlock> = queue.iter().skip(1).map(|(b, _)| b.inner()).collect();
    for carried in later.iter().flat_map(|b| b.parent_seed.iter().chain(b.skip_seed.iter())) {
        // Finalized blocks were verified by a quorum; their seeds are the engine's own.
        shared.seeds.insert(carried.clone());
    }
    let Some(seed) = shared.seeds.get(View::new(block.view.get() + 1)) else { return Step::Wait };
    let Some(ledger_block) = ledger_block(shared, block, &seed) else {
        return Step::Halt(Halt::Refused { height, cause: "a transaction does not decode".into() });
    };
    let Some(verified) = verified_block(shared, ledger_block) else {
        return Step::Halt(Halt::Refused { height, cause: "a transaction fails verification".into() });
    };
    match shared.ledger.apply_verified(&verified) {
        Ok(ApplyOutcome::Applied(effects)) => {
            executed(shared, block, &effects.header, &effects.outcomes, now_ms(clock));
            if let Some(digest) = effects.state_digest {
                on_snapshot(height, digest.0);
            }
            Step::Done
        }
        Ok(ApplyOutcome::AlreadyApplied) => Step::Done,
        Err(error) => refused(height, &error),
    }
}

fn refused(height: u64, error: &ChainError) -> Step {
    Step::Halt(Halt::Refused { height, cause: error.chain() })
}

/// After a block is applied: answers its submitters and controls, takes its transactions (and
/// those whose nonce it used) out of the pool, counts.
fn executed(
    shared: &Shared,
    block: &ConsensusBlock,
    header: &BlockHeader,
    outcomes: &[atoma_types::TxOutcome],
    now_ms: u64,
) {
    shared.waiters.executed(outcomes, header, &block.controls);
    shared.controls.served(&block.controls);
    let digests: Vec<_> = outcomes.iter().map(|o| o.digest).collect();
    let ledger = &shared.ledger;
    let stale = shared.pool().remove_executed(&digests, |sender| ledger.next_nonce(sender));
    let refused: Vec<_> = stale
        .iter()
        .map(|tx| {
            let expected = ledger.next_nonce(&tx.sender());
            (tx.digest(), LedgerError::ENonceUsed { expected, got: tx.nonce() })
        })
        .collect();
    shared.waiters.refuse(&refused);
    let metrics = &shared.metrics;
    metrics.executed_height.store(header.height, Ordering::Relaxed);
    metrics.finalization_latency_ms.store(now_ms.saturating_sub(block.timestamp_ms), Ordering::Relaxed);
}

/// The ledger block consensus block `block` executes as, with the seed of the view after its
/// own; `None` when a transaction does not decode (a quorum's verification makes that impossible
/// while at most `f` validators are faulty).
///
/// Its parent is the executed tip; its timestamp the proposer's plus the local testnet's clock
/// advance, never below the tip's; its epoch the tip's plus one when the epoch is due or asked to
/// advance; its random seed `blake2b-256("atoma-vrf-seed" ‖ seed)`.
pub fn ledger_block(shared: &Shared, block: &ConsensusBlock, seed: &Seed<V>) -> Option<Block> {
    let tip = shared.ledger.tip();
    let timestamp_ms = block.timestamp_ms.saturating_add(block.clock_offset_ms).max(tip.timestamp_ms);
    let epoch_duration_ms = shared.ledger.params().epoch_duration_ms;
    let next_epoch = block.advance_epoch || epoch_due(tip.epoch_start_ms, epoch_duration_ms, timestamp_ms);
    let transactions: Vec<SignedTransaction> = block
        .transactions
        .iter()
        .map(|bytes| SignedTransaction::from_bytes(bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    let header = BlockHeader {
        height: block.height.get(),
        parent_digest: tip.digest,
        timestamp_ms,
        epoch: if next_epoch { tip.epoch.saturating_add(1) } else { tip.epoch },
        random_seed: blake2b256(&[b"atoma-vrf-seed", &seed.encode()]),
        tx_digests: transactions.iter().map(SignedTransaction::digest).collect(),
    };
    Some(Block { header, transactions })
}

/// Verifies `block`'s transactions, those the pool holds without checking their signatures
/// again ([`Shared::verify_transactions`]); `None` if one fails (impossible for a finalized block
/// while at most `f` validators are faulty: a quorum verified it).
fn verified_block(shared: &Shared, block: Block) -> Option<VerifiedBlock> {
    let Block { header, transactions } = block;
    let verified =
        shared.verify_transactions(transactions).into_iter().collect::<Result<Vec<_>, _>>().ok()?;
    VerifiedBlock::new(header, verified).ok()
}

fn now_ms<E: Clock>(clock: &E) -> u64 {
    let since = clock.current().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}
