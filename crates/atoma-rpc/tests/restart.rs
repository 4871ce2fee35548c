//! Stopping chain and server and starting them again on the same data directory keeps balances,
//! events, cursors and nonces.

mod common;

use atoma_contract::{Call, TOMA};
use atoma_types::EventFilter;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_balances_events_and_cursors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    run_lifecycle(&net).await;
    let c = &net.client;
    c.faucet(&user().address(), Some(3 * TOMA)).await.expect("faucet");
    let info = c.get_chain_info().await.expect("info");
    let balances = (
        c.get_balance(&user().address()).await.expect("balance"),
        c.get_balance(&operator().address()).await.expect("balance"),
    );
    let events = walk_events(c, &EventFilter::All, 1000, false).await;
    let cursor = events[events.len() / 2].id.clone();
    let after_cursor = c.query_events(&EventFilter::All, Some(&cursor), Some(3), false).await.expect("page");
    let before_cursor = c.query_events(&EventFilter::All, Some(&cursor), Some(3), true).await.expect("page");
    let nonce = c.get_nonce(&user().address()).await.expect("nonce");
    let digest = net.chain.ledger().state_digest();
    let old_addr = net.addr();
    net.stop().await;

    let net = start(dir.path()).await;
    let c = &net.client;
    let again = c.get_chain_info().await.expect("info");
    assert_eq!(
        (again.chain_id, again.height, again.latest_block_digest),
        (info.chain_id, info.height, info.latest_block_digest)
    );
    assert_eq!(net.chain.ledger().state_digest(), digest);
    let balances_again = (
        c.get_balance(&user().address()).await.expect("balance"),
        c.get_balance(&operator().address()).await.expect("balance"),
    );
    assert_eq!(balances_again, balances);
    assert_eq!(walk_events(c, &EventFilter::All, 1000, false).await, events);
    assert_eq!(
        c.query_events(&EventFilter::All, Some(&cursor), Some(3), false).await.expect("page"),
        after_cursor
    );
    assert_eq!(
        c.query_events(&EventFilter::All, Some(&cursor), Some(3), true).await.expect("page"),
        before_cursor
    );
    assert_eq!(c.get_nonce(&user().address()).await.expect("nonce"), nonce);
    let next = ok(c, &user(), Call::TransferToma { recipient: operator().address(), amount: 1 }).await;
    assert_eq!(next.block_height, info.height + 1);
    assert!(c.audit().await.expect("audit").holds);
    // The old port is free again: the first server released everything it held.
    assert_ne!(net.addr(), old_addr);
    net.stop().await;
}
