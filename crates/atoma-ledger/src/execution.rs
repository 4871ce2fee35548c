//! Applying a block to the state, in memory: validation first, then execution.
//!
//! Validation checks everything that could make a block unacceptable *before* anything changes,
//! so a bad block changes nothing. It comes in two halves. [`VerifiedBlock::verify`] needs no
//! state — every transaction decodes, names this chain, is signed by its sender (signatures in
//! batches, on every core) and is the one the header names — so it runs before the state is
//! locked, and can run ahead of the block before it. [`check_follows`] needs the tip: the block
//! extends it, and its timestamp and epoch follow the rules. [`validate_block`] does both.
//! [`execute_block`] then cannot fail: each transaction that uses its sender's next nonce runs
//! in the contract, and whatever the contract answers, it consumes that nonce (like Sui and
//! Ethereum: an executed transaction that aborts is still on the chain, so its nonce cannot be
//! replayed); one whose nonce does not follow is skipped, changing nothing — a block finalized
//! before execution must apply whatever it holds.
//!
//! Nothing here does I/O, reads a clock or knows who ordered the block.

use std::collections::BTreeMap;

use atoma_contract::Address;

use crate::batch::verify_transactions;
use crate::block::{Block, BlockHeader, MAX_BLOCK_TRANSACTIONS};
use crate::digest::Digest;
use crate::error::LedgerError;
use crate::events::{EventId, EventRecord};
use crate::state::{ChainParams, ChainState, LedgerState};
use crate::tx::VerifiedTransaction;
use atoma_types::{SkipReason, TxOutcome, TxStatus};

/// Everything applying one block produced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockEffects {
    /// The applied block's header.
    pub header: BlockHeader,
    /// The applied block's digest.
    pub digest: Digest,
    /// One per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// The combined state digest after the block, computed at snapshot heights only.
    pub state_digest: Option<Digest>,
    /// The next nonce of every sender in the block, after it.
    pub nonces: Vec<(Address, u64)>,
}

/// A block whose transactions passed every check that needs no state — size, encoding, chain
/// id, signature — and are the ones its header names, in order. Only verification (or the
/// node's own [`crate::Sequencer`], which orders only verified transactions) makes one, so
/// [`crate::Ledger::apply_verified`] need not verify again. Nothing here depends on the tip: a
/// consensus engine can verify block N+1 while block N is being applied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedBlock {
    header: BlockHeader,
    transactions: Vec<VerifiedTransaction>,
}

impl VerifiedBlock {
    /// Verifies a block's transactions: signatures in batches on every core
    /// ([`crate::batch::verify_transactions`]), each answer the same as one
    /// [`atoma_types::SignedTransaction::verify`].
    ///
    /// # Errors
    /// `EInvalidBlock` naming the first transaction (by index) that fails, or a header that does
    /// not list exactly the block's transactions.
    pub fn verify(block: Block, params: &ChainParams) -> Result<Self, LedgerError> {
        check_count(&block)?;
        let Block { header, transactions } = block;
        let verified = verify_transactions(transactions, &params.chain_id);
        let transactions = (0..)
            .zip(verified)
            .map(|(index, result)| result.map_err(|e| tx_invalid(index, &e)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(header, transactions)
    }

    /// Wraps transactions that are already verified, checking that the header names them. A
    /// [`VerifiedTransaction`] exists only once its signature and chain id were checked, so an
    /// orderer that verified its transactions when it admitted them (a validator's pool) hands
    /// them over without a second check.
    ///
    /// # Errors
    /// `EInvalidBlock` when the header's digests are not the transactions'.
    pub fn new(header: BlockHeader, transactions: Vec<VerifiedTransaction>) -> Result<Self, LedgerError> {
        if transactions.len() != header.tx_digests.len() {
            return Err(invalid("the header and the body list different numbers of transactions"));
        }
        if let Some(index) = transactions.iter().zip(&header.tx_digests).position(|(t, d)| t.digest() != *d) {
            return Err(tx_invalid(index, &"its digest differs from the header's"));
        }
        Ok(VerifiedBlock { header, transactions })
    }

    /// A block of verified transactions in the order given; the header's digests are set to
    /// theirs.
    pub(crate) fn ordered(mut header: BlockHeader, transactions: Vec<VerifiedTransaction>) -> Self {
        header.tx_digests = transactions.iter().map(VerifiedTransaction::digest).collect();
        VerifiedBlock { header, transactions }
    }

    /// A block read back from this node's own store, which holds only blocks it verified before
    /// committing them: the transactions are decoded and matched against the header's digests,
    /// but their signatures are not checked again.
    ///
    /// # Errors
    /// `EInvalidBlock` when a transaction does not decode, names another chain, or is not the
    /// one the header names.
    pub(crate) fn from_own_store(block: Block, params: &ChainParams) -> Result<Self, LedgerError> {
        check_count(&block)?;
        let Block { header, transactions } = block;
        let transactions = (0..)
            .zip(transactions)
            .map(|(index, signed)| {
                // No canonical-encoding check: the digest below pins these exact bytes, which
                // passed every check when they were admitted.
                let tx = signed.into_verified_from_own_store().map_err(|e| tx_invalid(index, &e))?;
                if tx.transaction().chain_id != params.chain_id {
                    return Err(tx_invalid(index, &LedgerError::EWrongChainId));
                }
                Ok(tx)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(header, transactions)
    }

    /// The block's header.
    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// The verified transactions, in block order.
    pub fn transactions(&self) -> &[VerifiedTransaction] {
        &self.transactions
    }

    /// The block's digest.
    pub fn digest(&self) -> Digest {
        self.header.digest()
    }

    /// The plain block.
    pub fn to_block(&self) -> Block {
        Block {
            header: self.header.clone(),
            transactions: self.transactions.iter().map(|t| t.signed().clone()).collect(),
        }
    }
}

fn check_count(block: &Block) -> Result<(), LedgerError> {
    if block.transactions.len() != block.header.tx_digests.len() {
        return Err(invalid("the header and the body list different numbers of transactions"));
    }
    if block.transactions.len() > MAX_BLOCK_TRANSACTIONS {
        return Err(invalid("too many transactions"));
    }
    Ok(())
}

/// Checks that `block` may follow the state's tip, and verifies its transactions:
/// [`VerifiedBlock::verify`] then [`check_follows`].
///
/// # Errors
/// `EInvalidBlock` naming a problem found; nothing changes.
pub fn validate_block(
    state: &ChainState,
    block: &Block,
    params: &ChainParams,
) -> Result<Vec<VerifiedTransaction>, LedgerError> {
    let verified = VerifiedBlock::verify(block.clone(), params)?;
    check_follows(state, &verified, params)?;
    Ok(verified.transactions)
}

/// The checks of a verified block that need the tip: height, parent, time and epoch. A
/// transaction whose nonce does not follow its sender's is no reason to refuse the block: the
/// block is applied and that transaction skipped ([`execute_block`]).
///
/// # Errors
/// `EInvalidBlock` naming the first problem found; nothing changes.
pub fn check_follows(
    state: &ChainState,
    block: &VerifiedBlock,
    params: &ChainParams,
) -> Result<(), LedgerError> {
    check_header(&state.ledger, &block.header, params)
}

fn invalid(reason: &str) -> LedgerError {
    LedgerError::EInvalidBlock(reason.to_string())
}

fn tx_invalid(index: usize, reason: &dyn std::fmt::Display) -> LedgerError {
    LedgerError::EInvalidBlock(format!("transaction {index}: {reason}"))
}

/// Height, parent, timestamp and epoch rules (see [`crate::state`] for epochs).
fn check_header(tip: &LedgerState, header: &BlockHeader, params: &ChainParams) -> Result<(), LedgerError> {
    if Some(header.height) != tip.height.checked_add(1) {
        return Err(invalid(&format!("height {} does not follow {}", header.height, tip.height)));
    }
    if header.parent_digest != tip.block_digest {
        return Err(invalid("the parent digest is not the tip's"));
    }
    if header.timestamp_ms < tip.timestamp_ms {
        return Err(invalid("the timestamp goes backwards"));
    }
    let next_epoch = tip.epoch.checked_add(1).ok_or_else(|| invalid("epochs are exhausted"))?;
    let due = tip.epoch_due(header.timestamp_ms, params.epoch_duration_ms);
    let epoch_ok = header.epoch == next_epoch || (!due && header.epoch == tip.epoch);
    if !epoch_ok {
        return Err(invalid(&format!("epoch {} after epoch {} is not allowed", header.epoch, tip.epoch)));
    }
    Ok(())
}

/// Executes a block that passed [`check_follows`] for this state: runs every transaction that
/// uses its sender's next nonce, consumes those nonces, moves the tip.
///
/// A transaction whose nonce is not its sender's next one (already used, or ahead) is not
/// executed: its outcome is [`TxStatus::Skipped`] and nothing changes for it, not even the
/// nonce. Whatever the block holds, it applies: a block finalized by consensus before anyone
/// executed it must never halt the chain.
///
/// Returns each transaction's outcome and the new nonces of the senders that executed one. The
/// combined state digest is left to the caller, which also needs the contract's bytes for
/// snapshots.
pub fn execute_block(state: &mut ChainState, block: &VerifiedBlock) -> (Vec<TxOutcome>, Vec<(Address, u64)>) {
    let header = &block.header;
    let mut outcomes = Vec::with_capacity(block.transactions.len());
    let mut touched = BTreeMap::new();
    for (index, tx) in (0u64..).zip(&block.transactions) {
        let expected = state.ledger.next_nonce(&tx.sender());
        // A sender whose next nonce is u64::MAX has none left: executing it would leave the next
        // nonce at MAX, and the same transaction could run again.
        let skip = match tx.nonce().cmp(&expected) {
            std::cmp::Ordering::Less => Some(SkipReason::NonceUsed),
            std::cmp::Ordering::Greater => Some(SkipReason::NonceFuture),
            std::cmp::Ordering::Equal if expected == u64::MAX => Some(SkipReason::NonceUsed),
            std::cmp::Ordering::Equal => None,
        };
        if let Some(reason) = skip {
            outcomes.push(skipped(header, index, tx, reason));
            continue;
        }
        outcomes.push(execute_transaction(state, header, index, tx));
        let nonce = state.ledger.nonces.entry(tx.sender()).or_insert(0);
        *nonce = nonce.saturating_add(1);
        touched.insert(tx.sender(), *nonce);
    }
    state.ledger.advance_to(header, header.digest());
    (outcomes, touched.into_iter().collect())
}

/// The outcome of a transaction the block holds but the ledger did not execute.
fn skipped(header: &BlockHeader, index: u64, tx: &VerifiedTransaction, reason: SkipReason) -> TxOutcome {
    TxOutcome {
        digest: tx.digest(),
        sender: tx.sender(),
        height: header.height,
        index,
        epoch: header.epoch,
        timestamp_ms: header.timestamp_ms,
        status: TxStatus::Skipped(reason),
        events: Vec::new(),
    }
}

fn execute_transaction(
    state: &mut ChainState,
    header: &BlockHeader,
    index: u64,
    tx: &VerifiedTransaction,
) -> TxOutcome {
    let digest = tx.digest();
    let ctx = header.tx_context(tx.sender(), &digest);
    let (status, events) = match state.db.execute(&ctx, &tx.transaction().call) {
        Ok(events) => (TxStatus::Success, events),
        Err(error) => (TxStatus::Failure(error), Vec::new()),
    };
    let records = (0u64..)
        .zip(events)
        .map(|(event_seq, event)| EventRecord {
            id: EventId { tx_digest: digest, event_seq },
            height: header.height,
            tx_index: index,
            sender: ctx.sender,
            timestamp_ms: header.timestamp_ms,
            event,
        })
        .collect();
    TxOutcome {
        digest,
        sender: ctx.sender,
        height: header.height,
        index,
        epoch: header.epoch,
        timestamp_ms: header.timestamp_ms,
        status,
        events: records,
    }
}
