//! The ordering side: the mempool bound, timed blocks, and the ledger driven by hand without a
//! runtime or a producer thread (what a consensus engine will do).

mod common;

use std::time::Duration;

use atoma_contract::{Address, Call};
use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};
use atoma_ledger::{ApplyOutcome, Ledger, LedgerOptions, Sequencer};
use atoma_types::{Block, BlockHeader, SignedTransaction, SkipReason, TxStatus};
use common::{chain_id, config, keys, start, stop};

fn transfer() -> Call {
    Call::TransferToma { recipient: Address([3; 32]), amount: 1 }
}

#[tokio::test]
async fn a_full_mempool_says_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.mempool_capacity = 2;
    config.block_time_ms = Some(3_600_000);
    let (handle, task) = start(config);
    let key = keys(dir.path()).accounts[0].clone();
    let chain = chain_id(&handle);
    let waiting: Vec<_> = (0..2)
        .map(|nonce| {
            let handle = handle.clone();
            let signed = key.sign_call(chain, nonce, transfer());
            tokio::spawn(async move { handle.submit(signed).await })
        })
        .collect();
    for _ in 0..200 {
        if handle.ledger().metrics().snapshot().mempool_size == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(handle.ledger().metrics().snapshot().mempool_size, 2);
    assert_eq!(handle.next_nonce(&key.address()), 2, "nonces count the mempool");
    let busy = handle.submit(key.sign_call(chain, 2, transfer())).await;
    assert_eq!(busy.map_err(|e| e.name()).err(), Some("EMempoolFull"));
    assert!(atoma_ledger::LedgerError::EMempoolFull.is_retryable());
    stop(handle, task);
    for waiter in waiting {
        assert_eq!(waiter.await.unwrap().map_err(|e| e.name()).err(), Some("EChainStopped"));
    }
}

#[tokio::test]
async fn a_block_time_makes_blocks_without_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.block_time_ms = Some(10);
    let (handle, task) = start(config);
    for _ in 0..400 {
        if handle.node().chain_info().height >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(handle.node().chain_info().height >= 3);
    let key = keys(dir.path()).accounts[0].clone();
    let outcome = handle.submit(key.sign_call(chain_id(&handle), 0, transfer())).await.unwrap();
    assert!(outcome.status.is_success());
    stop(handle, task);
}

/// A ledger and a sequencer, with no chain thread and no async runtime.
fn ledger_by_hand(dir: &std::path::Path) -> (Ledger, Sequencer, LocalKeys) {
    let keys = LocalKeys::generate(2).unwrap();
    let options = LocalNetworkOptions::default();
    let genesis = keys.genesis(&options, 1_000_000);
    let ledger =
        Ledger::open_or_create(&dir.join("chain.redb"), LedgerOptions::default(), || Ok(genesis)).unwrap();
    let sequencer = Sequencer::new(keys.validator.clone(), options.epoch_duration_ms, 100, 100);
    (ledger, sequencer, keys)
}

fn propose(ledger: &Ledger, sequencer: &mut Sequencer, txs: Vec<SignedTransaction>, now_ms: u64) -> Block {
    for signed in txs {
        let tx = signed.verify(&ledger.params().chain_id).unwrap();
        sequencer.admit(tx.clone(), ledger.next_nonce(&tx.sender())).unwrap();
    }
    sequencer.propose(&ledger.tip(), now_ms)
}

#[test]
fn invalid_blocks_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, mut sequencer, keys) = ledger_by_hand(dir.path());
    let chain = ledger.params().chain_id;
    let user = &keys.accounts[0];
    let block = propose(&ledger, &mut sequencer, vec![user.sign_call(chain, 0, transfer())], 1_000_100);
    let digest = ledger.state_digest();
    let refuse = |mutate: &dyn Fn(&mut Block)| {
        let mut bad = block.clone();
        mutate(&mut bad);
        assert_eq!(ledger.apply_block(&bad).map_err(|e| e.name()), Err("EInvalidBlock"), "{bad:?}");
        assert_eq!(ledger.state_digest(), digest);
    };
    refuse(&|b| b.header.parent_digest.0[0] ^= 1);
    refuse(&|b| b.header.timestamp_ms = 999_999);
    refuse(&|b| b.header.epoch = 2);
    refuse(&|b| b.header.tx_digests.clear());
    refuse(&|b| b.transactions[0] = user.sign_call(chain, 1, transfer()));
    refuse(&|b| b.transactions[0].signature[3] ^= 1);
    let mut late = block.clone();
    late.header.timestamp_ms = 1_000_000 + 60_000;
    assert_eq!(
        ledger.apply_block(&late).map_err(|e| e.name()),
        Err("EInvalidBlock"),
        "time passed the epoch's end"
    );
    let ApplyOutcome::Applied(effects) = ledger.apply_block(&block).unwrap() else { panic!("not applied") };
    assert!(effects.outcomes[0].status.is_success());
    assert_eq!(ledger.apply_block(&block).unwrap(), ApplyOutcome::AlreadyApplied);
    assert_eq!(ledger.next_nonce(&user.address()), 1);
    assert_eq!(ledger.state_digest(), ledger.replay_from_genesis().unwrap());
}

/// The next block after the tip holding exactly `transactions`, as a consensus engine might
/// finalize it.
fn block_of(ledger: &Ledger, transactions: Vec<SignedTransaction>, timestamp_ms: u64) -> Block {
    let tip = ledger.tip();
    let header = BlockHeader {
        height: tip.height + 1,
        parent_digest: tip.digest,
        timestamp_ms,
        epoch: tip.epoch,
        random_seed: [7; 32],
        tx_digests: transactions.iter().map(SignedTransaction::digest).collect(),
    };
    Block { header, transactions }
}

#[test]
fn a_finalized_block_applies_whatever_nonces_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let (ledger, _, keys) = ledger_by_hand(dir.path());
    let chain = ledger.params().chain_id;
    let (user, other) = (&keys.accounts[0], &keys.accounts[1]);
    let first = user.sign_call(chain, 0, transfer());
    ledger.apply_block(&block_of(&ledger, vec![first.clone()], 1_000_100)).unwrap();
    let before = ledger.with_state(|db| db.balance(&user.address()));
    // The same transaction again, one whose nonce is ahead, and one that follows: the block
    // applies, the first two are skipped and change nothing, the third runs.
    let ahead = other.sign_call(chain, 5, transfer());
    let next = user.sign_call(chain, 1, transfer());
    let block = block_of(&ledger, vec![first.clone(), ahead.clone(), next.clone()], 1_000_200);
    let ApplyOutcome::Applied(effects) = ledger.apply_block(&block).unwrap() else { panic!("not applied") };
    let statuses: Vec<TxStatus> = effects.outcomes.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            TxStatus::Skipped(SkipReason::NonceUsed),
            TxStatus::Skipped(SkipReason::NonceFuture),
            TxStatus::Success
        ]
    );
    assert!(effects.outcomes[..2].iter().all(|o| o.events.is_empty()));
    assert_eq!((ledger.next_nonce(&user.address()), ledger.next_nonce(&other.address())), (2, 0));
    assert_eq!(ledger.with_state(|db| db.balance(&user.address())), before - 1, "only the third ran");
    // A lookup by digest finds the executed transaction, not its skipped repeat; the skipped
    // ones stay in their block.
    let found = ledger.transaction(&first.digest()).unwrap().expect("stored");
    assert_eq!((found.outcome.height, found.outcome.status), (1, TxStatus::Success));
    assert!(ledger.transaction(&ahead.digest()).unwrap().is_none());
    assert_eq!(ledger.block(2).unwrap().expect("stored").transactions, block.transactions);
    let digest = ledger.state_digest();
    assert_eq!(ledger.replay_from_genesis().unwrap(), digest);
    // Reopened, the store is whole: the skipped records are accounted for, nothing to repair.
    drop(ledger);
    let reopened = Ledger::open(&path, LedgerOptions::default()).unwrap();
    assert!(reopened.repairs().is_empty(), "{:?}", reopened.repairs());
    assert_eq!(reopened.state_digest(), digest);
    assert_eq!(reopened.next_nonce(&user.address()), 2);
}

#[test]
fn two_ledgers_fed_the_same_blocks_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, mut sequencer, keys) = ledger_by_hand(dir.path());
    let chain = ledger.params().chain_id;
    let genesis = ledger.genesis().clone();
    let replica_dir = tempfile::tempdir().unwrap();
    let replica =
        Ledger::open_or_create(&replica_dir.path().join("chain.redb"), LedgerOptions::default(), || {
            Ok(genesis)
        })
        .unwrap();
    for (i, now) in [1_000_010u64, 1_070_000, 1_070_001].into_iter().enumerate() {
        let txs = keys.accounts.iter().map(|k| k.sign_call(chain, i as u64, transfer())).collect();
        let block = propose(&ledger, &mut sequencer, txs, now);
        ledger.apply_block(&block).unwrap();
        // At least once: the replica sees every block twice.
        replica.apply_block(&block).unwrap();
        assert_eq!(replica.apply_block(&block).unwrap(), ApplyOutcome::AlreadyApplied);
        sequencer.settle(|a| ledger.next_nonce(a));
    }
    assert_eq!(replica.state_digest(), ledger.state_digest());
    assert_eq!(ledger.tip().epoch, 1);
    let page = replica.query_events(&atoma_types::EventFilter::All, None, None, false).unwrap();
    assert_eq!(page, ledger.query_events(&atoma_types::EventFilter::All, None, None, false).unwrap());
}

#[tokio::test]
async fn enqueued_nonces_pipeline_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let key = keys(dir.path()).accounts[0].clone();
    let chain = chain_id(&handle);
    let pending: Vec<_> =
        (0..5).map(|nonce| handle.enqueue(key.sign_call(chain, nonce, transfer())).unwrap()).collect();
    let mut last = (0, 0);
    for p in pending {
        let digest = p.digest();
        let outcome = p.outcome().await.unwrap();
        assert!(outcome.status.is_success());
        assert_eq!(outcome.digest, digest);
        assert!((outcome.height, outcome.index) > last, "executed in enqueue order");
        last = (outcome.height, outcome.index);
    }
    assert_eq!(handle.next_nonce(&key.address()), 5);
    assert_eq!(handle.ledger().next_nonce(&key.address()), 5);
    stop(handle, task);
}

#[test]
fn handles_and_futures_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<atoma_ledger::ChainHandle>();
    send_sync::<Ledger>();
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let signed = keys(dir.path()).accounts[0].sign_call(chain_id(&handle), 0, transfer());
    send(&handle.submit(signed));
    send(&handle.advance_epoch());
    send(&handle.faucet(Address([1; 32]), 1));
    stop(handle, task);
}
