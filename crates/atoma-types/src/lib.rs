//! The Atoma chain's wire types: what a client, a node agent or another validator needs to
//! build, sign, check and read transactions and blocks — and nothing that stores or serves them.
//! No storage engine and no async runtime are in this crate's dependency tree; the ledger
//! (`atoma-ledger`) and the RPC client (`atoma-client`) build on it.
//!
//! - [`tx`]: [`Transaction`], [`SignedTransaction`], [`VerifiedTransaction`], [`Keypair`]; the
//!   signing message and the 97-byte Sui-style signature (docs/LEDGER.md §1).
//! - [`signature`]: the ed25519 rule, decided alike one at a time and in batches; [`batch`]:
//!   verifying many transactions at once on every core.
//! - [`digest`]: [`Digest`], shown in base58.
//! - [`block`]: [`BlockHeader`], [`Block`], block and transaction seeds and the one derivation of
//!   a transaction's [`atoma_contract::TxContext`] ([`block::tx_context`]).
//! - [`events`]: [`EventRecord`], [`EventId`] (the cursor), [`EventFilter`], [`Page`].
//! - [`outcome`]: [`TxOutcome`], [`TxStatus`].
//! - [`error`]: [`LedgerError`], the ledger's named, numbered refusals (`312013000 + n`).
//! - [`codec`]: BCS encoding and a faster serde form for byte strings.

#![deny(missing_docs)]

pub mod batch;
pub mod block;
pub mod codec;
pub mod digest;
pub mod error;
pub mod events;
pub mod outcome;
pub mod signature;
pub mod tx;

pub use block::{Block, BlockHeader};
pub use digest::Digest;
pub use error::LedgerError;
pub use events::{EventFilter, EventId, EventRecord, Page};
pub use outcome::{SkipReason, TxOutcome, TxStatus};
pub use tx::{Keypair, SignedTransaction, Transaction, VerifiedTransaction};
