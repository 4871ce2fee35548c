//! The single validator's proposer: turns transactions into the next block of a local network.
//!
//! It holds the validator's key (which signs each block's random seed: [`block_random_seed`]),
//! the epoch rule, the validator's clock offset (moved by "advance clock") and the "advance
//! epoch" request. It reads no clock and does no I/O: the caller passes the machine time and the
//! transactions, taken from the [`crate::mempool::Mempool`]. A validator set replaces this
//! part — its leader proposes, the engine finalizes — and everything after ordering stays the
//! same.

use crate::block::{BlockHeader, block_random_seed};
use crate::execution::VerifiedBlock;
use crate::ledger::Tip;
use crate::state::epoch_due;
use crate::tx::{Keypair, VerifiedTransaction};

/// The local network's block proposer. See the module docs.
#[derive(Debug)]
pub struct LocalProposer {
    validator: Keypair,
    epoch_duration_ms: u64,
    clock_offset_ms: u64,
    force_epoch: bool,
}

impl LocalProposer {
    /// A proposer signing block seeds with `validator`, starting epochs every
    /// `epoch_duration_ms` at least.
    pub fn new(validator: Keypair, epoch_duration_ms: u64) -> Self {
        LocalProposer { validator, epoch_duration_ms, clock_offset_ms: 0, force_epoch: false }
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

    /// The next block after `tip` at machine time `now_ms`, holding `transactions` in order. The
    /// timestamp is `now_ms` plus the clock offset, but never less than the tip's; the epoch
    /// goes up when that time passes the epoch's end or an advance was requested.
    pub fn propose(
        &mut self,
        tip: &Tip,
        now_ms: u64,
        transactions: Vec<VerifiedTransaction>,
    ) -> VerifiedBlock {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn tip() -> Tip {
        Tip { height: 4, digest: Digest([3; 32]), timestamp_ms: 10_000, epoch: 2, epoch_start_ms: 9_000 }
    }

    #[test]
    fn blocks_follow_the_tip_and_the_clock() {
        let mut p = LocalProposer::new(Keypair::test_account(9), 60_000);
        let b = p.propose(&tip(), 5_000, Vec::new());
        let header = b.header();
        assert_eq!(
            (header.height, header.timestamp_ms, header.epoch),
            (5, 10_000, 2),
            "time never goes back"
        );
        p.force_next_epoch();
        assert_eq!(p.propose(&tip(), 20_000, Vec::new()).header().epoch, 3);
        assert_eq!(p.propose(&tip(), 20_000, Vec::new()).header().epoch, 2, "a forced advance applies once");
        p.advance_clock(60_000);
        let late = p.propose(&tip(), 20_000, Vec::new());
        assert_eq!((late.header().timestamp_ms, late.header().epoch), (80_000, 3));
        assert_eq!(late.header().parent_digest, tip().digest);
    }
}
