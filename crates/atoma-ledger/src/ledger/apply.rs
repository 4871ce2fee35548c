//! Applying a block: checks against the tip, execution, one commit, publication; and what
//! happens when the commit fails.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::recovery::recover;
use super::{ApplyOutcome, Durable, Ledger, Live, Tip, micros};
use crate::block::{Block, BlockHeader};
use crate::error::{ChainError, LedgerError};
use crate::execution::{BlockEffects, VerifiedBlock, check_follows, execute_block};
use crate::state::combined_digest;
use crate::store::{Commit, Snapshot};

impl Ledger {
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
}
