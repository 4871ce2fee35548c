//! The follower against a real chain and RPC server in process: it acts on every event once,
//! resumes from its durable cursor after it is stopped, and goes on after the server goes away
//! and comes back — no event missed, none acted on twice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atoma_agent::follow::{FollowError, follow};
use atoma_agent::store::AgentStore;
use atoma_api::EventId;
use atoma_client::Client;
use atoma_contract::{Call, TOMA};
use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask};
use atoma_rpc::{RpcConfig, RpcServerHandle, serve};
use atoma_types::{EventFilter, Keypair};
use redb::{ReadableTableMetadata as _, TableDefinition};
use tokio::sync::oneshot;

/// What the test's handler writes: each event it acted on, in order.
const ACTED: TableDefinition<u64, &str> = TableDefinition::new("acted");

/// Registers a node from test account `i` (one `NodeRegisteredEvent`, and the badge's events).
async fn register(client: &Client, chain_id: [u8; 32], i: u64) {
    let key = Keypair::test_account(i);
    let call = Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 };
    let result = client.execute_transaction(&key.sign_call(chain_id, 0, call)).await.expect("executed");
    assert!(result.is_success(), "{result:?}");
}

/// Every event id in the log, in order.
async fn log(client: &Client) -> Vec<EventId> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page =
            client.query_events(&EventFilter::All, cursor.as_ref(), Some(50), false).await.expect("a page");
        ids.extend(page.data.iter().map(|e| e.id.clone()));
        if !page.has_next_page || page.data.is_empty() {
            return ids;
        }
        cursor = page.next_cursor;
    }
}

/// The events the handler acted on, in order.
fn acted(store: &AgentStore) -> Vec<EventId> {
    use redb::{ReadableDatabase as _, ReadableTable as _};
    let txn = store.database().begin_read().expect("reads");
    let Ok(table) = txn.open_table(ACTED) else { return Vec::new() };
    table
        .iter()
        .expect("iterates")
        .map(|row| serde_json::from_str(row.expect("a row").1.value()).expect("an id"))
        .collect()
}

/// Runs the follower on its own task until the returned sender fires (or is dropped).
fn start_follower(
    url: &str,
    store: Arc<AgentStore>,
    calls: Arc<Mutex<u64>>,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), FollowError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let client = Client::new(url).expect("a client");
    let task = tokio::spawn(async move {
        let mut handler = |event: &atoma_api::EventEnvelope, txn: &redb::WriteTransaction| {
            *calls.lock().expect("a lock") += 1;
            let mut table = txn.open_table(ACTED).map_err(|e| e.to_string())?;
            let next = table.len().map_err(|e| e.to_string())?;
            let id = serde_json::to_string(&event.id).map_err(|e| e.to_string())?;
            table.insert(next, id.as_str()).map_err(|e| e.to_string())?;
            Ok(())
        };
        follow(&client, &EventFilter::All, &store, &mut handler, async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, task)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve_on(chain: &ChainHandle, address: SocketAddr) -> RpcServerHandle {
    // The port may take a moment to be free again after the last server on it stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match serve(chain.clone(), RpcConfig::listening_on(address)).await {
            Ok(server) => return server,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("cannot serve on {address}: {e}"),
        }
    }
}

/// A fresh local network with `accounts` test accounts, served on a free loopback port.
async fn start_chain(dir: &std::path::Path, accounts: u64) -> (ChainHandle, ChainTask, RpcServerHandle) {
    let mut config = ChainConfig::local(dir.join("chain"));
    config.fresh = true;
    config.genesis.accounts = accounts;
    let (chain, task) = Chain::open(config).expect("a chain");
    let server = serve_on(&chain, SocketAddr::from(([127, 0, 0, 1], 0))).await;
    (chain, task, server)
}

async fn stop_chain(chain: ChainHandle, task: ChainTask, server: RpcServerHandle) {
    server.stop();
    server.stopped().await;
    chain.shutdown();
    drop(chain);
    tokio::task::spawn_blocking(move || task.join()).await.expect("joins").expect("the chain stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_acts_on_every_event_once_across_restarts_and_outages() {
    let dir = tempfile::tempdir().expect("a dir");
    let (chain, task, server) = start_chain(dir.path(), 8).await;
    let url = server.url();
    let address: SocketAddr = url.trim_start_matches("http://").parse().expect("an address");
    let client = Client::new(&url).expect("a client");
    let chain_id = client.get_chain_info().await.expect("chain info").chain_id.0;

    // Events before the agent ever ran: caught up from the log.
    register(&client, chain_id, 0).await;
    register(&client, chain_id, 1).await;
    let store = Arc::new(AgentStore::open(&dir.path().join("agent.redb")).expect("a store"));
    let calls = Arc::new(Mutex::new(0));
    let (stop, follower) = start_follower(&url, Arc::clone(&store), Arc::clone(&calls));
    // And live ones.
    register(&client, chain_id, 2).await;
    let expected = log(&client).await;
    wait_until("the follower caught up", || acted(&store) == expected).await;
    stop.send(()).expect("the follower runs");
    follower.await.expect("joins").expect("stopped cleanly");

    // While the agent is down, more events; after its restart it acts on exactly those.
    register(&client, chain_id, 3).await;
    let (stop, follower) = start_follower(&url, Arc::clone(&store), Arc::clone(&calls));
    register(&client, chain_id, 4).await;
    let expected = log(&client).await;
    wait_until("the restarted follower caught up", || acted(&store) == expected).await;

    // The server goes away (the subscription ends) and comes back on the same address, with
    // events committed while it was gone.
    server.stop();
    server.stopped().await;
    let direct = |i: u64| {
        let key = Keypair::test_account(i);
        let call = Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 };
        key.sign_call(chain_id, 0, call)
    };
    // The chain goes on without a server.
    chain.submit(direct(5)).await.expect("executed while the server is down");
    let server = serve_on(&chain, address).await;
    register(&client, chain_id, 6).await;
    let expected = log(&client).await;
    wait_until("the follower resumed after the outage", || acted(&store) == expected).await;
    let all = acted(&store);
    let mut unique = all.clone();
    unique.sort_by(|a, b| (&a.tx_digest, a.event_seq).cmp(&(&b.tx_digest, b.event_seq)));
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "no event acted on twice");
    assert_eq!(*calls.lock().expect("a lock"), all.len() as u64, "the handler ran once per event");
    assert_eq!(store.cursor().expect("reads"), all.last().cloned());

    stop.send(()).expect("the follower runs");
    follower.await.expect("joins").expect("stopped cleanly");
    stop_chain(chain, task, server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_stops_the_follower_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("a dir");
    let (chain, task, server) = start_chain(dir.path(), 2).await;
    let client = Client::new(&server.url()).expect("a client");
    let chain_id = client.get_chain_info().await.expect("chain info").chain_id.0;
    register(&client, chain_id, 0).await;
    let store = AgentStore::open(&dir.path().join("agent.redb")).expect("a store");
    let mut refuse =
        |_: &atoma_api::EventEnvelope, _: &redb::WriteTransaction| Err("refused on purpose".to_string());
    let result = follow(&client, &EventFilter::All, &store, &mut refuse, std::future::pending()).await;
    assert!(
        matches!(result, Err(FollowError::Handler { ref reason, .. }) if reason == "refused on purpose"),
        "{result:?}"
    );
    assert_eq!(store.cursor().expect("reads"), None, "the cursor did not move");
    stop_chain(chain, task, server).await;
}
