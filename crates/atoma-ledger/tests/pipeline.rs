//! The fast paths keep the guarantees: batched signature checks refuse a bad block whole and
//! answer like single checks, pipelined load is acknowledged only after commit, and a restart
//! after pipelined load keeps every acknowledged transaction.

mod common;

use std::collections::BTreeMap;

use atoma_contract::{Address, Call};
use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};
use atoma_ledger::{
    ChainConfig, ChainHandle, Digest, EventFilter, Keypair, Ledger, LedgerOptions, PendingTransaction,
    Sequencer, SignedTransaction, TxOutcome,
};
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
    assert_eq!(handle.metrics().transactions_rejected, 1);
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
        let stored = handle.transaction(&digest).unwrap().expect("an acknowledged transaction is stored");
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
        assert_eq!(&handle.transaction(digest).unwrap().expect("kept").outcome, outcome);
    }
    let mut per_sender: BTreeMap<Address, u64> = BTreeMap::new();
    for outcome in acknowledged.values() {
        *per_sender.entry(outcome.sender).or_default() += 1;
    }
    for key in &keys {
        let sent = per_sender.get(&key.address()).copied().unwrap_or(0);
        assert_eq!(handle.next_nonce(&key.address()), sent, "no transaction beyond the acknowledged ones");
        let events =
            handle.query_events(&EventFilter::Sender(key.address()), None, Some(1_000), false).unwrap();
        assert_eq!(events.data.len() as u64, sent, "one transfer event each, found through the sender index");
    }
    assert_eq!(handle.ledger().replay_from_genesis().unwrap(), handle.state_digest());
    stop(handle, task);
}
