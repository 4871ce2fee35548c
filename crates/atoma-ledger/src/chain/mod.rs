//! A running local network: the [`Ledger`], a [`Mempool`], the [`LocalProposer`] and a
//! block-producer thread, behind a cloneable [`ChainHandle`] — the single validator's
//! [`Orderer`], which the RPC server serves through a [`Node`].
//!
//! [`Chain::open`] sets up the data directory (creating a local network's keys and genesis on
//! first run), recovers the ledger and starts two threads: the verifier of submissions
//! (`crate::admission`) and the block producer (`producer`), which turns the mempool into blocks
//! whenever transactions arrive (or every `block_time_ms` when set, empty blocks included), and
//! at once on "advance epoch" / "advance clock". Transaction checks that need no state run
//! before the mempool's lock (`pool`); the nonce check and the mempool bound happen under it, so
//! concurrent submitters of one sender are ordered consistently. A submission whose nonce is a
//! little ahead is held for [`ChainConfig::nonce_hold_ms`] waiting for the missing ones (see
//! [`Mempool::admit_or_hold`]).
//!
//! The producer is woken through `Signals`: admissions set one flag however many there are,
//! and time controls have a short queue of their own, so wake-ups can never crowd a control out.
//! Between two blocks the producer serves every waiting control.
//!
//! [`ChainHandle::submit`] resolves only after the transaction's block was committed to disk
//! (SPEC §12). Dropping the future does not withdraw the transaction.

mod pool;
mod producer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atoma_contract::{Address, Call};
use atoma_types::{
    BlockHeader, Keypair, LedgerError, SignedTransaction, Transaction, TxOutcome, VerifiedTransaction,
};
use tokio::sync::oneshot;

pub(crate) use self::pool::Gate;
pub use self::pool::PendingTransaction;
use self::pool::{Pool, lock};
use self::producer::{BlockReply, Control, Producer, Signals};
use crate::admission::{AdmissionQueue, run_verifier};
use crate::batch::verify_transactions;
use crate::block::MAX_BLOCK_TRANSACTIONS;
use crate::dir_lock::DataDirLock;
use crate::error::ChainError;
use crate::genesis::{FAUCET_ALIAS, GenesisConfig, LocalKeys, LocalNetworkOptions, VALIDATOR_ALIAS};
use crate::keystore::{KEYSTORE_FILE, Keystore};
use crate::ledger::{Ledger, LedgerOptions};
use crate::mempool::Mempool;
use crate::node::{BoxFuture, LocalNetwork, Node, Orderer};
use crate::proposer::LocalProposer;

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
    /// [`crate::mempool::NONCE_HOLD_WINDOW`] ahead of its sender's next one is held waiting for
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
        let mut proposer = LocalProposer::new(validator, ledger.genesis().epoch_duration_ms);
        // Continue the clock from the last block, so that time moved by `advance_clock` before a
        // restart is not lost while the machine's clock catches up.
        proposer.set_clock_offset(ledger.tip().timestamp_ms.saturating_sub(now_ms()));
        let pool = Arc::new(Mutex::new(Pool {
            mempool: Mempool::new(config.mempool_capacity),
            waiters: BTreeMap::new(),
            held: BTreeMap::new(),
            stopped: false,
        }));
        let signals = Arc::new(Signals::new());
        let producer = Producer {
            ledger: Arc::clone(&ledger),
            pool: Arc::clone(&pool),
            signals: Arc::clone(&signals),
            proposer,
            max_block_transactions: config.max_block_transactions,
            block_time: config.block_time_ms.map(Duration::from_millis),
        };
        let hold = (config.nonce_hold_ms > 0).then(|| Duration::from_millis(config.nonce_hold_ms));
        let gate = Gate { ledger: Arc::clone(&ledger), pool: Arc::clone(&pool), signals, hold };
        let admission = Arc::new(AdmissionQueue::new(config.mempool_capacity));
        let spawn_error = |e: std::io::Error| ChainError::storage("cannot start the chain's threads", e);
        let thread = std::thread::Builder::new()
            .name("atoma-producer".into())
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

impl ChainHandle {
    /// The ledger underneath: every read — state, blocks, transactions, events, dry runs,
    /// subscriptions, metrics.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.inner.ledger
    }

    /// This chain as a [`Node`]: what the RPC server serves.
    pub fn node(&self) -> Node {
        Node::from(self.clone())
    }

    /// Submits a transaction and waits until its block is durably committed.
    ///
    /// # Errors
    /// Before execution, with nothing changed: `ETransactionTooLarge`, `EMalformedTransaction`,
    /// `EWrongChainId`, `EBadSignature`, `ENonceUsed`, `ENonceFuture`, `EMempoolFull`,
    /// `EChainStopped`. After ordering: `EStorage` if the block could not be stored. A contract
    /// error is not an `Err`: it is the outcome's [`atoma_types::TxStatus::Failure`].
    ///
    /// The transaction is verified on the chain's verifier thread together with every other
    /// submission waiting (signatures in batches, on every core), then admitted; submissions are
    /// admitted in the order their futures were first polled. A transaction whose nonce is up to
    /// [`crate::mempool::NONCE_HOLD_WINDOW`] ahead of its sender's next nonce is held for
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

    /// The nonce the sender's next transaction must carry, counting transactions waiting in the
    /// mempool (so clients can pipeline).
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        let pool = lock(&self.inner.pool);
        pool.mempool.expected_nonce(sender, self.inner.ledger.next_nonce(sender))
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
                pool.mempool.expected_nonce(&key.address(), self.inner.ledger.next_nonce(&key.address()));
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

impl Orderer for ChainHandle {
    fn submit(&self, signed: SignedTransaction) -> BoxFuture<'_, Result<TxOutcome, LedgerError>> {
        Box::pin(ChainHandle::submit(self, signed))
    }

    fn next_nonce(&self, sender: &Address) -> u64 {
        ChainHandle::next_nonce(self, sender)
    }

    fn validator(&self) -> Address {
        self.inner.validator
    }

    fn local_network(&self) -> Option<&dyn LocalNetwork> {
        if self.inner.local_network { Some(self) } else { None }
    }
}

impl LocalNetwork for ChainHandle {
    fn faucet(&self, recipient: Address, amount: u64) -> BoxFuture<'_, Result<TxOutcome, LedgerError>> {
        Box::pin(ChainHandle::faucet(self, recipient, amount))
    }

    fn advance_epoch(&self) -> BoxFuture<'_, Result<BlockHeader, LedgerError>> {
        Box::pin(ChainHandle::advance_epoch(self))
    }

    fn advance_clock(&self, ms: u64) -> BoxFuture<'_, Result<BlockHeader, LedgerError>> {
        Box::pin(ChainHandle::advance_clock(self, ms))
    }
}

impl From<ChainHandle> for Node {
    /// The node the RPC serves: this chain's ledger, ordered by this chain.
    fn from(chain: ChainHandle) -> Self {
        Node::new(Arc::clone(&chain.inner.ledger), Arc::new(chain))
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
