//! Dry runs: a transaction executed against the committed state and undone, without ordering it
//! and without taking the state's lock.
//!
//! The contract undoes a dry run's writes with its journal, but it needs the state mutably for
//! that one call, so a dry run on the readers' state would take its write lock and hold up block
//! application — on a replicated chain, finality. Dry runs have a state of their own instead: a
//! copy of the committed state, made at the first dry run from the newest snapshot on disk, and
//! brought up to the durable tip before each dry run by replaying the blocks stored since. All of
//! it reads redb's own snapshots, which need no lock, so the block producer never waits for a dry
//! run. A dry run pays for its catching up (a replay runs at about 300,000 transactions a second
//! on the project's machine), and dry runs wait for each other on the copy's mutex. The copy
//! costs as much memory as the contract's state, from the first dry run on.

use atoma_contract::hash::blake2b256;

use super::recovery::replay;
use super::{DryRunOutcome, Ledger};
use crate::block::tx_context;
use crate::error::ChainError;
use crate::state::ChainState;
use crate::tx::SignedTransaction;
use atoma_types::TxStatus;

impl Ledger {
    /// Executes a transaction against the committed state at the tip and undoes it.
    ///
    /// The nonce is not checked (a dry run may come before the nonce is known), and the randomness
    /// differs from what the real block will give, so a sampled node may differ.
    ///
    /// # Errors
    /// The transaction's own verification errors (size, encoding, chain id, signature); a storage
    /// failure or damage found while bringing the dry runs' state up to the tip.
    pub fn dry_run(&self, signed: SignedTransaction) -> Result<DryRunOutcome, ChainError> {
        let tx = signed.verify(&self.params.chain_id)?;
        let digest = tx.digest();
        // A panic during a dry run (the contract catches its own) would leave the copy suspect:
        // it is dropped and made again.
        let mut lane = self.dry_runs.lock().unwrap_or_else(|poisoned| {
            let mut lane = poisoned.into_inner();
            *lane = None;
            lane
        });
        let mut state = self.caught_up(lane.take())?;
        let tip = &state.ledger;
        let (epoch, timestamp_ms) = (tip.epoch, tip.timestamp_ms);
        let block_seed = blake2b256(&[b"atoma-dry-run", &tip.block_digest.0]);
        let ctx = tx_context(epoch, timestamp_ms, &block_seed, tx.sender(), &digest);
        let (status, events) = match state.db.dry_run(&ctx, &tx.transaction().call) {
            Ok(events) => (TxStatus::Success, events),
            Err(e) => (TxStatus::Failure(e), Vec::new()),
        };
        *lane = Some(state);
        Ok(DryRunOutcome { digest, status, events, epoch, timestamp_ms })
    }

    /// The dry runs' state brought to the durable tip: `kept` replayed forward, or a copy made
    /// from the newest whole snapshot when there is none yet.
    fn caught_up(&self, kept: Option<ChainState>) -> Result<ChainState, ChainError> {
        let tip = self.tip().height;
        let state = match kept {
            Some(state) if state.ledger.height <= tip => state,
            _ => self.newest_snapshot()?,
        };
        let from = state.ledger.height;
        if from == tip {
            return Ok(state);
        }
        replay(&self.store, &self.params, state, from, tip, None, &mut |_, _, _| {})
    }

    /// The state of the newest snapshot that restores whole (opening passed over and deleted the
    /// damaged ones; one damaged since is passed over here too).
    fn newest_snapshot(&self) -> Result<ChainState, ChainError> {
        let mut last_error = None;
        for height in self.store.snapshot_heights()?.into_iter().rev() {
            match self.store.snapshot_at(height).and_then(|s| {
                s.ok_or_else(|| ChainError::corrupt(format!("the snapshot at height {height} is missing")))?
                    .restore()
            }) {
                Ok(state) => return Ok(state),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ChainError::corrupt("the store holds no snapshot")))
    }
}
