//! The contract's state (SPEC §4): the records and the [`AtomaDb`] that holds them.
//!
//! Everything here is plain data in deterministic collections. Records refer to each other by
//! small id; relations that can grow large (a task's subscribers, an echelon's nodes) live in
//! their own tables keyed by pairs, so that journaling a write copies one small record, never a
//! whole collection.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::enums::{DeviceType, Modality, Optimizations, SecurityLevel, TaskRole};
use crate::ids::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use crate::sampling::SamplingIndex;
use crate::table::{Cell, Journal, Slab, Table};

/// What a badge authorizes. Badges are owned by addresses and can be transferred.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum BadgeKind {
    /// `AtomaManagerBadge`: the admin.
    Manager,
    /// `NodeBadge`: operates a node.
    Node(NodeSmallId),
    /// `TaskBadge`: owns a task.
    Task(TaskSmallId),
    /// `StackBadge`: owns a stack and receives its refunds.
    Stack(StackSmallId),
}

/// A capability object.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Badge {
    /// The address the badge authorizes.
    pub owner: Address,
    /// What the badge authorizes.
    pub kind: BadgeKind,
}

/// A node's earnings (SPEC §7.3): what it earned this epoch is locked until the next one.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct NodeFees {
    /// Earned in `locked_epoch`; still slashable.
    pub locked: u64,
    /// The epoch the locked fees were earned in.
    pub locked_epoch: u64,
    /// Earned in earlier epochs; can be paid out.
    pub unlocked: u64,
}

impl NodeFees {
    /// Unlocked fees as seen at `epoch` (locked fees from an earlier epoch count as unlocked).
    pub fn unlocked_at(&self, epoch: u64) -> u64 {
        if epoch > self.locked_epoch { self.unlocked.saturating_add(self.locked) } else { self.unlocked }
    }

    /// Locked fees as seen at `epoch`.
    pub fn locked_at(&self, epoch: u64) -> u64 {
        if epoch > self.locked_epoch { 0 } else { self.locked }
    }

    /// Moves fees earned before `epoch` from locked to unlocked.
    pub fn roll(&mut self, epoch: u64) {
        if epoch > self.locked_epoch {
            self.unlocked = self.unlocked.saturating_add(self.locked);
            self.locked = 0;
            self.locked_epoch = epoch;
        }
    }

    /// Both kinds together.
    pub fn total(&self) -> u128 {
        u128::from(self.locked) + u128::from(self.unlocked)
    }
}

/// An enclave key committed for confidential compute (SPEC §6.4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TeeKey {
    /// The hardware holding the key.
    pub device_type: DeviceType,
    /// The ed25519 enclave key.
    pub public_key: [u8; 32],
    /// The rotation the key was committed for.
    pub key_rotation_counter: u64,
}

/// A registered node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Node {
    /// The sequential id.
    pub small_id: NodeSmallId,
    /// The badge that authorizes calls on this object.
    pub badge_id: ObjectId,
    /// Slashable collateral, in base units.
    pub collateral: u64,
    /// The optimizations the node supports.
    pub optimizations: Optimizations,
    /// 0..=1000; starts at 100.
    pub reputation: u16,
    /// The epoch of registration.
    pub registered_epoch: u64,
    /// The epoch the node was disabled in, if it was.
    pub disabled_at_epoch: Option<u64>,
    /// Earnings, locked and unlocked.
    pub fees: NodeFees,
    /// The last epoch in which the node earned its once-per-epoch reputation point.
    pub last_reputation_epoch: Option<u64>,
    /// The enclave key committed for confidential compute, if any.
    pub tee_key: Option<Box<TeeKey>>,
    /// Open stacks that selected the node plus open tickets that requested it as an attester.
    pub open_work: u64,
}

impl Node {
    /// Whether the node is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled_at_epoch.is_some()
    }
}

/// A node's offer for a task.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Subscription {
    /// Price per compute unit, in base units.
    pub price_per_compute_unit: u64,
    /// The most units one stack may ask of the node.
    pub max_num_compute_units: u64,
}

/// A task: what users buy stacks of.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Task {
    /// The object id.
    pub id: ObjectId,
    /// The sequential id.
    pub small_id: TaskSmallId,
    /// The badge that authorizes calls on this object.
    pub badge_id: ObjectId,
    /// What the task computes.
    pub role: TaskRole,
    /// The model the task needs, if any.
    pub model_name: Option<String>,
    /// How results are verified.
    pub security_level: SecurityLevel,
    /// Nodes below this reputation are not eligible.
    pub minimum_reputation_score: Option<u16>,
    /// Optimizations a node must support.
    pub required_optimizations: Optimizations,
    /// The epoch of creation.
    pub created_epoch: u64,
    /// The epoch of deprecation, if deprecated.
    pub deprecated_at_epoch: Option<u64>,
    /// Subscribed nodes, eligible or not.
    pub num_subscribers: u64,
    /// Stacks of this task not yet closed.
    pub open_stacks: u64,
}

/// A performance tier of a model.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Echelon {
    /// The object id.
    pub id: EchelonId,
    /// Fee per input token.
    pub input_fee_per_token: u64,
    /// Fee per output token.
    pub output_fee_per_token: u64,
    /// The echelon's performance relative to others (> 0).
    pub relative_performance: u64,
    /// The response deadline, in milliseconds, nodes and proxies work to.
    pub settlement_timeout_ms: u64,
    /// Nodes that may resolve disputes for the model.
    pub oracles: BTreeSet<NodeSmallId>,
}

/// An AI model nodes can serve.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Model {
    /// The model's unique name.
    pub name: String,
    /// Input and output kinds.
    pub modality: Modality,
    /// Disabled models take no new tasks, stacks or nodes.
    pub enabled: bool,
    /// Performance tiers by id.
    pub echelons: std::collections::BTreeMap<EchelonId, Echelon>,
}

/// The parameters a stack copied when it was bought (SPEC §4: later changes do not apply).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StackTerms {
    /// Sampling-consensus surcharge, in permille of the base cost (`S`).
    pub sampling_consensus_charge_permille: u64,
    /// Fee per attester, in permille of the base cost (`X`).
    pub cross_validation_extra_nodes_charge_permille: u64,
    /// Attesters sampled per cross-validation (`k`).
    pub cross_validation_extra_nodes_count: u64,
    /// Chance that a sampling-consensus settlement is cross-validated.
    pub cross_validation_probability_permille: u64,
    /// Epochs a settlement ticket stays open to attestations and disputes.
    pub stack_dispute_settlement_delay_epochs: u64,
    /// Epochs after purchase before an unsettled stack can be reclaimed.
    pub stack_expiration_epochs: u64,
    /// Epochs a dispute waits for an oracle before it can expire.
    pub dispute_resolution_deadline_epochs: u64,
    /// The settlement timeout of the selected node's echelon for the task's model, or the
    /// global default. The off-chain response deadline nodes and proxies work to.
    pub settlement_timeout_ms: u64,
}

/// A requested attester's submission.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Attestation {
    /// The committed stack proof (SPEC §6.3).
    pub committed_stack_proof: [u8; 32],
    /// `None` when the attester started a dispute without a leaf.
    pub stack_merkle_leaf: Option<[u8; 32]>,
}

/// Where a settlement ticket stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TicketStatus {
    /// The dispute window is open (see [`SettlementTicket::window_open`]).
    Pending,
    /// Verified (TEE proof, every attester agreed, or an oracle found for the node): claimable.
    Confirmed,
    /// Waiting for an oracle since `since_epoch`.
    InDispute {
        /// The epoch the dispute opened in.
        since_epoch: u64,
    },
}

/// The selected node's settlement of a stack.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SettlementTicket {
    /// Units the selected node claimed.
    pub num_claimed_compute_units: u64,
    /// The committed stack proof (SPEC §6.3).
    pub committed_stack_proof: [u8; 32],
    /// The selected node's own leaf.
    pub stack_merkle_leaf: [u8; 32],
    /// Sampled attesters, in order; distinct and never the selected node.
    pub requested_attestation_nodes: Vec<NodeSmallId>,
    /// Aligned with `requested_attestation_nodes`.
    pub attestations: Vec<Option<Attestation>>,
    /// The epoch of creation.
    pub created_epoch: u64,
    /// The block timestamp of creation, in milliseconds.
    pub created_ms: u64,
    /// The window's epoch rule: open while the epoch is below this (and, whatever the epoch,
    /// until [`SettlementTicket::window_floor_ms`]).
    pub dispute_settled_at_epoch: u64,
    /// Pending, confirmed or in dispute.
    pub status: TicketStatus,
    /// The owner's own count, when contested.
    pub contested_units: Option<u64>,
    /// The units the stack is paid for: the claim, or the oracle's count after a dispute.
    pub settled_units: u64,
}

impl SettlementTicket {
    /// When the window's floor in time ends: the ticket's timestamp plus the stack's settlement
    /// timeout, the deadline attesters work to.
    pub fn window_floor_ms(&self, terms: &StackTerms) -> u64 {
        self.created_ms.saturating_add(terms.settlement_timeout_ms)
    }

    /// Whether a block of `epoch` at `timestamp_ms` still takes attestations, attester disputes
    /// and unit contests: the ticket is not confirmed, and the epoch is before
    /// `dispute_settled_at_epoch` *or* the block is before the floor in time, whichever closes
    /// later.
    pub fn window_open(&self, terms: &StackTerms, epoch: u64, timestamp_ms: u64) -> bool {
        self.status != TicketStatus::Confirmed
            && (epoch < self.dispute_settled_at_epoch || timestamp_ms < self.window_floor_ms(terms))
    }

    /// Whether the selected node may claim in a block of `epoch` at `timestamp_ms`: confirmed,
    /// or pending with the window closed.
    pub fn claimable(&self, terms: &StackTerms, epoch: u64, timestamp_ms: u64) -> bool {
        match self.status {
            TicketStatus::Confirmed => true,
            TicketStatus::Pending => !self.window_open(terms, epoch, timestamp_ms),
            TicketStatus::InDispute { .. } => false,
        }
    }

    /// Whether a requested attester that has not attested has missed its deadline when an
    /// oracle decides the ticket at `timestamp_ms`. One that has not is excused: it earns nothing
    /// and loses nothing.
    pub fn attester_timed_out(&self, terms: &StackTerms, timestamp_ms: u64) -> bool {
        timestamp_ms >= self.window_floor_ms(terms)
    }
}

/// A bought stack of compute units and its escrow.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stack {
    /// The object id.
    pub id: ObjectId,
    /// The sequential id.
    pub small_id: StackSmallId,
    /// The badge that authorizes calls on this object.
    pub badge_id: ObjectId,
    /// The task the stack belongs to.
    pub task_small_id: TaskSmallId,
    /// The sampled node that serves the stack.
    pub selected_node: NodeSmallId,
    /// Units bought.
    pub num_compute_units: u64,
    /// Price per compute unit, in base units.
    pub price_per_compute_unit: u64,
    /// How results are verified.
    pub security_level: SecurityLevel,
    /// Base units held for this stack until it closes (SPEC §7.1).
    pub escrow: u64,
    /// Parameters frozen at purchase.
    pub terms: StackTerms,
    /// The epoch of creation.
    pub created_epoch: u64,
    /// The block timestamp of creation, in milliseconds.
    pub created_ms: u64,
    /// The settlement ticket, once the node settled.
    pub ticket: Option<Box<SettlementTicket>>,
}

/// How a stack closed; kept so that late calls get a precise error.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum StackClosure {
    /// The selected node claimed it; the owner got the remainder.
    Claimed,
    /// Its owner reclaimed it after expiry.
    Reclaimed,
    /// An oracle found against the selected node; the owner got the escrow back.
    RefundedAfterDispute,
    /// No oracle resolved its dispute in time; the owner got the escrow back.
    DisputeExpired,
}

/// What is kept of a closed stack: who bought what from whom, how it closed, and where its
/// escrow went — `paid_to_node + paid_to_attesters + surcharge + refund = escrow`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ClosedStack {
    /// How it closed.
    pub closure: StackClosure,
    /// Who held the stack's badge when it closed (and got the refund).
    pub owner: Address,
    /// The task it was bought for.
    pub task_small_id: TaskSmallId,
    /// The node that served it.
    pub selected_node: NodeSmallId,
    /// Units bought.
    pub num_compute_units: u64,
    /// The selected node's price per unit.
    pub price_per_compute_unit: u64,
    /// What the owner escrowed at purchase.
    pub escrow: u64,
    /// The units the selected node claimed when it settled; `None` if it never settled.
    pub claimed_units: Option<u64>,
    /// The units paid for: the claim, or the oracle's count; 0 unless the stack was claimed.
    pub paid_units: u64,
    /// What the selected node earned.
    pub paid_to_node: u64,
    /// What the attesters that attested correctly earned, together.
    pub paid_to_attesters: u64,
    /// What went to the fee treasury (sampling consensus).
    pub surcharge: u64,
    /// What went back to the owner.
    pub refund: u64,
    /// The epoch it closed in.
    pub closed_epoch: u64,
}

/// How a closed stack's escrow was divided, for [`ClosedStack`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Split {
    pub paid_units: u64,
    pub node: u64,
    pub attesters: u64,
    pub surcharge: u64,
    pub refund: u64,
}

/// Counters, treasuries and configuration: the scalar part of the state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Globals {
    /// The `AtomaDb` object id.
    pub db_id: ObjectId,
    /// The contract's package id (event types name it).
    pub package_id: ObjectId,
    /// The next node small id.
    pub next_node_small_id: u64,
    /// The next task small id.
    pub next_task_small_id: u64,
    /// The next stack small id.
    pub next_stack_small_id: u64,
    /// Sampling-consensus surcharges collected.
    pub fee_treasury: u64,
    /// Slashed collateral not paid to oracles or honest nodes.
    pub communal_treasury: u64,
    /// The rotation the key was committed for.
    pub key_rotation_counter: u64,
    /// Fixed at genesis; SPEC §7.4 checks every term against it.
    pub total_supply: u128,
    /// The configuration in force.
    pub config: Config,
}

/// The whole state of the protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AtomaDb {
    pub(crate) globals: Cell<Globals>,
    pub(crate) balances: Table<Address, u64>,
    pub(crate) badges: Table<ObjectId, Badge>,
    /// `(owner, badge)`: the badges each address owns.
    pub(crate) owned: Table<(Address, ObjectId), ()>,
    pub(crate) nodes: Slab<NodeSmallId, Node>,
    pub(crate) subscriptions: Table<(TaskSmallId, NodeSmallId), Subscription>,
    pub(crate) node_tasks: Table<(NodeSmallId, TaskSmallId), ()>,
    pub(crate) models: Table<String, Model>,
    /// `(model, echelon, node)`: who serves what.
    pub(crate) model_nodes: Table<(String, EchelonId, NodeSmallId), ()>,
    pub(crate) node_models: Table<(NodeSmallId, String, EchelonId), ()>,
    pub(crate) tasks: Table<TaskSmallId, Task>,
    pub(crate) stacks: Slab<StackSmallId, Stack>,
    pub(crate) closed_stacks: Table<StackSmallId, ClosedStack>,
    pub(crate) attestation_roots: Table<DeviceType, [u8; 32]>,
    /// Where each node's agent serves users, for nodes whose owner set it.
    pub(crate) node_endpoints: Table<NodeSmallId, String>,
    /// Derived from the tables above; rebuilt after loading, never serialized.
    #[serde(skip)]
    pub(crate) sampling: SamplingIndex,
}

impl AtomaDb {
    /// Applies `f` to every journaled part of the state.
    pub(crate) fn each_journal(&mut self, f: &mut dyn FnMut(&mut dyn Journal)) {
        f(&mut self.globals);
        f(&mut self.balances);
        f(&mut self.badges);
        f(&mut self.owned);
        f(&mut self.nodes);
        f(&mut self.subscriptions);
        f(&mut self.node_tasks);
        f(&mut self.models);
        f(&mut self.model_nodes);
        f(&mut self.node_models);
        f(&mut self.tasks);
        f(&mut self.stacks);
        f(&mut self.closed_stacks);
        f(&mut self.attestation_roots);
        f(&mut self.node_endpoints);
    }
}
