//! The library against a real node: what `run` reports adds up, with every kind of account and
//! both transports, the market mix claims what it settles, and the progress callback sees the
//! run through to the end.

mod support;

use std::time::Duration;

use atoma_ledger::ChainConfig;

use atoma_load::{Accounts, LoadConfig, LoadError, Phase, Progress, Report, Stop, Transport, Workload};
use atoma_types::Keypair;
use support::*;

fn config(url: &str, transport: Transport, clients: usize, txs: u64) -> LoadConfig {
    let mut config = LoadConfig::new(url);
    config.transport = transport;
    config.concurrency = clients;
    config.pipeline = 2;
    config.stop = Stop::Transactions(txs);
    config.record_results = true;
    config.progress_interval = Duration::from_millis(20);
    config
}

/// Runs `config`, checks what every report must satisfy, and returns it with the progress seen.
async fn run_checked(config: &LoadConfig) -> (Report, Vec<Progress>) {
    let mut seen = Vec::new();
    let report = atoma_load::run(config, |p| seen.push(*p)).await.expect("the run starts");
    assert_eq!(report.errors, 0, "{:?}", report.errors_by_name);
    assert_eq!(report.executed(), report.sent);
    assert_eq!(report.latency.count(), report.executed());
    assert_eq!(report.results.len() as u64, report.executed());
    assert!(report.tps() > 0.0 && report.blocks > 0, "{}", report.table());
    let calls: u64 = report.calls.values().map(|c| c.succeeded + c.failed).sum();
    assert_eq!(calls, report.executed());
    let last = seen.last().expect("progress was reported");
    assert_eq!(last.phase, Phase::Finished);
    assert_eq!((last.sent, last.succeeded, last.failed), (report.sent, report.succeeded, report.failed));
    assert!(seen.windows(2).all(|w| w[0].done() <= w[1].done()), "progress went backwards");
    (report, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_over_both_transports_with_every_kind_of_account() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chain = ChainConfig::local(dir.path());
    chain.genesis.accounts = 4;
    let node = Node::start(chain, loopback_rpc()).await;
    let url = node.server.url();

    // Faucet-funded keys over WebSocket, to a count.
    let (report, _) = run_checked(&config(&url, Transport::WebSocket, 3, 24)).await;
    assert_eq!((report.sent, report.succeeded), (24, 24));
    assert_eq!(report.calls["TransferToma"].succeeded, 24);
    assert!(report.table().contains("transfers over ws"));

    // The local network's test accounts over HTTP, for a time.
    let mut timed = config(&url, Transport::Http, 2, 1);
    timed.stop = Stop::Duration(Duration::from_millis(1500));
    timed.accounts = Accounts::TestAccounts { first: 0 };
    let (report, seen) = run_checked(&timed).await;
    assert!(report.sent > 0);
    assert!(seen.iter().any(|p| p.phase == Phase::Running));
    let senders: std::collections::BTreeSet<_> = report.results.iter().map(|a| a.sender).collect();
    let expected: std::collections::BTreeSet<_> =
        (0..2).map(|i| Keypair::test_account(i).address()).collect();
    assert_eq!(senders, expected);

    // Keys the caller gives (test accounts 2 and 3); their nonces are read from the node.
    let mut given = config(&url, Transport::WebSocket, 2, 6);
    given.accounts = Accounts::Keys(vec![Keypair::test_account(2), Keypair::test_account(3)]);
    let (report, _) = run_checked(&given).await;
    assert_eq!(report.succeeded, 6);

    // Every answered transaction is on the chain with its answer.
    for answered in &report.results {
        let stored = node.chain.ledger().transaction(&answered.digest).expect("reads").expect("on the chain");
        assert_eq!(stored.outcome.height, answered.block_height);
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mix_buys_settles_and_claims() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chain = ChainConfig::local(dir.path());
    // Claims wait for the dispute window's floor in time too: a 100 ms settlement timeout lets
    // them happen within the run.
    chain.genesis.contract_config.settlement_timeout_ms = 100;
    let node = Node::start(chain, loopback_rpc()).await;
    let mut mix = config(&node.server.url(), Transport::WebSocket, 2, 1);
    mix.workload = Workload::Mix { advance_epoch_every: Some(Duration::from_millis(300)) };
    mix.stop = Stop::Duration(Duration::from_secs(3));
    let (report, seen) = run_checked(&mix).await;
    assert!(seen.iter().any(|p| matches!(p.phase, Phase::Setup { .. })), "setup progress");
    for call in ["AcquireNewStack", "TrySettleStack", "ClaimFunds"] {
        let counts = report.calls.get(call).copied().unwrap_or_default();
        assert!(counts.succeeded > 0, "no {call} succeeded: {}", report.table());
    }
    assert!(node.chain.ledger().with_state(atoma_api::AuditView::new).holds);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_and_unreachable_nodes_are_errors() {
    let mut zero = LoadConfig::new("http://127.0.0.1:1");
    zero.concurrency = 0;
    assert!(matches!(atoma_load::run(&zero, |_| {}).await, Err(LoadError::InvalidConfig(_))));
    let mut few_keys = LoadConfig::new("http://127.0.0.1:1");
    few_keys.accounts = Accounts::Keys(vec![Keypair::test_account(0)]);
    assert!(matches!(atoma_load::run(&few_keys, |_| {}).await, Err(LoadError::InvalidConfig(_))));
    let mut nobody = LoadConfig::new("http://127.0.0.1:1");
    nobody.request_timeout = Duration::from_secs(2);
    for transport in [Transport::Http, Transport::WebSocket] {
        nobody.transport = transport;
        let error = atoma_load::run(&nobody, |_| {}).await.expect_err("nothing listens on port 1");
        assert!(matches!(error, LoadError::Connect(_)), "{error}");
    }
    let bad_url = LoadConfig::new("127.0.0.1:9000");
    assert!(matches!(atoma_load::run(&bad_url, |_| {}).await, Err(LoadError::Connect(_))));
}
