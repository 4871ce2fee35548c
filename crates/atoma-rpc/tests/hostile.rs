//! Hostile peers at the RPC edge: one address cannot take more than its share of connections or
//! subscriptions, and a WebSocket that stops reading is cut after its send buffer — with a close
//! frame naming `ESendBufferFull` — while other subscribers go on; the cut subscriber resumes
//! from its cursor with no gap and no repeat. Every peer is a real socket on loopback; the
//! addresses 127.0.0.1 and 127.0.0.2 are two peers.

mod common;

use std::time::Duration;

use atoma_api::EventEnvelope;
use atoma_api::rpc::codes;
use atoma_contract::Call;
use atoma_rpc::{RpcErrorName, SEND_BUFFER_FULL_CLOSE_CODE};
use atoma_types::{EventFilter, Keypair};
use common::*;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const HOSTILE: [u8; 4] = [127, 0, 0, 1];
const FRIENDLY: [u8; 4] = [127, 0, 0, 2];
const DEADLINE: Duration = Duration::from_secs(30);

async fn start(rpc: atoma_rpc::RpcConfig) -> (Net, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = chain_config(dir.path());
    (start_serving(config, rpc).await, dir)
}

/// A WebSocket from `from` whose handshake was accepted.
async fn websocket_from(from: [u8; 4], net: &Net) -> TcpStream {
    let mut stream = connect_from(from, net.addr()).await;
    let (status, head) = ws_handshake(&mut stream).await;
    assert_eq!(status, 101, "{head}");
    stream
}

/// Sends a JSON-RPC call on a raw WebSocket and reads frames until its answer.
async fn call_ws(stream: &mut TcpStream, id: u64, method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    stream.write_all(&masked_text(&request.to_string())).await.expect("writes");
    loop {
        let (opcode, payload) =
            tokio::time::timeout(DEADLINE, read_frame(stream)).await.expect("an answer").expect("open");
        if opcode != 0x1 {
            continue;
        }
        let answer: Value = serde_json::from_slice(&payload).expect("JSON");
        if answer["id"] == json!(id) {
            return answer;
        }
    }
}

fn assert_named(answer: &Value, code: i32, name: RpcErrorName) {
    let error = &answer["error"];
    assert_eq!(error["code"], json!(code), "{answer}");
    assert_eq!(error["data"]["name"], json!(name.name()), "{answer}");
    assert_eq!(error["data"]["code"], json!(name.code()), "{answer}");
    assert!(error["data"]["message"].is_string(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_connections() {
    let mut rpc = loopback_rpc();
    rpc.max_connections_per_address = 3;
    let (net, _dir) = start(rpc).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(websocket_from(HOSTILE, &net).await);
    }
    // A fourth WebSocket, and a JSON-RPC POST, from the same address: 429, named.
    let mut fourth = connect_from(HOSTILE, net.addr()).await;
    let (status, head) = ws_handshake(&mut fourth).await;
    assert_eq!(status, 429, "{head}");
    let (status, answer) =
        post(net.addr(), r#"{"jsonrpc":"2.0","id":1,"method":"atoma_getChainInfo"}"#).await;
    assert_eq!(status, 429, "{answer}");
    assert_named(&answer, codes::SERVER_BUSY, RpcErrorName::ETooManyConnectionsFromAddress);
    // `/health` takes no slot; another address is served as usual.
    assert_eq!(http(net.addr(), "GET", "/health", b"").await.0, 200);
    let mut friendly = websocket_from(FRIENDLY, &net).await;
    let answer = call_ws(&mut friendly, 1, "atoma_getChainInfo", json!([])).await;
    assert!(answer["result"]["chainId"].is_string(), "{answer}");
    // A closed WebSocket gives its slot back once its TCP connection is gone.
    drop(held.pop());
    let freed = async {
        loop {
            let mut again = connect_from(HOSTILE, net.addr()).await;
            if ws_handshake(&mut again).await.0 == 101 {
                return again;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _again = tokio::time::timeout(DEADLINE, freed).await.expect("the slot comes back");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_more_than_its_subscriptions() {
    let mut rpc = loopback_rpc();
    rpc.max_subscriptions_per_address = 2;
    let (net, _dir) = start(rpc).await;
    let (mut first, mut second) = (websocket_from(HOSTILE, &net).await, websocket_from(HOSTILE, &net).await);
    for (id, ws) in [(1, &mut first), (2, &mut second)] {
        let answer = call_ws(ws, id, "atoma_subscribeEvents", json!(["All"])).await;
        assert!(answer["result"].is_number(), "{answer}");
    }
    // A third, on either connection: refused by name, across connections.
    let answer = call_ws(&mut second, 3, "atoma_subscribeEvents", json!(["All"])).await;
    assert_named(&answer, codes::TOO_MANY_SUBSCRIPTIONS, RpcErrorName::ETooManySubscriptionsFromAddress);
    assert_eq!(
        metric(net.addr(), "atoma_rpc_active_subscriptions").await,
        2,
        "the refused one holds nothing"
    );
    // Another address subscribes as usual; ending one of the first address's frees its place.
    let mut friendly = websocket_from(FRIENDLY, &net).await;
    assert!(call_ws(&mut friendly, 1, "atoma_subscribeEvents", json!(["All"])).await["result"].is_number());
    let id = call_ws(&mut first, 4, "atoma_subscribeEvents", json!(["All"])).await;
    assert_named(&id, codes::TOO_MANY_SUBSCRIPTIONS, RpcErrorName::ETooManySubscriptionsFromAddress);
    drop(first);
    let freed = async {
        let mut n = 10;
        loop {
            n += 1;
            let answer = call_ws(&mut second, n, "atoma_subscribeEvents", json!(["All"])).await;
            if answer["result"].is_number() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, freed).await.expect("a closed connection's subscription is freed");
    net.stop().await;
}

/// The id of an envelope as the client sends it back.
fn cursor(event: &EventEnvelope) -> atoma_api::EventId {
    event.id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_cut_and_resumes_from_its_cursor() {
    let mut rpc = loopback_rpc();
    rpc.ws_send_buffer_bytes = 64 * 1024;
    let (net, _dir) = start(rpc).await;
    let c = &net.client;
    let chain_id = c.get_chain_info().await.expect("info").chain_id;
    // A well-behaved subscriber, through the client library, read as events come.
    let mut friendly = c.subscribe_events(&EventFilter::All).await.expect("subscribes");
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(event)) = friendly.next().await {
            if seen_tx.send(event).is_err() {
                return;
            }
        }
    });
    // The hostile subscriber asks for every event and never reads: a small receive buffer, so
    // that its window closes early.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    socket.bind((std::net::Ipv4Addr::from(HOSTILE), 0).into()).expect("binds");
    let mut slow = socket.connect(net.addr()).await.expect("connects");
    assert_eq!(ws_handshake(&mut slow).await.0, 101);
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_subscribeEvents", "params": ["All"]});
    slow.write_all(&masked_text(&subscribe.to_string())).await.expect("writes");
    // Bursts of transfers until the server has cut it (nothing the server does waits on it).
    let mut nonce = 0;
    let mut sent = 0;
    while metric(net.addr(), "atoma_rpc_websockets_cut_total").await == 0 {
        assert!(sent < 20_000, "no cut after {sent} events");
        let mut pending = Vec::new();
        for _ in 0..100 {
            let call = Call::TransferToma { recipient: Keypair::test_account(2).address(), amount: 1 };
            pending.push(net.chain.enqueue(user().sign_call(chain_id.0, nonce, call)).expect("admitted"));
            nonce += 1;
        }
        for p in pending {
            assert!(p.outcome().await.expect("committed").status.is_success());
        }
        sent += 100;
    }
    let expected = events_after_genesis(c, chain_id).await;
    assert_eq!(expected.len(), sent);
    // The well-behaved subscriber got every event, in order.
    let mut delivered = Vec::new();
    while delivered.len() < expected.len() {
        let event = tokio::time::timeout(DEADLINE, seen.recv()).await.expect("an event").expect("open");
        delivered.push(event);
    }
    assert_eq!(delivered, expected);

    // The slow one reads now: its answer, a prefix of the events, then the close frame.
    let mut got: Vec<EventEnvelope> = Vec::new();
    let close = loop {
        let frame = tokio::time::timeout(DEADLINE, read_frame(&mut slow)).await.expect("a frame");
        let (opcode, payload) = frame.expect("a close frame before the end");
        match opcode {
            0x1 => {
                let message: Value = serde_json::from_slice(&payload).expect("JSON");
                if let Some(event) = message.pointer("/params/result") {
                    got.push(serde_json::from_value(event.clone()).expect("an envelope"));
                }
            }
            0x8 => break payload,
            _ => {}
        }
    };
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), SEND_BUFFER_FULL_CLOSE_CODE);
    assert_eq!(&close[2..], RpcErrorName::ESendBufferFull.name().as_bytes());
    assert!(got.len() < expected.len(), "it was cut before the end ({} events)", got.len());
    assert_eq!(got[..], expected[..got.len()], "what it got is a prefix, in order");

    // It resumes after the last event it saw: every later event, once, then live ones.
    let from = got.last().map(cursor);
    let mut resumed = c.subscribe_events_from(&EventFilter::All, from.as_ref()).await.expect("resumes");
    let rest = take(&mut resumed, expected.len() - got.len()).await;
    assert_eq!(rest[..], expected[got.len()..], "no gap, no repeat");
    let live = ok(c, &operator(), Call::TransferToma { recipient: user().address(), amount: 5 }).await;
    let next = take(&mut resumed, 1).await;
    assert_eq!(next[0].id.tx_digest, live.digest.to_string(), "then live events");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_an_unknown_event_is_refused_by_name() {
    let (net, _dir) = start(loopback_rpc()).await;
    let mut ws = websocket_from(FRIENDLY, &net).await;
    let unknown = json!({"txDigest": "11111111111111111111111111111111", "eventSeq": "0"});
    let answer = call_ws(&mut ws, 1, "atoma_subscribeEvents", json!(["All", unknown])).await;
    assert_eq!(answer["error"]["code"], json!(codes::INVALID_PARAMS), "{answer}");
    assert_eq!(answer["error"]["data"]["name"], json!("EInvalidCursor"), "{answer}");
    assert_eq!(metric(net.addr(), "atoma_rpc_active_subscriptions").await, 0);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_limits_of_zero_are_refused() {
    for set in [
        (|c: &mut atoma_rpc::RpcConfig| c.max_connections_per_address = 0) as fn(&mut atoma_rpc::RpcConfig),
        |c| c.max_subscriptions_per_address = 0,
        |c| c.ws_send_buffer_bytes = 0,
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (chain, _task) = atoma_ledger::Chain::open(chain_config(dir.path())).expect("opens");
        let mut rpc = loopback_rpc();
        set(&mut rpc);
        let refused = atoma_rpc::serve(chain.clone(), rpc).await;
        assert!(matches!(refused, Err(atoma_rpc::ServeError::InvalidConfig(_))), "{refused:?}");
        chain.shutdown();
    }
}
