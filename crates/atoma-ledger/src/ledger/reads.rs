//! Reads: the state under its read lock, and blocks, transactions and events from the store's
//! own snapshots.

use atoma_contract::{Address, AtomaDb};

use super::recovery::{replay, restore_snapshot};
use super::{Ledger, Tip, TransactionResponse};
use crate::block::{Block, BlockHeader};
use crate::digest::Digest;
use crate::error::ChainError;
use crate::events::{EventFilter, EventId, EventRecord, Page, effective_limit};
use crate::state::{ChainState, combined_digest};
#[cfg(test)]
use crate::store::Store;
use crate::subscription::EventSubscription;
use crate::tx::SignedTransaction;
use atoma_types::TxOutcome;

impl Ledger {
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
