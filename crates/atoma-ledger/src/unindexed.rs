//! Index entries not yet written to their tables.
//!
//! Four indexes have keys that land anywhere in their B-trees: transaction digest → position,
//! events by sender, events by object, and nonces by address. Written with every block, each of
//! a block's transactions would rewrite a 4 KiB page of each such table once the tables are
//! large — about four times the bytes the block itself needs, and the commit's cost grew with
//! the chain. Instead, [`crate::store::Store`] keeps them here in memory and writes them to the
//! tables in one sorted batch every [`INDEX_BATCH`] transactions (and with every snapshot), so a
//! leaf page is rewritten once per batch rather than once per transaction. The tables record in
//! `meta` the height they are complete up to (`indexed_height`); the entries here are those of
//! the blocks after it, and they are rebuilt from the stored blocks on open.
//!
//! A reader takes the entries it needs from here first, then opens a redb snapshot, and keeps
//! only entries of heights in `(indexed_height, tip]` of that snapshot: the tables hold the
//! rest. A block's entries are added before its commit and the batch is dropped after the
//! commit that wrote it, so a reader never misses an entry and never counts one twice.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeInclusive};

/// Transactions whose entries are held in memory before they are written in one batch.
pub const INDEX_BATCH: usize = 65_536;

/// A transaction's position `height‖index`, big-endian: the key of the `transactions` table.
pub(crate) type TxPos = [u8; 16];
/// An event's position `height‖tx_index‖event_seq`, big-endian.
pub(crate) type PosKey = [u8; 24];

/// `height‖index` as a key.
pub(crate) fn tx_pos(height: u64, index: u64) -> TxPos {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The height in a position key (the first 8 bytes, big-endian); 0 for a short key.
pub(crate) fn height_of(position: &[u8]) -> u64 {
    position.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes)
}

/// The entries one block adds to the four indexes.
#[derive(Default, Debug)]
pub(crate) struct BlockEntries {
    /// Transaction digest → position.
    pub txs: Vec<([u8; 32], TxPos)>,
    /// `address‖event position` keys.
    pub senders: Vec<Vec<u8>>,
    /// `kind‖small_id‖event position` keys.
    pub objects: Vec<Vec<u8>>,
    /// Each sender's next nonce after the block.
    pub nonces: Vec<([u8; 32], u64)>,
}

/// The entries of the blocks after the tables' `indexed_height`.
#[derive(Default, Debug)]
pub(crate) struct Unindexed {
    pub txs: BTreeMap<[u8; 32], TxPos>,
    pub senders: BTreeSet<Vec<u8>>,
    pub objects: BTreeSet<Vec<u8>>,
    pub nonces: BTreeMap<[u8; 32], u64>,
}

impl Unindexed {
    /// Transactions held.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Adds one block's entries.
    pub fn add(&mut self, entries: &BlockEntries) {
        self.txs.extend(entries.txs.iter().copied());
        self.senders.extend(entries.senders.iter().cloned());
        self.objects.extend(entries.objects.iter().cloned());
        self.nonces.extend(entries.nonces.iter().copied());
    }

    /// Forgets everything (the entries were written to the tables).
    pub fn clear(&mut self) {
        *self = Unindexed::default();
    }

    /// The position of a transaction whose block lies within `heights`.
    pub fn tx(&self, digest: &[u8; 32], heights: &RangeInclusive<u64>) -> Option<TxPos> {
        self.txs.get(digest).copied().filter(|pos| heights.contains(&height_of(pos)))
    }

    /// Keys of `set` from `low` to `high` (both included) whose event position (the last 24
    /// bytes) lies within `heights`.
    pub fn range(
        set: &BTreeSet<Vec<u8>>,
        low: &[u8],
        high: &[u8],
        heights: &RangeInclusive<u64>,
    ) -> Vec<Vec<u8>> {
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(low), Bound::Included(high));
        set.range::<[u8], _>(bounds)
            .filter(|key| heights.contains(&height_of(&key[key.len().saturating_sub(24)..])))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_seen_only_within_the_heights_asked() {
        let mut unindexed = Unindexed::default();
        let event = |height: u64| [&[7u8][..], &tx_pos(height, 0), &[0u8; 8]].concat();
        unindexed.add(&BlockEntries {
            txs: vec![([1; 32], tx_pos(5, 0)), ([2; 32], tx_pos(6, 3))],
            senders: vec![event(5), event(6)],
            ..BlockEntries::default()
        });
        assert_eq!(unindexed.len(), 2);
        assert_eq!(unindexed.tx(&[2; 32], &(5..=6)), Some(tx_pos(6, 3)));
        assert_eq!(unindexed.tx(&[2; 32], &(5..=5)), None, "block 6 is not in this snapshot");
        assert_eq!(unindexed.tx(&[3; 32], &(0..=9)), None);
        let all = Unindexed::range(&unindexed.senders, &[7], &[7, 0xff], &(0..=9));
        assert_eq!(all, vec![event(5), event(6)]);
        assert_eq!(Unindexed::range(&unindexed.senders, &[7], &[7, 0xff], &(6..=9)), vec![event(6)]);
        assert_eq!(height_of(&tx_pos(9, 1)), 9);
        unindexed.clear();
        assert_eq!(unindexed.len(), 0);
    }
}
