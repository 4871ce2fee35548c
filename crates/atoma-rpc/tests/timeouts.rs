//! The server's timeouts: a request body that stalls is answered 408 without holding a connection
//! slot, while a slow one that arrives in time is served; a connection that never sends its first
//! request is closed; a WebSocket that sends nothing (not even a pong) is closed, even with a
//! subscription, while a client that answers pings keeps its connection, with or without calls
//! and subscriptions. Timeouts are set small; every wait has a generous deadline that only
//! catches hangs.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use atoma_api::rpc::codes;
use atoma_contract::Call;
use atoma_rpc::{RpcConfig, ServeError, serve};
use atoma_types::{EventFilter, Keypair};
use common::*;
use jsonrpsee::core::client::ClientT;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Past this, the server "never" did what was expected.
const DEADLINE: Duration = Duration::from_secs(30);

async fn start(rpc: RpcConfig, block_time_ms: Option<u64>) -> (Net, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = chain_config(dir.path());
    config.block_time_ms = block_time_ms;
    (start_serving(config, rpc).await, dir)
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .expect("reads");
    raw
}

/// A request whose headers announce `body_len` bytes, followed by the first `sent` of them.
async fn start_post(addr: SocketAddr, body: &[u8], sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    stream.write_all(&body[..sent]).await.expect("writes");
    stream
}

/// A WebSocket opened by hand: a client that never answers a ping.
async fn open_websocket(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let (status, head) = ws_handshake(&mut stream).await;
    assert_eq!(status, 101, "{head}");
    stream
}

/// A client text frame (masked with a zero key, so the payload stays readable).
fn text_frame(payload: &str) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload.as_bytes());
    frame
}

/// The opcodes of the (unmasked, short) frames a server sent.
fn opcodes(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while raw.len() >= 2 {
        let (opcode, len) = (raw[0] & 0x0f, raw[1] & 0x7f);
        let (header, len) = match len {
            126 => (4, u16::from_be_bytes([raw[2], raw[3]]) as usize),
            127 => break,
            n => (2, n as usize),
        };
        out.push(opcode);
        raw = &raw[(header + len).min(raw.len())..];
    }
    out
}

fn transfer(amount: u64) -> Call {
    Call::TransferToma { recipient: Keypair::test_account(2).address(), amount }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_gets_408_and_holds_no_connection_slot() {
    let mut rpc = loopback_rpc();
    rpc.max_connections = 1;
    rpc.request_body_timeout = Duration::from_secs(2);
    let (net, _dir) = start(rpc, None).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "atoma_getChainInfo", "params": []}).to_string();

    // Bodies stop after 10 bytes; meanwhile the server's only slot is free for others.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(start_post(net.addr(), call.as_bytes(), 10).await);
    }
    net.client.get_chain_info().await.expect("served while other requests' bodies stall");
    let (status, _) = http(net.addr(), "GET", "/health", b"").await;
    assert_eq!(status, 200);

    for mut stream in stalled {
        let answer = String::from_utf8(read_until_closed(&mut stream).await).expect("text");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "{answer}");
        let error: Value = serde_json::from_str(body).expect("a JSON-RPC error");
        assert_eq!(error["id"], Value::Null);
        assert_eq!(error["error"]["code"], json!(codes::INVALID_REQUEST), "{error}");
        assert_eq!(error["error"]["data"]["name"], json!("ERequestBodyTimeout"), "{error}");
        assert_eq!(error["error"]["data"]["code"], json!(312_014_003), "{error}");
    }
    net.stop().await;
}

/// Bodies being read share a byte budget: one that does not fit is answered 429 at once, unread;
/// small ones still fit beside the big stalled ones; once the stalled ones time out, the budget
/// is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_cannot_buffer_more_than_the_budget() {
    let mut rpc = loopback_rpc();
    rpc.max_request_body_bytes = 4096;
    rpc.max_buffered_body_bytes = 10_000;
    // Long enough that the stalled bodies still hold their reservations while the third is
    // tried, even on a loaded machine (2 s was missed once in CI).
    rpc.request_body_timeout = Duration::from_secs(8);
    let (net, _dir) = start(rpc, None).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "atoma_getChainInfo", "params": []}).to_string();
    // A call padded with spaces to 4,000 bytes: valid JSON, and 40% of the budget.
    let big = format!("{call:<4000}");

    // Two big bodies stall after 10 bytes: 8,000 of the 10,000 bytes are reserved.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(start_post(net.addr(), big.as_bytes(), 10).await);
    }
    // A third big one does not fit; it is refused at once, its body unread. (Polled: the server
    // reserves for the stalled ones when it has parsed their headers.)
    let refused = tokio::time::timeout(DEADLINE, async {
        loop {
            let mut stream = start_post(net.addr(), big.as_bytes(), 0).await;
            let answer = String::from_utf8_lossy(&read_until_closed(&mut stream).await).to_string();
            if answer.starts_with("HTTP/1.1 429") {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a body beyond the budget is refused");
    assert!(refused.to_ascii_lowercase().contains("connection: close"), "{refused}");
    // A small call still fits beside them and is served.
    let (status, body) = http(net.addr(), "POST", "/", call.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).expect("JSON")["result"].is_object(), "{body}");

    // The stalled ones time out (408) and give their reservations back.
    for mut stream in stalled {
        let answer = String::from_utf8_lossy(&read_until_closed(&mut stream).await).to_string();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let (status, body) = http(net.addr(), "POST", "/", big.as_bytes()).await;
    assert_eq!(status, 200, "a big body is served once the budget is back: {body}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_that_arrives_within_the_timeout_is_served() {
    let mut rpc = loopback_rpc();
    rpc.request_body_timeout = Duration::from_secs(20);
    let (net, _dir) = start(rpc, None).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "atoma_getChainInfo", "params": []}).to_string();

    // The body comes a few bytes at a time.
    let mut slow = start_post(net.addr(), call.as_bytes(), 0).await;
    for piece in call.as_bytes().chunks(8) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        slow.write_all(piece).await.expect("writes");
    }
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(DEADLINE, slow.read(&mut answer)).await.expect("answered").expect("reads");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":7,"result""#), "{answer}");

    // Bodies over the limit are still refused, announced or not.
    let (status, error) = post(net.addr(), &" ".repeat(300 * 1024)).await;
    assert_eq!((status, &error["error"]["code"]), (413, &json!(codes::OVERSIZED_REQUEST)), "{error}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_finishes_its_first_request_is_closed() {
    let mut rpc = loopback_rpc();
    rpc.first_request_timeout = Duration::from_millis(500);
    let (net, _dir) = start(rpc, None).await;
    let mut stream = TcpStream::connect(net.addr()).await.expect("connects");
    stream.write_all(b"POST / HTTP/1.1\r\nHost: te").await.expect("writes");
    assert!(read_until_closed(&mut stream).await.is_empty(), "closed without an answer");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_sends_nothing_is_closed() {
    let mut rpc = loopback_rpc();
    rpc.max_connections = 1;
    rpc.ws_idle_timeout = Duration::from_millis(500);
    let (net, _dir) = start(rpc, None).await;

    // The only slot is held by a WebSocket that answers no ping: others are refused until the
    // server closes it (with a close frame, after its pings).
    let mut idle = open_websocket(net.addr()).await;
    let (status, _) = http(net.addr(), "GET", "/health", b"").await;
    assert_eq!(status, 200, "/health needs no slot");
    let (status, _) = post(net.addr(), r#"{"jsonrpc":"2.0","id":1,"method":"atoma_getChainInfo"}"#).await;
    assert_eq!(status, 429, "the slot is held");
    let frames = opcodes(&read_until_closed(&mut idle).await);
    assert!(frames.contains(&0x9), "no ping among {frames:?}");
    assert_eq!(frames.last(), Some(&0x8), "frames {frames:?}");
    net.client.get_chain_info().await.expect("the slot is free again");

    // So is one whose only call was answered long ago.
    let mut used = open_websocket(net.addr()).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_getChainInfo", "params": []});
    used.write_all(&text_frame(&call.to_string())).await.expect("writes");
    let frames = opcodes(&read_until_closed(&mut used).await);
    assert!(frames.contains(&0x1), "no answer among {frames:?}");
    assert_eq!(frames.last(), Some(&0x8), "frames {frames:?}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_closed_even_with_a_subscription() {
    let mut rpc = loopback_rpc();
    rpc.ws_idle_timeout = Duration::from_millis(500);
    let (net, _dir) = start(rpc, None).await;
    let mut silent = open_websocket(net.addr()).await;
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_subscribeEvents", "params": ["All"]});
    silent.write_all(&text_frame(&subscribe.to_string())).await.expect("writes");
    let frames = opcodes(&read_until_closed(&mut silent).await);
    assert!(frames.contains(&0x9) && frames.contains(&0x1), "no ping or no answer among {frames:?}");
    assert_eq!(frames.last(), Some(&0x8), "frames {frames:?}");
    // Its subscription ended with it.
    let gone = async {
        loop {
            let (_, metrics) = http(net.addr(), "GET", "/metrics", b"").await;
            if metrics.contains("atoma_rpc_active_subscriptions 0\n") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, gone).await.expect("the subscription ends");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_that_answer_pings_stay_open() {
    let mut rpc = loopback_rpc();
    rpc.ws_idle_timeout = Duration::from_millis(300);
    // Each transaction waits up to 2 s for its block: many idle timeouts.
    let (net, _dir) = start(rpc, Some(2_000)).await;
    let chain_id = net.chain.node().chain_info().chain_id.0;

    // jsonrpsee's client answers pings: a subscription, and a connection for calls.
    let mut events = net.client.subscribe_events(&EventFilter::All).await.expect("subscribes");
    let ws =
        jsonrpsee_ws_client::WsClientBuilder::default().build(net.server.ws_url()).await.expect("connects");
    for nonce in 0..2 {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let signed = user().sign_call(chain_id, nonce, transfer(nonce + 1));
        let params = jsonrpsee::rpc_params![b64.encode(&signed.tx_bytes), b64.encode(&signed.signature)];
        let result: Value = tokio::time::timeout(DEADLINE, ws.request("atoma_executeTransaction", params))
            .await
            .expect("answered")
            .expect("executed over a WebSocket kept open while the call waited");
        assert_eq!(result["status"], json!("success"), "{result}");
        // The subscription's connection stayed open through the quiet time before the block.
        let event = tokio::time::timeout(DEADLINE, events.next()).await.expect("an event").expect("open");
        assert_eq!(event.expect("an event").id.tx_digest, result["digest"].as_str().expect("digest"));
    }
    // With nothing in progress, the connection stays too: it answers the pings.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let info: Value =
        ws.request("atoma_getChainInfo", jsonrpsee::rpc_params![]).await.expect("the same connection serves");
    assert_eq!(info["chainId"], json!(net.chain.node().chain_info().chain_id.to_string()), "{info}");
    assert!(ws.is_connected());
    events.unsubscribe().await.expect("unsubscribes");
    net.stop().await;
}

#[tokio::test]
async fn zero_timeouts_and_a_budget_below_one_body_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (chain, task) = atoma_ledger::Chain::open(chain_config(dir.path())).expect("chain opens");
    let zeroed: [fn(&mut RpcConfig); 4] = [
        |rpc| rpc.first_request_timeout = Duration::ZERO,
        |rpc| rpc.request_body_timeout = Duration::ZERO,
        |rpc| rpc.ws_idle_timeout = Duration::ZERO,
        |rpc| rpc.max_buffered_body_bytes = u64::from(rpc.max_request_body_bytes) - 1,
    ];
    for zero in zeroed {
        let mut rpc = loopback_rpc();
        zero(&mut rpc);
        let refused = serve(chain.clone(), rpc).await.expect_err("refused");
        assert!(matches!(refused, ServeError::InvalidConfig(_)), "{refused}");
    }
    chain.shutdown();
    drop(chain);
    let _ = task.join();
}
