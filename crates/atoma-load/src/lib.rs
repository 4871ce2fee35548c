//! Load for a running Atoma node over JSON-RPC: many concurrent clients send signed
//! transactions, each pipelining its own nonces, and [`run`] reports throughput,
//! acknowledgement latency (submit → durable result) and errors by name.
//!
//! # Using it (for `atoma bench`)
//!
//! ```no_run
//! use std::time::Duration;
//! use atoma_load::{LoadConfig, Stop, Transport, Workload};
//!
//! # async fn bench() -> Result<(), atoma_load::LoadError> {
//! let mut config = LoadConfig::new("http://127.0.0.1:9000");
//! config.concurrency = 64; // clients, each with its own key(s) and connection
//! config.pipeline = 4; // transactions in flight per key
//! config.stop = Stop::Transactions(20_000); // or Stop::Duration(Duration::from_secs(30))
//! config.transport = Transport::WebSocket; // or Transport::Http
//! config.workload = Workload::Transfers; // or Workload::mix()
//! // Progress every `config.progress_interval`: a ready-made bar on stderr, or any closure.
//! let report = atoma_load::run(&config, atoma_load::progress::stderr_bar(30)).await?;
//! println!("{}", report.table()); // or report.to_json() for `--json`
//! println!("{:.0} tx/s, p99 {:?}", report.tps(), report.latency.quantile(0.99));
//! # Ok(()) }
//! ```
//!
//! - **Accounts** ([`Accounts`]): by default new keys funded by `atoma_faucet` (a local
//!   network), so runs never collide with other users' nonces; or the local network's fixed test
//!   accounts (`atoma start --accounts N`), or keys the caller funded.
//! - **Workloads** ([`Workload`]): `Transfers` sends `TransferToma` of one base unit around a ring
//!   of the clients' accounts; `Mix` prepares a market (each client registers a node, creates a
//!   task and subscribes its node) and then buys stacks, settles them and claims them, advancing
//!   the epoch of a local network every second so that claims come due.
//! - **Retries**: busy answers (`EMempoolFull`, HTTP 429 at the connection limit) and
//!   `ENonceFuture` (a pipelined predecessor not admitted yet) are retried with backoff for up to
//!   [`LoadConfig::retry_for`], and counted in [`Report::retries_by_name`]; a transaction that
//!   never executes is an error ([`Report::errors_by_name`]); one the contract refused is a
//!   failure ([`Report::failures_by_name`]) — it is on the chain and consumed its nonce.
//! - **Connections**: over WebSocket each client holds one connection and the run one more, so
//!   with the server's default limit of 128 at most 127 clients (a connection refused as busy is
//!   retried for [`LoadConfig::retry_for`]). Over HTTP every request in flight holds a connection:
//!   beyond the limit requests get HTTP 429 and are retried. The calls go through
//!   `atoma_client::Client` over the chosen [`Transport`]; this crate adds only the reading of
//!   failures (busy, not yet, unknown) and the retries.
//! - **Latency** runs from a transaction's first send to its answer, which the server gives after
//!   the block is durably committed; retries are included. Percentiles come from a [`Histogram`]
//!   with 1.6% resolution.
//!
//! The binary `atoma-load` wraps the same call:
//! `cargo run --release -p atoma-load -- --rpc http://127.0.0.1:9000 --concurrency 64 --txs 20000`.
//! The crate's tests hold the bounded load test of the RPC server (`tests/under_load.rs`,
//! docs/RELIABILITY.md).

#![deny(missing_docs)]

mod client;
pub mod config;
mod conn;
pub mod histogram;
pub mod progress;
pub mod report;
mod submit;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use atoma_api::rpc::TransactionResult;
use atoma_client::{Client, ClientError};
use atoma_contract::{Call, NodeSmallId, TaskSmallId};
use atoma_types::Keypair;
use tokio::task::JoinSet;

pub use config::{Accounts, LoadConfig, Stop, Workload};
pub use conn::Transport;
pub use histogram::Histogram;
pub use progress::{Phase, Progress};
pub use report::{Answered, CallCounts, Report};

use client::{Lane, Mix, Plan, Tally, Transfers};
use conn::{Retry, retry};
use submit::{Answer, Shared, Submitter};

/// Faucet calls in flight while funding accounts.
const FUNDING_PARALLELISM: usize = 32;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A setting is out of range.
    #[error("invalid load configuration: {0}")]
    InvalidConfig(String),
    /// The node could not be reached or did not answer as a node does.
    #[error("cannot reach the node: {0}")]
    Connect(String),
    /// Funding accounts or preparing the market failed.
    #[error("setup failed: {0}")]
    Setup(String),
}

/// Drives the node at `config.rpc_url` as configured and reports what it measured.
/// `on_progress` is called every `config.progress_interval` while accounts are prepared and the
/// load runs, and once more at the end with [`Phase::Finished`].
///
/// # Errors
/// [`LoadError::InvalidConfig`]; [`LoadError::Connect`] when the node does not answer;
/// [`LoadError::Setup`] when funding (the faucet needs a local network) or the market's
/// preparation fails. Failures during the load are not errors: they are counted in the report.
pub async fn run<P>(config: &LoadConfig, mut on_progress: P) -> Result<Report, LoadError>
where
    P: FnMut(&Progress) + Send,
{
    config.validate().map_err(LoadError::InvalidConfig)?;
    let connect = |e: ClientError| LoadError::Connect(e.to_string());
    let shared = Arc::new(Shared::new(config.stop));
    let setup_conn = conn::open(&config.rpc_url, config.transport, config.request_timeout, config.retry_for)
        .await
        .map_err(connect)?;
    let info = setup_conn.get_chain_info().await.map_err(connect)?;
    let chain_id = info.chain_id.0;
    let setup_start = Instant::now();
    let total = setup_steps(config);
    let phase = |s: &Shared| Phase::Setup { done: s.setup_done.load(Ordering::Relaxed), total };
    let clients =
        ticking(setup(config, &setup_conn, &shared, chain_id), &shared, config, &mut on_progress, phase)
            .await?;
    let setup = setup_start.elapsed();
    let height_before = setup_conn.get_chain_info().await.map_err(connect)?.height;

    let started = shared.start();
    let advancer = epoch_advancer(config, &setup_conn, info.local_network);
    let mut running = JoinSet::new();
    for c in clients {
        let submitter = Submitter::new(c.conn, Arc::clone(&shared), config.retry_for, true);
        let shared = Arc::clone(&shared);
        let (pipeline, record) = (config.pipeline, config.record_results);
        running.spawn(client::drive(submitter, shared, chain_id, c.lanes, c.plan, pipeline, record));
    }
    let tally = ticking(
        async {
            let mut all = Tally::default();
            while let Some(joined) = running.join_next().await {
                if let Ok(tally) = joined {
                    all.merge(tally);
                }
            }
            all
        },
        &shared,
        config,
        &mut on_progress,
        |_| Phase::Running,
    )
    .await;
    if let Some(advancer) = advancer {
        advancer.abort();
    }
    let elapsed = tally.last_answer.map_or_else(|| started.elapsed(), |t| t.duration_since(started));
    let height_after = setup_conn.get_chain_info().await.map_or(height_before, |i| i.height);
    let mut last = shared.progress(Phase::Finished);
    last.elapsed = elapsed;
    on_progress(&last);
    let names = shared.take_names();
    Ok(Report {
        rpc_url: config.rpc_url.clone(),
        transport: config.transport,
        workload: config.workload.name(),
        concurrency: config.concurrency,
        pipeline: config.pipeline,
        setup,
        elapsed,
        sent: last.sent,
        succeeded: last.succeeded,
        failed: last.failed,
        errors: last.errors,
        retries: last.retries,
        blocks: height_after.saturating_sub(height_before),
        latency: tally.latency,
        calls: tally.calls,
        failures_by_name: names.failures,
        errors_by_name: names.errors,
        retries_by_name: names.retries,
        results: tally.results,
    })
}

/// Runs `work`, calling `on_progress` every interval meanwhile.
async fn ticking<F, P>(
    work: F,
    shared: &Shared,
    config: &LoadConfig,
    on_progress: &mut P,
    phase: impl Fn(&Shared) -> Phase,
) -> F::Output
where
    F: Future,
    P: FnMut(&Progress) + Send,
{
    tokio::pin!(work);
    let mut ticker = tokio::time::interval(config.progress_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => on_progress(&shared.progress(phase(shared))),
        }
    }
}

/// Setup steps, for the progress bar: funding each key, connecting each client, and for the mix
/// preparing each client's node and task.
fn setup_steps(config: &LoadConfig) -> u64 {
    let keys = config.concurrency * config.workload.keys_per_client();
    let funding = if matches!(config.accounts, Accounts::Faucet { .. }) { keys } else { 0 };
    let market = if matches!(config.workload, Workload::Mix { .. }) { config.concurrency } else { 0 };
    (funding + config.concurrency + market) as u64
}

/// A client ready to run.
struct Prepared {
    conn: Client,
    lanes: Vec<Lane>,
    plan: Box<dyn Plan>,
}

async fn setup(
    config: &LoadConfig,
    conn: &Client,
    shared: &Arc<Shared>,
    chain_id: [u8; 32],
) -> Result<Vec<Prepared>, LoadError> {
    let keys = accounts(config, conn, shared).await?;
    let per_client = config.workload.keys_per_client();
    let mut clients = JoinSet::new();
    for (index, client_keys) in keys.chunks(per_client).enumerate() {
        let (config, shared, client_keys) = (config.clone(), Arc::clone(shared), client_keys.to_vec());
        let recipient = keys[(index + 1) % config.concurrency * per_client].address();
        clients.spawn(async move {
            let conn =
                conn::open(&config.rpc_url, config.transport, config.request_timeout, config.retry_for)
                    .await
                    .map_err(|e| LoadError::Connect(e.to_string()))?;
            let mut lanes = Vec::new();
            for key in client_keys {
                let nonce =
                    conn.get_nonce(&key.address()).await.map_err(|e| LoadError::Connect(e.to_string()))?;
                lanes.push(Lane::new(key, nonce));
            }
            shared.setup_done.fetch_add(1, Ordering::Relaxed);
            let plan: Box<dyn Plan> = match config.workload {
                Workload::Transfers => Box::new(Transfers { recipient }),
                Workload::Mix { .. } => {
                    let submitter =
                        Submitter::new(conn.clone(), Arc::clone(&shared), config.retry_for, false);
                    let mix = prepare_market(&submitter, chain_id, &mut lanes, config.pipeline).await?;
                    shared.setup_done.fetch_add(1, Ordering::Relaxed);
                    Box::new(mix)
                }
            };
            Ok::<_, LoadError>((index, Prepared { conn, lanes, plan }))
        });
    }
    let mut prepared = Vec::new();
    while let Some(joined) = clients.join_next().await {
        prepared.push(joined.map_err(|e| LoadError::Setup(e.to_string()))??);
    }
    prepared.sort_by_key(|(index, _)| *index);
    Ok(prepared.into_iter().map(|(_, p)| p).collect())
}

/// The keys of every client, `keys_per_client` after another, funded.
async fn accounts(
    config: &LoadConfig,
    conn: &Client,
    shared: &Arc<Shared>,
) -> Result<Vec<Keypair>, LoadError> {
    let n = config.concurrency * config.workload.keys_per_client();
    match &config.accounts {
        Accounts::Keys(keys) => Ok(keys[..n].to_vec()),
        Accounts::TestAccounts { first } => {
            Ok((*first..*first + n as u64).map(Keypair::test_account).collect())
        }
        Accounts::Faucet { amount } => {
            let keys = (0..n)
                .map(|_| Keypair::generate().map_err(|e| LoadError::Setup(e.to_string())))
                .collect::<Result<Vec<_>, _>>()?;
            for chunk in keys.chunks(FUNDING_PARALLELISM) {
                let mut funding = JoinSet::new();
                for key in chunk {
                    let (conn, address, amount) = (conn.clone(), key.address(), *amount);
                    let retry_for = config.retry_for;
                    funding.spawn(async move { fund(&conn, address, amount, retry_for).await });
                }
                while let Some(joined) = funding.join_next().await {
                    joined.map_err(|e| LoadError::Setup(e.to_string()))??;
                    shared.setup_done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(keys)
        }
    }
}

/// One faucet call, retried while the node is busy.
async fn fund(
    conn: &Client,
    address: atoma_contract::Address,
    amount: u64,
    retry_for: Duration,
) -> Result<(), LoadError> {
    let start = Instant::now();
    loop {
        match conn.faucet(&address, Some(amount)).await {
            Ok(result) if result.error.is_none() => return Ok(()),
            Ok(result) => {
                let name = result.error.map(|e| e.name).unwrap_or_default();
                return Err(LoadError::Setup(format!("the faucet refused: {name}")));
            }
            Err(e) if retry(&e) == Retry::Busy && start.elapsed() < retry_for => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(LoadError::Setup(format!("the faucet failed: {e}"))),
        }
    }
}

/// Registers the client's node, creates its task and subscribes the node to it.
async fn prepare_market(
    submitter: &Submitter,
    chain_id: [u8; 32],
    lanes: &mut [Lane],
    pipeline: usize,
) -> Result<Mix, LoadError> {
    let setup_error = |what: &str, e: String| LoadError::Setup(format!("{what}: {e}"));
    let db = submitter.conn.get_db().await.map_err(|e| setup_error("atoma_getDb", e.to_string()))?;
    let collateral = db.config.registration_collateral;
    let [user, node] = lanes else {
        return Err(LoadError::Setup("the mix needs two keys per client".into()));
    };
    let registered =
        setup_call(submitter, chain_id, node, Call::RegisterNode { collateral, supported_optimizations: 0 })
            .await?;
    let node_id = client::event_id(&registered, "NodeRegisteredEvent", "node_small_id")
        .map(NodeSmallId)
        .ok_or_else(|| setup_error("RegisterNode", "no NodeRegisteredEvent".into()))?;
    let create = Call::CreateTask {
        role: 0,
        model_name: None,
        security_level: 0,
        minimum_reputation_score: None,
        required_optimizations: 0,
    };
    let created = setup_call(submitter, chain_id, user, create).await?;
    let task = client::event_id(&created, "TaskRegisteredEvent", "task_small_id")
        .map(TaskSmallId)
        .ok_or_else(|| setup_error("CreateTask", "no TaskRegisteredEvent".into()))?;
    let subscribe = Call::SubscribeNodeToTask {
        node: node_id,
        task,
        price_per_compute_unit: 1,
        max_num_compute_units: client::STACK_UNITS * 1_000_000,
    };
    setup_call(submitter, chain_id, node, subscribe).await?;
    Ok(Mix::new(node_id, task, pipeline, db.config.settlement_timeout_ms))
}

async fn setup_call(
    submitter: &Submitter,
    chain_id: [u8; 32],
    lane: &mut Lane,
    call: Call,
) -> Result<TransactionResult, LoadError> {
    let name = client::call_name(&call);
    let signed = lane.key.sign_call(chain_id, lane.nonce, call);
    match submitter.submit(&signed).await {
        Answer::Executed(result) => {
            lane.nonce += 1;
            match &result.error {
                None => Ok(*result),
                Some(e) => Err(LoadError::Setup(format!("{name}: {} ({})", e.name, e.message))),
            }
        }
        Answer::Refused(e) => Err(LoadError::Setup(format!("{name}: {e}"))),
    }
}

/// For the mix on a local network: a task that advances the epoch every so often.
fn epoch_advancer(config: &LoadConfig, conn: &Client, local: bool) -> Option<tokio::task::JoinHandle<()>> {
    let Workload::Mix { advance_epoch_every: Some(every) } = config.workload else { return None };
    if !local {
        return None;
    }
    let conn = conn.clone();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            // A busy node skips one advance; the next one comes soon.
            let _ = conn.advance_epoch().await;
        }
    }))
}
