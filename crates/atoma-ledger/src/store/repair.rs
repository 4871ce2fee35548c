//! Repair: the held index entries gathered again from the stored blocks, the derived tables
//! checked against the records at open and rebuilt from the blocks when wrong, the mark a read
//! leaves when it finds an index entry wrong, and what recovery writes back (a state digest,
//! damaged snapshots deleted). The rebuilds read each stored block whole, checking that it is.

use std::sync::atomic::Ordering;

use atoma_contract::Address;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle};

use super::Store;
use super::schema::{
    BLOCK_HEIGHTS, BLOCKS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_INDEXED,
    META_OBJECT_LEN, META_REBUILD, META_SKIPPED, NONCES, SNAPSHOTS, STATE_DIGESTS, TRANSACTIONS,
    TX_POSITIONS, missing, object_key, open_event, open_record, pos_key, read_header, read_indexed_height,
    read_meta_u64, read_tip, type_prefix, write_meta_u64,
};
use super::seal::{seal, unseal};
use super::unindexed::{BlockEntries, ObjectKey, PosKey, TxPos, Unindexed, tx_pos};
use super::write::write_index;
use crate::digest::Digest;
use crate::error::{ChainError, Damage};
use crate::events::object_refs;

impl Store {
    /// Replaces the held index entries with those of the stored blocks after the tables'
    /// `indexed_height`, up to `last`; the blocks after `last` are the caller's to
    /// [`Store::hold`] in order (recovery replays them anyway). Returns `indexed_height`.
    pub fn rebuild_unindexed(&self, last: u64) -> Result<u64, ChainError> {
        let txn = self.db.begin_read()?;
        let indexed = read_indexed_height(&txn)?;
        let mut unindexed = Unindexed::default();
        let last = read_tip(&txn)?.map_or(0, |tip| tip.min(last));
        for height in indexed.saturating_add(1)..=last {
            unindexed.add(&stored_entries(&txn, height, &unindexed.nonces)?);
        }
        *self.unindexed_mut() = unindexed;
        Ok(indexed)
    }

    /// Holds a stored block's index entries (see [`Store::rebuild_unindexed`]).
    pub fn hold(&self, entries: &BlockEntries) {
        self.unindexed_mut().add(entries);
    }

    /// Why the derived tables look wrong, if they do: a read marked them for a rebuild, or their
    /// sizes disagree with the records they index, or the nonces (table and held entries) are
    /// not `nonces`, the state's. Costs a lookup per table and one read of the `nonces` table
    /// (one entry per account); it cannot see an entry changed in place, which reads catch.
    ///
    /// Call after the held entries are gathered.
    pub fn check_indexes(
        &self,
        nonces: &std::collections::BTreeMap<Address, u64>,
    ) -> Result<Option<String>, ChainError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        if let Some(bytes) = meta.get(META_REBUILD)? {
            let why =
                unseal(META.name(), META_REBUILD.as_bytes(), bytes.value(), &|| "the rebuild mark".into())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_else(|e| e.to_string());
            return Ok(Some(format!("a read found them damaged: {why}")));
        }
        let unindexed = self.unindexed();
        let held_senders: usize = unindexed.senders.values().map(Vec::len).sum();
        let len = |name: &str, len: u64| -> (String, u64) { (name.to_string(), len) };
        let recorded_objects = read_meta_u64(&meta, META_OBJECT_LEN)?;
        let blocks = txn.open_table(BLOCKS)?.len()?;
        let events = txn.open_table(EVENTS)?.len()?;
        let records = txn.open_table(TRANSACTIONS)?.len()?;
        let indexed_records = records.saturating_sub(read_meta_u64(&meta, META_SKIPPED)?.unwrap_or(0));
        let pairs = [
            (len(BLOCK_HEIGHTS.name(), txn.open_table(BLOCK_HEIGHTS)?.len()?), blocks),
            (len(EVENTS_BY_TYPE.name(), txn.open_table(EVENTS_BY_TYPE)?.len()?), events),
            (
                len(TX_POSITIONS.name(), txn.open_table(TX_POSITIONS)?.len()? + unindexed.txs.len() as u64),
                indexed_records,
            ),
            (
                len(EVENTS_BY_SENDER.name(), txn.open_table(EVENTS_BY_SENDER)?.len()? + held_senders as u64),
                events,
            ),
        ];
        for ((name, found), expected) in pairs {
            if found != expected {
                return Ok(Some(format!("`{name}` has {found} entries for {expected} records")));
            }
        }
        if let Some(expected) = recorded_objects {
            let found = txn.open_table(EVENTS_BY_OBJECT)?.len()?;
            if found != expected {
                return Ok(Some(format!(
                    "`{}` has {found} entries, {expected} were written",
                    EVENTS_BY_OBJECT.name()
                )));
            }
        }
        let mut stored = std::collections::BTreeMap::new();
        for item in txn.open_table(NONCES)?.iter()? {
            let (address, next) = item?;
            stored.insert(Address(*address.value()), next.value());
        }
        stored.extend(unindexed.nonces.iter().map(|(address, next)| (Address(*address), *next)));
        if &stored != nonces {
            return Ok(Some("the stored nonces are not the state's".into()));
        }
        Ok(None)
    }

    /// Writes every derived table again from the blocks (`block_heights`, the four batched
    /// indexes and `events_by_type`), in one commit, checking that every block is whole and
    /// chains to its parent, and that the nonces come out as `nonces`, the state's. Forgets
    /// the held entries: the tables are then complete up to the tip.
    ///
    /// # Errors
    /// `ECorruptStore` naming the first block that is not whole; `EStorage`.
    pub fn rebuild_indexes(
        &self,
        nonces: &std::collections::BTreeMap<Address, u64>,
    ) -> Result<(), ChainError> {
        let read = self.db.begin_read()?;
        let tip = read_tip(&read)?.ok_or_else(|| missing("the genesis block"))?;
        let txn = self.begin_write()?;
        txn.delete_table(BLOCK_HEIGHTS)?;
        txn.delete_table(TX_POSITIONS)?;
        txn.delete_table(NONCES)?;
        for table in [EVENTS_BY_TYPE, EVENTS_BY_SENDER, EVENTS_BY_OBJECT] {
            txn.delete_table(table)?;
        }
        let mut all = Unindexed::default();
        let mut skipped = 0u64;
        {
            let mut heights = txn.open_table(BLOCK_HEIGHTS)?;
            let mut by_type = txn.open_table(EVENTS_BY_TYPE)?;
            let mut parent: Option<Digest> = None;
            for height in 0..=tip {
                let block = read_stored_block(&read, height)?;
                if parent.is_some_and(|p| p != block.parent_digest) {
                    return Err(ChainError::corrupt(format!(
                        "block {height} does not name block {} as its parent",
                        height - 1
                    )));
                }
                parent = Some(block.digest);
                skipped += block.skipped;
                heights.insert(&block.digest.0, height)?;
                for key in &block.types {
                    by_type.insert(&key[..], ())?;
                }
                let mut entries = BlockEntries {
                    txs: block.txs,
                    senders: block.senders,
                    objects: block.objects,
                    nonces: Vec::new(),
                };
                for sender in block.signers {
                    let next = all.nonces.get(&sender).copied().unwrap_or(0).saturating_add(1);
                    entries.nonces.push((sender, next));
                    all.nonces.insert(sender, next);
                }
                all.add(&entries);
            }
        }
        let rebuilt: std::collections::BTreeMap<Address, u64> =
            all.nonces.iter().map(|(address, next)| (Address(*address), *next)).collect();
        if &rebuilt != nonces {
            return Err(ChainError::corrupt("the blocks' transactions do not add up to the state's nonces"));
        }
        write_index(&txn, &all)?;
        let objects = txn.open_table(EVENTS_BY_OBJECT)?.len()?;
        let mut meta = txn.open_table(META)?;
        write_meta_u64(&mut meta, META_INDEXED, tip)?;
        write_meta_u64(&mut meta, META_OBJECT_LEN, objects)?;
        write_meta_u64(&mut meta, META_SKIPPED, skipped)?;
        meta.remove(META_REBUILD)?;
        drop(meta);
        let mut held = self.unindexed_mut();
        txn.commit()?;
        held.clear();
        self.rebuild_marked.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Writes the state digest recorded at `height` again (its copy in the snapshot there is
    /// whole).
    pub fn rewrite_state_digest(&self, height: u64, digest: &Digest) -> Result<(), ChainError> {
        let txn = self.begin_write()?;
        let sealed = seal(STATE_DIGESTS.name(), &height.to_be_bytes(), digest.0.to_vec());
        txn.open_table(STATE_DIGESTS)?.insert(height, &sealed[..])?;
        txn.commit()?;
        Ok(())
    }

    /// Deletes the snapshots at `heights` (damaged ones, after a recovery that passed them over);
    /// writes nothing when there are none.
    pub fn delete_snapshots(&self, heights: &[u64]) -> Result<(), ChainError> {
        if heights.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(SNAPSHOTS)?;
            for height in heights {
                table.remove(*height)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Records in `meta` that the indexes must be rebuilt at the next open, and `why`. Once
    /// recorded, does nothing until a rebuild.
    pub fn mark_for_rebuild(&self, why: &str) -> Result<(), ChainError> {
        if self.rebuild_marked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let sealed = seal(META.name(), META_REBUILD.as_bytes(), why.as_bytes().to_vec());
            meta.insert(META_REBUILD, &sealed[..])?;
        }
        txn.commit()?;
        self.rebuild_marked.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Marks the indexes for a rebuild at the next open, and says so. A read calls it when an
    /// index entry leads to a record that is not the one asked for.
    fn index_damaged(&self, damage: &Damage) -> ChainError {
        let why = damage.to_string();
        let next = if self.mark_for_rebuild(&why).is_ok() {
            "the next start rebuilds the indexes from the blocks"
        } else {
            "it could not be marked for a rebuild; restart to check the indexes"
        };
        ChainError::corrupt(format!("{why}; {next}"))
    }

    /// Passes `result` on, first marking the indexes for a rebuild if a read found one wrong.
    pub(super) fn noting_index_damage<T>(&self, result: Result<T, ChainError>) -> Result<T, ChainError> {
        match result {
            Err(ChainError::Corrupt(damage @ Damage::IndexEntry { .. })) => Err(self.index_damaged(&damage)),
            other => other,
        }
    }
}

/// What one stored block puts in the derived tables, read from its header, transaction records
/// and events — checking on the way that the block is whole: a record for each digest its
/// header names (each the transaction the header names), and each record's events, numbered
/// from 0, and no others.
struct StoredBlock {
    digest: Digest,
    parent_digest: Digest,
    txs: Vec<([u8; 32], TxPos)>,
    senders: Vec<([u8; 32], PosKey)>,
    objects: Vec<(ObjectKey, PosKey)>,
    /// `events_by_type` keys.
    types: Vec<Vec<u8>>,
    /// The sender of each executed transaction, in block order (each used one nonce; a skipped
    /// one used none).
    signers: Vec<[u8; 32]>,
    /// Skipped transactions' records, which `tx_positions` leaves out.
    skipped: u64,
}

fn read_stored_block(txn: &ReadTransaction, height: u64) -> Result<StoredBlock, ChainError> {
    let header = read_header(txn, height)?.ok_or_else(|| missing(&format!("block {height}")))?;
    let incomplete = |what: &str| ChainError::corrupt(format!("block {height} is incomplete: {what}"));
    let mut block = StoredBlock {
        digest: header.digest(),
        parent_digest: header.parent_digest,
        txs: Vec::new(),
        senders: Vec::new(),
        objects: Vec::new(),
        types: Vec::new(),
        signers: Vec::new(),
        skipped: 0,
    };
    let records = txn.open_table(TRANSACTIONS)?;
    let mut expected_events = Vec::new();
    let mut signed_records = 0usize;
    for (i, item) in records.range::<&TxPos>(&tx_pos(height, 0)..=&tx_pos(height, u64::MAX))?.enumerate() {
        let (key, bytes) = item?;
        let record = open_record(key.value(), bytes.value())?;
        let digest = match &record.signed {
            // The genesis pseudo-transaction: its digest is the genesis digest, which the
            // genesis header names as its parent.
            None if height == 0 && record.index == 0 => header.parent_digest,
            None => return Err(incomplete("a transaction record without its transaction")),
            Some(signed) => {
                let named = header
                    .tx_digests
                    .get(i)
                    .ok_or_else(|| incomplete("a record its header does not name"))?;
                if signed.digest() != *named || record.index != i as u64 {
                    return Err(incomplete(&format!("record {i} is not the transaction its header names")));
                }
                signed_records += 1;
                *named
            }
        };
        if record.was_executed() {
            if record.signed.is_some() {
                block.signers.push(record.sender.0);
            }
            block.txs.push((digest.0, *key.value()));
        } else {
            block.skipped += 1;
        }
        expected_events.push((record.index, record.event_count, record.sender.0));
    }
    if signed_records != header.tx_digests.len()
        || block.txs.len() != block.signers.len() + usize::from(height == 0)
    {
        return Err(incomplete("transaction records are missing"));
    }
    let events = txn.open_table(EVENTS)?;
    let span = (pos_key((height, 0, 0)), pos_key((height, u64::MAX, u64::MAX)));
    let mut stored = events.range::<&[u8]>(&span.0[..]..=&span.1[..])?;
    for (index, count, sender) in expected_events {
        for event_seq in 0..count {
            let (key, bytes) = stored.next().ok_or_else(|| incomplete("events are missing"))??;
            let event = open_event(key.value(), bytes.value())?;
            if event.position() != (height, index, event_seq) || event.sender.0 != sender {
                return Err(incomplete(&format!("transaction {index}'s events are not the ones it counts")));
            }
            let pos = pos_key(event.position());
            block.senders.push((sender, pos));
            block
                .objects
                .extend(object_refs(&event.event).into_iter().map(|(kind, id)| (object_key(kind, id), pos)));
            block.types.push([&type_prefix(event.event.name())[..], &pos].concat());
        }
    }
    if stored.next().is_some() {
        return Err(incomplete("an event belongs to no transaction"));
    }
    Ok(block)
}

/// A stored block's entries in the batched indexes; `held` has the nonces after earlier
/// unindexed blocks, the `nonces` table the ones before.
fn stored_entries(
    txn: &ReadTransaction,
    height: u64,
    held: &std::collections::BTreeMap<[u8; 32], u64>,
) -> Result<BlockEntries, ChainError> {
    let block = read_stored_block(txn, height)?;
    let nonces = txn.open_table(NONCES)?;
    let mut next = std::collections::BTreeMap::new();
    for sender in &block.signers {
        let before = match next.get(sender).or_else(|| held.get(sender)) {
            Some(nonce) => *nonce,
            None => nonces.get(sender)?.map_or(0, |v| v.value()),
        };
        next.insert(*sender, before.saturating_add(1));
    }
    Ok(BlockEntries {
        txs: block.txs,
        senders: block.senders,
        objects: block.objects,
        nonces: next.into_iter().collect(),
    })
}
