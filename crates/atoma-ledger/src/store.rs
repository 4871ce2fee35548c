//! Durable storage in one redb file: blocks, transaction results, the event log and its indexes,
//! nonces and state snapshots.
//!
//! Every applied block is written by **one** redb write transaction — one commit, one fsync —
//! so a block and everything it produced are on disk together or not at all. Keys that hold
//! numbers are big-endian so that byte order is numeric order.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | `"format_version"`, `"genesis"` | `u32` LE; BCS [`GenesisConfig`] |
//! | `blocks` | height `u64` | BCS [`BlockHeader`] |
//! | `block_heights` | block digest | height |
//! | `state_digests` | height | combined state digest after the block (snapshot heights only) |
//! | `transactions` | tx digest | BCS `TxRecord`: signed transaction, block, index, status, event count |
//! | `events` | position `height‖tx_index‖event_seq` (24 bytes) | BCS [`EventRecord`] |
//! | `events_by_type` | `name‖0x00‖position` | `()` |
//! | `events_by_sender` | `address‖position` | `()` |
//! | `events_by_object` | `kind‖small_id‖position` (kind 0 node, 1 task, 2 stack) | `()` |
//! | `nonces` | address | next nonce |
//! | `snapshots` | height | BCS `Snapshot` |
//!
//! Events of one transaction need no index of their own: `transactions` gives the block and
//! index, and `events` holds them contiguously from `height‖tx_index‖0`.

use std::ops::Bound;
use std::path::Path;

use atoma_contract::{Address, AtomaDb, ContractError};
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockHeader};
use crate::codec::{decode_stored, encode};
use crate::digest::Digest;
use crate::error::LedgerError;
use crate::events::{EventFilter, EventId, EventRecord, ObjectKind, Page, object_refs};
use crate::execution::{TxOutcome, TxStatus};
use crate::genesis::GenesisConfig;
use crate::state::{ChainState, LedgerState, combined_digest};
use crate::tx::SignedTransaction;

/// The layout version written in `meta`; a store with another version is refused.
pub const STORE_FORMAT_VERSION: u32 = 1;
/// Snapshots kept besides the genesis one: older ones are deleted when a new one is written.
pub const SNAPSHOTS_KEPT: usize = 2;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_HEIGHTS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_heights");
const STATE_DIGESTS: TableDefinition<u64, &[u8; 32]> = TableDefinition::new("state_digests");
const TRANSACTIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("transactions");
const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");
const EVENTS_BY_TYPE: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_type");
const EVENTS_BY_SENDER: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_sender");
const EVENTS_BY_OBJECT: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_object");
const NONCES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("nonces");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");

const META_FORMAT: &str = "format_version";
const META_GENESIS: &str = "genesis";

/// An event's position as a 24-byte key: `height‖tx_index‖event_seq`, big-endian.
type PosKey = [u8; 24];

fn pos_key((height, tx_index, event_seq): (u64, u64, u64)) -> PosKey {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&height.to_be_bytes());
    key[8..16].copy_from_slice(&tx_index.to_be_bytes());
    key[16..].copy_from_slice(&event_seq.to_be_bytes());
    key
}

fn type_prefix(name: &str) -> Vec<u8> {
    [name.as_bytes(), &[0]].concat()
}

fn object_prefix(kind: ObjectKind, id: u64) -> Vec<u8> {
    [&[kind.tag()][..], &id.to_be_bytes()].concat()
}

/// A transaction's stored result. `signed` is `None` only for the genesis pseudo-transaction,
/// whose digest is the genesis digest and whose events are the contract's genesis events.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct TxRecord {
    pub signed: Option<SignedTransaction>,
    pub sender: Address,
    pub height: u64,
    pub index: u64,
    pub epoch: u64,
    pub timestamp_ms: u64,
    /// The contract error's number; `None` on success. Stored as a number, not as the enum,
    /// so that adding contract errors never changes what is on disk.
    pub error_code: Option<u64>,
    pub event_count: u64,
}

impl TxRecord {
    fn new(signed: Option<&SignedTransaction>, outcome: &TxOutcome) -> Self {
        TxRecord {
            signed: signed.cloned(),
            sender: outcome.sender,
            height: outcome.height,
            index: outcome.index,
            epoch: outcome.epoch,
            timestamp_ms: outcome.timestamp_ms,
            error_code: outcome.status.error().map(ContractError::code),
            event_count: outcome.events.len() as u64,
        }
    }

    pub fn status(&self) -> Result<TxStatus, LedgerError> {
        let Some(code) = self.error_code else { return Ok(TxStatus::Success) };
        ContractError::ALL
            .iter()
            .find(|e| e.code() == code)
            .map(|e| TxStatus::Failure(*e))
            .ok_or_else(|| LedgerError::ECorruptStore(format!("unknown contract error {code}")))
    }
}

/// A copy of the whole state at a height, and its combined digest.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub height: u64,
    pub ledger: LedgerState,
    /// [`AtomaDb::canonical_bytes`].
    pub contract: Vec<u8>,
    pub digest: Digest,
}

impl Snapshot {
    /// Rebuilds the state, checking it against the digest.
    pub fn restore(&self) -> Result<ChainState, LedgerError> {
        if combined_digest(&self.contract, &self.ledger) != self.digest || self.ledger.height != self.height {
            return Err(LedgerError::ECorruptStore(format!(
                "snapshot {} does not match its digest",
                self.height
            )));
        }
        let db = AtomaDb::from_canonical_bytes(&self.contract)
            .map_err(|e| LedgerError::ECorruptStore(format!("snapshot {}: {e}", self.height)))?;
        Ok(ChainState { db, ledger: self.ledger.clone() })
    }
}

/// Everything one commit writes: a block (or the genesis) and what it produced.
pub(crate) struct Commit<'a> {
    pub header: &'a BlockHeader,
    pub digest: Digest,
    /// Each transaction (`None` for the genesis pseudo-transaction) with its outcome.
    pub transactions: Vec<(Option<&'a SignedTransaction>, &'a TxOutcome)>,
    /// Recorded at snapshot heights only.
    pub state_digest: Option<Digest>,
    pub nonces: &'a [(Address, u64)],
    pub snapshot: Option<Snapshot>,
    /// Written only by the genesis commit.
    pub genesis: Option<&'a GenesisConfig>,
}

/// The redb database of one chain.
pub(crate) struct Store {
    db: Database,
}

impl Store {
    /// Opens or creates the database file and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let store = Store { db: Database::create(path)? };
        store.create_tables()?;
        Ok(store)
    }

    fn create_tables(&self) -> Result<(), LedgerError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get(META_FORMAT)?.map(|v| v.value().to_vec());
            match version {
                None => {
                    meta.insert(META_FORMAT, &STORE_FORMAT_VERSION.to_le_bytes()[..])?;
                }
                Some(v) if v == STORE_FORMAT_VERSION.to_le_bytes() => {}
                Some(_) => return Err(LedgerError::ECorruptStore("unsupported store format version".into())),
            }
            txn.open_table(BLOCKS)?;
            txn.open_table(BLOCK_HEIGHTS)?;
            txn.open_table(STATE_DIGESTS)?;
            txn.open_table(TRANSACTIONS)?;
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

    /// Writes a block and its effects in one transaction, and commits (fsync) before returning.
    pub fn commit(&self, c: &Commit<'_>) -> Result<(), LedgerError> {
        let txn = self.db.begin_write()?;
        write_header(&txn, c)?;
        write_transactions(&txn, &c.transactions)?;
        write_nonces(&txn, c.nonces)?;
        if let Some(snapshot) = &c.snapshot {
            write_snapshot(&txn, snapshot)?;
        }
        if let Some(genesis) = c.genesis {
            txn.open_table(META)?.insert(META_GENESIS, &encode(genesis)[..])?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The genesis, if the store has one.
    pub fn genesis(&self) -> Result<Option<GenesisConfig>, LedgerError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let bytes = meta.get(META_GENESIS)?.map(|v| v.value().to_vec());
        bytes.map(|b| decode_stored(&b, "the genesis")).transpose()
    }

    /// The height of the last committed block.
    pub fn tip_height(&self) -> Result<u64, LedgerError> {
        let txn = self.db.begin_read()?;
        let blocks = txn.open_table(BLOCKS)?;
        let last = blocks.last()?.map(|(k, _)| k.value());
        last.ok_or_else(|| LedgerError::ECorruptStore("no blocks".into()))
    }

    /// A block's header.
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, LedgerError> {
        let txn = self.db.begin_read()?;
        read_header(&txn, height)
    }

    /// A block with its transactions.
    pub fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let txn = self.db.begin_read()?;
        let Some(header) = read_header(&txn, height)? else { return Ok(None) };
        let table = txn.open_table(TRANSACTIONS)?;
        let mut transactions = Vec::with_capacity(header.tx_digests.len());
        for digest in &header.tx_digests {
            let record = read_tx(&table, digest)?.ok_or_else(|| missing("a block's transaction"))?;
            transactions.push(record.signed.ok_or_else(|| missing("a block's signed transaction"))?);
        }
        Ok(Some(Block { header, transactions }))
    }

    /// The height of the block with this digest.
    pub fn height_of(&self, digest: &Digest) -> Result<Option<u64>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCK_HEIGHTS)?;
        Ok(table.get(&digest.0)?.map(|v| v.value()))
    }

    /// The combined state digest recorded after the block at `height`.
    pub fn state_digest_at(&self, height: u64) -> Result<Option<Digest>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE_DIGESTS)?;
        Ok(table.get(height)?.map(|v| Digest(*v.value())))
    }

    /// A transaction's record and its events.
    pub fn transaction(&self, digest: &Digest) -> Result<Option<(TxRecord, Vec<EventRecord>)>, LedgerError> {
        let txn = self.db.begin_read()?;
        let Some(record) = read_tx(&txn.open_table(TRANSACTIONS)?, digest)? else { return Ok(None) };
        let events = txn.open_table(EVENTS)?;
        let span = tx_span(record.height, record.index);
        let positions = scan(&events, &[], span, None, false, usize::MAX)?;
        let records = fetch_events(&events, &positions)?;
        Ok(Some((record, records)))
    }

    /// The newest snapshot.
    pub fn latest_snapshot(&self) -> Result<Option<Snapshot>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let bytes = table.last()?.map(|(_, v)| v.value().to_vec());
        bytes.map(|b| decode_stored(&b, "a snapshot")).transpose()
    }

    /// The snapshot at exactly `height`.
    pub fn snapshot_at(&self, height: u64) -> Result<Option<Snapshot>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let bytes = table.get(height)?.map(|v| v.value().to_vec());
        bytes.map(|b| decode_stored(&b, "a snapshot")).transpose()
    }

    /// The heights that hold a snapshot, ascending.
    pub fn snapshot_heights(&self) -> Result<Vec<u64>, LedgerError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        table.iter()?.map(|item| Ok(item?.0.value())).collect()
    }

    /// The next nonce the `nonces` table records for `address`.
    pub fn stored_nonce(&self, address: &Address) -> Result<u64, LedgerError> {
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
    ) -> Result<Page<EventRecord, EventId>, LedgerError> {
        let txn = self.db.begin_read()?;
        let after = cursor.map(|c| cursor_position(&txn, &c)).transpose()?;
        let take = limit.saturating_add(1);
        let Some(positions) = filter_positions(&txn, filter, after.as_ref(), descending, take)? else {
            return Ok(Page { data: Vec::new(), next_cursor: cursor, has_next_page: false });
        };
        let has_next_page = positions.len() > limit;
        let positions = &positions[..positions.len().min(limit)];
        let data = fetch_events(&txn.open_table(EVENTS)?, positions)?;
        let next_cursor = data.last().map(|e| e.id).or(cursor);
        Ok(Page { data, next_cursor, has_next_page })
    }
}

fn missing(what: &str) -> LedgerError {
    LedgerError::ECorruptStore(format!("{what} is missing"))
}

fn write_header(txn: &WriteTransaction, c: &Commit<'_>) -> Result<(), LedgerError> {
    let height = c.header.height;
    txn.open_table(BLOCKS)?.insert(height, &encode(c.header)[..])?;
    txn.open_table(BLOCK_HEIGHTS)?.insert(&c.digest.0, height)?;
    if let Some(digest) = &c.state_digest {
        txn.open_table(STATE_DIGESTS)?.insert(height, &digest.0)?;
    }
    Ok(())
}

/// Writes transaction records, events and event indexes, each table opened once.
fn write_transactions(
    txn: &WriteTransaction,
    transactions: &[(Option<&SignedTransaction>, &TxOutcome)],
) -> Result<(), LedgerError> {
    let mut records = txn.open_table(TRANSACTIONS)?;
    let mut events = txn.open_table(EVENTS)?;
    let mut by_type = txn.open_table(EVENTS_BY_TYPE)?;
    let mut by_sender = txn.open_table(EVENTS_BY_SENDER)?;
    let mut by_object = txn.open_table(EVENTS_BY_OBJECT)?;
    let mut key = Vec::new();
    for (signed, outcome) in transactions {
        records.insert(&outcome.digest.0, &encode(&TxRecord::new(*signed, outcome))[..])?;
        for event in &outcome.events {
            let pos = pos_key(event.position());
            events.insert(&pos[..], &encode(event)[..])?;
            let mut index = |table: &mut redb::Table<&[u8], ()>, prefix: &[u8]| {
                key.clear();
                key.extend_from_slice(prefix);
                key.extend_from_slice(&pos);
                table.insert(&key[..], ()).map(|_| ())
            };
            index(&mut by_type, &type_prefix(event.event.name()))?;
            index(&mut by_sender, &event.sender.0)?;
            for (kind, id) in object_refs(&event.event) {
                index(&mut by_object, &object_prefix(kind, id))?;
            }
        }
    }
    Ok(())
}

fn write_nonces(txn: &WriteTransaction, nonces: &[(Address, u64)]) -> Result<(), LedgerError> {
    let mut table = txn.open_table(NONCES)?;
    for (address, next) in nonces {
        table.insert(&address.0, *next)?;
    }
    Ok(())
}

/// Writes a snapshot and deletes all but the newest [`SNAPSHOTS_KEPT`] (the genesis one stays).
fn write_snapshot(txn: &WriteTransaction, snapshot: &Snapshot) -> Result<(), LedgerError> {
    let mut table = txn.open_table(SNAPSHOTS)?;
    table.insert(snapshot.height, &encode(snapshot)[..])?;
    let older: Vec<u64> = table
        .range(1..snapshot.height)?
        .map(|item| item.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    let keep_from = older.len().saturating_sub(SNAPSHOTS_KEPT.saturating_sub(1));
    for height in &older[..keep_from] {
        table.remove(*height)?;
    }
    Ok(())
}

fn read_header(txn: &ReadTransaction, height: u64) -> Result<Option<BlockHeader>, LedgerError> {
    let table = txn.open_table(BLOCKS)?;
    let bytes = table.get(height)?.map(|v| v.value().to_vec());
    bytes.map(|b| decode_stored(&b, "a block header")).transpose()
}

fn read_tx(
    table: &ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    digest: &Digest,
) -> Result<Option<TxRecord>, LedgerError> {
    let bytes = table.get(&digest.0)?.map(|v| v.value().to_vec());
    bytes.map(|b| decode_stored(&b, "a transaction record")).transpose()
}

/// The global position of the event a cursor names.
fn cursor_position(txn: &ReadTransaction, cursor: &EventId) -> Result<PosKey, LedgerError> {
    let record =
        read_tx(&txn.open_table(TRANSACTIONS)?, &cursor.tx_digest)?.ok_or(LedgerError::EInvalidCursor)?;
    Ok(pos_key((record.height, record.index, cursor.event_seq)))
}

/// Up to `take` positions of events matching `filter`; `None` when nothing can match.
fn filter_positions(
    txn: &ReadTransaction,
    filter: &EventFilter,
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Option<Vec<PosKey>>, LedgerError> {
    let positions = match filter {
        EventFilter::All => scan(&txn.open_table(EVENTS)?, &[], EVERY_POSITION, after, descending, take)?,
        EventFilter::Transaction(digest) => {
            let Some(record) = read_tx(&txn.open_table(TRANSACTIONS)?, digest)? else { return Ok(None) };
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
            scan(&txn.open_table(EVENTS_BY_SENDER)?, &sender.0, EVERY_POSITION, after, descending, take)?
        }
        EventFilter::Node(id) => object_scan(txn, ObjectKind::Node, id.0, after, descending, take)?,
        EventFilter::Task(id) => object_scan(txn, ObjectKind::Task, id.0, after, descending, take)?,
        EventFilter::Stack(id) => object_scan(txn, ObjectKind::Stack, id.0, after, descending, take)?,
    };
    Ok(Some(positions))
}

fn object_scan(
    txn: &ReadTransaction,
    kind: ObjectKind,
    id: u64,
    after: Option<&PosKey>,
    descending: bool,
    take: usize,
) -> Result<Vec<PosKey>, LedgerError> {
    scan(
        &txn.open_table(EVENTS_BY_OBJECT)?,
        &object_prefix(kind, id),
        EVERY_POSITION,
        after,
        descending,
        take,
    )
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
) -> Result<Vec<PosKey>, LedgerError> {
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
        out.push(pos.ok_or_else(|| LedgerError::ECorruptStore("a short event index key".into()))?);
    }
    Ok(out)
}

fn fetch_events(
    events: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    positions: &[PosKey],
) -> Result<Vec<EventRecord>, LedgerError> {
    positions
        .iter()
        .map(|pos| {
            let bytes = events
                .get(&pos[..])?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| missing("an indexed event"))?;
            decode_stored(&bytes, "an event")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::{LocalKeys, LocalNetworkOptions};
    use crate::ledger::{Ledger, LedgerOptions};
    use crate::sequencer::Sequencer;
    use atoma_contract::Call;

    const OPTIONS: LedgerOptions = LedgerOptions { snapshot_interval: 2, event_buffer: 16 };

    /// A ledger with `count` applied blocks (a snapshot every 2), closed again.
    fn blocks(path: &Path, count: u64) {
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

    fn damage(path: &Path, write: impl FnOnce(&WriteTransaction)) {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        write(&txn);
        txn.commit().unwrap();
    }

    fn reopen(path: &Path) -> Result<(), &'static str> {
        Ledger::open(path, OPTIONS).map(|_| ()).map_err(|e| e.name())
    }

    #[test]
    fn damaged_storage_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        blocks(&path, 3);
        assert_eq!(reopen(&path), Ok(()));
        damage(&path, |txn| {
            txn.open_table(STATE_DIGESTS).unwrap().insert(3, &[0u8; 32]).unwrap();
        });
        assert_eq!(reopen(&path), Err("ECorruptStore"), "a replayed block disagrees with its digest");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        blocks(&path, 3);
        damage(&path, |txn| {
            txn.open_table(SNAPSHOTS).unwrap().insert(2, &[1u8, 2, 3][..]).unwrap();
        });
        assert_eq!(reopen(&path), Err("ECorruptStore"), "a snapshot that does not decode");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        blocks(&path, 3);
        damage(&path, |txn| {
            txn.open_table(META).unwrap().insert(META_FORMAT, &9u32.to_le_bytes()[..]).unwrap();
        });
        assert_eq!(reopen(&path), Err("ECorruptStore"), "an unknown format version");
        assert_eq!(reopen(&dir.path().join("empty.redb")), Err("EInvalidConfig"), "no genesis");
    }

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
