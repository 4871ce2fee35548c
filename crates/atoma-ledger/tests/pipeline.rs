//! The fast paths keep the guarantees: batched signature checks refuse a bad block whole and
//! answer like single checks, pipelined load is acknowledged only after commit, and a restart
//! after pipelined load keeps every acknowledged transaction.

mod common;

use std::collections::BTreeMap;

use atoma_contract::{Address, Call};
use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};
use atoma_ledger::{ChainConfig, ChainHandle, Ledger, LedgerOptions, PendingTransaction, Sequencer};
use atoma_types::{Digest, EventFilter, Keypair, SignedTransaction, TxOutcome};
use common::{chain_id, start, stop};

fn transfer(to: Address) -> Call {
    Call::TransferToma { recipient: to, amount: 1 }
}

/// A local network with `senders` test accounts, where blocks are made as fast as they fill.
fn config(dir: &std::path::Path, senders: u64) -> ChainConfig {
    let mut config = ChainConfig::local(dir);
    config.genesis.accounts = senders;
    config.mempool_capacity = 20_000;
    config
}

/// `rounds` transfers from each of `keys`, round-robin, nonces from `first`.
fn round_robin(chain: [u8; 32], keys: &[Keypair], first: u64, rounds: u64) -> Vec<SignedTransaction> {
    (0..rounds)
        .flat_map(|r| keys.iter().enumerate().map(move |(i, k)| (i, k, r)))
        .map(|(i, key, r)| key.sign_call(chain, first + r, transfer(keys[(i + 1) % keys.len()].address())))
        .collect()
}

#[test]
fn a_bad_signature_among_500_good_ones_refuses_the_block_whole() {
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeys::generate(100).unwrap();
    let genesis = keys.genesis(&LocalNetworkOptions::default(), 1_000_000);
    let ledger =
        Ledger::open_or_create(&dir.path().join("chain.redb"), LedgerOptions::default(), || Ok(genesis))
            .unwrap();
    let chain = ledger.params().chain_id;
    let mut sequencer = Sequencer::new(keys.validator.clone(), 60_000, 1_000, 1_000);
    let txs = round_robin(chain, &keys.accounts, 0, 5);
    for signed in &txs {
        let tx = signed.clone().verify(&chain).unwrap();
        sequencer.admit(tx, 0).unwrap();
    }
    let block = sequencer.propose(&ledger.tip(), 1_000_100);
    assert_eq!(block.transactions.len(), 500);
    let before = (ledger.state_digest(), ledger.tip());

    // A well-formed signature by the right key, over another transaction: every check but the
    // equation passes, so only the batch (and then the search for the culprit) can catch it.
    let culprit = 317;
    let other = &txs[(culprit + 100) % txs.len()];
    let mut bad = block.clone();
    assert_eq!(bad.transactions[culprit].signature[65..], other.signature[65..], "the same sender");
    bad.transactions[culprit].signature = other.signature.clone();
    bad.header.tx_digests[culprit] = bad.transactions[culprit].digest();
    let refused = ledger.apply_block(&bad).unwrap_err();
    assert_eq!(refused.name(), "EInvalidBlock");
    let message = refused.to_string();
    assert!(message.contains("transaction 317") && message.contains("EBadSignature"), "{message}");
    assert_eq!((ledger.state_digest(), ledger.tip()), before, "nothing changed");

    let applied = ledger.apply_block(&block).unwrap();
    assert!(matches!(applied, atoma_ledger::ApplyOutcome::Applied(ref e) if e.outcomes.len() == 500));
    assert_eq!(ledger.next_nonce(&keys.accounts[0].address()), 5);
}

#[test]
fn enqueue_batch_answers_like_enqueue_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path(), 3));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let forged = Keypair::test_account(1).sign_message(b"not this transaction");
    let mut forgery = key.sign_call(chain, 1, transfer(Address([5; 32])));
    forgery.signature[1..65].copy_from_slice(&forged);
    let batch = vec![
        key.sign_call(chain, 0, transfer(Address([1; 32]))),
        forgery,
        key.sign_call(chain, 1, transfer(Address([2; 32]))),
        key.sign_call(chain, 1, transfer(Address([3; 32]))),
        key.sign_call(chain, 5, transfer(Address([4; 32]))),
        key.sign_call([0; 32], 2, transfer(Address([4; 32]))),
    ];
    let answers: Vec<Result<PendingTransaction, &str>> =
        handle.enqueue_batch(batch).into_iter().map(|r| r.map_err(|e| e.name())).collect();
    let names: Vec<&str> = answers.iter().map(|a| a.as_ref().map_or_else(|e| *e, |_| "Ok")).collect();
    assert_eq!(
        names,
        ["Ok", "EBadSignature", "Ok", "ENonceUsed", "ENonceFuture", "EWrongChainId"],
        "the forgery did not take nonce 1"
    );
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for pending in answers.into_iter().flatten() {
        assert!(runtime.block_on(pending.outcome()).unwrap().status.is_success());
    }
    assert_eq!(handle.next_nonce(&key.address()), 2);
    stop(handle, task);
}

#[tokio::test]
async fn submissions_are_admitted_in_the_order_they_were_polled_and_forgeries_take_no_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path(), 3));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let mut forgery = key.sign_call(chain, 0, transfer(Address([9; 32])));
    forgery.signature[40] ^= 1;
    assert_eq!(handle.submit(forgery).await.map_err(|e| e.name()).err(), Some("EBadSignature"));
    let (a, b, c) = tokio::join!(
        handle.submit(key.sign_call(chain, 0, transfer(Address([1; 32])))),
        handle.submit(key.sign_call(chain, 1, transfer(Address([2; 32])))),
        handle.submit(key.sign_call(chain, 2, transfer(Address([3; 32])))),
    );
    let positions: Vec<(u64, u64)> =
        [a, b, c].into_iter().map(|o| o.unwrap()).map(|o| (o.height, o.index)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(handle.ledger().metrics().snapshot().transactions_rejected, 1);
    stop(handle, task);
}

/// Enqueues `txs` in chunks of 250 and returns every pending transaction.
fn enqueue_all(handle: &ChainHandle, txs: Vec<SignedTransaction>) -> Vec<PendingTransaction> {
    txs.chunks(250).flat_map(|chunk| handle.enqueue_batch(chunk.to_vec())).map(|r| r.unwrap()).collect()
}

#[tokio::test]
async fn pipelined_load_is_acknowledged_only_after_its_block_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path(), 200));
    let keys: Vec<Keypair> = (0..200).map(Keypair::test_account).collect();
    let pending = enqueue_all(&handle, round_robin(chain_id(&handle), &keys, 0, 10));
    // A single submission in the middle of the load, through the verifier thread.
    let extra = Keypair::test_account(0).sign_call(chain_id(&handle), 10, transfer(Address([1; 32])));
    let extra = tokio::spawn({
        let handle = handle.clone();
        async move { handle.submit(extra).await }
    });
    let mut heights = Vec::new();
    for p in pending {
        let digest = p.digest();
        let outcome = p.outcome().await.unwrap();
        // Acknowledged, so already in the store and under the durable tip.
        let stored =
            handle.ledger().transaction(&digest).unwrap().expect("an acknowledged transaction is stored");
        assert_eq!(stored.outcome, outcome);
        assert!(handle.ledger().tip().height >= outcome.height);
        heights.push(outcome.height);
    }
    assert!(extra.await.unwrap().unwrap().status.is_success());
    heights.dedup();
    assert!(
        heights.len() < 2_000 / 10,
        "blocks grew under load: {} blocks for 2,000 transactions",
        heights.len()
    );
    stop(handle, task);
}

#[tokio::test]
async fn a_restart_after_pipelined_load_keeps_every_acknowledged_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path(), 100));
    let keys: Vec<Keypair> = (0..100).map(Keypair::test_account).collect();
    let pending = enqueue_all(&handle, round_robin(chain_id(&handle), &keys, 0, 20));
    let mut acknowledged: BTreeMap<Digest, TxOutcome> = BTreeMap::new();
    let mut rest = Vec::new();
    for (i, p) in pending.into_iter().enumerate() {
        if i < 1_200 {
            let digest = p.digest();
            acknowledged.insert(digest, p.outcome().await.unwrap());
        } else {
            rest.push(p);
        }
    }
    // Stop under load: the remaining transactions are either committed or refused.
    handle.shutdown();
    for p in rest {
        let digest = p.digest();
        if let Ok(outcome) = p.outcome().await {
            acknowledged.insert(digest, outcome);
        }
    }
    drop(handle);
    task.join().unwrap();

    let (handle, task) = start(config(dir.path(), 100));
    for (digest, outcome) in &acknowledged {
        assert_eq!(&handle.ledger().transaction(digest).unwrap().expect("kept").outcome, outcome);
    }
    let mut per_sender: BTreeMap<Address, u64> = BTreeMap::new();
    for outcome in acknowledged.values() {
        *per_sender.entry(outcome.sender).or_default() += 1;
    }
    for key in &keys {
        let sent = per_sender.get(&key.address()).copied().unwrap_or(0);
        assert_eq!(handle.next_nonce(&key.address()), sent, "no transaction beyond the acknowledged ones");
        let events = handle
            .ledger()
            .query_events(&EventFilter::Sender(key.address()), None, Some(1_000), false)
            .unwrap();
        assert_eq!(events.data.len() as u64, sent, "one transfer event each, found through the sender index");
    }
    assert_eq!(handle.ledger().replay_from_genesis().unwrap(), handle.ledger().state_digest());
    stop(handle, task);
}

/// Holds the state's read lock on a thread of its own until dropped. The producer applies a block
/// under the write lock, so once it has taken a transaction out of the mempool it waits here.
struct Stall {
    release: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stall {
    fn new(handle: &ChainHandle) -> Self {
        let (holding, held) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let handle = handle.clone();
        let thread = std::thread::spawn(move || {
            handle.ledger().with_state(|_| {
                holding.send(()).unwrap();
                let _ = released.recv();
            });
        });
        held.recv().unwrap();
        Stall { release: Some(release), thread: Some(thread) }
    }

    /// Makes the producer take `signed` into a block and wait for the state's lock.
    async fn block_on(handle: &ChainHandle, signed: SignedTransaction) -> (Self, PendingTransaction) {
        let stall = Stall::new(handle);
        let pending = handle.enqueue(signed).unwrap();
        until(handle, "the producer takes the transaction", |h| {
            h.ledger().metrics().snapshot().mempool_size == 0
        })
        .await;
        (stall, pending)
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// Waits until `condition` holds; a test that waits 30 s for it has failed.
async fn until(handle: &ChainHandle, what: &str, condition: impl Fn(&ChainHandle) -> bool) {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition(handle) {
        assert!(std::time::Instant::now() < give_up, "waited 30 s for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Polls a future once, with a waker that does nothing; it can be awaited afterwards.
fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut context)
}

#[tokio::test]
async fn time_controls_are_served_however_many_admissions_woke_the_producer() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path(), 3));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let epoch = handle.node().chain_info().epoch;
    let (stall, first) = Stall::block_on(&handle, key.sign_call(chain, 0, transfer(Address([1; 32])))).await;
    // Twice as many admissions, each waking the producer, as the old shared queue had places.
    let pending: Vec<PendingTransaction> = (1..=2_048)
        .map(|nonce| handle.enqueue(key.sign_call(chain, nonce, transfer(Address([2; 32])))).unwrap())
        .collect();
    let mut controls: Vec<_> = (0..atoma_ledger::chain::CONTROL_QUEUE)
        .map(|i| {
            let handle = handle.clone();
            let control: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = if i % 2 == 0 {
                Box::pin(async move { handle.advance_epoch().await })
            } else {
                Box::pin(async move { handle.advance_clock(1).await })
            };
            control
        })
        .collect();
    for control in &mut controls {
        assert!(poll_once(control).is_pending(), "a control was answered while the producer is busy");
    }
    // Only as many controls as the control queue holds are refused as busy.
    let mut one_more = Box::pin(handle.advance_epoch());
    assert_eq!(
        poll_once(&mut one_more).map(|r| r.map_err(|e| e.name())),
        std::task::Poll::Ready(Err("EMempoolFull"))
    );
    drop((one_more, stall));
    let mut heights = Vec::new();
    for control in controls {
        heights.push(control.await.unwrap().height);
    }
    assert!(heights.windows(2).all(|w| w[0] < w[1]), "one block each, in order: {heights:?}");
    let advanced = atoma_ledger::chain::CONTROL_QUEUE as u64 / 2;
    assert!(handle.node().chain_info().epoch >= epoch + advanced, "every advance_epoch started an epoch");
    assert!(first.outcome().await.unwrap().status.is_success());
    for p in pending {
        assert!(p.outcome().await.unwrap().status.is_success());
    }
    stop(handle, task);
}

/// A local network whose submissions with a nonce ahead are held for `hold_ms`.
fn holding(dir: &std::path::Path, hold_ms: u64) -> ChainConfig {
    let mut config = config(dir, 4);
    config.nonce_hold_ms = hold_ms;
    config
}

type Submitted = tokio::task::JoinHandle<Result<TxOutcome, atoma_ledger::LedgerError>>;

fn submit_in_background(handle: &ChainHandle, signed: SignedTransaction) -> Submitted {
    let handle = handle.clone();
    tokio::spawn(async move { handle.submit(signed).await })
}

#[tokio::test]
async fn nonces_that_arrive_out_of_order_are_admitted_in_nonce_order() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(holding(dir.path(), atoma_ledger::chain::MAX_NONCE_HOLD_MS));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let sign = |nonce: u64| key.sign_call(chain, nonce, transfer(Address([nonce as u8; 32])));
    let third = submit_in_background(&handle, sign(3));
    until(&handle, "nonce 3 is held", |h| h.ledger().metrics().snapshot().mempool_size == 1).await;
    let second = submit_in_background(&handle, sign(2));
    until(&handle, "nonce 2 is held", |h| h.ledger().metrics().snapshot().mempool_size == 2).await;
    // A forgery of the missing nonce is refused and releases nothing.
    let mut forgery = key.sign_call(chain, 0, transfer(Address([9; 32])));
    forgery.signature[20] ^= 1;
    assert_eq!(handle.submit(forgery).await.map_err(|e| e.name()).err(), Some("EBadSignature"));
    assert_eq!(
        (handle.next_nonce(&key.address()), handle.ledger().metrics().snapshot().mempool_size),
        (0, 2)
    );
    let first = handle.submit(sign(0));
    let (first, one) = tokio::join!(first, async {
        // Nonce 1 comes after 0 was admitted, through enqueue, which releases 2 and 3.
        until(&handle, "nonce 0 is admitted", |h| h.next_nonce(&key.address()) >= 1).await;
        handle.enqueue(sign(1)).unwrap().outcome().await.unwrap()
    });
    let outcomes = [first.unwrap(), one, second.await.unwrap().unwrap(), third.await.unwrap().unwrap()];
    assert!(outcomes.iter().all(|o| o.status.is_success()));
    let nonce =
        |o: &TxOutcome| handle.ledger().transaction(&o.digest).unwrap().unwrap().transaction.unwrap().nonce;
    assert_eq!(outcomes.iter().map(nonce).collect::<Vec<u64>>(), [0, 1, 2, 3]);
    assert!(
        outcomes.windows(2).all(|w| (w[0].height, w[0].index) < (w[1].height, w[1].index)),
        "executed in nonce order"
    );
    assert_eq!(handle.next_nonce(&key.address()), 4);
    stop(handle, task);
}

#[tokio::test]
async fn a_gap_never_filled_ends_in_enoncefuture_and_takes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(holding(dir.path(), 200));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let before = handle.ledger().state_digest();
    let refused = handle.submit(key.sign_call(chain, 1, transfer(Address([1; 32])))).await;
    assert_eq!(
        refused.map(|o| o.digest),
        Err(atoma_ledger::LedgerError::ENonceFuture { expected: 0, got: 1 })
    );
    assert_eq!((handle.ledger().state_digest(), handle.next_nonce(&key.address())), (before, 0));
    assert_eq!(handle.ledger().metrics().snapshot().mempool_size, 0);
    assert_eq!(handle.ledger().metrics().snapshot().transactions_rejected, 1);
    // The refused nonce is free: 0 and then 1 are accepted.
    for nonce in 0..2 {
        assert!(
            handle
                .submit(key.sign_call(chain, nonce, transfer(Address([2; 32]))))
                .await
                .unwrap()
                .status
                .is_success()
        );
    }
    stop(handle, task);
}

#[tokio::test]
async fn a_nonce_beyond_the_window_or_without_a_hold_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // A hold of a minute: a refusal that waited for it would stall this test for that long.
    let (handle, task) = start(holding(dir.path(), atoma_ledger::chain::MAX_NONCE_HOLD_MS));
    let chain = chain_id(&handle);
    let key = Keypair::test_account(0);
    let far = atoma_ledger::mempool::NONCE_HOLD_WINDOW + 1;
    let refused = handle.submit(key.sign_call(chain, far, transfer(Address([1; 32])))).await;
    assert_eq!(
        refused.map(|o| o.digest),
        Err(atoma_ledger::LedgerError::ENonceFuture { expected: 0, got: far })
    );
    let refused = handle.enqueue(key.sign_call(chain, 1, transfer(Address([1; 32]))));
    assert_eq!(refused.map(|p| p.digest()).map_err(|e| e.name()), Err("ENonceFuture"), "enqueue never holds");
    assert_eq!(handle.ledger().metrics().snapshot().mempool_size, 0);
    stop(handle, task);

    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(holding(dir.path(), 0));
    let refused = handle.submit(key.sign_call(chain_id(&handle), 1, transfer(Address([1; 32])))).await;
    assert_eq!(
        refused.map(|o| o.digest).map_err(|e| e.name()),
        Err("ENonceFuture"),
        "a hold of 0 holds nothing"
    );
    stop(handle, task);
}

#[tokio::test]
async fn held_transactions_count_toward_the_mempool_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = holding(dir.path(), atoma_ledger::chain::MAX_NONCE_HOLD_MS);
    config.mempool_capacity = 4;
    let (handle, task) = start(config);
    let chain = chain_id(&handle);
    let (a, b, c) = (Keypair::test_account(0), Keypair::test_account(1), Keypair::test_account(2));
    let sign = |key: &Keypair, nonce: u64| key.sign_call(chain, nonce, transfer(Address([7; 32])));
    let (stall, first) = Stall::block_on(&handle, sign(&c, 0)).await;
    let held: Vec<Submitted> = (1..=2).map(|nonce| submit_in_background(&handle, sign(&a, nonce))).collect();
    until(&handle, "two held", |h| h.ledger().metrics().snapshot().mempool_size == 2).await;
    // At most half the capacity is held: a third is refused at once.
    let refused = handle.submit(sign(&a, 3)).await.map(|o| o.digest).map_err(|e| e.name());
    assert_eq!(refused, Err("ENonceFuture"));
    let queued: Vec<PendingTransaction> =
        (0..2).map(|nonce| handle.enqueue(sign(&b, nonce)).unwrap()).collect();
    assert_eq!(handle.ledger().metrics().snapshot().mempool_size, 4);
    assert_eq!(handle.enqueue(sign(&b, 2)).map(|p| p.digest()).map_err(|e| e.name()), Err("EMempoolFull"));
    assert_eq!(handle.enqueue(sign(&a, 0)).map(|p| p.digest()).map_err(|e| e.name()), Err("EMempoolFull"));
    assert_eq!(handle.ledger().metrics().snapshot().mempool_size, 4, "the bound held");
    drop(stall);
    assert!(first.outcome().await.unwrap().status.is_success());
    for p in queued {
        assert!(p.outcome().await.unwrap().status.is_success());
    }
    // The mempool drained; the held nonces still wait, and their gap now fills.
    until(&handle, "the mempool drains", |h| h.ledger().metrics().snapshot().mempool_size == 2).await;
    assert!(handle.enqueue(sign(&a, 0)).unwrap().outcome().await.unwrap().status.is_success());
    for h in held {
        assert!(h.await.unwrap().unwrap().status.is_success());
    }
    assert_eq!(handle.next_nonce(&a.address()), 3);
    stop(handle, task);
}

#[tokio::test]
async fn shutdown_answers_held_transactions_with_echainstopped() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(holding(dir.path(), atoma_ledger::chain::MAX_NONCE_HOLD_MS));
    let key = Keypair::test_account(0);
    let held = submit_in_background(&handle, key.sign_call(chain_id(&handle), 1, transfer(Address([1; 32]))));
    until(&handle, "nonce 1 is held", |h| h.ledger().metrics().snapshot().mempool_size == 1).await;
    handle.shutdown();
    assert_eq!(held.await.unwrap().map(|o| o.digest).map_err(|e| e.name()), Err("EChainStopped"));
    assert_eq!(handle.advance_epoch().await.map_err(|e| e.name()).err(), Some("EChainStopped"));
    drop(handle);
    task.join().unwrap();
}
