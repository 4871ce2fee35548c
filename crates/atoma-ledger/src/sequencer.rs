//! The single validator's ordering, in one value: a [`Mempool`] and a [`LocalProposer`].
//!
//! The chain's block producer ([`crate::chain`]) drives the two parts itself; this composite is
//! for code that orders blocks by hand — the simulator, tests, tools — without a producer thread.

use crate::block::{Block, MAX_BLOCK_TRANSACTIONS};
use crate::error::LedgerError;
use crate::execution::VerifiedBlock;
use crate::ledger::Tip;
use crate::mempool::Mempool;
use crate::proposer::LocalProposer;
use crate::tx::{Keypair, VerifiedTransaction};
use atoma_contract::Address;

/// A mempool and the local proposer that empties it into blocks.
#[derive(Debug)]
pub struct Sequencer {
    /// The transactions waiting for a block.
    pub mempool: Mempool,
    /// Who makes the next block of them.
    pub proposer: LocalProposer,
    max_block_transactions: usize,
}

impl Sequencer {
    /// A sequencer signing block seeds with `validator`. `capacity` bounds the mempool; a block
    /// holds at most `max_block_transactions` (clamped to 1..=[`MAX_BLOCK_TRANSACTIONS`]).
    pub fn new(
        validator: Keypair,
        epoch_duration_ms: u64,
        capacity: usize,
        max_block_transactions: usize,
    ) -> Self {
        Sequencer {
            mempool: Mempool::new(capacity),
            proposer: LocalProposer::new(validator, epoch_duration_ms),
            max_block_transactions: max_block_transactions.clamp(1, MAX_BLOCK_TRANSACTIONS),
        }
    }

    /// [`Mempool::admit`].
    ///
    /// # Errors
    /// As [`Mempool::admit`].
    pub fn admit(&mut self, tx: VerifiedTransaction, applied_next: u64) -> Result<(), LedgerError> {
        self.mempool.admit(tx, applied_next)
    }

    /// The next block after `tip` at machine time `now_ms`, with up to the block limit of the
    /// oldest mempool transactions ([`LocalProposer::propose`]).
    pub fn propose(&mut self, tip: &Tip, now_ms: u64) -> Block {
        self.propose_verified(tip, now_ms).to_block()
    }

    /// [`Sequencer::propose`], keeping the transactions' verification, so that
    /// [`crate::Ledger::apply_verified`] need not verify them again.
    pub fn propose_verified(&mut self, tip: &Tip, now_ms: u64) -> VerifiedBlock {
        let transactions = self.mempool.take(self.max_block_transactions);
        self.proposer.propose(tip, now_ms, transactions)
    }

    /// [`Mempool::settle`].
    pub fn settle(&mut self, applied_next: impl Fn(&Address) -> u64) {
        self.mempool.settle(applied_next);
    }
}
