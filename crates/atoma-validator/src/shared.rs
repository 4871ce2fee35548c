//! What a validator's parts share: the ledger, the pool, the seed book, a local testnet's pending
//! time controls, who waits for which transaction or control, and the counters.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use atoma_ledger::Ledger;
use atoma_types::{BlockHeader, Digest, LedgerError, SignedTransaction, TxOutcome, VerifiedTransaction};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::Scheme;
use crate::block::{MAX_BLOCK_TRANSACTION_BYTES, MAX_BLOCK_TRANSACTIONS};
use crate::pool::{Pending, TxPool};
use crate::seeds::SeedBook;
use crate::status::{Liveness, Membership};

/// A local testnet's time control, asked of any validator and served by a leader's block.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ControlKind {
    /// Start the next epoch with the next block.
    AdvanceEpoch,
    /// Move the chain's clock forward by this many milliseconds.
    AdvanceClock(u64),
}

/// A time control and the id its block names it by.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Random, chosen by the validator that was asked.
    pub id: u64,
    /// What to do.
    pub kind: ControlKind,
}

/// Time controls waiting for a block.
#[derive(Default)]
pub struct Controls {
    pending: Mutex<BTreeMap<u64, ControlKind>>,
}

impl Controls {
    /// Records a request (from this validator's client or from gossip).
    pub fn add(&self, request: ControlRequest) {
        lock(&self.pending).insert(request.id, request.kind);
    }

    /// Up to `max` pending controls not already served by an unexecuted ancestor (`served`):
    /// their ids, the clock advance they add up to, and whether one advances the epoch.
    pub fn select(&self, served: &BTreeSet<u64>, max: usize) -> (Vec<u64>, u64, bool) {
        let pending = lock(&self.pending);
        let chosen: Vec<(u64, ControlKind)> = pending
            .iter()
            .filter(|(id, _)| !served.contains(id))
            .take(max)
            .map(|(id, k)| (*id, *k))
            .collect();
        let advance_ms = chosen
            .iter()
            .map(|(_, kind)| match kind {
                ControlKind::AdvanceClock(ms) => *ms,
                ControlKind::AdvanceEpoch => 0,
            })
            .fold(0u64, u64::saturating_add);
        let epoch = chosen.iter().any(|(_, kind)| *kind == ControlKind::AdvanceEpoch);
        (chosen.into_iter().map(|(id, _)| id).collect(), advance_ms, epoch)
    }

    /// Whether no control waits.
    pub fn is_empty(&self) -> bool {
        lock(&self.pending).is_empty()
    }

    /// Forgets controls an executed block served.
    pub fn served(&self, ids: &[u64]) {
        let mut pending = lock(&self.pending);
        for id in ids {
            pending.remove(id);
        }
    }
}

type TxWaiter = oneshot::Sender<Result<TxOutcome, LedgerError>>;
type ControlWaiter = oneshot::Sender<Result<BlockHeader, LedgerError>>;

/// Who waits for which transaction or control on this validator.
#[derive(Default)]
pub struct Waiters {
    transactions: Mutex<BTreeMap<Digest, Vec<TxWaiter>>>,
    controls: Mutex<BTreeMap<u64, ControlWaiter>>,
}

impl Waiters {
    /// A receiver answered when the transaction's block is executed here, or when it is refused.
    pub fn transaction(&self, digest: Digest) -> oneshot::Receiver<Result<TxOutcome, LedgerError>> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.transactions).entry(digest).or_default().push(sender);
        receiver
    }

    /// A receiver answered with the header of the block that served the control.
    pub fn control(&self, id: u64) -> oneshot::Receiver<Result<BlockHeader, LedgerError>> {
        let (sender, receiver) = oneshot::channel();
        lock(&self.controls).insert(id, sender);
        receiver
    }

    /// Answers the waiters of an executed block's transactions and controls.
    pub fn executed(&self, outcomes: &[TxOutcome], header: &BlockHeader, controls: &[u64]) {
        {
            let mut waiting = lock(&self.transactions);
            for outcome in outcomes {
                for waiter in waiting.remove(&outcome.digest).unwrap_or_default() {
                    // A submitter that went away does not matter.
                    let _ = waiter.send(Ok(outcome.clone()));
                }
            }
        }
        let mut waiting = lock(&self.controls);
        for id in controls {
            if let Some(waiter) = waiting.remove(id) {
                let _ = waiter.send(Ok(header.clone()));
            }
        }
    }

    /// Refuses the waiters of transactions that will never be executed.
    pub fn refuse(&self, refused: &[(Digest, LedgerError)]) {
        let mut waiting = lock(&self.transactions);
        for (digest, error) in refused {
            for waiter in waiting.remove(digest).unwrap_or_default() {
                let _ = waiter.send(Err(error.clone()));
            }
        }
    }

    /// Refuses everyone: the validator stops.
    pub fn stop(&self) {
        for (_, waiters) in std::mem::take(&mut *lock(&self.transactions)) {
            for waiter in waiters {
                let _ = waiter.send(Err(LedgerError::EChainStopped));
            }
        }
        for (_, waiter) in std::mem::take(&mut *lock(&self.controls)) {
            let _ = waiter.send(Err(LedgerError::EChainStopped));
        }
    }
}

/// What a proposer knew when it proposed: the block's height and view, and the newest view whose
/// seed it had seen (the seed a block executes with is a later view's: docs/VALIDATORS.md §3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Proposal {
    /// The proposed block's height.
    pub height: u64,
    /// Its view.
    pub view: u64,
    /// The newest view whose seed the proposer had seen.
    pub newest_seed_view: Option<u64>,
}

/// Proposals remembered.
pub const PROPOSALS_KEPT: usize = 1024;

/// A validator's counters, for `/metrics` and `atoma status`.
#[derive(Default, Debug)]
pub struct ValidatorMetrics {
    /// The newest view with a certificate this validator saw.
    pub view: AtomicU64,
    /// The newest finalized height marshal reported.
    pub finalized_height: AtomicU64,
    /// The newest height executed here.
    pub executed_height: AtomicU64,
    /// Blocks this validator proposed, and the transactions in them.
    pub proposed_blocks: AtomicU64,
    /// Transactions in this validator's proposals.
    pub proposed_transactions: AtomicU64,
    /// Peers this validator is connected to.
    pub peers: AtomicU64,
    /// The last block's time from its proposal to its execution here, in milliseconds.
    pub finalization_latency_ms: AtomicU64,
    /// Transactions gossip brought that the pool took, and those it refused.
    pub gossip_admitted: AtomicU64,
    /// Transactions gossip brought that the pool refused.
    pub gossip_refused: AtomicU64,
}

impl ValidatorMetrics {
    /// Counts a proposal.
    pub fn proposed(&self, transactions: usize) {
        self.proposed_blocks.fetch_add(1, Ordering::Relaxed);
        self.proposed_transactions.fetch_add(transactions as u64, Ordering::Relaxed);
    }

    /// Prometheus' text format.
    pub fn to_prometheus(&self) -> String {
        let rows = [
            ("atoma_validator_view", "gauge", "The newest view with a certificate seen.", &self.view),
            (
                "atoma_validator_finalized_height",
                "gauge",
                "The newest finalized height.",
                &self.finalized_height,
            ),
            (
                "atoma_validator_executed_height",
                "gauge",
                "The newest height executed here.",
                &self.executed_height,
            ),
            (
                "atoma_validator_proposed_blocks_total",
                "counter",
                "Blocks this validator proposed.",
                &self.proposed_blocks,
            ),
            (
                "atoma_validator_proposed_transactions_total",
                "counter",
                "Transactions in this validator's proposals.",
                &self.proposed_transactions,
            ),
            ("atoma_validator_peers", "gauge", "Peers connected.", &self.peers),
            (
                "atoma_validator_finalization_latency_ms",
                "gauge",
                "The last block's time from its proposal to its execution here.",
                &self.finalization_latency_ms,
            ),
            (
                "atoma_validator_gossip_admitted_total",
                "counter",
                "Gossiped transactions admitted.",
                &self.gossip_admitted,
            ),
            (
                "atoma_validator_gossip_refused_total",
                "counter",
                "Gossiped transactions refused.",
                &self.gossip_refused,
            ),
        ];
        rows.iter()
            .map(|(name, kind, help, value)| {
                format!(
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                    value.load(Ordering::Relaxed)
                )
            })
            .collect()
    }
}

/// Everything a validator's parts share.
pub struct Shared {
    /// The chain's state and storage.
    pub ledger: Arc<Ledger>,
    /// The chain id transactions must name.
    pub chain_id: [u8; 32],
    /// Whether the faucet and time controls are on.
    pub local_network: bool,
    /// Verifies seeds against the group key.
    pub verifier: Scheme,
    /// Transactions waiting for a block.
    pub pool: Mutex<TxPool>,
    /// Seeds of certified views.
    pub seeds: SeedBook,
    /// A local testnet's time controls waiting for a block.
    pub controls: Controls,
    /// Who waits for what.
    pub waiters: Waiters,
    /// Counters.
    pub metrics: ValidatorMetrics,
    /// Why the executor stopped, once it did.
    pub halted: Mutex<Option<String>>,
    /// Whether this validator's state diverged from the others'.
    pub divergence: crate::divergence::Divergence,
    /// This validator's last proposals (for tests and tools).
    pub proposals: Mutex<std::collections::VecDeque<Proposal>>,
    /// The set and this validator's place in it.
    pub membership: Membership,
    /// The newest leader and the peers' heartbeats.
    pub liveness: Liveness,
}

impl Shared {
    /// The parts' shared state for a validator of `membership`.
    pub fn new(
        ledger: Arc<Ledger>,
        local_network: bool,
        verifier: Scheme,
        pool_capacity: usize,
        membership: Membership,
    ) -> Self {
        let chain_id = ledger.params().chain_id;
        Shared {
            ledger,
            chain_id,
            local_network,
            verifier,
            pool: Mutex::new(TxPool::new(pool_capacity)),
            seeds: SeedBook::default(),
            controls: Controls::default(),
            waiters: Waiters::default(),
            metrics: ValidatorMetrics::default(),
            halted: Mutex::new(None),
            divergence: crate::divergence::Divergence::new(membership.max_faulty()),
            proposals: Mutex::new(std::collections::VecDeque::new()),
            membership,
            liveness: Liveness::default(),
        }
    }

    /// Records a proposal.
    pub fn proposed(&self, proposal: Proposal) {
        let mut proposals = lock(&self.proposals);
        proposals.push_back(proposal);
        while proposals.len() > PROPOSALS_KEPT {
            proposals.pop_front();
        }
    }

    /// This validator's last proposals, oldest first.
    pub fn proposals(&self) -> Vec<Proposal> {
        lock(&self.proposals).iter().copied().collect()
    }

    /// Records why the executor stopped.
    pub fn halt(&self, why: String) {
        lock(&self.halted).get_or_insert(why);
    }

    /// Why the executor stopped, if it did.
    pub fn halted(&self) -> Option<String> {
        lock(&self.halted).clone()
    }

    /// Whether this validator's state diverged.
    pub fn diverged(&self) -> bool {
        self.divergence.diverged()
    }

    /// The pool, locked.
    pub fn pool(&self) -> MutexGuard<'_, TxPool> {
        lock(&self.pool)
    }

    /// Verifies transactions as [`atoma_types::batch::verify_transactions`] does, in order,
    /// except that one the pool holds with the same bytes and signature is taken from the pool:
    /// this validator verified it when it was admitted. So a transaction is verified once per
    /// validator, not again in the block that holds it and again when that block executes.
    pub fn verify_transactions(
        &self,
        signed: Vec<SignedTransaction>,
    ) -> Vec<Result<VerifiedTransaction, LedgerError>> {
        let known: Vec<Option<VerifiedTransaction>> = {
            let pool = self.pool();
            signed.iter().map(|tx| pool.get(tx).cloned()).collect()
        };
        let unknown: Vec<SignedTransaction> =
            signed.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(tx, _)| tx.clone()).collect();
        let mut verified = atoma_types::batch::verify_transactions(unknown, &self.chain_id).into_iter();
        known
            .into_iter()
            .map(|k| match k {
                Some(tx) => Ok(tx),
                None => verified.next().unwrap_or(Err(LedgerError::EBadSignature("not verified"))),
            })
            .collect()
    }

    /// The transactions for a block on a chain whose unexecuted ancestors hold `pending`.
    pub fn select(&self, pending: &Pending) -> Vec<bytes::Bytes> {
        let ledger = &self.ledger;
        let chosen: Vec<VerifiedTransaction> = self.pool().select(
            pending,
            |sender| ledger.next_nonce(sender),
            MAX_BLOCK_TRANSACTIONS,
            MAX_BLOCK_TRANSACTION_BYTES,
        );
        chosen.iter().map(|tx| bytes::Bytes::from(tx.signed().to_bytes())).collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every statement leaves these maps valid; a panic elsewhere cannot break them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
