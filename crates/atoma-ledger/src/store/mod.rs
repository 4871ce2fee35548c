//! Durable storage in one redb file: blocks, transaction results, the event log and its indexes,
//! nonces and state snapshots.
//!
//! Every applied block is written by **one** redb write transaction — one commit, one fsync —
//! so a block and everything it produced are on disk together or not at all. Keys that hold
//! numbers are big-endian so that byte order is numeric order.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"format_version"`, `"genesis"`, `"indexed_height"`, `"object_index_len"`, `"skipped_transactions"`, `"rebuild_indexes"` | `u32` LE; sealed BCS [`GenesisConfig`]; sealed `u64` LE; sealed `u64` LE; sealed `u64` LE; sealed reason |
//! | `blocks` | height `u64` | sealed BCS [`BlockHeader`] |
//! | `block_heights` | block digest | height |
//! | `state_digests` | height | sealed combined state digest after the block (snapshot heights only) |
//! | `transactions` | position `height‖index` (16 bytes) | sealed BCS `TxRecord`: signed transaction, block, index, status, event count |
//! | `tx_positions` | tx digest | position `height‖index` (executed transactions only: a skipped one is found through its block) |
//! | `events` | position `height‖tx_index‖event_seq` (24 bytes) | sealed BCS [`EventRecord`] |
//! | `events_by_type` | `name‖0x00‖position` | `()` |
//! | `events_by_sender` | `address‖position` | `()` |
//! | `events_by_object` | `kind‖small_id‖position` (kind 0 node, 1 task, 2 stack) | `()` |
//! | `nonces` | address | next nonce |
//! | `snapshots` | height | sealed BCS `Snapshot` |
//!
//! **Sealed** values end in a checksum over table, key and value ([`seal`](mod@seal)), checked on
//! every read: the records nothing else can rebuild. The other tables are indexes derived from
//! the blocks: [`Store::check_indexes`] compares their sizes with the records at every open, every
//! read that follows an index checks that the record it reaches is the one asked for, and
//! [`Store::rebuild_indexes`] writes them again from the blocks when either finds them wrong.
//!
//! The file is opened with redb's integrity check (every page's checksum, once per open), and
//! every commit is two-phase, so that a damaged page of the last commit is refused rather than
//! taken for a torn commit and silently rolled back (see docs/LEDGER.md, "Storage faults").
//!
//! A block's commit only appends: its header, its transactions and events at their positions,
//! and the type index (whose keys grow with positions within each type). The four tables keyed
//! by digest, address or small id — `tx_positions`, `events_by_sender`, `events_by_object`,
//! `nonces` — are written in sorted batches of about [`INDEX_BATCH`] transactions, with every
//! snapshot, and with the genesis; in between, their entries are held in memory
//! ([`unindexed`]) and reads merge both. Written with each block, those random keys made
//! every transaction rewrite a page of each table, and the cost of a commit grew with the chain.
//!
//! Events of one transaction need no index of their own: `transactions` gives the block and
//! index, and `events` holds them contiguously from `height‖tx_index‖0`.

#[cfg(test)]
mod faults;
mod query;
mod schema;
mod seal;
mod unindexed;
mod write;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use atoma_contract::Address;
use redb::{
    Builder, Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle,
    WriteTransaction,
};

use crate::digest::Digest;
use crate::error::{ChainError, Damage};
use crate::events::object_refs;
use schema::{
    BLOCK_HEIGHTS, BLOCKS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_FORMAT,
    META_INDEXED, META_OBJECT_LEN, META_REBUILD, META_SKIPPED, NONCES, SNAPSHOTS, STATE_DIGESTS,
    TRANSACTIONS, TX_POSITIONS, missing, object_key, open_event, open_record, pos_key, read_header,
    read_indexed_height, read_meta_u64, read_tip, type_prefix, write_meta_u64,
};
pub(crate) use schema::{Commit, Snapshot};
pub use schema::{SNAPSHOTS_KEPT, STORE_FORMAT_VERSION};
use seal::{seal, unseal};
use unindexed::{BlockEntries, INDEX_BATCH, ObjectKey, PosKey, TxPos, Unindexed, tx_pos};
pub(crate) use write::block_entries;
use write::write_index;

/// The redb database of one chain, and the index entries not yet written to it.
pub(crate) struct Store {
    db: Database,
    /// The file, for error messages.
    path: PathBuf,
    unindexed: RwLock<Unindexed>,
    /// [`INDEX_BATCH`]; tests lower it.
    index_batch: usize,
    /// Set once `rebuild_indexes` is in `meta`: a read that finds an index wrong again need not
    /// write it again (a commit, two fsyncs, which a client repeating one query could force).
    rebuild_marked: AtomicBool,
    /// Write transactions to refuse, and to count, in tests.
    #[cfg(test)]
    pub(crate) write_faults: WriteFaults,
}

/// Storage failures made on purpose in tests: the next `fail` write transactions cannot begin
/// (as when the disk fails), and every write transaction begun is counted.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct WriteFaults {
    pub fail: std::sync::atomic::AtomicU32,
    pub begun: std::sync::atomic::AtomicU64,
}

/// What a reader sees: a redb snapshot and the heights whose index entries it must take from
/// memory.
struct View {
    txn: ReadTransaction,
    unindexed: RangeInclusive<u64>,
}

impl Store {
    /// Opens an existing database file — checking every page's checksum first — and makes sure
    /// every table exists. The index entries of blocks after the tables' `indexed_height` are
    /// the caller's to gather ([`Store::rebuild_unindexed`], [`Store::hold`]) before it reads or
    /// writes blocks.
    ///
    /// # Errors
    /// `ECorruptStore` when the file is not a redb database, a page fails its checksum, or the
    /// format version is not [`STORE_FORMAT_VERSION`]; `EStorage` when the file cannot be read
    /// (or another process has it open).
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let db = Builder::new().set_check_integrity_on_open(true).open(path);
        Self::with_tables(db.map_err(|e| open_error(path, e))?, path)
    }

    /// Creates a new, empty database file at `path`, which must not exist.
    ///
    /// # Errors
    /// `EStorage` when the file cannot be created.
    pub fn create(path: &Path) -> Result<Self, ChainError> {
        let io = |e: std::io::Error| ChainError::storage(format!("creating {}", path.display()), e);
        // `create_new`: never initialize a file someone else is writing.
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(io)?;
        let backend = redb::backends::FileBackend::new(file).map_err(|e| open_error(path, e))?;
        let db = Builder::new().create_with_backend(backend).map_err(|e| open_error(path, e))?;
        Self::with_tables(db, path)
    }

    fn with_tables(db: Database, path: &Path) -> Result<Self, ChainError> {
        let unindexed = RwLock::new(Unindexed::default());
        let store = Store {
            db,
            path: path.to_path_buf(),
            unindexed,
            index_batch: INDEX_BATCH,
            rebuild_marked: AtomicBool::new(false),
            #[cfg(test)]
            write_faults: WriteFaults::default(),
        };
        store.create_tables()?;
        Ok(store)
    }

    /// A write transaction that commits in two phases: redb then tells a damaged last commit
    /// (refused) from a torn one (rolled back), which one phase cannot.
    fn begin_write(&self) -> Result<WriteTransaction, ChainError> {
        #[cfg(test)]
        {
            self.write_faults.begun.fetch_add(1, Ordering::SeqCst);
            let fail = &self.write_faults.fail;
            if fail.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                let injected = std::io::Error::other("a write failed (test)");
                return Err(ChainError::storage(format!("writing {}", self.path.display()), injected));
            }
        }
        let mut txn = self.db.begin_write()?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    fn create_tables(&self) -> Result<(), ChainError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get(META_FORMAT)?.map(|v| v.value().to_vec());
            match version {
                None => {
                    meta.insert(META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes()[..])?;
                }
                Some(v) if v == STORE_FORMAT_VERSION.to_le_bytes() => {}
                Some(v) => return Err(self.format_error(&v)),
            }
            txn.open_table(BLOCKS)?;
            txn.open_table(BLOCK_HEIGHTS)?;
            txn.open_table(STATE_DIGESTS)?;
            txn.open_table(TRANSACTIONS)?;
            txn.open_table(TX_POSITIONS)?;
            txn.open_table(EVENTS)?;
            txn.open_table(EVENTS_BY_TYPE)?;
            txn.open_table(EVENTS_BY_SENDER)?;
            txn.open_table(EVENTS_BY_OBJECT)?;
            txn.open_table(NONCES)?;
            txn.open_table(SNAPSHOTS)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Why a store of another format is refused. No store of an older format was ever deployed,
    /// so there is nothing to migrate.
    fn format_error(&self, stored: &[u8]) -> ChainError {
        let file = self.path.display();
        let why = match <[u8; 4]>::try_from(stored).map(u32::from_le_bytes) {
            Ok(v) if v < STORE_FORMAT_VERSION => format!(
                "{file} has store format {v}, older than this build's {STORE_FORMAT_VERSION}; old stores \
                 are not converted: start a new local network with `atoma start --fresh`"
            ),
            Ok(v) => format!(
                "{file} has store format {v}, newer than this build's {STORE_FORMAT_VERSION}: use the \
                 atoma that wrote it"
            ),
            Err(_) => format!("{file}: the store format version is damaged ({} bytes)", stored.len()),
        };
        ChainError::corrupt(why)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the batched indexes every `transactions` transactions instead of [`INDEX_BATCH`].
    #[cfg(test)]
    pub fn set_index_batch(&mut self, transactions: usize) {
        self.index_batch = transactions;
    }

    fn unindexed(&self) -> RwLockReadGuard<'_, Unindexed> {
        // Entries are added and dropped whole; a panic elsewhere cannot leave them half-made.
        self.unindexed.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn unindexed_mut(&self) -> RwLockWriteGuard<'_, Unindexed> {
        self.unindexed.write().unwrap_or_else(PoisonError::into_inner)
    }

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
    fn noting_index_damage<T>(&self, result: Result<T, ChainError>) -> Result<T, ChainError> {
        match result {
            Err(ChainError::Corrupt(damage @ Damage::IndexEntry { .. })) => Err(self.index_damaged(&damage)),
            other => other,
        }
    }

    /// Holds a stored block's index entries (see [`Store::rebuild_unindexed`]).
    pub fn hold(&self, entries: &BlockEntries) {
        self.unindexed_mut().add(entries);
    }

    /// A reader's view — the redb snapshot, and which heights' index entries come from memory —
    /// with what `pick` takes from the entries held. Both are taken under the entries' read lock:
    /// a block's entries are added before its commit, and a batch is written and dropped under
    /// the write lock, so the snapshot and the entries always agree.
    fn view<T>(&self, pick: impl FnOnce(&Unindexed) -> T) -> Result<(View, T), ChainError> {
        let unindexed = self.unindexed();
        let picked = pick(&unindexed);
        let txn = self.db.begin_read()?;
        drop(unindexed);
        let indexed = read_indexed_height(&txn)?;
        let tip = read_tip(&txn)?.unwrap_or(0);
        Ok((View { txn, unindexed: indexed.saturating_add(1)..=tip }, picked))
    }
}

/// What the operator can do about a store that cannot be trusted.
pub(crate) const DAMAGED_STORE_HINT: &str = "restore the data directory from a backup, or start a \
     throwaway local network again with `atoma start --fresh` (which deletes this chain)";

/// An open's failure, naming the file: a file that is not a redb database, or whose pages fail
/// their checksums, is `ECorruptStore`.
fn open_error(path: &Path, error: redb::DatabaseError) -> ChainError {
    let file = path.display();
    let damaged = |why: String| ChainError::corrupt(format!("{file} {why}; {DAMAGED_STORE_HINT}"));
    match error {
        redb::DatabaseError::Storage(redb::StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            damaged(format!("is not a chain store ({e})"))
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            damaged(format!("is damaged: redb's integrity check failed ({why})"))
        }
        redb::DatabaseError::UpgradeRequired(v) => {
            damaged(format!("was written by an older redb (file format {v})"))
        }
        other => ChainError::storage(format!("opening {file}"), other),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{LocalKeys, LocalNetworkOptions};
    use crate::ledger::{Ledger, LedgerOptions};
    use crate::sequencer::Sequencer;
    use atoma_contract::Call;

    pub(super) const OPTIONS: LedgerOptions = LedgerOptions { snapshot_interval: 2, event_buffer: 16 };

    /// A ledger with `count` applied blocks (a snapshot every 2), closed again.
    pub(super) fn blocks(path: &Path, count: u64) {
        let keys = LocalKeys::generate(1).unwrap();
        let genesis = keys.genesis(&LocalNetworkOptions::default(), 1_000);
        let ledger = Ledger::open_or_create(path, OPTIONS, || Ok(genesis)).unwrap();
        let mut sequencer = Sequencer::new(keys.validator.clone(), 60_000, 10, 10);
        let chain = ledger.params().chain_id;
        for nonce in 0..count {
            let call = Call::TransferToma { recipient: Address([1; 32]), amount: 1 };
            let tx = keys.accounts[0].sign_call(chain, nonce, call).verify(&chain).unwrap();
            sequencer.admit(tx, nonce).unwrap();
            ledger.apply_block(&sequencer.propose(&ledger.tip(), 2_000)).unwrap();
        }
    }

    #[test]
    fn another_format_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        blocks(&path, 1);
        for (version, says) in [(2u32, "older than this build"), (9, "newer than this build")] {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(META_FORMAT, &version.to_le_bytes()[..]).unwrap();
            txn.commit().unwrap();
            drop(db);
            let error = Ledger::open(&path, OPTIONS).err().unwrap();
            assert_eq!(error.name(), "ECorruptStore");
            assert!(error.to_string().contains(says), "{error}");
            assert!(error.to_string().contains(&format!("store format {version}")), "{error}");
        }
        assert_eq!(
            Ledger::open(&dir.path().join("none.redb"), OPTIONS).err().map(|e| e.name()),
            Some("EInvalidConfig"),
            "no store and no genesis"
        );
        assert!(!dir.path().join("none.redb").exists(), "nothing is created without a genesis");
    }
}
