//! Who may do what (issue "Reliability", item 5): for every entry function that needs a role,
//! every role that does not belong is refused — with `ENotAuthorized`, or with the function's
//! own error when the caller names an object of its own — and nothing changes.

mod common;

use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::tee::build_evidence;
use atoma_contract::{Address, ContractError as E, EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use common::*;
use ed25519_dalek::SigningKey;

const ADMIN: u8 = 0;
const NODE_A: u8 = 1;
const TASK_OWNER: u8 = 2;
const USER: u8 = 3;
const NODE_B: u8 = 4;
const STRANGER: u8 = 9;
const ORACLE: u8 = 30;

/// A sampling-consensus market where node A is selected for a stack of USER's and node B is its
/// attester; A also has a settled no-security stack; ORACLE's node is an oracle of the model.
struct Fx {
    w: World,
    a: NodeSmallId,
    b: NodeSmallId,
    oracle: NodeSmallId,
    task: TaskSmallId,
    stack: StackSmallId,
    plain_stack: StackSmallId,
}

fn fixture() -> Fx {
    let mut w = World::new();
    w.add_model(MODEL);
    for (parameter, value) in [
        (Parameter::CrossValidationProbabilityPermille, 1000),
        (Parameter::CrossValidationExtraNodesCount, 1),
    ] {
        w.admin_ok(AdminOp::SetParameter { parameter, value });
    }
    let a = w.register_model_node(addr(NODE_A));
    let oracle = w.register_model_node(addr(ORACLE));
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: oracle,
    });
    let task = w.create_task(addr(TASK_OWNER), 2, Some(MODEL));
    w.subscribe(addr(NODE_A), a, task, 5, 100);
    let (stack, selected) = w.buy(addr(USER), task, 10, 5);
    assert_eq!(selected, a);
    let b = w.register_model_node(addr(NODE_B));
    w.subscribe(addr(NODE_B), b, task, 9, 100);
    let (proof, leaf) = honest_commitment(1);
    w.ok(addr(NODE_A), w.settle_call(a, stack, 10, proof, leaf));
    assert_eq!(w.db.settlement_ticket(stack).unwrap().requested_attestation_nodes, vec![b]);
    let plain = w.create_task(addr(TASK_OWNER), 0, Some(MODEL));
    w.subscribe(addr(NODE_A), a, plain, 5, 100);
    let (plain_stack, _) = w.buy(addr(USER), plain, 10, 5);
    w.ok(addr(NODE_A), w.settle_call(a, plain_stack, 10, [1; 32], [1; 32]));
    Fx { w, a, b, oracle, task, stack, plain_stack }
}

/// Every sender in `senders` is refused `call` with `expected`.
#[track_caller]
fn refused(w: &mut World, senders: &[u8], call: &Call, expected: E) {
    for sender in senders {
        assert_eq!(w.err(addr(*sender), call.clone()), expected, "sender {sender} on {call:?}");
    }
}

/// Everyone but the owner of node A.
const NOT_A: &[u8] = &[ADMIN, TASK_OWNER, USER, NODE_B, STRANGER, ORACLE];

#[test]
fn node_calls_belong_to_the_nodes_owner() {
    let Fx { mut w, a, task, stack, plain_stack, .. } = fixture();
    let (proof, _) = honest_commitment(1);
    let root = SigningKey::from_bytes(&[1; 32]);
    let enclave = SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes();
    let evidence = build_evidence(&root, &SigningKey::from_bytes(&[2; 32]), &enclave, a, 0);
    let calls = vec![
        Call::AddNodeCollateral { node: a, amount: 1 },
        Call::SubscribeNodeToTask { node: a, task, price_per_compute_unit: 1, max_num_compute_units: 1 },
        Call::UpdateNodeSubscription { node: a, task, price_per_compute_unit: 1, max_num_compute_units: 1 },
        Call::UnsubscribeNodeFromTask { node: a, task },
        Call::AddNodeToModel { node: a, model_name: MODEL.into(), echelon: EchelonId(1) },
        Call::RemoveNodeFromModel { node: a, model_name: MODEL.into(), echelon: EchelonId(1) },
        Call::SetNodeOptimizations { node: a, supported_optimizations: 1 },
        Call::SetNodeEndpoint { node: a, url: "https://a.example".into() },
        Call::PermanentlyDisableNode { node: a },
        Call::DestroyDisabledNode { node: a },
        Call::WithdrawFees { node: a },
        Call::CommitNodePublicKey {
            node: a,
            device_type: 300,
            key_rotation_counter: 0,
            public_key: enclave,
            evidence,
        },
        w.settle_call(a, plain_stack, 1, [1; 32], [1; 32]),
        Call::ClaimFunds { node: a, stacks: vec![stack] },
        Call::SubmitStackSettlementAttestation {
            node: a,
            stack,
            committed_stack_proof: proof.to_vec(),
            stack_merkle_leaf: proof.to_vec(),
        },
        Call::StartAttestationDispute { node: a, stack, attestation_commitment: vec![0; 32] },
        Call::ResolveStackDispute {
            oracle_node: a,
            stack,
            correct_committed_stack_proof: vec![0; 32],
            correct_units: 1,
        },
    ];
    for call in &calls {
        refused(&mut w, NOT_A, call, E::ENotAuthorized);
    }
}

#[test]
fn another_nodes_owner_naming_its_own_node_gets_the_functions_own_error() {
    let Fx { mut w, b, oracle, stack, plain_stack, .. } = fixture();
    let (proof, leaf) = honest_commitment(1);
    let cases = vec![
        (w.settle_call(b, plain_stack, 1, proof, leaf), E::ENodeNotSelectedForStack),
        (Call::ClaimFunds { node: b, stacks: vec![stack] }, E::ENodeNotSelectedForSettlement),
        (
            Call::SubmitStackSettlementAttestation {
                node: b,
                stack: plain_stack,
                committed_stack_proof: proof.to_vec(),
                stack_merkle_leaf: leaf.to_vec(),
            },
            E::EStackDoesNotRequireSamplingConsensus,
        ),
        (
            Call::ResolveStackDispute {
                oracle_node: b,
                stack,
                correct_committed_stack_proof: vec![0; 32],
                correct_units: 1,
            },
            E::EStackNotInSettlementDispute,
        ),
    ];
    for (call, expected) in cases {
        refused(&mut w, &[NODE_B], &call, expected);
    }
    // Node A (the selected node) cannot attest its own stack, nor can the oracle's node.
    let attest = |node| Call::SubmitStackSettlementAttestation {
        node,
        stack,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: leaf.to_vec(),
    };
    refused(&mut w, &[NODE_A], &attest(NodeSmallId(1)), E::ENodeNotSelectedForAttestation);
    refused(&mut w, &[ORACLE], &attest(oracle), E::ENodeNotSelectedForAttestation);
    // Only the requested attester may open an attestation dispute.
    let dispute =
        Call::StartAttestationDispute { node: NodeSmallId(2), stack, attestation_commitment: vec![0; 32] };
    refused(&mut w, &[ORACLE], &dispute, E::ENodeNotSelectedForAttestation);
    // B may: its dispute is then resolved only by a real oracle, never by a party.
    w.ok(addr(NODE_B), Call::StartAttestationDispute { node: b, stack, attestation_commitment: vec![0; 32] });
    let resolve = |oracle_node| Call::ResolveStackDispute {
        oracle_node,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 10,
    };
    refused(&mut w, &[NODE_B], &resolve(b), E::ENotAnOracle);
    refused(&mut w, &[NODE_A], &resolve(NodeSmallId(1)), E::ENotAnOracle);
    w.ok(addr(ORACLE), resolve(oracle));
}

#[test]
fn task_calls_belong_to_the_tasks_owner() {
    let Fx { mut w, task, .. } = fixture();
    let others = [ADMIN, NODE_A, USER, NODE_B, STRANGER, ORACLE];
    refused(&mut w, &others, &Call::DeprecateTask { task }, E::ENotAuthorized);
    refused(&mut w, &others, &Call::RemoveDeprecatedTask { task }, E::ENotAuthorized);
}

#[test]
fn stack_calls_belong_to_the_stacks_owner() {
    let Fx { mut w, stack, plain_stack, .. } = fixture();
    let others = [ADMIN, NODE_A, TASK_OWNER, NODE_B, STRANGER, ORACLE];
    refused(&mut w, &others, &Call::ReclaimExpiredStack { stack }, E::ENotAuthorized);
    refused(
        &mut w,
        &others,
        &Call::ContestClaimedUnits { stack: plain_stack, counted_units: 1 },
        E::ENotAuthorized,
    );
    // The owner may give the stack away; from then on only the new owner may act on it.
    let badge = w.db.stack(plain_stack).unwrap().badge_id;
    refused(&mut w, &others, &Call::TransferBadge { badge, recipient: addr(STRANGER) }, E::ENotAuthorized);
    w.ok(addr(USER), Call::TransferBadge { badge, recipient: addr(STRANGER) });
    refused(
        &mut w,
        &[USER],
        &Call::ContestClaimedUnits { stack: plain_stack, counted_units: 1 },
        E::ENotAuthorized,
    );
    w.ok(addr(STRANGER), Call::ContestClaimedUnits { stack: plain_stack, counted_units: 1 });
}

#[test]
fn admin_calls_need_a_manager_badge_the_sender_owns() {
    let Fx { mut w, a, task, .. } = fixture();
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 1,
        relative_performance: 1,
        settlement_timeout_ms: 1,
    };
    let ops = vec![
        AdminOp::AddModel { name: "m".into(), modality: 0 },
        AdminOp::RemoveModel { name: MODEL.into() },
        AdminOp::DisableModel { name: MODEL.into() },
        AdminOp::EnableModel { name: MODEL.into() },
        AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon: EchelonId(5), params },
        AdminOp::UpdateModelEchelon { model_name: MODEL.into(), echelon: EchelonId(1), params },
        AdminOp::RemoveModelEchelon { model_name: MODEL.into(), echelon: EchelonId(1) },
        AdminOp::AddModelEchelonOracleNode { model_name: MODEL.into(), echelon: EchelonId(1), node: a },
        AdminOp::RemoveModelEchelonOracleNode { model_name: MODEL.into(), echelon: EchelonId(1), node: a },
        AdminOp::SetParameter { parameter: Parameter::RegistrationCollateral, value: 1 },
        AdminOp::DisableRegistration,
        AdminOp::EnableRegistration,
        AdminOp::PermanentlyDisableNode { node: a },
        AdminOp::DeprecateTask { task },
        AdminOp::RemoveDeprecatedTask { task },
        AdminOp::NewNetworkKeyRotation,
        AdminOp::AddAttestationRoot {
            device_type: 300,
            public_key: SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes(),
        },
        AdminOp::RemoveAttestationRoot { device_type: 300 },
        AdminOp::WithdrawFeeTreasury { amount: 1, recipient: addr(STRANGER) },
        AdminOp::WithdrawCommunalTreasury { amount: 1, recipient: addr(STRANGER) },
        AdminOp::CreateManagerBadge { recipient: addr(STRANGER) },
    ];
    let node_badge = w.db.node(a).unwrap().badge_id;
    for op in ops {
        // The admin's badge in someone else's hands.
        let call = Call::Admin { manager_badge: w.manager_badge, op: op.clone() };
        refused(&mut w, &[NODE_A, TASK_OWNER, USER, NODE_B, STRANGER, ORACLE], &call, E::ENotAuthorized);
        // A badge the sender owns, but not a manager badge.
        let call = Call::Admin { manager_badge: node_badge, op };
        refused(&mut w, &[NODE_A], &call, E::ENotAuthorized);
    }
    // A transferred manager badge moves the authority with it.
    let badge = w.manager_badge;
    w.ok(w.admin, Call::TransferBadge { badge, recipient: addr(STRANGER) });
    let call = Call::Admin { manager_badge: badge, op: AdminOp::DisableRegistration };
    refused(&mut w, &[ADMIN], &call, E::ENotAuthorized);
    w.ok(addr(STRANGER), call);
}

#[test]
fn the_admin_has_no_say_over_settlement_and_money() {
    let Fx { mut w, a, stack, plain_stack, .. } = fixture();
    let admin: Address = w.admin;
    assert_eq!(admin, addr(ADMIN));
    refused(&mut w, &[ADMIN], &Call::ClaimFunds { node: a, stacks: vec![plain_stack] }, E::ENotAuthorized);
    refused(
        &mut w,
        &[ADMIN],
        &Call::ContestClaimedUnits { stack: plain_stack, counted_units: 1 },
        E::ENotAuthorized,
    );
    refused(&mut w, &[ADMIN], &Call::ReclaimExpiredStack { stack }, E::ENotAuthorized);
    refused(&mut w, &[ADMIN], &Call::WithdrawFees { node: a }, E::ENotAuthorized);
    let badge = w.db.node(a).unwrap().badge_id;
    refused(&mut w, &[ADMIN], &Call::TransferBadge { badge, recipient: admin }, E::ENotAuthorized);
}
