//! The chain that hosts the Atoma contract (SPEC §12): signed transactions, blocks, epochs,
//! per-transaction randomness, durable storage, an event log with cursors, and a single-sequencer
//! local network. No networking: the RPC server and the CLI are built on [`ChainHandle`].
//!
//! # Ordering apart from application
//! Two components meet at one function, [`Ledger::apply_block`]:
//!
//! - **Ordering** decides which transactions go into the next block, its timestamp, epoch and
//!   random seed. Today that is the [`Sequencer`] — one validator with a bounded mempool — driven
//!   by a producer thread in [`chain`]. A later issue replaces it with Commonware Simplex
//!   consensus, whose marshal layer delivers finalized blocks in height order, *at least once*.
//! - **Application** ([`Ledger`]) validates a block against the tip (height, parent, time, epoch
//!   rule, signatures, nonces), executes it in the contract, writes it and everything it produced
//!   in one redb commit, and publishes its events. Re-applying an applied height is a no-op, so an
//!   at-least-once delivery is safe.
//!
//! Execution ([`execution`]), storage ([`store`]) and queries never look at who ordered a block;
//! swapping the orderer changes only where blocks come from. Block validation already re-checks
//! every transaction, so a block from an untrusted proposer cannot break the state — it is refused
//! whole. What the ledger takes on trust from the orderer is the timestamp (within the rules:
//! never backwards) and the random seed (see [`block`]).
//!
//! # Map
//! - `atoma-types`: transactions, signatures, keys, digests, blocks, event records, outcomes and
//!   the named refusals — the wire types this crate stores and orders.
//! - [`state`]: the ledger's own state (tip, epoch clock, nonces) and the combined digest.
//! - [`execution`]: block validation and execution, pure and synchronous.
//! - [`store`]: the redb tables; one commit per block; snapshots; index checks and rebuilds; the
//!   checksum on every stored record. `dir_lock`: one process per store.
//! - [`ledger`]: apply, recover, read, subscribe.
//! - [`sequencer`]: the single validator's mempool and block builder.
//! - [`chain`]: [`Chain::open`], the producer thread and the [`ChainHandle`] for RPC and CLI.
//! - [`genesis`], [`keystore`]: local network setup and the shared keystore file.
//! - [`subscription`], [`metrics`], [`error`] (refusals apart from internal failures).
//!
//! `docs/LEDGER.md` explains the same in prose: nonces, blocks, epochs, randomness, storage,
//! durability and recovery.

#![deny(missing_docs)]

mod admission;
pub mod chain;
pub mod error;
pub mod execution;
pub mod genesis;
pub mod keystore;
pub mod ledger;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod proposer;
pub mod sequencer;
pub mod state;
pub mod store;
pub mod subscription;

// The wire types this crate is built on, under the names its modules use.
use atoma_types::{batch, block, digest, events, tx};

mod codec;
mod dir_lock;

pub use chain::{Chain, ChainConfig, ChainHandle, ChainTask, PendingTransaction};
pub use error::{ChainError, Damage, LedgerError};
pub use execution::{BlockEffects, VerifiedBlock};
pub use genesis::{GenesisConfig, LocalKeys, LocalNetworkOptions};
pub use keystore::{Keystore, KeystoreEntry};
pub use ledger::{ApplyOutcome, DryRunOutcome, Ledger, LedgerOptions, Tip, TransactionResponse};
pub use mempool::Mempool;
pub use metrics::MetricsSnapshot;
pub use node::{ChainInfo, LocalNetwork, Node, Orderer};
pub use proposer::LocalProposer;
pub use sequencer::Sequencer;
pub use subscription::{EventSubscription, SubscriptionError};
