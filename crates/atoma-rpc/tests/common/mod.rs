//! Shared by the integration tests: a real chain in a temp dir served on an ephemeral loopback
//! port, a raw HTTP helper, and a protocol lifecycle driven through the client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use atoma_api::rpc::TransactionResult;
use atoma_api::{BadgeKindView, EventEnvelope};
use atoma_client::{Client, EventStream};
use atoma_contract::{
    AdminOp, Call, EchelonId, EchelonParams, NodeSmallId, ObjectId, StackSmallId, TOMA, TaskSmallId,
};
use atoma_ledger::genesis::ADMIN_ALIAS;
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask, Keystore};
use atoma_rpc::{RpcConfig, RpcServerHandle, serve};
use atoma_types::{Digest, EventFilter, Keypair};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MODEL: &str = "llama-3";
pub const NODE: NodeSmallId = NodeSmallId(1);
pub const TASK: TaskSmallId = TaskSmallId(1);
pub const STACK: StackSmallId = StackSmallId(1);
pub const PRICE: u64 = 10;
pub const UNITS: u64 = 100;
pub const CLAIMED: u64 = 50;

/// A running chain and server.
pub struct Net {
    pub chain: ChainHandle,
    pub task: ChainTask,
    pub server: RpcServerHandle,
    pub client: Client,
    pub admin: Keypair,
}

pub fn chain_config(dir: &Path) -> ChainConfig {
    let mut config = ChainConfig::local(dir);
    config.genesis.accounts = 3;
    config
}

/// The RPC defaults on `127.0.0.1:0`.
pub fn loopback_rpc() -> RpcConfig {
    RpcConfig::listening_on(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Opens (or reopens) the chain in `dir` with `config` and serves it on `127.0.0.1:0`.
pub async fn start_with(config: ChainConfig) -> Net {
    start_serving(config, loopback_rpc()).await
}

/// Opens (or reopens) the chain with `config` and serves it with `rpc`.
pub async fn start_serving(config: ChainConfig, rpc: RpcConfig) -> Net {
    let dir = config.data_dir.clone();
    let (chain, task) = Chain::open(config).expect("chain opens");
    let server = serve(chain.clone(), rpc).await.expect("serves");
    let client = Client::new(&server.url()).expect("client");
    let keystore = Keystore::load(&dir.join(KEYSTORE_FILE)).expect("keystore");
    let admin = keystore.keypair(ADMIN_ALIAS).expect("readable").expect("admin key");
    Net { chain, task, server, client, admin }
}

pub async fn start(dir: &Path) -> Net {
    start_with(chain_config(dir)).await
}

impl Net {
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops the server, then the chain, and waits until the database is closed.
    pub async fn stop(self) {
        let Net { chain, task, server, client, .. } = self;
        drop(client);
        let data_dir = chain.keystore_path().parent().expect("the data directory").to_path_buf();
        server.stop();
        tokio::time::timeout(Duration::from_secs(10), server.stopped()).await.expect("server stops");
        chain.shutdown();
        drop(chain);
        tokio::task::spawn_blocking(move || task.join()).await.expect("joins").expect("chain thread ends");
        // The server's connection tasks may hold a handle a moment longer.
        tokio::task::spawn_blocking(move || Chain::wait_until_released(&data_dir, Duration::from_secs(30)))
            .await
            .expect("joins")
            .expect("the stopped chain releases its data directory");
    }
}

/// The node operator, the user and a third account: the local network's fixed test accounts.
pub fn operator() -> Keypair {
    Keypair::test_account(0)
}

pub fn user() -> Keypair {
    Keypair::test_account(1)
}

/// Signs and submits; the contract must accept.
pub async fn ok(client: &Client, key: &Keypair, call: Call) -> TransactionResult {
    let result = client.sign_and_execute(key, call.clone()).await.unwrap_or_else(|e| panic!("{call:?}: {e}"));
    assert!(result.is_success(), "{call:?} failed: {:?}", result.error);
    result
}

pub async fn manager_badge(client: &Client, admin: &Keypair) -> ObjectId {
    let badges = client.get_owned_badges(&admin.address()).await.expect("badges");
    badges.iter().find(|b| b.kind == BadgeKindView::AtomaManagerBadge).map(|b| b.id).expect("manager badge")
}

/// What the lifecycle did.
pub struct Lifecycle {
    pub create_task: TransactionResult,
    pub buy: TransactionResult,
    pub early_claim: TransactionResult,
    pub settle: TransactionResult,
    pub claim: TransactionResult,
}

/// Admin adds a model and an echelon; a node registers, serves the model and subscribes to a
/// task the user creates; the user buys a stack; the node settles it, the epoch advances and the
/// node claims. One early claim fails in the contract.
pub async fn run_lifecycle(net: &Net) -> Lifecycle {
    let (client, admin, node, user) = (&net.client, &net.admin, &operator(), &user());
    let badge = manager_badge(client, admin).await;
    let admin_op = |op| Call::Admin { manager_badge: badge, op };
    ok(client, admin, admin_op(AdminOp::AddModel { name: MODEL.into(), modality: 0 })).await;
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 1,
        relative_performance: 1,
        // The dispute window's floor in time: a millisecond, so the claim after the epoch advance
        // is not held back.
        settlement_timeout_ms: 1,
    };
    let echelon = EchelonId(1);
    ok(client, admin, admin_op(AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon, params })).await;
    ok(client, node, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 }).await;
    ok(client, node, Call::AddNodeToModel { node: NODE, model_name: MODEL.into(), echelon }).await;
    let create_task = ok(client, user, create_task_call()).await;
    let subscribe = Call::SubscribeNodeToTask {
        node: NODE,
        task: TASK,
        price_per_compute_unit: PRICE,
        max_num_compute_units: 1000,
    };
    ok(client, node, subscribe).await;
    let buy_call =
        Call::AcquireNewStack { task: TASK, num_compute_units: UNITS, max_price_per_compute_unit: PRICE };
    let buy = ok(client, user, buy_call).await;
    let early_claim = client
        .sign_and_execute(node, Call::ClaimFunds { node: NODE, stacks: vec![STACK] })
        .await
        .expect("executed");
    let settle = ok(
        client,
        node,
        Call::TrySettleStack {
            node: NODE,
            stack: STACK,
            num_claimed_compute_units: CLAIMED,
            committed_stack_proof: vec![1; 32],
            stack_merkle_leaf: vec![2; 32],
            tee_signature: None,
        },
    )
    .await;
    client.advance_epoch().await.expect("epoch advances");
    let claim = ok(client, node, Call::ClaimFunds { node: NODE, stacks: vec![STACK] }).await;
    Lifecycle { create_task, buy, early_claim, settle, claim }
}

pub fn create_task_call() -> Call {
    Call::CreateTask {
        role: 0,
        model_name: Some(MODEL.into()),
        security_level: 0,
        minimum_reputation_score: None,
        required_optimizations: 0,
    }
}

/// Every event matching `filter`, oldest first, walking pages of `limit`.
pub async fn walk_events(
    client: &Client,
    filter: &EventFilter,
    limit: u64,
    descending: bool,
) -> Vec<EventEnvelope> {
    let mut out: Vec<EventEnvelope> = Vec::new();
    let mut cursor = None;
    loop {
        let page = client.query_events(filter, cursor.as_ref(), Some(limit), descending).await.expect("page");
        assert!(page.data.len() as u64 <= limit);
        if let (Some(last), Some(first)) = (out.last(), page.data.first()) {
            assert_ne!(last.id, first.id, "cursors are exclusive");
        }
        out.extend(page.data);
        cursor = page.next_cursor;
        if !page.has_next_page {
            return out;
        }
    }
}

/// Reads `n` events from `stream`, failing after a few seconds of silence.
pub async fn take(stream: &mut EventStream, n: usize) -> Vec<EventEnvelope> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        let event = next.expect("an event within 5 s").expect("the stream is open").expect("decodes");
        out.push(event);
    }
    out
}

/// Every event committed after the genesis, oldest first.
pub async fn events_after_genesis(client: &Client, chain_id: Digest) -> Vec<EventEnvelope> {
    let all = walk_events(client, &EventFilter::All, 1000, false).await;
    all.into_iter().filter(|e| e.id.tx_digest != chain_id.to_string()).collect()
}

/// A plain HTTP/1.1 request; returns the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The server may answer an oversized body before reading it all and close; that is fine.
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(body) } else { body.to_string() })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// POSTs a JSON-RPC body; returns the HTTP status and the parsed answer.
pub async fn post(addr: SocketAddr, body: &str) -> (u16, Value) {
    let (status, text) = http(addr, "POST", "/", body.as_bytes()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A JSON-RPC call by raw HTTP; returns the whole response object.
pub async fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    post(addr, &body.to_string()).await.1
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8 on Linux), so
/// that one test can be several peers.
pub async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((from, 0))).expect("binds the client address");
    socket.connect(addr).await.expect("connects")
}

/// A WebSocket handshake by hand on `stream`; returns the status line's code and the head.
pub async fn ws_handshake(stream: &mut TcpStream) -> (u16, String) {
    let request = "GET / HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("the handshake answer"));
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

/// A client's text frame, masked with a zero key (so the payload stays readable).
pub fn masked_text(payload: &str) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.extend_from_slice(&[0x80 | n as u8]),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload.as_bytes());
    frame
}

/// One frame a server sent: its opcode and payload; `None` when the connection ended.
pub async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => u64::from(stream.read_u16().await.ok()?),
        127 => stream.read_u64().await.ok()?,
        n => u64::from(n),
    };
    let mut payload = vec![0; usize::try_from(len).ok()?];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[0] & 0x0f, payload))
}

/// The value of the counter or gauge `name` in the server's `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let (_, text) = http(addr, "GET", "/metrics", b"").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}
