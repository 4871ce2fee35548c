//! Well-behaved clients keep working while one hostile address tries every trick at once: it
//! opens WebSockets up to its per-address limit and past it, subscribes past its subscription
//! limit, subscribes and never reads, and sends oversized and malformed bodies in a loop. The
//! well-behaved clients come from other loopback addresses (127.0.0.2, 127.0.0.3): every one of
//! their transactions and reads is answered with a result, and their subscriber gets every event
//! in the log's order. Nothing here asserts a latency; the percentiles are printed for
//! information (`cargo test -p atoma-rpc --test hostile_load -- --nocapture`).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use atoma_api::EventEnvelope;
use atoma_contract::Call;
use atoma_rpc::RpcErrorName;
use atoma_types::{EventFilter, Keypair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOSTILE: [u8; 4] = [127, 0, 0, 1];
const FRIENDLY: [[u8; 4]; 2] = [[127, 0, 0, 2], [127, 0, 0, 3]];
const PER_ADDRESS: u32 = 16;
const SUBSCRIPTIONS_PER_ADDRESS: u32 = 8;
/// Each well-behaved client sends transfers until the non-reader has been cut, at most this many.
const MAX_TRANSFERS_PER_CLIENT: u64 = 4_000;
const DEADLINE: Duration = Duration::from_secs(30);

/// A JSON-RPC POST from `from`; the status and the parsed body (a string when not JSON).
async fn post_from(from: [u8; 4], addr: SocketAddr, body: &[u8]) -> (u16, Value) {
    let mut stream = connect_from(from, addr).await;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn request(method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string().into_bytes()
}

/// The next text frame's JSON (pings and pongs skipped).
async fn next_text(stream: &mut TcpStream) -> Value {
    loop {
        let (opcode, payload) =
            tokio::time::timeout(DEADLINE, read_frame(stream)).await.expect("a frame").expect("open");
        if opcode == 0x1 {
            return serde_json::from_slice(&payload).expect("JSON");
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One well-behaved client: transfers, each followed by a read, all over HTTP from `from`.
async fn friendly_client(
    from: [u8; 4],
    addr: SocketAddr,
    key: Keypair,
    chain_id: [u8; 32],
    cut: Arc<AtomicBool>,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for nonce in 0..MAX_TRANSFERS_PER_CLIENT {
        if cut.load(Ordering::Relaxed) {
            break;
        }
        let call = Call::TransferToma { recipient: Keypair::test_account(2).address(), amount: 1 };
        let signed = key.sign_call(chain_id, nonce, call);
        let params = json!([STANDARD.encode(&signed.tx_bytes), STANDARD.encode(&signed.signature)]);
        let started = Instant::now();
        let (status, answer) = post_from(from, addr, &request("atoma_executeTransaction", params)).await;
        latencies.push(started.elapsed());
        assert_eq!((status, &answer["result"]["status"]), (200, &json!("success")), "{answer}");
        let started = Instant::now();
        let (status, answer) =
            post_from(from, addr, &request("atoma_getBalance", json!([key.address().to_string()]))).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200, "{answer}");
        assert!(answer["result"]["balance"].is_string(), "{answer}");
    }
    latencies
}

/// The well-behaved subscriber: a raw WebSocket from `from` that reads every frame.
async fn friendly_subscriber(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, addr).await;
    assert_eq!(ws_handshake(&mut stream).await.0, 101);
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_subscribeEvents", "params": ["All"]});
    stream.write_all(&masked_text(&subscribe.to_string())).await.expect("writes");
    let answer = next_text(&mut stream).await;
    assert!(answer["result"].is_number(), "{answer}");
    stream
}

#[derive(Default, Debug)]
struct Hostile {
    websockets_accepted: u32,
    websockets_refused_named: u32,
    subscriptions_accepted: u32,
    subscriptions_refused_named: u32,
    bad_bodies: u64,
    bad_bodies_answered: u64,
}

/// The hostile address's connections and subscriptions, held until the end.
async fn hostile_connections(addr: SocketAddr, tally: &mut Hostile) -> Vec<TcpStream> {
    let mut held = Vec::new();
    // One subscriber that never reads, with a small receive window.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    socket.bind(SocketAddr::from((HOSTILE, 0))).expect("binds");
    let mut never_reads = socket.connect(addr).await.expect("connects");
    assert_eq!(ws_handshake(&mut never_reads).await.0, 101);
    let subscribe = json!({"jsonrpc": "2.0", "id": 1, "method": "atoma_subscribeEvents", "params": ["All"]});
    never_reads.write_all(&masked_text(&subscribe.to_string())).await.expect("writes");
    // Its answer is the last frame it reads.
    assert!(next_text(&mut never_reads).await["result"].is_number());
    tally.subscriptions_accepted += 1;
    held.push(never_reads);
    tally.websockets_accepted += 1;
    // WebSockets up to the limit and 8 past it; every one past is 429, named.
    for _ in 0..PER_ADDRESS + 7 {
        let mut ws = connect_from(HOSTILE, addr).await;
        let (status, head) = ws_handshake(&mut ws).await;
        if status == 101 {
            tally.websockets_accepted += 1;
            held.push(ws);
            continue;
        }
        assert_eq!(status, 429, "{head}");
        let mut body = Vec::new();
        let _ = tokio::time::timeout(DEADLINE, ws.read_to_end(&mut body)).await;
        let body: Value = serde_json::from_slice(&body).expect("a JSON-RPC error body");
        assert_eq!(body["error"]["data"]["name"], json!(RpcErrorName::ETooManyConnectionsFromAddress.name()));
        tally.websockets_refused_named += 1;
    }
    // Subscriptions on every other accepted WebSocket, past the address's limit.
    for (i, ws) in held.iter_mut().enumerate().skip(1) {
        let subscribe =
            json!({"jsonrpc": "2.0", "id": i, "method": "atoma_subscribeEvents", "params": ["All"]});
        ws.write_all(&masked_text(&subscribe.to_string())).await.expect("writes");
        let answer = next_text(ws).await;
        if answer["result"].is_number() {
            tally.subscriptions_accepted += 1;
        } else {
            let name = &answer["error"]["data"]["name"];
            assert_eq!(name, &json!(RpcErrorName::ETooManySubscriptionsFromAddress.name()), "{answer}");
            tally.subscriptions_refused_named += 1;
        }
    }
    held
}

/// Oversized and malformed bodies from the hostile address until `stop`.
async fn hostile_bodies(addr: SocketAddr, stop: Arc<AtomicBool>) -> (u64, u64) {
    let bodies: Vec<Vec<u8>> = vec![
        vec![b'['; 300 * 1024],
        b"{".to_vec(),
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":".to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"a string\"".to_vec(),
        b"\xff\xfe".to_vec(),
    ];
    let (mut sent, mut answered) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        for body in &bodies {
            let (status, answer) = post_from(HOSTILE, addr, body).await;
            sent += 1;
            // An answer, never a result: an error body, or a refusal (413 too large, 429 busy).
            let refused = matches!(status, 400 | 413 | 429) || answer.get("error").is_some();
            let is_error = answer.get("result").is_none()
                && (answer.get("error").is_some() || answer.as_array().is_some_and(|a| !a.is_empty()));
            assert!(status != 0 && refused && is_error, "{status} {answer}");
            answered += 1;
        }
    }
    (sent, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_clients_are_served_while_one_address_attacks() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rpc = loopback_rpc();
    rpc.max_connections_per_address = PER_ADDRESS;
    rpc.max_subscriptions_per_address = SUBSCRIPTIONS_PER_ADDRESS;
    rpc.ws_send_buffer_bytes = 64 * 1024;
    let net = start_serving(chain_config(dir.path()), rpc).await;
    let addr = net.addr();
    let chain_id = net.client.get_chain_info().await.expect("info").chain_id;

    let mut subscriber = friendly_subscriber(FRIENDLY[1], addr).await;
    // Reads as events come, until it has as many as the log will hold (told at the end).
    let (total_tx, mut total_rx) = tokio::sync::oneshot::channel::<usize>();
    let reader = tokio::spawn(async move {
        let mut events: Vec<EventEnvelope> = Vec::new();
        let mut total = None;
        while total.is_none_or(|n| events.len() < n) {
            let frame = tokio::select! {
                frame = read_frame(&mut subscriber) => frame,
                n = &mut total_rx, if total.is_none() => { total = Some(n.expect("the total")); continue }
            };
            let (opcode, payload) = frame.expect("the subscriber's connection stays open");
            if opcode == 0x1 {
                let message: Value = serde_json::from_slice(&payload).expect("JSON");
                let event = message.pointer("/params/result").expect("a notification").clone();
                events.push(serde_json::from_value(event).expect("an envelope"));
            }
        }
        events
    });

    let mut hostile = Hostile::default();
    let held = hostile_connections(addr, &mut hostile).await;
    let stop = Arc::new(AtomicBool::new(false));
    let bodies = tokio::spawn(hostile_bodies(addr, Arc::clone(&stop)));
    // Watches for the non-reader's cut (`/metrics` takes no slot, so any address may read it).
    let cut = Arc::new(AtomicBool::new(false));
    let watcher = {
        let cut = Arc::clone(&cut);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && metric(addr, "atoma_rpc_websockets_cut_total").await == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            cut.store(true, Ordering::Relaxed);
        })
    };
    let clients: Vec<_> = [(FRIENDLY[0], user()), (FRIENDLY[1], operator())]
        .into_iter()
        .map(|(from, key)| tokio::spawn(friendly_client(from, addr, key, chain_id.0, Arc::clone(&cut))))
        .collect();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.expect("a well-behaved client finished"));
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.expect("the watcher");
    let (bad_bodies, bad_bodies_answered) = bodies.await.expect("the bodies task");
    hostile.bad_bodies = bad_bodies;
    hostile.bad_bodies_answered = bad_bodies_answered;

    // Every event, in the log's order, to the subscriber that reads. The log is read in
    // process: the hostile address (127.0.0.1, the test client's too) is full.
    let mut expected: Vec<(String, u64)> = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            net.chain.ledger().query_events(&EventFilter::All, cursor, Some(1000), false).expect("the log");
        let records = page.data.iter().filter(|e| e.id.tx_digest != chain_id);
        expected.extend(records.map(|e| (e.id.tx_digest.to_string(), e.id.event_seq)));
        cursor = page.next_cursor;
        if !page.has_next_page {
            break;
        }
    }
    let _ = total_tx.send(expected.len());
    let delivered =
        tokio::time::timeout(DEADLINE, reader).await.expect("every event within 30 s").expect("reader");
    let got: Vec<(String, u64)> =
        delivered.iter().map(|e| (e.id.tx_digest.clone(), e.id.event_seq)).collect();
    assert_eq!(got, expected, "no gap, no repeat, in order");
    // The hostile address got its share and no more, each refusal named.
    assert_eq!(hostile.websockets_accepted, PER_ADDRESS);
    assert_eq!(hostile.websockets_refused_named, 8);
    assert_eq!(hostile.subscriptions_accepted, SUBSCRIPTIONS_PER_ADDRESS, "the non-reader's among them");
    assert_eq!(hostile.subscriptions_refused_named, PER_ADDRESS - SUBSCRIPTIONS_PER_ADDRESS);
    assert!(hostile.bad_bodies > 0 && hostile.bad_bodies == hostile.bad_bodies_answered);
    let cut = metric(addr, "atoma_rpc_websockets_cut_total").await;
    assert!(cut >= 1, "the non-reader was not cut after {} events", expected.len());
    drop(held);

    latencies.sort();
    println!(
        "well-behaved: {} requests answered; latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?} \
         (information, not asserted)",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
        latencies.last().expect("some"),
    );
    println!(
        "hostile: WebSockets accepted {} / refused 429 ETooManyConnectionsFromAddress {}; \
         subscriptions accepted {} / refused ETooManySubscriptionsFromAddress {}; \
         oversized and malformed bodies sent {} / answered {}; non-readers cut {cut}; \
         events delivered to the reader {}; wall time {:?}",
        hostile.websockets_accepted,
        hostile.websockets_refused_named,
        hostile.subscriptions_accepted,
        hostile.subscriptions_refused_named,
        hostile.bad_bodies,
        hostile.bad_bodies_answered,
        delivered.len(),
        started.elapsed(),
    );
    net.stop().await;
}
