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
use crate::table::{Cell, Journal, Table};

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
    pub owner: Address,
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
    pub device_type: DeviceType,
    pub public_key: [u8; 32],
    pub key_rotation_counter: u64,
}

/// A registered node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Node {
    pub small_id: NodeSmallId,
    pub badge_id: ObjectId,
    pub collateral: u64,
    pub optimizations: Optimizations,
    pub reputation: u16,
    pub registered_epoch: u64,
    pub disabled_at_epoch: Option<u64>,
    pub fees: NodeFees,
    /// The last epoch in which the node earned its once-per-epoch reputation point.
    pub last_reputation_epoch: Option<u64>,
    pub tee_key: Option<TeeKey>,
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
    pub price_per_compute_unit: u64,
    pub max_num_compute_units: u64,
}

/// A task: what users buy stacks of.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Task {
    pub id: ObjectId,
    pub small_id: TaskSmallId,
    pub badge_id: ObjectId,
    pub role: TaskRole,
    pub model_name: Option<String>,
    pub security_level: SecurityLevel,
    pub minimum_reputation_score: Option<u16>,
    pub required_optimizations: Optimizations,
    pub created_epoch: u64,
    pub deprecated_at_epoch: Option<u64>,
    pub num_subscribers: u64,
    pub open_stacks: u64,
}

/// A performance tier of a model.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Echelon {
    pub id: EchelonId,
    pub input_fee_per_token: u64,
    pub output_fee_per_token: u64,
    pub relative_performance: u64,
    pub settlement_timeout_ms: u64,
    pub oracles: BTreeSet<NodeSmallId>,
}

/// An AI model nodes can serve.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub modality: Modality,
    pub enabled: bool,
    pub echelons: std::collections::BTreeMap<EchelonId, Echelon>,
}

/// The parameters a stack copied when it was bought (SPEC §4: later changes do not apply).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StackTerms {
    pub sampling_consensus_charge_permille: u64,
    pub cross_validation_extra_nodes_charge_permille: u64,
    pub cross_validation_extra_nodes_count: u64,
    pub cross_validation_probability_permille: u64,
    pub stack_dispute_settlement_delay_epochs: u64,
    pub stack_expiration_epochs: u64,
    pub dispute_resolution_deadline_epochs: u64,
    /// The settlement timeout of the selected node's echelon for the task's model, or the
    /// global default. The off-chain response deadline nodes and proxies work to.
    pub settlement_timeout_ms: u64,
}

/// A requested attester's submission.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Attestation {
    pub committed_stack_proof: [u8; 32],
    /// `None` when the attester started a dispute without a leaf.
    pub stack_merkle_leaf: Option<[u8; 32]>,
}

/// Where a settlement ticket stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TicketStatus {
    /// The dispute window is open until `dispute_settled_at_epoch`.
    Pending,
    /// Verified (TEE proof, every attester agreed, or an oracle found for the node): claimable.
    Confirmed,
    /// Waiting for an oracle since `since_epoch`.
    InDispute { since_epoch: u64 },
}

/// The selected node's settlement of a stack.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SettlementTicket {
    pub num_claimed_compute_units: u64,
    pub committed_stack_proof: [u8; 32],
    pub stack_merkle_leaf: [u8; 32],
    pub requested_attestation_nodes: Vec<NodeSmallId>,
    /// Aligned with `requested_attestation_nodes`.
    pub attestations: Vec<Option<Attestation>>,
    pub created_epoch: u64,
    pub created_ms: u64,
    pub dispute_settled_at_epoch: u64,
    pub status: TicketStatus,
    /// The owner's own count, when contested.
    pub contested_units: Option<u64>,
    /// The units the stack is paid for: the claim, or the oracle's count after a dispute.
    pub settled_units: u64,
}

/// A bought stack of compute units and its escrow.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Stack {
    pub id: ObjectId,
    pub small_id: StackSmallId,
    pub badge_id: ObjectId,
    pub task_small_id: TaskSmallId,
    pub selected_node: NodeSmallId,
    pub num_compute_units: u64,
    pub price_per_compute_unit: u64,
    pub security_level: SecurityLevel,
    /// Base units held for this stack until it closes (SPEC §7.1).
    pub escrow: u64,
    pub terms: StackTerms,
    pub created_epoch: u64,
    pub created_ms: u64,
    pub ticket: Option<SettlementTicket>,
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

/// Counters, treasuries and configuration: the scalar part of the state.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Globals {
    pub db_id: ObjectId,
    pub package_id: ObjectId,
    pub next_node_small_id: u64,
    pub next_task_small_id: u64,
    pub next_stack_small_id: u64,
    pub fee_treasury: u64,
    pub communal_treasury: u64,
    pub key_rotation_counter: u64,
    /// Fixed at genesis; SPEC §7.4 checks every term against it.
    pub total_supply: u128,
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
    pub(crate) nodes: Table<NodeSmallId, Node>,
    pub(crate) subscriptions: Table<(TaskSmallId, NodeSmallId), Subscription>,
    pub(crate) node_tasks: Table<(NodeSmallId, TaskSmallId), ()>,
    pub(crate) models: Table<String, Model>,
    /// `(model, echelon, node)`: who serves what.
    pub(crate) model_nodes: Table<(String, EchelonId, NodeSmallId), ()>,
    pub(crate) node_models: Table<(NodeSmallId, String, EchelonId), ()>,
    pub(crate) tasks: Table<TaskSmallId, Task>,
    pub(crate) stacks: Table<StackSmallId, Stack>,
    pub(crate) closed_stacks: Table<StackSmallId, StackClosure>,
    pub(crate) attestation_roots: Table<DeviceType, [u8; 32]>,
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
    }
}
