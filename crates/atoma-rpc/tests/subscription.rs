//! A subscriber that falls behind the ledger's live feed is caught up from the event log: it
//! still receives every event, once, in order.

mod common;

use atoma_contract::Call;
use atoma_types::{EventFilter, Keypair};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscription_is_caught_up_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = chain_config(dir.path());
    // The live feed keeps one event per subscriber: any burst overruns it.
    config.ledger.event_buffer = 1;
    // Blocks on a timer, so the whole burst below lands in one block and is published at once.
    config.block_time_ms = Some(300);
    let net = start_with(config).await;
    let c = &net.client;
    let chain_id = c.get_chain_info().await.expect("info").chain_id;
    let mut all = c.subscribe_events(&EventFilter::All).await.expect("subscribes");
    let mut mine = c.subscribe_events(&EventFilter::Sender(user().address())).await.expect("subscribes");

    // A burst: 40 pipelined transfers from two senders.
    let mut pending = Vec::new();
    for nonce in 0..20 {
        for key in [user(), operator()] {
            let call =
                Call::TransferToma { recipient: Keypair::test_account(2).address(), amount: nonce + 1 };
            pending.push(net.chain.enqueue(key.sign_call(chain_id.0, nonce, call)).expect("admitted"));
        }
    }
    for p in pending {
        assert!(p.outcome().await.expect("committed").status.is_success());
    }

    let expected = events_after_genesis(c, chain_id).await;
    assert_eq!(expected.len(), 40);
    assert_eq!(take(&mut all, expected.len()).await, expected);
    let from_user = walk_events(c, &EventFilter::Sender(user().address()), 1000, false).await;
    assert_eq!(from_user.len(), 20);
    assert_eq!(take(&mut mine, from_user.len()).await, from_user);
    let (_, metrics) = http(net.addr(), "GET", "/metrics", b"").await;
    assert!(metrics.contains("atoma_rpc_active_subscriptions 2\n"), "{metrics}");
    assert!(
        !metrics.contains("atoma_rpc_subscription_catch_ups_total 0\n"),
        "the burst never overran the feed"
    );
    net.stop().await;
}
