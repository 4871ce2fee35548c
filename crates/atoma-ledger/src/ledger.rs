//! The application side of the chain: applies ordered blocks durably and answers reads.
//!
//! [`Ledger::apply_block`] is the only way state changes. It takes a block from whatever orders
//! blocks (today the [`crate::sequencer`], later a consensus engine), and is idempotent by height:
//! a block at or below the tip is accepted as a no-op if it is the block already applied there,
//! and refused if it is a different one. A new block is validated, executed, digested and written
//! in one redb commit; its events are published to subscribers after the commit returned.
//!
//! If the commit fails, the in-memory state is already ahead of the disk; the ledger then
//! recovers from the disk exactly as on start, so memory never holds a block the disk does not.
//!
//! Opening checks the store (docs/LEDGER.md, "Storage faults"): a damaged snapshot is passed
//! over for an older one, the blocks after it are replayed, and then it is deleted; damaged
//! indexes are rebuilt from the blocks; a damaged block that must be replayed is refused, naming
//! its height. What was repaired is in [`Ledger::repairs`] and the `storage_repairs` metric. The
//! open ledger holds the store's lock (`chain.lock`): a second opener gets `EDataDirInUse`.
//!
//! Readers share the state through a `RwLock`: a block holds the write lock from execution to the
//! end of its commit, so a reader never sees a state that is not durable. Blocks, transactions and
//! events are read from redb's own snapshots and need no lock.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, AtomaDb, Event};
use tokio::sync::broadcast;

use crate::block::{Block, BlockHeader, tx_context};
use crate::digest::Digest;
use crate::dir_lock::DataDirLock;
use crate::error::{ChainError, Damage, LedgerError};
use crate::events::{EventFilter, EventId, EventRecord, Page, effective_limit};
use crate::execution::{BlockEffects, VerifiedBlock, check_follows, execute_block};
use crate::genesis::GenesisConfig;
use crate::metrics::Metrics;
use crate::state::{ChainParams, ChainState, LedgerState, combined_digest};
use crate::store::{Commit, DAMAGED_STORE_HINT, Snapshot, Store, block_entries};
use crate::subscription::EventSubscription;
use crate::tx::{SignedTransaction, Transaction};
use atoma_types::{TxOutcome, TxStatus};

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
    /// No other ledger opens this store while this one lives (`dir_lock`). Last, so that it is
    /// released after the store is closed.
    _lock: DataDirLock,
}

impl Ledger {
    /// Opens the ledger stored at `path`, recovering to its last committed block.
    ///
    /// # Errors
    /// `EInvalidConfig` when the store has no genesis; `EDataDirInUse` when another ledger has
    /// it open; `EStorage`, `ECorruptStore` from recovery.
    pub fn open(path: &Path, options: LedgerOptions) -> Result<Self, ChainError> {
        Self::open_or_create(path, options, || {
            Err(ChainError::InvalidConfig("the store has no genesis".into()))
        })
    }

    /// Opens the ledger at `path`, first creating the store with the genesis that `make_genesis`
    /// returns if there is none yet.
    ///
    /// A new store is built at a temporary name beside `path` (`<name>.creating`), its genesis
    /// committed, and only then renamed to `path` (and the directory synced): a start killed
    /// half-way leaves no store, and the next start removes the leftover and begins again.
    ///
    /// The ledger holds an exclusive lock on `<stem>.lock` beside `path` (`chain.lock`) from
    /// before it touches any file until it is dropped, so that no other opener — another
    /// process, or this one again — can remove or create the store under it.
    ///
    /// # Errors
    /// `EDataDirInUse` when another ledger has this store open; `EInvalidConfig` for bad options
    /// or genesis; `EStorage`, `ECorruptStore` from storage; `EIo` for the lock file.
    pub fn open_or_create(
        path: &Path,
        options: LedgerOptions,
        make_genesis: impl FnOnce() -> Result<GenesisConfig, ChainError>,
    ) -> Result<Self, ChainError> {
        if options.snapshot_interval == 0 || options.event_buffer == 0 {
            return Err(ChainError::InvalidConfig("snapshot interval and event buffer must be ≥ 1".into()));
        }
        let lock = DataDirLock::acquire(path)?;
        let (store, genesis) = open_store(path, make_genesis)?;
        let params = genesis.params();
        let (state, mut repairs) = recover(&store, &params)?;
        store.delete_snapshots(&repairs.damaged_snapshots)?;
        let damage = repairs.index_damage.take().map(|d| d.to_string());
        if let Some(why) =
            damage.map_or_else(|| store.check_indexes(&state.ledger.nonces), |why| Ok(Some(why)))?
        {
            rebuild_indexes(&store, &state.ledger.nonces, &why)?;
            repairs
                .done
                .push(format!("the event and transaction indexes were rebuilt from the blocks ({why})"));
        }
        let metrics = Metrics::default();
        metrics.set_height(state.ledger.height);
        metrics.storage_repaired(repairs.done.len() as u64);
        let (events, _) = broadcast::channel(options.event_buffer);
        let durable = RwLock::new(Durable::of(&state));
        let live = RwLock::new(Live { state });
        let halted = AtomicBool::new(false);
        let repairs = repairs.done;
        Ok(Ledger {
            store,
            live,
            durable,
            genesis,
            params,
            options,
            events,
            metrics,
            halted,
            repairs,
            _lock: lock,
        })
    }

    /// What opening the store repaired, in plain words — a damaged snapshot passed over, the
    /// indexes rebuilt; empty when the store was whole. Meant to be logged once at start.
    pub fn repairs(&self) -> &[String] {
        &self.repairs
    }

    /// Applies the next block, or does nothing if this block is already applied.
    ///
    /// The transactions are verified first ([`VerifiedBlock::verify`]: signatures in batches, on
    /// every core), before the state is locked; a block with any invalid transaction is refused
    /// whole.
    ///
    /// # Errors
    /// `EInvalidBlock` when the block does not extend the tip (or conflicts with an applied
    /// block) or holds an invalid transaction; `EStorage` when the commit failed (the state is
    /// then recovered from disk); `EChainStopped` after a failed commit whose recovery failed
    /// too.
    pub fn apply_block(&self, block: &Block) -> Result<ApplyOutcome, ChainError> {
        // Redelivered blocks are common (at-least-once delivery): skip verifying them.
        if block.header.height <= self.tip().height {
            return self.check_applied(&block.header);
        }
        self.apply_verified(&VerifiedBlock::verify(block.clone(), &self.params)?)
    }

    /// [`Ledger::apply_block`] for a block whose transactions are already verified: checks it
    /// against the tip (height, parent, time, epoch, nonces), executes it, and commits it.
    ///
    /// # Errors
    /// As [`Ledger::apply_block`].
    pub fn apply_verified(&self, block: &VerifiedBlock) -> Result<ApplyOutcome, ChainError> {
        let started = Instant::now();
        let mut live = self.write()?;
        if self.halted.load(Ordering::SeqCst) {
            return Err(LedgerError::EChainStopped.into());
        }
        if block.header().height <= live.state.ledger.height {
            return self.check_applied(block.header());
        }
        check_follows(&live.state, block, &self.params)?;
        let (outcomes, nonces) = execute_block(&mut live.state, block);
        // Encoding and hashing the whole state costs time linear in its size, so it happens only
        // at snapshot heights, not on every block.
        let height = block.header().height;
        let snapshot = height.is_multiple_of(self.options.snapshot_interval).then(|| {
            let contract = live.state.db.canonical_bytes();
            let digest = combined_digest(&contract, &live.state.ledger);
            Snapshot { height, ledger: live.state.ledger.clone(), contract, digest }
        });
        let effects = BlockEffects {
            header: block.header().clone(),
            digest: block.digest(),
            outcomes,
            state_digest: snapshot.as_ref().map(|s| s.digest),
            nonces,
        };
        let commit_started = Instant::now();
        if let Err(error) = self.commit_block(block, &effects, snapshot) {
            return Err(match self.reload() {
                Ok((reloaded, halted)) => {
                    *self.durable_mut() = Durable::of(&reloaded.state);
                    *live = reloaded;
                    match halted {
                        None => error,
                        Some(why) => ChainError::Halted { why, cause: Box::new(error) },
                    }
                }
                Err(_) => {
                    self.halted.store(true, Ordering::SeqCst);
                    error
                }
            });
        }
        {
            let mut durable = self.durable_mut();
            durable.tip = Tip::of(&live.state.ledger);
            durable.nonces.extend(effects.nonces.iter().copied());
        }
        self.metrics.latencies(micros(commit_started), micros(started));
        self.publish(&effects);
        Ok(ApplyOutcome::Applied(effects))
    }

    fn check_applied(&self, header: &BlockHeader) -> Result<ApplyOutcome, ChainError> {
        let height = header.height;
        let stored = self
            .store
            .header(height)?
            .ok_or_else(|| ChainError::corrupt(format!("block {height} is missing")))?;
        if stored.digest() == header.digest() {
            Ok(ApplyOutcome::AlreadyApplied)
        } else {
            Err(LedgerError::EInvalidBlock(format!(
                "a different block is already applied at height {height}"
            ))
            .into())
        }
    }

    fn commit_block(
        &self,
        block: &VerifiedBlock,
        effects: &BlockEffects,
        snapshot: Option<Snapshot>,
    ) -> Result<(), ChainError> {
        let signed = block.transactions().iter().map(|t| Some(t.signed()));
        let transactions = signed.zip(&effects.outcomes).collect();
        self.store.commit(&Commit {
            header: block.header(),
            digest: effects.digest,
            transactions,
            state_digest: effects.state_digest,
            nonces: &effects.nonces,
            snapshot,
            genesis: None,
        })
    }

    /// The state after the last committed block, read again from the disk after a failed
    /// commit, as on open; damaged snapshots found on the way are deleted.
    ///
    /// If the held index entries cannot be gathered again because the indexes are damaged, the
    /// ledger stops taking blocks (`EChainStopped` from then on) and marks the indexes for a
    /// rebuild: the entries it holds were right up to the tip, but include the failed block's,
    /// which a next block at that height would make visible, and only an open can rebuild the
    /// indexes. Reads go on; the second value then says why the chain stopped, for the failed
    /// block's error.
    fn reload(&self) -> Result<(Live, Option<String>), ChainError> {
        let (state, repairs) = recover(&self.store, &self.params)?;
        self.store.delete_snapshots(&repairs.damaged_snapshots)?;
        let Some(why) = repairs.index_damage else { return Ok((Live { state }, None)) };
        self.halted.store(true, Ordering::SeqCst);
        let marked = self.store.mark_for_rebuild(&why.to_string()).is_ok();
        let stopped = format!(
            "recovering from a failed commit found the indexes damaged ({why}), so the chain stopped: \
             restart it to {} them",
            if marked { "rebuild" } else { "check" }
        );
        Ok((Live { state }, Some(stopped)))
    }

    fn publish(&self, effects: &BlockEffects) {
        let succeeded = effects.outcomes.iter().filter(|o| o.status.is_success()).count() as u64;
        let failed = effects.outcomes.len() as u64 - succeeded;
        let mut events = 0u64;
        let subscribed = self.events.receiver_count() > 0;
        for event in effects.outcomes.iter().flat_map(|o| &o.events) {
            events += 1;
            if subscribed {
                // A subscriber that went away since is not an error.
                let _ = self.events.send(event.clone());
            }
        }
        self.metrics.block_applied(effects.header.height, succeeded, failed, events);
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

    /// Runs `f` on the contract's current state (read-locked).
    pub fn with_state<R>(&self, f: impl FnOnce(&AtomaDb) -> R) -> R {
        f(&self.read().state.db)
    }

    /// Runs `f` on the whole current state, ledger part included (read-locked).
    pub fn with_chain_state<R>(&self, f: impl FnOnce(&ChainState) -> R) -> R {
        f(&self.read().state)
    }

    /// The last applied block's height, digest, time and epoch. Never waits for a commit.
    pub fn tip(&self) -> Tip {
        self.durable().tip
    }

    /// The sender's next nonce among applied blocks (not counting the mempool). Never waits for
    /// a commit.
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        self.durable().nonces.get(sender).copied().unwrap_or(0)
    }

    /// The combined digest of the contract's and the ledger's state after the tip.
    ///
    /// Encodes and hashes the whole state under the read lock: linear in the state's size, meant
    /// for tests, tools and the occasional RPC query, not for every block.
    pub fn state_digest(&self) -> Digest {
        self.read().state.digest()
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

    /// A block with its transactions.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        self.store.block(height)
    }

    /// A block's header.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, ChainError> {
        self.store.header(height)
    }

    /// The height of the block with this digest.
    ///
    /// # Errors
    /// `EStorage`.
    pub fn block_height(&self, digest: &Digest) -> Result<Option<u64>, ChainError> {
        self.store.height_of(digest)
    }

    /// The tip block.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn latest_block(&self) -> Result<Block, ChainError> {
        let height = self.tip().height;
        self.store.block(height)?.ok_or_else(|| ChainError::corrupt(format!("block {height} is missing")))
    }

    /// A transaction, its status and its events.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn transaction(&self, digest: &Digest) -> Result<Option<TransactionResponse>, ChainError> {
        let Some((record, events)) = self.store.transaction(digest)? else { return Ok(None) };
        let transaction = record.signed.as_ref().map(SignedTransaction::decode_transaction).transpose()?;
        let outcome = TxOutcome {
            digest: *digest,
            sender: record.sender,
            height: record.height,
            index: record.index,
            epoch: record.epoch,
            timestamp_ms: record.timestamp_ms,
            status: record.status()?,
            events,
        };
        Ok(Some(TransactionResponse { signed: record.signed, transaction, outcome }))
    }

    /// One page of events matching `filter`, strictly after `cursor` (before it when
    /// `descending`), at most `limit` (default and cap in [`crate::events`]).
    ///
    /// # Errors
    /// `EInvalidCursor` when the cursor names an unknown transaction; `EStorage`, `ECorruptStore`.
    pub fn query_events(
        &self,
        filter: &EventFilter,
        cursor: Option<EventId>,
        limit: Option<usize>,
        descending: bool,
    ) -> Result<Page<EventRecord, EventId>, ChainError> {
        self.store.query_events(filter, cursor, effective_limit(limit), descending)
    }

    /// Live events matching `filter`, from now on, in commit order.
    pub fn subscribe(&self, filter: EventFilter) -> EventSubscription {
        EventSubscription::new(self.events.subscribe(), filter)
    }

    /// Executes a transaction against the current state and undoes it: the contract journals
    /// every write and rolls the call back, so a dry run costs one call, not a copy of the state.
    /// It holds the write lock for that one call.
    ///
    /// The nonce is not checked (a dry run may come before the nonce is known), and the randomness
    /// differs from what the real block will give, so a sampled node may differ.
    ///
    /// # Errors
    /// The transaction's own verification errors (size, encoding, chain id, signature).
    pub fn dry_run(&self, signed: SignedTransaction) -> Result<DryRunOutcome, ChainError> {
        let tx = signed.verify(&self.params.chain_id)?;
        let digest = tx.digest();
        let mut live = self.write()?;
        let tip = &live.state.ledger;
        let (epoch, timestamp_ms) = (tip.epoch, tip.timestamp_ms);
        let block_seed = blake2b256(&[b"atoma-dry-run", &tip.block_digest.0]);
        let ctx = tx_context(epoch, timestamp_ms, &block_seed, tx.sender(), &digest);
        let (status, events) = match live.state.db.dry_run(&ctx, &tx.transaction().call) {
            Ok(events) => (TxStatus::Success, events),
            Err(e) => (TxStatus::Failure(e), Vec::new()),
        };
        Ok(DryRunOutcome { digest, status, events, epoch, timestamp_ms })
    }

    /// Replays every stored block from the genesis snapshot and returns the final state digest,
    /// which must equal [`Ledger::state_digest`] (SPEC §12). Costs a full replay.
    ///
    /// # Errors
    /// `ECorruptStore` when a block does not replay to its recorded digest; `EStorage`.
    pub fn replay_from_genesis(&self) -> Result<Digest, ChainError> {
        let (_, genesis) = restore_snapshot(&self.store, 0, &mut Vec::new())?;
        let tip = self.store.tip_height()?;
        let state = replay(&self.store, &self.params, genesis, 0, tip, None, &mut |_, _, _| {})?;
        Ok(combined_digest(&state.db.canonical_bytes(), &state.ledger))
    }

    /// The heights that currently hold a state snapshot, ascending (for tests and tools).
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn snapshot_heights(&self) -> Result<Vec<u64>, ChainError> {
        self.store.snapshot_heights()
    }

    /// The store, for tests that change how it batches.
    #[cfg(test)]
    pub(crate) fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The next nonce the store records for `address` — the `nonces` table, or the entry of a
    /// block whose batched indexes are not written yet — equal to [`Ledger::next_nonce`].
    ///
    /// # Errors
    /// `EStorage`.
    pub fn stored_nonce(&self, address: &Address) -> Result<u64, ChainError> {
        self.store.stored_nonce(address)
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Writes the genesis block, the genesis events and the genesis snapshot in one commit.
fn write_genesis(store: &Store, genesis: &GenesisConfig) -> Result<(), ChainError> {
    let (state, events) = genesis.build_state()?;
    let header = genesis.header();
    let digest = genesis.digest();
    let records = (0u64..)
        .zip(events)
        .map(|(event_seq, event)| EventRecord {
            id: EventId { tx_digest: digest, event_seq },
            height: 0,
            tx_index: 0,
            sender: genesis.admin,
            timestamp_ms: genesis.timestamp_ms,
            event,
        })
        .collect();
    let outcome = TxOutcome {
        digest,
        sender: genesis.admin,
        height: 0,
        index: 0,
        epoch: 0,
        timestamp_ms: genesis.timestamp_ms,
        status: TxStatus::Success,
        events: records,
    };
    let contract = state.db.canonical_bytes();
    let state_digest = combined_digest(&contract, &state.ledger);
    let snapshot = Snapshot { height: 0, ledger: state.ledger, contract, digest: state_digest };
    store.commit(&Commit {
        header: &header,
        digest: header.digest(),
        transactions: vec![(None, &outcome)],
        state_digest: Some(state_digest),
        nonces: &[],
        snapshot: Some(snapshot),
        genesis: Some(genesis),
    })
}

/// The file a new store is built in before it is renamed to `path`.
fn creating_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    path.with_file_name(name)
}

/// Opens the store at `path` with its genesis, first creating both if there is no store.
fn open_store(
    path: &Path,
    make_genesis: impl FnOnce() -> Result<GenesisConfig, ChainError>,
) -> Result<(Store, GenesisConfig), ChainError> {
    let io = |e: std::io::Error| ChainError::storage(path.display().to_string(), e);
    let creating = creating_path(path);
    // What a start killed while creating the store left: never renamed, so never acknowledged.
    match std::fs::remove_file(&creating) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut make_genesis = Some(make_genesis);
    let mut new_genesis = || {
        make_genesis.take().map_or_else(|| Err(ChainError::InvalidConfig("no genesis".into())), |make| make())
    };
    if !path.try_exists().map_err(io)? {
        let genesis = new_genesis()?;
        let created = create_store(&creating, &genesis).and_then(|()| {
            std::fs::rename(&creating, path).map_err(io)?;
            sync_directory(path)
        });
        if let Err(e) = created {
            let _ = std::fs::remove_file(&creating);
            return Err(e);
        }
    }
    let store = Store::open(path)?;
    let genesis = match store.genesis()? {
        Some(genesis) => genesis,
        // A store created before this one was made atomic could hold no genesis yet.
        None => {
            let genesis = new_genesis()?;
            write_genesis(&store, &genesis)?;
            genesis
        }
    };
    Ok((store, genesis))
}

/// Writes the indexes again from the blocks, found damaged for `why`. A block that is not whole
/// makes them impossible to rebuild (`ECorruptStore`, saying what to do); any other failure — a
/// full disk, an I/O error — is passed on as it is: the store is not known to be damaged.
pub(crate) fn rebuild_indexes(
    store: &Store,
    nonces: &BTreeMap<Address, u64>,
    why: &str,
) -> Result<(), ChainError> {
    store.rebuild_indexes(nonces).map_err(|e| match e {
        ChainError::Corrupt(e) => ChainError::corrupt(format!(
            "{}: the indexes are damaged ({why}) and cannot be rebuilt: {e}; {DAMAGED_STORE_HINT}",
            store.path().display()
        )),
        other => other,
    })
}

fn create_store(path: &Path, genesis: &GenesisConfig) -> Result<(), ChainError> {
    let store = Store::create(path)?;
    write_genesis(&store, genesis)
}

/// Makes a rename in `path`'s directory durable.
fn sync_directory(path: &Path) -> Result<(), ChainError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| ChainError::storage(format!("syncing the directory {}", dir.display()), e);
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    #[cfg(not(unix))]
    let _ = io;
    Ok(())
}

/// What recovery repaired, and what is left for the caller to repair.
#[derive(Default)]
struct Repairs {
    done: Vec<String>,
    /// Why the held index entries could not be gathered from the blocks.
    index_damage: Option<Damage>,
    /// The heights of the damaged snapshots passed over, to be deleted: the replay vouched for
    /// the blocks up to the tip, and kept they would be passed over at every start and could
    /// outlive a whole snapshot when old ones are pruned.
    damaged_snapshots: Vec<u64>,
}

/// The state after the last committed block: the newest usable snapshot plus the blocks after
/// it. Also gathers the store's held index entries: from the stored blocks up to the snapshot,
/// and from the replayed blocks' outcomes after it.
fn recover(store: &Store, params: &ChainParams) -> Result<(ChainState, Repairs), ChainError> {
    let mut repairs = Repairs::default();
    let (snapshot, state) = usable_snapshot(store, &mut repairs)?;
    let tip = store.tip_height()?;
    let indexed = match store.rebuild_unindexed(snapshot.height) {
        Ok(indexed) => Some(indexed),
        Err(ChainError::Corrupt(why)) => {
            repairs.index_damage = Some(why);
            None
        }
        Err(e) => return Err(e),
    };
    let mut damaged_digests = DamagedDigests::new();
    let on_replayed = &mut |height, outcomes: &[TxOutcome], nonces: &[(Address, u64)]| {
        if indexed.is_some_and(|indexed| height > indexed) {
            store.hold(&block_entries(outcomes, nonces));
        }
    };
    let state = replay(store, params, state, snapshot.height, tip, Some(&mut damaged_digests), on_replayed)
        .map_err(|e| match e {
        ChainError::Corrupt(why) => ChainError::corrupt(format!(
            "{}: {why}. The blocks after snapshot {} (the newest usable one) must be replayed, and a \
             single validator has no other copy of them; {DAMAGED_STORE_HINT}",
            store.path().display(),
            snapshot.height
        )),
        other => other,
    })?;
    // The tip's header is replayed only when a snapshot is older than it.
    if store.header(tip)?.is_none_or(|h| h.digest() != state.ledger.block_digest) {
        return Err(ChainError::corrupt(format!(
            "{}: the header of block {tip}, the tip, is not the block its snapshot recorded; {DAMAGED_STORE_HINT}",
            store.path().display()
        )));
    }
    // A recorded digest is a copy of the state after its block; the replay that reached the tip
    // from a whole snapshot through checked blocks vouches for the state it passed there.
    for (height, digest, why) in damaged_digests {
        store.rewrite_state_digest(height, &digest)?;
        repairs.done.push(format!("{why}; it was written again from the replay, which passed that height"));
    }
    Ok((state, repairs))
}

/// The newest snapshot that is whole, matches its own digest and the state digest recorded at
/// its height, restored; each newer one passed over is said in `repairs` and listed for deletion.
fn usable_snapshot(store: &Store, repairs: &mut Repairs) -> Result<(Snapshot, ChainState), ChainError> {
    let mut passed_over = Vec::new();
    for height in store.snapshot_heights()?.into_iter().rev() {
        match restore_snapshot(store, height, &mut repairs.done) {
            Ok((snapshot, state)) => {
                if !passed_over.is_empty() {
                    let deleted = match repairs.damaged_snapshots.as_slice() {
                        [one] => format!("the damaged snapshot at height {one} was deleted"),
                        many => format!(
                            "the damaged snapshots at heights {} were deleted",
                            many.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    repairs.done.push(format!(
                        "recovered from the snapshot at height {height} and replayed the blocks after it, \
                         because {}; {deleted}",
                        passed_over.join("; ")
                    ));
                }
                return Ok((snapshot, state));
            }
            Err(ChainError::Corrupt(why)) => {
                passed_over.push(why.to_string());
                repairs.damaged_snapshots.push(height);
            }
            Err(e) => return Err(e),
        }
    }
    Err(ChainError::corrupt(format!(
        "{}: no snapshot is usable, not even the genesis one ({}); {DAMAGED_STORE_HINT}",
        store.path().display(),
        if passed_over.is_empty() { "there are none".into() } else { passed_over.join("; ") }
    )))
}

/// The snapshot at `height`, restored and checked. The state digest recorded at its height is a
/// second copy of the snapshot's own: if that copy is damaged but the snapshot is whole (its
/// checksum and its digest hold), the copy is written again and `repairs` says so.
fn restore_snapshot(
    store: &Store,
    height: u64,
    repairs: &mut Vec<String>,
) -> Result<(Snapshot, ChainState), ChainError> {
    let snapshot = store
        .snapshot_at(height)?
        .ok_or_else(|| ChainError::corrupt(format!("the snapshot at height {height} is missing")))?;
    let state = snapshot.restore()?;
    match store.state_digest_at(height) {
        Ok(recorded) if recorded == Some(snapshot.digest) => {}
        Ok(_) => {
            return Err(ChainError::corrupt(format!(
                "the snapshot at height {height} disagrees with the state digest recorded there"
            )));
        }
        Err(ChainError::Corrupt(why)) => {
            store.rewrite_state_digest(height, &snapshot.digest)?;
            repairs.push(format!("{why}; it was written again from the whole snapshot at that height"));
        }
        Err(e) => return Err(e),
    }
    Ok((snapshot, state))
}

/// Blocks each reader thread reads ahead of execution during a replay.
const REPLAY_READ_AHEAD: usize = 4;
/// Threads reading and decoding blocks during a replay (alternate heights).
const REPLAY_READERS: u64 = 2;

/// What a replay hands on for each block: its height, outcomes and senders' new nonces.
type OnReplayed<'a> = dyn FnMut(u64, &[TxOutcome], &[(Address, u64)]) + 'a;

/// Re-executes the stored blocks after `from` up to `tip` on `state` without writing them,
/// checking the state digest wherever one was recorded (at snapshot heights). Reader threads
/// read and decode the blocks (and hash their transactions) while this one executes them in
/// height order.
fn replay(
    store: &Store,
    params: &ChainParams,
    mut state: ChainState,
    from: u64,
    tip: u64,
    mut damaged_digests: Option<&mut DamagedDigests>,
    on_replayed: &mut OnReplayed<'_>,
) -> Result<ChainState, ChainError> {
    let first = from.saturating_add(1);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..REPLAY_READERS)
            .map(|reader| {
                let (blocks, ready) = std::sync::mpsc::sync_channel(REPLAY_READ_AHEAD);
                let heights = (first.saturating_add(reader)..=tip).step_by(REPLAY_READERS as usize);
                scope.spawn(move || {
                    for height in heights {
                        let block = read_stored_block(store, params, height);
                        let failed = block.is_err();
                        // The executor stops listening when it fails.
                        if blocks.send(block).is_err() || failed {
                            break;
                        }
                    }
                });
                ready
            })
            .collect();
        for (height, ready) in (first..=tip).zip(readers.iter().cycle()) {
            let stopped = || ChainError::corrupt(format!("block {height} was not read"));
            let (block, recorded) = ready.recv().map_err(|_| stopped())??;
            check_follows(&state, &block, params)
                .map_err(|e| ChainError::corrupt(format!("block {height}: {e}")))?;
            let (outcomes, nonces) = execute_block(&mut state, &block);
            // Digests are recorded at snapshot heights only.
            match recorded {
                Recorded::Digest(Some(recorded)) if state.digest() != recorded => {
                    return Err(ChainError::corrupt(format!("block {height} replays to a different state")));
                }
                Recorded::Digest(_) => {}
                Recorded::Damaged(why) => match damaged_digests.as_deref_mut() {
                    Some(damaged) => damaged.push((height, state.digest(), why)),
                    None => return Err(ChainError::Corrupt(why)),
                },
            }
            on_replayed(height, &outcomes, &nonces);
        }
        Ok(state)
    })
}

/// A stored block for replay, with the state digest recorded after it. Stored blocks were
/// verified before they were committed; their transactions must still decode and be the ones
/// the header names.
fn read_stored_block(
    store: &Store,
    params: &ChainParams,
    height: u64,
) -> Result<(VerifiedBlock, Recorded), ChainError> {
    let corrupt = |what: String| ChainError::corrupt(what);
    let block = store.block(height)?.ok_or_else(|| corrupt(format!("block {height} is missing")))?;
    let block =
        VerifiedBlock::from_own_store(block, params).map_err(|e| corrupt(format!("block {height}: {e}")))?;
    let recorded = match store.state_digest_at(height) {
        Ok(digest) => Recorded::Digest(digest),
        Err(ChainError::Corrupt(why)) => Recorded::Damaged(why),
        Err(e) => return Err(e),
    };
    Ok((block, recorded))
}

/// The state digest recorded after a stored block (at snapshot heights only).
enum Recorded {
    Digest(Option<Digest>),
    /// The record is damaged (why): nothing to check the replay against at this height.
    Damaged(Damage),
}

/// Recorded state digests a replay found damaged: the height, the digest the replay reached
/// there (which a caller that trusts the replay may write again), and why.
type DamagedDigests = Vec<(u64, Digest, Damage)>;
