//! What an agent adds to a request: latency and throughput of chat completions sent to the
//! deterministic backend directly and through an agent in front of it, interleaved in one run
//! (docs/PERFORMANCE.md, "The node agent").
//!
//! A chain and RPC server run in process (a local network in a temporary directory); one agent
//! serves one stack bought for the run. Every request through the agent is authorized, budgeted
//! and recorded durably in `agent.redb` before its answer, as in production.
//!
//! ```sh
//! cargo run --release -p atoma-agent --example bench_agent -- [ROUNDS] [CLIENTS] [SECONDS]
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atoma_agent::backend::{self, BackendConfig};
use atoma_agent::config::{AgentConfig, ModelConfig, NodeConfig};
use atoma_agent::token::StackToken;
use atoma_agent::{NodeKeys, agent::now_ms};
use atoma_contract::{Call, EchelonId, NodeSmallId, TOMA, TaskSmallId};
use atoma_types::Keypair;
use serde_json::{Value, json};
use support::{Net, loopback, ok};

const MODEL: &str = "m";
const ROUND: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

async fn one(http: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> Duration {
    let start = Instant::now();
    let mut request = http.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    assert!(response.status().is_success(), "{}", response.status());
    let _ = response.bytes().await.expect("a body");
    start.elapsed()
}

/// Requests per second from `clients` concurrent clients for `seconds`.
async fn throughput(url: &str, token: Option<&str>, body: &Value, clients: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, token, body) = (url.to_string(), token.map(str::to_string), body.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut done = 0u64;
            while Instant::now() < deadline {
                one(&http, &url, token.as_deref(), &body).await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("a client");
    }
    total as f64 / seconds as f64
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = usize::try_from(args.first().copied().unwrap_or(5)).unwrap_or(5);
    let clients = usize::try_from(args.get(1).copied().unwrap_or(16)).unwrap_or(16);
    let seconds = args.get(2).copied().unwrap_or(3);
    let dir = tempfile::tempdir().expect("a dir");
    let net = Net::start(dir.path(), 2).await;
    let client = &net.client;
    let echelon = EchelonId(1);
    net.add_model(MODEL, 60_000).await;
    let (operator, user) = (Keypair::test_account(0), Keypair::test_account(1));
    ok(client, &operator, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 }).await;
    ok(client, &operator, Call::AddNodeToModel { node: NodeSmallId(1), model_name: MODEL.into(), echelon })
        .await;
    let create = Call::CreateTask {
        role: 0,
        model_name: Some(MODEL.into()),
        security_level: 0,
        minimum_reputation_score: None,
        required_optimizations: 0,
    };
    ok(client, &user, create).await;
    let subscribe = Call::SubscribeNodeToTask {
        node: NodeSmallId(1),
        task: TaskSmallId(1),
        price_per_compute_unit: 1,
        max_num_compute_units: 1_000_000_000,
    };
    ok(client, &operator, subscribe).await;
    let buy = Call::AcquireNewStack {
        task: TaskSmallId(1),
        num_compute_units: 1_000_000_000,
        max_price_per_compute_unit: 1,
    };
    ok(client, &user, buy).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let backend = backend::spawn(listener, BackendConfig::default()).expect("a backend");
    let mut models = BTreeMap::new();
    models.insert(
        MODEL.to_string(),
        ModelConfig { backend: backend.base_url(), backend_model: None, timeout_secs: 60 },
    );
    let agent_config = AgentConfig {
        rpc: net.server.url(),
        listen: loopback(),
        public_url: None,
        state_dir: dir.path().join("agent"),
        idle_settle_secs: 86_400,
        nodes: vec![NodeConfig { key: "operator".into(), node: 1 }],
        models,
    };
    let agent = atoma_agent::start(agent_config, vec![NodeKeys { node: 1, owner: operator, enclave: None }])
        .await
        .expect("the agent starts");
    let chain_id = net.chain_id;
    let token = StackToken { chain_id, stack: 1, owner: user.address(), not_after_ms: now_ms() + 86_400_000 }
        .sign(&user);

    let body = json!({"model": MODEL, "max_tokens": 16,
                      "messages": [{"role": "user", "content": "one two three four five six seven eight"}]});
    let direct = format!("{}/chat/completions", backend.base_url());
    let through = format!("{}/v1/chat/completions", agent.url());
    let http = reqwest::Client::new();
    // Warm both paths (connections, the agent's caches).
    for _ in 0..50 {
        one(&http, &direct, None, &body).await;
        one(&http, &through, Some(&token), &body).await;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..ROUND {
            a.push(one(&http, &direct, None, &body).await);
        }
        for _ in 0..ROUND {
            b.push(one(&http, &through, Some(&token), &body).await);
        }
    }
    a.sort();
    b.sort();
    let (a50, a99, b50, b99) =
        (percentile(&a, 0.5), percentile(&a, 0.99), percentile(&b, 0.5), percentile(&b, 0.99));
    println!("sequential, {} requests each, interleaved in rounds of {ROUND}:", a.len());
    println!("  backend directly: p50 {:.3} ms  p99 {:.3} ms", ms(a50), ms(a99));
    println!("  through the agent: p50 {:.3} ms  p99 {:.3} ms", ms(b50), ms(b99));
    println!(
        "  the agent adds: p50 {:.3} ms (x{:.2})  p99 {:.3} ms (x{:.2})",
        ms(b50) - ms(a50),
        ms(b50) / ms(a50),
        ms(b99) - ms(a99),
        ms(b99) / ms(a99)
    );
    let direct_rps = throughput(&direct, None, &body, clients, seconds).await;
    let agent_rps = throughput(&through, Some(&token), &body, clients, seconds).await;
    println!("concurrent, {clients} clients for {seconds} s each:");
    println!("  backend directly: {direct_rps:.0} requests/s");
    println!("  through the agent: {agent_rps:.0} requests/s (x{:.2})", agent_rps / direct_rps);

    let counters = agent.shared().store.counters().expect("the agent's counters");
    let served = counters.iter().find(|(name, _)| name == "requests_served").map_or(0, |(_, n)| *n);
    println!("the agent recorded {served} requests (one durable commit each)");
    agent.shutdown().await;
    drop(backend);
    net.stop().await;
}
