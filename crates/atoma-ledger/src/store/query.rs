//! Reading: blocks, headers, transactions with their events, snapshots, nonces, and pages of
//! events with cursors. A read that follows an index sees, in one view, the tables up to
//! `indexed_height` and the entries held in memory after it, merged in position order, and
//! checks that each record it reaches is the one asked for: one that is not marks the indexes
//! for a rebuild (`repair`).

use std::ops::Bound;

use atoma_contract::Address;
use redb::{ReadOnlyTable, ReadableDatabase, ReadableTable, TableHandle};

use super::schema::{
    BLOCK_HEIGHTS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_GENESIS, NONCES,
    SNAPSHOTS, STATE_DIGESTS, Snapshot, TRANSACTIONS, TX_POSITIONS, TxRecord, missing, object_key,
    open_event, open_record, open_snapshot, pos_key, read_header, read_tip, type_prefix,
};
use super::seal::{open, unseal};
use super::unindexed::{PosKey, TxPos, Unindexed, height_of, tx_pos};
use super::{Store, View};
use crate::block::{Block, BlockHeader};
use crate::digest::Digest;
use crate::error::{ChainError, Damage, LedgerError};
use crate::events::{EventFilter, EventId, EventRecord, ObjectKind, Page, object_refs};
use crate::genesis::GenesisConfig;

impl Store {
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
