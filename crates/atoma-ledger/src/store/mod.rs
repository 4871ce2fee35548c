//! Durable storage in one redb file: blocks, transaction results, the event log and its indexes,
//! nonces and state snapshots.
//!
//! Every applied block is written by **one** redb write transaction — one commit, two-phase so
//! two fsyncs (below) — so a block and everything it produced are on disk together or not at
//! all. Keys that hold numbers are big-endian so that byte order is numeric order.
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
//!
//! # Files
//! - this one: the [`Store`] — opening or creating the file, the format check, write
//!   transactions and a reader's view of the tables and the entries held in memory;
//! - `schema`: the tables and their keys, the records, what a commit holds, and reading a
//!   sealed record back under its key;
//! - `write`: a block's commit and the batched index writes;
//! - `query`: blocks, transactions, snapshots, nonces, and event queries with cursors;
//! - `repair`: the index check at open, rebuilding the indexes from the blocks, the rebuild mark
//!   a read leaves, and what recovery writes back;
//! - `seal`: the checksum on every record; `unindexed`: the batched indexes' entries held in
//!   memory; `faults` (tests): damaged stores reopen whole or are refused.
//!
//! [`GenesisConfig`]: crate::GenesisConfig
//! [`BlockHeader`]: atoma_types::block::BlockHeader
//! [`EventRecord`]: atoma_types::events::EventRecord

#[cfg(test)]
mod faults;
mod query;
mod repair;
mod schema;
mod seal;
mod unindexed;
mod write;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
#[cfg(test)]
use std::sync::atomic::Ordering;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use redb::{Builder, Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::error::ChainError;
use schema::{
    BLOCK_HEIGHTS, BLOCKS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_FORMAT,
    NONCES, SNAPSHOTS, STATE_DIGESTS, TRANSACTIONS, TX_POSITIONS, read_indexed_height, read_tip,
};
pub(crate) use schema::{Commit, Snapshot};
pub use schema::{SNAPSHOTS_KEPT, STORE_FORMAT_VERSION, UPGRADED_FORMAT_VERSIONS};
use unindexed::{INDEX_BATCH, Unindexed};
pub(crate) use write::block_entries;

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
            let upgraded =
                |v: &[u8]| UPGRADED_FORMAT_VERSIONS.iter().any(|old| v == old.to_le_bytes().as_slice());
            match version {
                Some(v) if v == STORE_FORMAT_VERSION.to_le_bytes() => {}
                None => {
                    meta.insert(META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes()[..])?;
                }
                Some(v) if upgraded(&v) => {
                    meta.insert(META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes()[..])?;
                }
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

    /// Why a store of another format is refused. No store older than the upgraded versions was
    /// ever deployed, so there is nothing to migrate.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{LocalKeys, LocalNetworkOptions};
    use crate::ledger::{Ledger, LedgerOptions};
    use crate::sequencer::Sequencer;
    use atoma_contract::{Address, Call};

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
        let set_version = |version: u32| {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert(META_FORMAT, &version.to_le_bytes()[..]).unwrap();
            txn.commit().unwrap();
        };
        let stored_version = || {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_read().unwrap();
            txn.open_table(META).unwrap().get(META_FORMAT).unwrap().map(|v| v.value().to_vec())
        };
        assert_eq!(stored_version(), Some(STORE_FORMAT_VERSION.to_le_bytes().to_vec()));
        // 4 and 3: their snapshots are states without node endpoints, which do not decode.
        let refused =
            [(2u32, "older than this build"), (3, "older than this build"), (4, "older than this build")]
                .into_iter()
                .chain([(STORE_FORMAT_VERSION + 1, "newer than this build")]);
        for (version, says) in refused {
            assert!(!UPGRADED_FORMAT_VERSIONS.contains(&version));
            set_version(version);
            let error = Ledger::open(&path, OPTIONS).err().unwrap();
            assert_eq!(error.name(), "ECorruptStore");
            assert!(error.to_string().contains(says), "{error}");
            assert!(error.to_string().contains(&format!("store format {version}")), "{error}");
            if version < STORE_FORMAT_VERSION {
                assert!(error.to_string().contains("atoma start --fresh"), "{error}");
            }
            assert_eq!(
                stored_version(),
                Some(version.to_le_bytes().to_vec()),
                "a refused store is not touched"
            );
        }
        // An upgraded version is a valid store of this version: it opens, and says so from then on.
        for version in UPGRADED_FORMAT_VERSIONS {
            set_version(*version);
            drop(Ledger::open(&path, OPTIONS).expect("an upgraded version opens"));
            assert_eq!(stored_version(), Some(STORE_FORMAT_VERSION.to_le_bytes().to_vec()));
        }
        assert_eq!(
            Ledger::open(&dir.path().join("none.redb"), OPTIONS).err().map(|e| e.name()),
            Some("EInvalidConfig"),
            "no store and no genesis"
        );
        assert!(!dir.path().join("none.redb").exists(), "nothing is created without a genesis");
    }
}
