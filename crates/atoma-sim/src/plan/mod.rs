//! What each actor sends in the next block, decided from the last applied state.
//!
//! Actors act like clients of a real chain: they read the state after the last block, decide,
//! and sign. They do not see each other's transactions of the same block, so some of their calls
//! race and fail; that is part of the test. Off-chain facts (what a stack's node really served)
//! come from [`crate::truth`]. Each planned call carries what the simulator [`Expect`]s of it
//! where the outcome is certain (an invalid parameter must be refused; a call on an object the
//! sender does not own must fail), and is otherwise free to succeed or fail.

mod admin;
mod nodes;
mod users;

pub use admin::{expected_parameter_outcome, parameter_bounds};

use atoma_contract::call::{AdminOp, Call};
use atoma_contract::enums::SecurityLevel;
use atoma_contract::state::{BadgeKind, Node, Stack, Task};
use atoma_contract::{Address, AtomaDb, ContractError, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};

use crate::actors::{Cast, Role};
use crate::rng::SimRng;

/// What the simulator requires of a call's outcome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// Success or any contract error.
    Anything,
    /// Any contract error; success would be a bug.
    Failure,
    /// Exactly this outcome.
    Exactly(Result<(), ContractError>),
}

impl Expect {
    /// Whether `outcome` is what was expected.
    pub fn admits(self, outcome: Result<(), ContractError>) -> bool {
        match self {
            Expect::Anything => true,
            Expect::Failure => outcome.is_err(),
            Expect::Exactly(expected) => expected == outcome,
        }
    }
}

/// A call an actor decided to send.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Planned {
    /// The index of the sender in [`Cast::actors`].
    pub actor: usize,
    /// What it calls.
    pub call: Call,
    /// What the outcome must be.
    pub expect: Expect,
}

/// What actors see when they plan: the state after the last applied block.
pub struct View<'a> {
    /// The contract's state.
    pub db: &'a AtomaDb,
    /// The last applied block's epoch (the next block may already be in the next one).
    pub epoch: u64,
    /// The next block's timestamp: actors plan for the block their calls will land in.
    pub now_ms: u64,
    /// The run's seed, for the off-chain truth.
    pub seed: u64,
    /// Everyone's keys and roles.
    pub cast: &'a Cast,
}

/// The calls of every actor that acts in the next block, each actor's calls in its own order and
/// the actors interleaved at random.
pub fn plan_block(view: &View<'_>, rng: &mut SimRng) -> Vec<Planned> {
    let mut groups: Vec<Vec<Planned>> = Vec::new();
    for (index, actor) in view.cast.actors.iter().enumerate() {
        if !rng.chance(actor.role.activity_permille()) {
            // An honest node's agent attests on time even when its operator does nothing else.
            if actor.role == Role::HonestNode {
                let calls = nodes::due_attestations(view, actor);
                let group: Vec<Planned> =
                    calls.into_iter().map(|(call, expect)| Planned { actor: index, call, expect }).collect();
                if !group.is_empty() {
                    groups.push(group);
                }
            }
            continue;
        }
        let calls = match actor.role {
            Role::Admin => admin::plan(view, rng, actor),
            Role::HonestNode | Role::LazyNode | Role::LyingNode | Role::NoShowNode => {
                nodes::plan_node(view, rng, actor)
            }
            Role::Oracle => nodes::plan_oracle(view, rng, actor),
            Role::User => users::plan_user(view, rng, actor),
            Role::TaskOwner => users::plan_task_owner(view, rng, actor),
            Role::Adversary => plan_adversary(view, rng),
        };
        let group: Vec<Planned> =
            calls.into_iter().map(|(call, expect)| Planned { actor: index, call, expect }).collect();
        if !group.is_empty() {
            groups.push(group);
        }
    }
    interleave(groups, rng)
}

/// Merges the groups at random, keeping the order inside each group.
fn interleave(mut groups: Vec<Vec<Planned>>, rng: &mut SimRng) -> Vec<Planned> {
    for group in &mut groups {
        group.reverse();
    }
    let mut out = Vec::new();
    while !groups.is_empty() {
        let i = rng.index(groups.len());
        if let Some(call) = groups[i].pop() {
            out.push(call);
        }
        if groups[i].is_empty() {
            groups.swap_remove(i);
        }
    }
    out
}

/// Calls that must fail because the adversary owns nothing: settling, claiming, resolving and
/// administering with badges of others, and spending more than it has.
fn plan_adversary(view: &View<'_>, rng: &mut SimRng) -> Vec<(Call, Expect)> {
    let db = view.db;
    let stacks: Vec<&Stack> = db.stacks().collect();
    let any_node = db.nodes().next().map_or(NodeSmallId(1), |n| n.small_id);
    let any_stack = rng.pick(&stacks).map_or(StackSmallId(1), |s| s.small_id);
    let real_badge = manager_badge(db, &view.cast.admin().address).unwrap_or(ObjectId([7; 32]));
    let call = match rng.below(7) {
        0 => match rng.pick(&stacks) {
            Some(s) => Call::TrySettleStack {
                node: s.selected_node,
                stack: s.small_id,
                num_claimed_compute_units: s.num_compute_units,
                committed_stack_proof: vec![0xab; 32],
                stack_merkle_leaf: vec![0xcd; 32],
                tee_signature: None,
            },
            None => Call::ClaimFunds { node: any_node, stacks: vec![any_stack] },
        },
        1 => Call::Admin { manager_badge: real_badge, op: AdminOp::NewNetworkKeyRotation },
        2 => Call::Admin { manager_badge: ObjectId(rng.bytes32()), op: AdminOp::DisableRegistration },
        3 => Call::TransferToma { recipient: view.cast.admin().address, amount: u64::MAX },
        4 => Call::ClaimFunds { node: any_node, stacks: vec![any_stack] },
        5 => Call::ResolveStackDispute {
            oracle_node: any_node,
            stack: any_stack,
            correct_committed_stack_proof: vec![0; 32],
            correct_units: 1,
        },
        _ => match db.tasks_from(TaskSmallId(0)).next() {
            Some(task) => Call::DeprecateTask { task: task.small_id },
            None => Call::WithdrawFees { node: any_node },
        },
    };
    vec![(call, Expect::Failure)]
}

/// The badges `owner` holds.
pub(crate) fn badges(db: &AtomaDb, owner: &Address) -> Vec<(ObjectId, BadgeKind)> {
    db.owned_badges(owner).into_iter().map(|(id, badge)| (id, badge.kind)).collect()
}

/// The manager badge `owner` holds, if any.
pub(crate) fn manager_badge(db: &AtomaDb, owner: &Address) -> Option<ObjectId> {
    badges(db, owner).into_iter().find(|(_, kind)| *kind == BadgeKind::Manager).map(|(id, _)| id)
}

/// The nodes `owner` operates, disabled ones included.
pub(crate) fn nodes_of<'a>(db: &'a AtomaDb, owner: &Address) -> Vec<&'a Node> {
    badges(db, owner)
        .into_iter()
        .filter_map(|(_, kind)| match kind {
            BadgeKind::Node(id) => db.node(id),
            _ => None,
        })
        .collect()
}

/// The open stacks `owner` holds, with their badge ids.
pub(crate) fn stacks_of<'a>(db: &'a AtomaDb, owner: &Address) -> Vec<(ObjectId, &'a Stack)> {
    badges(db, owner)
        .into_iter()
        .filter_map(|(badge, kind)| match kind {
            BadgeKind::Stack(id) => db.stack(id).map(|s| (badge, s)),
            _ => None,
        })
        .collect()
}

/// Tasks that are not deprecated.
pub(crate) fn live_tasks(db: &AtomaDb) -> Vec<&Task> {
    db.tasks_from(TaskSmallId(0)).filter(|t| t.deprecated_at_epoch.is_none()).collect()
}

/// Whether the ticket's dispute window may still be open in the next block (attestations,
/// contests), by the contract's rule at the last epoch and the next block's time: open for
/// certain while the time is before its floor, and perhaps open by the epoch rule, as the next
/// block may start an epoch.
pub(crate) fn window_open(stack: &Stack, v: &View<'_>) -> bool {
    stack.ticket.as_ref().is_some_and(|t| t.window_open(&stack.terms, v.epoch, v.now_ms))
}

/// Whether the stack's ticket can be claimed in the next block (certain: a later epoch only
/// closes the window further).
pub(crate) fn claimable(stack: &Stack, v: &View<'_>) -> bool {
    stack.ticket.as_ref().is_some_and(|t| t.claimable(&stack.terms, v.epoch, v.now_ms))
}

/// Whether the task is confidential compute.
pub(crate) fn is_confidential(level: SecurityLevel) -> bool {
    level == SecurityLevel::ConfidentialCompute
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_keeps_each_actors_order() {
        let call = |actor, amount| Planned {
            actor,
            call: Call::TransferToma { recipient: Address([0; 32]), amount },
            expect: Expect::Anything,
        };
        let groups = vec![vec![call(0, 1), call(0, 2), call(0, 3)], vec![call(1, 1), call(1, 2)]];
        let mixed = interleave(groups, &mut SimRng::new(5));
        assert_eq!(mixed.len(), 5);
        for actor in 0..2 {
            let amounts: Vec<&Call> = mixed.iter().filter(|p| p.actor == actor).map(|p| &p.call).collect();
            let mut sorted = amounts.clone();
            sorted.sort_by_key(|c| match c {
                Call::TransferToma { amount, .. } => *amount,
                _ => 0,
            });
            assert_eq!(amounts, sorted);
        }
    }

    #[test]
    fn expectations() {
        assert!(Expect::Anything.admits(Ok(())));
        assert!(Expect::Failure.admits(Err(ContractError::ENotAuthorized)));
        assert!(!Expect::Failure.admits(Ok(())));
        assert!(!Expect::Exactly(Ok(())).admits(Err(ContractError::EInvalidParameter)));
    }
}
