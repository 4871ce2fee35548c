//! Views of a real state: a genesis, a model, a node, a task, a stack settled and then claimed.

use atoma_api::{
    AuditView, BadgeKindView, BadgeView, ClosedStackView, ConfigView, DbView, ModelView, NodeView,
    StackLookup, StackView, TaskView, TicketStatusView, TicketView,
};
use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::event::{Event, PublishedEvent};
use atoma_contract::hash::blake2b256;
use atoma_contract::state::{BadgeKind, StackClosure, TicketStatus};
use atoma_contract::{
    Address, AtomaDb, Config, EchelonId, Genesis, NodeSmallId, ObjectId, StackSmallId, TOMA, TaskSmallId,
    TxContext,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

struct Net {
    db: AtomaDb,
    manager_badge: ObjectId,
    txs: u64,
}

fn addr(name: &str) -> Address {
    Address::from_ed25519_public_key(&blake2b256(&[name.as_bytes()]))
}

impl Net {
    fn new() -> Net {
        let genesis = Genesis {
            admin: addr("admin"),
            allocations: vec![
                (addr("admin"), 10_000 * TOMA),
                (addr("alice"), 5_000 * TOMA),
                (addr("bob"), 1_000 * TOMA),
            ],
            config: Config::default(),
            genesis_digest: blake2b256(&[b"views genesis"]),
        };
        let (db, events) = AtomaDb::genesis(&genesis).expect("genesis");
        let manager_badge = match events.first() {
            Some(Event::PublishedEvent(PublishedEvent { manager_badge, .. })) => *manager_badge,
            other => panic!("genesis emitted {other:?}"),
        };
        Net { db, manager_badge, txs: 0 }
    }

    fn call(&mut self, sender: &str, epoch: u64, call: Call) -> Vec<Event> {
        self.txs += 1;
        let digest = blake2b256(&[&self.txs.to_le_bytes()]);
        let ctx = TxContext {
            sender: addr(sender),
            epoch,
            // An hour per epoch: a call in a later epoch is past any settlement timeout.
            timestamp_ms: 3_600_000 * epoch + 1_000 * self.txs,
            tx_digest: digest,
            random_seed: digest,
        };
        self.db.execute(&ctx, &call).unwrap_or_else(|e| panic!("{call:?} failed: {e}"))
    }

    fn admin(&mut self, epoch: u64, op: AdminOp) {
        let manager_badge = self.manager_badge;
        self.call("admin", epoch, Call::Admin { manager_badge, op });
    }
}

/// Model "llama" with echelon 1 served by node 1 (also its oracle), task 1 on it, stack 1 of
/// 1000 units at 1500 each, settled at 800 units in epoch 0.
fn settled() -> Net {
    let mut net = Net::new();
    net.admin(0, AdminOp::AddModel { name: "llama".into(), modality: 0 });
    let params = EchelonParams {
        input_fee_per_token: 3,
        output_fee_per_token: 9,
        relative_performance: 100,
        settlement_timeout_ms: 45_000,
    };
    net.admin(0, AdminOp::AddModelEchelon { model_name: "llama".into(), echelon: EchelonId(1), params });
    net.call("alice", 0, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0b11 });
    net.call(
        "alice",
        0,
        Call::AddNodeToModel { node: NodeSmallId(1), model_name: "llama".into(), echelon: EchelonId(1) },
    );
    net.admin(
        0,
        AdminOp::AddModelEchelonOracleNode {
            model_name: "llama".into(),
            echelon: EchelonId(1),
            node: NodeSmallId(1),
        },
    );
    net.call(
        "bob",
        0,
        Call::CreateTask {
            role: 1,
            model_name: Some("llama".into()),
            security_level: 0,
            minimum_reputation_score: Some(50),
            required_optimizations: 0b01,
        },
    );
    net.call(
        "alice",
        0,
        Call::SubscribeNodeToTask {
            node: NodeSmallId(1),
            task: TaskSmallId(1),
            price_per_compute_unit: 1500,
            max_num_compute_units: 1_000_000,
        },
    );
    net.call(
        "bob",
        0,
        Call::AcquireNewStack {
            task: TaskSmallId(1),
            num_compute_units: 1000,
            max_price_per_compute_unit: 2000,
        },
    );
    net.call(
        "alice",
        0,
        Call::TrySettleStack {
            node: NodeSmallId(1),
            stack: StackSmallId(1),
            num_claimed_compute_units: 800,
            committed_stack_proof: vec![7; 32],
            stack_merkle_leaf: vec![8; 32],
            tee_signature: None,
        },
    );
    net
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(view: &T) -> Value {
    let json = serde_json::to_value(view).expect("a view serializes");
    let back: T = serde_json::from_value(json.clone()).expect("a view parses back");
    assert_eq!(&back, view);
    json
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn node_view_shows_offers_models_and_fees() {
    let net = settled();
    let view = NodeView::find(&net.db, NodeSmallId(1), 0).expect("node 1 exists");
    let json = round_trip(&view);
    assert_eq!(json["smallId"], json!({"inner": "1"}));
    assert_eq!(json["owner"], json!(addr("alice").to_string()));
    assert_eq!(json["collateral"], json!("1000000000000"));
    assert_eq!(json["supportedOptimizations"], json!(3));
    assert_eq!(json["reputation"], json!(100));
    assert_eq!(json["disabledAtEpoch"], Value::Null);
    assert_eq!(json["teeKey"], Value::Null);
    assert_eq!(json["lockedFees"], json!("0"));
    assert_eq!(json["openWork"], json!("1"));
    assert_eq!(
        json["subscriptions"],
        json!([{"taskSmallId": {"inner": "1"}, "pricePerComputeUnit": "1500", "maxNumComputeUnits": "1000000"}])
    );
    assert_eq!(json["models"], json!([{"modelName": "llama", "echelonId": {"id": "1"}}]));
    assert!(keys(&json).contains(&"endpoint".to_string()), "an unset endpoint is null, not absent");
    assert_eq!(json["endpoint"], Value::Null);
    assert!(NodeView::find(&net.db, NodeSmallId(2), 0).is_none());
}

#[test]
fn node_view_shows_the_endpoint_its_owner_set() {
    let mut net = settled();
    let url = "https://alice-node.example:8443/v1";
    net.call("alice", 0, Call::SetNodeEndpoint { node: NodeSmallId(1), url: url.into() });
    let view = NodeView::find(&net.db, NodeSmallId(1), 0).expect("node 1 exists");
    assert_eq!(view.endpoint.as_deref(), Some(url));
    assert_eq!(round_trip(&view)["endpoint"], json!(url));
}

#[test]
fn task_view_counts_subscribers() {
    let net = settled();
    let view = TaskView::find(&net.db, TaskSmallId(1)).expect("task 1 exists");
    let json = round_trip(&view);
    assert_eq!(json["smallId"], json!({"inner": "1"}));
    assert_eq!(json["owner"], json!(addr("bob").to_string()));
    assert_eq!(json["role"], json!(1));
    assert_eq!(json["modelName"], json!("llama"));
    assert_eq!(json["securityLevel"], json!(0));
    assert_eq!(json["minimumReputationScore"], json!(50));
    assert_eq!(json["requiredOptimizations"], json!(1));
    assert_eq!(json["deprecatedAtEpoch"], Value::Null);
    assert_eq!(json["numSubscribers"], json!("1"));
    assert_eq!(json["openStacks"], json!("1"));
    assert!(json["id"].as_str().is_some_and(|s| s.len() == 66 && s.starts_with("0x")));
}

#[test]
fn stack_view_carries_its_ticket() {
    let net = settled();
    let view = StackView::find(&net.db, StackSmallId(1)).expect("stack 1 is open");
    let json = round_trip(&view);
    assert_eq!(json["owner"], json!(addr("bob").to_string()));
    assert_eq!(json["selectedNode"], json!({"inner": "1"}));
    assert_eq!(json["taskSmallId"], json!({"inner": "1"}));
    assert_eq!(json["pricePerComputeUnit"], json!("1500"));
    assert_eq!(json["escrow"], json!("1500000"));
    assert_eq!(json["terms"]["settlementTimeoutMs"], json!("45000"));
    assert_eq!(json["terms"]["crossValidationExtraNodesCount"], json!("1"));

    let ticket = &json["settlementTicket"];
    assert_eq!(ticket["stackSmallId"], json!({"inner": "1"}));
    assert_eq!(ticket["numClaimedComputeUnits"], json!("800"));
    assert_eq!(ticket["committedStackProof"], json!(vec![7u8; 32]));
    assert_eq!(ticket["requestedAttestationNodes"], json!([]));
    assert_eq!(ticket["status"], json!("Pending"));
    assert_eq!(ticket["inDisputeSinceEpoch"], Value::Null);
    assert_eq!(ticket["disputeSettledAtEpoch"], json!("1"));
    let created: u64 = ticket["createdMs"].as_str().unwrap().parse().unwrap();
    assert_eq!(ticket["windowFloorMs"], json!((created + 45_000).to_string()));
    let alone = TicketView::find(&net.db, StackSmallId(1)).expect("stack 1 has a ticket");
    assert_eq!(alone.status, TicketStatusView::Pending);
    assert_eq!(round_trip(&alone), *ticket);
}

#[test]
fn ticket_view_reads_the_window_as_the_contract_does() {
    let net = settled();
    let stack = net.db.stack(StackSmallId(1)).expect("stack 1 is open");
    let mut ticket = (**stack.ticket.as_ref().expect("stack 1 has a ticket")).clone();
    let floor = ticket.window_floor_ms(&stack.terms);
    let until = ticket.dispute_settled_at_epoch;
    for status in [TicketStatus::Pending, TicketStatus::Confirmed, TicketStatus::InDispute { since_epoch: 0 }]
    {
        ticket.status = status;
        let view = TicketView::new(stack, &ticket);
        for epoch in [until - 1, until, until + 1] {
            for at in [floor - 1, floor, floor + 1] {
                let contract = ticket.window_open(&stack.terms, epoch, at);
                assert_eq!(view.window_open(epoch, at), contract, "{status:?} epoch {epoch} at {at}");
                let claimable = ticket.claimable(&stack.terms, epoch, at);
                assert_eq!(view.claimable(epoch, at), claimable, "{status:?} epoch {epoch} at {at}");
            }
        }
    }

    let lookup = StackLookup::find(&net.db, StackSmallId(1)).expect("stack 1 exists");
    assert!(matches!(round_trip(&lookup), Value::Object(_)));
    assert!(matches!(lookup, StackLookup::Open(_)));
    assert!(StackLookup::find(&net.db, StackSmallId(2)).is_none());
}

#[test]
fn claimed_stack_shows_how_it_closed() {
    let mut net = settled();
    net.call("alice", 1, Call::ClaimFunds { node: NodeSmallId(1), stacks: vec![StackSmallId(1)] });
    assert!(StackView::find(&net.db, StackSmallId(1)).is_none());
    assert!(TicketView::find(&net.db, StackSmallId(1)).is_none());
    let closed = ClosedStackView::find(&net.db, StackSmallId(1)).expect("stack 1 closed");
    assert_eq!(closed.closed, StackClosure::Claimed);
    // 800 of 1,000 units at 1,500: 1,200,000 to the node, 300,000 back to bob.
    let record = json!({
        "smallId": {"inner": "1"},
        "closed": "Claimed",
        "owner": addr("bob").to_string(),
        "taskSmallId": {"inner": "1"},
        "selectedNode": {"inner": "1"},
        "numComputeUnits": "1000",
        "pricePerComputeUnit": "1500",
        "escrow": "1500000",
        "claimedUnits": "800",
        "paidUnits": "800",
        "paidToNode": "1200000",
        "paidToAttesters": "0",
        "surcharge": "0",
        "refund": "300000",
        "closedEpoch": "1",
    });
    assert_eq!(round_trip(&closed), record);
    let lookup = StackLookup::find(&net.db, StackSmallId(1)).expect("stack 1 is known");
    assert_eq!(lookup, StackLookup::Closed(closed));
    assert_eq!(round_trip(&lookup), record);
}

#[test]
fn model_view_lists_echelons_and_oracles() {
    let net = settled();
    let view = ModelView::find(&net.db, "llama").expect("llama exists");
    let json = round_trip(&view);
    assert_eq!(
        json,
        json!({
            "name": "llama",
            "modality": 0,
            "enabled": true,
            "echelons": [{
                "id": {"id": "1"},
                "inputFeePerToken": "3",
                "outputFeePerToken": "9",
                "relativePerformance": "100",
                "settlementTimeoutMs": "45000",
                "oracles": [{"inner": "1"}],
            }],
        })
    );
    assert!(ModelView::find(&net.db, "nope").is_none());
}

#[test]
fn badge_views_name_their_kind() {
    let net = settled();
    let badges = BadgeView::owned_by(&net.db, &addr("bob"));
    let kinds: Vec<_> = badges.iter().map(|b| (b.kind, b.small_id)).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&(BadgeKindView::TaskBadge, Some(1))));
    assert!(kinds.contains(&(BadgeKindView::StackBadge, Some(1))));
    for badge in &badges {
        let json = round_trip(badge);
        assert_eq!(keys(&json), ["id", "owner", "kind", "smallId"]);
        assert_eq!(json["smallId"], json!({"inner": "1"}));
        assert_eq!(BadgeView::find(&net.db, badge.id).as_ref(), Some(badge));
    }

    let manager = BadgeView::find(&net.db, net.manager_badge).expect("the manager badge exists");
    let json = round_trip(&manager);
    assert_eq!(json["kind"], json!("AtomaManagerBadge"));
    assert_eq!(json["smallId"], Value::Null);
    assert_eq!(json["owner"], json!(addr("admin").to_string()));
    assert_eq!(manager.badge_kind(), Some(BadgeKind::Manager));
    let broken = BadgeView { small_id: Some(3), ..manager };
    assert_eq!(broken.badge_kind(), None);
}

#[test]
fn db_view_summarizes_and_config_uses_spec_names() {
    let net = settled();
    let view = DbView::new(&net.db);
    let json = round_trip(&view);
    assert_eq!(json["nextNodeSmallId"], json!("2"));
    assert_eq!(json["nextTaskSmallId"], json!("2"));
    assert_eq!(json["nextStackSmallId"], json!("2"));
    assert_eq!(json["feeTreasury"], json!("0"));
    assert_eq!(json["keyRotationCounter"], json!("0"));
    assert_eq!(json["totalSupply"], json!("16000000000000"));
    assert_eq!(json["attestationRoots"], json!([]));
    assert_eq!(json["packageId"], json!(net.db.globals().package_id.to_string()));

    let config = &json["config"];
    let config_keys = keys(config);
    assert_eq!(config_keys.len(), Parameter::ALL.len() + 1, "{config_keys:?}");
    assert_eq!(config["registration_enabled"], json!(true));
    for p in Parameter::ALL {
        assert_eq!(config[p.name()], json!(net.db.config().get(*p).to_string()), "{}", p.name());
    }
    assert_eq!(Config::from(&ConfigView::from(net.db.config())), *net.db.config());
}

#[test]
fn audit_view_shows_every_term() {
    let net = settled();
    let view = AuditView::new(&net.db);
    let json = round_trip(&view);
    assert_eq!(
        keys(&json),
        [
            "totalSupply",
            "accountBalances",
            "feeTreasury",
            "communalTreasury",
            "nodeCollateral",
            "nodeFees",
            "stackEscrow",
            "accounted",
            "holds"
        ]
    );
    assert_eq!(json["holds"], json!(true));
    assert_eq!(json["stackEscrow"], json!("1500000"));
    assert_eq!(json["nodeCollateral"], json!("1000000000000"));
    assert_eq!(json["accounted"], json["totalSupply"]);
}
