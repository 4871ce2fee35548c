//! Prints a real request and response for every RPC method, against a fresh local network in a
//! temp dir: the examples of docs/RPC.md come from this.
//!
//! ```sh
//! cargo run -p atoma-rpc --example rpc_transcript > /tmp/rpc-transcript.md
//! ```

use std::error::Error;
use std::net::SocketAddr;

use atoma_api::BadgeKindView;
use atoma_client::Client;
use atoma_contract::{AdminOp, Call, EchelonId, EchelonParams, NodeSmallId, StackSmallId, TOMA, TaskSmallId};
use atoma_ledger::genesis::ADMIN_ALIAS;
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Chain, ChainConfig, Keystore};
use atoma_rpc::{RpcConfig, serve};
use atoma_types::{EventFilter, Keypair, SignedTransaction};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Posts one JSON-RPC request and prints it with its answer.
async fn show(addr: SocketAddr, method: &str, params: Value) -> Result<Value> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let body = request.to_string();
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let answer: Value = serde_json::from_str(raw.split_once("\r\n\r\n").map_or("", |(_, b)| b))?;
    println!("### {method}\n\n```json\n{request}\n```\n\n```json\n{}\n```\n", pretty(&answer, 0));
    Ok(answer)
}

/// Pretty JSON with arrays of numbers (byte strings) on one line.
fn pretty(value: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let close = "  ".repeat(indent);
    match value {
        Value::Array(items) if items.is_empty() || items.iter().all(Value::is_number) => value.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> =
                items.iter().map(|v| format!("{pad}{}", pretty(v, indent + 1))).collect();
            format!("[\n{}\n{close}]", inner.join(",\n"))
        }
        Value::Object(map) if !map.is_empty() => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{pad}{}: {}", Value::String(k.clone()), pretty(v, indent + 1)))
                .collect();
            format!("{{\n{}\n{close}}}", inner.join(",\n"))
        }
        other => other.to_string(),
    }
}

fn tx(signed: &SignedTransaction) -> Value {
    json!([STANDARD.encode(&signed.tx_bytes), STANDARD.encode(&signed.signature)])
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = ChainConfig::local(dir.path());
    config.genesis.accounts = 3;
    let (chain, task) = Chain::open(config)?;
    let server = serve(chain.clone(), RpcConfig::listening_on(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
    let addr = server.local_addr();
    let client = Client::new(&server.url())?;
    let admin =
        Keystore::load(&dir.path().join(KEYSTORE_FILE))?.keypair(ADMIN_ALIAS)?.ok_or("no admin key")?;
    let (node, user) = (Keypair::test_account(0), Keypair::test_account(1));
    let mut events = client.subscribe_events(&EventFilter::Stack(StackSmallId(1))).await?;

    let info = show(addr, "atoma_getChainInfo", json!([])).await?;
    let chain_id = client.get_chain_info().await?.chain_id;
    show(addr, "atoma_getOwnedBadges", json!([admin.address().to_string()])).await?;
    let badge = client
        .get_owned_badges(&admin.address())
        .await?
        .into_iter()
        .find(|b| b.kind == BadgeKindView::AtomaManagerBadge)
        .ok_or("no manager badge")?
        .id;
    let add_model =
        Call::Admin { manager_badge: badge, op: AdminOp::AddModel { name: "llama-3".into(), modality: 0 } };
    show(addr, "atoma_executeTransaction", tx(&admin.sign_call(chain_id.0, 0, add_model))).await?;
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 1,
        relative_performance: 1,
        // The dispute window's floor in time: a millisecond, so the claim after the epoch advance
        // is not held back.
        settlement_timeout_ms: 1,
    };
    let echelon = EchelonId(1);
    let op = AdminOp::AddModelEchelon { model_name: "llama-3".into(), echelon, params };
    client.sign_and_execute(&admin, Call::Admin { manager_badge: badge, op }).await?;
    client
        .sign_and_execute(&node, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 })
        .await?;
    let (n, t, s) = (NodeSmallId(1), TaskSmallId(1), StackSmallId(1));
    client
        .sign_and_execute(&node, Call::AddNodeToModel { node: n, model_name: "llama-3".into(), echelon })
        .await?;
    let create = Call::CreateTask {
        role: 0,
        model_name: Some("llama-3".into()),
        security_level: 0,
        minimum_reputation_score: None,
        required_optimizations: 0,
    };
    client.sign_and_execute(&user, create).await?;
    let subscribe = Call::SubscribeNodeToTask {
        node: n,
        task: t,
        price_per_compute_unit: 10,
        max_num_compute_units: 1000,
    };
    client.sign_and_execute(&node, subscribe).await?;
    let buy = Call::AcquireNewStack { task: t, num_compute_units: 100, max_price_per_compute_unit: 10 };
    let nonce = client.get_nonce(&user.address()).await?;
    show(addr, "atoma_dryRunTransaction", tx(&user.sign_call(chain_id.0, nonce, buy.clone()))).await?;
    client.sign_and_execute(&user, buy).await?;
    show(addr, "atoma_getStack", json!([1])).await?;
    show(addr, "atoma_getSettlementTicket", json!([1])).await?;
    let settle = Call::TrySettleStack {
        node: n,
        stack: s,
        num_claimed_compute_units: 50,
        committed_stack_proof: vec![1; 32],
        stack_merkle_leaf: vec![2; 32],
        tee_signature: None,
    };
    let settled = client.sign_and_execute(&node, settle).await?;
    show(addr, "atoma_getSettlementTicket", json!({"stack": "1"})).await?;
    show(addr, "atoma_advanceEpoch", json!([])).await?;
    let claim = Call::ClaimFunds { node: n, stacks: vec![s] };
    let nonce = client.get_nonce(&node.address()).await?;
    let claim_tx = node.sign_call(chain_id.0, nonce, claim);
    show(addr, "atoma_executeTransaction", tx(&claim_tx)).await?;
    show(addr, "atoma_executeTransaction", tx(&claim_tx)).await?;
    let failing = Call::ClaimFunds { node: n, stacks: vec![s] };
    let nonce = client.get_nonce(&node.address()).await?;
    show(addr, "atoma_executeTransaction", tx(&node.sign_call(chain_id.0, nonce, failing))).await?;
    show(addr, "atoma_getTransaction", json!([settled.digest.to_string()])).await?;
    show(addr, "atoma_getBlock", json!([settled.block_height])).await?;
    show(addr, "atoma_getLatestBlock", json!([])).await?;
    show(addr, "atoma_getBalance", json!([user.address().to_string()])).await?;
    show(addr, "atoma_getNonce", json!({"address": user.address().to_string()})).await?;
    show(addr, "atoma_getDb", json!([])).await?;
    show(addr, "atoma_getNode", json!([1])).await?;
    show(addr, "atoma_getTask", json!(["1"])).await?;
    show(addr, "atoma_listTasks", json!([null, 10])).await?;
    show(addr, "atoma_getStack", json!([{"inner": "1"}])).await?;
    show(addr, "atoma_getModel", json!(["llama-3"])).await?;
    show(addr, "atoma_audit", json!([])).await?;
    show(addr, "atoma_getStateDigest", json!([])).await?;
    let page = show(addr, "atoma_queryEvents", json!([{"Stack": "1"}, null, 2, false])).await?;
    show(addr, "atoma_queryEvents", json!([{"Stack": "1"}, page["result"]["nextCursor"], 2, false])).await?;
    show(addr, "atoma_queryEvents", json!({"filter": "All", "limit": 1, "descending": true})).await?;
    show(addr, "atoma_faucet", json!([Keypair::from_secret_bytes([7; 32]).address().to_string()])).await?;
    show(addr, "atoma_advanceClock", json!([5000])).await?;
    show(addr, "atoma_getTask", json!([99])).await?;
    show(addr, "atoma_getTransaction", json!(["11111111111111111111111111111111"])).await?;
    show(addr, "atoma_getBalance", json!(["0x1234"])).await?;
    show(addr, "atoma_getBalance", json!({"adress": "0x00"})).await?;
    show(addr, "atoma_noSuchMethod", json!([])).await?;
    let mut forged =
        user.sign_call(chain_id.0, 99, Call::TransferToma { recipient: node.address(), amount: 1 });
    forged.signature[10] ^= 1;
    show(addr, "atoma_executeTransaction", tx(&forged)).await?;

    println!("### atoma_subscribeEvents (notifications' `result`, filter {{\"Stack\": \"1\"}})\n\n```json");
    for _ in 0..3 {
        if let Some(event) = events.next().await {
            println!("{}", pretty(&serde_json::to_value(event?)?, 0));
        }
    }
    println!("```\n\nchain id {}\n", info["result"]["chainId"]);
    for path in ["/health", "/metrics"] {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await?;
        println!("### GET {path}\n\n```\n{raw}\n```\n");
    }
    events.unsubscribe().await?;
    server.stop();
    server.stopped().await;
    chain.shutdown();
    drop(chain);
    task.join()?;
    Ok(())
}
