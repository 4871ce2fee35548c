//! Events (SPEC §10): what a successful call tells the outside world.
//!
//! Each event is a struct; [`Event`] wraps them all. The contract does not know JSON: every event
//! lists its fields as neutral [`EventValue`]s, and the RPC edge renders those in Sui's
//! `parsedJson` convention. Field names and order are part of the wire format, and the ledger
//! stores events BCS-encoded, so the order of the variants of [`Event`] is a storage format too:
//! append new events at the end, never reorder or remove one.

use serde::{Deserialize, Serialize};

use crate::ids::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};

/// A field's value, in the few shapes the wire format distinguishes (SPEC §10).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EventValue {
    /// A `u64`, shown as a decimal string.
    U64(u64),
    /// A `u16` or `u8`, shown as a number.
    Small(u16),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// A byte vector, shown as an array of numbers.
    Bytes(Vec<u8>),
    /// An address or object id, shown as `0x` hex.
    Id([u8; 32]),
    /// A node, task or stack small id, shown as `{"inner": "7"}`.
    SmallId(u64),
    /// An echelon id, shown as `{"id": "1"}`.
    EchelonId(u64),
    /// An optional value, shown as `null` or the value.
    Option(Option<Box<EventValue>>),
    /// A list of values.
    List(Vec<EventValue>),
}

/// Turns a field into its [`EventValue`].
pub trait EventField {
    /// The field's neutral value.
    fn to_value(&self) -> EventValue;
}

impl EventField for u64 {
    fn to_value(&self) -> EventValue {
        EventValue::U64(*self)
    }
}
impl EventField for u16 {
    fn to_value(&self) -> EventValue {
        EventValue::Small(*self)
    }
}
impl EventField for u8 {
    fn to_value(&self) -> EventValue {
        EventValue::Small(u16::from(*self))
    }
}
impl EventField for bool {
    fn to_value(&self) -> EventValue {
        EventValue::Bool(*self)
    }
}
impl EventField for String {
    fn to_value(&self) -> EventValue {
        EventValue::Str(self.clone())
    }
}
impl EventField for [u8; 32] {
    fn to_value(&self) -> EventValue {
        EventValue::Bytes(self.to_vec())
    }
}
impl EventField for Vec<u8> {
    fn to_value(&self) -> EventValue {
        EventValue::Bytes(self.clone())
    }
}
impl EventField for Address {
    fn to_value(&self) -> EventValue {
        EventValue::Id(self.0)
    }
}
impl EventField for ObjectId {
    fn to_value(&self) -> EventValue {
        EventValue::Id(self.0)
    }
}
impl EventField for NodeSmallId {
    fn to_value(&self) -> EventValue {
        EventValue::SmallId(self.0)
    }
}
impl EventField for TaskSmallId {
    fn to_value(&self) -> EventValue {
        EventValue::SmallId(self.0)
    }
}
impl EventField for StackSmallId {
    fn to_value(&self) -> EventValue {
        EventValue::SmallId(self.0)
    }
}
impl EventField for EchelonId {
    fn to_value(&self) -> EventValue {
        EventValue::EchelonId(self.0)
    }
}
impl EventField for Vec<NodeSmallId> {
    fn to_value(&self) -> EventValue {
        EventValue::List(self.iter().map(EventField::to_value).collect())
    }
}
impl<T: EventField> EventField for Option<T> {
    fn to_value(&self) -> EventValue {
        EventValue::Option(self.as_ref().map(|v| Box::new(v.to_value())))
    }
}

macro_rules! events {
    ($($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty,)* })+) => {
        $(
            $(#[$doc])*
            #[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
            pub struct $name { $(#[allow(missing_docs)] pub $field: $ty,)* }

            impl From<$name> for Event {
                fn from(e: $name) -> Event {
                    Event::$name(e)
                }
            }
        )+

        /// Any event the contract emits.
        #[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
        #[allow(clippy::enum_variant_names)]
        pub enum Event {
            $($(#[$doc])* $name($name),)+
        }

        impl Event {
            /// Every event name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name),)+];

            /// The event's type name, such as `StackCreatedEvent`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Event::$name(_) => stringify!($name),)+
                }
            }

            /// The event's fields in wire order.
            pub fn fields(&self) -> Vec<(&'static str, EventValue)> {
                match self {
                    $(Event::$name(_e) => vec![$((stringify!($field), _e.$field.to_value()),)*],)+
                }
            }
        }
    };
}

events! {
    /// Genesis: the db object and the first manager badge.
    PublishedEvent { db: ObjectId, manager_badge: ObjectId, }
    /// A node registered and received its badge.
    NodeRegisteredEvent { badge_id: ObjectId, node_small_id: NodeSmallId, }
    /// A node's owner added collateral.
    NodeCollateralAddedEvent { node_small_id: NodeSmallId, amount: u64, collateral: u64, }
    /// A node started serving a model in an echelon.
    NodeSubscribedToModelEvent { node_small_id: NodeSmallId, model_name: String, echelon_id: EchelonId, }
    /// A node stopped serving a model in an echelon.
    NodeUnsubscribedFromModelEvent { node_small_id: NodeSmallId, model_name: String, echelon_id: EchelonId, }
    /// A node subscribed to a task at a price.
    NodeSubscribedToTaskEvent {
        task_small_id: TaskSmallId,
        node_small_id: NodeSmallId,
        price_per_compute_unit: u64,
        max_num_compute_units: u64,
    }
    /// A node changed its price or capacity for a task.
    NodeUpdateSubscriptionEvent {
        task_small_id: TaskSmallId,
        node_small_id: NodeSmallId,
        price_per_compute_unit: u64,
        max_num_compute_units: u64,
    }
    /// A node left a task.
    NodeUnsubscribedFromTaskEvent { task_small_id: TaskSmallId, node_small_id: NodeSmallId, }
    /// A node changed the optimizations it supports.
    NodeOptimizationsUpdatedEvent { node_small_id: NodeSmallId, supported_optimizations: u8, }
    /// A node was permanently disabled, by its owner or the admin.
    NodeDisabledEvent { node_small_id: NodeSmallId, epoch: u64, }
    /// A disabled node was destroyed and its collateral and fees returned.
    NodeDestroyedEvent { node_small_id: NodeSmallId, collateral_returned: u64, fees_returned: u64, }
    /// A node's unlocked fees were paid to its owner.
    NodeFeesWithdrawnEvent { node_small_id: NodeSmallId, amount: u64, }
    /// A node lost collateral (`reason` is `timeout` or `dispute`).
    NodeSlashedEvent {
        node_small_id: NodeSmallId,
        reason: String,
        amount: u64,
        remaining_collateral: u64,
        reputation: u16,
    }
    /// A node committed an enclave key for the current rotation.
    NodePublicKeyCommittmentEvent {
        epoch: u64,
        key_rotation_counter: u64,
        node_id: NodeSmallId,
        device_type: u16,
        public_key: Vec<u8>,
    }
    /// A task was created.
    TaskRegisteredEvent { task_id: ObjectId, task_small_id: TaskSmallId, }
    /// A task was deprecated: no new subscriptions or stacks.
    TaskDeprecationEvent { task_id: ObjectId, task_small_id: TaskSmallId, epoch: u64, }
    /// A deprecated task was removed.
    TaskRemoveEvent { task_id: ObjectId, task_small_id: TaskSmallId, removed_at_epoch: u64, }
    /// A user bought a stack and a node was selected for it.
    StackCreatedEvent {
        stack_id: ObjectId,
        small_id: StackSmallId,
        selected_node: NodeSmallId,
        num_compute_units: u64,
        price: u64,
        owner: Address,
        task_small_id: TaskSmallId,
    }
    /// An unsettled stack expired; its owner got the escrow back.
    StackExpiredEvent { stack_small_id: StackSmallId, selected_node_id: NodeSmallId, refund_amount: u64, }
    /// The selected node tried to settle a stack.
    StackTrySettleEvent {
        stack_small_id: StackSmallId,
        selected_node_id: NodeSmallId,
        requested_attestation_nodes: Vec<NodeSmallId>,
        committed_stack_proof: [u8; 32],
        stack_merkle_leaf: [u8; 32],
        num_claimed_compute_units: u64,
    }
    /// A settlement ticket was verified (TEE proof, agreeing attesters, or an oracle).
    StackSettlementTicketEvent {
        stack_small_id: StackSmallId,
        selected_node_id: NodeSmallId,
        num_claimed_compute_units: u64,
        requested_attestation_nodes: Vec<NodeSmallId>,
        dispute_settled_at_epoch: u64,
        committed_stack_proof: [u8; 32],
    }
    /// A ticket was claimed: the node was paid and the owner refunded.
    StackSettlementTicketClaimedEvent {
        stack_small_id: StackSmallId,
        selected_node_id: NodeSmallId,
        attestation_nodes: Vec<NodeSmallId>,
        num_claimed_compute_units: u64,
        user_refund_amount: u64,
    }
    /// A requested attester submitted its commitment.
    NewStackSettlementAttestationEvent {
        stack_small_id: StackSmallId,
        attestation_node_id: NodeSmallId,
        committed_stack_proof: [u8; 32],
        stack_merkle_leaf: [u8; 32],
    }
    /// An attester disagreed with the selected node: the ticket is in dispute.
    StackAttestationDisputeEvent {
        stack_small_id: StackSmallId,
        attestation_commitment: [u8; 32],
        attestation_node_id: NodeSmallId,
        original_node_id: NodeSmallId,
        original_commitment: [u8; 32],
    }
    /// The stack's owner contested the claimed units: the ticket is in dispute.
    StackUnitsContestedEvent { stack_small_id: StackSmallId, claimed_units: u64, counted_units: u64, }
    /// An oracle resolved a dispute.
    StackDisputeResolvedEvent {
        stack_small_id: StackSmallId,
        oracle_node_id: NodeSmallId,
        correct_committed_stack_proof: [u8; 32],
        correct_units: u64,
        selected_node_was_right: bool,
        slashed_nodes: Vec<NodeSmallId>,
        slashed_amount: u64,
        oracle_reward: u64,
        honest_nodes: Vec<NodeSmallId>,
        honest_reward_each: u64,
        user_refund_amount: u64,
    }
    /// No oracle resolved a dispute in time; the owner got the escrow back.
    StackDisputeExpiredEvent { stack_small_id: StackSmallId, refund_amount: u64, }
    /// The admin started a new confidential-compute key rotation.
    NewKeyRotationEvent { epoch: u64, key_rotation_counter: u64, }
    /// TOMA moved between accounts.
    TomaTransferredEvent { sender: Address, recipient: Address, amount: u64, }
    /// A badge changed owner.
    BadgeTransferredEvent { badge_id: ObjectId, from: Address, to: Address, }
    /// The admin added a model.
    ModelAddedEvent { model_name: String, modality: u16, }
    /// The admin removed a model.
    ModelRemovedEvent { model_name: String, }
    /// The admin enabled or disabled a model.
    ModelStatusChangedEvent { model_name: String, enabled: bool, }
    /// The admin added an echelon to a model.
    EchelonAddedEvent {
        model_name: String,
        echelon_id: EchelonId,
        input_fee_per_token: u64,
        output_fee_per_token: u64,
        relative_performance: u64,
        settlement_timeout_ms: u64,
    }
    /// The admin changed an echelon's parameters.
    EchelonUpdatedEvent {
        model_name: String,
        echelon_id: EchelonId,
        input_fee_per_token: u64,
        output_fee_per_token: u64,
        relative_performance: u64,
        settlement_timeout_ms: u64,
    }
    /// The admin removed an echelon from a model.
    EchelonRemovedEvent { model_name: String, echelon_id: EchelonId, }
    /// The admin made a node an oracle of an echelon.
    OracleAddedEvent { model_name: String, echelon_id: EchelonId, node_small_id: NodeSmallId, }
    /// The admin removed an oracle from an echelon.
    OracleRemovedEvent { model_name: String, echelon_id: EchelonId, node_small_id: NodeSmallId, }
    /// The admin changed a protocol parameter.
    ParameterUpdatedEvent { parameter: String, old_value: u64, new_value: u64, }
    /// The admin enabled or disabled node registration.
    RegistrationStatusChangedEvent { enabled: bool, }
    /// The admin trusted an attestation root for a device type.
    AttestationRootAddedEvent { device_type: u16, public_key: Vec<u8>, }
    /// The admin removed the attestation root of a device type.
    AttestationRootRemovedEvent { device_type: u16, }
    /// The admin withdrew from a treasury (`fee` or `communal`).
    TreasuryWithdrawnEvent { treasury: String, amount: u64, recipient: Address, }
    /// The admin created another manager badge.
    ManagerBadgeCreatedEvent { badge_id: ObjectId, recipient: Address, }
    /// A node's owner published where the node's agent serves users (not in the seed; added for
    /// the node agent).
    NodeEndpointSetEvent { node_small_id: NodeSmallId, url: String, }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_declaration_order() {
        let e = Event::from(NodeSubscribedToTaskEvent {
            task_small_id: TaskSmallId(3),
            node_small_id: NodeSmallId(4),
            price_per_compute_unit: 5,
            max_num_compute_units: 6,
        });
        assert_eq!(e.name(), "NodeSubscribedToTaskEvent");
        let names: Vec<_> = e.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["task_small_id", "node_small_id", "price_per_compute_unit", "max_num_compute_units"]
        );
    }
}
