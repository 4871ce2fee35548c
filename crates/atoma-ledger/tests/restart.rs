//! Closing and reopening a data directory: the same chain, recovered from a snapshot plus replay.

mod common;

use atoma_contract::{Address, Call, TOMA};
use atoma_ledger::chain::CHAIN_DB_FILE;
use atoma_ledger::{ApplyOutcome, ChainHandle};
use atoma_types::{Digest, EventFilter, EventId, EventRecord, TxOutcome};
use common::{config, keys, ok, start, stop};

/// Everything a restart must keep.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    chain_id: Digest,
    height: u64,
    epoch: u64,
    state_digest: Digest,
    balances: Vec<u64>,
    nonces: Vec<u64>,
    events: Vec<EventRecord>,
    page_after_cursor: Vec<EventRecord>,
    transaction: TxOutcome,
}

fn seen(handle: &ChainHandle, people: &[Address], cursor: EventId, tx: &Digest) -> Seen {
    let info = handle.node().chain_info();
    Seen {
        chain_id: info.chain_id,
        height: info.height,
        epoch: info.epoch,
        state_digest: handle.ledger().state_digest(),
        balances: people.iter().map(|a| handle.ledger().with_state(|db| db.balance(a))).collect(),
        nonces: people.iter().map(|a| handle.next_nonce(a)).collect(),
        events: handle.ledger().query_events(&EventFilter::All, None, None, false).unwrap().data,
        page_after_cursor: handle
            .ledger()
            .query_events(&EventFilter::All, Some(cursor), Some(2), false)
            .unwrap()
            .data,
        transaction: handle.ledger().transaction(tx).unwrap().unwrap().outcome,
    }
}

#[tokio::test]
async fn a_restart_recovers_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let keys = keys(dir.path());
    let people: Vec<Address> = keys.accounts.iter().map(|k| k.address()).collect();
    let mut last = None;
    for (i, key) in keys.accounts.iter().enumerate() {
        let to = people[(i + 1) % people.len()];
        last = Some(ok(&handle, key, Call::TransferToma { recipient: to, amount: TOMA }).await);
    }
    handle.advance_clock(61_000).await.unwrap();
    ok(&handle, &keys.accounts[0], Call::TransferToma { recipient: people[2], amount: 7 }).await;
    let tx = last.unwrap().digest;
    let cursor =
        handle.ledger().query_events(&EventFilter::All, None, Some(2), false).unwrap().next_cursor.unwrap();
    let before = seen(&handle, &people, cursor, &tx);
    assert_eq!(before.height, 5, "3 transfers, a clock block and a transfer");
    assert_eq!(before.epoch, 1);
    let snapshots = handle.ledger().snapshot_heights().unwrap();
    assert_eq!(snapshots, vec![0, 2, 4], "genesis plus the newest two; height 5 must be replayed");
    stop(handle, task);

    let (handle, task) = start(config(dir.path()));
    assert_eq!(seen(&handle, &people, cursor, &tx), before);
    assert_eq!(handle.ledger().replay_from_genesis().unwrap(), before.state_digest);
    for (i, address) in people.iter().enumerate() {
        assert_eq!(handle.ledger().stored_nonce(address).unwrap(), before.nonces[i]);
    }
    check_apply_is_idempotent(&handle);
    let again = ok(&handle, &keys.accounts[0], Call::TransferToma { recipient: people[1], amount: 1 }).await;
    assert_eq!(again.height, before.height + 1);
    assert!(again.timestamp_ms >= before.transaction.timestamp_ms, "time never goes back");
    assert_eq!(
        handle.ledger().transaction(&again.digest).unwrap().unwrap().transaction.unwrap().nonce,
        before.nonces[0]
    );
    assert!(handle.ledger().with_state(|db| db.audit().holds()));
    stop(handle, task);
}

fn check_apply_is_idempotent(handle: &ChainHandle) {
    let ledger = handle.ledger();
    let digest = ledger.state_digest();
    let tip = ledger.tip().height;
    for height in [0, 1, tip] {
        let block = ledger.block(height).unwrap().unwrap();
        assert_eq!(ledger.apply_block(&block).unwrap(), ApplyOutcome::AlreadyApplied);
    }
    let mut conflicting = ledger.block(tip).unwrap().unwrap();
    conflicting.header.timestamp_ms += 1;
    assert_eq!(ledger.apply_block(&conflicting).map_err(|e| e.name()), Err("EInvalidBlock"));
    let mut gap = ledger.block(tip).unwrap().unwrap();
    gap.header.height = tip + 2;
    assert_eq!(ledger.apply_block(&gap).map_err(|e| e.name()), Err("EInvalidBlock"));
    assert_eq!(ledger.state_digest(), digest);
    assert_eq!(ledger.tip().height, tip);
}

#[tokio::test]
async fn fresh_starts_a_new_chain_with_the_same_test_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let first = handle.node().chain_info().chain_id;
    let account = keys(dir.path()).accounts[0].address();
    ok(&handle, &keys(dir.path()).accounts[0], Call::TransferToma { recipient: Address([1; 32]), amount: 1 })
        .await;
    std::fs::write(dir.path().join("keep.txt"), "user data").unwrap();
    stop(handle, task);

    let mut fresh = config(dir.path());
    fresh.fresh = true;
    let (handle, task) = start(fresh);
    let info = handle.node().chain_info();
    assert_ne!(info.chain_id, first);
    assert_eq!(info.height, 0);
    assert_eq!(handle.next_nonce(&account), 0);
    assert_eq!(keys(dir.path()).accounts[0].address(), account, "test accounts come from a fixed seed");
    assert!(dir.path().join("keep.txt").exists());
    assert!(dir.path().join(CHAIN_DB_FILE).exists());
    stop(handle, task);
}

/// `Chain::wait_until_released` waits for the last handle, not for `shutdown` and `join`.
#[test]
fn the_data_directory_is_released_with_the_last_handle() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let kept = handle.clone();
    stop(handle, task);
    let short = std::time::Duration::from_millis(30);
    let held = atoma_ledger::Chain::wait_until_released(dir.path(), short).unwrap_err();
    assert_eq!(held.name(), "EDataDirInUse", "a handle still holds the ledger");
    drop(kept);
    atoma_ledger::Chain::wait_until_released(dir.path(), short).unwrap();
    let (handle, task) = start(config(dir.path()));
    stop(handle, task);
}
