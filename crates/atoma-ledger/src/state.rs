//! The state a block changes: the contract's [`AtomaDb`] plus the ledger's own [`LedgerState`]
//! (tip, epoch clock, nonces), and the digest that covers both.
//!
//! Everything here is a function of the genesis and the blocks applied so far; nothing depends on
//! the validator's clock or on the order component that produced the blocks.
//!
//! # Epochs
//! Epoch 0 starts at the genesis timestamp. A block stays in its parent's epoch unless its
//! timestamp reaches the epoch's end (`epoch_start_ms + epoch_duration_ms`), in which case it is in
//! the next epoch; the orderer may also move a block into the next epoch early (a local network's
//! "advance epoch"). Either way the epoch goes up by exactly one, and the new epoch starts at that
//! block's timestamp — so after a long idle time epochs do not race to catch up.

use std::collections::BTreeMap;

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, AtomaDb};
use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::codec::encode;
use crate::digest::Digest;

/// Parameters fixed at genesis that block validation needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChainParams {
    /// The genesis digest, which every transaction must name.
    pub chain_id: [u8; 32],
    /// How long an epoch lasts at least, in milliseconds.
    pub epoch_duration_ms: u64,
}

/// The ledger's part of the state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LedgerState {
    /// The height of the last applied block.
    pub height: u64,
    /// The digest of the last applied block.
    pub block_digest: Digest,
    /// The timestamp of the last applied block.
    pub timestamp_ms: u64,
    /// The epoch of the last applied block.
    pub epoch: u64,
    /// The timestamp at which the current epoch started.
    pub epoch_start_ms: u64,
    /// Each sender's next nonce; absent means 0.
    pub nonces: BTreeMap<Address, u64>,
}

impl LedgerState {
    /// The state right after the genesis block.
    pub fn at_genesis(genesis_header: &BlockHeader) -> Self {
        LedgerState {
            height: 0,
            block_digest: genesis_header.digest(),
            timestamp_ms: genesis_header.timestamp_ms,
            epoch: 0,
            epoch_start_ms: genesis_header.timestamp_ms,
            nonces: BTreeMap::new(),
        }
    }

    /// The sender's next nonce among applied blocks.
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        self.nonces.get(sender).copied().unwrap_or(0)
    }

    /// Whether a block with this timestamp must start the next epoch.
    pub fn epoch_due(&self, timestamp_ms: u64, epoch_duration_ms: u64) -> bool {
        epoch_due(self.epoch_start_ms, epoch_duration_ms, timestamp_ms)
    }

    /// Moves the tip to `header` (already validated).
    pub(crate) fn advance_to(&mut self, header: &BlockHeader, digest: Digest) {
        if header.epoch != self.epoch {
            self.epoch_start_ms = header.timestamp_ms;
        }
        self.height = header.height;
        self.block_digest = digest;
        self.timestamp_ms = header.timestamp_ms;
        self.epoch = header.epoch;
    }

    /// blake2b-256 of the BCS encoding.
    pub fn digest(&self) -> [u8; 32] {
        blake2b256(&[&encode(self)])
    }
}

/// Whether a block at `timestamp_ms` is past the end of an epoch that started at
/// `epoch_start_ms`, and so must be in the next epoch.
pub fn epoch_due(epoch_start_ms: u64, epoch_duration_ms: u64, timestamp_ms: u64) -> bool {
    timestamp_ms >= epoch_start_ms.saturating_add(epoch_duration_ms)
}

/// The whole replicated state: the contract's and the ledger's.
#[derive(Clone, Debug)]
pub struct ChainState {
    /// The contract's state.
    pub db: AtomaDb,
    /// The ledger's state.
    pub ledger: LedgerState,
}

impl ChainState {
    /// The digest of both parts (see [`combined_digest`]).
    pub fn digest(&self) -> Digest {
        combined_digest(&self.db.canonical_bytes(), &self.ledger)
    }
}

/// `blake2b-256("atoma-chain-state" ‖ blake2b-256(contract_bytes) ‖ blake2b-256(bcs(ledger)))`,
/// where `contract_bytes` is [`AtomaDb::canonical_bytes`]. Equal digests mean equal states.
pub fn combined_digest(contract_bytes: &[u8], ledger: &LedgerState) -> Digest {
    let contract = blake2b256(&[contract_bytes]);
    Digest(blake2b256(&[b"atoma-chain-state", &contract, &ledger.digest()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(height: u64, timestamp_ms: u64, epoch: u64) -> BlockHeader {
        BlockHeader {
            height,
            parent_digest: Digest::default(),
            timestamp_ms,
            epoch,
            random_seed: [0; 32],
            tx_digests: vec![],
        }
    }

    #[test]
    fn epochs_start_at_the_block_that_opens_them() {
        let mut s = LedgerState::at_genesis(&header(0, 1_000, 0));
        assert!(!s.epoch_due(60_999, 60_000));
        assert!(s.epoch_due(61_000, 60_000));
        let h = header(1, 500_000, 1);
        s.advance_to(&h, h.digest());
        assert_eq!((s.epoch, s.epoch_start_ms), (1, 500_000));
        assert!(!s.epoch_due(559_999, 60_000));
    }
}
