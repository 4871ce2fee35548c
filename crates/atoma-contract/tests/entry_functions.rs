//! Every entry function of SPEC §5: its success path with its events, and each error §5 lists
//! for it. Cases run in order against one fixture per group; a failing case must change
//! nothing, which [`World::call`] checks.

mod common;

use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::config::MAX_ENDPOINT_BYTES;
use atoma_contract::tee::build_evidence;
use atoma_contract::{
    Address, ContractError, ContractError as E, EchelonId, NodeSmallId, StackSmallId, TaskSmallId,
};
use common::*;
use ed25519_dalek::SigningKey;

type Expect = Result<&'static [&'static str], ContractError>;

/// Runs `(sender, call, expected)` cases in order.
#[track_caller]
fn run(cases: Vec<(Address, Call, Expect)>, w: &mut World) {
    for (i, (sender, call, expected)) in cases.into_iter().enumerate() {
        let got = w.call(sender, call.clone());
        let got = got.as_ref().map(|events| names(events)).map_err(|e| *e);
        let expected = expected.map(|names| names.to_vec());
        assert_eq!(got, expected, "case {i}: {call:?}");
    }
}

/// A model with echelon 1 and an oracle; node A (addr 1) and node B (addr 4) serve it; task
/// T0 (no security, no model) and T2 (sampling consensus on the model), both owned by addr 2;
/// A is subscribed to both, B to T2.
struct Fx {
    w: World,
    a: NodeSmallId,
    b: NodeSmallId,
    oracle: NodeSmallId,
    t0: TaskSmallId,
    t2: TaskSmallId,
}

fn fixture() -> Fx {
    let mut w = World::new();
    w.add_model(MODEL);
    let a = w.register_model_node(addr(1));
    let b = w.register_model_node(addr(4));
    let oracle = w.register_model_node(addr(30));
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: oracle,
    });
    let t0 = w.create_task(addr(2), 0, None);
    let t2 = w.create_task(addr(2), 2, Some(MODEL));
    w.subscribe(addr(1), a, t0, 5, 100);
    w.subscribe(addr(1), a, t2, 5, 100);
    w.subscribe(addr(4), b, t2, 5, 100);
    Fx { w, a, b, oracle, t0, t2 }
}

fn admin(w: &World, op: AdminOp) -> Call {
    Call::Admin { manager_badge: w.manager_badge, op }
}

fn settle(node: NodeSmallId, stack: StackSmallId, units: u64, proof: Vec<u8>, leaf: Vec<u8>) -> Call {
    Call::TrySettleStack {
        node,
        stack,
        num_claimed_compute_units: units,
        committed_stack_proof: proof,
        stack_merkle_leaf: leaf,
        tee_signature: None,
    }
}

#[test]
fn transfers() {
    let Fx { mut w, a, .. } = fixture();
    let badge = w.db.node(a).unwrap().badge_id;
    let poor = addr(200);
    run(
        vec![
            (addr(5), Call::TransferToma { recipient: addr(6), amount: 0 }, Err(E::EInvalidAmount)),
            (poor, Call::TransferToma { recipient: addr(6), amount: 1 }, Err(E::EInsufficientBalance)),
            (addr(5), Call::TransferToma { recipient: poor, amount: 10 }, Ok(&["TomaTransferredEvent"])),
            (addr(5), Call::TransferBadge { badge, recipient: addr(5) }, Err(E::ENotAuthorized)),
            (
                addr(5),
                Call::TransferBadge { badge: atoma_contract::ObjectId([1; 32]), recipient: addr(5) },
                Err(E::EBadgeNotFound),
            ),
            (addr(1), Call::TransferBadge { badge, recipient: addr(5) }, Ok(&["BadgeTransferredEvent"])),
            // The badge now authorizes its new owner only.
            (addr(1), Call::AddNodeCollateral { node: a, amount: 1 }, Err(E::ENotAuthorized)),
            (addr(5), Call::AddNodeCollateral { node: a, amount: 1 }, Ok(&["NodeCollateralAddedEvent"])),
        ],
        &mut w,
    );
    assert_eq!(w.balance(poor), 10);
}

#[test]
fn register_node_and_collateral() {
    let Fx { mut w, a, .. } = fixture();
    let poor = addr(200);
    w.ok(addr(5), Call::TransferToma { recipient: poor, amount: COLLATERAL - 1 });
    let register = |collateral| Call::RegisterNode { collateral, supported_optimizations: 0 };
    run(
        vec![
            (addr(5), register(COLLATERAL - 1), Err(E::EInsufficientCollateral)),
            (poor, register(COLLATERAL), Err(E::EInsufficientBalance)),
            (
                addr(5),
                Call::RegisterNode { collateral: COLLATERAL, supported_optimizations: 0x20 },
                Err(E::EInvalidOptimizations),
            ),
            (addr(5), register(COLLATERAL), Ok(&["NodeRegisteredEvent"])),
            (w.admin, admin(&w, AdminOp::DisableRegistration), Ok(&["RegistrationStatusChangedEvent"])),
            (addr(6), register(COLLATERAL), Err(E::ENodeRegDisabled)),
            (w.admin, admin(&w, AdminOp::EnableRegistration), Ok(&["RegistrationStatusChangedEvent"])),
            (addr(7), Call::AddNodeCollateral { node: NodeSmallId(99), amount: 1 }, Err(E::ENodeNotFound)),
            (addr(7), Call::AddNodeCollateral { node: a, amount: 1 }, Err(E::ENotAuthorized)),
            (addr(1), Call::AddNodeCollateral { node: a, amount: 0 }, Err(E::EInvalidAmount)),
            (addr(1), Call::AddNodeCollateral { node: a, amount: u64::MAX }, Err(E::EInsufficientBalance)),
            (addr(1), Call::AddNodeCollateral { node: a, amount: 5 }, Ok(&["NodeCollateralAddedEvent"])),
        ],
        &mut w,
    );
    assert_eq!(w.db.node(a).unwrap().collateral, COLLATERAL + 5);
    assert_eq!(w.balance(addr(5)), START_BALANCE - 2 * COLLATERAL + 1);
}

#[test]
fn subscriptions() {
    let Fx { mut w, a, b, t0, t2, .. } = fixture();
    let sub = |node, task, price, units| Call::SubscribeNodeToTask {
        node,
        task,
        price_per_compute_unit: price,
        max_num_compute_units: units,
    };
    let update = |node, task, price, units| Call::UpdateNodeSubscription {
        node,
        task,
        price_per_compute_unit: price,
        max_num_compute_units: units,
    };
    let picky = w.create_task(addr(2), 0, None);
    let reputable = {
        let events = w.ok(
            addr(2),
            Call::CreateTask {
                role: 1,
                model_name: None,
                security_level: 0,
                minimum_reputation_score: Some(500),
                required_optimizations: 0,
            },
        );
        let atoma_contract::Event::TaskRegisteredEvent(e) = &events[0] else { unreachable!() };
        e.task_small_id
    };
    let optimized = {
        let events = w.ok(
            addr(2),
            Call::CreateTask {
                role: 1,
                model_name: None,
                security_level: 0,
                minimum_reputation_score: None,
                required_optimizations: 0b101,
            },
        );
        let atoma_contract::Event::TaskRegisteredEvent(e) = &events[0] else { unreachable!() };
        e.task_small_id
    };
    let confidential = w.create_task(addr(2), 1, None);
    let plain = w.register_node(addr(5));
    run(
        vec![
            (addr(1), sub(a, TaskSmallId(999), 5, 5), Err(E::ETaskNotFound)),
            (addr(4), sub(b, t0, 5, 5), Ok(&["NodeSubscribedToTaskEvent"])),
            (addr(4), sub(b, t0, 5, 5), Err(E::ENodeAlreadySubscribedToTask)),
            (addr(1), sub(a, picky, 0, 5), Err(E::EInvalidPricePerComputeUnit)),
            (addr(1), sub(a, picky, 5, 0), Err(E::EInvalidComputeUnits)),
            (addr(4), sub(a, picky, 5, 5), Err(E::ENotAuthorized)),
            (addr(1), sub(a, reputable, 5, 5), Err(E::ENodeDoesNotMeetTaskRequirements)),
            (addr(1), sub(a, optimized, 5, 5), Err(E::ENodeDoesNotMeetTaskRequirements)),
            (
                addr(1),
                Call::SetNodeOptimizations { node: a, supported_optimizations: 0b111 },
                Ok(&["NodeOptimizationsUpdatedEvent"]),
            ),
            (
                addr(1),
                Call::SetNodeOptimizations { node: a, supported_optimizations: 0xff },
                Err(E::EInvalidOptimizations),
            ),
            (addr(1), sub(a, optimized, 5, 5), Ok(&["NodeSubscribedToTaskEvent"])),
            (addr(1), sub(a, confidential, 5, 5), Err(E::ENodeDoesNotMeetTaskRequirements)),
            (addr(5), sub(plain, t2, 5, 5), Err(E::ENodeDoesNotMeetTaskRequirements)),
            (addr(1), update(a, t0, 7, 50), Ok(&["NodeUpdateSubscriptionEvent"])),
            (addr(1), update(a, picky, 7, 50), Err(E::ENodeNotSubscribedToTask)),
            (addr(1), update(a, TaskSmallId(999), 7, 50), Err(E::ETaskNotFound)),
            (addr(1), update(a, t0, 0, 50), Err(E::EInvalidPricePerComputeUnit)),
            (addr(1), update(a, t0, 7, 0), Err(E::EInvalidComputeUnits)),
            (
                addr(1),
                Call::UnsubscribeNodeFromTask { node: a, task: picky },
                Err(E::ENodeNotSubscribedToTask),
            ),
            (
                addr(1),
                Call::UnsubscribeNodeFromTask { node: a, task: t0 },
                Ok(&["NodeUnsubscribedFromTaskEvent"]),
            ),
            (addr(2), Call::DeprecateTask { task: picky }, Ok(&["TaskDeprecationEvent"])),
            (addr(1), sub(a, picky, 5, 5), Err(E::ETaskDeprecated)),
            (addr(5), Call::PermanentlyDisableNode { node: plain }, Ok(&["NodeDisabledEvent"])),
            (addr(5), sub(plain, t0, 5, 5), Err(E::ENodeAlreadyDisabled)),
        ],
        &mut w,
    );
    assert_eq!(w.db.subscription(t0, a), None);
    assert_eq!(w.db.task(t0).unwrap().num_subscribers, 1);
}

#[test]
fn models_and_node_lifecycle() {
    let Fx { mut w, a, b, t2, .. } = fixture();
    let to_model =
        |node, name: &str, echelon| Call::AddNodeToModel { node, model_name: name.into(), echelon };
    let from_model =
        |node, name: &str, echelon| Call::RemoveNodeFromModel { node, model_name: name.into(), echelon };
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 1,
        relative_performance: 1,
        settlement_timeout_ms: 1,
    };
    let echelon2 =
        admin(&w, AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon: EchelonId(2), params });
    run(
        vec![
            (addr(1), to_model(a, "nope", EchelonId(1)), Err(E::EModelNotFound)),
            (addr(1), to_model(a, MODEL, EchelonId(9)), Err(E::EEchelonNotFound)),
            (addr(1), to_model(a, MODEL, EchelonId(1)), Err(E::ENodeAlreadySubscribedToModel)),
            (addr(1), from_model(a, MODEL, EchelonId(9)), Err(E::ENodeNotSubscribedToModel)),
            // A serves the model only in echelon 1 and is subscribed to T2, which names it.
            (addr(1), from_model(a, MODEL, EchelonId(1)), Err(E::ENodeServesTaskWithModel)),
            (w.admin, echelon2, Ok(&["EchelonAddedEvent"])),
            (addr(1), to_model(a, MODEL, EchelonId(2)), Ok(&["NodeSubscribedToModelEvent"])),
            (addr(1), from_model(a, MODEL, EchelonId(1)), Ok(&["NodeUnsubscribedFromModelEvent"])),
            (
                w.admin,
                admin(&w, AdminOp::DisableModel { name: MODEL.into() }),
                Ok(&["ModelStatusChangedEvent"]),
            ),
            (addr(4), to_model(b, MODEL, EchelonId(2)), Err(E::EModelDisabled)),
            (
                addr(3),
                Call::AcquireNewStack { task: t2, num_compute_units: 1, max_price_per_compute_unit: 5 },
                Err(E::EModelDisabled),
            ),
            (
                w.admin,
                admin(&w, AdminOp::EnableModel { name: MODEL.into() }),
                Ok(&["ModelStatusChangedEvent"]),
            ),
            (addr(4), Call::PermanentlyDisableNode { node: a }, Err(E::ENotAuthorized)),
            (addr(4), Call::DestroyDisabledNode { node: b }, Err(E::ENodeNotDisabled)),
            (w.admin, admin(&w, AdminOp::PermanentlyDisableNode { node: b }), Ok(&["NodeDisabledEvent"])),
            (addr(4), Call::PermanentlyDisableNode { node: b }, Err(E::ENodeAlreadyDisabled)),
            (addr(4), Call::AddNodeCollateral { node: b, amount: 1 }, Err(E::ENodeAlreadyDisabled)),
            (addr(4), Call::DestroyDisabledNode { node: b }, Err(E::ENodeMustWaitBeforeDestroy)),
        ],
        &mut w,
    );
    // b is disabled: it never appears in T2's pool again.
    assert!(!w.db.indexed_candidates(t2, None).contains(&b));
    w.advance_epochs(2);
    run(vec![(addr(4), Call::DestroyDisabledNode { node: b }, Ok(&["NodeDestroyedEvent"]))], &mut w);
    assert_eq!(w.balance(addr(4)), START_BALANCE);
    assert!(w.db.echelon_nodes(MODEL, EchelonId(1)).iter().all(|n| *n != b));
}

#[test]
fn node_endpoints() {
    let Fx { mut w, a, b, .. } = fixture();
    let set = |node, url: &str| Call::SetNodeEndpoint { node, url: url.into() };
    let longest = format!("https://{}", "a".repeat(MAX_ENDPOINT_BYTES - "https://".len()));
    let too_long = format!("{longest}a");
    let events = w.ok(addr(1), set(a, "https://a.example:8443/v1"));
    let [atoma_contract::Event::NodeEndpointSetEvent(e)] = &events[..] else { panic!("{events:?}") };
    assert_eq!((e.node_small_id, e.url.as_str()), (a, "https://a.example:8443/v1"));
    assert_eq!(w.db.node_endpoint(a), Some("https://a.example:8443/v1"));
    run(
        vec![
            // The same URL again is a fresh announcement, not an error.
            (addr(1), set(a, "https://a.example:8443/v1"), Ok(&["NodeEndpointSetEvent"])),
            (addr(1), set(a, "ftp://a.example"), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, "a.example:8443"), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, ""), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, "https://"), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, &too_long), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, "http://a.example/a b"), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, "http://a.example\n"), Err(E::EInvalidEndpoint)),
            (addr(1), set(a, "http://bücher.example"), Err(E::EInvalidEndpoint)),
            (addr(4), set(a, "http://b.example"), Err(E::ENotAuthorized)),
            (addr(4), set(NodeSmallId(999), "http://b.example"), Err(E::ENodeNotFound)),
            (addr(1), set(a, &longest), Ok(&["NodeEndpointSetEvent"])),
            (addr(4), set(b, "http://10.0.0.2:4000"), Ok(&["NodeEndpointSetEvent"])),
            (w.admin, admin(&w, AdminOp::PermanentlyDisableNode { node: b }), Ok(&["NodeDisabledEvent"])),
            (addr(4), set(b, "http://10.0.0.3:4000"), Err(E::ENodeAlreadyDisabled)),
        ],
        &mut w,
    );
    assert_eq!(w.db.node_endpoint(a), Some(longest.as_str()));
    // A disabled node keeps its endpoint: its open stacks are still served there.
    assert_eq!(w.db.node_endpoint(b), Some("http://10.0.0.2:4000"));
    w.advance_epochs(2);
    run(vec![(addr(4), Call::DestroyDisabledNode { node: b }, Ok(&["NodeDestroyedEvent"]))], &mut w);
    assert_eq!(w.db.node_endpoint(b), None);
    assert_eq!(w.db.node_endpoint(a), Some(longest.as_str()));
}

#[test]
fn tasks() {
    let Fx { mut w, t0, t2, a, .. } = fixture();
    let create = |role, model: Option<&str>, level, min_rep| Call::CreateTask {
        role,
        model_name: model.map(str::to_string),
        security_level: level,
        minimum_reputation_score: min_rep,
        required_optimizations: 0,
    };
    let mut cases: Vec<(Address, Call, Expect)> = vec![
        (addr(9), create(8, None, 0, None), Err(E::EInvalidTaskRole)),
        (addr(9), create(0, None, 3, None), Err(E::EInvalidSecurityLevel)),
        (addr(9), create(0, None, 0, Some(1001)), Err(E::EInvalidMinimumReputationScore)),
        (addr(9), create(0, Some("nope"), 0, None), Err(E::EModelNotFound)),
        (addr(9), create(0, None, 2, None), Err(E::ESamplingConsensusRequiresModel)),
        (
            addr(9),
            Call::CreateTask {
                role: 0,
                model_name: None,
                security_level: 0,
                minimum_reputation_score: None,
                required_optimizations: 0x40,
            },
            Err(E::EInvalidOptimizations),
        ),
        (addr(9), create(7, Some(MODEL), 2, Some(1000)), Ok(&["TaskRegisteredEvent"])),
        (addr(9), Call::DeprecateTask { task: t0 }, Err(E::ENotAuthorized)),
        (addr(9), Call::DeprecateTask { task: TaskSmallId(999) }, Err(E::ETaskNotFound)),
        (addr(2), Call::RemoveDeprecatedTask { task: t0 }, Err(E::ETaskNotDeprecated)),
        (addr(2), Call::DeprecateTask { task: t0 }, Ok(&["TaskDeprecationEvent"])),
        (addr(2), Call::DeprecateTask { task: t0 }, Err(E::ETaskAlreadyDeprecated)),
        (addr(2), Call::RemoveDeprecatedTask { task: t0 }, Err(E::ENotEnoughEpochsPassed)),
    ];
    cases.push((w.admin, admin(&w, AdminOp::DeprecateTask { task: t2 }), Ok(&["TaskDeprecationEvent"])));
    run(cases, &mut w);
    w.advance_epochs(1);
    run(
        vec![
            (addr(9), Call::RemoveDeprecatedTask { task: t0 }, Err(E::ENotAuthorized)),
            (addr(2), Call::RemoveDeprecatedTask { task: t0 }, Ok(&["TaskRemoveEvent"])),
            (addr(1), Call::UnsubscribeNodeFromTask { node: a, task: t0 }, Err(E::ETaskNotFound)),
        ],
        &mut w,
    );
    assert!(w.db.task(t0).is_none());
    assert_eq!(w.db.node_subscriptions(a).collect::<Vec<_>>(), vec![t2]);

    // A task with an open stack cannot be removed.
    let t = w.create_task(addr(2), 0, None);
    w.subscribe(addr(1), a, t, 5, 100);
    w.buy(addr(3), t, 1, 5);
    w.ok(addr(2), Call::DeprecateTask { task: t });
    w.advance_epochs(1);
    let remove = admin(&w, AdminOp::RemoveDeprecatedTask { task: t });
    run(vec![(w.admin, remove, Err(E::ETaskHasOpenStacks))], &mut w);
}

#[test]
fn acquire_new_stack() {
    let Fx { mut w, a, t0, .. } = fixture();
    let buy = |task, units, cap| Call::AcquireNewStack {
        task,
        num_compute_units: units,
        max_price_per_compute_unit: cap,
    };
    let empty = w.create_task(addr(2), 0, None);
    let poor = addr(200);
    w.ok(addr(5), Call::TransferToma { recipient: poor, amount: 499 });
    run(
        vec![
            (addr(3), buy(TaskSmallId(999), 1, 5), Err(E::ETaskNotFound)),
            (addr(3), buy(t0, 0, 5), Err(E::EInvalidComputeUnits)),
            (addr(3), buy(t0, 1, 0), Err(E::EInvalidPricePerComputeUnit)),
            (addr(3), buy(empty, 1, 5), Err(E::ENoNodesSubscribedToTask)),
            (addr(3), buy(t0, 1, 4), Err(E::ENoNodesEligibleForTask)),
            (addr(3), buy(t0, 101, 5), Err(E::ENoNodesEligibleForTask)),
            (poor, buy(t0, 100, 5), Err(E::EInsufficientBalance)),
            (addr(3), buy(t0, 100, 50), Ok(&["StackCreatedEvent"])),
            (addr(2), Call::DeprecateTask { task: t0 }, Ok(&["TaskDeprecationEvent"])),
            (addr(3), buy(t0, 1, 5), Err(E::ETaskDeprecated)),
        ],
        &mut w,
    );
    let stack = w.db.stacks().next().unwrap();
    assert_eq!((stack.price_per_compute_unit, stack.escrow, stack.selected_node), (5, 500, a));
    assert_eq!(w.db.node(a).unwrap().open_work, 1);
}

#[test]
fn settlement_and_attestation_errors() {
    let Fx { mut w, a, b, t0, t2, oracle } = fixture();
    w.admin_ok(AdminOp::SetParameter {
        parameter: Parameter::CrossValidationProbabilityPermille,
        value: 1000,
    });
    let (s0, _) = w.buy(addr(3), t0, 100, 5);
    let (s2, selected) = w.buy(addr(3), t2, 100, 5);
    let (attester, attester_owner) = if selected == a { (b, addr(4)) } else { (a, addr(1)) };
    let selected_owner = w.node_owner(selected);
    let attest = |node, stack, proof: Vec<u8>, leaf: Vec<u8>| Call::SubmitStackSettlementAttestation {
        node,
        stack,
        committed_stack_proof: proof,
        stack_merkle_leaf: leaf,
    };
    let (proof, leaf) = honest_commitment(1);
    let tee = Call::TrySettleStack {
        node: a,
        stack: s0,
        num_claimed_compute_units: 1,
        committed_stack_proof: vec![1; 32],
        stack_merkle_leaf: vec![1; 32],
        tee_signature: Some(vec![0; 64]),
    };
    run(
        vec![
            (addr(4), settle(b, s0, 1, vec![1; 32], vec![1; 32]), Err(E::ENodeNotSelectedForStack)),
            (addr(4), settle(a, s0, 1, vec![1; 32], vec![1; 32]), Err(E::ENotAuthorized)),
            (addr(1), settle(a, StackSmallId(999), 1, vec![1; 32], vec![1; 32]), Err(E::EStackNotFound)),
            (addr(1), settle(a, s0, 101, vec![1; 32], vec![1; 32]), Err(E::ETooManyComputedUnits)),
            (addr(1), settle(a, s0, 1, vec![1; 31], vec![1; 32]), Err(E::EInvalidCommittedStackProof)),
            (addr(1), settle(a, s0, 1, vec![1; 32], vec![1; 33]), Err(E::EInvalidStackMerkleLeaf)),
            (addr(1), tee, Err(E::ETaskIsNotConfidentialCompute)),
            (addr(1), attest(a, s0, vec![1; 32], vec![1; 32]), Err(E::EStackDoesNotRequireSamplingConsensus)),
            (addr(1), settle(a, s0, 100, vec![1; 32], vec![1; 32]), Ok(&["StackTrySettleEvent"])),
            (addr(1), settle(a, s0, 100, vec![1; 32], vec![1; 32]), Err(E::EStackInSettlementDispute)),
            (
                selected_owner,
                settle(selected, s2, 100, proof.to_vec(), leaf.to_vec()),
                Ok(&["StackTrySettleEvent"]),
            ),
            (
                selected_owner,
                attest(selected, s2, proof.to_vec(), leaf.to_vec()),
                Err(E::ENodeNotSelectedForAttestation),
            ),
            (
                addr(30),
                attest(oracle, s2, proof.to_vec(), leaf.to_vec()),
                Err(E::ENodeNotSelectedForAttestation),
            ),
            (
                attester_owner,
                attest(attester, s2, proof.to_vec(), vec![0; 3]),
                Err(E::EInvalidStackMerkleLeaf),
            ),
            (
                attester_owner,
                Call::StartAttestationDispute {
                    node: attester,
                    stack: s0,
                    attestation_commitment: vec![0; 32],
                },
                Err(E::ETaskSecurityLevelNotSamplingConsensus),
            ),
            (
                selected_owner,
                Call::StartAttestationDispute {
                    node: selected,
                    stack: s2,
                    attestation_commitment: vec![0; 32],
                },
                Err(E::ENodeNotSelectedForAttestation),
            ),
            (
                attester_owner,
                attest(attester, s2, proof.to_vec(), honest_leaf(1).to_vec()),
                Ok(&["NewStackSettlementAttestationEvent", "StackSettlementTicketEvent"]),
            ),
            (
                attester_owner,
                attest(attester, s2, proof.to_vec(), honest_leaf(1).to_vec()),
                Err(E::EAlreadyAttested),
            ),
        ],
        &mut w,
    );
}

#[test]
fn disputes_and_claims() {
    let Fx { mut w, a, t0, oracle, .. } = fixture();
    let (s_plain, _) = w.buy(addr(3), t0, 100, 5);
    let model_task = w.create_task(addr(2), 0, Some(MODEL));
    w.subscribe(addr(1), a, model_task, 5, 100);
    let (s, _) = w.buy(addr(3), model_task, 100, 5);
    let (s_late, _) = w.buy(addr(3), model_task, 100, 5);
    w.ok(addr(1), settle(a, s_plain, 50, vec![1; 32], vec![1; 32]));
    w.ok(addr(1), settle(a, s, 50, vec![1; 32], vec![1; 32]));
    let contest = |stack, counted_units| Call::ContestClaimedUnits { stack, counted_units };
    let resolve = |oracle_node, stack, proof: Vec<u8>| Call::ResolveStackDispute {
        oracle_node,
        stack,
        correct_committed_stack_proof: proof,
        correct_units: 50,
    };
    let claim = |stacks: Vec<StackSmallId>| Call::ClaimFunds { node: a, stacks };
    run(
        vec![
            (addr(3), contest(s_late, 10), Err(E::ENoSettlementTicket)),
            (addr(9), contest(s, 10), Err(E::ENotAuthorized)),
            (addr(3), contest(s_plain, 10), Err(E::ENoOracleForTask)),
            (addr(3), contest(s, 50), Err(E::EUnitsNotContested)),
            (addr(3), contest(s, 101), Err(E::ETooManyComputedUnits)),
            (addr(30), resolve(oracle, s, vec![1; 32]), Err(E::EStackNotInSettlementDispute)),
            (addr(9), Call::ExpireDispute { stack: s }, Err(E::EStackNotInSettlementDispute)),
            (addr(3), contest(s, 10), Ok(&["StackUnitsContestedEvent"])),
            (addr(3), contest(s, 11), Err(E::EStackAlreadyInDispute)),
            (addr(1), claim(vec![s]), Err(E::EStackInDispute)),
            (addr(1), claim(vec![s_plain]), Err(E::EStackDisputePeriodIsNotOver)),
            (addr(1), claim(vec![]), Err(E::ETooManyStacks)),
            (addr(1), claim(vec![s_plain; 257]), Err(E::ETooManyStacks)),
            (addr(4), resolve(NodeSmallId(2), s, vec![1; 32]), Err(E::ENotAnOracle)),
            (addr(1), resolve(a, s, vec![1; 32]), Err(E::ENotAnOracle)),
            (addr(30), resolve(oracle, s, vec![1; 5]), Err(E::EInvalidCommittedStackProof)),
            (addr(9), Call::ExpireDispute { stack: s }, Err(E::ENotEnoughEpochsPassed)),
        ],
        &mut w,
    );
    // An oracle that is a party to the dispute may not resolve it.
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: a,
    });
    run(vec![(addr(1), resolve(a, s, vec![1; 32]), Err(E::EOracleIsDisputeParty))], &mut w);
    w.advance_epochs(1);
    run(
        vec![
            (addr(3), contest(s_plain, 10), Err(E::EStackDisputePeriodOver)),
            (
                addr(4),
                Call::ClaimFunds { node: NodeSmallId(2), stacks: vec![s_plain] },
                Err(E::ENodeNotSelectedForSettlement),
            ),
            (addr(1), claim(vec![s_plain, s_plain]), Err(E::EStackAlreadyClaimed)),
            (addr(1), claim(vec![s_plain]), Ok(&["StackSettlementTicketClaimedEvent"])),
            (addr(1), claim(vec![s_plain]), Err(E::EStackAlreadyClaimed)),
            (
                addr(30),
                resolve(oracle, s, vec![1; 32]),
                Ok(&["StackSettlementTicketEvent", "StackDisputeResolvedEvent"]),
            ),
            // Fees from the first claim unlock only next epoch, so nothing is paid out yet.
            (addr(1), claim(vec![s]), Ok(&["StackSettlementTicketClaimedEvent"])),
        ],
        &mut w,
    );
}

#[test]
fn confidential_compute_keys() {
    let Fx { mut w, a, .. } = fixture();
    let root = SigningKey::from_bytes(&[1; 32]);
    let device = SigningKey::from_bytes(&[2; 32]);
    let enclave = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    let good = build_evidence(&root, &device, &enclave, a, 1);
    let commit = |device_type, rotation, evidence: Vec<u8>| Call::CommitNodePublicKey {
        node: a,
        device_type,
        key_rotation_counter: rotation,
        public_key: enclave,
        evidence,
    };
    let mut tampered = good.clone();
    tampered[100] ^= 1;
    let other_root = SigningKey::from_bytes(&[7; 32]);
    // y = 2 is not the y-coordinate of any point on the curve.
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = 2;
    assert!(ed25519_dalek::VerifyingKey::from_bytes(&not_a_point).is_err());
    let cases = vec![
        (addr(9), admin(&w, AdminOp::NewNetworkKeyRotation), Err(E::ENotAuthorized)),
        (w.admin, admin(&w, AdminOp::NewNetworkKeyRotation), Ok(&["NewKeyRotationEvent"] as &[&str])),
        (addr(1), commit(300, 1, good.clone()), Err(E::EInvalidTeeEvidence)),
        (
            w.admin,
            admin(
                &w,
                AdminOp::AddAttestationRoot { device_type: 301, public_key: root.verifying_key().to_bytes() },
            ),
            Err(E::EInvalidDeviceType),
        ),
        (
            w.admin,
            admin(
                &w,
                AdminOp::AddAttestationRoot { device_type: 300, public_key: root.verifying_key().to_bytes() },
            ),
            Ok(&["AttestationRootAddedEvent"]),
        ),
        (addr(1), commit(7, 1, good.clone()), Err(E::EInvalidDeviceType)),
        (
            addr(1),
            Call::CommitNodePublicKey {
                node: a,
                device_type: 300,
                key_rotation_counter: 1,
                public_key: not_a_point,
                evidence: good.clone(),
            },
            Err(E::EInvalidPublicKey),
        ),
        (
            w.admin,
            admin(&w, AdminOp::AddAttestationRoot { device_type: 0, public_key: not_a_point }),
            Err(E::EInvalidPublicKey),
        ),
        (addr(1), commit(300, 0, good.clone()), Err(E::EInvalidKeyRotationCounter)),
        (addr(1), commit(300, 1, tampered), Err(E::EInvalidTeeEvidence)),
        (
            addr(1),
            commit(300, 1, build_evidence(&other_root, &device, &enclave, a, 1)),
            Err(E::EInvalidTeeEvidence),
        ),
        (
            addr(1),
            commit(300, 1, build_evidence(&root, &device, &enclave, NodeSmallId(2), 1)),
            Err(E::EInvalidTeeEvidence),
        ),
        (addr(1), commit(300, 1, good[..100].to_vec()), Err(E::EInvalidTeeEvidence)),
        (addr(4), commit(300, 1, good.clone()), Err(E::ENotAuthorized)),
        (addr(1), commit(300, 1, good), Ok(&["NodePublicKeyCommittmentEvent"])),
        (
            w.admin,
            admin(&w, AdminOp::RemoveAttestationRoot { device_type: 300 }),
            Ok(&["AttestationRootRemovedEvent"]),
        ),
        (
            w.admin,
            admin(&w, AdminOp::RemoveAttestationRoot { device_type: 300 }),
            Err(E::EAttestationRootNotFound),
        ),
    ];
    run(cases, &mut w);
    assert_eq!(w.db.node(a).unwrap().tee_key.as_ref().unwrap().key_rotation_counter, 1);
}

#[test]
fn admin_functions() {
    let Fx { mut w, a, oracle, .. } = fixture();
    let params = EchelonParams {
        input_fee_per_token: 3,
        output_fee_per_token: 4,
        relative_performance: 5,
        settlement_timeout_ms: 6,
    };
    let op = |w: &World, op| admin(w, op);
    let name = || "mistral-7b".to_string();
    let set = |parameter, value| AdminOp::SetParameter { parameter, value };
    let stranger_badge =
        Call::Admin { manager_badge: w.db.node(a).unwrap().badge_id, op: AdminOp::DisableRegistration };
    let cases: Vec<(Address, Call, Expect)> = vec![
        (addr(1), stranger_badge, Err(E::ENotAuthorized)),
        (addr(9), op(&w, AdminOp::AddModel { name: name(), modality: 0 }), Err(E::ENotAuthorized)),
        (w.admin, op(&w, AdminOp::AddModel { name: String::new(), modality: 0 }), Err(E::EInvalidModelName)),
        (
            w.admin,
            op(&w, AdminOp::AddModel { name: "x".repeat(129), modality: 0 }),
            Err(E::EInvalidModelName),
        ),
        (w.admin, op(&w, AdminOp::AddModel { name: name(), modality: 6 }), Err(E::EInvalidModality)),
        (w.admin, op(&w, AdminOp::AddModel { name: name(), modality: 5 }), Ok(&["ModelAddedEvent"])),
        (w.admin, op(&w, AdminOp::AddModel { name: name(), modality: 5 }), Err(E::EModelAlreadyExists)),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelon {
                    model_name: name(),
                    echelon: EchelonId(3),
                    params: EchelonParams { relative_performance: 0, ..params },
                },
            ),
            Err(E::ERelativePerformanceCannotBeZero),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelon {
                    model_name: name(),
                    echelon: EchelonId(3),
                    params: EchelonParams { input_fee_per_token: 0, ..params },
                },
            ),
            Err(E::EProtocolFeeCannotBeZero),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelon {
                    model_name: name(),
                    echelon: EchelonId(3),
                    params: EchelonParams { settlement_timeout_ms: 0, ..params },
                },
            ),
            Err(E::EInvalidParameter),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelon {
                    model_name: name(),
                    echelon: EchelonId(3),
                    params: EchelonParams {
                        settlement_timeout_ms: atoma_contract::config::MAX_SETTLEMENT_TIMEOUT_MS + 1,
                        ..params
                    },
                },
            ),
            Err(E::EInvalidParameter),
        ),
        (
            w.admin,
            op(&w, AdminOp::AddModelEchelon { model_name: "nope".into(), echelon: EchelonId(3), params }),
            Err(E::EModelNotFound),
        ),
        (
            w.admin,
            op(&w, AdminOp::AddModelEchelon { model_name: name(), echelon: EchelonId(3), params }),
            Ok(&["EchelonAddedEvent"]),
        ),
        (
            w.admin,
            op(&w, AdminOp::AddModelEchelon { model_name: name(), echelon: EchelonId(3), params }),
            Err(E::EEchelonAlreadyExistsForModel),
        ),
        (
            w.admin,
            op(&w, AdminOp::UpdateModelEchelon { model_name: name(), echelon: EchelonId(4), params }),
            Err(E::EEchelonNotFound),
        ),
        (
            w.admin,
            op(&w, AdminOp::UpdateModelEchelon { model_name: name(), echelon: EchelonId(3), params }),
            Ok(&["EchelonUpdatedEvent"]),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelonOracleNode {
                    model_name: name(),
                    echelon: EchelonId(3),
                    node: NodeSmallId(99),
                },
            ),
            Err(E::ENodeNotFound),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelonOracleNode {
                    model_name: name(),
                    echelon: EchelonId(3),
                    node: oracle,
                },
            ),
            Ok(&["OracleAddedEvent"]),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::AddModelEchelonOracleNode {
                    model_name: name(),
                    echelon: EchelonId(3),
                    node: oracle,
                },
            ),
            Err(E::EOracleAlreadyExists),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::RemoveModelEchelonOracleNode {
                    model_name: name(),
                    echelon: EchelonId(3),
                    node: oracle,
                },
            ),
            Ok(&["OracleRemovedEvent"]),
        ),
        (
            w.admin,
            op(
                &w,
                AdminOp::RemoveModelEchelonOracleNode {
                    model_name: name(),
                    echelon: EchelonId(3),
                    node: oracle,
                },
            ),
            Err(E::ENotAnOracle),
        ),
        (
            w.admin,
            op(&w, AdminOp::RemoveModelEchelon { model_name: name(), echelon: EchelonId(4) }),
            Err(E::EEchelonNotFound),
        ),
        (
            w.admin,
            op(&w, AdminOp::RemoveModelEchelon { model_name: name(), echelon: EchelonId(3) }),
            Ok(&["EchelonRemovedEvent"]),
        ),
        (w.admin, op(&w, AdminOp::RemoveModel { name: MODEL.into() }), Err(E::EModelInUse)),
        (w.admin, op(&w, AdminOp::RemoveModel { name: name() }), Ok(&["ModelRemovedEvent"])),
        (w.admin, op(&w, AdminOp::RemoveModel { name: name() }), Err(E::EModelNotFound)),
        (w.admin, op(&w, AdminOp::DisableModel { name: name() }), Err(E::EModelNotFound)),
        (w.admin, op(&w, set(Parameter::CrossValidationExtraNodesCount, 17)), Err(E::EInvalidParameter)),
        (w.admin, op(&w, set(Parameter::PermilleToSlashNodeOnTimeout, 1001)), Err(E::EInvalidParameter)),
        (w.admin, op(&w, set(Parameter::RegistrationCollateral, 0)), Err(E::EInvalidParameter)),
        (
            w.admin,
            op(&w, set(Parameter::PermilleForHonestNodesOnDispute, 901)),
            Err(E::ETotalPermilleMustBeLessThan1000),
        ),
        (w.admin, op(&w, set(Parameter::StackExpirationEpochs, 3)), Ok(&["ParameterUpdatedEvent"])),
        (
            w.admin,
            op(&w, AdminOp::WithdrawFeeTreasury { amount: 1, recipient: addr(9) }),
            Err(E::EInsufficientTreasury),
        ),
        (
            w.admin,
            op(&w, AdminOp::WithdrawCommunalTreasury { amount: 0, recipient: addr(9) }),
            Err(E::EInvalidAmount),
        ),
        (
            w.admin,
            op(&w, AdminOp::CreateManagerBadge { recipient: addr(9) }),
            Ok(&["ManagerBadgeCreatedEvent"]),
        ),
    ];
    run(cases, &mut w);
    assert_eq!(w.db.config().stack_expiration_epochs, 3);
    for p in Parameter::ALL {
        let value = atoma_contract::config::range(*p).0;
        w.admin_ok(set(*p, value));
        assert_eq!(w.db.config().get(*p), value);
    }
    w.admin_ok(set(Parameter::PermilleToSlashNodeOnTimeout, 100));
    // The second manager badge works for its owner.
    let (badge, _) = w.db.owned_badges(&addr(9)).into_iter().next().unwrap();
    let call = Call::Admin { manager_badge: badge, op: AdminOp::EnableRegistration };
    w.ok(addr(9), call);

    // Treasuries: slash a node on timeout, then withdraw exactly what the treasury holds.
    let t = w.create_task(addr(2), 0, None);
    w.subscribe(addr(1), a, t, 5, 100);
    let (stack, _) = w.buy(addr(3), t, 1, 5);
    w.advance_epochs(3);
    w.ok(addr(3), Call::ReclaimExpiredStack { stack });
    let communal = w.db.globals().communal_treasury;
    assert!(communal > 0);
    let too_much = admin(&w, AdminOp::WithdrawCommunalTreasury { amount: communal + 1, recipient: addr(9) });
    let exact = admin(&w, AdminOp::WithdrawCommunalTreasury { amount: communal, recipient: addr(9) });
    run(
        vec![
            (w.admin, too_much, Err(E::EInsufficientTreasury)),
            (w.admin, exact, Ok(&["TreasuryWithdrawnEvent"])),
        ],
        &mut w,
    );
    assert_eq!(w.db.globals().communal_treasury, 0);
}
