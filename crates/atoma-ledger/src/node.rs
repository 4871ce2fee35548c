//! What serving clients needs of a node, whoever orders its blocks: a [`Node`] is the node's
//! [`Ledger`] — every read: state, blocks, transactions, events, dry runs — and its [`Orderer`],
//! the part that takes a transaction and answers once the transaction's block is durable here.
//!
//! The RPC server is written against [`Node`] alone. On a local network the orderer is the
//! single validator's chain ([`crate::ChainHandle`]: a mempool, a local proposer and a block
//! producer), which also offers the faucet and time controls ([`LocalNetwork`]); on a validator
//! set it is the consensus engine's mempool and gossip. Reads never go through the orderer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use atoma_contract::{Address, ObjectId};
use atoma_types::{BlockHeader, Digest, LedgerError, SignedTransaction, TxOutcome};

use crate::ledger::Ledger;

/// A boxed future that can move between threads: what the traits' async methods return, so
/// that a node can hold its orderer as `dyn Orderer`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whatever puts a node's transactions into blocks. See the module docs.
pub trait Orderer: Send + Sync + 'static {
    /// Submits a signed transaction and resolves once the block holding it is durably applied
    /// on this node, with its outcome. Dropping the future does not withdraw the transaction.
    ///
    /// # Errors
    /// Refusals before ordering, with nothing changed: `ETransactionTooLarge`,
    /// `EMalformedTransaction`, `EWrongChainId`, `EBadSignature`, `ENonceUsed`, `ENonceFuture`,
    /// `EMempoolFull`, `EChainStopped`; after ordering, the bare name of an internal failure
    /// (`EStorage`, …) when the block could not be stored. A contract error is not an `Err`: it
    /// is the outcome's [`atoma_types::TxStatus::Failure`].
    fn submit(&self, signed: SignedTransaction) -> BoxFuture<'_, Result<TxOutcome, LedgerError>>;

    /// The nonce the sender's next transaction must carry, counting the transactions this
    /// orderer has accepted but not yet applied (so clients can pipeline).
    fn next_nonce(&self, sender: &Address) -> u64;

    /// The address of this node's validator.
    fn validator(&self) -> Address;

    /// The faucet and time controls, on a local network only (SPEC §13).
    fn local_network(&self) -> Option<&dyn LocalNetwork> {
        None
    }

    /// Why this node serves nothing any more, if it stopped: every request then gets this
    /// refusal (a validator whose state diverged: `EStateDiverged`).
    fn halted(&self) -> Option<LedgerError> {
        None
    }

    /// The orderer's own metrics, in Prometheus' text format, for `/metrics`.
    fn prometheus(&self) -> String {
        String::new()
    }

    /// The validator set this node is one of, if it runs one (a single validator does not).
    fn consensus(&self) -> Option<ConsensusInfo> {
        None
    }
}

/// A validator set as one of its validators sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsensusInfo {
    /// The consensus engine ("simplex").
    pub engine: String,
    /// Validators in the set.
    pub validators: u64,
    /// How many of them may be faulty (the largest `f` with `n ≥ 3f + 1`).
    pub max_faulty: u64,
    /// This validator's index in the set.
    pub index: u64,
    /// The newest view with a certificate this validator saw.
    pub view: u64,
    /// The newest finalized height this validator knows of.
    pub finalized_height: u64,
    /// The leader of the newest view this validator proposed or verified in, by index.
    pub leader: Option<u64>,
    /// The peers that are alive (heard from within a few seconds): index and executed height.
    pub peers: Vec<(u64, u64)>,
    /// The newest executed block's time from its proposal to its execution here.
    pub finalization_latency_ms: u64,
}

/// A local network's extras (SPEC §13): a faucet and control of time.
pub trait LocalNetwork: Send + Sync {
    /// Sends `amount` base units from the faucet account to `recipient`, and resolves with the
    /// transfer's outcome once its block is durable.
    ///
    /// # Errors
    /// As [`Orderer::submit`]; `EInvalidConfig` when the node has no faucet key. An empty
    /// faucet is the outcome's `EInsufficientBalance`.
    fn faucet(&self, recipient: Address, amount: u64) -> BoxFuture<'_, Result<TxOutcome, LedgerError>>;

    /// Makes a block at once in the next epoch; resolves with its header.
    ///
    /// # Errors
    /// `EMempoolFull` when too many controls wait; `EChainStopped`; an internal failure's name.
    fn advance_epoch(&self) -> BoxFuture<'_, Result<BlockHeader, LedgerError>>;

    /// Moves the validator's clock forward by `ms` and makes a block at once (which starts the
    /// next epoch if the new time passes the epoch's end); resolves with its header.
    ///
    /// # Errors
    /// As [`LocalNetwork::advance_epoch`].
    fn advance_clock(&self, ms: u64) -> BoxFuture<'_, Result<BlockHeader, LedgerError>>;
}

/// A node as its clients see it: the ledger to read and the orderer to submit to. Cheap to
/// clone.
#[derive(Clone)]
pub struct Node {
    ledger: Arc<Ledger>,
    orderer: Arc<dyn Orderer>,
}

/// What a client wants to know about the chain and the node.
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
    /// The address of this node's validator.
    pub validator: Address,
    /// Whether the faucet and time controls are on.
    pub local_network: bool,
    /// How long an epoch lasts at least.
    pub epoch_duration_ms: u64,
    /// The contract's package id (event types are `<package_id>::db::<Name>`).
    pub package_id: ObjectId,
    /// The contract's db object id.
    pub db_id: ObjectId,
    /// The validator set, when the node is one of a set's validators.
    pub consensus: Option<ConsensusInfo>,
}

impl Node {
    /// A node reading from `ledger` and ordering through `orderer`.
    pub fn new(ledger: Arc<Ledger>, orderer: Arc<dyn Orderer>) -> Self {
        Node { ledger, orderer }
    }

    /// Every read: state, blocks, transactions, events, dry runs, subscriptions, metrics.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Where transactions go.
    pub fn orderer(&self) -> &dyn Orderer {
        &*self.orderer
    }

    /// The chain id, the tip and this node's validator.
    pub fn chain_info(&self) -> ChainInfo {
        let ledger = &self.ledger;
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
            validator: self.orderer.validator(),
            local_network: self.orderer.local_network().is_some(),
            epoch_duration_ms: ledger.genesis().epoch_duration_ms,
            package_id,
            db_id,
            consensus: self.orderer.consensus(),
        }
    }
}
