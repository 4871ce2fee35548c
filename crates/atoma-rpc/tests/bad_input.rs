//! Bad input over raw HTTP gets the JSON-RPC error it should, changes nothing, and does not stop
//! the server from answering the next good request. Also: `/health` and `/metrics`, the local
//! network controls on a chain that is not local, a full mempool, and the subscription limit.

mod common;

use std::time::Duration;

use atoma_api::rpc::codes;
use atoma_contract::{Call, TOMA};
use atoma_types::{EventFilter, Keypair, SignedTransaction};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::{Value, json};

fn tx_params(signed: &SignedTransaction) -> Value {
    json!([STANDARD.encode(&signed.tx_bytes), STANDARD.encode(&signed.signature)])
}

/// Asserts a JSON-RPC error with `code`, a message containing `says`, and (when given) the
/// named error in `data`.
#[track_caller]
fn assert_error(answer: &Value, code: i32, says: &str, name: Option<&str>) {
    let error = &answer["error"];
    assert_eq!(error["code"], json!(code), "{answer}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message:?} should say {says:?}");
    if let Some(name) = name {
        assert_eq!(error["data"]["name"], json!(name), "{answer}");
        assert!(error["data"]["code"].as_u64().is_some_and(|c| c >= 312_012_000), "{answer}");
    }
    assert!(answer.get("result").is_none(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    let addr = net.addr();
    let chain_id = net.client.get_chain_info().await.expect("info").chain_id;
    let digest = net.chain.ledger().state_digest();
    let user = user();
    let user_address = json!(user.address().to_string());

    // Malformed JSON, not a request, an unknown method.
    let (status, answer) = post(addr, r#"{"jsonrpc": "2.0", "id": 1, "method": "#).await;
    assert_eq!(status, 200);
    assert_eq!(answer["error"]["code"], json!(codes::PARSE_ERROR), "{answer}");
    // jsonrpsee reads any body that is not a request object as unparseable.
    let (_, answer) = post(addr, r#"{"hello": "world"}"#).await;
    assert_eq!(answer["error"]["code"], json!(codes::PARSE_ERROR), "{answer}");
    assert_error(
        &rpc(addr, "atoma_noSuchMethod", json!([])).await,
        codes::METHOD_NOT_FOUND,
        "not found",
        None,
    );

    // Wrong parameter types and counts name the parameter.
    let cases = [
        ("atoma_getBalance", json!([123]), "invalid parameter `address`"),
        ("atoma_getBalance", json!(["0x1234"]), "invalid parameter `address`"),
        ("atoma_getBalance", json!([]), "missing parameter `address`"),
        ("atoma_getBalance", json!([user_address, 1]), "at most 1 parameters"),
        ("atoma_getBalance", json!({"adress": user_address}), "unknown parameter `adress`"),
        ("atoma_getTask", json!(["seven"]), "invalid parameter `task`"),
        ("atoma_getTask", json!([-1]), "invalid parameter `task`"),
        ("atoma_getBlock", json!(["18446744073709551616"]), "invalid parameter `height`"),
        ("atoma_queryEvents", json!([{"Planet": "Mars"}]), "invalid parameter `filter`"),
        (
            "atoma_queryEvents",
            json!(["All", {"txDigest": "0OIl", "eventSeq": 0}]),
            "invalid parameter `cursor`",
        ),
        ("atoma_queryEvents", json!({"descending": "yes"}), "invalid parameter `descending`"),
        ("atoma_executeTransaction", json!(["not base64!", "AA=="]), "invalid parameter `txBytes`"),
        ("atoma_executeTransaction", json!(["AA=="]), "missing parameter `signature`"),
        ("atoma_faucet", json!([user_address, "0"]), "invalid parameter `amount`"),
        ("atoma_faucet", json!([user_address, (2_000_000 * TOMA).to_string()]), "invalid parameter `amount`"),
        ("atoma_advanceClock", json!([u64::MAX]), "invalid parameter `ms`"),
        ("atoma_getChainInfo", json!([1]), "at most 0 parameters"),
    ];
    for (method, params, says) in cases {
        assert_error(&rpc(addr, method, params).await, codes::INVALID_PARAMS, says, None);
    }
    // Named and positional params both work, and small ids take three spellings.
    for params in [json!({"address": user_address}), json!([user_address])] {
        assert!(rpc(addr, "atoma_getBalance", params).await["result"]["balance"].is_string());
    }
    for id in [json!(1), json!("1"), json!({"inner": "1"})] {
        assert_error(
            &rpc(addr, "atoma_getTask", json!([id])).await,
            codes::NOT_FOUND,
            "ETaskNotFound",
            Some("ETaskNotFound"),
        );
    }

    // Batches are bounded.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_getChainInfo"});
    let (_, answer) = post(addr, &Value::Array(vec![call.clone(); 33]).to_string()).await;
    assert_eq!(answer["error"]["code"], json!(codes::BATCH_TOO_LONG), "{answer}");
    let (_, answer) = post(addr, &Value::Array(vec![call; 2]).to_string()).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");

    // Unknown ids are named not-found errors.
    let unknown = rpc(addr, "atoma_getNode", json!({"node": "99"})).await;
    assert_error(&unknown, codes::NOT_FOUND, "ENodeNotFound", Some("ENodeNotFound"));
    assert_eq!(unknown["error"]["data"]["code"], json!(312_012_104));
    let no_tx = rpc(addr, "atoma_getTransaction", json!([atoma_types::Digest([3; 32]).to_string()])).await;
    assert_error(&no_tx, codes::NOT_FOUND, "ETransactionNotFound", Some("ETransactionNotFound"));
    let cursor = json!({"txDigest": atoma_types::Digest([3; 32]).to_string(), "eventSeq": "0"});
    let bad_cursor = rpc(addr, "atoma_queryEvents", json!(["All", cursor])).await;
    assert_error(&bad_cursor, codes::INVALID_PARAMS, "EInvalidCursor", Some("EInvalidCursor"));

    // An oversized body is refused before it is read whole.
    let huge = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "atoma_getDb", "params": ["{}"]}}"#,
        "a".repeat(300 * 1024)
    );
    let (_, answer) = post(addr, &huge).await;
    assert_eq!(answer["error"]["code"], json!(codes::OVERSIZED_REQUEST), "{answer}");
    // A transaction over the ledger's limit that fits the request limit is the ledger's error.
    let big = json!([STANDARD.encode(vec![0u8; 130 * 1024]), STANDARD.encode([0u8; 97])]);
    let answer = rpc(addr, "atoma_executeTransaction", big).await;
    assert_error(&answer, codes::TRANSACTION_REJECTED, "ETransactionTooLarge", Some("ETransactionTooLarge"));

    // Transactions the ledger refuses: nothing changes.
    let transfer = Call::TransferToma { recipient: operator().address(), amount: TOMA };
    let mut forged = user.sign_call(chain_id.0, 0, transfer.clone());
    forged.signature[10] ^= 1;
    let answer = rpc(addr, "atoma_executeTransaction", tx_params(&forged)).await;
    assert_error(&answer, codes::TRANSACTION_REJECTED, "EBadSignature", Some("EBadSignature"));
    let other_key = Keypair::test_account(2);
    let stolen = atoma_types::Transaction {
        chain_id: chain_id.0,
        sender: user.address(),
        nonce: 0,
        call: transfer.clone(),
    }
    .sign(other_key.signing_key());
    let answer = rpc(addr, "atoma_executeTransaction", tx_params(&stolen)).await;
    assert_error(
        &answer,
        codes::TRANSACTION_REJECTED,
        "the public key is not the sender's",
        Some("EBadSignature"),
    );
    let elsewhere = user.sign_call([9; 32], 0, transfer.clone());
    let answer = rpc(addr, "atoma_executeTransaction", tx_params(&elsewhere)).await;
    assert_error(&answer, codes::TRANSACTION_REJECTED, "EWrongChainId", Some("EWrongChainId"));
    let future = user.sign_call(chain_id.0, 5, transfer.clone());
    let answer = rpc(addr, "atoma_executeTransaction", tx_params(&future)).await;
    assert_error(&answer, codes::TRANSACTION_REJECTED, "ENonceFuture", Some("ENonceFuture"));
    let answer = rpc(addr, "atoma_executeTransaction", json!(["AAAA", STANDARD.encode([0u8; 97])])).await;
    assert_error(
        &answer,
        codes::TRANSACTION_REJECTED,
        "EMalformedTransaction",
        Some("EMalformedTransaction"),
    );
    assert_eq!(net.chain.ledger().state_digest(), digest, "refused transactions changed the state");

    // A good transaction, then its replay.
    let good = user.sign_call(chain_id.0, 0, transfer);
    let answer = rpc(addr, "atoma_executeTransaction", tx_params(&good)).await;
    assert_eq!(answer["result"]["status"], json!("success"), "{answer}");
    let after_good = net.chain.ledger().state_digest();
    assert_ne!(after_good, digest);
    let replay = rpc(addr, "atoma_executeTransaction", tx_params(&good)).await;
    assert_error(&replay, codes::TRANSACTION_REJECTED, "ENonceUsed", Some("ENonceUsed"));
    assert_eq!(replay["error"]["data"]["code"], json!(312_013_002));
    assert_eq!(net.chain.ledger().state_digest(), after_good, "the replay changed the state");

    // The server still answers, over HTTP and through the client.
    let info = rpc(addr, "atoma_getChainInfo", json!([])).await;
    assert_eq!(info["result"]["chainId"], json!(chain_id.to_string()), "{info}");
    assert_eq!(net.client.get_nonce(&user.address()).await.expect("nonce"), 1);
    let metrics = net.chain.ledger().metrics().snapshot();
    assert!(metrics.transactions_rejected >= 6, "{metrics:?}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_plain_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    ok(&net.client, &user(), Call::TransferToma { recipient: operator().address(), amount: 1 }).await;
    let (status, body) = http(net.addr(), "GET", "/health", b"").await;
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(health["status"], json!("ok"));
    assert_eq!(health["chainId"], json!(net.chain.node().chain_info().chain_id.to_string()));
    assert_eq!(health["height"], json!("1"));
    let (status, body) = http(net.addr(), "GET", "/metrics", b"").await;
    assert_eq!(status, 200, "{body}");
    for line in [
        "atoma_block_height 1\n",
        "atoma_blocks_applied_total 1\n",
        "atoma_transactions_total{status=\"success\"} 1\n",
        "atoma_transactions_total{status=\"failure\"} 0\n",
        "atoma_mempool_size 0\n",
        "# TYPE atoma_last_commit_latency_microseconds gauge\n",
        "atoma_rpc_active_subscriptions 0\n",
    ] {
        assert!(body.contains(line), "{line:?} missing from\n{body}");
    }
    // Other GETs are not JSON-RPC calls.
    let (status, _) = http(net.addr(), "GET", "/nothing", b"").await;
    assert_ne!(status, 200);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_controls_are_refused_off_a_local_network() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = chain_config(dir.path());
    config.local_network = false;
    let net = start_with(config).await;
    let c = &net.client;
    let address = user().address();
    let refused =
        [c.faucet(&address, None).await.err(), c.advance_epoch().await.err(), c.advance_clock(1).await.err()];
    for e in refused {
        let e = e.expect("refused");
        assert_eq!(
            (e.rpc_code(), e.name()),
            (Some(codes::NOT_LOCAL_NETWORK), Some("ENotLocalNetwork")),
            "{e}"
        );
    }
    assert!(!c.get_chain_info().await.expect("info").local_network);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_mempool_is_busy_and_retryable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = chain_config(dir.path());
    // Blocks only every minute, and room for one transaction.
    config.block_time_ms = Some(60_000);
    config.mempool_capacity = 1;
    let net = start_with(config).await;
    let chain_id = net.chain.node().chain_info().chain_id.0;
    let transfer = Call::TransferToma { recipient: user().address(), amount: 1 };
    let waiting = net.chain.enqueue(operator().sign_call(chain_id, 0, transfer.clone())).expect("admitted");
    let refused = net.client.execute_transaction(&user().sign_call(chain_id, 0, transfer)).await.unwrap_err();
    assert_eq!(refused.rpc_code(), Some(codes::SERVER_BUSY), "{refused}");
    assert_eq!(refused.name(), Some("EMempoolFull"));
    assert!(refused.is_retryable());
    drop(waiting);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_per_connection_are_bounded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    let ws: WsClient = WsClientBuilder::default().build(net.server.ws_url()).await.expect("connects");
    let filter = atoma_api::rpc::filter_to_json(&EventFilter::All);
    let mut held = Vec::new();
    for _ in 0..atoma_rpc::server::DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION {
        let sub: jsonrpsee::core::client::Subscription<Value> = ws
            .subscribe(
                atoma_api::rpc::SUBSCRIBE_EVENTS,
                jsonrpsee::rpc_params![filter.clone()],
                atoma_api::rpc::UNSUBSCRIBE_EVENTS,
            )
            .await
            .expect("within the limit");
        held.push(sub);
    }
    let over: Result<jsonrpsee::core::client::Subscription<Value>, _> = ws
        .subscribe(
            atoma_api::rpc::SUBSCRIBE_EVENTS,
            jsonrpsee::rpc_params![filter.clone()],
            atoma_api::rpc::UNSUBSCRIBE_EVENTS,
        )
        .await;
    match over {
        Err(jsonrpsee::core::client::Error::Call(e)) => assert_eq!(e.code(), codes::TOO_MANY_SUBSCRIPTIONS),
        other => panic!("expected TOO_MANY_SUBSCRIPTIONS, got {:?}", other.map(|_| ())),
    }
    // A bad filter is refused at subscribe time.
    let bad: Result<jsonrpsee::core::client::Subscription<Value>, _> = WsClientBuilder::default()
        .build(net.server.ws_url())
        .await
        .expect("connects")
        .subscribe(
            atoma_api::rpc::SUBSCRIBE_EVENTS,
            jsonrpsee::rpc_params![json!({"Node": "x"})],
            atoma_api::rpc::UNSUBSCRIBE_EVENTS,
        )
        .await;
    match bad {
        Err(jsonrpsee::core::client::Error::Call(e)) => assert_eq!(e.code(), codes::INVALID_PARAMS),
        other => panic!("expected INVALID_PARAMS, got {:?}", other.map(|_| ())),
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(10)).await;
    net.stop().await;
}
