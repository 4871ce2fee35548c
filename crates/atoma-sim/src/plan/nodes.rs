//! Node operators and oracles.

use atoma_contract::call::Call;
use atoma_contract::enums::Optimizations;
use atoma_contract::state::{Node, Stack, Task, TicketStatus};
use atoma_contract::tee::{build_evidence, sign_settlement};
use atoma_contract::{AtomaDb, EchelonId, NodeSmallId, TOMA};

use super::{Expect, View, claimable, is_confidential, live_tasks, nodes_of, window_open};
use crate::actors::{ALL_OPTIMIZATIONS, Actor, DEVICE_TYPE, MODELS, PRICE_STEP, Role};
use crate::rng::SimRng;
use crate::truth::{StackTruth, attester_ready_ms};

/// The most calls a node sends in one block.
const MAX_CALLS: usize = 3;

type Calls = Vec<(Call, Expect)>;

/// An operator of one node at a time (honest, lazy, lying or no-show; see [`Role`]). An honest
/// operator's due attestations come first, for every node it has (a disabled one still owes the
/// work it was given).
pub(super) fn plan_node(v: &View<'_>, rng: &mut SimRng, actor: &Actor) -> Calls {
    let due = if actor.role == Role::HonestNode { due_attestations(v, actor) } else { Vec::new() };
    let nodes = nodes_of(v.db, &actor.address);
    let Some(node) = nodes.iter().find(|n| !n.is_disabled()) else {
        return [due, retired(v, rng, &nodes)].concat();
    };
    if let Some(call) = prerequisite(v, rng, actor, node) {
        return [due, vec![(call, Expect::Anything)]].concat();
    }
    let mut work = Vec::new();
    let open: Vec<&Stack> = v.db.stacks().collect();
    for stack in &open {
        if stack.selected_node == node.small_id {
            if let Some(call) = own_stack(v, rng, actor.role, node, stack) {
                work.push(call);
            }
        } else if let Some(call) = attest(v, rng, actor.role, node, stack) {
            work.push(call);
        }
    }
    let claims: Vec<_> = open
        .iter()
        .filter(|s| s.selected_node == node.small_id && claimable(s, v))
        .map(|s| s.small_id)
        .collect();
    for batch in claims.chunks(4) {
        work.push(Call::ClaimFunds { node: node.small_id, stacks: batch.to_vec() });
    }
    rng.shuffle(&mut work);
    work.truncate(MAX_CALLS);
    if work.len() < MAX_CALLS
        && let Some(call) = chore(v, rng, actor.role, node)
    {
        work.push(call);
    }
    due.into_iter().chain(work.into_iter().map(|call| (call, Expect::Anything))).collect()
}

/// What an honest operator owes this block whether or not it acts otherwise: an attestation for
/// each stack one of its nodes was asked to attest, once its agent has re-run the transcript
/// ([`crate::truth::attester_ready_ms`], within the settlement timeout) and while the window
/// is open. Like the node agent, it always submits the proof it computed: one that differs
/// from a forged proof opens the dispute (`StartAttestationDispute` would be refused if another
/// party opened it first in the block, and leave the slot empty). Sent to a pending ticket
/// before the window's floor in time, an attestation must be taken.
pub(super) fn due_attestations(v: &View<'_>, actor: &Actor) -> Calls {
    let mut due = Vec::new();
    for node in nodes_of(v.db, &actor.address) {
        for stack in v.db.stacks() {
            let Some(ticket) = stack.ticket.as_ref() else { continue };
            let Some(position) = ticket.requested_attestation_nodes.iter().position(|n| *n == node.small_id)
            else {
                continue;
            };
            let pending = ticket.attestations.get(position).is_some_and(Option::is_none);
            let ready = attester_ready_ms(v.seed, stack, ticket.created_ms, position);
            if !pending || v.now_ms < ready || !window_open(stack, v) {
                continue;
            }
            let truth = StackTruth::of(v.seed, stack);
            let (honest, _) = truth.honest();
            let submit = Call::SubmitStackSettlementAttestation {
                node: node.small_id,
                stack: stack.small_id,
                committed_stack_proof: honest.to_vec(),
                stack_merkle_leaf: truth.attester_leaf(position).to_vec(),
            };
            let in_time =
                ticket.status == TicketStatus::Pending && v.now_ms < ticket.window_floor_ms(&stack.terms);
            due.push((submit, if in_time { Expect::Exactly(Ok(())) } else { Expect::Anything }));
        }
    }
    due
}

/// An operator without an active node: destroys a retired one when allowed, or registers anew.
fn retired(v: &View<'_>, rng: &mut SimRng, nodes: &[&Node]) -> Calls {
    let delay = v.db.config().node_destroy_delay_epochs;
    let destroyable = nodes.iter().find(|n| {
        n.disabled_at_epoch.is_some_and(|at| v.epoch >= at + delay)
            && n.open_work == 0
            && n.fees.locked_at(v.epoch) == 0
    });
    if let Some(node) = destroyable {
        return vec![(Call::DestroyDisabledNode { node: node.small_id }, Expect::Anything)];
    }
    if let Some(node) = nodes.first()
        && rng.chance(100)
    {
        // Too early, or with open work: refused, but the node may have become destroyable in
        // this very block's epoch.
        return vec![(Call::DestroyDisabledNode { node: node.small_id }, Expect::Anything)];
    }
    if nodes.is_empty() || rng.chance(200) {
        return vec![register(v.db, rng)];
    }
    Vec::new()
}

/// A registration: mostly valid, sometimes short of collateral or with unknown optimization bits.
fn register(db: &AtomaDb, rng: &mut SimRng) -> (Call, Expect) {
    let minimum = db.config().registration_collateral;
    match rng.below(100) {
        0..=2 => (
            Call::RegisterNode { collateral: minimum - 1, supported_optimizations: ALL_OPTIMIZATIONS },
            Expect::Failure,
        ),
        3..=4 => (
            Call::RegisterNode { collateral: minimum, supported_optimizations: 0b1110_0000 },
            Expect::Failure,
        ),
        draw => {
            let bits = if draw < 85 { ALL_OPTIMIZATIONS } else { u8::try_from(rng.below(32)).unwrap_or(0) };
            let collateral = minimum + rng.below(3) * 100 * TOMA;
            (Call::RegisterNode { collateral, supported_optimizations: bits }, Expect::Anything)
        }
    }
}

/// What a node must do before it can work: serve a model, hold a current enclave key, have
/// collateral.
fn prerequisite(v: &View<'_>, rng: &mut SimRng, actor: &Actor, node: &Node) -> Option<Call> {
    let db = v.db;
    let id = node.small_id;
    let served = db.node_models(id);
    if served.is_empty() || (actor.role != Role::Oracle && served.len() < MODELS.len() && rng.chance(40)) {
        let model = if served.is_empty() {
            MODELS[actor.model]
        } else {
            MODELS.iter().copied().find(|m| served.iter().all(|(s, _)| s != m)).unwrap_or(MODELS[0])
        };
        let echelons: Vec<EchelonId> = db.model(model)?.echelons.keys().copied().collect();
        let echelon = *rng.pick(&echelons)?;
        return Some(Call::AddNodeToModel { node: id, model_name: model.into(), echelon });
    }
    let rotation = db.globals().key_rotation_counter;
    let key_current = node.tee_key.as_ref().is_some_and(|k| k.key_rotation_counter == rotation);
    let root_known = db.attestation_roots().any(|(device, _)| device.to_wire() == DEVICE_TYPE);
    if actor.role != Role::Oracle && !key_current && root_known {
        return Some(commit_key(v, rng, id, rotation));
    }
    if node.collateral < db.config().registration_collateral / 2 {
        let amount = db.config().registration_collateral.saturating_sub(node.collateral).max(1);
        return Some(Call::AddNodeCollateral { node: id, amount });
    }
    None
}

/// Commits the node's enclave key for `rotation`; one time in twenty with evidence signed by
/// the wrong key, which must be refused.
fn commit_key(v: &View<'_>, rng: &mut SimRng, node: NodeSmallId, rotation: u64) -> Call {
    let public_key = v.cast.enclave_key(node, rotation).verifying_key().to_bytes();
    let root = if rng.chance(50) { &v.cast.tee_device } else { &v.cast.tee_root };
    let evidence = build_evidence(root, &v.cast.tee_device, &public_key, node, rotation);
    Call::CommitNodePublicKey {
        node,
        device_type: DEVICE_TYPE,
        key_rotation_counter: rotation,
        public_key,
        evidence,
    }
}

/// How a settlement departs from the truth.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lie {
    None,
    Proof,
    Units,
    TeeKey,
}

/// Settling a stack the node was selected for, as its role settles.
fn own_stack(v: &View<'_>, rng: &mut SimRng, role: Role, node: &Node, stack: &Stack) -> Option<Call> {
    if stack.ticket.is_some() || role == Role::LazyNode || !rng.chance(900) {
        return None;
    }
    let confidential = is_confidential(stack.security_level);
    let rotation = v.db.globals().key_rotation_counter;
    if confidential && node.tee_key.as_ref().is_none_or(|k| k.key_rotation_counter != rotation) {
        return None;
    }
    let lie = match (role, rng.below(10)) {
        (Role::LyingNode, 0..=3) if confidential => Lie::TeeKey,
        (Role::LyingNode, 0..=3) => Lie::Proof,
        (Role::LyingNode, 4..=6) => Lie::Units,
        _ => Lie::None,
    };
    Some(settle(v, rng, node.small_id, stack, lie))
}

fn settle(v: &View<'_>, rng: &mut SimRng, node: NodeSmallId, stack: &Stack, lie: Lie) -> Call {
    let truth = StackTruth::of(v.seed, stack);
    let (mut proof, mut leaf) = truth.honest();
    let mut units = truth.used_units;
    match lie {
        Lie::Proof => (proof, leaf) = truth.forged(),
        Lie::Units if units < stack.num_compute_units => {
            units = rng.range(units + 1, stack.num_compute_units)
        }
        Lie::Units => (proof, leaf) = truth.forged(),
        Lie::None | Lie::TeeKey => {}
    }
    let tee_signature = is_confidential(stack.security_level).then(|| {
        let rotation = v.db.globals().key_rotation_counter;
        let rotation = if lie == Lie::TeeKey { rotation + 1 } else { rotation };
        sign_settlement(&v.cast.enclave_key(node, rotation), stack.small_id, units, &proof)
    });
    Call::TrySettleStack {
        node,
        stack: stack.small_id,
        num_claimed_compute_units: units,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: leaf.to_vec(),
        tee_signature,
    }
}

/// Attesting a stack the node was asked to attest, for the roles other than honest (whose
/// attestations are [`due_attestations`]): lazy nodes agree with an honest proof and dispute a
/// forged one, when they get to it; liars sometimes attest to a forgery; no-show nodes never
/// come.
fn attest(v: &View<'_>, rng: &mut SimRng, role: Role, node: &Node, stack: &Stack) -> Option<Call> {
    let ticket = stack.ticket.as_ref()?;
    let position = ticket.requested_attestation_nodes.iter().position(|n| *n == node.small_id)?;
    let pending = ticket.attestations.get(position).is_some_and(Option::is_none);
    let open = ticket.status == TicketStatus::Pending && window_open(stack, v);
    if !pending || !open || matches!(role, Role::NoShowNode | Role::HonestNode) || !rng.chance(900) {
        return None;
    }
    let truth = StackTruth::of(v.seed, stack);
    let (honest, _) = truth.honest();
    let submit = |proof: [u8; 32], leaf: [u8; 32]| Call::SubmitStackSettlementAttestation {
        node: node.small_id,
        stack: stack.small_id,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: leaf.to_vec(),
    };
    if role == Role::LyingNode && rng.chance(400) {
        let (forged, _) = truth.forged();
        return Some(submit(forged, [0x11; 32]));
    }
    if ticket.committed_stack_proof == honest || rng.chance(500) {
        return Some(submit(honest, truth.attester_leaf(position)));
    }
    Some(Call::StartAttestationDispute {
        node: node.small_id,
        stack: stack.small_id,
        attestation_commitment: honest.to_vec(),
    })
}

/// Occasional upkeep: subscribe, reprice, unsubscribe, withdraw fees, add collateral, change
/// optimizations, publish an endpoint, retire (honest nodes only), or a call on a stack the node
/// was not selected for.
fn chore(v: &View<'_>, rng: &mut SimRng, role: Role, node: &Node) -> Option<Call> {
    let db = v.db;
    let id = node.small_id;
    let subscribed: Vec<_> = db.node_subscriptions(id).collect();
    let open: Vec<&Task> = live_tasks(db)
        .into_iter()
        .filter(|t| !subscribed.contains(&t.small_id) && may_subscribe(db, node, t))
        .collect();
    if let Some(task) = rng.pick(&open)
        && rng.chance(700)
    {
        return Some(Call::SubscribeNodeToTask {
            node: id,
            task: task.small_id,
            price_per_compute_unit: rng.range(1, 8) * PRICE_STEP,
            max_num_compute_units: rng.range(100, 1000),
        });
    }
    let task = rng.pick(&subscribed).copied();
    match rng.below(1000) {
        0..=149 if node.fees.unlocked_at(v.epoch) > 0 => Some(Call::WithdrawFees { node: id }),
        150..=199 => task.map(|task| Call::UpdateNodeSubscription {
            node: id,
            task,
            price_per_compute_unit: rng.range(0, 8) * PRICE_STEP,
            max_num_compute_units: rng.range(50, 1000),
        }),
        200..=214 => task.map(|task| Call::UnsubscribeNodeFromTask { node: id, task }),
        215..=229 => Some(Call::AddNodeCollateral { node: id, amount: rng.range(0, 50) * TOMA }),
        230..=239 => Some(Call::SetNodeOptimizations {
            node: id,
            supported_optimizations: if rng.chance(800) { ALL_OPTIMIZATIONS } else { 0b0000_0011 },
        }),
        240..=244 if role == Role::HonestNode => Some(Call::PermanentlyDisableNode { node: id }),
        265..=274 => {
            // Refused while a subscribed task needs the model and no other echelon serves it.
            let served = db.node_models(id);
            rng.pick(&served).map(|(model, echelon)| Call::RemoveNodeFromModel {
                node: id,
                model_name: model.clone(),
                echelon: *echelon,
            })
        }
        245..=264 => {
            let other: Vec<&Stack> = db.stacks().filter(|s| s.selected_node != id).collect();
            rng.pick(&other).map(|s| Call::ClaimFunds { node: id, stacks: vec![s.small_id] })
        }
        275..=289 => Some(Call::SetNodeEndpoint { node: id, url: endpoint(rng, id) }),
        _ => None,
    }
}

/// Where the node's agent listens: mostly a valid URL on a new port, sometimes one the contract
/// refuses (`EInvalidEndpoint`).
fn endpoint(rng: &mut SimRng, id: NodeSmallId) -> String {
    match rng.below(10) {
        0 => format!("ftp://node-{}.sim", id.0),
        1 => format!("http://node-{}.sim/{}", id.0, "x".repeat(250)),
        _ => format!("http://node-{}.sim:{}", id.0, rng.range(1024, 65_535)),
    }
}

/// Whether the node meets the task's requirements, as far as the operator can tell.
fn may_subscribe(db: &AtomaDb, node: &Node, task: &Task) -> bool {
    let serves = task
        .model_name
        .as_ref()
        .is_none_or(|m| db.node_models(node.small_id).iter().any(|(served, _)| served == m));
    let rotation = db.globals().key_rotation_counter;
    let keyed = !is_confidential(task.security_level)
        || node.tee_key.as_ref().is_some_and(|k| k.key_rotation_counter == rotation);
    let reputable = task.minimum_reputation_score.is_none_or(|min| node.reputation >= min);
    let optimized = Optimizations::supports_all(node.optimizations, task.required_optimizations);
    serves && keyed && reputable && optimized
}

/// An oracle: registers, serves its model, waits for the admin to seat it, then resolves the
/// disputes of its model by the ground truth — some late, some never.
pub(super) fn plan_oracle(v: &View<'_>, rng: &mut SimRng, actor: &Actor) -> Calls {
    let nodes = nodes_of(v.db, &actor.address);
    let Some(node) = nodes.iter().find(|n| !n.is_disabled()) else {
        return if nodes.is_empty() { vec![register(v.db, rng)] } else { Vec::new() };
    };
    if let Some(call) = prerequisite(v, rng, actor, node) {
        return vec![(call, Expect::Anything)];
    }
    let model = MODELS[actor.model];
    let mut calls = Vec::new();
    for stack in v.db.stacks() {
        let Some(ticket) = &stack.ticket else { continue };
        let in_dispute = matches!(ticket.status, TicketStatus::InDispute { .. });
        let task_model = v.db.task(stack.task_small_id).and_then(|t| t.model_name.clone());
        if !in_dispute || task_model.as_deref() != Some(model) || neglected(v.seed, stack) || !rng.chance(500)
        {
            continue;
        }
        let truth = StackTruth::of(v.seed, stack);
        calls.push((
            Call::ResolveStackDispute {
                oracle_node: node.small_id,
                stack: stack.small_id,
                correct_committed_stack_proof: truth.honest().0.to_vec(),
                correct_units: truth.used_units,
            },
            Expect::Anything,
        ));
    }
    // Now and then a dispute of the other model, which this oracle may not judge.
    let foreign: Vec<&Stack> =
        v.db.stacks()
            .filter(|s| s.ticket.as_ref().is_some_and(|t| matches!(t.status, TicketStatus::InDispute { .. })))
            .filter(|s| v.db.task(s.task_small_id).and_then(|t| t.model_name.as_deref()) != Some(model))
            .collect();
    if let Some(stack) = rng.pick(&foreign)
        && rng.chance(50)
    {
        let call = Call::ResolveStackDispute {
            oracle_node: node.small_id,
            stack: stack.small_id,
            correct_committed_stack_proof: vec![0; 32],
            correct_units: 1,
        };
        calls.push((call, Expect::Anything));
    }
    if node.fees.unlocked_at(v.epoch) > 0 && rng.chance(200) {
        calls.push((Call::WithdrawFees { node: node.small_id }, Expect::Anything));
    }
    calls.truncate(MAX_CALLS);
    calls
}

/// One dispute in four is never looked at by any oracle, so that it expires.
pub(crate) fn neglected(seed: u64, stack: &Stack) -> bool {
    let h = atoma_contract::hash::blake2b256(&[
        b"atoma-sim-neglect",
        &seed.to_le_bytes(),
        &stack.small_id.0.to_le_bytes(),
    ]);
    h[0].is_multiple_of(4)
}
