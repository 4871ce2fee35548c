//! The store's layout: the tables and their keys, the records they hold, what one commit
//! writes, and how a sealed record is read back under its key and checked. The map of the
//! tables is in the `store` module's docs (mod.rs); writing is `write`'s job, reading `query`'s
//! and `repair`'s.

use atoma_contract::{Address, AtomaDb};
use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

use super::seal::{open, seal, unseal};
use super::unindexed::{ObjectKey, PosKey, TxPos, height_of, tx_pos};
use crate::block::BlockHeader;
use crate::digest::Digest;
use crate::error::ChainError;
use crate::events::{EventRecord, ObjectKind};
use crate::genesis::GenesisConfig;
use crate::state::{ChainState, LedgerState, combined_digest};
use crate::tx::SignedTransaction;
use atoma_types::{TxOutcome, TxStatus};

/// The layout version written in `meta`; a store with another version is refused, except the
/// ones in [`UPGRADED_FORMAT_VERSIONS`]. Version 2 keyed transactions by position and wrote the
/// random-key indexes in batches; version 3 seals records with checksums
/// ([`seal`](mod@super::seal)); version 4 may hold records of skipped transactions, which
/// `tx_positions` leaves out and `meta` counts (`skipped_transactions`) — a build that knows only
/// version 3 would take such a record for damage, so it is refused the store by name instead;
/// version 5: the state gains node endpoints (`set_node_endpoint`), so a snapshot, the BCS of
/// [`AtomaDb`], has one more table, and a version-4 (or 3) store's snapshots do not decode — such
/// a store is refused by name with the advice to start afresh. Version 6: a closed stack keeps
/// a record (owner, task, node, units, escrow and how it was divided) instead of how it closed
/// only, so version-5 snapshots do not decode either.
pub const STORE_FORMAT_VERSION: u32 = 6;
/// Older versions that are already valid stores of [`STORE_FORMAT_VERSION`], upgraded in place by
/// writing the new number. None today: version 3 was one while 4 was current (a version-3 store
/// holds no skipped transaction), but a version-3 store's snapshots predate node endpoints too.
pub const UPGRADED_FORMAT_VERSIONS: &[u32] = &[];
/// Snapshots kept besides the genesis one: older ones are deleted when a new one is written.
pub const SNAPSHOTS_KEPT: usize = 2;

pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(super) const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
pub(super) const BLOCK_HEIGHTS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_heights");
pub(super) const STATE_DIGESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("state_digests");
pub(super) const TRANSACTIONS: TableDefinition<&TxPos, &[u8]> = TableDefinition::new("transactions");
pub(super) const TX_POSITIONS: TableDefinition<&[u8; 32], &TxPos> = TableDefinition::new("tx_positions");
pub(super) const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");
pub(super) const EVENTS_BY_TYPE: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_type");
pub(super) const EVENTS_BY_SENDER: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_sender");
pub(super) const EVENTS_BY_OBJECT: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_object");
pub(super) const NONCES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("nonces");
pub(super) const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");

pub(super) const META_FORMAT: &str = "format_version";
pub(super) const META_GENESIS: &str = "genesis";
pub(super) const META_INDEXED: &str = "indexed_height";
/// Entries in `events_by_object` when the batched indexes were last written: nothing else says
/// how many it should hold.
pub(super) const META_OBJECT_LEN: &str = "object_index_len";
/// Present when a read found an index entry that does not lead where it should: the next open
/// rebuilds the indexes. Holds what was found.
pub(super) const META_REBUILD: &str = "rebuild_indexes";
/// Records of skipped transactions (docs/LEDGER.md §3), which `tx_positions` does not index:
/// nothing else says how many of the records it should leave out. Absent means none.
pub(super) const META_SKIPPED: &str = "skipped_transactions";

pub(super) fn pos_key((height, tx_index, event_seq): (u64, u64, u64)) -> PosKey {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&tx_pos(height, tx_index));
    key[16..].copy_from_slice(&event_seq.to_be_bytes());
    key
}

pub(super) fn type_prefix(name: &str) -> Vec<u8> {
    [name.as_bytes(), &[0]].concat()
}

/// The byte that stands for an object kind in `events_by_object` keys.
fn object_tag(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Node => 0,
        ObjectKind::Task => 1,
        ObjectKind::Stack => 2,
    }
}

pub(super) fn object_key(kind: ObjectKind, id: u64) -> ObjectKey {
    let mut key = [0u8; 9];
    key[0] = object_tag(kind);
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
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
    /// The number of the contract's error, or of the ledger's for a skipped transaction
    /// (`ENonceUsed`, `ENonceFuture`); `None` on success. Stored as a number, not as the enum,
    /// so that adding errors never changes what is on disk.
    pub error_code: Option<u64>,
    pub event_count: u64,
}

/// A [`TxRecord`] written from borrowed parts, without copying the signed transaction: the same
/// fields in the same order, so the same BCS (serde encodes `Option<&T>` like `Option<T>`).
#[derive(Serialize)]
pub(super) struct TxRecordRef<'a> {
    signed: Option<&'a SignedTransaction>,
    sender: &'a Address,
    height: u64,
    index: u64,
    epoch: u64,
    timestamp_ms: u64,
    error_code: Option<u64>,
    event_count: u64,
}

impl<'a> TxRecordRef<'a> {
    pub(super) fn new(signed: Option<&'a SignedTransaction>, outcome: &'a TxOutcome) -> Self {
        TxRecordRef {
            signed,
            sender: &outcome.sender,
            height: outcome.height,
            index: outcome.index,
            epoch: outcome.epoch,
            timestamp_ms: outcome.timestamp_ms,
            error_code: outcome.status.error_code(),
            event_count: outcome.events.len() as u64,
        }
    }
}

impl TxRecord {
    pub fn status(&self) -> Result<TxStatus, ChainError> {
        TxStatus::from_error_code(self.error_code)
            .ok_or_else(|| ChainError::corrupt(format!("unknown error number {:?}", self.error_code)))
    }

    /// Whether the transaction was executed and so used its nonce; a skipped one did not, and
    /// is not indexed by its digest.
    pub fn was_executed(&self) -> bool {
        self.error_code.is_none_or(|code| atoma_types::SkipReason::from_code(code).is_none())
    }
}

/// A copy of the whole state at a height, and its combined digest.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub height: u64,
    pub ledger: LedgerState,
    /// [`AtomaDb::canonical_bytes`].
    #[serde(with = "atoma_types::codec::bytes")]
    pub contract: Vec<u8>,
    pub digest: Digest,
}

impl Snapshot {
    /// Rebuilds the state, checking it against the digest.
    pub fn restore(&self) -> Result<ChainState, ChainError> {
        if combined_digest(&self.contract, &self.ledger) != self.digest || self.ledger.height != self.height {
            return Err(ChainError::corrupt(format!("snapshot {} does not match its digest", self.height)));
        }
        let db = AtomaDb::from_canonical_bytes(&self.contract)
            .map_err(|e| ChainError::corrupt(format!("snapshot {}: {e}", self.height)))?;
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

pub(super) fn missing(what: &str) -> ChainError {
    ChainError::corrupt(format!("{what} is missing"))
}

pub(super) fn read_tip(txn: &ReadTransaction) -> Result<Option<u64>, ChainError> {
    let blocks = txn.open_table(BLOCKS)?;
    Ok(blocks.last()?.map(|(k, _)| k.value()))
}

/// The height up to which the batched indexes are in their tables (0 before the genesis).
pub(super) fn read_indexed_height(txn: &ReadTransaction) -> Result<u64, ChainError> {
    let meta = txn.open_table(META)?;
    read_meta_u64(&meta, META_INDEXED).map(|height| height.unwrap_or(0))
}

pub(super) fn read_header(txn: &ReadTransaction, height: u64) -> Result<Option<BlockHeader>, ChainError> {
    let table = txn.open_table(BLOCKS)?;
    let Some(bytes) = table.get(height)? else { return Ok(None) };
    let what = || format!("the header of block {height}");
    open(BLOCKS.name(), &height.to_be_bytes(), bytes.value(), &what).map(Some)
}

pub(super) fn open_record(pos: &TxPos, bytes: &[u8]) -> Result<TxRecord, ChainError> {
    let what = || format!("the record of transaction {} of block {}", height_of(&pos[8..]), height_of(pos));
    open(TRANSACTIONS.name(), pos, bytes, &what)
}

pub(super) fn open_event(pos: &[u8], bytes: &[u8]) -> Result<EventRecord, ChainError> {
    let what = || format!("an event of block {}", height_of(pos));
    let event: EventRecord = open(EVENTS.name(), pos, bytes, &what)?;
    if pos_key(event.position())[..] != *pos {
        return Err(ChainError::corrupt(format!("{} is stored at another event's position", what())));
    }
    Ok(event)
}

pub(super) fn open_snapshot(height: u64, bytes: &[u8]) -> Result<Snapshot, ChainError> {
    let what = || format!("the snapshot at height {height}");
    open(SNAPSHOTS.name(), &height.to_be_bytes(), bytes, &what)
}

pub(super) fn read_meta_u64(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<u64>, ChainError> {
    let Some(bytes) = meta.get(key)? else { return Ok(None) };
    let what = || format!("`{key}` in meta");
    let payload = unseal(META.name(), key.as_bytes(), bytes.value(), &what)?;
    let payload = <[u8; 8]>::try_from(payload)
        .map_err(|_| ChainError::corrupt(format!("{} is not 8 bytes", what())))?;
    Ok(Some(u64::from_le_bytes(payload)))
}

pub(super) fn write_meta_u64(
    meta: &mut redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    value: u64,
) -> Result<(), ChainError> {
    meta.insert(key, &seal(META.name(), key.as_bytes(), value.to_le_bytes().to_vec())[..])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_stored, encode};
    use crate::tx::Keypair;
    use atoma_contract::{Call, ContractError};

    #[test]
    fn records_written_from_borrowed_parts_decode_as_records() {
        let signed = Keypair::test_account(3).sign_call(
            [1; 32],
            4,
            Call::TransferToma { recipient: Address([2; 32]), amount: 5 },
        );
        let outcome = TxOutcome {
            digest: signed.digest(),
            sender: Address([6; 32]),
            height: 7,
            index: 8,
            epoch: 9,
            timestamp_ms: 10,
            status: TxStatus::Failure(ContractError::ALL[3]),
            events: Vec::new(),
        };
        for signed in [Some(&signed), None] {
            let record: TxRecord =
                decode_stored(&encode(&TxRecordRef::new(signed, &outcome)), "a record").unwrap();
            assert_eq!(record.signed.as_ref(), signed);
            assert_eq!((record.sender, record.height, record.index), (outcome.sender, 7, 8));
            assert_eq!((record.epoch, record.timestamp_ms, record.event_count), (9, 10, 0));
            assert_eq!(record.status().unwrap(), outcome.status);
        }
    }
}
