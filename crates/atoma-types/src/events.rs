//! The event log's records, filters and pages.
//!
//! Every event the contract emits is stored once, at a global position
//! `(height, tx_index, event_seq)` — the order in which it happened — and is named to the outside
//! by Sui's event id `(tx_digest, event_seq)`, which is also the cursor of a query (exclusive: a
//! page starts *after* the cursor's event).
//!
//! # Which events name a node, task or stack
//! An event is indexed under a node, task or stack small id when one of its fields
//! ([`Event::fields`]) holds a small id — alone, in a list, or in an option — and the field's name
//! says which kind it is: the first of `node`, `task`, `stack` that the field name contains, or, if
//! it contains none of them, the first that the event's name contains (so `StackCreatedEvent`'s
//! `small_id` is a stack, and its `selected_node` a node). `requested_attestation_nodes`,
//! `slashed_nodes` and friends index every node they list. A small id whose kind neither name
//! tells would not be indexed; no event has one today, and the lifecycle test checks every event
//! it sees with [`small_id_kind`]. [`object_refs`] implements the rule.

use atoma_contract::event::EventValue;
use atoma_contract::{Address, Event, NodeSmallId, StackSmallId, TaskSmallId};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The page size used when a query names none.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// The largest page a query may ask for; larger limits are lowered to it.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Sui's event id: the transaction that emitted the event and the event's index within it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct EventId {
    /// The transaction that emitted the event.
    pub tx_digest: Digest,
    /// The event's index among the transaction's events, from 0.
    pub event_seq: u64,
}

/// One event as stored in the log.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EventRecord {
    /// The event's id, which is also its cursor.
    pub id: EventId,
    /// The block that holds the transaction.
    pub height: u64,
    /// The transaction's index in its block.
    pub tx_index: u64,
    /// The transaction's sender.
    pub sender: Address,
    /// The block's timestamp.
    pub timestamp_ms: u64,
    /// The event itself.
    pub event: Event,
}

impl EventRecord {
    /// The global position: the order in which events happened.
    pub fn position(&self) -> (u64, u64, u64) {
        (self.height, self.tx_index, self.id.event_seq)
    }
}

/// The three kinds of small id an event can be indexed by.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A `NodeSmallId`.
    Node,
    /// A `TaskSmallId`.
    Task,
    /// A `StackSmallId`.
    Stack,
}

impl ObjectKind {
    /// The kind a name points at: the first of `node`, `task`, `stack` it contains.
    fn in_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        [("node", ObjectKind::Node), ("task", ObjectKind::Task), ("stack", ObjectKind::Stack)]
            .into_iter()
            .filter_map(|(word, kind)| lower.find(word).map(|at| (at, kind)))
            .min()
            .map(|(_, kind)| kind)
    }
}

/// Which events a query or a subscription wants.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum EventFilter {
    /// Every event.
    All,
    /// Events of one type, by name, such as `StackCreatedEvent`.
    EventType(String),
    /// Events of transactions sent by this address.
    Sender(Address),
    /// The events of one transaction.
    Transaction(Digest),
    /// Events that name this node (module docs).
    Node(NodeSmallId),
    /// Events that name this task.
    Task(TaskSmallId),
    /// Events that name this stack.
    Stack(StackSmallId),
}

impl EventFilter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &EventRecord) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::EventType(name) => record.event.name() == name,
            EventFilter::Sender(sender) => record.sender == *sender,
            EventFilter::Transaction(digest) => record.id.tx_digest == *digest,
            EventFilter::Node(id) => object_refs(&record.event).contains(&(ObjectKind::Node, id.0)),
            EventFilter::Task(id) => object_refs(&record.event).contains(&(ObjectKind::Task, id.0)),
            EventFilter::Stack(id) => object_refs(&record.event).contains(&(ObjectKind::Stack, id.0)),
        }
    }
}

/// The kind of small id a field holds, from the field's name or else the event's (module docs).
pub fn small_id_kind(event_name: &str, field_name: &str) -> Option<ObjectKind> {
    ObjectKind::in_name(field_name).or_else(|| ObjectKind::in_name(event_name))
}

/// The node, task and stack small ids an event names, sorted and without repeats (module docs).
pub fn object_refs(event: &Event) -> Vec<(ObjectKind, u64)> {
    let mut refs = Vec::new();
    for (field, value) in event.fields() {
        if let Some(kind) = small_id_kind(event.name(), field) {
            collect_small_ids(&value, kind, &mut refs);
        }
    }
    refs.sort_unstable();
    refs.dedup();
    refs
}

fn collect_small_ids(value: &EventValue, kind: ObjectKind, out: &mut Vec<(ObjectKind, u64)>) {
    match value {
        EventValue::SmallId(id) => out.push((kind, *id)),
        EventValue::List(items) => items.iter().for_each(|v| collect_small_ids(v, kind, out)),
        EventValue::Option(Some(inner)) => collect_small_ids(inner, kind, out),
        _ => {}
    }
}

/// One page of a query, in Sui's shape: `next_cursor` is the id of the last item (or the
/// request's cursor when the page is empty), and `has_next_page` says whether more items follow.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Page<T, C> {
    /// The items, in the requested order.
    pub data: Vec<T>,
    /// Where the next page starts (exclusive).
    pub next_cursor: Option<C>,
    /// Whether more items follow.
    pub has_next_page: bool,
}

/// The page size actually used for a requested limit.
pub fn effective_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE_LIMIT).clamp(1, MAX_PAGE_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::ObjectId;
    use atoma_contract::event::{NodeRegisteredEvent, StackCreatedEvent, StackTrySettleEvent};

    #[test]
    fn small_ids_are_indexed_by_the_kind_their_names_say() {
        let created = Event::from(StackCreatedEvent {
            stack_id: ObjectId([0; 32]),
            small_id: StackSmallId(7),
            selected_node: NodeSmallId(3),
            num_compute_units: 1,
            price: 1,
            owner: Address([0; 32]),
            task_small_id: TaskSmallId(2),
        });
        assert_eq!(
            object_refs(&created),
            vec![(ObjectKind::Node, 3), (ObjectKind::Task, 2), (ObjectKind::Stack, 7)]
        );
        let settle = Event::from(StackTrySettleEvent {
            stack_small_id: StackSmallId(7),
            selected_node_id: NodeSmallId(3),
            requested_attestation_nodes: vec![NodeSmallId(4), NodeSmallId(3)],
            committed_stack_proof: [0; 32],
            stack_merkle_leaf: [0; 32],
            num_claimed_compute_units: 1,
        });
        assert_eq!(
            object_refs(&settle),
            vec![(ObjectKind::Node, 3), (ObjectKind::Node, 4), (ObjectKind::Stack, 7)]
        );
        let registered =
            Event::from(NodeRegisteredEvent { badge_id: ObjectId([0; 32]), node_small_id: NodeSmallId(1) });
        assert_eq!(object_refs(&registered), vec![(ObjectKind::Node, 1)]);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(effective_limit(None), DEFAULT_PAGE_LIMIT);
        assert_eq!(effective_limit(Some(0)), 1);
        assert_eq!(effective_limit(Some(usize::MAX)), MAX_PAGE_LIMIT);
    }
}
