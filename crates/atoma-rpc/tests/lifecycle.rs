//! The client drives a whole protocol lifecycle against the real server, and every query method
//! answers what the chain holds; a WebSocket subscription sees every event in order; event pages
//! walked by cursor in both directions add up to the full log.

mod common;

use atoma_api::rpc::ExecutionStatus;
use atoma_api::{BadgeKindView, StackLookup, TicketStatusView};
use atoma_contract::state::StackClosure;
use atoma_contract::{Call, ContractError, TOMA, TaskSmallId};
use atoma_types::{Digest, EventFilter, Keypair};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_lifecycle_through_the_client_and_every_query() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = start(dir.path()).await;
    let c = &net.client;
    let info = c.get_chain_info().await.expect("chain info");
    assert!(info.local_network);
    assert_eq!(info.chain_id, info.genesis_digest);
    let mut everything = c.subscribe_events(&EventFilter::All).await.expect("subscribes");
    let mut one_stack = c.subscribe_events(&EventFilter::Stack(STACK)).await.expect("subscribes");
    let user_before = c.get_balance(&user().address()).await.expect("balance");
    assert_eq!(user_before, 10_000 * TOMA);
    // The state digest names the block it follows, stays put while no block comes, and moves
    // with every block.
    let before = c.get_state_digest().await.expect("a state digest");
    assert_eq!((before.height, before.block_digest), (info.height, info.latest_block_digest));
    assert_eq!(c.get_state_digest().await.expect("again"), before);

    let ran = run_lifecycle(&net).await;
    let after = c.get_state_digest().await.expect("a state digest");
    assert!(after.height > before.height);
    assert_ne!(after.state_digest, before.state_digest);

    // Transactions: results carry digests, blocks, events; a contract refusal is a result.
    assert_eq!(ran.early_claim.status, ExecutionStatus::Failure);
    assert_eq!(ran.early_claim.contract_error(), Some(ContractError::ENoSettlementTicket));
    assert!(ran.early_claim.events.is_empty());
    assert_eq!(ran.buy.events.len(), 1);
    assert_eq!(ran.buy.events[0].event_name(), "StackCreatedEvent");
    assert_eq!(ran.buy.events[0].parsed_json["small_id"], serde_json::json!({"inner": "1"}));
    let settled = c.get_transaction(&ran.settle.digest).await.expect("stored");
    assert_eq!(settled.events, ran.settle.events);
    assert_eq!(settled.block_height, ran.settle.block_height);
    let data = settled.transaction.as_ref().expect("the signed transaction");
    assert_eq!(data.call, "TrySettleStack");
    let decoded = data.decode().expect("decodes");
    assert_eq!(decoded.sender, operator().address());
    assert_eq!(data.signed().digest(), ran.settle.digest);
    let failed = c.get_transaction(&ran.early_claim.digest).await.expect("stored");
    assert_eq!(failed.error.as_ref().map(|e| e.name.as_str()), Some("ENoSettlementTicket"));
    let genesis = c.get_transaction(&info.chain_id).await.expect("the genesis pseudo-transaction");
    assert!(genesis.transaction.is_none() && !genesis.events.is_empty());

    // Blocks.
    let block = c.get_block(ran.settle.block_height).await.expect("block");
    assert!(block.transactions.contains(&ran.settle.digest));
    let latest = c.get_latest_block().await.expect("latest");
    assert_eq!(latest.height, c.get_chain_info().await.expect("info").height);
    assert_eq!(c.get_block(latest.height).await.expect("tip"), latest);
    assert_eq!(c.get_block(0).await.expect("genesis block").parent_digest, info.chain_id);

    // Money: the user paid for the 50 units claimed, and every base unit is accounted for.
    let user_after = c.get_balance(&user().address()).await.expect("balance");
    assert_eq!(user_after, user_before - CLAIMED * PRICE);
    let audit = c.audit().await.expect("audit");
    assert!(audit.holds, "{audit:?}");
    assert_eq!(c.get_balance(&Keypair::from_secret_bytes([42; 32]).address()).await.expect("0"), 0);

    // Nonces: the node sent register, add-to-model, subscribe, early claim, settle, claim.
    assert_eq!(c.get_nonce(&operator().address()).await.expect("nonce"), 6);

    // State views.
    let node = c.get_node(NODE).await.expect("node");
    assert_eq!(node.owner, Some(operator().address()));
    assert_eq!(node.collateral, 1_000 * TOMA);
    assert_eq!(node.subscriptions.len(), 1);
    assert_eq!(node.models.len(), 1);
    let task = c.get_task(TASK).await.expect("task");
    assert_eq!(task.owner, Some(user().address()));
    assert_eq!(task.model_name.as_deref(), Some(MODEL));
    assert_eq!(task.num_subscribers, 1);
    match c.get_stack(STACK).await.expect("stack") {
        StackLookup::Closed(closed) => assert_eq!(closed.closed, StackClosure::Claimed),
        StackLookup::Open(open) => panic!("the stack is claimed, not open: {open:?}"),
    }
    assert_eq!(c.get_settlement_ticket(STACK).await.unwrap_err().name(), Some("EStackNotFound"));
    let model = c.get_model(MODEL).await.expect("model");
    assert_eq!(model.echelons.len(), 1);
    let db = c.get_db().await.expect("db");
    assert_eq!((db.next_node_small_id, db.next_task_small_id, db.next_stack_small_id), (2, 2, 2));
    assert_eq!(db.package_id, info.package_id);
    let badges = c.get_owned_badges(&user().address()).await.expect("badges");
    let kinds: Vec<_> = badges.iter().map(|b| b.kind).collect();
    assert!(kinds.contains(&BadgeKindView::TaskBadge), "{kinds:?}");

    // A second stack, open, shows its ticket once settled.
    let buy = Call::AcquireNewStack { task: TASK, num_compute_units: 10, max_price_per_compute_unit: PRICE };
    ok(c, &user(), buy).await;
    let second = atoma_contract::StackSmallId(2);
    assert_eq!(c.get_settlement_ticket(second).await.unwrap_err().name(), Some("ENoSettlementTicket"));
    let settle = Call::TrySettleStack {
        node: NODE,
        stack: second,
        num_claimed_compute_units: 10,
        committed_stack_proof: vec![3; 32],
        stack_merkle_leaf: vec![4; 32],
        tee_signature: None,
    };
    ok(c, &operator(), settle).await;
    let ticket = c.get_settlement_ticket(second).await.expect("ticket");
    assert_eq!((ticket.num_claimed_compute_units, ticket.status), (10, TicketStatusView::Pending));
    assert!(
        matches!(c.get_stack(second).await.expect("open"), StackLookup::Open(s) if s.settlement_ticket.is_some())
    );

    // Task pages: three tasks, two per page.
    ok(c, &user(), create_task_call()).await;
    ok(c, &user(), create_task_call()).await;
    let first = c.list_tasks(None, Some(2)).await.expect("page");
    assert_eq!(first.data.iter().map(|t| t.small_id.0).collect::<Vec<_>>(), [1, 2]);
    assert!(first.has_next_page);
    let rest = c.list_tasks(first.next_cursor.map(TaskSmallId), Some(2)).await.expect("page");
    assert_eq!(rest.data.iter().map(|t| t.small_id.0).collect::<Vec<_>>(), [3]);
    assert!(!rest.has_next_page);
    let after = c.list_tasks(Some(TaskSmallId(3)), None).await.expect("empty page");
    assert!(after.data.is_empty() && after.next_cursor == Some(3) && !after.has_next_page);

    // Dry runs change nothing and need no nonce.
    let digest_before = net.chain.ledger().state_digest();
    let nonce = c.get_nonce(&user().address()).await.expect("nonce");
    let transfer = Call::TransferToma { recipient: operator().address(), amount: 5 };
    let dry = c
        .dry_run_transaction(&user().sign_call(info.chain_id.0, nonce + 7, transfer))
        .await
        .expect("dry run");
    assert_eq!(dry.status, ExecutionStatus::Success);
    assert_eq!(dry.events[0].event_name(), "TomaTransferredEvent");
    let too_much = Call::TransferToma { recipient: operator().address(), amount: u64::MAX };
    let dry =
        c.dry_run_transaction(&user().sign_call(info.chain_id.0, nonce, too_much)).await.expect("dry run");
    assert_eq!(dry.error.map(|e| e.name), Some("EInsufficientBalance".into()));
    assert_eq!(net.chain.ledger().state_digest(), digest_before);
    assert_eq!(c.get_nonce(&user().address()).await.expect("nonce"), nonce);

    // Local network controls.
    let stranger = Keypair::from_secret_bytes([7; 32]);
    let funded = c.faucet(&stranger.address(), Some(5 * TOMA)).await.expect("faucet");
    assert!(funded.is_success());
    assert_eq!(c.get_balance(&stranger.address()).await.expect("balance"), 5 * TOMA);
    c.faucet(&stranger.address(), None).await.expect("default amount");
    assert_eq!(c.get_balance(&stranger.address()).await.expect("balance"), 1_005 * TOMA);
    let before = c.get_latest_block().await.expect("tip");
    let moved = c.advance_clock(5_000).await.expect("clock");
    assert!(moved.timestamp_ms >= before.timestamp_ms + 5_000);
    let next_epoch = c.advance_epoch().await.expect("epoch");
    assert_eq!(next_epoch.epoch, moved.epoch + 1);
    assert!(next_epoch.transactions.is_empty());

    // Unknown ids are named errors.
    let not_found = [
        c.get_task(TaskSmallId(99)).await.err(),
        c.get_node(atoma_contract::NodeSmallId(99)).await.err(),
        c.get_stack(atoma_contract::StackSmallId(99)).await.err(),
        c.get_model("no-such-model").await.err(),
        c.get_transaction(&Digest([5; 32])).await.err(),
        c.get_block(1_000_000).await.err(),
    ];
    let names: Vec<_> = not_found.iter().map(|e| e.as_ref().and_then(|e| e.name())).collect();
    assert_eq!(
        names,
        [
            Some("ETaskNotFound"),
            Some("ENodeNotFound"),
            Some("EStackNotFound"),
            Some("EModelNotFound"),
            Some("ETransactionNotFound"),
            Some("EBlockNotFound")
        ]
    );
    assert_eq!(not_found[0].as_ref().and_then(|e| e.error_view()).map(|v| v.code), Some(312_012_017));

    // The subscriptions saw every event after they were made, in order, and nothing else.
    let expected = events_after_genesis(c, info.chain_id).await;
    assert!(expected.len() >= 15, "{}", expected.len());
    assert_eq!(take(&mut everything, expected.len()).await, expected);
    let stack_events = walk_events(c, &EventFilter::Stack(STACK), 1000, false).await;
    let names: Vec<_> = stack_events.iter().map(|e| e.event_name().to_string()).collect();
    assert_eq!(names, ["StackCreatedEvent", "StackTrySettleEvent", "StackSettlementTicketClaimedEvent"]);
    assert_eq!(take(&mut one_stack, stack_events.len()).await, stack_events);
    one_stack.unsubscribe().await.expect("unsubscribes");
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(200), everything.next()).await;
    assert!(quiet.is_err(), "no event beyond the log: {quiet:?}");

    // Pages by cursor, both ways, add up to the full list.
    for filter in [EventFilter::All, EventFilter::Node(NODE), EventFilter::Sender(user().address())] {
        let full = walk_events(c, &filter, 1000, false).await;
        assert!(!full.is_empty());
        for limit in [1, 2, 5] {
            assert_eq!(walk_events(c, &filter, limit, false).await, full, "{filter:?} ascending by {limit}");
            let mut reversed = full.clone();
            reversed.reverse();
            assert_eq!(
                walk_events(c, &filter, limit, true).await,
                reversed,
                "{filter:?} descending by {limit}"
            );
        }
    }
    let last = walk_events(c, &EventFilter::All, 1000, false).await.pop().expect("events");
    let beyond = c.query_events(&EventFilter::All, Some(&last.id), None, false).await.expect("empty page");
    assert!(beyond.data.is_empty() && !beyond.has_next_page && beyond.next_cursor == Some(last.id));
    net.stop().await;
}
