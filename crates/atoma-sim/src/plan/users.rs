//! Users and the task owner.

use atoma_contract::call::Call;
use atoma_contract::state::{Stack, Task, TicketStatus};
use atoma_contract::{AtomaDb, TOMA};

use super::{Expect, View, badges, live_tasks, stacks_of, window_open};
use crate::actors::{Actor, MODELS, PRICE_STEP, Role};
use crate::rng::SimRng;
use crate::truth::StackTruth;

/// The most calls a user sends in one block.
const MAX_CALLS: usize = 4;

/// The kinds of task the task owner keeps alive: `(security level, model index)`.
const TASK_KINDS: [(u16, Option<usize>); 5] =
    [(0, None), (0, Some(0)), (1, None), (2, Some(0)), (2, Some(1))];

type Calls = Vec<(Call, Expect)>;

/// A user: looks after its stacks, buys new ones, and now and then moves TOMA or a stack badge.
pub(super) fn plan_user(v: &View<'_>, rng: &mut SimRng, actor: &Actor) -> Calls {
    let mut calls = Vec::new();
    let mine = stacks_of(v.db, &actor.address);
    for (_, stack) in &mine {
        if let Some(call) = look_after(v, rng, stack) {
            calls.push(call);
        }
    }
    // Anyone may expire an abandoned dispute.
    let abandoned: Vec<&Stack> = v.db.stacks().filter(|s| dispute_expired(s, v.epoch)).collect();
    if let Some(stack) = rng.pick(&abandoned)
        && rng.chance(100)
    {
        calls.push(Call::ExpireDispute { stack: stack.small_id });
    }
    rng.shuffle(&mut calls);
    calls.truncate(MAX_CALLS - 1);
    if rng.chance(700) {
        calls.extend(buy(v.db, rng));
        if rng.chance(250) {
            calls.extend(buy(v.db, rng));
        }
    }
    let users: Vec<&Actor> = v
        .cast
        .actors
        .iter()
        .filter(|a| matches!(a.role, Role::User | Role::TaskOwner) && a.address != actor.address)
        .collect();
    if let Some(other) = rng.pick(&users) {
        if rng.chance(30) {
            calls.push(Call::TransferToma { recipient: other.address, amount: rng.range(1, 100) * TOMA });
        }
        if let Some((badge, _)) = rng.pick(&mine)
            && rng.chance(15)
        {
            calls.push(Call::TransferBadge { badge: *badge, recipient: other.address });
        }
    }
    calls.into_iter().map(|call| (call, Expect::Anything)).collect()
}

/// What a stack's owner does about it: contest a wrong claim (and sometimes a right one),
/// reclaim it once expired (and sometimes too early), expire an abandoned dispute.
fn look_after(v: &View<'_>, rng: &mut SimRng, stack: &Stack) -> Option<Call> {
    let id = stack.small_id;
    let Some(ticket) = &stack.ticket else {
        let expired = v.epoch >= stack.created_epoch + stack.terms.stack_expiration_epochs;
        return (expired && rng.chance(700) || rng.chance(10))
            .then_some(Call::ReclaimExpiredStack { stack: id });
    };
    if dispute_expired(stack, v.epoch) && rng.chance(600) {
        return Some(Call::ExpireDispute { stack: id });
    }
    if ticket.status != TicketStatus::Pending || !window_open(stack, v) {
        return None;
    }
    let has_model = v.db.task(stack.task_small_id).is_some_and(|t| t.model_name.is_some());
    if !has_model && !rng.chance(50) {
        return None;
    }
    let truth = StackTruth::of(v.seed, stack);
    let claimed = ticket.num_claimed_compute_units;
    if claimed != truth.used_units && rng.chance(800) {
        return Some(Call::ContestClaimedUnits { stack: id, counted_units: truth.used_units });
    }
    if rng.chance(40) {
        // A wrong count: the oracle will side with the node.
        let counted = (claimed + rng.range(1, stack.num_compute_units)) % (stack.num_compute_units + 1);
        return Some(Call::ContestClaimedUnits { stack: id, counted_units: counted });
    }
    None
}

/// Whether the stack's dispute has waited past its deadline.
fn dispute_expired(stack: &Stack, epoch: u64) -> bool {
    stack.ticket.as_ref().is_some_and(|t| match t.status {
        TicketStatus::InDispute { since_epoch } => {
            epoch >= since_epoch + stack.terms.dispute_resolution_deadline_epochs
        }
        _ => false,
    })
}

/// A purchase of a live task: mostly sensible, sometimes with zero units or a low price cap.
fn buy(db: &AtomaDb, rng: &mut SimRng) -> Option<Call> {
    // Buyers mostly pick from tasks that have offers, as they would on a market page.
    let mut tasks = live_tasks(db);
    if rng.chance(900) {
        tasks.retain(|t| t.num_subscribers > 0);
    }
    let task = rng.pick(&tasks)?;
    Some(Call::AcquireNewStack {
        task: task.small_id,
        num_compute_units: if rng.chance(10) { 0 } else { rng.range(1, 300) },
        max_price_per_compute_unit: rng.range(1, 10) * PRICE_STEP,
    })
}

/// The task owner: a user who keeps one live task of every kind, retires and removes tasks, and
/// sometimes sends a task definition the contract must refuse.
pub(super) fn plan_task_owner(v: &View<'_>, rng: &mut SimRng, actor: &Actor) -> Calls {
    let db = v.db;
    let mut calls = Vec::new();
    let live = live_tasks(db);
    for (level, model) in TASK_KINDS {
        let model_name = model.map(|m| MODELS[m].to_string());
        let exists = live.iter().any(|t| t.security_level.to_wire() == level && t.model_name == model_name);
        let model_ready = model_name.as_deref().is_none_or(|m| db.model(m).is_some());
        if !exists && model_ready && calls.len() < 2 {
            calls.push((create_task(rng, level, model_name), Expect::Anything));
        }
    }
    let mine: Vec<&Task> = badges(db, &actor.address)
        .into_iter()
        .filter_map(|(_, kind)| match kind {
            atoma_contract::state::BadgeKind::Task(id) => db.task(id),
            _ => None,
        })
        .collect();
    let delay = db.config().task_removal_delay_epochs;
    for task in &mine {
        let removable =
            task.deprecated_at_epoch.is_some_and(|at| v.epoch >= at + delay) && task.open_stacks == 0;
        if removable && rng.chance(500) {
            calls.push((Call::RemoveDeprecatedTask { task: task.small_id }, Expect::Anything));
        }
    }
    let own_live: Vec<&&Task> = mine.iter().filter(|t| t.deprecated_at_epoch.is_none()).collect();
    if let Some(task) = rng.pick(&own_live)
        && rng.chance(20)
    {
        calls.push((Call::DeprecateTask { task: task.small_id }, Expect::Anything));
    }
    if rng.chance(30) {
        calls.push((invalid_task(rng), Expect::Failure));
    }
    calls.extend(plan_user(v, rng, actor));
    calls
}

fn create_task(rng: &mut SimRng, level: u16, model_name: Option<String>) -> Call {
    Call::CreateTask {
        role: u16::try_from(rng.below(8)).unwrap_or(0),
        model_name,
        security_level: level,
        minimum_reputation_score: rng.chance(200).then(|| u16::try_from(rng.range(50, 120)).unwrap_or(100)),
        required_optimizations: if rng.chance(200) { u8::try_from(rng.below(32)).unwrap_or(0) } else { 0 },
    }
}

/// A task definition with an unknown role, an unknown security level, sampling consensus
/// without a model, or a minimum reputation above the maximum.
fn invalid_task(rng: &mut SimRng) -> Call {
    let mut call = create_task(rng, 0, None);
    if let Call::CreateTask { role, model_name, security_level, minimum_reputation_score, .. } = &mut call {
        match rng.below(4) {
            0 => *role = u16::try_from(rng.range(8, 500)).unwrap_or(8),
            1 => *security_level = u16::try_from(rng.range(3, 9)).unwrap_or(3),
            2 => {
                *security_level = 2;
                *model_name = None;
            }
            _ => *minimum_reputation_score = Some(u16::try_from(rng.range(1001, 5000)).unwrap_or(1001)),
        }
    }
    call
}
