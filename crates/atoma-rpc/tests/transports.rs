//! The client's two transports against the real server: calls over one WebSocket answer as over
//! HTTP, pipeline on that one connection, and survive the connection breaking; a request the
//! server refuses at its connection limit says so by HTTP status.

mod common;

use atoma_client::{Client, ClientError, ClientOptions, Transport};
use atoma_contract::TOMA;
use atoma_rpc::serve;
use atoma_types::{EventFilter, Keypair};
use common::*;
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_one_websocket_answer_as_over_http() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    let ws = Client::connect_ws(&net.server.ws_url()).await.expect("the WebSocket opens");
    assert_eq!((ws.transport(), net.client.transport()), (Transport::WebSocket, Transport::Http));
    run_lifecycle(&net).await;
    let (http, address) = (&net.client, user().address());
    assert_eq!(ws.get_chain_info().await.expect("info"), http.get_chain_info().await.expect("info"));
    assert_eq!(ws.get_db().await.expect("db"), http.get_db().await.expect("db"));
    assert_eq!(ws.get_task(TASK).await.expect("task"), http.get_task(TASK).await.expect("task"));
    assert_eq!(
        ws.get_balance(&address).await.expect("balance"),
        http.get_balance(&address).await.expect("b")
    );
    assert_eq!(
        walk_events(&ws, &EventFilter::All, 7, false).await,
        walk_events(http, &EventFilter::All, 7, false).await
    );
    let missing = ws.get_node(atoma_contract::NodeSmallId(99)).await.expect_err("no such node");
    assert_eq!(missing.name(), Some("ENodeNotFound"));

    // Many calls in flight together on the one connection, each answered.
    let recipients: Vec<Keypair> = (0..8).map(|_| Keypair::generate().expect("a key")).collect();
    let mut funding = JoinSet::new();
    for key in &recipients {
        let (ws, address) = (ws.clone(), key.address());
        funding.spawn(async move { ws.faucet(&address, Some(TOMA)).await });
    }
    while let Some(joined) = funding.join_next().await {
        assert!(joined.expect("joins").expect("the faucet answers").is_success());
    }
    for key in &recipients {
        assert_eq!(http.get_balance(&key.address()).await.expect("balance"), TOMA);
    }
    let sent = ok(&ws, &user(), atoma_contract::Call::TransferToma { recipient: address, amount: 1 }).await;
    assert_eq!(http.get_transaction(&sent.digest).await.expect("stored").digest, sent.digest);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_websocket_is_opened_again_at_the_next_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = start(dir.path()).await;
    let ws = Client::connect(
        &net.server.url(),
        ClientOptions { transport: Transport::WebSocket, ..Default::default() },
    )
    .await
    .expect("the WebSocket opens");
    let before = ws.get_chain_info().await.expect("info");
    // A new server on the same port: the old one closed the WebSocket when it stopped.
    let addr = net.addr();
    net.server.stop();
    net.server.clone().stopped().await;
    net.server =
        serve(net.chain.clone(), atoma_rpc::RpcConfig::listening_on(addr)).await.expect("serves again");
    // The first call may still find the old connection and fail; the next one reconnects.
    if let Err(e) = ws.get_chain_info().await {
        assert!(matches!(e, ClientError::Transport(_)), "{e}");
    }
    let after = ws.get_chain_info().await.expect("answered over a new WebSocket");
    assert_eq!(after.chain_id, before.chain_id);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_at_the_connection_limit_carries_its_http_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rpc = loopback_rpc();
    rpc.max_connections = 1;
    let net = start_serving(chain_config(dir.path()), rpc).await;
    let holder = Client::connect_ws(&net.server.url()).await.expect("the only slot");
    holder.get_chain_info().await.expect("the holder is served");

    let handshake = Client::connect_ws(&net.server.url()).await.expect_err("no slot left");
    assert_eq!(handshake.http_status(), Some(429), "{handshake}");
    assert!(handshake.is_retryable());
    let post = net.client.get_chain_info().await.expect_err("no slot left");
    assert_eq!(post.http_status(), Some(429), "{post}");
    assert!(post.is_retryable());

    drop(holder);
    let freed = async {
        loop {
            match net.client.get_chain_info().await {
                Err(e) if e.http_status() == Some(429) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await
                }
                other => return other,
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), freed)
        .await
        .expect("the slot is freed")
        .expect("served once the slot is free");
    net.stop().await;
}
