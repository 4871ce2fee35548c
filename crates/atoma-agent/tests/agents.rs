//! Agents against a real chain and RPC server in process, each in front of its own
//! deterministic backend, with nobody typing a command after the stacks are bought:
//!
//! - an honest loop on a sampling-consensus task: the user's requests are authorized by stack
//!   token, counted and recorded; the selected node's agent settles when the stack is idle,
//!   the sampled attester's agent fetches the transcript and attests, and the selected node's
//!   agent claims — the node is paid exactly the units it served;
//! - a dishonest node (its backend answers differently): the honest attester's commitment
//!   differs, the oracle's agent resolves the dispute, and the dishonest node is slashed;
//! - unauthorized, foreign and over-budget requests are refused by name and count nothing;
//! - an agent stopped mid-stack and started again settles for what it served before.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use atoma_agent::backend::{self, BackendConfig, RunningBackend};
use atoma_agent::config::{AgentConfig, ModelConfig, NodeConfig};
use atoma_agent::token::StackToken;
use atoma_agent::{NodeKeys, RunningAgent};
use atoma_api::StackLookup;
use atoma_contract::{AdminOp, Call, EchelonId, NodeSmallId, Parameter, StackSmallId, TOMA, TaskSmallId};
use atoma_types::Keypair;
use serde_json::{Value, json};
use support::{Net, loopback, ok};

const MODEL: &str = "m";
const PRICE: u64 = 10;
/// Node `n` is operated by test account `n - 1`; the user is account 5.
const USER: u64 = 5;
const ORACLE: u64 = 4;

fn operator(node: u64) -> Keypair {
    Keypair::test_account(node - 1)
}

/// A local network: model `m` with node 4 as its oracle; nodes 1–3 serve it; cross-validation
/// always samples one attester. Task 1 (sampling consensus) is served by node 2 at the price and
/// node 3 above it, so node 2 is selected and node 3 attests; task 2 the same with nodes 1 and 2.
async fn start_net(dir: &Path) -> Net {
    let net = Net::start(dir, 6).await;
    let client = &net.client;
    let echelon = EchelonId(1);
    net.add_model(MODEL, 600_000).await;
    for (parameter, value) in [
        (Parameter::CrossValidationProbabilityPermille, 1_000),
        (Parameter::CrossValidationExtraNodesCount, 1),
    ] {
        net.admin(AdminOp::SetParameter { parameter, value }).await;
    }
    for node in 1..=4 {
        let key = operator(node);
        ok(client, &key, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 }).await;
        ok(client, &key, Call::AddNodeToModel { node: NodeSmallId(node), model_name: MODEL.into(), echelon })
            .await;
    }
    let oracle =
        AdminOp::AddModelEchelonOracleNode { model_name: MODEL.into(), echelon, node: NodeSmallId(ORACLE) };
    net.admin(oracle).await;
    let user = Keypair::test_account(USER);
    for (task, cheap, dear) in [(1, 2, 3), (2, 1, 2)] {
        let create = Call::CreateTask {
            role: 0,
            model_name: Some(MODEL.into()),
            security_level: 2,
            minimum_reputation_score: None,
            required_optimizations: 0,
        };
        ok(client, &user, create).await;
        for (node, price) in [(cheap, PRICE), (dear, PRICE * 10)] {
            let subscribe = Call::SubscribeNodeToTask {
                node: NodeSmallId(node),
                task: TaskSmallId(task),
                price_per_compute_unit: price,
                max_num_compute_units: 1_000_000,
            };
            ok(client, &operator(node), subscribe).await;
        }
    }
    net
}

fn backend_for(variant: u64) -> RunningBackend {
    let listener = std::net::TcpListener::bind(loopback()).expect("a port");
    listener.set_nonblocking(true).expect("nonblocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    backend::spawn(listener, BackendConfig { variant, ..BackendConfig::default() }).expect("a backend")
}

fn agent_config(
    net: &Net,
    state: &Path,
    node: u64,
    backend: &RunningBackend,
    idle_settle_secs: u64,
) -> AgentConfig {
    let mut models = BTreeMap::new();
    models.insert(
        MODEL.to_string(),
        ModelConfig { backend: backend.base_url(), backend_model: None, timeout_secs: 10 },
    );
    AgentConfig {
        rpc: net.server.url(),
        listen: loopback(),
        public_url: None,
        state_dir: state.join(format!("agent-{node}")),
        idle_settle_secs,
        nodes: vec![NodeConfig { key: format!("node-{node}"), node }],
        models,
    }
}

async fn start_agent(config: AgentConfig, node: u64) -> RunningAgent {
    let keys = vec![NodeKeys { node, owner: operator(node), enclave: None }];
    atoma_agent::start(config, keys).await.expect("the agent starts")
}

async fn buy(net: &Net, task: u64, units: u64) -> u64 {
    let user = Keypair::test_account(USER);
    let call = Call::AcquireNewStack {
        task: TaskSmallId(task),
        num_compute_units: units,
        max_price_per_compute_unit: PRICE,
    };
    let result = net.client.sign_and_execute(&user, call).await.expect("executed");
    assert!(result.is_success(), "{:?}", result.error);
    let created = result.events.iter().find(|e| e.event_name() == "StackCreatedEvent").expect("a stack");
    created.parsed_json["small_id"]["inner"].as_str().expect("an id").parse().expect("a number")
}

fn token(net: &Net, stack: u64, signer: &Keypair) -> String {
    let not_after_ms = atoma_agent::agent::now_ms() + 3_600_000;
    StackToken { chain_id: net.chain_id, stack, owner: signer.address(), not_after_ms }.sign(signer)
}

async fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, headers)
}

fn chat(words: &str, max_tokens: u64) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": words}], "max_tokens": max_tokens})
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the stack has closed; returns the events that name it.
async fn closed(net: &Net, stack: u64) -> Vec<atoma_api::EventEnvelope> {
    wait_for("the stack closes", async || {
        matches!(net.client.get_stack(StackSmallId(stack)).await, Ok(StackLookup::Closed(_))).then_some(())
    })
    .await;
    let filter = atoma_types::EventFilter::Stack(StackSmallId(stack));
    net.client.query_events(&filter, None, Some(50), false).await.expect("events").data
}

fn names(events: &[atoma_api::EventEnvelope]) -> Vec<&str> {
    events.iter().map(atoma_api::EventEnvelope::event_name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_serve_settle_attest_dispute_and_claim_by_themselves() {
    let dir = tempfile::tempdir().expect("a dir");
    let net = start_net(dir.path()).await;
    // Node 1 is dishonest: its backend answers differently from everyone else's.
    let backends: Vec<RunningBackend> = (1..=4).map(|node| backend_for(u64::from(node == 1))).collect();
    let mut agents = Vec::new();
    for node in 1..=4u64 {
        let config =
            agent_config(&net, dir.path(), node, &backends[usize::try_from(node - 1).expect("small")], 1);
        agents.push(start_agent(config, node).await);
    }
    // Each agent announced where it listens.
    for (node, agent) in (1..=4u64).zip(&agents) {
        let view = net.client.get_node(NodeSmallId(node)).await.expect("the node");
        assert_eq!(view.endpoint.as_deref(), Some(agent.url().as_str()));
    }
    let user = Keypair::test_account(USER);

    // The honest loop: node 2 is selected, node 3 attests.
    let stack = buy(&net, 1, 500).await;
    let node2 = agents[1].url();
    let good = token(&net, stack, &user);
    let (status, answer, headers) =
        post(&format!("{node2}/v1/chat/completions"), Some(&good), &chat("hello there", 5)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model"], MODEL);
    let first_units = answer["usage"]["total_tokens"].as_u64().expect("usage");
    assert_eq!(first_units, 3 + 5, "`user:` and two words in, five out");
    assert_eq!(headers["x-atoma-units-left"], (500 - first_units).to_string().as_str());
    let streamed = json!({"model": MODEL, "prompt": "one two", "max_tokens": 4, "stream": true,
                          "stream_options": {"include_usage": true}});
    let (status, body, _) = post(&format!("{node2}/v1/completions"), Some(&good), &streamed).await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("an event stream");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"total_tokens\":6"), "{text}");

    // Refusals count nothing.
    let url = format!("{node2}/v1/chat/completions");
    let (status, body, _) = post(&url, None, &chat("x", 1)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_stack_token")));
    let stranger = Keypair::test_account(0);
    let (status, body, _) = post(&url, Some(&token(&net, stack, &stranger)), &chat("x", 1)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("not_the_stack_owner")));
    let elsewhere = format!("{}/v1/chat/completions", agents[2].url());
    let (status, body, _) = post(&elsewhere, Some(&good), &chat("x", 1)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("stack_not_served_here")));
    let (status, body, _) =
        post(&url, Some(&good), &json!({"model": "other", "messages": [{"role": "user", "content": "x"}]}))
            .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")));
    let long = "word ".repeat(600);
    let (status, body, _) = post(&url, Some(&good), &chat(&long, 1)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (402, Some("insufficient_compute_units")));

    let served = first_units + 6;
    let events = closed(&net, stack).await;
    let names = names(&events);
    assert!(names.contains(&"StackTrySettleEvent"), "{names:?}");
    assert!(names.contains(&"NewStackSettlementAttestationEvent"), "{names:?}");
    assert!(names.contains(&"StackSettlementTicketEvent"), "{names:?}");
    let claimed =
        events.iter().find(|e| e.event_name() == "StackSettlementTicketClaimedEvent").expect("claimed");
    assert_eq!(claimed.parsed_json["num_claimed_compute_units"], served.to_string());

    // The dishonest node: node 1 is selected, honest node 2 attests and disagrees, oracle node 4
    // resolves against node 1.
    let stack = buy(&net, 2, 300).await;
    let node1 = agents[0].url();
    let (status, answer, _) =
        post(&format!("{node1}/v1/chat/completions"), Some(&token(&net, stack, &user)), &chat("tell me", 8))
            .await;
    assert_eq!(status, 200, "{answer}");
    let events = closed(&net, stack).await;
    let resolved = events.iter().find(|e| e.event_name() == "StackDisputeResolvedEvent").expect("resolved");
    assert_eq!(resolved.parsed_json["selected_node_was_right"], false);
    assert_eq!(resolved.parsed_json["oracle_node_id"]["inner"], ORACLE.to_string());
    let slashed: Vec<&str> = resolved.parsed_json["slashed_nodes"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|n| n["inner"].as_str())
        .collect();
    assert_eq!(slashed, ["1"]);

    let audit = net.client.audit().await.expect("an audit");
    assert!(audit.holds, "{audit:?}");
    for agent in agents {
        agent.shutdown().await;
    }
    drop(backends);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_stopped_mid_stack_settles_what_it_served_after_a_restart() {
    let dir = tempfile::tempdir().expect("a dir");
    let net = start_net(dir.path()).await;
    let backends: Vec<RunningBackend> = (1..=4).map(|_| backend_for(0)).collect();
    // Node 3 attests node 2's stacks; it runs throughout.
    let attester = start_agent(agent_config(&net, dir.path(), 3, &backends[2], 1), 3).await;
    // Node 2 would wait an hour before settling an idle stack.
    let patient = agent_config(&net, dir.path(), 2, &backends[1], 3_600);
    let agent = start_agent(patient.clone(), 2).await;
    let user = Keypair::test_account(USER);
    let stack = buy(&net, 1, 400).await;
    let good = token(&net, stack, &user);
    let mut served = 0;
    for words in ["a b c", "d e"] {
        let (status, answer, _) =
            post(&format!("{}/v1/chat/completions", agent.url()), Some(&good), &chat(words, 3)).await;
        assert_eq!(status, 200, "{answer}");
        served += answer["usage"]["total_tokens"].as_u64().expect("usage");
    }
    agent.shutdown().await;
    // The store is closed once shutdown returns.
    let record = {
        let store =
            atoma_agent::store::AgentStore::open(&patient.state_dir.join("agent.redb")).expect("opens");
        store.stack(stack).expect("reads").expect("recorded")
    };
    assert_eq!((record.used, record.requests), (served, 2), "every answered request is on record");
    // Started again, now settling after a second of idleness.
    let hasty = AgentConfig { idle_settle_secs: 1, ..patient };
    let agent = start_agent(hasty, 2).await;
    let events = closed(&net, stack).await;
    let claimed =
        events.iter().find(|e| e.event_name() == "StackSettlementTicketClaimedEvent").expect("claimed");
    assert_eq!(claimed.parsed_json["num_claimed_compute_units"], served.to_string());
    let settles = events.iter().filter(|e| e.event_name() == "StackTrySettleEvent").count();
    assert_eq!(settles, 1, "settled once");
    agent.shutdown().await;
    attester.shutdown().await;
    drop(backends);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_failures_count_nothing_and_the_agent_outlives_a_chain_restart() {
    let dir = tempfile::tempdir().expect("a dir");
    let net = start_net(dir.path()).await;
    let attester_backend = backend_for(0);
    let attester = start_agent(agent_config(&net, dir.path(), 3, &attester_backend, 1), 3).await;
    // Node 2's backend takes 1.5 s to answer; its agent waits 1 s.
    let slow = {
        let listener = std::net::TcpListener::bind(loopback()).expect("a port");
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let config = BackendConfig { delay: Duration::from_millis(1_500), ..BackendConfig::default() };
        backend::spawn(listener, config).expect("a backend")
    };
    let mut config = agent_config(&net, dir.path(), 2, &slow, 1);
    config.models.get_mut(MODEL).expect("the model").timeout_secs = 1;
    let agent = start_agent(config.clone(), 2).await;
    let user = Keypair::test_account(USER);
    let stack = buy(&net, 1, 400).await;
    let good = token(&net, stack, &user);
    let url = format!("{}/v1/chat/completions", agent.url());
    let (status, body, _) = post(&url, Some(&good), &chat("are you there", 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("backend_timeout")), "{body}");
    // A backend that is gone.
    let gone = slow.address;
    drop(slow);
    agent.shutdown().await;
    config.models.get_mut(MODEL).expect("the model").backend = format!("http://{gone}/v1");
    let agent = start_agent(config.clone(), 2).await;
    let url = format!("{}/v1/chat/completions", agent.url());
    let (status, body, _) = post(&url, Some(&good), &chat("hello", 4)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("backend_unavailable")), "{body}");
    let status = reqwest::get(format!("{}/atoma/v1/status", agent.url())).await.expect("status");
    let status: Value = status.json().await.expect("json");
    assert_eq!(status["stacks"][0]["used"], 0, "nothing counted: {status}");
    assert_eq!(status["stacks"][0]["requests"], 0, "nothing recorded: {status}");
    agent.shutdown().await;

    // A working backend; one request served; then the chain goes away and comes back.
    let fine = backend_for(0);
    config.models.get_mut(MODEL).expect("the model").backend = fine.base_url();
    config.idle_settle_secs = 2;
    let agent = start_agent(config, 2).await;
    let url = format!("{}/v1/chat/completions", agent.url());
    let (status, answer, _) = post(&url, Some(&good), &chat("hello", 4)).await;
    assert_eq!(status, 200, "{answer}");
    let served = answer["usage"]["total_tokens"].as_u64().expect("usage");
    let address = net.server.local_addr();
    net.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let net = Net::restart(dir.path(), address).await;
    let events = closed(&net, stack).await;
    let claimed =
        events.iter().find(|e| e.event_name() == "StackSettlementTicketClaimedEvent").expect("claimed");
    assert_eq!(claimed.parsed_json["num_claimed_compute_units"], served.to_string());
    agent.shutdown().await;
    attester.shutdown().await;
    drop((fine, attester_backend));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_recorded_before_a_crash_are_sent_once() {
    use atoma_agent::records::{Purpose, Sent};
    use atoma_agent::store::AgentStore;

    let dir = tempfile::tempdir().expect("a dir");
    let net = start_net(dir.path()).await;
    let backend = backend_for(0);
    let config = agent_config(&net, dir.path(), 1, &backend, 1);
    let key = operator(1);
    let nonce = net.client.get_nonce(&key.address()).await.expect("a nonce");
    let endpoint = |url: &str| Call::SetNodeEndpoint { node: NodeSmallId(1), url: url.into() };
    // The agent recorded two transactions and crashed: the first had reached the chain, the
    // second had not.
    let landed = key.sign_call(net.chain_id, nonce, endpoint("http://landed.example"));
    let lost = key.sign_call(net.chain_id, nonce + 1, endpoint("http://lost.example"));
    assert!(net.client.execute_transaction(&landed).await.expect("executed").is_success());
    {
        std::fs::create_dir_all(&config.state_dir).expect("a state dir");
        let store = AgentStore::open(&config.state_dir.join("agent.redb")).expect("opens");
        store.create_records().expect("tables");
        for signed in [&landed, &lost] {
            let sent = Sent { purpose: Purpose::Endpoint { node: 1 }, tx: signed.to_bytes() };
            store.put_sent(&signed.digest().0, &sent).expect("recorded");
        }
    }
    let agent = start_agent(config, 1).await;
    // Start-up settles them before announcing its own endpoint.
    assert!(agent.shared().store.sent().expect("reads").is_empty());
    assert!(net.client.get_transaction(&lost.digest()).await.expect("the lost one was sent").is_success());
    let filter = atoma_types::EventFilter::EventType("NodeEndpointSetEvent".into());
    let events = net.client.query_events(&filter, None, Some(50), false).await.expect("events").data;
    let urls: Vec<&str> = events.iter().filter_map(|e| e.parsed_json["url"].as_str()).collect();
    let own = agent.url();
    assert_eq!(urls, ["http://landed.example", "http://lost.example", own.as_str()], "each once, in order");
    agent.shutdown().await;
    drop(backend);
    net.stop().await;
}
