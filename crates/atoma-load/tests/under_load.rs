//! The bounded load test (issue "Reliability", item 6): a real chain in a temp dir and the real
//! RPC server on an ephemeral loopback port; well-behaved clients send valid transactions while
//! misbehaving clients, at the same time, send garbage, malformed JSON, bodies over the limit,
//! requests that never finish, idle WebSockets up to and beyond the connection limit, and floods
//! of invalid signatures.
//!
//! It asserts that every request of the well-behaved clients completes (an answer within 60 s;
//! busy answers are retried), that the mempool bound holds and busy answers appear instead of
//! growth, that memory stays bounded, and that nothing acknowledged is lost — also after a
//! restart. No assertion is about speed.
//!
//! Sizes are small in debug builds and twenty times larger in release; `ATOMA_LOAD_SCALE`
//! multiplies them (`ATOMA_LOAD_SCALE=4 cargo test --release -p atoma-load --test under_load`).
//! The figures are printed; docs/RELIABILITY.md "Under load" quotes them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atoma_api::AuditView;
use atoma_client::{Client, ClientError};
use atoma_contract::{Address, Call, TOMA};
use atoma_ledger::{ChainConfig, ChainHandle};
use atoma_load::{Accounts, LoadConfig, Phase, Report, Stop, Transport, Workload};
use atoma_types::{Keypair, SignedTransaction};
use jsonrpsee::core::client::ClientT;
use support::*;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Transactions the mempool holds, and how often blocks are made: small and slow enough that the
/// load overflows the mempool between blocks (a debug build checks signatures many times more
/// slowly, so its server admits far fewer transactions per second).
const MEMPOOL: usize = if cfg!(debug_assertions) { 8 } else { 32 };
const BLOCK_TIME_MS: u64 = if cfg!(debug_assertions) { 500 } else { 50 };
/// Forged transactions per round of the invalid-signature flood, and the pause between rounds:
/// each costs the server a signature verification, which a debug build cannot afford by the
/// thousand.
const FORGED_PER_ROUND: usize = if cfg!(debug_assertions) { 2 } else { 16 };
const FORGED_PAUSE: Duration = Duration::from_millis(if cfg!(debug_assertions) { 200 } else { 0 });
/// The pause between two bodies over the limit (each is 300–400 KiB of copying).
const HUGE_PAUSE: Duration = Duration::from_millis(20);
/// What the faucet gives each well-behaved account.
const FUNDING: u64 = 2_000 * TOMA;
/// Stalled requests and idle WebSockets held for the whole run (below the connection limit:
/// see `stalled_request_bodies_do_not_lock_out_other_clients`).
const STALLED_BODIES: usize = 16;
const STALLED_HEADERS: usize = 32;
const IDLE_WEBSOCKETS_KEPT: usize = 8;

fn scale() -> f64 {
    let by_build = if cfg!(debug_assertions) { 1.0 } else { 20.0 };
    let by_env: f64 = std::env::var("ATOMA_LOAD_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    by_build * by_env.max(0.01)
}

fn scaled(n: u64) -> u64 {
    ((n as f64 * scale()).round() as u64).max(1)
}

/// What one kind of misbehaving client did.
#[derive(Default, Debug)]
struct Tally {
    requests: u64,
    outcomes: BTreeMap<String, u64>,
    hung: u64,
}

impl Tally {
    fn count(&mut self, outcome: impl Into<String>) {
        self.requests += 1;
        *self.outcomes.entry(outcome.into()).or_default() += 1;
    }

    fn raw(&mut self, raw: Raw) {
        if raw == Raw::Hung {
            self.hung += 1;
        }
        self.count(format!("{raw:?}"));
    }

    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.hung += other.hung;
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }
}

/// Bodies that are not valid calls; each must get a JSON-RPC error.
fn malformed_bodies() -> Vec<Vec<u8>> {
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"atoma_getChainInfo","params":[]}"#;
    let mut bodies: Vec<Vec<u8>> = [
        r#"{"jsonrpc": "2.0", "id": 1, "method": "#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_executeTransaction","params":[1,2]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_executeTransaction","params":["AAAA","AAAA"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_executeTransaction","params":["!!!","???"]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_getBalance","params":{"address":null}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_getTask","params":[-1]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"atoma_queryEvents","params":[{"Planet":"Mars"},null,99999999999999999999]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"\u0000\uffff","params":[]}"#,
        r#"{"jsonrpc":"2.0","id":{"nested":[1,2]},"method":"atoma_getDb"}"#,
        r#"{"jsonrpc":"2.0","method":"atoma_faucet","params":["0x00"]}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"atoma_getDb","params":[]}"#,
        r#"[]"#,
        r#""just a string""#,
        r#"null"#,
        r#"12345"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    bodies.push(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\xfd\"}".to_vec());
    bodies.push(vec![b'['; 100_000]);
    bodies.push(format!("[{}]", vec![call; 33].join(",")).into_bytes());
    let many = vec!["1"; 20_000].join(",");
    bodies.push(
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"atoma_getBalance","params":[{many}]}}"#).into_bytes(),
    );
    bodies
}

/// Random bytes, random bodies and malformed JSON, one request after another.
async fn garbage(addr: SocketAddr, seed: u64, stop: Arc<AtomicBool>) -> (Tally, Tally) {
    let (mut random, mut malformed) = (Tally::default(), Tally::default());
    let bodies = malformed_bodies();
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        match rng.below(3) {
            0 => {
                let len = 1 + rng.below(4096) as usize;
                random.raw(raw_exchange_then_close(addr, &rng.bytes(len)).await.0);
            }
            1 => {
                let len = 1 + rng.below(8192) as usize;
                random.raw(raw_exchange(addr, &post(&rng.bytes(len))).await.0);
            }
            _ => {
                let body = &bodies[rng.below(bodies.len() as u64) as usize];
                let (raw, text) = raw_exchange(addr, &post(body)).await;
                if raw == Raw::Status(200) {
                    // An error; or `null` for a call jsonrpsee reads as a notification (an id
                    // that is an object, no id at all).
                    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                    assert!(body.contains("\"error\"") || body == "null", "a malformed call got {text}");
                    assert!(!body.contains("\"result\""), "a malformed call got a result: {text}");
                }
                malformed.raw(raw);
            }
        }
    }
    (random, malformed)
}

/// Bodies over the 256 KiB limit: a whole one, and one that announces 1 GiB.
async fn huge_bodies(addr: SocketAddr, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    let whole = post(
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"atoma_getDb","params":["{}"]}}"#,
            "a".repeat(300 << 10)
        )
        .as_bytes(),
    );
    let mut announced = b"POST / HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\nConnection: close\r\n\r\n".to_vec();
    announced.extend(vec![b'['; 400 << 10]);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let raw = raw_exchange(addr, if i.is_multiple_of(2) { &whole } else { &announced }).await.0;
        assert!(matches!(raw, Raw::Status(413 | 429) | Raw::Closed), "an oversized body got {raw:?}");
        tally.raw(raw);
        i += 1;
        tokio::time::sleep(HUGE_PAUSE).await;
    }
    tally
}

/// Transfers with a flipped signature bit (or signed by the wrong key), over HTTP and over one
/// WebSocket with many in flight. Each must be refused with `EBadSignature` (or busy).
async fn bad_signatures(url: String, chain_id: [u8; 32], stop: Arc<AtomicBool>) -> Tally {
    let sender = Keypair::test_account(900);
    let thief = Keypair::test_account(901);
    let forged: Vec<SignedTransaction> = (0..32u64)
        .map(|i| {
            let call = Call::TransferToma { recipient: thief.address(), amount: 1 };
            let mut signed = sender.sign_call(chain_id, i, call.clone());
            if i % 4 == 0 {
                // Signed by someone else for the sender.
                signed = atoma_types::Transaction { chain_id, sender: sender.address(), nonce: i, call }
                    .sign(thief.signing_key());
            } else {
                signed.signature[1 + (i as usize % 64)] ^= 1 << (i % 8);
            }
            signed
        })
        .collect();
    let params = |s: &SignedTransaction| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        jsonrpsee::rpc_params![b64.encode(&s.tx_bytes), b64.encode(&s.signature)]
    };
    let http = Client::new(&url).expect("client");
    let ws = jsonrpsee_ws_client::WsClientBuilder::default()
        .build(url.replace("http://", "ws://"))
        .await
        .expect("the flood's WebSocket connects");
    let ws = Arc::new(ws);
    let mut tally = Tally::default();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let mut batch = JoinSet::new();
        for k in 0..FORGED_PER_ROUND {
            let (ws, p) = (Arc::clone(&ws), params(&forged[(round + k) % forged.len()]));
            batch.spawn(async move {
                let answer = tokio::time::timeout(
                    REQUEST_DEADLINE,
                    ws.request::<serde_json::Value, _>("atoma_executeTransaction", p),
                )
                .await;
                match answer {
                    Err(_) => "hung".to_string(),
                    Ok(Ok(v)) => panic!("a forged transaction was accepted: {v}"),
                    Ok(Err(jsonrpsee::core::client::Error::Call(e))) => e
                        .data()
                        .and_then(|d| serde_json::from_str::<atoma_api::ErrorView>(d.get()).ok())
                        .map_or_else(|| format!("rpc {}", e.code()), |v| v.name),
                    Ok(Err(e)) => format!("ws error: {e}"),
                }
            });
        }
        let over_http =
            tokio::time::timeout(REQUEST_DEADLINE, http.execute_transaction(&forged[round % forged.len()]))
                .await;
        let name = match over_http {
            Err(_) => "hung".to_string(),
            Ok(Ok(r)) => panic!("a forged transaction was accepted: {r:?}"),
            Ok(Err(e)) => client_error_name(&e),
        };
        tally.count(name);
        while let Some(name) = batch.join_next().await {
            tally.count(name.expect("joins"));
        }
        round += 1;
        tokio::time::sleep(FORGED_PAUSE).await;
    }
    tally.hung = tally.outcomes.get("hung").copied().unwrap_or(0);
    tally
}

fn client_error_name(e: &ClientError) -> String {
    match e {
        ClientError::Transport(t) if t.contains("429") => "HTTP 429".into(),
        other => other.name().map_or_else(|| format!("{other}"), str::to_string),
    }
}

/// Reads over HTTP, one after another: every one must be answered (busy counts as an answer).
async fn readers(url: String, addr: SocketAddr, watched: Address, stop: Arc<AtomicBool>) -> Tally {
    let client = Client::new(&url).expect("client");
    let mut tally = Tally::default();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let outcome = match i % 3 {
            0 => tokio::time::timeout(REQUEST_DEADLINE, client.get_chain_info()).await.map(|r| r.map(|_| ())),
            1 => tokio::time::timeout(REQUEST_DEADLINE, client.get_balance(&watched))
                .await
                .map(|r| r.map(|_| ())),
            _ => {
                let (raw, _) = raw_exchange(addr, &get("/health")).await;
                tally.raw(raw);
                i += 1;
                continue;
            }
        };
        match outcome {
            Err(_) => {
                tally.hung += 1;
                tally.count("hung");
            }
            Ok(Ok(())) => tally.count("ok"),
            Ok(Err(e)) => tally.count(client_error_name(&e)),
        }
        i += 1;
    }
    tally
}

/// WebSockets opened and left idle until the server refuses more; all but a few are closed again
/// after a while.
struct Burst {
    accepted: u64,
    refused: BTreeMap<String, u64>,
    kept: Vec<tokio::net::TcpStream>,
}

async fn websocket_burst(addr: SocketAddr, attempts: usize, hold: Duration) -> Burst {
    let mut open = Vec::new();
    let mut refused = BTreeMap::new();
    for _ in 0..attempts {
        match open_websocket(addr).await {
            Ok(stream) => open.push(stream),
            Err(raw) => {
                assert_ne!(raw, Raw::Hung, "a WebSocket handshake beyond the limit hung");
                *refused.entry(format!("{raw:?}")).or_default() += 1;
            }
        }
    }
    let accepted = open.len() as u64;
    tokio::time::sleep(hold).await;
    open.truncate(IDLE_WEBSOCKETS_KEPT);
    Burst { accepted, refused, kept: open }
}

/// The largest mempool the ledger's metrics showed while `stop` was not set.
async fn watch_mempool(chain: ChainHandle, stop: Arc<AtomicBool>, max: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        max.fetch_max(chain.ledger().metrics().snapshot().mempool_size, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn well_behaved(url: &str, transport: Transport, clients: usize, pipeline: usize, txs: u64) -> LoadConfig {
    let mut config = LoadConfig::new(url);
    config.transport = transport;
    config.concurrency = clients;
    config.pipeline = pipeline;
    config.stop = Stop::Transactions(txs);
    config.accounts = Accounts::Faucet { amount: FUNDING };
    config.record_results = true;
    config.retry_for = REQUEST_DEADLINE;
    config.request_timeout = REQUEST_DEADLINE;
    config.progress_interval = Duration::from_millis(50);
    config
}

/// Runs the load and tells `running` once its clients are connected and sending.
async fn run_reporting(config: LoadConfig, running: watch::Sender<bool>) -> Report {
    let mut told = false;
    let report = atoma_load::run(&config, |p| {
        if !told && p.phase == Phase::Running {
            told = true;
            let _ = running.send(true);
        }
    })
    .await;
    let _ = running.send(true);
    report.unwrap_or_else(|e| panic!("{} over {}: {e}", config.workload.name(), config.transport))
}

/// Every request of a well-behaved run was answered, and every transaction executed.
fn assert_served(report: &Report) {
    let what = format!("{} over {}", report.workload, report.transport);
    assert_eq!(report.errors, 0, "{what}: errors {:?}", report.errors_by_name);
    assert_eq!(report.executed(), report.sent, "{what}: not every transaction was answered");
    for name in ["timeout", "transport", "decode"] {
        assert!(
            !report.retries_by_name.contains_key(name),
            "{what}: {name} answers: {:?}",
            report.retries_by_name
        );
    }
    assert_eq!(report.results.len() as u64, report.executed(), "{what}: results recorded");
    assert!(report.latency.max() < REQUEST_DEADLINE, "{what}: a transaction took {:?}", report.latency.max());
}

/// Each answered transaction is on the chain, in the block and with the result it was answered.
fn assert_on_chain(chain: &ChainHandle, reports: &[&Report]) -> u64 {
    let mut checked = 0;
    for report in reports {
        for answered in &report.results {
            let stored = chain
                .ledger()
                .transaction(&answered.digest)
                .expect("storage reads")
                .unwrap_or_else(|| panic!("{} was answered but is not on the chain", answered.digest));
            assert_eq!(stored.outcome.sender, answered.sender);
            assert_eq!(stored.outcome.height, answered.block_height, "{}", answered.digest);
            assert_eq!(
                stored.outcome.status.error().map(|e| e.name().to_string()),
                answered.error,
                "{} was answered with another result",
                answered.digest
            );
            assert_eq!(stored.transaction.expect("signed").nonce, answered.nonce);
            checked += 1;
        }
    }
    checked
}

/// Transfers go around a ring of the run's accounts: together they still hold what they were
/// funded with.
fn assert_ring_conserved(chain: &ChainHandle, report: &Report) {
    let senders: BTreeSet<Address> = report.results.iter().map(|a| a.sender).collect();
    assert_eq!(senders.len(), report.concurrency, "every client sent");
    let total: u64 = chain.ledger().with_state(|db| senders.iter().map(|a| db.balance(a)).sum());
    assert_eq!(total, FUNDING * report.concurrency as u64, "the ring's balances do not add up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_clients_are_served_while_others_misbehave() {
    let test_start = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chain_config = ChainConfig::local(dir.path());
    chain_config.mempool_capacity = MEMPOOL;
    chain_config.block_time_ms = Some(BLOCK_TIME_MS);
    let rpc = loopback_rpc();
    let max_connections = rpc.max_connections as usize;
    let node = Node::start(chain_config.clone(), rpc).await;
    let (addr, url) = (node.addr(), node.server.url());
    let chain_id = node.chain.node().chain_info().chain_id.0;

    // Warm up (threads, pools, the first blocks), then take the memory baseline.
    let mut warmup = well_behaved(&url, Transport::WebSocket, 2, 1, 4);
    warmup.record_results = false;
    atoma_load::run(&warmup, |_| {}).await.expect("warm-up");
    let rss_before = rss_bytes();

    let stop = Arc::new(AtomicBool::new(false));
    let max_mempool = Arc::new(AtomicU64::new(0));
    let mempool_watch =
        tokio::spawn(watch_mempool(node.chain.clone(), Arc::clone(&stop), Arc::clone(&max_mempool)));

    // Requests that never finish, held for the whole run.
    let mut held = Vec::new();
    for _ in 0..STALLED_HEADERS {
        held.push(stalled(addr, None).await.expect("connects"));
    }
    for _ in 0..STALLED_BODIES {
        held.push(stalled(addr, Some(10_000)).await.expect("connects"));
    }

    // The misbehaving clients, until the well-behaved ones are done.
    let garbage_tasks: Vec<_> =
        (0..2).map(|i| tokio::spawn(garbage(addr, 0x5eed + i, Arc::clone(&stop)))).collect();
    let huge = tokio::spawn(huge_bodies(addr, Arc::clone(&stop)));
    let forged = tokio::spawn(bad_signatures(url.clone(), chain_id, Arc::clone(&stop)));
    let reads =
        tokio::spawn(readers(url.clone(), addr, Keypair::test_account(0).address(), Arc::clone(&stop)));

    // The well-behaved clients: transfers over WebSocket (pipelined) and over HTTP, and a market.
    let runs = [
        well_behaved(&url, Transport::WebSocket, 16, 2, scaled(120)),
        well_behaved(&url, Transport::Http, 8, 1, scaled(48)),
        LoadConfig {
            workload: Workload::Mix { advance_epoch_every: Some(Duration::from_millis(500)) },
            ..well_behaved(&url, Transport::WebSocket, 4, 2, scaled(48))
        },
    ];
    let mut started = Vec::new();
    let mut load = Vec::new();
    for config in runs {
        let (tx, rx) = watch::channel(false);
        started.push(rx);
        load.push(tokio::spawn(tokio::time::timeout(Duration::from_secs(300), run_reporting(config, tx))));
    }
    // Once the transfer clients are connected and sending, fill the connection limit with idle
    // WebSockets and go beyond it; hold them a while, then keep a few. (The market may still be
    // preparing: its connections wait for room.)
    for rx in &mut started[..2] {
        rx.wait_for(|running| *running).await.expect("the run reports");
    }
    let burst = websocket_burst(addr, max_connections + 32, Duration::from_secs(3)).await;

    let mut reports = Vec::new();
    for run in load {
        reports.push(run.await.expect("joins").expect("a well-behaved run finished within 300 s"));
    }
    stop.store(true, Ordering::Relaxed);
    let (mut random, mut malformed) = (Tally::default(), Tally::default());
    for task in garbage_tasks {
        let (r, m) = task.await.expect("joins");
        random.merge(r);
        malformed.merge(m);
    }
    let huge = huge.await.expect("joins");
    let forged = forged.await.expect("joins");
    let reads = reads.await.expect("joins");
    mempool_watch.await.expect("joins");
    let rss_after = rss_bytes();
    drop(burst.kept);
    drop(held);

    // Figures, for docs/RELIABILITY.md.
    let well_behaved_clients: usize = reports.iter().map(|r| r.concurrency).sum();
    let transactions: u64 = reports.iter().map(|r| r.sent).sum();
    let mut retried: BTreeMap<String, u64> = BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.retries_by_name {
            *retried.entry(k.clone()).or_default() += v;
        }
    }
    let growth = rss_after.saturating_sub(rss_before);
    println!("scale {}: {:.1} s", scale(), test_start.elapsed().as_secs_f64());
    println!(
        "well-behaved: {well_behaved_clients} clients, {transactions} transactions, retried answers {retried:?}"
    );
    for r in &reports {
        println!("{}", r.table());
    }
    println!("readers: {} requests {:?}", reads.requests, reads.outcomes);
    println!("random bytes: {} requests {:?}", random.requests, random.outcomes);
    println!("malformed JSON: {} requests {:?}", malformed.requests, malformed.outcomes);
    println!("bodies over the limit: {} requests {:?}", huge.requests, huge.outcomes);
    println!("invalid signatures: {} requests {:?}", forged.requests, forged.outcomes);
    println!("stalled requests held: {STALLED_HEADERS} in the headers, {STALLED_BODIES} in the body");
    println!(
        "idle WebSockets: {} accepted, refused {:?}, {IDLE_WEBSOCKETS_KEPT} kept to the end",
        burst.accepted, burst.refused
    );
    println!("mempool: capacity {MEMPOOL}, largest seen {}", max_mempool.load(Ordering::Relaxed));
    println!(
        "RSS: {} MiB before, {} MiB after, growth {:.1} MiB",
        rss_before >> 20,
        rss_after >> 20,
        growth as f64 / 1048576.0
    );

    // The well-behaved clients were served: every transaction answered, none lost.
    for r in &reports {
        assert_served(r);
    }
    assert_eq!(reads.hung, 0, "a read never completed");
    assert!(reads.outcomes.get("ok").copied().unwrap_or(0) > 0, "no read succeeded: {:?}", reads.outcomes);
    // The misbehaving clients got answers or closed connections, never silence.
    for (what, tally) in
        [("random", &random), ("malformed", &malformed), ("huge", &huge), ("forged", &forged)]
    {
        assert_eq!(tally.hung, 0, "{what}: requests never answered: {:?}", tally.outcomes);
        assert!(tally.requests > 0, "{what} sent nothing");
    }
    assert!(!malformed.outcomes.keys().any(|k| k.starts_with("Status(5")), "{:?}", malformed.outcomes);
    assert!(
        forged.outcomes.keys().all(|k| ["EBadSignature", "EMempoolFull", "HTTP 429"].contains(&k.as_str())),
        "forged transactions: {:?}",
        forged.outcomes
    );
    // The connection limit held, and refused (rather than hung) beyond it.
    assert!(burst.accepted as usize <= max_connections, "{} WebSockets accepted", burst.accepted);
    assert!(!burst.refused.is_empty(), "nothing was refused beyond the limit");
    assert!(burst.refused.keys().all(|k| k == "Status(429)"), "{:?}", burst.refused);
    // The mempool bound held, and overload was answered busy.
    assert!(max_mempool.load(Ordering::Relaxed) <= MEMPOOL as u64);
    assert!(retried.get("EMempoolFull").copied().unwrap_or(0) > 0, "no busy answer: {retried:?}");
    // Memory stayed bounded.
    assert!(growth < 512 << 20, "RSS grew by {} MiB", growth >> 20);

    // Nothing acknowledged is lost: on the chain now, and after a restart.
    let refs: Vec<&Report> = reports.iter().collect();
    let checked = assert_on_chain(&node.chain, &refs);
    assert_ring_conserved(&node.chain, &reports[0]);
    assert_ring_conserved(&node.chain, &reports[1]);
    assert!(node.chain.ledger().with_state(AuditView::new).holds, "the audit fails");
    let client = Client::new(&url).expect("client");
    assert!(client.audit().await.expect("the server still answers").holds);
    let height = node.chain.node().chain_info().height;
    node.stop().await;
    let mut reopen = chain_config;
    reopen.block_time_ms = None;
    let node = Node::start(reopen, loopback_rpc()).await;
    assert!(node.chain.node().chain_info().height >= height, "the restarted chain lost blocks");
    let replayed = node.chain.ledger().replay_from_genesis().expect("replays");
    assert_eq!(replayed, node.chain.ledger().state_digest(), "a replay from genesis gives another state");
    assert_eq!(assert_on_chain(&node.chain, &refs), checked);
    assert!(node.chain.ledger().with_state(AuditView::new).holds);
    println!("{checked} answered transactions found on the chain, before and after a restart");
    node.stop().await;
}

// Lock-outs the load test found in the server, now defended: each test holds every connection
// slot the way an attacker would and asserts that other clients are served again, and that the
// server answers or closes what held the slots.

/// A server with room for 8 connections and `timeouts` set, for the lock-out tests.
async fn small_node(dir: &std::path::Path, timeouts: impl FnOnce(&mut atoma_rpc::RpcConfig)) -> Node {
    let mut rpc = loopback_rpc();
    rpc.max_connections = 8;
    timeouts(&mut rpc);
    Node::start(ChainConfig::local(dir), rpc).await
}

/// Retries a read while the server answers busy (HTTP 429); `Err` with the last answer when
/// [`REQUEST_DEADLINE`] passes without a real answer.
async fn read_with_retries(url: &str) -> Result<Duration, String> {
    let client = Client::new(url).expect("client");
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < REQUEST_DEADLINE {
        match tokio::time::timeout(REQUEST_DEADLINE, client.get_chain_info()).await {
            Ok(Ok(_)) => return Ok(start.elapsed()),
            Ok(Err(e)) => last = client_error_name(&e),
            Err(_) => last = "hung".into(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last)
}

/// What the server sent on `stream` until it closed it: the HTTP status of its first line (0 if
/// none), or `Err` when it did not close the connection within [`REQUEST_DEADLINE`].
async fn until_closed(mut stream: tokio::net::TcpStream) -> Result<(u16, Vec<u8>), ()> {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    match tokio::time::timeout(REQUEST_DEADLINE, stream.read_to_end(&mut raw)).await {
        Err(_) => Err(()),
        Ok(_) => {
            let text = String::from_utf8_lossy(&raw);
            let status = text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)?.parse().ok()).unwrap_or(0);
            Ok((status, raw))
        }
    }
}

/// A request whose body never arrives used to hold one of the server's connection slots for as
/// long as the client kept the socket open: jsonrpsee takes the slot when the headers are in and
/// read the body inside it, with no read timeout, so `max_connections` such requests — from one
/// client, a few bytes each — locked every other HTTP client out (HTTP 429; measured at over 70 s
/// with the default 128 slots). Now the server reads a body whole before the request takes a
/// slot, within `request_body_timeout`, and answers 408 and closes when it does not arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_bodies_do_not_lock_out_other_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = small_node(dir.path(), |rpc| rpc.request_body_timeout = Duration::from_secs(1)).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(stalled(node.addr(), Some(10_000)).await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let served = read_with_retries(&node.server.url()).await;
    let mut stalled_got = BTreeMap::<String, u64>::new();
    for stream in held {
        let outcome = match until_closed(stream).await {
            Ok((status, _)) => format!("HTTP {status}, closed"),
            Err(()) => "still open".into(),
        };
        *stalled_got.entry(outcome).or_default() += 1;
    }
    node.stop().await;
    let waited = served.unwrap_or_else(|last| panic!("no answer within 60 s; the last was {last}"));
    println!("answered after {waited:?}; the stalled requests got {stalled_got:?}");
    assert_eq!(stalled_got, BTreeMap::from([("HTTP 408, closed".to_string(), 8)]));
}

/// An idle WebSocket used to hold a connection slot for as long as the client kept it open:
/// nothing timed out a connection that sends nothing, so `max_connections` idle WebSockets locked
/// every new client out — HTTP requests and new WebSockets alike got HTTP 429 — until they
/// disconnected. Now the server pings every WebSocket and closes one from which nothing at all —
/// no request, no pong — has come for `ws_idle_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_do_not_lock_out_other_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = small_node(dir.path(), |rpc| rpc.ws_idle_timeout = Duration::from_secs(1)).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(open_websocket(node.addr()).await.expect("within the limit"));
    }
    let served = read_with_retries(&node.server.url()).await;
    let mut closed = 0;
    for stream in idle {
        closed += u64::from(until_closed(stream).await.is_ok());
    }
    node.stop().await;
    let waited = served.unwrap_or_else(|last| panic!("no answer within 60 s; the last was {last}"));
    println!("answered after {waited:?}; {closed} of 8 idle WebSockets closed by the server");
    assert_eq!(closed, 8, "idle WebSockets left open");
}

// Problems the load test found in the server. Each test fails today; they are ignored so that the
// suite stays green, and each says what it expects. Run them with
// `cargo test -p atoma-load --test under_load -- --ignored`.

/// docs/LEDGER.md and docs/RPC.md say a client may pipeline nonces n, n+1, … without waiting for
/// blocks (`atoma_getNonce` counts the mempool for that purpose). The server handles the requests
/// in flight on one WebSocket concurrently (jsonrpsee spawns a task per message; on HTTP each
/// request has its own connection), so n+1 is often checked before n. It used to be refused with
/// `ENonceFuture`; now admission holds a nonce a little ahead for a moment
/// (`ChainConfig::nonce_hold_ms`, as Ethereum's queued transactions wait) and admits it once n is
/// in, so none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_nonces_on_one_websocket_are_admitted_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::start(ChainConfig::local(dir.path()), loopback_rpc()).await;
    let chain_id = node.chain.node().chain_info().chain_id.0;
    let ws =
        jsonrpsee_ws_client::WsClientBuilder::default().build(node.server.ws_url()).await.expect("connects");
    let key = Keypair::test_account(0);
    let mut refused = BTreeMap::<String, u64>::new();
    let rounds = 10u64;
    let depth = 8u64;
    for round in 0..rounds {
        let calls = (0..depth).map(|i| {
            let call = Call::TransferToma { recipient: Keypair::test_account(1).address(), amount: 1 };
            let signed = key.sign_call(chain_id, round * depth + i, call);
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let params = jsonrpsee::rpc_params![b64.encode(&signed.tx_bytes), b64.encode(&signed.signature)];
            ws.request::<serde_json::Value, _>("atoma_executeTransaction", params)
        });
        // All of a round go out in order on the one connection before any answer is read.
        let answers = futures_join(calls).await;
        for answer in answers {
            if let Err(jsonrpsee::core::client::Error::Call(e)) = answer {
                let name = e
                    .data()
                    .and_then(|d| serde_json::from_str::<atoma_api::ErrorView>(d.get()).ok())
                    .map_or_else(|| e.code().to_string(), |v| v.name);
                *refused.entry(name).or_default() += 1;
            }
        }
        // Whatever was refused left a gap; start the next round from the chain's nonce.
        let next = node.chain.next_nonce(&key.address());
        assert!(next <= (round + 1) * depth);
        if next < (round + 1) * depth {
            // Fill the gap so the next round's nonces follow on.
            for nonce in next..(round + 1) * depth {
                let call = Call::TransferToma { recipient: Keypair::test_account(1).address(), amount: 1 };
                node.chain.submit(key.sign_call(chain_id, nonce, call)).await.expect("fills the gap");
            }
        }
    }
    node.stop().await;
    assert!(
        refused.is_empty(),
        "{} pipelined transactions in {rounds} rounds of {depth} refused: {refused:?}",
        refused.values().sum::<u64>()
    );
}

/// Polls every future in `calls` together, first to last, and returns their outputs in order.
async fn futures_join<F: std::future::Future>(calls: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = calls.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// While transactions keep arriving, `atoma_advanceEpoch` is served every time. It used to be
/// refused with `EMempoolFull` (although the mempool had room): the block producer drained the
/// mempool block after block without reading its control queue, and every admitted transaction
/// put a wake-up into that queue's 1,024 places. Now wake-ups coalesce into one flag, controls
/// have a queue of their own, and the producer serves them between any two blocks. The old bug
/// reproduced quickly in release builds (`cargo test --release …`), where admission outpaces
/// block production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_controls_are_served_under_sustained_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ChainConfig::local(dir.path());
    config.genesis.accounts = 64;
    let node = Node::start(config, loopback_rpc()).await;
    let chain_id = node.chain.node().chain_info().chain_id.0;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let (chain, stop) = (node.chain.clone(), Arc::clone(&stop));
        tokio::task::spawn_blocking(move || {
            let keys: Vec<Keypair> = (0..64).map(Keypair::test_account).collect();
            let mut nonces = [0u64; 64];
            let mut admitted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (i, key) in keys.iter().enumerate() {
                    let call = Call::TransferToma { recipient: keys[(i + 1) % 64].address(), amount: 1 };
                    match chain.enqueue(key.sign_call(chain_id, nonces[i], call)) {
                        Ok(_) => {
                            nonces[i] += 1;
                            admitted += 1;
                        }
                        Err(atoma_ledger::LedgerError::EMempoolFull) => {
                            std::thread::sleep(Duration::from_millis(1))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            admitted
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = Client::new(&node.server.url()).expect("client");
    let mut answers = BTreeMap::<String, u64>::new();
    for _ in 0..20 {
        let name = match tokio::time::timeout(REQUEST_DEADLINE, client.advance_epoch()).await {
            Err(_) => "hung".to_string(),
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => client_error_name(&e),
        };
        *answers.entry(name).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let admitted = loader.await.expect("joins");
    let largest = node.chain.ledger().metrics().snapshot().mempool_size;
    node.stop().await;
    println!(
        "{admitted} transfers admitted meanwhile; mempool at the end {largest}; advanceEpoch: {answers:?}"
    );
    assert_eq!(answers.get("ok").copied().unwrap_or(0), 20, "advanceEpoch under load: {answers:?}");
}
