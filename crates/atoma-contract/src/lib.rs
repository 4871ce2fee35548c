//! The Atoma protocol as a pure, deterministic state machine.
//!
//! [`AtomaDb::execute`] takes a [`Call`] and a [`TxContext`] (sender, epoch, time, transaction
//! digest, random seed) and either applies the call and returns its [`Event`]s, or returns a
//! [`ContractError`] and changes nothing. There is no I/O, no clock, no OS randomness, no floating
//! point and no hash-ordered iteration here: the same state, call and context give the same
//! result on every machine. The ledger crate hosts this state machine; see ARCHITECTURE.md.

#![deny(clippy::float_arithmetic)]
#![deny(missing_docs)]

pub mod audit;
pub mod call;
pub mod commitment;
pub mod config;
pub mod enums;
pub mod error;
pub mod event;
pub mod exec;
pub mod hash;
pub mod ids;
pub mod money;
pub mod query;
pub mod sampling;
pub mod state;
pub mod table;
pub mod tee;

mod accounts;
mod admin;
mod disputes;
mod genesis;
mod nodes;
mod settlement;
mod stacks;
mod tasks;

pub use audit::Audit;
pub use call::{AdminOp, Call, EchelonParams, Parameter};
pub use config::Config;
pub use error::ContractError;
pub use event::{Event, EventValue};
pub use exec::TxContext;
pub use genesis::Genesis;
pub use ids::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TOMA, TaskSmallId};
pub use nodes::is_valid_endpoint;
pub use state::AtomaDb;
