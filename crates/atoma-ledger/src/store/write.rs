//! Writing: one commit per block — its header, transaction records, events and type index, and
//! at snapshot heights the snapshot and the state digest — and the four batched indexes, whose
//! entries are held in memory and written in sorted batches every [`INDEX_BATCH`]
//! transactions, with every snapshot and with the genesis (why: the `store` module's docs).
//!
//! [`INDEX_BATCH`]: super::unindexed::INDEX_BATCH

use std::collections::BTreeMap;

use atoma_contract::Address;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction};

use super::Store;
use super::schema::{
    BLOCK_HEIGHTS, BLOCKS, Commit, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META,
    META_GENESIS, META_INDEXED, META_OBJECT_LEN, META_SKIPPED, NONCES, SNAPSHOTS, SNAPSHOTS_KEPT,
    STATE_DIGESTS, Snapshot, TRANSACTIONS, TX_POSITIONS, TxRecordRef, object_key, pos_key, read_meta_u64,
    type_prefix, write_meta_u64,
};
use super::seal::{seal, unseal};
use super::unindexed::{BlockEntries, PosKey, Unindexed, tx_pos};
use crate::codec::encode;
use crate::error::ChainError;
use crate::events::object_refs;
use crate::tx::SignedTransaction;
use atoma_types::TxOutcome;

impl Store {
    /// Writes a block and its effects in one transaction, and commits (two-phase: two fsyncs)
    /// before returning.
    /// The batched indexes get the block's entries in memory, or — every [`INDEX_BATCH`]
    /// transactions, at snapshots and at genesis — every entry held, written in this commit.
    ///
    /// After a failure the held entries may include the failed block's (invisible to readers,
    /// whose snapshots end before it): the caller recovers, which gathers them again.
    ///
    /// [`INDEX_BATCH`]: super::unindexed::INDEX_BATCH
    pub fn commit(&self, c: &Commit<'_>) -> Result<(), ChainError> {
        let entries = block_entries(c.transactions.iter().map(|(_, outcome)| *outcome), c.nonces);
        let flush = c.genesis.is_some()
            || c.snapshot.is_some()
            || self.unindexed().len().saturating_add(entries.txs.len()) >= self.index_batch;
        let txn = self.begin_write()?;
        write_header(&txn, c)?;
        write_transactions(&txn, &c.transactions)?;
        if let Some(snapshot) = &c.snapshot {
            write_snapshot(&txn, snapshot)?;
        }
        let mut meta = txn.open_table(META)?;
        if let Some(genesis) = c.genesis {
            meta.insert(META_GENESIS, &seal(META.name(), META_GENESIS.as_bytes(), encode(genesis))[..])?;
        }
        let skipped = c.transactions.iter().filter(|(_, outcome)| !outcome.status.was_executed()).count();
        if skipped > 0 {
            let before = read_meta_u64(&meta, META_SKIPPED)?.unwrap_or(0);
            write_meta_u64(&mut meta, META_SKIPPED, before.saturating_add(skipped as u64))?;
        }
        if flush {
            // Readers wait for this commit: they must see the batch in the tables or in memory.
            let mut all = self.unindexed_mut();
            all.add(&entries);
            write_index(&txn, &all)?;
            write_meta_u64(&mut meta, META_INDEXED, c.header.height)?;
            let objects = txn.open_table(EVENTS_BY_OBJECT)?.len()?;
            write_meta_u64(&mut meta, META_OBJECT_LEN, objects)?;
            drop(meta);
            txn.commit()?;
            all.clear();
        } else {
            // Added before the commit: readers keep only entries their snapshot's tip covers.
            self.unindexed_mut().add(&entries);
            drop(meta);
            txn.commit()?;
        }
        Ok(())
    }
}

/// A block's entries in the four batched indexes, from its outcomes and its senders' new
/// nonces.
pub(crate) fn block_entries<'a>(
    outcomes: impl IntoIterator<Item = &'a TxOutcome>,
    nonces: &[(Address, u64)],
) -> BlockEntries {
    let mut entries = BlockEntries::default();
    for outcome in outcomes {
        // A skipped transaction is not indexed by its digest: the same digest may be executed in
        // another block (ordered twice, or with its nonce ahead first), and that is the one a
        // lookup finds. Its record stays at its position in its block.
        if outcome.status.was_executed() {
            entries.txs.push((outcome.digest.0, tx_pos(outcome.height, outcome.index)));
        }
        for event in &outcome.events {
            let pos = pos_key(event.position());
            entries.senders.push((event.sender.0, pos));
            for (kind, id) in object_refs(&event.event) {
                entries.objects.push((object_key(kind, id), pos));
            }
        }
    }
    entries.nonces = nonces.iter().map(|(address, next)| (address.0, *next)).collect();
    entries
}

fn write_header(txn: &WriteTransaction, c: &Commit<'_>) -> Result<(), ChainError> {
    let height = c.header.height;
    let key = height.to_be_bytes();
    txn.open_table(BLOCKS)?.insert(height, &seal(BLOCKS.name(), &key, encode(c.header))[..])?;
    txn.open_table(BLOCK_HEIGHTS)?.insert(&c.digest.0, height)?;
    if let Some(digest) = &c.state_digest {
        let sealed = seal(STATE_DIGESTS.name(), &key, digest.0.to_vec());
        txn.open_table(STATE_DIGESTS)?.insert(height, &sealed[..])?;
    }
    Ok(())
}

/// Writes transaction records, events and the type index: keys that only grow.
fn write_transactions(
    txn: &WriteTransaction,
    transactions: &[(Option<&SignedTransaction>, &TxOutcome)],
) -> Result<(), ChainError> {
    let mut records = txn.open_table(TRANSACTIONS)?;
    let mut events = txn.open_table(EVENTS)?;
    let mut by_type = txn.open_table(EVENTS_BY_TYPE)?;
    let mut key = Vec::new();
    for (signed, outcome) in transactions {
        let at = tx_pos(outcome.height, outcome.index);
        let record = seal(TRANSACTIONS.name(), &at, encode(&TxRecordRef::new(*signed, outcome)));
        records.insert(&at, &record[..])?;
        for event in &outcome.events {
            let pos = pos_key(event.position());
            events.insert(&pos[..], &seal(EVENTS.name(), &pos, encode(event))[..])?;
            key.clear();
            key.extend_from_slice(&type_prefix(event.event.name()));
            key.extend_from_slice(&pos);
            by_type.insert(&key[..], ())?;
        }
    }
    Ok(())
}

/// Writes `prefix ‖ position` for every position held under each prefix, in key order.
fn write_prefixed<P: AsRef<[u8]>>(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], ()>,
    entries: &BTreeMap<P, Vec<PosKey>>,
) -> Result<(), ChainError> {
    let mut table = txn.open_table(table)?;
    let mut key = Vec::new();
    for (prefix, positions) in entries {
        for pos in positions {
            key.clear();
            key.extend_from_slice(prefix.as_ref());
            key.extend_from_slice(pos);
            table.insert(&key[..], ())?;
        }
    }
    Ok(())
}

/// Writes every held entry of the batched indexes, in key order.
pub(super) fn write_index(txn: &WriteTransaction, all: &Unindexed) -> Result<(), ChainError> {
    let mut positions = txn.open_table(TX_POSITIONS)?;
    for (digest, pos) in &all.txs {
        positions.insert(digest, pos)?;
    }
    write_prefixed(txn, EVENTS_BY_SENDER, &all.senders)?;
    write_prefixed(txn, EVENTS_BY_OBJECT, &all.objects)?;
    let mut nonces = txn.open_table(NONCES)?;
    for (address, next) in &all.nonces {
        nonces.insert(address, *next)?;
    }
    Ok(())
}

/// Writes a snapshot and deletes all but the newest [`SNAPSHOTS_KEPT`] (the genesis one stays).
/// An older snapshot is kept only if its checksum holds: a damaged one is deleted, and never
/// kept in place of an older whole one. Checking costs a hash over the snapshots kept, the
/// order of what writing the new one costs.
fn write_snapshot(txn: &WriteTransaction, snapshot: &Snapshot) -> Result<(), ChainError> {
    let mut table = txn.open_table(SNAPSHOTS)?;
    let sealed = seal(SNAPSHOTS.name(), &snapshot.height.to_be_bytes(), encode(snapshot));
    table.insert(snapshot.height, &sealed[..])?;
    let mut kept = 1;
    let mut dropped = Vec::new();
    for item in table.range(1..snapshot.height)?.rev() {
        let (height, bytes) = item?;
        let height = height.value();
        let what = || format!("the snapshot at height {height}");
        if kept < SNAPSHOTS_KEPT
            && unseal(SNAPSHOTS.name(), &height.to_be_bytes(), bytes.value(), &what).is_ok()
        {
            kept += 1;
        } else {
            dropped.push(height);
        }
    }
    for height in dropped {
        table.remove(height)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ledger::Ledger;
    use crate::store::tests::{OPTIONS, blocks};

    #[test]
    fn old_snapshots_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        blocks(&path, 7);
        let ledger = Ledger::open(&path, OPTIONS).unwrap();
        assert_eq!(ledger.snapshot_heights().unwrap(), vec![0, 4, 6], "genesis and the newest two");
        assert_eq!(ledger.replay_from_genesis().unwrap(), ledger.state_digest());
    }
}
