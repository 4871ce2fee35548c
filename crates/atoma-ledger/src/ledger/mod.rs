//! The application side of the chain: applies ordered blocks durably and answers reads.
//!
//! [`Ledger::apply_block`] is the only way state changes. It takes a block from whatever orders
//! blocks (the local network's producer, or a consensus engine), and is idempotent by height:
//! a block at or below the tip is accepted as a no-op if it is the block already applied there,
//! and refused if it is a different one. A new block is validated, executed, digested and written
//! in one redb commit; its events are published to subscribers after the commit returned
//! (`apply.rs`).
//!
//! If the commit fails, the in-memory state is already ahead of the disk; the ledger then
//! recovers from the disk exactly as on start, so memory never holds a block the disk does not.
//!
//! Opening (`open.rs`) checks the store (docs/LEDGER.md, "Storage faults") and recovers the state
//! (`recovery.rs`): a damaged snapshot is passed over for an older one, the blocks after it are
//! replayed, and then it is deleted; damaged indexes are rebuilt from the blocks; a damaged block
//! that must be replayed is refused, naming its height. What was repaired is in
//! [`Ledger::repairs`] and the `storage_repairs` metric. The open ledger holds the store's lock
//! (`chain.lock`): a second opener gets `EDataDirInUse`.
//!
//! Reads (`reads.rs`) share the state through a `RwLock`: a block holds the write lock from
//! execution to the end of its commit, so a reader never sees a state that is not durable; the
//! lock prefers writers, so a block waits at most for the reads already under way. Blocks,
//! transactions and events are read from redb's own snapshots and need no lock. Dry runs
//! (`dry_run.rs`) never take the state's lock: they execute on a copy of the committed state of
//! their own.

mod apply;
mod dry_run;
mod open;
mod reads;
mod recovery;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use atoma_contract::{Address, Event};
use tokio::sync::broadcast;

use crate::digest::Digest;
use crate::dir_lock::DataDirLock;
use crate::error::ChainError;
use crate::events::EventRecord;
use crate::execution::BlockEffects;
use crate::genesis::GenesisConfig;
use crate::metrics::Metrics;
use crate::state::{ChainParams, ChainState, LedgerState};
use crate::store::Store;
use crate::tx::{SignedTransaction, Transaction};
use atoma_types::{TxOutcome, TxStatus};

#[cfg(test)]
pub(crate) use recovery::rebuild_indexes;

/// How the ledger stores and publishes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LedgerOptions {
    /// Write a state snapshot every this many blocks (≥ 1).
    pub snapshot_interval: u64,
    /// Events a slow subscriber may fall behind before it loses some (≥ 1).
    pub event_buffer: usize,
}

impl Default for LedgerOptions {
    /// A snapshot every 100 blocks; 4096 buffered events.
    fn default() -> Self {
        LedgerOptions { snapshot_interval: 100, event_buffer: 4096 }
    }
}

/// What [`Ledger::apply_block`] did.
#[derive(Clone, PartialEq, Eq, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ApplyOutcome {
    /// The block was new: here is what it produced.
    Applied(BlockEffects),
    /// The same block was already applied at its height; nothing changed.
    AlreadyApplied,
}

/// The last applied block, as far as ordering needs to know.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tip {
    /// The last applied block's height.
    pub height: u64,
    /// Its digest.
    pub digest: Digest,
    /// Its timestamp.
    pub timestamp_ms: u64,
    /// Its epoch.
    pub epoch: u64,
    /// When that epoch started.
    pub epoch_start_ms: u64,
}

/// A stored transaction and its outcome.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TransactionResponse {
    /// `None` only for the genesis pseudo-transaction (whose digest is the chain id).
    pub signed: Option<SignedTransaction>,
    /// The decoded transaction; `None` with `signed`.
    pub transaction: Option<Transaction>,
    /// Where it went and what the contract answered.
    pub outcome: TxOutcome,
}

/// What a transaction would do if executed now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DryRunOutcome {
    /// The transaction digest.
    pub digest: Digest,
    /// What the contract answered.
    pub status: TxStatus,
    /// The events it would emit.
    pub events: Vec<Event>,
    /// The epoch and time it was run at: the tip's.
    pub epoch: u64,
    /// The tip's timestamp, which the run used.
    pub timestamp_ms: u64,
}

/// The state and its digest, kept together under one lock.
struct Live {
    state: ChainState,
}

/// What admission and ordering read on every transaction — the tip and the senders' next
/// nonces — kept apart from the state's lock, which a block holds through its commit (fsync).
/// Updated only after a commit returned, so it never runs ahead of the disk.
struct Durable {
    tip: Tip,
    nonces: BTreeMap<Address, u64>,
}

impl Durable {
    fn of(state: &ChainState) -> Self {
        Durable { tip: Tip::of(&state.ledger), nonces: state.ledger.nonces.clone() }
    }
}

impl Tip {
    fn of(l: &LedgerState) -> Self {
        Tip {
            height: l.height,
            digest: l.block_digest,
            timestamp_ms: l.timestamp_ms,
            epoch: l.epoch,
            epoch_start_ms: l.epoch_start_ms,
        }
    }
}

/// A chain's state and storage. See the module docs.
pub struct Ledger {
    store: Store,
    live: RwLock<Live>,
    durable: RwLock<Durable>,
    genesis: GenesisConfig,
    params: ChainParams,
    options: LedgerOptions,
    events: broadcast::Sender<EventRecord>,
    metrics: Metrics,
    /// Set when a failed commit could not be followed by a recovery: memory may then be ahead
    /// of the disk, so no further block is accepted until the ledger is reopened.
    halted: AtomicBool,
    /// What opening repaired, in plain words.
    repairs: Vec<String>,
    /// The state dry runs execute on, apart from `live` (see `dry_run.rs`): `None` until the
    /// first dry run.
    dry_runs: Mutex<Option<ChainState>>,
    /// No other ledger opens this store while this one lives (`dir_lock`). Last, so that it is
    /// released after the store is closed.
    _lock: DataDirLock,
}

impl Ledger {
    /// What opening the store repaired, in plain words — a damaged snapshot passed over, the
    /// indexes rebuilt; empty when the store was whole. Meant to be logged once at start.
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// The genesis this chain started from.
    pub fn genesis(&self) -> &GenesisConfig {
        &self.genesis
    }

    /// The chain id (the genesis digest) and the epoch duration.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Counters for monitoring.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn read(&self) -> RwLockReadGuard<'_, Live> {
        // A panic while applying (a bug) poisons the lock and halts the chain ([`Ledger::write`]):
        // readers still see the last state the writer left, which no later block changes.
        self.live.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, to change it. A thread that panicked holding it may have left the state ahead
    /// of the disk or half-changed, so a poisoned lock halts the chain: this block and every
    /// later one get [`ChainError::Poisoned`], and the next start recovers from the disk.
    fn write(&self) -> Result<RwLockWriteGuard<'_, Live>, ChainError> {
        self.live.write().map_err(|_| {
            self.halted.store(true, Ordering::SeqCst);
            tracing::error!(
                "a thread panicked while applying a block; the chain halts until it is restarted"
            );
            ChainError::Poisoned("state")
        })
    }

    fn durable(&self) -> RwLockReadGuard<'_, Durable> {
        self.durable.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn durable_mut(&self) -> RwLockWriteGuard<'_, Durable> {
        self.durable.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
