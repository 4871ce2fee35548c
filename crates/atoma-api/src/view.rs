//! JSON views of the state's records, for `atoma_getNode`, `atoma_getTask`, `atoma_getStack`,
//! `atoma_getSettlementTicket`, `atoma_getModel` and `atoma_getOwnedBadges` (SPEC §13).
//!
//! Each view is built from the state with `find` (by key, `None` when absent) or `new` (from a
//! record already in hand), serializes to the JSON the RPC serves and deserializes from it, so a
//! client can read the same type back. Keys are camelCase as in Sui's RPC responses; values
//! follow the event conventions (see the crate docs).

use atoma_contract::state::{
    Attestation, Badge, BadgeKind, Echelon, Model, Node, SettlementTicket, Stack, StackClosure, StackTerms,
    Task, TeeKey, TicketStatus,
};
use atoma_contract::{Address, AtomaDb, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use serde::{Deserialize, Serialize};

use crate::wire;

/// A node, its offers and the models it serves.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    #[serde(with = "wire::small")]
    pub small_id: NodeSmallId,
    #[serde(with = "wire::text")]
    pub badge_id: ObjectId,
    /// The owner of the node's badge, who operates the node.
    #[serde(with = "wire::opt_text")]
    pub owner: Option<Address>,
    #[serde(with = "wire::u64_str")]
    pub collateral: u64,
    /// The optimization bit set of SPEC §3.
    pub supported_optimizations: u8,
    pub reputation: u16,
    #[serde(with = "wire::u64_str")]
    pub registered_epoch: u64,
    #[serde(with = "wire::opt_u64_str")]
    pub disabled_at_epoch: Option<u64>,
    /// Fees earned in the current epoch: still slashable, not yet withdrawable (SPEC §7.3).
    #[serde(with = "wire::u64_str")]
    pub locked_fees: u64,
    /// Fees that `withdraw_fees` would pay now.
    #[serde(with = "wire::u64_str")]
    pub unlocked_fees: u64,
    #[serde(with = "wire::opt_u64_str")]
    pub last_reputation_epoch: Option<u64>,
    pub tee_key: Option<TeeKeyView>,
    /// Open stacks that selected the node plus open tickets that requested it as an attester.
    #[serde(with = "wire::u64_str")]
    pub open_work: u64,
    /// In task order.
    pub subscriptions: Vec<SubscriptionView>,
    /// The `(model, echelon)` pairs the node serves.
    pub models: Vec<ServedModelView>,
    /// Where the node's agent serves users (`set_node_endpoint`); `null` until its owner sets one.
    pub endpoint: Option<String>,
}

/// A node's committed enclave key (SPEC §6.4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeeKeyView {
    /// The device type's wire number (SPEC §3).
    pub device_type: u16,
    pub public_key: [u8; 32],
    #[serde(with = "wire::u64_str")]
    pub key_rotation_counter: u64,
}

/// A node's offer for a task.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    #[serde(with = "wire::small")]
    pub task_small_id: TaskSmallId,
    #[serde(with = "wire::u64_str")]
    pub price_per_compute_unit: u64,
    #[serde(with = "wire::u64_str")]
    pub max_num_compute_units: u64,
}

/// A model a node serves, and in which echelon.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedModelView {
    pub model_name: String,
    #[serde(with = "wire::echelon")]
    pub echelon_id: EchelonId,
}

impl NodeView {
    /// The node with this id, with fees split as seen at `current_epoch` (fees earned in an
    /// earlier epoch than the current one are already withdrawable).
    pub fn find(db: &AtomaDb, id: NodeSmallId, current_epoch: u64) -> Option<Self> {
        db.node(id).map(|node| Self::new(db, node, current_epoch))
    }

    /// The view of `node`; see [`NodeView::find`].
    pub fn new(db: &AtomaDb, node: &Node, current_epoch: u64) -> Self {
        let subscriptions = db
            .node_subscriptions(node.small_id)
            .filter_map(|task| {
                db.subscription(task, node.small_id).map(|s| SubscriptionView {
                    task_small_id: task,
                    price_per_compute_unit: s.price_per_compute_unit,
                    max_num_compute_units: s.max_num_compute_units,
                })
            })
            .collect();
        let models = db
            .node_models(node.small_id)
            .into_iter()
            .map(|(model_name, echelon_id)| ServedModelView { model_name, echelon_id })
            .collect();
        NodeView {
            small_id: node.small_id,
            badge_id: node.badge_id,
            owner: owner_of(db, node.badge_id),
            collateral: node.collateral,
            supported_optimizations: node.optimizations.bits(),
            reputation: node.reputation,
            registered_epoch: node.registered_epoch,
            disabled_at_epoch: node.disabled_at_epoch,
            locked_fees: node.fees.locked_at(current_epoch),
            unlocked_fees: node.fees.unlocked_at(current_epoch),
            last_reputation_epoch: node.last_reputation_epoch,
            tee_key: node.tee_key.as_deref().map(TeeKeyView::from),
            open_work: node.open_work,
            subscriptions,
            models,
            endpoint: db.node_endpoint(node.small_id).map(str::to_string),
        }
    }
}

impl From<&TeeKey> for TeeKeyView {
    fn from(key: &TeeKey) -> Self {
        TeeKeyView {
            device_type: key.device_type.to_wire(),
            public_key: key.public_key,
            key_rotation_counter: key.key_rotation_counter,
        }
    }
}

fn owner_of(db: &AtomaDb, badge: ObjectId) -> Option<Address> {
    db.badge(badge).map(|b| b.owner)
}

/// A task and how many nodes offer it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    #[serde(with = "wire::text")]
    pub id: ObjectId,
    #[serde(with = "wire::small")]
    pub small_id: TaskSmallId,
    #[serde(with = "wire::text")]
    pub badge_id: ObjectId,
    /// The owner of the task's badge.
    #[serde(with = "wire::opt_text")]
    pub owner: Option<Address>,
    /// The task role's wire number (SPEC §3).
    pub role: u16,
    pub model_name: Option<String>,
    /// The security level's wire number (SPEC §3).
    pub security_level: u16,
    pub minimum_reputation_score: Option<u16>,
    /// The optimization bit set of SPEC §3.
    pub required_optimizations: u8,
    #[serde(with = "wire::u64_str")]
    pub created_epoch: u64,
    #[serde(with = "wire::opt_u64_str")]
    pub deprecated_at_epoch: Option<u64>,
    #[serde(with = "wire::u64_str")]
    pub num_subscribers: u64,
    #[serde(with = "wire::u64_str")]
    pub open_stacks: u64,
}

impl TaskView {
    /// The task with this id.
    pub fn find(db: &AtomaDb, id: TaskSmallId) -> Option<Self> {
        db.task(id).map(|task| Self::new(db, task))
    }

    /// The view of `task`; `db` supplies the owner.
    pub fn new(db: &AtomaDb, task: &Task) -> Self {
        TaskView {
            id: task.id,
            small_id: task.small_id,
            badge_id: task.badge_id,
            owner: owner_of(db, task.badge_id),
            role: task.role.to_wire(),
            model_name: task.model_name.clone(),
            security_level: task.security_level.to_wire(),
            minimum_reputation_score: task.minimum_reputation_score,
            required_optimizations: task.required_optimizations.bits(),
            created_epoch: task.created_epoch,
            deprecated_at_epoch: task.deprecated_at_epoch,
            num_subscribers: task.num_subscribers,
            open_stacks: task.open_stacks,
        }
    }
}

/// An open stack, the terms it was bought under, and its settlement ticket or `null`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackView {
    #[serde(with = "wire::text")]
    pub id: ObjectId,
    #[serde(with = "wire::small")]
    pub small_id: StackSmallId,
    #[serde(with = "wire::text")]
    pub badge_id: ObjectId,
    /// The owner of the stack's badge, who gets its refunds.
    #[serde(with = "wire::opt_text")]
    pub owner: Option<Address>,
    #[serde(with = "wire::small")]
    pub task_small_id: TaskSmallId,
    #[serde(with = "wire::small")]
    pub selected_node: NodeSmallId,
    #[serde(with = "wire::u64_str")]
    pub num_compute_units: u64,
    #[serde(with = "wire::u64_str")]
    pub price_per_compute_unit: u64,
    /// The security level's wire number (SPEC §3).
    pub security_level: u16,
    /// Base units held until the stack closes (SPEC §7.1).
    #[serde(with = "wire::u64_str")]
    pub escrow: u64,
    pub terms: StackTermsView,
    #[serde(with = "wire::u64_str")]
    pub created_epoch: u64,
    #[serde(with = "wire::u64_str")]
    pub created_ms: u64,
    pub settlement_ticket: Option<TicketView>,
}

/// The parameters a stack copied when it was bought (SPEC §4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackTermsView {
    #[serde(with = "wire::u64_str")]
    pub sampling_consensus_charge_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_extra_nodes_charge_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_extra_nodes_count: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_probability_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub stack_dispute_settlement_delay_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub stack_expiration_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub dispute_resolution_deadline_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub settlement_timeout_ms: u64,
}

impl StackView {
    /// The open stack with this id; `None` when it never existed or has closed
    /// (see [`StackLookup`]).
    pub fn find(db: &AtomaDb, id: StackSmallId) -> Option<Self> {
        db.stack(id).map(|stack| Self::new(db, stack))
    }

    /// The view of `stack`; `db` supplies the owner.
    pub fn new(db: &AtomaDb, stack: &Stack) -> Self {
        StackView {
            id: stack.id,
            small_id: stack.small_id,
            badge_id: stack.badge_id,
            owner: owner_of(db, stack.badge_id),
            task_small_id: stack.task_small_id,
            selected_node: stack.selected_node,
            num_compute_units: stack.num_compute_units,
            price_per_compute_unit: stack.price_per_compute_unit,
            security_level: stack.security_level.to_wire(),
            escrow: stack.escrow,
            terms: StackTermsView::from(&stack.terms),
            created_epoch: stack.created_epoch,
            created_ms: stack.created_ms,
            settlement_ticket: stack.ticket.as_ref().map(|t| TicketView::new(stack, t)),
        }
    }
}

impl From<&StackTerms> for StackTermsView {
    fn from(t: &StackTerms) -> Self {
        StackTermsView {
            sampling_consensus_charge_permille: t.sampling_consensus_charge_permille,
            cross_validation_extra_nodes_charge_permille: t.cross_validation_extra_nodes_charge_permille,
            cross_validation_extra_nodes_count: t.cross_validation_extra_nodes_count,
            cross_validation_probability_permille: t.cross_validation_probability_permille,
            stack_dispute_settlement_delay_epochs: t.stack_dispute_settlement_delay_epochs,
            stack_expiration_epochs: t.stack_expiration_epochs,
            dispute_resolution_deadline_epochs: t.dispute_resolution_deadline_epochs,
            settlement_timeout_ms: t.settlement_timeout_ms,
        }
    }
}

/// Where a settlement ticket stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TicketStatusView {
    /// The dispute window is open until `disputeSettledAtEpoch`.
    Pending,
    /// Verified; claimable.
    Confirmed,
    /// Waiting for an oracle since `inDisputeSinceEpoch`.
    InDispute,
}

/// The selected node's settlement of a stack.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    #[serde(with = "wire::small")]
    pub stack_small_id: StackSmallId,
    #[serde(with = "wire::u64_str")]
    pub num_claimed_compute_units: u64,
    pub committed_stack_proof: [u8; 32],
    pub stack_merkle_leaf: [u8; 32],
    #[serde(with = "wire::small_vec")]
    pub requested_attestation_nodes: Vec<NodeSmallId>,
    /// Aligned with `requestedAttestationNodes`: `null` until that node attests.
    pub attestations: Vec<Option<AttestationView>>,
    #[serde(with = "wire::u64_str")]
    pub created_epoch: u64,
    #[serde(with = "wire::u64_str")]
    pub created_ms: u64,
    /// The window's epoch rule: open while the epoch is below this.
    #[serde(with = "wire::u64_str")]
    pub dispute_settled_at_epoch: u64,
    /// The window's floor in time: whatever the epoch, it stays open (for a ticket not yet
    /// confirmed) until a block at or after this timestamp, `createdMs` plus the stack's
    /// settlement timeout; an attester that has not attested by then is slashed on timeout.
    #[serde(with = "wire::u64_str")]
    pub window_floor_ms: u64,
    pub status: TicketStatusView,
    /// Set when `status` is `InDispute`.
    #[serde(with = "wire::opt_u64_str")]
    pub in_dispute_since_epoch: Option<u64>,
    /// The owner's own count, when contested.
    #[serde(with = "wire::opt_u64_str")]
    pub contested_units: Option<u64>,
    /// The units the stack is paid for: the claim, or the oracle's count after a dispute.
    #[serde(with = "wire::u64_str")]
    pub settled_units: u64,
}

/// A requested attester's submission.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationView {
    pub committed_stack_proof: [u8; 32],
    /// `null` when the attester started a dispute without a leaf.
    pub stack_merkle_leaf: Option<[u8; 32]>,
}

impl TicketView {
    /// The settlement ticket of the open stack with this id.
    pub fn find(db: &AtomaDb, stack: StackSmallId) -> Option<Self> {
        let stack = db.stack(stack)?;
        stack.ticket.as_deref().map(|t| Self::new(stack, t))
    }

    /// The view of `ticket`, which belongs to `stack`.
    pub fn new(stack: &Stack, ticket: &SettlementTicket) -> Self {
        let (status, in_dispute_since_epoch) = match ticket.status {
            TicketStatus::Pending => (TicketStatusView::Pending, None),
            TicketStatus::Confirmed => (TicketStatusView::Confirmed, None),
            TicketStatus::InDispute { since_epoch } => (TicketStatusView::InDispute, Some(since_epoch)),
        };
        TicketView {
            stack_small_id: stack.small_id,
            num_claimed_compute_units: ticket.num_claimed_compute_units,
            committed_stack_proof: ticket.committed_stack_proof,
            stack_merkle_leaf: ticket.stack_merkle_leaf,
            requested_attestation_nodes: ticket.requested_attestation_nodes.clone(),
            attestations: ticket.attestations.iter().map(|a| a.as_ref().map(AttestationView::from)).collect(),
            created_epoch: ticket.created_epoch,
            created_ms: ticket.created_ms,
            dispute_settled_at_epoch: ticket.dispute_settled_at_epoch,
            window_floor_ms: ticket.window_floor_ms(&stack.terms),
            status,
            in_dispute_since_epoch,
            contested_units: ticket.contested_units,
            settled_units: ticket.settled_units,
        }
    }
}

impl TicketView {
    /// [`SettlementTicket::window_open`] read from the view: whether a block of `epoch` at
    /// `timestamp_ms` still takes attestations, attester disputes and unit contests.
    pub fn window_open(&self, epoch: u64, timestamp_ms: u64) -> bool {
        self.status != TicketStatusView::Confirmed
            && (epoch < self.dispute_settled_at_epoch || timestamp_ms < self.window_floor_ms)
    }

    /// [`SettlementTicket::claimable`] read from the view: whether the selected node may claim in
    /// a block of `epoch` at `timestamp_ms`.
    pub fn claimable(&self, epoch: u64, timestamp_ms: u64) -> bool {
        match self.status {
            TicketStatusView::Confirmed => true,
            TicketStatusView::Pending => !self.window_open(epoch, timestamp_ms),
            TicketStatusView::InDispute => false,
        }
    }
}

impl From<&Attestation> for AttestationView {
    fn from(a: &Attestation) -> Self {
        AttestationView {
            committed_stack_proof: a.committed_stack_proof,
            stack_merkle_leaf: a.stack_merkle_leaf,
        }
    }
}

/// A stack that has closed: how (`closed` is one of `Claimed`, `Reclaimed`,
/// `RefundedAfterDispute`, `DisputeExpired`), who bought what from whom, and where its escrow
/// went (`paidToNode + paidToAttesters + surcharge + refund = escrow`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosedStackView {
    #[serde(with = "wire::small")]
    pub small_id: StackSmallId,
    pub closed: StackClosure,
    /// Who held the stack when it closed (and got the refund).
    pub owner: Address,
    #[serde(with = "wire::small")]
    pub task_small_id: TaskSmallId,
    #[serde(with = "wire::small")]
    pub selected_node: NodeSmallId,
    #[serde(with = "wire::u64_str")]
    pub num_compute_units: u64,
    #[serde(with = "wire::u64_str")]
    pub price_per_compute_unit: u64,
    #[serde(with = "wire::u64_str")]
    pub escrow: u64,
    /// What the node claimed when it settled; `null` if it never settled.
    #[serde(with = "wire::opt_u64_str")]
    pub claimed_units: Option<u64>,
    /// The units paid for (the claim, or the oracle's count); `"0"` unless `Claimed`.
    #[serde(with = "wire::u64_str")]
    pub paid_units: u64,
    #[serde(with = "wire::u64_str")]
    pub paid_to_node: u64,
    /// Together, to the attesters that attested correctly.
    #[serde(with = "wire::u64_str")]
    pub paid_to_attesters: u64,
    /// To the fee treasury.
    #[serde(with = "wire::u64_str")]
    pub surcharge: u64,
    /// Back to `owner`; the four amounts add up to `escrow`.
    #[serde(with = "wire::u64_str")]
    pub refund: u64,
    #[serde(with = "wire::u64_str")]
    pub closed_epoch: u64,
}

impl ClosedStackView {
    /// The closed stack with this id.
    pub fn find(db: &AtomaDb, id: StackSmallId) -> Option<Self> {
        db.closed_stack(id).map(|c| ClosedStackView {
            small_id: id,
            closed: c.closure,
            owner: c.owner,
            task_small_id: c.task_small_id,
            selected_node: c.selected_node,
            num_compute_units: c.num_compute_units,
            price_per_compute_unit: c.price_per_compute_unit,
            escrow: c.escrow,
            claimed_units: c.claimed_units,
            paid_units: c.paid_units,
            paid_to_node: c.paid_to_node,
            paid_to_attesters: c.paid_to_attesters,
            surcharge: c.surcharge,
            refund: c.refund,
            closed_epoch: c.closed_epoch,
        })
    }
}

/// What `atoma_getStack` answers: the open stack, or how it closed. Untagged in JSON: the two
/// shapes are told apart by their keys (`closed` is only in the closed one).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StackLookup {
    /// The stack is open.
    Open(Box<StackView>),
    /// The stack has closed.
    Closed(ClosedStackView),
}

impl StackLookup {
    /// The stack with this id, open or closed; `None` when no stack ever had it.
    pub fn find(db: &AtomaDb, id: StackSmallId) -> Option<Self> {
        StackView::find(db, id)
            .map(|s| StackLookup::Open(Box::new(s)))
            .or_else(|| ClosedStackView::find(db, id).map(StackLookup::Closed))
    }
}

/// A model with its echelons and their oracles.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelView {
    pub name: String,
    /// The modality's wire number (SPEC §3).
    pub modality: u16,
    pub enabled: bool,
    /// In echelon id order.
    pub echelons: Vec<EchelonView>,
}

/// A performance tier of a model.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EchelonView {
    #[serde(with = "wire::echelon")]
    pub id: EchelonId,
    #[serde(with = "wire::u64_str")]
    pub input_fee_per_token: u64,
    #[serde(with = "wire::u64_str")]
    pub output_fee_per_token: u64,
    #[serde(with = "wire::u64_str")]
    pub relative_performance: u64,
    #[serde(with = "wire::u64_str")]
    pub settlement_timeout_ms: u64,
    /// In node order.
    #[serde(with = "wire::small_vec")]
    pub oracles: Vec<NodeSmallId>,
}

impl ModelView {
    /// The model with this name.
    pub fn find(db: &AtomaDb, name: &str) -> Option<Self> {
        db.model(name).map(ModelView::from)
    }
}

impl From<&Model> for ModelView {
    fn from(model: &Model) -> Self {
        ModelView {
            name: model.name.clone(),
            modality: model.modality.to_wire(),
            enabled: model.enabled,
            echelons: model.echelons.values().map(EchelonView::from).collect(),
        }
    }
}

impl From<&Echelon> for EchelonView {
    fn from(e: &Echelon) -> Self {
        EchelonView {
            id: e.id,
            input_fee_per_token: e.input_fee_per_token,
            output_fee_per_token: e.output_fee_per_token,
            relative_performance: e.relative_performance,
            settlement_timeout_ms: e.settlement_timeout_ms,
            oracles: e.oracles.iter().copied().collect(),
        }
    }
}

/// What a badge authorizes, by its Move type name (SPEC §4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum BadgeKindView {
    /// The admin.
    AtomaManagerBadge,
    /// Operates the node `smallId`.
    NodeBadge,
    /// Owns the task `smallId`.
    TaskBadge,
    /// Owns the stack `smallId`.
    StackBadge,
}

/// A badge: `{"id": "0x…", "owner": "0x…", "kind": "NodeBadge", "smallId": {"inner": "3"}}`;
/// `smallId` is `null` for an `AtomaManagerBadge`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadgeView {
    #[serde(with = "wire::text")]
    pub id: ObjectId,
    #[serde(with = "wire::text")]
    pub owner: Address,
    pub kind: BadgeKindView,
    /// The node, task or stack the badge controls; `kind` says which.
    #[serde(with = "wire::opt_small")]
    pub small_id: Option<u64>,
}

impl BadgeView {
    /// The badge with this id.
    pub fn find(db: &AtomaDb, id: ObjectId) -> Option<Self> {
        db.badge(id).map(|badge| Self::new(id, badge))
    }

    /// The view of `badge`, whose id is `id`.
    pub fn new(id: ObjectId, badge: &Badge) -> Self {
        let (kind, small_id) = match badge.kind {
            BadgeKind::Manager => (BadgeKindView::AtomaManagerBadge, None),
            BadgeKind::Node(n) => (BadgeKindView::NodeBadge, Some(n.0)),
            BadgeKind::Task(t) => (BadgeKindView::TaskBadge, Some(t.0)),
            BadgeKind::Stack(s) => (BadgeKindView::StackBadge, Some(s.0)),
        };
        BadgeView { id, owner: badge.owner, kind, small_id }
    }

    /// The badges `owner` holds, in id order.
    pub fn owned_by(db: &AtomaDb, owner: &Address) -> Vec<Self> {
        db.owned_badges(owner).iter().map(|(id, badge)| Self::new(*id, badge)).collect()
    }

    /// The contract's badge kind, or `None` when `kind` and `smallId` do not fit together
    /// (a manager badge with a small id, or another badge without one).
    pub fn badge_kind(&self) -> Option<BadgeKind> {
        match (self.kind, self.small_id) {
            (BadgeKindView::AtomaManagerBadge, None) => Some(BadgeKind::Manager),
            (BadgeKindView::NodeBadge, Some(n)) => Some(BadgeKind::Node(NodeSmallId(n))),
            (BadgeKindView::TaskBadge, Some(t)) => Some(BadgeKind::Task(TaskSmallId(t))),
            (BadgeKindView::StackBadge, Some(s)) => Some(BadgeKind::Stack(StackSmallId(s))),
            _ => None,
        }
    }
}
