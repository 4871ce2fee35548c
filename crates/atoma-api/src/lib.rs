//! The JSON edge of the Atoma contract: what the RPC serves and the CLI prints.
//!
//! The contract (`atoma-contract`) is a pure state machine and knows no JSON: its events list
//! their fields as neutral [`atoma_contract::EventValue`]s and its state is plain Rust data. Wire
//! shapes are a decision of the outside surface (SPEC §10, §13), they change for different
//! reasons than protocol rules do, and one crate owning them means the RPC server, the client
//! and the CLI cannot drift apart. So this crate turns contract and chain types into JSON, and
//! nothing else does.
//!
//! - [`event_json`] and [`EventEnvelope`]: events in Sui's `parsedJson` convention and envelope;
//!   [`EventId`] is the event cursor. Golden files under `tests/golden/events/` pin every event.
//! - Views ([`NodeView`], [`TaskView`], [`StackView`], [`TicketView`], [`StackLookup`],
//!   [`ModelView`], [`BadgeView`], [`DbView`], [`ConfigView`], [`AuditView`]): records of the
//!   state for RPC responses, built with `find(db, key)` or `new(…)`. They serialize to the JSON
//!   served and deserialize from it, so the client reads back the same types.
//! - [`error_json`] and [`ErrorView`]: contract errors by name, number and message.
//! - [`encode_digest`] / [`decode_digest`]: transaction digests in base58.
//! - [`rpc`]: what the JSON-RPC server and its clients share — the shapes of transaction results,
//!   blocks, chain info, balances, nonces and pages; event filters as JSON; the subscription's
//!   method names, the body size limits and the error codes.
//!
//! # Conventions
//! Values follow SPEC §10 everywhere, in events and views alike: a `u64` (or the audit's `u128`)
//! is a decimal string, `"1500"`; a `u8` or `u16` (reputation, optimization bits, and the wire
//! numbers of roles, security levels, modalities and device types) is a number; bytes are an
//! array of numbers; addresses and object ids are `0x` + 64 lowercase hex digits; node, task and
//! stack small ids are `{"inner": "7"}`; echelon ids are `{"id": "1"}`; an absent option is
//! `null`. Event fields are snake_case in declaration order, as the events define them. View keys
//! are camelCase as in Sui's RPC responses, except [`ConfigView`], whose keys are the SPEC §4
//! parameter names. When reading JSON back, a `u64` is accepted as a string or a number.

mod digest;
mod error;
mod event;
pub mod rpc;
mod summary;
mod view;
mod wire;

pub use digest::{DigestError, decode_digest, encode_digest};
pub use error::{ErrorView, error_json};
pub use event::{EventEnvelope, EventId, TRANSACTION_MODULE, event_json, event_type, event_value_json};
pub use summary::{AttestationRootView, AuditView, ConfigView, DbView};
pub use view::{
    AttestationView, BadgeKindView, BadgeView, ClosedStackView, EchelonView, ModelView, NodeView,
    ServedModelView, StackLookup, StackTermsView, StackView, SubscriptionView, TaskView, TeeKeyView,
    TicketStatusView, TicketView,
};
