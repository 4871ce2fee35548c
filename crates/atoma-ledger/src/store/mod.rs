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
mod schema;
mod seal;
mod unindexed;
mod write;

use std::ops::{Bound, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use atoma_contract::Address;
use redb::{
    Builder, Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableHandle, WriteTransaction,
};

use crate::block::{Block, BlockHeader};
use crate::digest::Digest;
use crate::error::{ChainError, Damage, LedgerError};
use crate::events::{EventFilter, EventId, EventRecord, ObjectKind, Page, object_refs};
use crate::genesis::GenesisConfig;
use schema::{
    BLOCK_HEIGHTS, BLOCKS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_FORMAT,
    META_GENESIS, META_INDEXED, META_OBJECT_LEN, META_REBUILD, META_SKIPPED, NONCES, SNAPSHOTS,
    STATE_DIGESTS, TRANSACTIONS, TX_POSITIONS, TxRecord, missing, object_key, open_event, open_record,
    open_snapshot, pos_key, read_header, read_indexed_height, read_meta_u64, read_tip, type_prefix,
    write_meta_u64,
};
pub(crate) use schema::{Commit, Snapshot};
pub use schema::{SNAPSHOTS_KEPT, STORE_FORMAT_VERSION};
use seal::{open, seal, unseal};
use unindexed::{BlockEntries, INDEX_BATCH, ObjectKey, PosKey, TxPos, Unindexed, height_of, tx_pos};
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

    /// The genesis, if the store has one.
    pub fn genesis(&self) -> Result<Option<GenesisConfig>, ChainError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let bytes = meta.get(META_GENESIS)?.map(|v| v.value().to_vec());
        bytes.map(|b| open(META.name(), META_GENESIS.as_bytes(), &b, &|| "the genesis".into())).transpose()
    }

    /// The height of the last committed block.
    pub fn tip_height(&self) -> Result<u64, ChainError> {
        let txn = self.db.begin_read()?;
        read_tip(&txn)?.ok_or_else(|| ChainError::corrupt("no blocks"))
    }

    /// A block's header.
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, ChainError> {
        let txn = self.db.begin_read()?;
        read_header(&txn, height)
    }

    /// A block with its transactions: one range of `transactions`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        let txn = self.db.begin_read()?;
        let Some(header) = read_header(&txn, height)? else { return Ok(None) };
        let table = txn.open_table(TRANSACTIONS)?;
        let mut transactions = Vec::with_capacity(header.tx_digests.len());
        for item in table.range::<&TxPos>(&tx_pos(height, 0)..=&tx_pos(height, u64::MAX))? {
            let (key, bytes) = item?;
            let record = open_record(key.value(), bytes.value())?;
            // The genesis pseudo-transaction has no signed transaction and is not in the block.
            transactions.extend(record.signed);
        }
        if transactions.len() != header.tx_digests.len() {
            return Err(missing(&format!("a transaction record of block {height}")));
        }
        Ok(Some(Block { header, transactions }))
    }

    /// The height of the block with this digest.
    pub fn height_of(&self, digest: &Digest) -> Result<Option<u64>, ChainError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCK_HEIGHTS)?;
        let Some(height) = table.get(&digest.0)?.map(|v| v.value()) else { return Ok(None) };
        if read_header(&txn, height)?.is_none_or(|header| header.digest() != *digest) {
            let found = format!("a block digest leads to height {height}, whose block has another digest");
            return self.noting_index_damage(Err(index_wrong(BLOCK_HEIGHTS.name(), &found)));
        }
        Ok(Some(height))
    }

    /// The combined state digest recorded after the block at `height`.
    pub fn state_digest_at(&self, height: u64) -> Result<Option<Digest>, ChainError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE_DIGESTS)?;
        let Some(bytes) = table.get(height)? else { return Ok(None) };
        let what = || format!("the state digest recorded at height {height}");
        let payload = unseal(STATE_DIGESTS.name(), &height.to_be_bytes(), bytes.value(), &what)?;
        let digest = <[u8; 32]>::try_from(payload)
            .map_err(|_| ChainError::corrupt(format!("{} is not 32 bytes", what())))?;
        Ok(Some(Digest(digest)))
    }

    /// A transaction's record and its events.
    pub fn transaction(&self, digest: &Digest) -> Result<Option<(TxRecord, Vec<EventRecord>)>, ChainError> {
        let (view, held) = self.view(|u| u.txs.get(&digest.0).copied())?;
        let Some(record) = self.noting_index_damage(read_tx(&view, digest, held))? else { return Ok(None) };
        let events = view.txn.open_table(EVENTS)?;
        let span = tx_span(record.height, record.index);
        let positions = scan(&events, &[], span, None, false, usize::MAX)?;
        let records = fetch_events(&events, &positions)?;
        if records.len() as u64 != record.event_count {
            return Err(ChainError::corrupt(format!(
                "transaction {} of block {} counts {} events, {} are stored",
                record.index,
                record.height,
                record.event_count,
                records.len()
            )));
        }
        Ok(Some((record, records)))
    }

    /// The snapshot at exactly `height`.
    pub fn snapshot_at(&self, height: u64) -> Result<Option<Snapshot>, ChainError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let Some(bytes) = table.get(height)? else { return Ok(None) };
        open_snapshot(height, bytes.value()).map(Some)
    }

    /// The heights that hold a snapshot, ascending.
    pub fn snapshot_heights(&self) -> Result<Vec<u64>, ChainError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        table.iter()?.map(|item| Ok(item?.0.value())).collect()
    }

    /// The next nonce the store records for `address`: the `nonces` table, or the entry of a
    /// block whose indexes are not yet written.
    pub fn stored_nonce(&self, address: &Address) -> Result<u64, ChainError> {
        if let Some(next) = self.unindexed().nonces.get(&address.0) {
            return Ok(*next);
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(NONCES)?;
        Ok(table.get(&address.0)?.map_or(0, |v| v.value()))
    }

    /// One page of events matching `filter`, after (or before, when `descending`) `cursor`.
    pub fn query_events(
        &self,
        filter: &EventFilter,
        cursor: Option<EventId>,
        limit: usize,
        descending: bool,
    ) -> Result<Page<EventRecord, EventId>, ChainError> {
        self.noting_index_damage(self.query(filter, cursor, limit, descending))
    }

    fn query(
        &self,
        filter: &EventFilter,
        cursor: Option<EventId>,
        limit: usize,
        descending: bool,
    ) -> Result<Page<EventRecord, EventId>, ChainError> {
        let (view, held) = self.view(|u| Held::for_query(u, filter, cursor.as_ref()))?;
        let after = match cursor {
            Some(c) => Some(cursor_position(&view, &c, held.cursor)?),
            None => None,
        };
        let take = limit.saturating_add(1);
        let Some(positions) = filter_positions(&view, &held, filter, after.as_ref(), descending, take)?
        else {
            return Ok(Page { data: Vec::new(), next_cursor: cursor, has_next_page: false });
        };
        let has_next_page = positions.len() > limit;
        let positions = &positions[..positions.len().min(limit)];
        let data = fetch_events(&view.txn.open_table(EVENTS)?, positions)?;
        check_matches(filter, &data)?;
        let next_cursor = data.last().map(|e| e.id).or(cursor);
        Ok(Page { data, next_cursor, has_next_page })
    }
}

/// What a query takes from the entries held in memory, before it opens its redb snapshot.
struct Held {
    /// The cursor's transaction, if held.
    cursor: Option<TxPos>,
    /// The filter's transaction, if held.
    transaction: Option<TxPos>,
    /// The positions held under the filter's sender or object, ascending.
    positions: Vec<PosKey>,
}

impl Held {
    fn for_query(unindexed: &Unindexed, filter: &EventFilter, cursor: Option<&EventId>) -> Self {
        let every = 0..=u64::MAX;
        let object = |kind, id| Unindexed::positions(&unindexed.objects, &object_key(kind, id));
        Held {
            cursor: cursor.and_then(|c| unindexed.tx(&c.tx_digest.0, &every)),
            transaction: match filter {
                EventFilter::Transaction(digest) => unindexed.tx(&digest.0, &every),
                _ => None,
            },
            positions: match filter {
                EventFilter::Sender(sender) => Unindexed::positions(&unindexed.senders, &sender.0),
                EventFilter::Node(id) => object(ObjectKind::Node, id.0),
                EventFilter::Task(id) => object(ObjectKind::Task, id.0),
                EventFilter::Stack(id) => object(ObjectKind::Stack, id.0),
                _ => Vec::new(),
            },
        }
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

/// The error of a read that followed a wrong index entry; see [`Store::noting_index_damage`].
fn index_wrong(index: &str, found: &str) -> ChainError {
    ChainError::Corrupt(Damage::IndexEntry { index: index.to_string(), found: found.to_string() })
}

/// Each event an index gave must be one the filter asks for.
fn check_matches(filter: &EventFilter, events: &[EventRecord]) -> Result<(), ChainError> {
    let index = match filter {
        EventFilter::All | EventFilter::Transaction(_) => return Ok(()),
        EventFilter::EventType(_) => EVENTS_BY_TYPE.name(),
        EventFilter::Sender(_) => EVENTS_BY_SENDER.name(),
        EventFilter::Node(_) | EventFilter::Task(_) | EventFilter::Stack(_) => EVENTS_BY_OBJECT.name(),
    };
    let matches = |e: &EventRecord| match filter {
        EventFilter::EventType(name) => e.event.name() == name,
        EventFilter::Sender(sender) => e.sender == *sender,
        EventFilter::Node(id) => names(e, ObjectKind::Node, id.0),
        EventFilter::Task(id) => names(e, ObjectKind::Task, id.0),
        EventFilter::Stack(id) => names(e, ObjectKind::Stack, id.0),
        EventFilter::All | EventFilter::Transaction(_) => true,
    };
    match events.iter().find(|e| !matches(e)) {
        Some(e) => {
            Err(index_wrong(index, &format!("it gives an event of block {} that does not match", e.height)))
        }
        None => Ok(()),
    }
}

fn names(event: &EventRecord, kind: ObjectKind, id: u64) -> bool {
    object_refs(&event.event).contains(&(kind, id))
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

/// A transaction's position: from memory (`held`, when its block is in the view's unindexed
/// heights) or from `tx_positions`.
fn tx_position(view: &View, digest: &Digest, held: Option<TxPos>) -> Result<Option<TxPos>, ChainError> {
    if let Some(pos) = held.filter(|pos| view.unindexed.contains(&height_of(pos))) {
        return Ok(Some(pos));
    }
    let table = view.txn.open_table(TX_POSITIONS)?;
    Ok(table.get(&digest.0)?.map(|v| *v.value()))
}

fn read_tx(view: &View, digest: &Digest, held: Option<TxPos>) -> Result<Option<TxRecord>, ChainError> {
    let Some(pos) = tx_position(view, digest, held)? else { return Ok(None) };
    let table = view.txn.open_table(TRANSACTIONS)?;
    let Some(bytes) = table.get(&pos)? else {
        return Err(index_wrong(TX_POSITIONS.name(), "a transaction digest leads to no transaction"));
    };
    let record = open_record(&pos, bytes.value())?;
    let is_it = match &record.signed {
        Some(signed) => signed.digest() == *digest,
        // The genesis pseudo-transaction, at the first position: its digest is the genesis
        // digest, which the genesis header names as its parent.
        None => pos == tx_pos(0, 0) && read_header(&view.txn, 0)?.is_some_and(|h| h.parent_digest == *digest),
    };
    if !is_it {
        return Err(index_wrong(TX_POSITIONS.name(), "a transaction digest leads to another transaction"));
    }
    Ok(Some(record))
}

/// The global position of the event a cursor names.
fn cursor_position(view: &View, cursor: &EventId, held: Option<TxPos>) -> Result<PosKey, ChainError> {
    let record = read_tx(view, &cursor.tx_digest, held)?.ok_or(LedgerError::EInvalidCursor)?;
    Ok(pos_key((record.height, record.index, cursor.event_seq)))
}

/// Up to `take` positions of events matching `filter`; `None` when nothing can match.
fn filter_positions(
    view: &View,
    held: &Held,
    filter: &EventFilter,
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Option<Vec<PosKey>>, ChainError> {
    let txn = &view.txn;
    let positions = match filter {
        EventFilter::All => scan(&txn.open_table(EVENTS)?, &[], EVERY_POSITION, after, descending, take)?,
        EventFilter::Transaction(digest) => {
            let Some(record) = read_tx(view, digest, held.transaction)? else { return Ok(None) };
            let span = tx_span(record.height, record.index);
            scan(&txn.open_table(EVENTS)?, &[], span, after, descending, take)?
        }
        EventFilter::EventType(name) => scan(
            &txn.open_table(EVENTS_BY_TYPE)?,
            &type_prefix(name),
            EVERY_POSITION,
            after,
            descending,
            take,
        )?,
        EventFilter::Sender(sender) => {
            let table = txn.open_table(EVENTS_BY_SENDER)?;
            merged(view, held, &table, &sender.0, after, descending, take)?
        }
        EventFilter::Node(id) => object_scan(view, held, ObjectKind::Node, id.0, after, descending, take)?,
        EventFilter::Task(id) => object_scan(view, held, ObjectKind::Task, id.0, after, descending, take)?,
        EventFilter::Stack(id) => object_scan(view, held, ObjectKind::Stack, id.0, after, descending, take)?,
    };
    Ok(Some(positions))
}

fn object_scan(
    view: &View,
    held: &Held,
    kind: ObjectKind,
    id: u64,
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Vec<PosKey>, ChainError> {
    let table = view.txn.open_table(EVENTS_BY_OBJECT)?;
    merged(view, held, &table, &object_key(kind, id), after, descending, take)
}

/// A batched index's positions under `prefix`: the table's (heights up to `indexed_height`)
/// followed by the held ones (the view's unindexed heights), in position order.
fn merged(
    view: &View,
    held: &Held,
    table: &ReadOnlyTable<&'static [u8], ()>,
    prefix: &[u8],
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Vec<PosKey>, ChainError> {
    let held: Vec<PosKey> = held
        .positions
        .iter()
        .copied()
        .filter(|pos| view.unindexed.contains(&height_of(pos)))
        .filter(|pos| after.is_none_or(|a| if descending { pos < a } else { pos > a }))
        .collect();
    let stored = || scan(table, prefix, EVERY_POSITION, after, descending, take);
    let mut out = if descending {
        let mut out: Vec<PosKey> = held.into_iter().rev().take(take).collect();
        if out.len() < take {
            out.extend(stored()?.into_iter().take(take - out.len()));
        }
        out
    } else {
        let mut out = stored()?;
        out.extend(held);
        out
    };
    out.truncate(take);
    Ok(out)
}

/// The positions of all events: the span of the indexes.
const EVERY_POSITION: (PosKey, PosKey) = ([0; 24], [0xff; 24]);

/// The positions of one transaction's events.
fn tx_span(height: u64, tx_index: u64) -> (PosKey, PosKey) {
    (pos_key((height, tx_index, 0)), pos_key((height, tx_index, u64::MAX)))
}

/// Walks the keys `prefix‖position` of a table, for positions within `span`, in position order,
/// strictly after (or before, when `descending`) `after`, and returns up to `take` positions.
fn scan<V: redb::Value + 'static>(
    table: &ReadOnlyTable<&'static [u8], V>,
    prefix: &[u8],
    span: (PosKey, PosKey),
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Vec<PosKey>, ChainError> {
    let (low, high) = ([prefix, &span.0].concat(), [prefix, &span.1].concat());
    let (low, high) = (low.as_slice(), high.as_slice());
    let cursor = after.map(|pos| [prefix, pos].concat());
    let full: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(low), Bound::Included(high));
    let bounds = match (cursor.as_deref(), descending) {
        (None, _) => full,
        (Some(c), false) if c < low => full,
        (Some(c), false) if c >= high => return Ok(Vec::new()),
        (Some(c), false) => (Bound::Excluded(c), Bound::Included(high)),
        (Some(c), true) if c > high => full,
        (Some(c), true) if c <= low => return Ok(Vec::new()),
        (Some(c), true) => (Bound::Included(low), Bound::Excluded(c)),
    };
    let range = table.range::<&[u8]>(bounds)?;
    let keys: Box<dyn Iterator<Item = _>> = if descending { Box::new(range.rev()) } else { Box::new(range) };
    let mut out = Vec::new();
    for item in keys.take(take) {
        let (key, _) = item?;
        let key = key.value();
        let pos = key.get(key.len().saturating_sub(24)..).and_then(|p| PosKey::try_from(p).ok());
        out.push(pos.ok_or_else(|| ChainError::corrupt("a short event index key"))?);
    }
    Ok(out)
}

fn fetch_events(
    events: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    positions: &[PosKey],
) -> Result<Vec<EventRecord>, ChainError> {
    positions
        .iter()
        .map(|pos| {
            let bytes = events
                .get(&pos[..])?
                .ok_or_else(|| index_wrong("events_by_*", "an entry leads to no event"))?;
            open_event(pos, bytes.value())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{LocalKeys, LocalNetworkOptions};
    use crate::ledger::{Ledger, LedgerOptions};
    use crate::sequencer::Sequencer;
    use crate::tx::Keypair;
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

    /// Everything a reader can ask that the batched indexes answer, paged by two.
    fn answers(ledger: &Ledger, digests: &[Digest], people: &[Address]) -> Vec<String> {
        let mut filters = vec![EventFilter::All, EventFilter::EventType("NodeRegisteredEvent".into())];
        filters.extend(people.iter().map(|a| EventFilter::Sender(*a)));
        filters.extend((0..4).map(|i| EventFilter::Node(atoma_contract::NodeSmallId(i))));
        filters.extend(digests.iter().map(|d| EventFilter::Transaction(*d)));
        let mut out = Vec::new();
        for filter in &filters {
            for descending in [false, true] {
                let mut cursor = None;
                loop {
                    let page = ledger.query_events(filter, cursor, Some(2), descending).unwrap();
                    out.push(format!("{filter:?} {descending} {page:?}"));
                    if !page.has_next_page {
                        break;
                    }
                    cursor = page.next_cursor;
                }
            }
        }
        out.extend(digests.iter().map(|d| format!("{:?}", ledger.transaction(d).unwrap())));
        out.extend(people.iter().map(|a| format!("{a:?} {}", ledger.stored_nonce(a).unwrap())));
        out
    }

    #[test]
    fn batched_indexes_answer_alike_in_memory_in_tables_and_after_reopening() {
        let keys = LocalKeys::generate(3).unwrap();
        let genesis = keys.genesis(&LocalNetworkOptions::default(), 1_000);
        let people: Vec<Address> = keys.accounts.iter().map(Keypair::address).collect();
        let options = LedgerOptions { snapshot_interval: 1_000, event_buffer: 16 };
        // Index batches of 1 (every block writes its entries), 8 (blocks of 6, 6 and 3: held,
        // written with the second, held again) and never.
        let mut seen: Vec<Vec<Vec<String>>> = Vec::new();
        for batch in [1, 8, usize::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("chain.redb");
            let mut ledger = Ledger::open_or_create(&path, options, || Ok(genesis.clone())).unwrap();
            ledger.store_mut().set_index_batch(batch);
            let mut sequencer = Sequencer::new(keys.validator.clone(), 60_000, 100, 100);
            let chain = ledger.params().chain_id;
            let (mut digests, mut after_each) = (Vec::new(), Vec::new());
            for round in 0..5u64 {
                for (i, key) in keys.accounts.iter().enumerate() {
                    let call = if (round + i as u64).is_multiple_of(4) {
                        Call::RegisterNode {
                            collateral: 1_000 * atoma_contract::TOMA,
                            supported_optimizations: 0,
                        }
                    } else {
                        Call::TransferToma { recipient: people[(i + 1) % 3], amount: 1 }
                    };
                    let tx = key.sign_call(chain, ledger.next_nonce(&key.address()) + (round % 2), call);
                    let tx = tx.verify(&chain).unwrap();
                    digests.push(tx.digest());
                    sequencer.admit(tx, ledger.next_nonce(&key.address())).unwrap();
                }
                if round % 2 == 1 {
                    ledger.apply_block(&sequencer.propose(&ledger.tip(), 2_000 + round)).unwrap();
                    sequencer.settle(|a| ledger.next_nonce(a));
                    after_each.push(answers(&ledger, &digests, &people));
                }
            }
            ledger.apply_block(&sequencer.propose(&ledger.tip(), 3_000)).unwrap();
            after_each.push(answers(&ledger, &digests, &people));
            drop(ledger);
            let reopened = Ledger::open(&path, options).unwrap();
            after_each.push(answers(&reopened, &digests, &people));
            assert_eq!(after_each[after_each.len() - 1], after_each[after_each.len() - 2], "batch {batch}");
            seen.push(after_each);
        }
        assert!(seen[0].iter().flatten().any(|a| a.contains("NodeRegisteredEvent")));
        assert_eq!(seen[1], seen[0], "a batch of 8 answers like writing every block");
        assert_eq!(seen[2], seen[0], "holding every entry answers like writing every block");
    }
}
