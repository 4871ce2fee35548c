//! Whole stack lifecycles for each security level (SPEC §6, §7, §9), with exact money.

mod common;

use atoma_contract::call::{AdminOp, Call, Parameter};
use atoma_contract::event::Event;
use atoma_contract::state::{StackClosure, TicketStatus};
use atoma_contract::tee::{build_evidence, sign_settlement};
use atoma_contract::{ContractError, EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use common::*;
use ed25519_dalek::SigningKey;

fn set(world: &mut World, parameter: Parameter, value: u64) {
    world.admin_ok(AdminOp::SetParameter { parameter, value });
}

#[test]
fn no_security_settle_wait_claim_refunds_the_rest() {
    let mut w = World::new();
    let (operator, creator, user) = (addr(1), addr(2), addr(3));
    let node = w.register_node(operator);
    assert_eq!(w.balance(operator), START_BALANCE - COLLATERAL);
    let task = w.create_task(creator, 0, None);
    w.subscribe(operator, node, task, 5, 1_000);
    let (stack, selected) = w.buy(user, task, 100, 10);
    assert_eq!(selected, node);
    assert_eq!(w.balance(user), START_BALANCE - 500, "escrow is base(N) = 5 × 100 at the node's price");

    let events = w.ok(operator, w.settle_call(node, stack, 60, [1; 32], [2; 32]));
    assert_eq!(names(&events), ["StackTrySettleEvent"]);
    let claim = Call::ClaimFunds { node, stacks: vec![stack] };
    assert_eq!(w.err(operator, claim.clone()), ContractError::EStackDisputePeriodIsNotOver);

    w.advance_epochs(1);
    let events = w.ok(operator, claim.clone());
    assert_eq!(names(&events), ["StackSettlementTicketClaimedEvent"]);
    let Event::StackSettlementTicketClaimedEvent(e) = &events[0] else { unreachable!() };
    assert_eq!((e.num_claimed_compute_units, e.user_refund_amount), (60, 200));
    assert_eq!(w.balance(user), START_BALANCE - 300);
    let n = w.db.node(node).unwrap();
    assert_eq!((n.fees.locked, n.fees.unlocked, n.reputation), (300, 0, 101));
    assert_eq!(w.db.stack_closure(stack), Some(StackClosure::Claimed));
    assert_eq!(w.err(operator, claim), ContractError::EStackAlreadyClaimed);

    // Earnings unlock at the next epoch (SPEC §7.3).
    assert_eq!(w.err(operator, Call::WithdrawFees { node }), ContractError::ENoFeesToWithdraw);
    w.advance_epochs(1);
    w.ok(operator, Call::WithdrawFees { node });
    assert_eq!(w.balance(operator), START_BALANCE - COLLATERAL + 300);
}

/// A sampling-consensus world: model with echelon 1, a task, `n` subscribed nodes at price
/// 1000, and an oracle node (not subscribed) owned by addr(30).
struct Consensus {
    w: World,
    task: TaskSmallId,
    oracle: NodeSmallId,
}

fn consensus(n: u8, probability: u64, k: u64) -> Consensus {
    let mut w = World::new();
    w.add_model(MODEL);
    set(&mut w, Parameter::CrossValidationProbabilityPermille, probability);
    set(&mut w, Parameter::CrossValidationExtraNodesCount, k);
    let task = w.create_task(addr(2), 2, Some(MODEL));
    for i in 0..n {
        let owner = addr(10 + i);
        let node = w.register_model_node(owner);
        w.subscribe(owner, node, task, 1_000, 1_000);
    }
    let oracle = w.register_model_node(addr(30));
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: oracle,
    });
    Consensus { w, task, oracle }
}

fn requested(w: &World, stack: StackSmallId) -> Vec<NodeSmallId> {
    w.db.settlement_ticket(stack).unwrap().requested_attestation_nodes.clone()
}

#[test]
fn sampling_consensus_without_attestation_charges_the_surcharge() {
    let Consensus { mut w, task, .. } = consensus(3, 0, 1);
    let user = addr(3);
    let (stack, node) = w.buy(user, task, 100, 1_000);
    // base 100_000 + ⌈20%⌉ 20_000 + 1 × ⌈1.2%⌉ 1_200.
    assert_eq!(w.db.stack(stack).unwrap().escrow, 121_200);
    let (proof, leaf) = honest_commitment(1);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 80, proof, leaf));
    assert!(requested(&w, stack).is_empty());
    w.advance_epochs(1);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(e) = &events[0] else { unreachable!() };
    // node 80_000, surcharge 16_000 to the fee treasury, the rest back.
    assert_eq!(e.user_refund_amount, 121_200 - 80_000 - 16_000);
    assert_eq!(w.db.globals().fee_treasury, 16_000);
    assert_eq!(w.balance(user), START_BALANCE - 96_000);
}

#[test]
fn agreeing_attesters_settle_early_and_are_paid() {
    let Consensus { mut w, task, .. } = consensus(4, 1000, 2);
    let user = addr(3);
    let (stack, node) = w.buy(user, task, 100, 1_000);
    let (proof, leaf) = honest_commitment(2);
    let operator = w.node_owner(node);
    let events = w.ok(operator, w.settle_call(node, stack, 50, proof, leaf));
    assert_eq!(names(&events), ["StackTrySettleEvent"]);
    let attesters = requested(&w, stack);
    assert_eq!(attesters.len(), 2);
    assert!(!attesters.contains(&node));
    assert_ne!(attesters[0], attesters[1]);

    for (i, attester) in attesters.iter().enumerate() {
        let call = Call::SubmitStackSettlementAttestation {
            node: *attester,
            stack,
            committed_stack_proof: proof.to_vec(),
            stack_merkle_leaf: honest_leaf(i as u64 + 1).to_vec(),
        };
        let events = w.ok(w.node_owner(*attester), call);
        let expected: &[&str] = if i == 0 {
            &["NewStackSettlementAttestationEvent"]
        } else {
            &["NewStackSettlementAttestationEvent", "StackSettlementTicketEvent"]
        };
        assert_eq!(names(&events), expected);
    }
    assert_eq!(w.db.settlement_ticket(stack).unwrap().status, TicketStatus::Confirmed);

    // Settled early: claimable in the same epoch.
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(e) = &events[0] else { unreachable!() };
    assert_eq!(e.attestation_nodes, attesters);
    // escrow 100_000 + 20_000 + 2 × 1_200; paid 50_000 + 10_000 + 2 × 600.
    assert_eq!(e.user_refund_amount, 122_400 - 61_200);
    let record = *w.db.closed_stack(stack).unwrap();
    assert_eq!(
        (record.closure, record.claimed_units, record.paid_units),
        (StackClosure::Claimed, Some(50), 50)
    );
    assert_eq!(
        (record.paid_to_node, record.paid_to_attesters, record.surcharge, record.refund),
        (50_000, 1_200, 10_000, 61_200)
    );
    for attester in attesters {
        assert_eq!(w.db.node(attester).unwrap().fees.locked, 600);
    }
}

#[test]
fn attester_disagrees_and_the_oracle_sides_with_the_selected_node() {
    let Consensus { mut w, task, oracle } = consensus(3, 1000, 1);
    let user = addr(3);
    let (stack, node) = w.buy(user, task, 100, 1_000);
    let (proof, leaf) = honest_commitment(1);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    let liar = requested(&w, stack)[0];
    let liar_collateral = w.db.node(liar).unwrap().collateral;
    let call = Call::SubmitStackSettlementAttestation {
        node: liar,
        stack,
        committed_stack_proof: vec![9; 32],
        stack_merkle_leaf: vec![8; 32],
    };
    let events = w.ok(w.node_owner(liar), call);
    assert_eq!(names(&events), ["NewStackSettlementAttestationEvent", "StackAttestationDisputeEvent"]);
    assert_eq!(
        w.err(operator, Call::ClaimFunds { node, stacks: vec![stack] }),
        ContractError::EStackInDispute
    );

    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 100,
    };
    assert_eq!(w.err(addr(31), resolve.clone()), ContractError::ENotAuthorized);
    let events = w.ok(addr(30), resolve);
    assert_eq!(
        names(&events),
        ["NodeSlashedEvent", "StackSettlementTicketEvent", "StackDisputeResolvedEvent"]
    );
    let Event::StackDisputeResolvedEvent(e) = &events[2] else { unreachable!() };
    assert!(e.selected_node_was_right);
    assert_eq!(e.slashed_nodes, vec![liar]);
    assert_eq!(e.slashed_amount, liar_collateral);
    assert_eq!(e.oracle_reward, liar_collateral / 10);
    assert_eq!(e.honest_nodes, vec![node]);
    assert_eq!(e.honest_reward_each, liar_collateral / 5);
    assert_eq!(
        w.db.globals().communal_treasury,
        liar_collateral - liar_collateral / 10 - liar_collateral / 5
    );
    let liar_state = w.db.node(liar).unwrap();
    assert_eq!((liar_state.collateral, liar_state.reputation), (0, 0));

    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(c) = &events[0] else { unreachable!() };
    assert!(c.attestation_nodes.is_empty(), "the lying attester earns nothing");
    assert_eq!(c.user_refund_amount, 121_200 - 100_000 - 20_000);
    // The slashed attester is no longer eligible anywhere.
    assert!(!w.db.indexed_candidates(task, None).contains(&liar));
}

#[test]
fn attester_disagrees_and_the_oracle_sides_with_the_attester() {
    let Consensus { mut w, task, oracle } = consensus(3, 1000, 1);
    let user = addr(3);
    let (stack, node) = w.buy(user, task, 100, 1_000);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, [7; 32], [6; 32]));
    let honest = requested(&w, stack)[0];
    let (proof, _) = honest_commitment(1);
    let dispute =
        Call::StartAttestationDispute { node: honest, stack, attestation_commitment: proof.to_vec() };
    let events = w.ok(w.node_owner(honest), dispute);
    assert_eq!(names(&events), ["StackAttestationDisputeEvent"]);

    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 100,
    };
    let events = w.ok(addr(30), resolve);
    let Some(Event::StackDisputeResolvedEvent(e)) = events.last() else { unreachable!() };
    assert!(!e.selected_node_was_right);
    assert_eq!(e.slashed_nodes, vec![node]);
    assert_eq!(e.honest_nodes, vec![honest]);
    assert_eq!(e.user_refund_amount, 121_200);
    assert_eq!(w.balance(user), START_BALANCE, "the owner gets the whole escrow back");
    assert_eq!(w.db.stack_closure(stack), Some(StackClosure::RefundedAfterDispute));
    let record = *w.db.closed_stack(stack).unwrap();
    assert_eq!((record.owner, record.claimed_units, record.paid_units), (user, Some(100), 0));
    assert_eq!((record.paid_to_node, record.paid_to_attesters, record.surcharge), (0, 0, 0));
    assert_eq!(record.refund, 121_200);
    assert_eq!(w.db.node(honest).unwrap().fees.locked, COLLATERAL / 5);
    assert_eq!(w.db.node(oracle).unwrap().fees.locked, COLLATERAL / 10);
}

#[test]
fn attester_that_never_attests_is_slashed_at_claim() {
    let Consensus { mut w, task, .. } = consensus(2, 1000, 1);
    let (stack, node) = w.buy(addr(3), task, 100, 1_000);
    let (proof, leaf) = honest_commitment(1);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    let absent = requested(&w, stack)[0];
    w.advance_epochs(1);
    let late = Call::SubmitStackSettlementAttestation {
        node: absent,
        stack,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: honest_leaf(1).to_vec(),
    };
    assert_eq!(w.err(w.node_owner(absent), late), ContractError::EStackDisputePeriodOver);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    assert_eq!(names(&events), ["NodeSlashedEvent", "StackSettlementTicketClaimedEvent"]);
    let slashed = w.db.node(absent).unwrap();
    assert_eq!(slashed.collateral, COLLATERAL - COLLATERAL / 10);
    assert_eq!(slashed.reputation, 90);
    let Event::StackSettlementTicketClaimedEvent(c) = &events[1] else { unreachable!() };
    // The absent attester's reserved share goes back to the owner.
    assert_eq!(c.user_refund_amount, 1_200);
    assert_eq!(w.db.globals().communal_treasury, COLLATERAL / 10);
}

fn attest_honestly(w: &mut World, attester: NodeSmallId, stack: StackSmallId, position: u64) -> Vec<Event> {
    let (proof, _) = honest_commitment(w.db.stack(stack).unwrap().terms.cross_validation_extra_nodes_count);
    let call = Call::SubmitStackSettlementAttestation {
        node: attester,
        stack,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: honest_leaf(position).to_vec(),
    };
    let owner = w.node_owner(attester);
    w.ok(owner, call)
}

#[test]
fn the_window_stays_open_until_the_settlement_timeout_when_the_epoch_ends_first() {
    let Consensus { mut w, task, .. } = consensus(3, 1000, 1);
    let (stack, node) = w.buy(addr(3), task, 100, 1_000);
    let timeout = w.db.stack(stack).unwrap().terms.settlement_timeout_ms;
    let (proof, leaf) = honest_commitment(1);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    let settled_ms = w.db.settlement_ticket(stack).unwrap().created_ms;
    // The epoch ends a moment after the settlement: the epoch rule alone would close the window.
    w.epoch += 1;
    assert_eq!(
        w.err(operator, Call::ClaimFunds { node, stacks: vec![stack] }),
        ContractError::EStackDisputePeriodIsNotOver
    );
    assert_eq!(
        w.err(addr(3), Call::ContestClaimedUnits { stack, counted_units: 100 }),
        ContractError::EUnitsNotContested,
        "the window is open to the owner's contest too (refused only for naming the claim)"
    );
    assert!(w.time_ms < settled_ms + timeout);
    let attester = requested(&w, stack)[0];
    let events = attest_honestly(&mut w, attester, stack, 1);
    assert_eq!(names(&events), ["NewStackSettlementAttestationEvent", "StackSettlementTicketEvent"]);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    assert_eq!(names(&events), ["StackSettlementTicketClaimedEvent"], "the attester is paid, not slashed");

    // A second stack: the epoch has ended and the timeout has passed, so the window is closed.
    let (stack, node) = w.buy(addr(4), task, 100, 1_000);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    let settled_ms = w.db.settlement_ticket(stack).unwrap().created_ms;
    w.epoch += 1;
    // Each call's block is 10 ms after the last: this one is 10 ms before the floor, still open.
    w.time_ms = settled_ms + timeout - 20;
    assert_eq!(
        w.err(addr(4), Call::ContestClaimedUnits { stack, counted_units: 100 }),
        ContractError::EUnitsNotContested
    );
    // And this one is at the floor: closed.
    let attester = requested(&w, stack)[0];
    let free = w.db.node(attester).unwrap().collateral;
    let late = Call::SubmitStackSettlementAttestation {
        node: attester,
        stack,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: honest_leaf(1).to_vec(),
    };
    assert_eq!(w.err(w.node_owner(attester), late), ContractError::EStackDisputePeriodOver);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    assert_eq!(names(&events), ["NodeSlashedEvent", "StackSettlementTicketClaimedEvent"]);
    assert_eq!(w.db.node(attester).unwrap().collateral, free - free / 10);
}

#[test]
fn an_attester_whose_deadline_has_not_passed_is_excused_when_an_oracle_decides_early() {
    // The selected node lies; one attester disputes at once and the oracle overturns the ticket
    // before the other attester's deadline: that one is neither paid nor slashed.
    let Consensus { mut w, task, oracle } = consensus(4, 1000, 2);
    let (stack, node) = w.buy(addr(3), task, 100, 1_000);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, [7; 32], [6; 32]));
    let attesters = requested(&w, stack);
    let (proof, _) = honest_commitment(2);
    let dispute =
        Call::StartAttestationDispute { node: attesters[0], stack, attestation_commitment: proof.to_vec() };
    w.ok(w.node_owner(attesters[0]), dispute);
    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 100,
    };
    let events = w.ok(addr(30), resolve);
    assert_eq!(names(&events), ["NodeSlashedEvent", "StackDisputeResolvedEvent"], "only the liar");
    assert_eq!(w.db.node(attesters[1]).unwrap().collateral, COLLATERAL);

    // The same after the deadline: the attester that never came is slashed on timeout.
    let (stack, node) = w.buy(addr(4), task, 100, 1_000);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, [7; 32], [6; 32]));
    let attesters = requested(&w, stack);
    let dispute =
        Call::StartAttestationDispute { node: attesters[0], stack, attestation_commitment: proof.to_vec() };
    w.ok(w.node_owner(attesters[0]), dispute);
    w.time_ms += w.db.stack(stack).unwrap().terms.settlement_timeout_ms;
    let absent = w.db.node(attesters[1]).unwrap().collateral;
    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 100,
    };
    let events = w.ok(addr(30), resolve);
    assert_eq!(names(&events), ["NodeSlashedEvent", "NodeSlashedEvent", "StackDisputeResolvedEvent"]);
    assert_eq!(w.db.node(attesters[1]).unwrap().collateral, absent - absent / 10);
}

#[test]
fn a_ticket_upheld_early_is_claimed_without_slashing_an_attester_still_in_time() {
    // One attester lies, the oracle upholds the node, and the node claims at once: the other
    // attester's deadline has not passed, so its reserved share goes back to the owner and it
    // loses nothing.
    let Consensus { mut w, task, oracle } = consensus(4, 1000, 2);
    let user = addr(3);
    let (stack, node) = w.buy(user, task, 100, 1_000);
    let (proof, leaf) = honest_commitment(2);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    let attesters = requested(&w, stack);
    let lie = Call::SubmitStackSettlementAttestation {
        node: attesters[0],
        stack,
        committed_stack_proof: vec![9; 32],
        stack_merkle_leaf: vec![8; 32],
    };
    w.ok(w.node_owner(attesters[0]), lie);
    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: 100,
    };
    w.ok(addr(30), resolve);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    assert_eq!(names(&events), ["StackSettlementTicketClaimedEvent"]);
    let Event::StackSettlementTicketClaimedEvent(c) = &events[0] else { unreachable!() };
    assert!(c.attestation_nodes.is_empty());
    // escrow 100_000 + 20_000 + 2 × 1_200; paid 100_000 + 20_000.
    assert_eq!(c.user_refund_amount, 2_400);
    assert_eq!(w.db.node(attesters[1]).unwrap().collateral, COLLATERAL);
    assert_eq!(w.db.node(attesters[1]).unwrap().reputation, 100);
}

/// A confidential-compute world: the admin trusts a root for NVIDIA GPUs and one node commits
/// an enclave key. Returns the world, task, node and the enclave key.
fn confidential() -> (World, TaskSmallId, NodeSmallId, SigningKey) {
    let mut w = World::new();
    let root = SigningKey::from_bytes(&[1; 32]);
    let device = SigningKey::from_bytes(&[2; 32]);
    let enclave = SigningKey::from_bytes(&[3; 32]);
    w.admin_ok(AdminOp::AddAttestationRoot { device_type: 300, public_key: root.verifying_key().to_bytes() });
    let operator = addr(1);
    let node = w.register_node(operator);
    let public_key = enclave.verifying_key().to_bytes();
    let evidence = build_evidence(&root, &device, &public_key, node, 0);
    w.ok(
        operator,
        Call::CommitNodePublicKey { node, device_type: 300, key_rotation_counter: 0, public_key, evidence },
    );
    let task = w.create_task(addr(2), 1, None);
    w.subscribe(operator, node, task, 10, 1_000);
    (w, task, node, enclave)
}

#[test]
fn confidential_compute_settles_at_once_with_a_valid_proof() {
    let (mut w, task, node, enclave) = confidential();
    let user = addr(3);
    let (stack, _) = w.buy(user, task, 100, 10);
    let proof = [5; 32];
    let mut settle = w.settle_call(node, stack, 70, proof, [4; 32]);
    if let Call::TrySettleStack { tee_signature, .. } = &mut settle {
        *tee_signature = Some(sign_settlement(&enclave, stack, 70, &proof));
    }
    let events = w.ok(addr(1), settle);
    assert_eq!(names(&events), ["StackTrySettleEvent", "StackSettlementTicketEvent"]);
    // No dispute window: the owner cannot contest and the node claims at once.
    let contest = Call::ContestClaimedUnits { stack, counted_units: 10 };
    assert_eq!(w.err(user, contest), ContractError::EStackDisputePeriodOver);
    let events = w.ok(addr(1), Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(c) = &events[0] else { unreachable!() };
    assert_eq!(c.user_refund_amount, 300);
}

#[test]
fn confidential_compute_refuses_forged_or_missing_proofs() {
    let (mut w, task, node, enclave) = confidential();
    let (stack, _) = w.buy(addr(3), task, 100, 10);
    let proof = [5; 32];
    let forger = SigningKey::from_bytes(&[99; 32]);
    let cases = [
        None,
        Some(sign_settlement(&forger, stack, 70, &proof)),
        // Signed for other units than claimed.
        Some(sign_settlement(&enclave, stack, 71, &proof)),
        Some(vec![0; 10]),
    ];
    for signature in cases {
        let mut settle = w.settle_call(node, stack, 70, proof, [4; 32]);
        if let Call::TrySettleStack { tee_signature, .. } = &mut settle {
            *tee_signature = signature;
        }
        assert_eq!(w.err(addr(1), settle), ContractError::EInvalidTeeProof);
    }
    // After a key rotation the old enclave key is no longer current.
    w.admin_ok(AdminOp::NewNetworkKeyRotation);
    let mut settle = w.settle_call(node, stack, 70, proof, [4; 32]);
    if let Call::TrySettleStack { tee_signature, .. } = &mut settle {
        *tee_signature = Some(sign_settlement(&enclave, stack, 70, &proof));
    }
    assert_eq!(w.err(addr(1), settle), ContractError::EInvalidTeeProof);
}

#[test]
fn unsettled_stack_expires_and_its_owner_reclaims_everything() {
    let mut w = World::new();
    let node = w.register_node(addr(1));
    let task = w.create_task(addr(2), 0, None);
    w.subscribe(addr(1), node, task, 7, 100);
    let user = addr(3);
    let (stack, _) = w.buy(user, task, 100, 7);
    let reclaim = Call::ReclaimExpiredStack { stack };
    w.advance_epochs(6);
    assert_eq!(w.err(user, reclaim.clone()), ContractError::EStackNotExpired);
    w.advance_epochs(1);
    assert_eq!(w.err(addr(4), reclaim.clone()), ContractError::ENotAuthorized);
    let events = w.ok(user, reclaim);
    assert_eq!(names(&events), ["StackExpiredEvent", "NodeSlashedEvent"]);
    assert_eq!(w.balance(user), START_BALANCE);
    let n = w.db.node(node).unwrap();
    assert_eq!((n.collateral, n.reputation, n.open_work), (COLLATERAL - COLLATERAL / 10, 90, 0));
    assert_eq!(w.db.stack_closure(stack), Some(StackClosure::Reclaimed));
    let record = *w.db.closed_stack(stack).unwrap();
    assert_eq!((record.owner, record.selected_node, record.task_small_id), (user, node, task));
    assert_eq!((record.num_compute_units, record.price_per_compute_unit, record.escrow), (100, 7, 700));
    assert_eq!(
        (record.claimed_units, record.paid_units, record.paid_to_node, record.refund),
        (None, 0, 0, 700)
    );
    assert_eq!(record.closed_epoch, 7);
}

#[test]
fn dispute_no_oracle_resolves_expires_with_a_full_refund() {
    let mut w = World::new();
    w.add_model(MODEL);
    let node = w.register_model_node(addr(1));
    let oracle = w.register_model_node(addr(30));
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: oracle,
    });
    let task = w.create_task(addr(2), 0, Some(MODEL));
    w.subscribe(addr(1), node, task, 3, 100);
    let user = addr(3);
    let (stack, _) = w.buy(user, task, 100, 3);
    w.ok(addr(1), w.settle_call(node, stack, 100, [1; 32], [1; 32]));
    let events = w.ok(user, Call::ContestClaimedUnits { stack, counted_units: 40 });
    assert_eq!(names(&events), ["StackUnitsContestedEvent"]);
    let expire = Call::ExpireDispute { stack };
    w.advance_epochs(6);
    assert_eq!(w.err(addr(9), expire.clone()), ContractError::ENotEnoughEpochsPassed);
    w.advance_epochs(1);
    let events = w.ok(addr(9), expire);
    assert_eq!(names(&events), ["StackDisputeExpiredEvent"]);
    assert_eq!(w.balance(user), START_BALANCE);
    let n = w.db.node(node).unwrap();
    assert_eq!((n.collateral, n.open_work), (COLLATERAL, 0), "nobody is slashed");
}

#[test]
fn contested_units_settle_at_the_oracle_count_and_overclaiming_is_slashed() {
    let mut w = World::new();
    w.add_model(MODEL);
    let node = w.register_model_node(addr(1));
    let oracle = w.register_model_node(addr(30));
    w.admin_ok(AdminOp::AddModelEchelonOracleNode {
        model_name: MODEL.into(),
        echelon: EchelonId(1),
        node: oracle,
    });
    let task = w.create_task(addr(2), 0, Some(MODEL));
    w.subscribe(addr(1), node, task, 3, 100);
    let user = addr(3);
    let (stack, _) = w.buy(user, task, 100, 3);
    w.ok(addr(1), w.settle_call(node, stack, 90, [1; 32], [1; 32]));
    w.ok(user, Call::ContestClaimedUnits { stack, counted_units: 40 });
    let resolve = Call::ResolveStackDispute {
        oracle_node: oracle,
        stack,
        correct_committed_stack_proof: vec![1; 32],
        correct_units: 40,
    };
    let events = w.ok(addr(30), resolve);
    assert_eq!(
        names(&events),
        ["NodeSlashedEvent", "StackSettlementTicketEvent", "StackDisputeResolvedEvent"]
    );
    assert_eq!(w.db.node(node).unwrap().collateral, COLLATERAL - COLLATERAL / 10);
    let events = w.ok(addr(1), Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(c) = &events[0] else { unreachable!() };
    assert_eq!((c.num_claimed_compute_units, c.user_refund_amount), (40, 180));
    assert_eq!(w.balance(user), START_BALANCE - 120);
}

#[test]
fn stack_terms_are_frozen_at_purchase() {
    let Consensus { mut w, task, .. } = consensus(2, 0, 1);
    let (stack, node) = w.buy(addr(3), task, 100, 1_000);
    set(&mut w, Parameter::SamplingConsensusChargePermille, 1000);
    set(&mut w, Parameter::StackDisputeSettlementDelayEpochs, 5);
    let (proof, leaf) = honest_commitment(1);
    let operator = w.node_owner(node);
    w.ok(operator, w.settle_call(node, stack, 100, proof, leaf));
    w.advance_epochs(1);
    let events = w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    let Event::StackSettlementTicketClaimedEvent(c) = &events[0] else { unreachable!() };
    assert_eq!(c.user_refund_amount, 1_200, "the surcharge stays 20% and the window one epoch");
    assert_eq!(w.db.globals().fee_treasury, 20_000);
}

#[test]
fn destroyed_node_returns_collateral_and_fees() {
    let mut w = World::new();
    let operator = addr(1);
    let node = w.register_node(operator);
    let task = w.create_task(addr(2), 0, None);
    w.subscribe(operator, node, task, 5, 100);
    let (stack, _) = w.buy(addr(3), task, 10, 5);
    w.ok(operator, w.settle_call(node, stack, 10, [1; 32], [1; 32]));
    w.ok(operator, Call::PermanentlyDisableNode { node });
    let destroy = Call::DestroyDisabledNode { node };
    assert_eq!(w.err(operator, destroy.clone()), ContractError::ENodeMustWaitBeforeDestroy);
    w.advance_epochs(2);
    assert_eq!(w.err(operator, destroy.clone()), ContractError::ENodeHasOpenWork);
    w.ok(operator, Call::ClaimFunds { node, stacks: vec![stack] });
    assert_eq!(w.err(operator, destroy.clone()), ContractError::ENodeHasLockedFees);
    w.advance_epochs(1);
    let events = w.ok(operator, destroy);
    assert_eq!(names(&events), ["NodeDestroyedEvent"]);
    assert_eq!(w.balance(operator), START_BALANCE + 50);
    assert!(w.db.node(node).is_none());
    assert_eq!(w.db.task(task).unwrap().num_subscribers, 0);
}

#[test]
fn dry_run_reports_what_execute_would_and_changes_nothing() {
    let mut w = World::new();
    let node = w.register_node(addr(1));
    let task = w.create_task(addr(2), 0, None);
    w.subscribe(addr(1), node, task, 5, 100);
    let buy = Call::AcquireNewStack { task, num_compute_units: 10, max_price_per_compute_unit: 5 };
    let ctx = atoma_contract::TxContext {
        sender: addr(3),
        epoch: 0,
        timestamp_ms: 5,
        tx_digest: [77; 32],
        random_seed: [78; 32],
    };
    let before = w.db.state_digest();
    let dry = w.db.dry_run(&ctx, &buy).expect("the purchase would succeed");
    assert_eq!(w.db.state_digest(), before);
    let bad = Call::AcquireNewStack { task, num_compute_units: 0, max_price_per_compute_unit: 5 };
    assert_eq!(w.db.dry_run(&ctx, &bad), Err(ContractError::EInvalidComputeUnits));
    assert_eq!(w.db.state_digest(), before);
    assert_eq!(w.db.execute(&ctx, &buy), Ok(dry));
}
