//! Storage faults: a chain is written, its file damaged — bytes flipped, a page zeroed, the tail
//! cut off, a record changed or deleted through redb as a buggy tool would — and reopened. The
//! ledger must come back with exactly the original tip and state digest and serve the original
//! history (perhaps after passing over a snapshot or rebuilding the indexes), or refuse with
//! `ECorruptStore` / `EStorage`: never a different state, never a panic.
//!
//! `ATOMA_FAULT_CASES` (default [`DEFAULT_CASES`]) sets the number of seeded cases and
//! `ATOMA_FAULT_SEED` the seed; `--nocapture` prints how the cases ended. docs/RELIABILITY.md
//! ("Storage faults") quotes the last long run.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use atoma_contract::{Address, Call, NodeSmallId, TOMA};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};

use super::Store;
use super::schema::{
    BLOCK_HEIGHTS, BLOCKS, EVENTS, EVENTS_BY_OBJECT, EVENTS_BY_SENDER, EVENTS_BY_TYPE, META, META_INDEXED,
    META_REBUILD, NONCES, SNAPSHOTS, STATE_DIGESTS, TRANSACTIONS, TX_POSITIONS,
};
use super::unindexed::{TxPos, tx_pos};
use crate::digest::Digest;
use crate::error::{ChainError, LedgerError};
use crate::events::EventFilter;
use crate::genesis::{LocalKeys, LocalNetworkOptions};
use crate::ledger::{Ledger, LedgerOptions};
use crate::sequencer::Sequencer;
use crate::tx::Keypair;

const DEFAULT_CASES: u64 = 200;
const DEFAULT_SEED: u64 = 0x5EED_F00D;
/// A snapshot every 3 blocks: with 11 blocks, snapshots 0 (genesis), 6 and 9 are kept.
const OPTIONS: LedgerOptions = LedgerOptions { snapshot_interval: 3, event_buffer: 16 };
const BLOCK_COUNT: u64 = 11;

/// proptest's seeded ChaCha generator: each case is reproducible from its seed.
struct Rng(proptest::test_runner::TestRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        let seed = [seed.to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat();
        Rng(proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed))
    }

    fn below(&mut self, n: u64) -> u64 {
        use proptest::prelude::Rng as _;
        self.0.next_u64() % n.max(1)
    }
}

/// What a reader can see of a chain: the tip, the state digest, every block, every event, every
/// transaction, the indexed queries and the nonces.
#[derive(PartialEq, Debug)]
struct Seen {
    tip: u64,
    digest: Digest,
    history: Vec<String>,
}

fn seen(ledger: &Ledger, people: &[Address]) -> Result<Seen, ChainError> {
    let tip = ledger.tip().height;
    let mut history = Vec::new();
    let mut digests = Vec::new();
    for height in 0..=tip {
        let block = ledger.block(height)?.ok_or_else(|| ChainError::corrupt("no block"))?;
        digests.extend(block.header.tx_digests.iter().copied());
        history.push(format!("{:?} {:?}", ledger.block_height(&block.digest())?, block));
    }
    digests.push(Digest(ledger.params().chain_id));
    for digest in &digests {
        history.push(format!("{:?}", ledger.transaction(digest)?));
    }
    let mut filters = vec![EventFilter::All, EventFilter::EventType("NodeRegisteredEvent".into())];
    filters.extend(people.iter().map(|a| EventFilter::Sender(*a)));
    filters.extend((0..3).map(|i| EventFilter::Node(NodeSmallId(i))));
    for filter in &filters {
        history.push(format!("{:?}", ledger.query_events(filter, None, Some(1_000), false)?));
    }
    for person in people {
        history.push(format!("{person:?} {}", ledger.stored_nonce(person)?));
    }
    Ok(Seen { tip, digest: ledger.state_digest(), history })
}

/// Writes the chain the cases damage: transfers and node registrations from three accounts,
/// with the batched indexes written every 4 transactions, so that some are in their tables and
/// some held when it closes.
fn write_chain(path: &Path) -> (Seen, Vec<Address>) {
    // Fixed keys, so that the file — and so each case — is the same on every run.
    let keys = LocalKeys {
        validator: Keypair::test_account(100),
        admin: Keypair::test_account(101),
        faucet: Keypair::test_account(102),
        accounts: (0..3).map(Keypair::test_account).collect(),
    };
    let genesis = keys.genesis(&LocalNetworkOptions::default(), 1_000);
    let people: Vec<Address> = keys.accounts.iter().map(Keypair::address).collect();
    let mut ledger = Ledger::open_or_create(path, OPTIONS, || Ok(genesis)).unwrap();
    ledger.store_mut().set_index_batch(4);
    let mut sequencer = Sequencer::new(keys.validator.clone(), 60_000, 100, 100);
    let chain = ledger.params().chain_id;
    for round in 0..BLOCK_COUNT {
        for (i, key) in keys.accounts.iter().enumerate().take(1 + (round as usize % 3)) {
            let call = if (round + i as u64).is_multiple_of(4) {
                Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 }
            } else {
                Call::TransferToma { recipient: people[(i + 1) % 3], amount: 1 + round }
            };
            let nonce = ledger.next_nonce(&key.address());
            sequencer.admit(key.sign_call(chain, nonce, call).verify(&chain).unwrap(), nonce).unwrap();
        }
        ledger.apply_block(&sequencer.propose(&ledger.tip(), 2_000 + round)).unwrap();
        sequencer.settle(|a| ledger.next_nonce(a));
    }
    let seen = seen(&ledger, &people).unwrap();
    assert_eq!(ledger.snapshot_heights().unwrap(), vec![0, 6, 9]);
    (seen, people)
}

/// How reopening a damaged copy ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Outcome {
    /// Opened, same tip, digest and history, nothing repaired.
    Unaffected,
    /// Opened with the same tip and digest after passing over a snapshot or rebuilding indexes;
    /// what it serves is the original or refused by name.
    Recovered,
    /// Opened with the original state, but a read of damaged history is refused by name.
    ReadRefused,
    /// Refused to open with `ECorruptStore` or `EStorage`.
    Refused,
}

fn reopen(path: &Path, original: &Seen, people: &[Address]) -> Result<Outcome, String> {
    let ledger = match Ledger::open(path, OPTIONS) {
        Ok(ledger) => ledger,
        Err(e) if matches!(e.name(), "ECorruptStore" | "EStorage") => return Ok(Outcome::Refused),
        Err(e) => return Err(format!("refused with {e}, not ECorruptStore or EStorage")),
    };
    let repaired = !ledger.repairs().is_empty();
    if (ledger.tip().height, ledger.state_digest()) != (original.tip, original.digest) {
        return Err(format!("opened at height {} with another state", ledger.tip().height));
    }
    if ledger.metrics().snapshot().storage_repairs != ledger.repairs().len() as u64 {
        return Err("the repairs metric disagrees with the repairs".into());
    }
    match seen(&ledger, people) {
        Ok(now) if now == *original => Ok(if repaired { Outcome::Recovered } else { Outcome::Unaffected }),
        Ok(now) => {
            let diff: Vec<_> =
                now.history.iter().zip(&original.history).filter(|(a, b)| a != b).take(1).collect();
            Err(format!("opened and serves a different history {diff:?}"))
        }
        Err(e) if e.name() == "ECorruptStore" => Ok(Outcome::ReadRefused),
        Err(e) => Err(format!("a read failed with {e}")),
    }
}

/// The damage done to one copy.
fn damage_file(path: &Path, rng: &mut Rng) -> String {
    let mut bytes = std::fs::read(path).unwrap();
    let len = bytes.len() as u64;
    match rng.below(6) {
        0 | 1 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = rng.below(len) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            std::fs::write(path, &bytes).unwrap();
            format!("{flips} bits flipped")
        }
        2 => {
            let page = rng.below(len / 4096) as usize * 4096;
            bytes[page..page + 4096].fill(0);
            std::fs::write(path, &bytes).unwrap();
            format!("page at {page} zeroed")
        }
        3 => {
            let cut = 1 + rng.below(len / 4);
            bytes.truncate((len - cut) as usize);
            std::fs::write(path, &bytes).unwrap();
            format!("last {cut} bytes cut")
        }
        _ => damage_record(path, rng),
    }
}

/// Changes or deletes one entry of one table through redb, as a buggy tool would: the pages
/// are sound, the value is not.
fn damage_record(path: &Path, rng: &mut Rng) -> String {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    let what = match rng.below(10) {
        0 => flip_value(&txn, BLOCKS, rng),
        1 => {
            let mut t = txn.open_table(TRANSACTIONS).unwrap();
            let index = rng.below(t.len().unwrap()) as usize;
            let (key, mut value) = {
                let (k, v) = t.iter().unwrap().nth(index).unwrap().unwrap();
                (*k.value(), v.value().to_vec())
            };
            let at = rng.below(value.len() as u64) as usize;
            value[at] ^= 1 << rng.below(8);
            if rng.below(2) == 0 {
                t.insert(&key, &value[..]).unwrap();
                format!("a byte of transaction record {index} flipped")
            } else {
                t.remove(&key).unwrap();
                format!("transaction record {index} deleted")
            }
        }
        2 => flip_bytes_keyed(&txn, EVENTS, rng, true),
        3 => flip_value(&txn, SNAPSHOTS, rng),
        4 => flip_value(&txn, STATE_DIGESTS, rng),
        5 => flip_bytes_keyed(&txn, EVENTS, rng, false),
        6 => {
            delete_index_entry(&txn, if rng.below(2) == 0 { EVENTS_BY_SENDER } else { EVENTS_BY_OBJECT }, rng)
        }
        7 => delete_index_entry(&txn, EVENTS_BY_TYPE, rng),
        8 => {
            let mut nonces = txn.open_table(NONCES).unwrap();
            let entries: Vec<([u8; 32], u64)> =
                nonces.iter().unwrap().map(|e| e.map(|(k, v)| (*k.value(), v.value())).unwrap()).collect();
            let (address, next) = entries[rng.below(entries.len() as u64) as usize];
            nonces.insert(&address, next + 1 + rng.below(3)).unwrap();
            "a nonce raised".to_string()
        }
        _ => {
            let mut positions = txn.open_table(TX_POSITIONS).unwrap();
            let entries: Vec<([u8; 32], TxPos)> = positions
                .iter()
                .unwrap()
                .map(|e| e.map(|(k, v)| (*k.value(), *v.value())).unwrap())
                .collect();
            let (a, _) = entries[rng.below(entries.len() as u64) as usize];
            let (_, b) = entries[rng.below(entries.len() as u64) as usize];
            positions.insert(&a, &b).unwrap();
            "a transaction digest pointed elsewhere".to_string()
        }
    };
    txn.commit().unwrap();
    what
}

fn flip_value(
    txn: &redb::WriteTransaction,
    table: TableDefinition<u64, &'static [u8]>,
    rng: &mut Rng,
) -> String {
    let mut t = txn.open_table(table).unwrap();
    let index = rng.below(t.len().unwrap()) as usize;
    let (key, mut value) = {
        let (k, v) = t.iter().unwrap().nth(index).unwrap().unwrap();
        (k.value(), v.value().to_vec())
    };
    let at = rng.below(value.len() as u64) as usize;
    value[at] ^= 1 << rng.below(8);
    t.insert(key, &value[..]).unwrap();
    format!("a byte of `{}` at {key} flipped", table.name())
}

/// Flips a byte of an entry's value, or deletes the entry.
fn flip_bytes_keyed(
    txn: &redb::WriteTransaction,
    table: TableDefinition<&'static [u8], &'static [u8]>,
    rng: &mut Rng,
    flip: bool,
) -> String {
    let mut t = txn.open_table(table).unwrap();
    let index = rng.below(t.len().unwrap()) as usize;
    let (key, mut value) = {
        let (k, v) = t.iter().unwrap().nth(index).unwrap().unwrap();
        (k.value().to_vec(), v.value().to_vec())
    };
    if flip {
        let at = rng.below(value.len() as u64) as usize;
        value[at] ^= 1 << rng.below(8);
        t.insert(&key[..], &value[..]).unwrap();
        format!("a byte of entry {index} of `{}` flipped", table.name())
    } else {
        t.remove(&key[..]).unwrap();
        format!("entry {index} of `{}` deleted", table.name())
    }
}

fn delete_index_entry(
    txn: &redb::WriteTransaction,
    table: TableDefinition<&'static [u8], ()>,
    rng: &mut Rng,
) -> String {
    let mut t = txn.open_table(table).unwrap();
    let index = rng.below(t.len().unwrap()) as usize;
    let key = t.iter().unwrap().nth(index).unwrap().unwrap().0.value().to_vec();
    t.remove(&key[..]).unwrap();
    format!("entry {index} of `{}` deleted", table.name())
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

fn copy_to(pristine: &Path, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(pristine, &path).unwrap();
    path
}

#[test]
fn a_damaged_store_reopens_whole_or_is_refused_never_different() {
    let (cases, seed) = (env("ATOMA_FAULT_CASES", DEFAULT_CASES), env("ATOMA_FAULT_SEED", DEFAULT_SEED));
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let mut counts = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for case in 0..cases {
        let mut rng = Rng::seeded(seed ^ case.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let path = copy_to(&pristine, dir.path(), "chain.redb");
        let what = damage_file(&path, &mut rng);
        match reopen(&path, &original, &people) {
            Ok(outcome) => *counts.entry(outcome).or_insert(0u64) += 1,
            Err(e) => failures.push(format!("case {case} ({what}): {e}")),
        }
        std::fs::remove_file(&path).unwrap();
    }
    println!("storage faults, seed {seed}, {cases} cases: {counts:?}");
    assert!(failures.is_empty(), "reproduce with ATOMA_FAULT_SEED={seed}:\n{}", failures.join("\n"));
    if cases >= DEFAULT_CASES {
        for outcome in [Outcome::Unaffected, Outcome::Recovered, Outcome::Refused] {
            assert!(counts.contains_key(&outcome), "no case ended {outcome:?}: {counts:?}");
        }
    }
}

/// Damages one entry through redb.
fn with_table(path: &Path, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn flip_entry(path: &Path, table: TableDefinition<u64, &'static [u8]>, key: u64) {
    with_table(path, |txn| {
        let mut t = txn.open_table(table).unwrap();
        let mut value = t.get(key).unwrap().unwrap().value().to_vec();
        value[3] ^= 0x40;
        t.insert(key, &value[..]).unwrap();
    });
}

#[test]
fn a_damaged_newest_snapshot_is_passed_over_for_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, SNAPSHOTS, 9);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    assert_eq!(ledger.repairs().len(), 1, "{:?}", ledger.repairs());
    assert!(ledger.repairs()[0].contains("snapshot at height 6"), "{:?}", ledger.repairs());
    assert!(ledger.repairs()[0].contains("snapshot at height 9 is damaged"), "{:?}", ledger.repairs());
    assert_eq!(ledger.metrics().snapshot().storage_repairs, 1);
    drop(ledger);
    std::fs::remove_file(&path).unwrap();

    // The state digest recorded beside the newest snapshot: the snapshot is whole, so the
    // record is written again from it, once.
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, STATE_DIGESTS, 9);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    assert!(ledger.repairs()[0].contains("written again"), "{:?}", ledger.repairs());
    drop(ledger);
    assert!(Ledger::open(&path, OPTIONS).unwrap().repairs().is_empty());
    std::fs::remove_file(&path).unwrap();

    // The newest snapshot and the digest recorded beside it, both damaged: the older snapshot
    // and the replay past height 9 give the state, and the record is written again from the
    // replay, once.
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, SNAPSHOTS, 9);
    flip_entry(&path, STATE_DIGESTS, 9);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    let repairs = ledger.repairs().join("\n");
    assert!(repairs.contains("snapshot at height 6"), "{repairs}");
    assert!(repairs.contains("written again from the replay"), "{repairs}");
    drop(ledger);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs().is_empty(), "{:?}", ledger.repairs());
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    drop(ledger);
    std::fs::remove_file(&path).unwrap();

    // Both kept snapshots damaged: back to the genesis one.
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, SNAPSHOTS, 9);
    flip_entry(&path, SNAPSHOTS, 6);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert_eq!((ledger.tip().height, ledger.state_digest()), (original.tip, original.digest));
    assert!(ledger.repairs()[0].contains("snapshot at height 0"), "{:?}", ledger.repairs());
}

#[test]
fn a_damaged_block_that_must_be_replayed_is_refused_naming_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    write_chain(&pristine);
    // Block 10 follows the newest snapshot (9); block 11 is the tip.
    for height in [10, 11] {
        let path = copy_to(&pristine, dir.path(), "chain.redb");
        flip_entry(&path, BLOCKS, height);
        let error = Ledger::open(&path, OPTIONS).err().unwrap();
        let text = error.to_string();
        assert_eq!(error.name(), "ECorruptStore", "{text}");
        assert!(text.contains(&format!("the header of block {height} is damaged")), "{text}");
        assert!(text.contains("--fresh") && text.contains("backup"), "says what to do: {text}");
        std::fs::remove_file(&path).unwrap();
    }
    // A transaction of block 10, and a snapshot damaged too so that block 7 must be replayed.
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    with_table(&path, |txn| {
        let mut t = txn.open_table(TRANSACTIONS).unwrap();
        let mut value = t.get(&tx_pos(10, 0)).unwrap().unwrap().value().to_vec();
        value[40] ^= 1;
        t.insert(&tx_pos(10, 0), &value[..]).unwrap();
    });
    let text = Ledger::open(&path, OPTIONS).err().unwrap().to_string();
    assert!(text.contains("transaction 0 of block 10 is damaged"), "{text}");
    std::fs::remove_file(&path).unwrap();
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, SNAPSHOTS, 9);
    flip_entry(&path, BLOCKS, 7);
    let text = Ledger::open(&path, OPTIONS).err().unwrap().to_string();
    assert!(text.contains("block 7 is damaged") && text.contains("after snapshot 6"), "{text}");
}

/// One change made to a copy through redb.
type Change = dyn Fn(&redb::WriteTransaction);

#[test]
fn damaged_indexes_are_rebuilt_from_the_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let changes: [(&str, Box<Change>); 4] = [
        (
            "a sender entry deleted",
            Box::new(|txn| {
                let mut t = txn.open_table(EVENTS_BY_SENDER).unwrap();
                let key = t.first().unwrap().unwrap().0.value().to_vec();
                t.remove(&key[..]).unwrap();
            }),
        ),
        (
            "a nonce changed",
            Box::new(|txn| {
                let mut t = txn.open_table(NONCES).unwrap();
                let address = *t.first().unwrap().unwrap().0.value();
                t.insert(&address, 77).unwrap();
            }),
        ),
        (
            "a block digest forgotten",
            Box::new(|txn| {
                let mut t = txn.open_table(BLOCK_HEIGHTS).unwrap();
                let digest = *t.first().unwrap().unwrap().0.value();
                t.remove(&digest).unwrap();
            }),
        ),
        (
            "the type index emptied",
            Box::new(|txn| {
                txn.delete_table(EVENTS_BY_TYPE).unwrap();
            }),
        ),
    ];
    for (what, change) in changes {
        let path = copy_to(&pristine, dir.path(), "chain.redb");
        with_table(&path, change);
        let ledger = Ledger::open(&path, OPTIONS).unwrap();
        assert_eq!(seen(&ledger, &people).unwrap(), original, "{what}");
        assert!(
            ledger.repairs().iter().any(|r| r.contains("indexes were rebuilt")),
            "{what}: {:?}",
            ledger.repairs()
        );
        drop(ledger);
        let again = Ledger::open(&path, OPTIONS).unwrap();
        assert!(again.repairs().is_empty(), "{what}: rebuilt once: {:?}", again.repairs());
        assert_eq!(seen(&again, &people).unwrap(), original, "{what}");
        drop(again);
        std::fs::remove_file(&path).unwrap();
    }
}

#[test]
fn an_index_entry_changed_in_place_is_refused_on_read_and_rebuilt_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    // The genesis transaction's digest now leads to block 1's first transaction: same count,
    // so only a read can tell.
    let genesis: [u8; 32] = original_chain_id(&path);
    with_table(&path, |txn| {
        txn.open_table(TX_POSITIONS).unwrap().insert(&genesis, &tx_pos(1, 0)).unwrap();
    });
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs().is_empty());
    let error = ledger.transaction(&Digest(genesis)).unwrap_err();
    assert_eq!(error.name(), "ECorruptStore");
    assert!(error.to_string().contains("the next start rebuilds the indexes"), "{error}");
    // Marked once: asking again writes nothing (no commit, no fsync), and says the same.
    let mut ledger = ledger;
    let writes = ledger.store_mut().write_faults.begun.load(Ordering::SeqCst);
    for _ in 0..3 {
        let again = ledger.transaction(&Digest(genesis)).unwrap_err();
        assert!(again.to_string().contains("the next start rebuilds the indexes"), "{again}");
    }
    assert_eq!(ledger.store_mut().write_faults.begun.load(Ordering::SeqCst), writes);
    drop(ledger);
    let ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs()[0].contains("a read found them damaged"), "{:?}", ledger.repairs());
    assert_eq!(seen(&ledger, &people).unwrap(), original);
}

fn original_chain_id(path: &Path) -> [u8; 32] {
    Ledger::open(path, OPTIONS).unwrap().params().chain_id
}

#[test]
fn a_file_that_is_not_a_store_is_refused_naming_it_and_a_leftover_creation_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    std::fs::write(&path, vec![0u8; 73_728]).unwrap();
    let error = Ledger::open(&path, OPTIONS).err().unwrap();
    assert_eq!(error.name(), "ECorruptStore");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    assert!(error.to_string().contains("is not a chain store"), "{error}");

    // A start killed while creating the store leaves `chain.redb.creating`, never `chain.redb`.
    std::fs::remove_file(&path).unwrap();
    let leftover = dir.path().join("chain.redb.creating");
    std::fs::write(&leftover, vec![0u8; 73_728]).unwrap();
    let keys = LocalKeys::generate(1).unwrap();
    let genesis = keys.genesis(&LocalNetworkOptions::default(), 1_000);
    let ledger = Ledger::open_or_create(&path, OPTIONS, || Ok(genesis)).unwrap();
    assert!(!leftover.exists(), "the leftover is removed");
    assert_eq!(ledger.tip().height, 0);
    drop(ledger);
    assert_eq!(Ledger::open(&path, OPTIONS).unwrap().tip().height, 0);
}

/// Applies `count` more blocks of one transfer each to a chain [`write_chain`] wrote.
fn extend_chain(ledger: &Ledger, count: u64) -> Result<(), ChainError> {
    let mut sequencer = Sequencer::new(Keypair::test_account(100), 60_000, 100, 100);
    let chain = ledger.params().chain_id;
    let sender = Keypair::test_account(0);
    for _ in 0..count {
        let nonce = ledger.next_nonce(&sender.address());
        let call = Call::TransferToma { recipient: Keypair::test_account(1).address(), amount: 1 };
        sequencer.admit(sender.sign_call(chain, nonce, call).verify(&chain).unwrap(), nonce).unwrap();
        ledger.apply_block(&sequencer.propose(&ledger.tip(), ledger.tip().timestamp_ms + 1))?;
        sequencer.settle(|a| ledger.next_nonce(a));
    }
    Ok(())
}

/// Every snapshot kept restores to its own digest.
fn snapshots_whole(ledger: &mut Ledger) -> Vec<u64> {
    let heights = ledger.snapshot_heights().unwrap();
    for height in &heights {
        let snapshot = ledger.store_mut().snapshot_at(*height).unwrap().unwrap();
        snapshot.restore().unwrap();
    }
    heights
}

/// Flips a byte of a stored value through the store an open ledger holds.
fn flip_live(ledger: &mut Ledger, table: TableDefinition<u64, &'static [u8]>, key: u64) {
    let txn = ledger.store_mut().db.begin_write().unwrap();
    {
        let mut t = txn.open_table(table).unwrap();
        let mut value = t.get(key).unwrap().unwrap().value().to_vec();
        value[3] ^= 0x40;
        t.insert(key, &value[..]).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn a_damaged_snapshot_is_deleted_once_and_never_outlives_a_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    flip_entry(&path, SNAPSHOTS, 9);
    let mut ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs()[0].contains("snapshot at height 9 was deleted"), "{:?}", ledger.repairs());
    assert_eq!(snapshots_whole(&mut ledger), vec![0, 6]);
    drop(ledger);
    // Repaired once: the next start finds nothing to repair.
    let mut ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs().is_empty(), "{:?}", ledger.repairs());
    assert_eq!(ledger.metrics().snapshot().storage_repairs, 0);
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    extend_chain(&ledger, 4).unwrap();
    assert_eq!(snapshots_whole(&mut ledger), vec![0, 12, 15]);
    drop(ledger);
    std::fs::remove_file(&path).unwrap();

    // Damaged while the node runs: pruning keeps the older whole snapshot, not the damaged one.
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    let mut ledger = Ledger::open(&path, OPTIONS).unwrap();
    flip_live(&mut ledger, SNAPSHOTS, 9);
    extend_chain(&ledger, 1).unwrap();
    assert_eq!(snapshots_whole(&mut ledger), vec![0, 6, 12]);
    drop(ledger);
    assert!(Ledger::open(&path, OPTIONS).unwrap().repairs().is_empty());
}

#[test]
fn a_failed_commit_whose_recovery_finds_the_indexes_damaged_stops_the_chain_until_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    let (original, people) = write_chain(&pristine);
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    let mut ledger = Ledger::open(&path, OPTIONS).unwrap();
    // The height the batched indexes are written up to: without it the held entries cannot be
    // gathered again.
    let txn = ledger.store_mut().db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        let mut value = meta.get(META_INDEXED).unwrap().unwrap().value().to_vec();
        value[0] ^= 1;
        meta.insert(META_INDEXED, &value[..]).unwrap();
    }
    txn.commit().unwrap();
    ledger.store_mut().write_faults.fail.store(1, Ordering::SeqCst);
    let error = extend_chain(&ledger, 1).unwrap_err();
    assert_eq!(error.name(), "EStorage", "{error}");
    assert!(error.to_string().contains("the chain stopped: restart it to rebuild them"), "{error}");
    assert_eq!((ledger.tip().height, ledger.state_digest()), (original.tip, original.digest));
    assert_eq!(extend_chain(&ledger, 1).unwrap_err().refusal(), LedgerError::EChainStopped);
    let marked =
        ledger.store_mut().db.begin_read().unwrap().open_table(META).unwrap().get(META_REBUILD).unwrap();
    assert!(marked.is_some(), "the indexes are marked for a rebuild");
    drop(ledger);
    let mut ledger = Ledger::open(&path, OPTIONS).unwrap();
    assert!(ledger.repairs()[0].contains("indexes were rebuilt"), "{:?}", ledger.repairs());
    assert_eq!(seen(&ledger, &people).unwrap(), original);
    extend_chain(&ledger, 1).unwrap();
    assert_eq!(snapshots_whole(&mut ledger), vec![0, 9, 12]);
}

#[test]
fn an_index_rebuild_that_fails_for_want_of_storage_is_not_called_damage() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    write_chain(&pristine);
    let nonces = Ledger::open(&pristine, OPTIONS).unwrap().with_chain_state(|s| s.ledger.nonces.clone());
    let store = Store::open(&pristine).unwrap();
    store.write_faults.fail.store(1, Ordering::SeqCst);
    let error = crate::ledger::rebuild_indexes(&store, &nonces, "a test").unwrap_err();
    assert_eq!(error.name(), "EStorage", "{error}");
    assert!(!error.to_string().contains("--fresh"), "{error}");
    // Damage is still called damage.
    let wrong = std::collections::BTreeMap::from([(Address([9; 32]), 1)]);
    let error = crate::ledger::rebuild_indexes(&store, &wrong, "a test").unwrap_err();
    assert_eq!(error.name(), "ECorruptStore", "{error}");
    assert!(
        error.to_string().contains("cannot be rebuilt") && error.to_string().contains("--fresh"),
        "{error}"
    );
}

#[test]
fn a_store_another_ledger_has_open_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine.redb");
    write_chain(&pristine);
    let path = copy_to(&pristine, dir.path(), "chain.redb");
    let first = Ledger::open(&path, OPTIONS).unwrap();
    // What the first opener would be writing if it were creating the store.
    let creating = dir.path().join("chain.redb.creating");
    std::fs::write(&creating, b"being written").unwrap();
    let error = Ledger::open_or_create(&path, OPTIONS, || panic!("no genesis is made")).err().unwrap();
    assert_eq!(error.name(), "EDataDirInUse", "{error}");
    assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
    assert!(error.to_string().contains("another `atoma` process"), "{error}");
    assert_eq!(std::fs::read(&creating).unwrap(), b"being written", "left alone");
    assert_eq!(Ledger::open(&path, OPTIONS).err().map(|e| e.name()), Some("EDataDirInUse"));
    drop(first);
    let again = Ledger::open(&path, OPTIONS).unwrap();
    assert!(!creating.exists(), "a leftover is removed once nobody holds the store");
    assert_eq!(again.tip().height, BLOCK_COUNT);
}
