//! The single sequencer: how a local network orders transactions into blocks.
//!
//! This is the *ordering* component, kept apart from block *application* ([`crate::ledger`]). It
//! holds a bounded mempool, counts nonces of transactions it has accepted but that are not yet
//! applied (so a client can pipeline nonces n, n+1, …), keeps the validator's clock offset and the
//! "advance epoch" request, and turns the mempool into the next [`Block`] on demand. It does no
//! I/O and reads no clock: the caller passes the time. Replacing it by a consensus engine changes
//! nothing in execution, storage or queries (see the crate docs).

use std::collections::{BTreeMap, VecDeque};

use atoma_contract::Address;

use crate::block::{Block, BlockHeader, MAX_BLOCK_TRANSACTIONS, block_random_seed};
use crate::error::LedgerError;
use crate::execution::VerifiedBlock;
use crate::ledger::Tip;
use crate::state::epoch_due;
use crate::tx::{Keypair, VerifiedTransaction};

/// The single validator's mempool and block builder.
#[derive(Debug)]
pub struct Sequencer {
    validator: Keypair,
    epoch_duration_ms: u64,
    capacity: usize,
    max_block_transactions: usize,
    mempool: VecDeque<VerifiedTransaction>,
    /// Next nonce of senders with transactions accepted but not yet applied.
    pending: BTreeMap<Address, u64>,
    clock_offset_ms: u64,
    force_epoch: bool,
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
            validator,
            epoch_duration_ms,
            capacity,
            max_block_transactions: max_block_transactions.clamp(1, MAX_BLOCK_TRANSACTIONS),
            mempool: VecDeque::new(),
            pending: BTreeMap::new(),
            clock_offset_ms: 0,
            force_epoch: false,
        }
    }

    /// The nonce the sender's next transaction must carry, given its next nonce among applied
    /// blocks: accepted transactions waiting for a block count as used.
    pub fn expected_nonce(&self, sender: &Address, applied_next: u64) -> u64 {
        self.pending.get(sender).copied().unwrap_or(0).max(applied_next)
    }

    /// Accepts a verified transaction into the mempool.
    ///
    /// # Errors
    /// `ENonceUsed` / `ENonceFuture` when the nonce is not [`Sequencer::expected_nonce`];
    /// `EMempoolFull` when the mempool holds its capacity.
    pub fn admit(&mut self, tx: VerifiedTransaction, applied_next: u64) -> Result<(), LedgerError> {
        let expected = self.expected_nonce(&tx.sender(), applied_next);
        let got = tx.nonce();
        if got < expected {
            return Err(LedgerError::ENonceUsed { expected, got });
        }
        if got > expected {
            return Err(LedgerError::ENonceFuture { expected, got });
        }
        if self.mempool.len() >= self.capacity {
            return Err(LedgerError::EMempoolFull);
        }
        let next = expected.checked_add(1).ok_or(LedgerError::ENonceUsed { expected, got })?;
        self.pending.insert(tx.sender(), next);
        self.mempool.push_back(tx);
        Ok(())
    }

    /// Transactions waiting for a block.
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    /// Makes the next proposed block start the next epoch.
    pub fn force_next_epoch(&mut self) {
        self.force_epoch = true;
    }

    /// Moves the validator's clock forward by `ms`.
    pub fn advance_clock(&mut self, ms: u64) {
        self.clock_offset_ms = self.clock_offset_ms.saturating_add(ms);
    }

    /// Sets how far the validator's clock runs ahead of the machine's.
    pub fn set_clock_offset(&mut self, ms: u64) {
        self.clock_offset_ms = ms;
    }

    /// How far the validator's clock runs ahead of the machine's.
    pub fn clock_offset_ms(&self) -> u64 {
        self.clock_offset_ms
    }

    /// The next block after `tip` at machine time `now_ms`, with up to the block limit of the
    /// oldest mempool transactions. The timestamp is `now_ms` plus the clock offset, but never
    /// less than the tip's; the epoch goes up when that time passes the epoch's end or an
    /// advance was requested.
    pub fn propose(&mut self, tip: &Tip, now_ms: u64) -> Block {
        self.propose_verified(tip, now_ms).to_block()
    }

    /// [`Sequencer::propose`], keeping the transactions' verification, so that
    /// [`crate::Ledger::apply_verified`] need not verify them again.
    pub fn propose_verified(&mut self, tip: &Tip, now_ms: u64) -> VerifiedBlock {
        let count = self.mempool.len().min(self.max_block_transactions);
        let transactions: Vec<VerifiedTransaction> = self.mempool.drain(..count).collect();
        let timestamp_ms = now_ms.saturating_add(self.clock_offset_ms).max(tip.timestamp_ms);
        let next_epoch =
            self.force_epoch || epoch_due(tip.epoch_start_ms, self.epoch_duration_ms, timestamp_ms);
        self.force_epoch = false;
        let header = BlockHeader {
            height: tip.height.saturating_add(1),
            parent_digest: tip.digest,
            timestamp_ms,
            epoch: if next_epoch { tip.epoch.saturating_add(1) } else { tip.epoch },
            random_seed: block_random_seed(&self.validator, &tip.digest),
            tx_digests: Vec::new(),
        };
        VerifiedBlock::ordered(header, transactions)
    }

    /// Forgets pending nonces that applied blocks have caught up with.
    pub fn settle(&mut self, applied_next: impl Fn(&Address) -> u64) {
        self.pending.retain(|sender, next| *next > applied_next(sender));
    }

    /// Drops the mempool and every pending nonce, returning the dropped transactions. Used when a
    /// proposed block could not be applied: later transactions of its senders could no longer
    /// follow their nonces.
    pub fn reset(&mut self) -> Vec<VerifiedTransaction> {
        self.pending.clear();
        self.mempool.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use atoma_contract::Call;

    const CHAIN: [u8; 32] = [1; 32];

    fn tx(key: &Keypair, nonce: u64) -> VerifiedTransaction {
        key.sign_call(CHAIN, nonce, Call::TransferToma { recipient: Address([2; 32]), amount: 1 })
            .verify(&CHAIN)
            .unwrap()
    }

    fn tip() -> Tip {
        Tip { height: 4, digest: Digest([3; 32]), timestamp_ms: 10_000, epoch: 2, epoch_start_ms: 9_000 }
    }

    #[test]
    fn nonces_pipeline_and_the_mempool_is_bounded() {
        let mut s = Sequencer::new(Keypair::test_account(9), 60_000, 2, 10);
        let k = Keypair::test_account(0);
        assert_eq!(s.admit(tx(&k, 1), 0), Err(LedgerError::ENonceFuture { expected: 0, got: 1 }));
        s.admit(tx(&k, 0), 0).unwrap();
        assert_eq!(s.admit(tx(&k, 0), 0), Err(LedgerError::ENonceUsed { expected: 1, got: 0 }));
        s.admit(tx(&k, 1), 0).unwrap();
        assert_eq!(s.admit(tx(&k, 2), 0), Err(LedgerError::EMempoolFull));
        assert_eq!(s.expected_nonce(&k.address(), 0), 2);
        let block = s.propose(&tip(), 0);
        assert_eq!(block.transactions.len(), 2);
        s.settle(|_| 2);
        assert_eq!(s.expected_nonce(&k.address(), 0), 0, "settled senders fall back to the applied nonce");
    }

    #[test]
    fn blocks_follow_the_tip_and_the_clock() {
        let mut s = Sequencer::new(Keypair::test_account(9), 60_000, 10, 10);
        let b = s.propose(&tip(), 5_000);
        assert_eq!(
            (b.header.height, b.header.timestamp_ms, b.header.epoch),
            (5, 10_000, 2),
            "time never goes back"
        );
        s.force_next_epoch();
        assert_eq!(s.propose(&tip(), 20_000).header.epoch, 3);
        assert_eq!(s.propose(&tip(), 20_000).header.epoch, 2, "a forced advance applies once");
        s.advance_clock(60_000);
        let late = s.propose(&tip(), 20_000);
        assert_eq!((late.header.timestamp_ms, late.header.epoch), (80_000, 3));
        assert_eq!(late.header.parent_digest, tip().digest);
    }
}
