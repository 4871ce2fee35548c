//! The consensus block: what Simplex orders and marshal stores, serves and delivers.
//!
//! It holds the transactions' bytes as submitted, the proposer's timestamp, a local testnet's
//! time controls, and the VRF seeds the chain must carry so that every validator — one that was
//! down included — can execute every block with the same randomness (docs/VALIDATORS.md §2–3).
//! Its encoding is commonware-codec's, canonical (one byte string per block), and its digest,
//! sha256 of that encoding, commits to every field. The ledger block a height executes as is
//! derived from it when it is executed ([`crate::executor`]).

use bytes::{BufMut, Bytes};
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize, RangeCfg, Read, ReadExt, Write,
};
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf::Seed;
use commonware_consensus::types::{Height, Round, View};
use commonware_consensus::{BoundedBlock, Heightable};
use commonware_cryptography::bls12381::primitives::variant::Variant;
use commonware_cryptography::{Digestible, Hasher, Sha256};

use crate::{Digest, V};

/// The most transactions a consensus block holds: the ledger's own limit.
pub const MAX_BLOCK_TRANSACTIONS: usize = atoma_types::block::MAX_BLOCK_TRANSACTIONS;
/// The most bytes of transactions a consensus block holds (4 MiB): what a proposer fills, what a
/// decoder accepts, and what bounds the p2p messages that carry blocks.
pub const MAX_BLOCK_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// The most time controls one block serves.
pub const MAX_CONTROLS: usize = 64;

/// How a consensus block is bounded when decoded; the same on every validator, and never lowered
/// while blocks are stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockLimits {
    /// Transactions per block, at most.
    pub max_transactions: usize,
    /// Bytes of all transactions of a block together, at most.
    pub max_transaction_bytes: usize,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            max_transactions: MAX_BLOCK_TRANSACTIONS,
            max_transaction_bytes: MAX_BLOCK_TRANSACTION_BYTES,
        }
    }
}

/// A block of the validator set's chain. See the module docs and docs/VALIDATORS.md §2.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConsensusBlock {
    /// The parent's digest (marshal checks it).
    pub parent: Digest,
    /// The parent's height plus one (marshal checks it).
    pub height: Height,
    /// The view the block was proposed in.
    pub view: View,
    /// The proposer's clock, in milliseconds since the Unix epoch; never below the parent's.
    pub timestamp_ms: u64,
    /// How far a local testnet's clock was advanced, in total, up to this block.
    pub clock_offset_ms: u64,
    /// A local testnet's "advance epoch": the ledger block starts the next epoch.
    pub advance_epoch: bool,
    /// The local testnet's time controls this block serves, by request id (their requesters are
    /// answered when it is executed); at most [`MAX_CONTROLS`].
    pub controls: Vec<u64>,
    /// The VRF seed of the parent's view; `None` when the parent is the genesis block.
    pub parent_seed: Option<Seed<V>>,
    /// The VRF seed of the view right after the parent's, when that view was nullified (this
    /// block's view is beyond it); `None` otherwise.
    pub skip_seed: Option<Seed<V>>,
    /// BCS-encoded signed transactions, in execution order.
    pub transactions: Vec<Bytes>,
}

impl ConsensusBlock {
    /// The genesis block of the chain with this chain id: height 0, view 0, empty. Its parent is
    /// sha256 of the chain id, so two chains' genesis blocks differ.
    pub fn genesis(chain_id: &[u8; 32]) -> Self {
        ConsensusBlock {
            parent: Sha256::hash(&[b"atoma-consensus-genesis", &chain_id[..]]),
            height: Height::zero(),
            view: View::zero(),
            timestamp_ms: 0,
            clock_offset_ms: 0,
            advance_epoch: false,
            controls: Vec::new(),
            parent_seed: None,
            skip_seed: None,
            transactions: Vec::new(),
        }
    }

    /// The bytes of all its transactions together.
    pub fn transaction_bytes(&self) -> usize {
        self.transactions.iter().map(Bytes::len).sum()
    }
}

/// The round of `view` in the validator set's only epoch.
pub fn round(view: View) -> Round {
    Round::new(commonware_consensus::types::Epoch::zero(), view)
}

impl Write for ConsensusBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.parent.write(buf);
        self.height.write(buf);
        self.view.write(buf);
        self.timestamp_ms.write(buf);
        self.clock_offset_ms.write(buf);
        self.advance_epoch.write(buf);
        self.controls.write(buf);
        self.parent_seed.write(buf);
        self.skip_seed.write(buf);
        self.transactions.write(buf);
    }
}

impl EncodeSize for ConsensusBlock {
    fn encode_size(&self) -> usize {
        self.parent.encode_size()
            + self.height.encode_size()
            + self.view.encode_size()
            + self.timestamp_ms.encode_size()
            + self.clock_offset_ms.encode_size()
            + self.advance_epoch.encode_size()
            + self.controls.encode_size()
            + self.parent_seed.encode_size()
            + self.skip_seed.encode_size()
            + self.transactions.encode_size()
    }
}

impl Read for ConsensusBlock {
    type Cfg = BlockLimits;

    fn read_cfg(buf: &mut impl Buf, limits: &BlockLimits) -> Result<Self, CodecError> {
        let parent = Digest::read(buf)?;
        let height = Height::read(buf)?;
        let view = View::read(buf)?;
        let timestamp_ms = u64::read(buf)?;
        let clock_offset_ms = u64::read(buf)?;
        let advance_epoch = bool::read(buf)?;
        let controls = Vec::<u64>::read_cfg(buf, &((0..=MAX_CONTROLS).into(), ()))?;
        let parent_seed = Option::<Seed<V>>::read(buf)?;
        let skip_seed = Option::<Seed<V>>::read(buf)?;
        let each: RangeCfg<usize> = (0..=atoma_types::tx::MAX_TRANSACTION_SIZE).into();
        let count: RangeCfg<usize> = (0..=limits.max_transactions).into();
        let transactions = Vec::<Bytes>::read_cfg(buf, &(count, each))?;
        let block = ConsensusBlock {
            parent,
            height,
            view,
            timestamp_ms,
            clock_offset_ms,
            advance_epoch,
            controls,
            parent_seed,
            skip_seed,
            transactions,
        };
        if block.transaction_bytes() > limits.max_transaction_bytes {
            return Err(CodecError::Invalid("ConsensusBlock", "its transactions exceed the block's bytes"));
        }
        Ok(block)
    }
}

impl Digestible for ConsensusBlock {
    type Digest = Digest;

    /// sha256 of the canonical encoding: it commits to every field.
    fn digest(&self) -> Digest {
        let encoded = commonware_codec::Encode::encode(self);
        Sha256::hash(&[encoded.as_ref()])
    }
}

impl Heightable for ConsensusBlock {
    fn height(&self) -> Height {
        self.height
    }
}

impl commonware_consensus::Block for ConsensusBlock {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl BoundedBlock for ConsensusBlock {
    fn max_encode_size(limits: &BlockLimits) -> usize {
        let seed = 1 + Round::MAX_ENCODE_SIZE + <V as Variant>::Signature::SIZE;
        // A varint length before every transaction, and before the list: at most 5 bytes each.
        let transactions = 5 + limits.max_transactions * 5 + limits.max_transaction_bytes;
        let controls = 5 + MAX_CONTROLS * 8;
        Digest::SIZE
            + Height::MAX_ENCODE_SIZE
            + View::MAX_ENCODE_SIZE
            + 2 * 8
            + 1
            + controls
            + 2 * seed
            + transactions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode, Encode};

    fn block(transactions: Vec<Bytes>) -> ConsensusBlock {
        ConsensusBlock {
            parent: Sha256::hash(&[b"p"]),
            height: Height::new(7),
            view: View::new(9),
            timestamp_ms: 1_700_000_000_000,
            clock_offset_ms: 60_000,
            advance_epoch: true,
            controls: vec![42],
            parent_seed: None,
            skip_seed: None,
            transactions,
        }
    }

    #[test]
    fn encodes_canonically_and_stays_in_its_bound() {
        let limits = BlockLimits::default();
        let b = block(vec![Bytes::from(vec![1u8; 300]), Bytes::from_static(b"tx")]);
        let encoded = b.encode();
        assert_eq!(encoded.len(), b.encode_size());
        let decoded = ConsensusBlock::decode_cfg(encoded.clone(), &limits).expect("decodes");
        assert_eq!(decoded, b);
        assert_eq!(decoded.digest(), b.digest());
        assert!(encoded.len() <= ConsensusBlock::max_encode_size(&limits));
        let mut trailing = encoded.to_vec();
        trailing.push(0);
        assert!(ConsensusBlock::decode_cfg(Bytes::from(trailing), &limits).is_err(), "trailing bytes");
    }

    #[test]
    fn every_field_changes_the_digest() {
        let b = block(vec![Bytes::from_static(b"tx")]);
        let changes: [fn(&mut ConsensusBlock); 7] = [
            |b| b.controls.clear(),
            |b| b.timestamp_ms += 1,
            |b| b.clock_offset_ms += 1,
            |b| b.advance_epoch = false,
            |b| b.view = View::new(10),
            |b| b.transactions.push(Bytes::new()),
            |b| b.parent = Sha256::hash(&[b"q"]),
        ];
        for change in changes {
            let mut other = b.clone();
            change(&mut other);
            assert_ne!(other.digest(), b.digest());
        }
        assert_ne!(ConsensusBlock::genesis(&[1; 32]).digest(), ConsensusBlock::genesis(&[2; 32]).digest());
    }

    #[test]
    fn oversized_blocks_are_refused_by_the_decoder() {
        let small = BlockLimits { max_transactions: 2, max_transaction_bytes: 10 };
        let too_many = block(vec![Bytes::new(); 3]).encode();
        assert!(ConsensusBlock::decode_cfg(too_many, &small).is_err());
        let too_large = block(vec![Bytes::from(vec![0u8; 11])]).encode();
        assert!(ConsensusBlock::decode_cfg(too_large, &small).is_err());
        let fits = block(vec![Bytes::from(vec![0u8; 10])]).encode();
        assert!(ConsensusBlock::decode_cfg(fits, &small).is_ok());
    }
}
