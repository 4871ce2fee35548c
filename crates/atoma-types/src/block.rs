//! Blocks, their digests, and where blocks and transactions get their randomness (SPEC §12).
//!
//! Height 0 is the genesis block (no transactions). Every later block names its parent's digest,
//! carries a timestamp in milliseconds that never goes below its parent's, an epoch, a random
//! seed and the digests of its transactions in order. A block's digest is blake2b-256 of the BCS
//! encoding of its header, and the header commits to the transactions through their digests.
//!
//! # Randomness
//! A single validator derives the block seed from its own ed25519 signature over
//! `"atoma-block-seed" ‖ parent_digest` ([`block_random_seed`]): ed25519 signatures are
//! deterministic, so the seed is reproducible and nobody else can predict it — **but the validator
//! knows it before it orders the block**, and so could choose which transactions to include to
//! steer node sampling. That is acceptable for a local network only. The replicated network will
//! take the seed from the consensus engine's threshold randomness, as Sui does; the ledger treats
//! the seed as an input from the ordering layer and does not care where it came from. Each
//! transaction's seed is `blake2b-256(block_seed ‖ tx_digest)` ([`transaction_random_seed`]).

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, TxContext};
use serde::{Deserialize, Serialize};

use crate::codec::encode;
use crate::digest::Digest;
use crate::tx::{Keypair, SignedTransaction};

/// The most transactions one block may hold.
pub const MAX_BLOCK_TRANSACTIONS: usize = 1024;
/// Domain separator of the validator's seed signature.
const BLOCK_SEED_DOMAIN: &[u8] = b"atoma-block-seed";

/// What a block commits to. Its BCS encoding is hashed into the block digest.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    /// 0 for genesis, then +1 per block.
    pub height: u64,
    /// The previous block's digest; for genesis, the genesis digest (the chain id).
    pub parent_digest: Digest,
    /// Milliseconds since the Unix epoch; never less than the parent's.
    pub timestamp_ms: u64,
    /// The epoch the block's transactions execute in.
    pub epoch: u64,
    /// The block's randomness; see the module docs for who knows it when.
    pub random_seed: [u8; 32],
    /// The digests of the block's transactions, in execution order.
    pub tx_digests: Vec<Digest>,
}

impl BlockHeader {
    /// blake2b-256 of the header's BCS encoding.
    pub fn digest(&self) -> Digest {
        Digest(blake2b256(&[&encode(self)]))
    }

    /// The context the contract executes this block's transaction `tx_digest`, signed by
    /// `sender`, in: see [`tx_context`].
    pub fn tx_context(&self, sender: Address, tx_digest: &Digest) -> TxContext {
        tx_context(self.epoch, self.timestamp_ms, &self.random_seed, sender, tx_digest)
    }
}

/// The one place a transaction's [`TxContext`] is derived: the block's epoch and timestamp, the
/// sender, the transaction digest, and the transaction's seed from the block's
/// ([`transaction_random_seed`]). Executing a block, replaying it, a dry run and the simulator's
/// checks all go through here.
pub fn tx_context(
    epoch: u64,
    timestamp_ms: u64,
    block_seed: &[u8; 32],
    sender: Address,
    tx_digest: &Digest,
) -> TxContext {
    TxContext {
        sender,
        epoch,
        timestamp_ms,
        tx_digest: tx_digest.0,
        random_seed: transaction_random_seed(block_seed, tx_digest),
    }
}

/// A header and the transactions it names.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    /// What the block commits to.
    pub header: BlockHeader,
    /// Aligned with `header.tx_digests`.
    pub transactions: Vec<SignedTransaction>,
}

impl Block {
    /// The block digest (the header's digest).
    pub fn digest(&self) -> Digest {
        self.header.digest()
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.header.height
    }
}

/// A single validator's block seed: blake2b-256 of its signature over
/// `"atoma-block-seed" ‖ parent_digest`. Known to the validator in advance (module docs).
pub fn block_random_seed(validator: &Keypair, parent_digest: &Digest) -> [u8; 32] {
    let signature = validator.sign_message(&[BLOCK_SEED_DOMAIN, &parent_digest.0[..]].concat());
    blake2b256(&[&signature])
}

/// A transaction's seed, handed to the contract as `TxContext::random_seed` (SPEC §8):
/// `blake2b-256(block_seed ‖ tx_digest)`.
pub fn transaction_random_seed(block_seed: &[u8; 32], tx_digest: &Digest) -> [u8; 32] {
    blake2b256(&[block_seed, &tx_digest.0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_reproducible_and_distinct() {
        let v = Keypair::test_account(0);
        let a = block_random_seed(&v, &Digest([1; 32]));
        assert_eq!(a, block_random_seed(&v, &Digest([1; 32])));
        assert_ne!(a, block_random_seed(&v, &Digest([2; 32])));
        assert_ne!(a, block_random_seed(&Keypair::test_account(1), &Digest([1; 32])));
        assert_ne!(
            transaction_random_seed(&a, &Digest([3; 32])),
            transaction_random_seed(&a, &Digest([4; 32]))
        );
    }

    #[test]
    fn header_digest_commits_to_every_field() {
        let h = BlockHeader {
            height: 1,
            parent_digest: Digest([0; 32]),
            timestamp_ms: 5,
            epoch: 0,
            random_seed: [0; 32],
            tx_digests: vec![],
        };
        let mut later = h.clone();
        later.timestamp_ms = 6;
        let mut with_tx = h.clone();
        with_tx.tx_digests.push(Digest([1; 32]));
        assert_ne!(h.digest(), later.digest());
        assert_ne!(h.digest(), with_tx.digest());
    }
}
