//! Every way a transaction is refused before execution: the right error, and nothing changes.

mod common;

use atoma_contract::{Address, Call};
use atoma_ledger::ChainHandle;
use atoma_types::tx::MAX_TRANSACTION_SIZE;
use atoma_types::{Digest, SignedTransaction, Transaction};
use common::{chain_id, config, keys, start, stop};

/// What must not change when a transaction is refused.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    state_digest: Digest,
    height: u64,
    next_nonce: u64,
    stored_nonce: u64,
}

fn observe(handle: &ChainHandle, sender: &Address) -> Observed {
    Observed {
        state_digest: handle.ledger().state_digest(),
        height: handle.node().chain_info().height,
        next_nonce: handle.next_nonce(sender),
        stored_nonce: handle.ledger().stored_nonce(sender).unwrap(),
    }
}

fn transfer() -> Call {
    Call::TransferToma { recipient: Address([7; 32]), amount: 1 }
}

#[tokio::test]
async fn refused_transactions_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let keys = keys(dir.path());
    let user = &keys.accounts[0];
    let chain = chain_id(&handle);
    let accepted = handle.submit(user.sign_call(chain, 0, transfer())).await.unwrap();
    assert!(accepted.status.is_success());
    let before = observe(&handle, &user.address());
    assert_eq!(before.next_nonce, 1);

    let good = user.sign_call(chain, 1, transfer());
    let mut bad_sig = good.clone();
    bad_sig.signature[10] ^= 0xff;
    let mut bad_flag = good.clone();
    bad_flag.signature[0] = 0x01;
    let other_key = Transaction { chain_id: chain, sender: user.address(), nonce: 1, call: transfer() }
        .sign(keys.accounts[1].signing_key());
    let oversize =
        SignedTransaction { tx_bytes: vec![0; MAX_TRANSACTION_SIZE], signature: good.signature.clone() };
    let cases: Vec<(&str, SignedTransaction)> = vec![
        ("EBadSignature", bad_sig),
        ("EBadSignature", bad_flag),
        ("EBadSignature", other_key),
        ("EWrongChainId", user.sign_call([0; 32], 1, transfer())),
        ("ENonceUsed", user.sign_call(chain, 0, transfer())),
        ("ENonceFuture", user.sign_call(chain, 2, transfer())),
        ("ETransactionTooLarge", oversize),
        (
            "EMalformedTransaction",
            SignedTransaction { tx_bytes: vec![1, 2, 3], signature: good.signature.clone() },
        ),
    ];
    let count = cases.len() as u64;
    for (expected, signed) in cases {
        let got = handle.submit(signed).await.map(|o| o.digest).map_err(|e| e.name());
        assert_eq!(got, Err(expected));
        assert_eq!(observe(&handle, &user.address()), before, "{expected} changed something");
    }
    assert_eq!(
        handle.submit(accepted_again(&handle, user)).await.map_err(|e| e.name()).err(),
        Some("ENonceUsed")
    );

    let mut trailing = good.to_bytes();
    trailing.push(0);
    let bytes_cases: Vec<(&str, Vec<u8>)> = vec![
        ("EMalformedTransaction", vec![0xff; 10]),
        ("EMalformedTransaction", trailing),
        ("ETransactionTooLarge", vec![0; MAX_TRANSACTION_SIZE + 1]),
    ];
    for (expected, bytes) in bytes_cases {
        assert_eq!(handle.submit_bytes(&bytes).await.map(|o| o.digest).map_err(|e| e.name()), Err(expected));
        assert_eq!(observe(&handle, &user.address()), before, "{expected} changed something");
    }
    assert_eq!(handle.ledger().metrics().snapshot().transactions_rejected, count + 4);

    let next = handle.submit_bytes(&good.to_bytes()).await.unwrap();
    assert!(next.status.is_success(), "the refusals did not consume the nonce");
    assert!(handle.ledger().with_state(|db| db.audit().holds()));
    stop(handle, task);
}

/// The transaction already applied at nonce 0, byte for byte.
fn accepted_again(handle: &ChainHandle, user: &atoma_types::Keypair) -> SignedTransaction {
    user.sign_call(chain_id(handle), 0, transfer())
}

#[tokio::test]
async fn local_only_requests_are_refused_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.local_network = false;
    let (handle, task) = start(config);
    assert_eq!(
        handle.faucet(Address([1; 32]), 1).await.map_err(|e| e.name()).err(),
        Some("ENotLocalNetwork")
    );
    assert_eq!(handle.advance_epoch().await.map_err(|e| e.name()).err(), Some("ENotLocalNetwork"));
    assert_eq!(handle.advance_clock(5).await.map_err(|e| e.name()).err(), Some("ENotLocalNetwork"));
    stop(handle, task);
}
