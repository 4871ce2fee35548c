//! Index entries not yet written to their tables.
//!
//! Four indexes have keys that land anywhere in their B-trees: transaction digest → position,
//! events by sender, events by object, and nonces by address. Written with every block, each of
//! a block's transactions would rewrite a 4 KiB page of each such table once the tables are
//! large — about four times the bytes the block itself needs, and the commit's cost grew with
//! the chain. Instead, [`super::Store`] keeps them here in memory and writes them to the
//! tables in one sorted batch every [`INDEX_BATCH`] transactions (and with every snapshot), so a
//! leaf page is rewritten once per batch rather than once per transaction. The tables record in
//! `meta` the height they are complete up to (`indexed_height`); the entries here are those of
//! the blocks after it, gathered again on open from the stored blocks and from the outcomes
//! of the blocks recovery replays.
//!
//! A reader takes the entries it needs from here first, then opens a redb snapshot, and keeps
//! only entries of heights in `(indexed_height, tip]` of that snapshot: the tables hold the
//! rest. A block's entries are added before its commit and the batch is dropped after the
//! commit that wrote it, so a reader never misses an entry and never counts one twice.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

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

/// `kind‖small_id`: an object's key in `events_by_object`, before the position.
pub(crate) type ObjectKey = [u8; 9];

/// The entries one block adds to the four indexes, each list in position order.
#[derive(Default, Debug)]
pub(crate) struct BlockEntries {
    /// Transaction digest → position.
    pub txs: Vec<([u8; 32], TxPos)>,
    /// Each event's sender and position.
    pub senders: Vec<([u8; 32], PosKey)>,
    /// Each object an event names, and the event's position.
    pub objects: Vec<(ObjectKey, PosKey)>,
    /// Each sender's next nonce after the block.
    pub nonces: Vec<([u8; 32], u64)>,
}

/// The entries of the blocks after the tables' `indexed_height`. Blocks are added in height
/// order, so each sender's and object's positions are ascending.
#[derive(Default, Debug)]
pub(crate) struct Unindexed {
    pub txs: BTreeMap<[u8; 32], TxPos>,
    pub senders: BTreeMap<[u8; 32], Vec<PosKey>>,
    pub objects: BTreeMap<ObjectKey, Vec<PosKey>>,
    pub nonces: BTreeMap<[u8; 32], u64>,
}

impl Unindexed {
    /// Transactions held.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Adds one block's entries (blocks in height order).
    pub fn add(&mut self, entries: &BlockEntries) {
        self.txs.extend(entries.txs.iter().copied());
        for (sender, pos) in &entries.senders {
            self.senders.entry(*sender).or_default().push(*pos);
        }
        for (object, pos) in &entries.objects {
            self.objects.entry(*object).or_default().push(*pos);
        }
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

    /// The positions held under `key`, ascending.
    pub fn positions<K: Ord>(map: &BTreeMap<K, Vec<PosKey>>, key: &K) -> Vec<PosKey> {
        map.get(key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(height: u64) -> PosKey {
        let mut pos = [0u8; 24];
        pos[..16].copy_from_slice(&tx_pos(height, 0));
        pos
    }

    #[test]
    fn entries_are_kept_in_order_and_seen_only_within_the_heights_asked() {
        let mut unindexed = Unindexed::default();
        unindexed.add(&BlockEntries {
            txs: vec![([1; 32], tx_pos(5, 0))],
            senders: vec![([7; 32], event(5))],
            ..BlockEntries::default()
        });
        unindexed.add(&BlockEntries {
            txs: vec![([2; 32], tx_pos(6, 3))],
            senders: vec![([7; 32], event(6)), ([8; 32], event(6))],
            ..BlockEntries::default()
        });
        assert_eq!(unindexed.len(), 2);
        assert_eq!(unindexed.tx(&[2; 32], &(5..=6)), Some(tx_pos(6, 3)));
        assert_eq!(unindexed.tx(&[2; 32], &(5..=5)), None, "block 6 is not in this snapshot");
        assert_eq!(unindexed.tx(&[3; 32], &(0..=9)), None);
        assert_eq!(Unindexed::positions(&unindexed.senders, &[7; 32]), vec![event(5), event(6)]);
        assert_eq!(Unindexed::positions(&unindexed.senders, &[9; 32]), Vec::<PosKey>::new());
        assert_eq!(height_of(&tx_pos(9, 1)), 9);
        unindexed.clear();
        assert_eq!(unindexed.len(), 0);
    }
}
