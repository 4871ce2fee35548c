//! A whole protocol lifecycle through the chain handle, then every event filter, pagination in
//! both directions, and the live subscription.

mod common;

use atoma_contract::event::EventValue;
use atoma_contract::{
    AdminOp, Call, ContractError, EchelonId, EchelonParams, NodeSmallId, StackSmallId, TOMA, TaskSmallId,
};
use atoma_ledger::{ChainHandle, EventSubscription};
use atoma_types::events::small_id_kind;
use atoma_types::{Digest, EventFilter, EventRecord, TxStatus};
use common::{Keys, config, keys, manager_badge, ok, send, start, stop};

const MODEL: &str = "llama-3";
const NODE: NodeSmallId = NodeSmallId(1);
const TASK: TaskSmallId = TaskSmallId(1);
const STACK: StackSmallId = StackSmallId(1);
const PRICE: u64 = 10;

/// Digests of the interesting transactions of the lifecycle.
struct Ran {
    settle: Digest,
    failed_claim: Digest,
}

async fn run_lifecycle(handle: &ChainHandle, keys: &Keys) -> Ran {
    let (admin, node, user) = (&keys.admin, &keys.accounts[0], &keys.accounts[1]);
    let badge = manager_badge(handle, &admin.address());
    let admin_op = |op| Call::Admin { manager_badge: badge, op };
    ok(handle, admin, admin_op(AdminOp::AddModel { name: MODEL.into(), modality: 0 })).await;
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 1,
        relative_performance: 1,
        // The dispute window's floor in time: a millisecond, so the claim after the epoch advance
        // is not held back.
        settlement_timeout_ms: 1,
    };
    let echelon = EchelonId(1);
    ok(handle, admin, admin_op(AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon, params })).await;
    ok(handle, node, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0 }).await;
    ok(handle, node, Call::AddNodeToModel { node: NODE, model_name: MODEL.into(), echelon }).await;
    let create_task = Call::CreateTask {
        role: 0,
        model_name: Some(MODEL.into()),
        security_level: 0,
        minimum_reputation_score: None,
        required_optimizations: 0,
    };
    ok(handle, user, create_task).await;
    let subscribe = Call::SubscribeNodeToTask {
        node: NODE,
        task: TASK,
        price_per_compute_unit: PRICE,
        max_num_compute_units: 1000,
    };
    ok(handle, node, subscribe).await;
    let buy = Call::AcquireNewStack { task: TASK, num_compute_units: 100, max_price_per_compute_unit: PRICE };
    ok(handle, user, buy).await;
    let early_claim = send(handle, node, Call::ClaimFunds { node: NODE, stacks: vec![STACK] }).await.unwrap();
    assert_eq!(early_claim.status, TxStatus::Failure(ContractError::ENoSettlementTicket));
    assert!(early_claim.events.is_empty());
    let settle = Call::TrySettleStack {
        node: NODE,
        stack: STACK,
        num_claimed_compute_units: 50,
        committed_stack_proof: vec![1; 32],
        stack_merkle_leaf: vec![2; 32],
        tee_signature: None,
    };
    let settled = ok(handle, node, settle).await;
    let too_soon = send(handle, node, Call::ClaimFunds { node: NODE, stacks: vec![STACK] }).await.unwrap();
    assert_eq!(too_soon.status, TxStatus::Failure(ContractError::EStackDisputePeriodIsNotOver));
    let before = handle.node().chain_info().epoch;
    let header = handle.advance_epoch().await.unwrap();
    assert_eq!(header.epoch, before + 1);
    assert!(header.tx_digests.is_empty());
    ok(handle, node, Call::ClaimFunds { node: NODE, stacks: vec![STACK] }).await;
    Ran { settle: settled.digest, failed_claim: early_claim.digest }
}

fn all_events(handle: &ChainHandle) -> Vec<EventRecord> {
    let page = handle.ledger().query_events(&EventFilter::All, None, Some(1000), false).unwrap();
    assert!(!page.has_next_page);
    page.data
}

fn names(events: &[EventRecord]) -> Vec<&'static str> {
    events.iter().map(|e| e.event.name()).collect()
}

/// Every filter's query equals the full log filtered in memory, and a few are pinned by name.
fn check_filters(handle: &ChainHandle, keys: &Keys, ran: &Ran) {
    let all = all_events(handle);
    let filters = [
        EventFilter::EventType("StackCreatedEvent".into()),
        EventFilter::Sender(keys.accounts[1].address()),
        EventFilter::Transaction(ran.settle),
        EventFilter::Transaction(ran.failed_claim),
        EventFilter::Node(NODE),
        EventFilter::Task(TASK),
        EventFilter::Stack(STACK),
        EventFilter::EventType("NoSuchEvent".into()),
        EventFilter::Node(NodeSmallId(99)),
    ];
    for filter in &filters {
        let expected: Vec<EventRecord> = all.iter().filter(|e| filter.matches(e)).cloned().collect();
        let got = handle.ledger().query_events(filter, None, None, false).unwrap().data;
        assert_eq!(got, expected, "{filter:?}");
    }
    let by =
        |filter: EventFilter| names(&handle.ledger().query_events(&filter, None, None, false).unwrap().data);
    assert_eq!(
        by(EventFilter::Stack(STACK)),
        ["StackCreatedEvent", "StackTrySettleEvent", "StackSettlementTicketClaimedEvent"]
    );
    assert_eq!(
        by(EventFilter::Task(TASK)),
        ["TaskRegisteredEvent", "NodeSubscribedToTaskEvent", "StackCreatedEvent"]
    );
    assert_eq!(
        by(EventFilter::Sender(keys.accounts[1].address())),
        ["TaskRegisteredEvent", "StackCreatedEvent"]
    );
    assert_eq!(by(EventFilter::Transaction(ran.settle)), ["StackTrySettleEvent"]);
    assert!(by(EventFilter::Transaction(ran.failed_claim)).is_empty());
    assert_eq!(by(EventFilter::Node(NODE)).len(), 6);
}

/// Walks every page of `filter` with `limit` and returns the concatenation.
fn walk(handle: &ChainHandle, filter: &EventFilter, limit: usize, descending: bool) -> Vec<EventRecord> {
    let mut out: Vec<EventRecord> = Vec::new();
    let mut cursor = None;
    loop {
        let page = handle.ledger().query_events(filter, cursor, Some(limit), descending).unwrap();
        assert!(page.data.len() <= limit);
        if let (Some(last), Some(first)) = (out.last(), page.data.first()) {
            assert_ne!(last.id, first.id, "cursors are exclusive");
        }
        out.extend(page.data.iter().cloned());
        cursor = page.next_cursor;
        if !page.has_next_page {
            let again = handle.ledger().query_events(filter, cursor, Some(limit), descending).unwrap();
            assert!(again.data.is_empty() && !again.has_next_page && again.next_cursor == cursor);
            return out;
        }
    }
}

fn check_pagination(handle: &ChainHandle) {
    for filter in [EventFilter::All, EventFilter::Node(NODE), EventFilter::Stack(STACK)] {
        let full = handle.ledger().query_events(&filter, None, None, false).unwrap().data;
        for limit in [1, 2, 3] {
            assert_eq!(walk(handle, &filter, limit, false), full, "{filter:?} ascending by {limit}");
            let mut reversed = full.clone();
            reversed.reverse();
            assert_eq!(walk(handle, &filter, limit, true), reversed, "{filter:?} descending by {limit}");
        }
    }
    let all = all_events(handle);
    let positions: Vec<_> = all.iter().map(EventRecord::position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "the log is in execution order");
    let unknown = atoma_types::EventId { tx_digest: Digest([9; 32]), event_seq: 0 };
    assert_eq!(
        handle.ledger().query_events(&EventFilter::All, Some(unknown), None, false).map_err(|e| e.name()),
        Err("EInvalidCursor")
    );
}

fn drain(subscription: &mut EventSubscription) -> Vec<EventRecord> {
    std::iter::from_fn(|| subscription.try_recv().unwrap()).collect()
}

/// Every small id an event holds is indexed under a kind.
fn check_small_ids_have_kinds(events: &[EventRecord]) {
    for record in events {
        for (field, value) in record.event.fields() {
            let holds_small_id = match &value {
                EventValue::SmallId(_) => true,
                EventValue::List(items) => items.iter().any(|v| matches!(v, EventValue::SmallId(_))),
                _ => false,
            };
            if holds_small_id {
                assert!(
                    small_id_kind(record.event.name(), field).is_some(),
                    "{}.{field}",
                    record.event.name()
                );
            }
        }
    }
}

#[tokio::test]
async fn lifecycle_events_filters_pages_and_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let keys = keys(dir.path());
    let mut everything = handle.ledger().subscribe(EventFilter::All);
    let mut stack_only = handle.ledger().subscribe(EventFilter::Stack(STACK));
    let user_before = handle.ledger().with_state(|db| db.balance(&keys.accounts[1].address()));

    let ran = run_lifecycle(&handle, &keys).await;

    let user_after = handle.ledger().with_state(|db| db.balance(&keys.accounts[1].address()));
    assert_eq!(user_before - user_after, 50 * PRICE, "the user pays for the 50 units claimed");
    let faucet = handle.faucet(keys.accounts[2].address(), 5 * TOMA).await.unwrap();
    assert!(faucet.status.is_success());
    assert_eq!(faucet.sender, keys.faucet.address());

    check_filters(&handle, &keys, &ran);
    check_pagination(&handle);
    let all = all_events(&handle);
    check_small_ids_have_kinds(&all);
    assert_eq!(all[0].event.name(), "PublishedEvent", "genesis events open the log");
    assert_eq!(drain(&mut everything), all[1..].to_vec(), "live events arrive in log order");
    let stack_events: Vec<_> = all.iter().filter(|e| EventFilter::Stack(STACK).matches(e)).cloned().collect();
    assert_eq!(drain(&mut stack_only), stack_events);

    let failed = handle.ledger().transaction(&ran.failed_claim).unwrap().unwrap();
    assert_eq!(failed.outcome.status, TxStatus::Failure(ContractError::ENoSettlementTicket));
    assert_eq!(failed.transaction.unwrap().sender, keys.accounts[0].address());
    let settled = handle.ledger().transaction(&ran.settle).unwrap().unwrap();
    assert_eq!(settled.outcome.events.len(), 1);
    let block = handle.ledger().block(settled.outcome.height).unwrap().unwrap();
    assert_eq!(block.header.tx_digests[settled.outcome.index as usize], ran.settle);

    let info = handle.node().chain_info();
    assert_eq!(info.epoch, 1);
    assert_eq!(handle.ledger().latest_block().unwrap().header.height, info.height);
    let metrics = handle.ledger().metrics().snapshot();
    assert_eq!(metrics.transactions_failed, 2);
    assert_eq!(metrics.blocks_applied, info.height);
    assert!(handle.ledger().with_state(|db| db.audit().holds()));
    stop(handle, task);
}

#[tokio::test]
async fn dry_runs_change_nothing_and_clocks_move_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let keys = keys(dir.path());
    let user = &keys.accounts[0];
    let digest = handle.ledger().state_digest();
    let call = Call::TransferToma { recipient: keys.accounts[1].address(), amount: 3 };
    let dry = handle.ledger().dry_run(user.sign_call(common::chain_id(&handle), 0, call.clone())).unwrap();
    assert!(dry.status.is_success());
    assert_eq!(dry.events.len(), 1);
    assert_eq!(handle.ledger().state_digest(), digest);
    assert_eq!(handle.next_nonce(&user.address()), 0);
    let too_much = Call::TransferToma { recipient: keys.accounts[1].address(), amount: u64::MAX };
    let refused = handle.ledger().dry_run(user.sign_call(common::chain_id(&handle), 7, too_much)).unwrap();
    assert_eq!(refused.status, TxStatus::Failure(ContractError::EInsufficientBalance));

    let start_epoch = handle.node().chain_info().epoch;
    let small = handle.advance_clock(1_000).await.unwrap();
    assert_eq!(small.epoch, start_epoch);
    let past_end = handle.advance_clock(60_000).await.unwrap();
    assert_eq!(past_end.epoch, start_epoch + 1, "the clock passed the epoch's end");
    assert!(past_end.timestamp_ms >= small.timestamp_ms + 60_000);
    ok(&handle, user, call).await;
    assert_eq!(handle.node().chain_info().epoch, start_epoch + 1);
    stop(handle, task);
}
