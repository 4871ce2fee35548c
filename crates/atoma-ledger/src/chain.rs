//! A running chain: the [`Ledger`], a [`Sequencer`] and a block-producer thread, behind a
//! cloneable [`ChainHandle`] for the RPC server and the CLI.
//!
//! [`Chain::open`] sets up the data directory (creating a local network's keys and genesis on
//! first run), recovers the ledger and starts one thread that turns the mempool into blocks:
//! whenever transactions arrive (or every `block_time_ms` when set, empty blocks included), and at
//! once on "advance epoch" / "advance clock". Transaction checks that need no state run on the
//! caller's task; the nonce check and the mempool bound happen under the mempool's lock, so
//! concurrent submitters of one sender are ordered consistently. A submission whose nonce is a
//! little ahead is held for [`ChainConfig::nonce_hold_ms`] waiting for the missing ones (see
//! [`Sequencer::admit_or_hold`]).
//!
//! The producer is woken through `Signals`: admissions set one flag however many there are,
//! and time controls have a short queue of their own, so wake-ups can never crowd a control out.
//! Between two blocks the producer serves every waiting control.
//!
//! [`ChainHandle::submit`] resolves only after the transaction's block was committed to disk
//! (SPEC §12). Dropping the future does not withdraw the transaction.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atoma_contract::{Address, AtomaDb, Call, ObjectId};
use tokio::sync::oneshot;

use crate::admission::{AdmissionQueue, AdmissionReply, run_verifier};
use crate::batch::verify_transactions;
use crate::block::{Block, BlockHeader, MAX_BLOCK_TRANSACTIONS};
use crate::digest::Digest;
use crate::dir_lock::DataDirLock;
use crate::error::{ChainError, LedgerError};
use crate::events::{EventFilter, EventId, EventRecord, Page};
use crate::genesis::{FAUCET_ALIAS, GenesisConfig, LocalKeys, LocalNetworkOptions, VALIDATOR_ALIAS};
use crate::keystore::{KEYSTORE_FILE, Keystore};
use crate::ledger::{ApplyOutcome, DryRunOutcome, Ledger, LedgerOptions, TransactionResponse};
use crate::metrics::MetricsSnapshot;
use crate::sequencer::{Admission, Sequencer};
use crate::subscription::EventSubscription;
use crate::tx::{Keypair, SignedTransaction, Transaction, VerifiedTransaction};
use atoma_types::TxOutcome;

/// The chain database's file name inside the data directory.
pub const CHAIN_DB_FILE: &str = "chain.redb";
/// The default mempool bound.
pub const DEFAULT_MEMPOOL_CAPACITY: usize = 10_000;
/// The longest block time accepted: one day.
pub const MAX_BLOCK_TIME_MS: u64 = 86_400_000;
/// Time controls waiting for the producer before more are refused as busy (`EMempoolFull`).
/// Wake-ups take no place here.
pub const CONTROL_QUEUE: usize = 64;
/// How long a submission whose nonce is a little ahead waits for the missing ones by default.
pub const DEFAULT_NONCE_HOLD_MS: u64 = 1_000;
/// The longest nonce hold accepted.
pub const MAX_NONCE_HOLD_MS: u64 = 60_000;

/// How to run a chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainConfig {
    /// Holds [`CHAIN_DB_FILE`] and [`KEYSTORE_FILE`].
    pub data_dir: PathBuf,
    /// Wipe the chain database (and the generated keys) and start from a new genesis.
    pub fresh: bool,
    /// Offer the faucet and time controls (SPEC §13).
    pub local_network: bool,
    /// The genesis of a new local network; used only when the data directory has no chain.
    pub genesis: LocalNetworkOptions,
    /// Produce a block every this many milliseconds (empty or not) instead of whenever
    /// transactions arrive; 1 to [`MAX_BLOCK_TIME_MS`].
    pub block_time_ms: Option<u64>,
    /// Transactions the mempool holds before refusing with `EMempoolFull`.
    pub mempool_capacity: usize,
    /// Transactions per block, at most [`MAX_BLOCK_TRANSACTIONS`].
    pub max_block_transactions: usize,
    /// How long a submission ([`ChainHandle::submit`]) whose nonce is up to
    /// [`crate::sequencer::NONCE_HOLD_WINDOW`] ahead of its sender's next one is held waiting for
    /// the missing nonces before it is refused with `ENonceFuture`; 0 refuses it at once. At most
    /// [`MAX_NONCE_HOLD_MS`].
    pub nonce_hold_ms: u64,
    /// Snapshots and the event buffer.
    pub ledger: LedgerOptions,
}

impl ChainConfig {
    /// A local network in `data_dir` with every default.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        ChainConfig {
            data_dir: data_dir.into(),
            fresh: false,
            local_network: true,
            genesis: LocalNetworkOptions::default(),
            block_time_ms: None,
            mempool_capacity: DEFAULT_MEMPOOL_CAPACITY,
            max_block_transactions: MAX_BLOCK_TRANSACTIONS,
            nonce_hold_ms: DEFAULT_NONCE_HOLD_MS,
            ledger: LedgerOptions::default(),
        }
    }

    fn validate(&self) -> Result<(), ChainError> {
        let bad = |what: &str| Err(ChainError::InvalidConfig(what.to_string()));
        if self.mempool_capacity == 0 {
            return bad("the mempool capacity must be ≥ 1");
        }
        if !(1..=MAX_BLOCK_TRANSACTIONS).contains(&self.max_block_transactions) {
            return bad("max_block_transactions is out of range");
        }
        if self.block_time_ms.is_some_and(|t| !(1..=MAX_BLOCK_TIME_MS).contains(&t)) {
            return bad("the block time must be 1 ms to one day");
        }
        if self.nonce_hold_ms > MAX_NONCE_HOLD_MS {
            return bad("the nonce hold must be at most 60 s");
        }
        Ok(())
    }
}

/// What a client wants to know about the chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainInfo {
    /// The genesis digest, which transactions must name.
    pub chain_id: Digest,
    /// Equal to `chain_id`.
    pub genesis_digest: Digest,
    /// The tip's height.
    pub height: u64,
    /// The tip's epoch.
    pub epoch: u64,
    /// The tip's timestamp.
    pub timestamp_ms: u64,
    /// The tip's digest.
    pub latest_block_digest: Digest,
    /// The address of the validator that orders blocks.
    pub validator: Address,
    /// Whether the faucet and time controls are on.
    pub local_network: bool,
    /// How long an epoch lasts at least.
    pub epoch_duration_ms: u64,
    /// The contract's package id (event types are `<package_id>::db::<Name>`).
    pub package_id: ObjectId,
    /// The contract's db object id.
    pub db_id: ObjectId,
}

type TxReply = oneshot::Sender<Result<TxOutcome, LedgerError>>;
type BlockReply = oneshot::Sender<Result<BlockHeader, LedgerError>>;

/// A time control for the producer thread.
enum Control {
    /// Put the next block in the next epoch, now.
    AdvanceEpoch(BlockReply),
    /// Move the clock forward and make a block, now.
    AdvanceClock(u64, BlockReply),
}

impl Control {
    fn refuse(self, error: LedgerError) {
        let (Control::AdvanceEpoch(reply) | Control::AdvanceClock(_, reply)) = self;
        let _ = reply.send(Err(error));
    }
}

/// How the producer thread is woken: a flag for "transactions arrived" (set by any number of
/// admissions, taken once), a bounded queue of time controls, and a stop flag.
struct Signals {
    state: Mutex<SignalState>,
    changed: Condvar,
}

struct SignalState {
    woken: bool,
    controls: VecDeque<Control>,
    stop: bool,
}

impl Signals {
    fn new() -> Self {
        let state = SignalState { woken: false, controls: VecDeque::new(), stop: false };
        Signals { state: Mutex::new(state), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, SignalState> {
        // Every statement leaves the state valid; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Transactions arrived (or a hold began): the producer looks at the mempool again.
    fn wake(&self) {
        let mut state = self.lock();
        if !state.woken {
            state.woken = true;
            self.changed.notify_one();
        }
    }

    /// Queues a time control.
    ///
    /// # Errors
    /// `EChainStopped` once stopped; `EMempoolFull` when [`CONTROL_QUEUE`] controls wait.
    fn control(&self, control: Control) -> Result<(), LedgerError> {
        let mut state = self.lock();
        if state.stop {
            return Err(LedgerError::EChainStopped);
        }
        if state.controls.len() >= CONTROL_QUEUE {
            return Err(LedgerError::EMempoolFull);
        }
        state.controls.push_back(control);
        self.changed.notify_one();
        Ok(())
    }

    /// Tells the producer to stop; controls still waiting are refused by it.
    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_one();
    }

    /// Waits until woken, a control or the stop arrives, or `deadline` passes; at once when
    /// `busy`. Returns the waiting controls (and clears the wake-up), or `None` once stopped.
    fn wait(&self, busy: bool, deadline: Option<Instant>) -> Option<Vec<Control>> {
        let mut state = self.lock();
        loop {
            if state.stop {
                return None;
            }
            if busy || state.woken || !state.controls.is_empty() {
                break;
            }
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        state.woken = false;
        Some(state.controls.drain(..).collect())
    }

    /// Takes the controls left after the stop.
    fn take_controls(&self) -> Vec<Control> {
        self.lock().controls.drain(..).collect()
    }
}

/// The mempool and who waits for which transaction.
struct Pool {
    sequencer: Sequencer,
    /// Transactions in the mempool, by digest: answered when their block is committed.
    waiters: BTreeMap<Digest, TxReply>,
    /// Held submissions, by digest: answered when released (admitted) or refused.
    held: BTreeMap<Digest, AdmissionReply>,
    stopped: bool,
}

/// What admitting a transaction needs: the ledger's nonces, the mempool, and a way to wake the
/// producer. Shared by the handle and the verifier thread.
#[derive(Clone)]
pub(crate) struct Gate {
    ledger: Arc<Ledger>,
    pool: Arc<Mutex<Pool>>,
    signals: Arc<Signals>,
    /// How long a submission with a nonce a little ahead is held; `None` refuses it at once.
    hold: Option<Duration>,
}

struct Inner {
    ledger: Arc<Ledger>,
    pool: Arc<Mutex<Pool>>,
    gate: Gate,
    admission: Arc<AdmissionQueue>,
    faucet: Option<Keypair>,
    validator: Address,
    local_network: bool,
    keystore_path: PathBuf,
}

impl Drop for Inner {
    /// The last handle is gone: the verifier thread and the producer end.
    fn drop(&mut self) {
        self.admission.close();
        self.gate.signals.stop();
    }
}

/// A transaction accepted into the mempool; resolves when its block is committed.
#[derive(Debug)]
pub struct PendingTransaction {
    digest: Digest,
    receiver: oneshot::Receiver<Result<TxOutcome, LedgerError>>,
}

impl PendingTransaction {
    /// The transaction's digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Waits until the transaction's block is durably committed.
    ///
    /// # Errors
    /// `EStorage` when its block could not be stored; `EChainStopped` when the chain shut down
    /// before ordering it.
    pub async fn outcome(self) -> Result<TxOutcome, LedgerError> {
        self.receiver.await.map_err(|_| LedgerError::EChainStopped)?
    }
}

/// The entry point: see [`Chain::open`].
pub struct Chain;

/// The chain's threads: the block producer and the verifier of submissions. They end after
/// [`ChainHandle::shutdown`] or when every handle is gone.
pub struct ChainTask {
    thread: JoinHandle<()>,
    verifier: JoinHandle<()>,
}

impl ChainTask {
    /// Waits for the chain's threads to end.
    ///
    /// # Errors
    /// [`ChainError::Poisoned`] when a thread panicked (a bug).
    pub fn join(self) -> Result<(), ChainError> {
        let verifier = self.verifier.join();
        self.thread.join().and(verifier).map_err(|_| ChainError::Poisoned("block producer's or verifier's"))
    }
}

/// A cheap, cloneable handle on a running chain.
#[derive(Clone)]
pub struct ChainHandle {
    inner: Arc<Inner>,
}

impl Chain {
    /// Waits until nothing holds the chain in `data_dir` — no ledger of this process or of
    /// another — or `timeout` has passed. An in-process restart needs it: after
    /// [`ChainHandle::shutdown`] and [`ChainTask::join`] the ledger lives until its last handle is
    /// dropped, and an RPC server's connection tasks may still hold one for a moment after the
    /// server has stopped.
    ///
    /// # Errors
    /// `EDataDirInUse` when the chain is still held after `timeout`; `EIo` for the lock file.
    pub fn wait_until_released(data_dir: &Path, timeout: Duration) -> Result<(), ChainError> {
        let store = data_dir.join(CHAIN_DB_FILE);
        let deadline = Instant::now() + timeout;
        loop {
            match DataDirLock::acquire(&store) {
                Ok(_released) => return Ok(()),
                Err(ChainError::DataDirInUse { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens (or on first run creates) the chain in `config.data_dir` and starts producing blocks.
    ///
    /// # Errors
    /// `EInvalidConfig` for bad options or a keystore without this chain's validator key; `EIo`
    /// for the data directory; `EDataDirInUse` when another process has this chain open (then
    /// `fresh` deletes nothing); `EStorage` / `ECorruptStore` from recovery.
    pub fn open(config: ChainConfig) -> Result<(ChainHandle, ChainTask), ChainError> {
        config.validate()?;
        let io = |e: std::io::Error| ChainError::io(&config.data_dir, e);
        std::fs::create_dir_all(&config.data_dir).map_err(io)?;
        let db_path = config.data_dir.join(CHAIN_DB_FILE);
        let keystore_path = config.data_dir.join(KEYSTORE_FILE);
        if config.fresh && db_path.exists() {
            // Never delete a store another process is running: its lock is taken first. A start
            // that slips in before the ledger takes the lock again makes the open below fail with
            // `EDataDirInUse`, deleting nothing of it.
            let lock = DataDirLock::acquire(&db_path)?;
            std::fs::remove_file(&db_path).map_err(io)?;
            drop(lock);
        }
        let ledger = Arc::new(Ledger::open_or_create(&db_path, config.ledger, || {
            new_local_genesis(&config.genesis, &keystore_path)
        })?);
        let keystore = Keystore::load(&keystore_path)?;
        let validator = keystore
            .keypair(VALIDATOR_ALIAS)?
            .filter(|k| k.public_key() == ledger.genesis().validator_public_key)
            .ok_or_else(|| {
                ChainError::InvalidConfig("the keystore lacks this chain's validator key".into())
            })?;
        let validator_address = validator.address();
        let mut sequencer = Sequencer::new(
            validator,
            ledger.genesis().epoch_duration_ms,
            config.mempool_capacity,
            config.max_block_transactions,
        );
        // Continue the clock from the last block, so that time moved by `advance_clock` before a
        // restart is not lost while the machine's clock catches up.
        sequencer.set_clock_offset(ledger.tip().timestamp_ms.saturating_sub(now_ms()));
        let pool = Arc::new(Mutex::new(Pool {
            sequencer,
            waiters: BTreeMap::new(),
            held: BTreeMap::new(),
            stopped: false,
        }));
        let signals = Arc::new(Signals::new());
        let producer = Producer {
            ledger: Arc::clone(&ledger),
            pool: Arc::clone(&pool),
            signals: Arc::clone(&signals),
            block_time: config.block_time_ms.map(Duration::from_millis),
        };
        let hold = (config.nonce_hold_ms > 0).then(|| Duration::from_millis(config.nonce_hold_ms));
        let gate = Gate { ledger: Arc::clone(&ledger), pool: Arc::clone(&pool), signals, hold };
        let admission = Arc::new(AdmissionQueue::new(config.mempool_capacity));
        let spawn_error = |e: std::io::Error| ChainError::storage("cannot start the chain's threads", e);
        let thread = std::thread::Builder::new()
            .name("atoma-sequencer".into())
            .spawn(move || producer.run())
            .map_err(spawn_error)?;
        let verifier = {
            let (queue, gate) = (Arc::clone(&admission), gate.clone());
            std::thread::Builder::new()
                .name("atoma-verifier".into())
                .spawn(move || run_verifier(&queue, &gate))
                .map_err(spawn_error)?
        };
        let inner = Inner {
            ledger,
            pool,
            gate,
            admission,
            faucet: keystore.keypair(FAUCET_ALIAS)?,
            validator: validator_address,
            local_network: config.local_network,
            keystore_path,
        };
        Ok((ChainHandle { inner: Arc::new(inner) }, ChainTask { thread, verifier }))
    }
}

/// Creates a local network's keys, writes them to the keystore and returns its genesis.
fn new_local_genesis(
    options: &LocalNetworkOptions,
    keystore_path: &Path,
) -> Result<GenesisConfig, ChainError> {
    let keys = LocalKeys::generate(options.accounts)?;
    keys.save(keystore_path)?;
    Ok(keys.genesis(options, now_ms()))
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    // The pool's invariants hold between statements; a panic elsewhere cannot break them.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ChainHandle {
    /// The ledger underneath: blocks, state, events, and `apply_block` for another orderer.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    /// Submits a transaction and waits until its block is durably committed.
    ///
    /// # Errors
    /// Before execution, with nothing changed: `ETransactionTooLarge`, `EMalformedTransaction`,
    /// `EWrongChainId`, `EBadSignature`, `ENonceUsed`, `ENonceFuture`, `EMempoolFull`,
    /// `EChainStopped`. After ordering: `EStorage` if the block could not be stored. A contract
    /// error is not an `Err`: it is the outcome's [`crate::TxStatus::Failure`].
    ///
    /// The transaction is verified on the chain's verifier thread together with every other
    /// submission waiting (signatures in batches, on every core), then admitted; submissions are
    /// admitted in the order their futures were first polled. A transaction whose nonce is up to
    /// [`crate::sequencer::NONCE_HOLD_WINDOW`] ahead of its sender's next nonce is held for
    /// [`ChainConfig::nonce_hold_ms`] and admitted, in nonce order, as soon as the missing nonces
    /// are; if they do not come in time (or no room is left to hold it) it gets `ENonceFuture`.
    pub async fn submit(&self, signed: SignedTransaction) -> Result<TxOutcome, LedgerError> {
        let admitted = match self.inner.admission.push(signed) {
            Ok(receiver) => receiver.await.unwrap_or(Err(LedgerError::EChainStopped)),
            Err(error) => Err(error),
        };
        self.counted(admitted)?.outcome().await
    }

    /// Checks a transaction and accepts it into the mempool now, without waiting for its block.
    /// Transactions enqueued one after another are ordered in that order, so a client can
    /// pipeline nonces n, n+1, … and await the outcomes afterwards. The signature is checked on
    /// the caller's thread, one at a time; [`ChainHandle::enqueue_batch`] is several times
    /// cheaper per transaction. The answer is immediate: a nonce ahead is refused at once, not
    /// held (a transaction that takes the expected nonce still releases the sender's held
    /// submissions that follow it).
    ///
    /// # Errors
    /// The errors before execution listed on [`ChainHandle::submit`].
    pub fn enqueue(&self, signed: SignedTransaction) -> Result<PendingTransaction, LedgerError> {
        let verified = signed.verify(&self.inner.ledger.params().chain_id);
        self.counted(verified.and_then(|tx| self.admit(|_| Ok(tx))))
    }

    /// [`ChainHandle::enqueue`] for many transactions at once, in order: they are verified
    /// together (signatures in batches, on every core) and admitted one after another, each
    /// getting the answer `enqueue` would have given at its turn.
    pub fn enqueue_batch(
        &self,
        signed: Vec<SignedTransaction>,
    ) -> Vec<Result<PendingTransaction, LedgerError>> {
        let verified = verify_transactions(signed, &self.inner.ledger.params().chain_id);
        self.inner.gate.admit_all(verified).into_iter().map(|result| self.counted(result)).collect()
    }

    /// [`ChainHandle::submit`] for the BCS bytes of a signed transaction.
    ///
    /// # Errors
    /// As [`ChainHandle::submit`].
    pub async fn submit_bytes(&self, bytes: &[u8]) -> Result<TxOutcome, LedgerError> {
        let signed = self.counted(SignedTransaction::from_bytes(bytes))?;
        self.submit(signed).await
    }

    /// Counts a refusal in the metrics.
    fn counted<T>(&self, result: Result<T, LedgerError>) -> Result<T, LedgerError> {
        result.inspect_err(|_| self.inner.ledger.metrics().rejected())
    }

    /// Admits the transaction `build` makes for the sender's expected nonce, under the pool lock.
    fn admit(
        &self,
        build: impl FnOnce(&Pool) -> Result<VerifiedTransaction, LedgerError>,
    ) -> Result<PendingTransaction, LedgerError> {
        let pending = {
            let mut pool = lock(&self.inner.pool);
            if pool.stopped {
                return Err(LedgerError::EChainStopped);
            }
            let tx = build(&pool)?;
            self.inner.gate.admit_locked(&mut pool, tx)?
        };
        self.inner.gate.wake();
        Ok(pending)
    }

    /// Executes a transaction against a copy of the current state, without ordering it.
    ///
    /// # Errors
    /// See [`Ledger::dry_run`].
    pub fn dry_run(&self, signed: SignedTransaction) -> Result<DryRunOutcome, ChainError> {
        self.inner.ledger.dry_run(signed)
    }

    /// Runs `f` on the contract's current state.
    pub fn with_state<R>(&self, f: impl FnOnce(&AtomaDb) -> R) -> R {
        self.inner.ledger.with_state(f)
    }

    /// The nonce the sender's next transaction must carry, counting transactions waiting in the
    /// mempool (so clients can pipeline).
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        let pool = lock(&self.inner.pool);
        pool.sequencer.expected_nonce(sender, self.inner.ledger.next_nonce(sender))
    }

    /// The tip block.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn latest_block(&self) -> Result<Block, ChainError> {
        self.inner.ledger.latest_block()
    }

    /// A block by height.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        self.inner.ledger.block(height)
    }

    /// A transaction, its status and events.
    ///
    /// # Errors
    /// `EStorage`, `ECorruptStore`.
    pub fn transaction(&self, digest: &Digest) -> Result<Option<TransactionResponse>, ChainError> {
        self.inner.ledger.transaction(digest)
    }

    /// A page of events; see [`Ledger::query_events`].
    ///
    /// # Errors
    /// `EInvalidCursor`, `EStorage`, `ECorruptStore`.
    pub fn query_events(
        &self,
        filter: &EventFilter,
        cursor: Option<EventId>,
        limit: Option<usize>,
        descending: bool,
    ) -> Result<Page<EventRecord, EventId>, ChainError> {
        self.inner.ledger.query_events(filter, cursor, limit, descending)
    }

    /// Live events matching `filter`, in commit order.
    pub fn subscribe(&self, filter: EventFilter) -> EventSubscription {
        self.inner.ledger.subscribe(filter)
    }

    /// The chain id, the tip and the validator.
    pub fn chain_info(&self) -> ChainInfo {
        let ledger = &self.inner.ledger;
        let tip = ledger.tip();
        let (package_id, db_id) = ledger.with_state(|db| (db.globals().package_id, db.globals().db_id));
        let genesis_digest = ledger.genesis().digest();
        ChainInfo {
            chain_id: genesis_digest,
            genesis_digest,
            height: tip.height,
            epoch: tip.epoch,
            timestamp_ms: tip.timestamp_ms,
            latest_block_digest: tip.digest,
            validator: self.inner.validator,
            local_network: self.inner.local_network,
            epoch_duration_ms: ledger.genesis().epoch_duration_ms,
            package_id,
            db_id,
        }
    }

    /// Sends `amount` base units from the faucet account to `recipient` (a local network's
    /// faucet is an ordinary account funded at genesis; this signs a `TransferToma` from it).
    ///
    /// # Errors
    /// `ENotLocalNetwork` off a local network; `EInvalidConfig` when the keystore has no faucet
    /// key; otherwise as [`ChainHandle::submit`]. An empty faucet is the outcome's
    /// `EInsufficientBalance`.
    pub async fn faucet(&self, recipient: Address, amount: u64) -> Result<TxOutcome, LedgerError> {
        let key = self.local_only()?;
        let key = key.faucet.as_ref().ok_or(LedgerError::EInvalidConfig)?;
        let chain_id = self.inner.ledger.params().chain_id;
        let pending = self.counted(self.admit(|pool| {
            let nonce =
                pool.sequencer.expected_nonce(&key.address(), self.inner.ledger.next_nonce(&key.address()));
            let call = Call::TransferToma { recipient, amount };
            Transaction { chain_id, sender: key.address(), nonce, call }
                .sign(key.signing_key())
                .verify(&chain_id)
        }))?;
        pending.outcome().await
    }

    /// Makes a block at once in the next epoch, and returns its header.
    ///
    /// # Errors
    /// `ENotLocalNetwork`; `EMempoolFull` when [`CONTROL_QUEUE`] time controls are already
    /// waiting (however full the mempool is); `EChainStopped`; `EStorage`.
    pub async fn advance_epoch(&self) -> Result<BlockHeader, LedgerError> {
        self.local_only()?;
        self.control(Control::AdvanceEpoch).await
    }

    /// Moves the validator's clock forward by `ms` and makes a block at once (which starts the
    /// next epoch if the new time passes the epoch's end); returns its header.
    ///
    /// # Errors
    /// As [`ChainHandle::advance_epoch`].
    pub async fn advance_clock(&self, ms: u64) -> Result<BlockHeader, LedgerError> {
        self.local_only()?;
        self.control(|reply| Control::AdvanceClock(ms, reply)).await
    }

    async fn control(&self, control: impl FnOnce(BlockReply) -> Control) -> Result<BlockHeader, LedgerError> {
        let (reply, receiver) = oneshot::channel();
        self.inner.gate.signals.control(control(reply))?;
        receiver.await.map_err(|_| LedgerError::EChainStopped)?
    }

    fn local_only(&self) -> Result<&Inner, LedgerError> {
        if self.inner.local_network { Ok(&self.inner) } else { Err(LedgerError::ENotLocalNetwork) }
    }

    /// Counters for Prometheus.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.ledger.metrics().snapshot()
    }

    /// The combined state digest after the tip.
    pub fn state_digest(&self) -> Digest {
        self.inner.ledger.state_digest()
    }

    /// The keystore file holding the local network's keys.
    pub fn keystore_path(&self) -> &Path {
        &self.inner.keystore_path
    }

    /// Whether the faucet and time controls are on.
    pub fn is_local_network(&self) -> bool {
        self.inner.local_network
    }

    /// Stops the producer: new requests get `EChainStopped`, and so do transactions still waiting
    /// in the mempool or held, and time controls not yet served. Blocks already committed stay.
    /// Join the [`ChainTask`] to wait for the end.
    pub fn shutdown(&self) {
        lock(&self.inner.pool).stopped = true;
        self.inner.admission.close();
        self.inner.gate.signals.stop();
    }
}

impl Gate {
    /// The chain id transactions must name.
    pub(crate) fn chain_id(&self) -> [u8; 32] {
        self.ledger.params().chain_id
    }

    /// Admits verified transactions in order (each refused one is skipped, later ones still
    /// try), and wakes the producer once. Nothing is held: a nonce ahead is refused at once.
    pub(crate) fn admit_all(
        &self,
        verified: Vec<Result<VerifiedTransaction, LedgerError>>,
    ) -> Vec<Result<PendingTransaction, LedgerError>> {
        let results = {
            let mut pool = lock(&self.pool);
            let stopped = pool.stopped;
            verified
                .into_iter()
                .map(|tx| {
                    if stopped { Err(LedgerError::EChainStopped) } else { self.admit_locked(&mut pool, tx?) }
                })
                .collect()
        };
        self.wake();
        results
    }

    /// Admits verified submissions in order and answers each on its reply, holding those whose
    /// nonce is a little ahead (their reply is kept until they are released or refused); wakes
    /// the producer once.
    pub(crate) fn admit_submissions(
        &self,
        submissions: impl IntoIterator<Item = (Result<VerifiedTransaction, LedgerError>, AdmissionReply)>,
    ) {
        {
            let mut pool = lock(&self.pool);
            let hold_until = self.hold.map(|hold| Instant::now() + hold);
            for (verified, reply) in submissions {
                let admitted = match verified {
                    Err(error) => Err(error),
                    Ok(_) if pool.stopped => Err(LedgerError::EChainStopped),
                    Ok(tx) => {
                        let digest = tx.digest();
                        match self.admit_or_hold(&mut pool, tx, hold_until) {
                            Ok(Some(pending)) => Ok(pending),
                            Ok(None) => {
                                pool.held.insert(digest, reply);
                                continue;
                            }
                            Err(error) => Err(error),
                        }
                    }
                };
                // A submitter that went away does not withdraw its transaction.
                let _ = reply.send(admitted);
            }
        }
        self.wake();
    }

    /// Admits one verified transaction for the sender's expected nonce; the pool is locked.
    fn admit_locked(
        &self,
        pool: &mut Pool,
        tx: VerifiedTransaction,
    ) -> Result<PendingTransaction, LedgerError> {
        let digest = tx.digest();
        let applied_next = self.ledger.next_nonce(&tx.sender());
        let released = pool.sequencer.admit_releasing(tx, applied_next)?;
        Ok(self.queued(pool, digest, released))
    }

    /// Admits (`Some`) or holds until `hold_until` (`None`) one verified transaction; the pool is
    /// locked. Without `hold_until`, as [`Gate::admit_locked`].
    fn admit_or_hold(
        &self,
        pool: &mut Pool,
        tx: VerifiedTransaction,
        hold_until: Option<Instant>,
    ) -> Result<Option<PendingTransaction>, LedgerError> {
        let Some(hold_until) = hold_until else { return self.admit_locked(pool, tx).map(Some) };
        let digest = tx.digest();
        let applied_next = self.ledger.next_nonce(&tx.sender());
        match pool.sequencer.admit_or_hold(tx, applied_next, hold_until)? {
            Admission::Queued(released) => Ok(Some(self.queued(pool, digest, released))),
            Admission::Held => {
                self.ledger.metrics().set_mempool(pool.sequencer.len());
                Ok(None)
            }
        }
    }

    /// A transaction entered the mempool, followed by the held ones it `released`: registers
    /// their waiters and answers the held ones' submitters.
    fn queued(
        &self,
        pool: &mut Pool,
        digest: Digest,
        released: Vec<VerifiedTransaction>,
    ) -> PendingTransaction {
        for tx in released {
            let pending = pool.wait_for(tx.digest());
            if let Some(reply) = pool.held.remove(&tx.digest()) {
                // A submitter that went away does not withdraw its transaction.
                let _ = reply.send(Ok(pending));
            }
        }
        self.ledger.metrics().set_mempool(pool.sequencer.len());
        pool.wait_for(digest)
    }

    fn wake(&self) {
        self.signals.wake();
    }
}

impl Pool {
    /// Registers a waiter for a transaction now in the mempool.
    fn wait_for(&mut self, digest: Digest) -> PendingTransaction {
        let (sender, receiver) = oneshot::channel();
        self.waiters.insert(digest, sender);
        PendingTransaction { digest, receiver }
    }

    /// Answers every waiter and held submission in `dropped` with `error`.
    fn refuse(&mut self, dropped: &[VerifiedTransaction], error: &LedgerError) {
        for tx in dropped {
            let digest = tx.digest();
            if let Some(waiter) = self.waiters.remove(&digest) {
                let _ = waiter.send(Err(error.clone()));
            }
            if let Some(reply) = self.held.remove(&digest) {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// The block-producer thread's state.
struct Producer {
    ledger: Arc<Ledger>,
    pool: Arc<Mutex<Pool>>,
    signals: Arc<Signals>,
    block_time: Option<Duration>,
}

impl Producer {
    /// Makes blocks until stopped. Each turn serves every waiting time control (each makes a
    /// block at once), refuses held transactions whose time ran out, and then makes at most one
    /// block: so under sustained load a control waits for one block at most.
    fn run(self) {
        let mut next_tick = self.block_time.map(|t| Instant::now() + t);
        loop {
            let (ready, next_expiry) = {
                let pool = lock(&self.pool);
                (pool.sequencer.mempool_len() > 0, pool.sequencer.next_expiry())
            };
            let busy = ready && self.block_time.is_none();
            let deadline = match (next_tick, next_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(controls) = self.signals.wait(busy, deadline) else { break };
            for control in controls {
                self.serve(control);
            }
            if lock(&self.pool).stopped {
                break;
            }
            self.expire_held();
            match (next_tick, self.block_time) {
                (Some(tick), Some(period)) if Instant::now() >= tick => {
                    let _ = self.produce();
                    next_tick = Some(Instant::now() + period);
                }
                (None, _) if self.mempool_len() > 0 => {
                    let _ = self.produce();
                }
                _ => {}
            }
        }
        self.stop();
    }

    /// Makes the block a time control asks for and answers it.
    fn serve(&self, control: Control) {
        let reply = match control {
            Control::AdvanceEpoch(reply) => {
                lock(&self.pool).sequencer.force_next_epoch();
                reply
            }
            Control::AdvanceClock(ms, reply) => {
                lock(&self.pool).sequencer.advance_clock(ms);
                reply
            }
        };
        let _ = reply.send(self.produce());
    }

    /// Refuses the held transactions whose time ran out with `ENonceFuture`.
    fn expire_held(&self) {
        let mut pool = lock(&self.pool);
        let expired = pool.sequencer.expire_held(Instant::now(), |sender| self.ledger.next_nonce(sender));
        if expired.is_empty() {
            return;
        }
        for (tx, error) in expired {
            if let Some(reply) = pool.held.remove(&tx.digest()) {
                let _ = reply.send(Err(error));
            }
        }
        self.ledger.metrics().set_mempool(pool.sequencer.len());
    }

    fn mempool_len(&self) -> usize {
        lock(&self.pool).sequencer.mempool_len()
    }

    /// Proposes the next block, applies it, and answers its submitters.
    fn produce(&self) -> Result<BlockHeader, LedgerError> {
        let tip = self.ledger.tip();
        let (block, waiters) = {
            let mut pool = lock(&self.pool);
            let block = pool.sequencer.propose_verified(&tip, now_ms());
            let waiters: Vec<Option<TxReply>> =
                block.header().tx_digests.iter().map(|d| pool.waiters.remove(d)).collect();
            self.ledger.metrics().set_mempool(pool.sequencer.len());
            (block, waiters)
        };
        // Admission verified every transaction; the block is not verified again.
        match self.ledger.apply_verified(&block) {
            Ok(ApplyOutcome::Applied(effects)) => {
                lock(&self.pool).sequencer.settle(|sender| self.ledger.next_nonce(sender));
                for (outcome, waiter) in effects.outcomes.into_iter().zip(waiters) {
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Ok(outcome));
                    }
                }
                Ok(effects.header)
            }
            Ok(ApplyOutcome::AlreadyApplied) => self
                .fail(waiters, &LedgerError::EInvalidBlock("the proposed height was already applied".into())),
            Err(error) => {
                // The operator's log gets the cause; the submitters get its name.
                tracing::error!(
                    height = block.header().height,
                    "a block could not be applied: {}",
                    error.chain()
                );
                self.fail(waiters, &error.refusal())
            }
        }
    }

    /// Answers a failed block's submitters and drops the mempool and the held transactions,
    /// whose nonces no longer follow.
    fn fail(&self, waiters: Vec<Option<TxReply>>, error: &LedgerError) -> Result<BlockHeader, LedgerError> {
        let mut pool = lock(&self.pool);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
        let dropped = pool.sequencer.reset();
        pool.refuse(&dropped, error);
        self.ledger.metrics().set_mempool(0);
        Err(error.clone())
    }

    /// Refuses everything still waiting: the mempool, held submissions and time controls.
    fn stop(&self) {
        {
            let mut pool = lock(&self.pool);
            pool.stopped = true;
            pool.sequencer.reset();
            for (_, waiter) in std::mem::take(&mut pool.waiters) {
                let _ = waiter.send(Err(LedgerError::EChainStopped));
            }
            for (_, reply) in std::mem::take(&mut pool.held) {
                let _ = reply.send(Err(LedgerError::EChainStopped));
            }
            self.ledger.metrics().set_mempool(0);
        }
        self.signals.stop();
        for control in self.signals.take_controls() {
            control.refuse(LedgerError::EChainStopped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_out_of_range_are_refused() {
        let good = ChainConfig::local("/nonexistent");
        assert!(good.validate().is_ok());
        let cases: [fn(&mut ChainConfig); 6] = [
            |c| c.mempool_capacity = 0,
            |c| c.nonce_hold_ms = MAX_NONCE_HOLD_MS + 1,
            |c| c.max_block_transactions = 0,
            |c| c.max_block_transactions = MAX_BLOCK_TRANSACTIONS + 1,
            |c| c.block_time_ms = Some(0),
            |c| c.block_time_ms = Some(u64::MAX),
        ];
        for mutate in cases {
            let mut config = good.clone();
            mutate(&mut config);
            assert_eq!(config.validate().map_err(|e| e.name()), Err("EInvalidConfig"), "{config:?}");
        }
    }
}
