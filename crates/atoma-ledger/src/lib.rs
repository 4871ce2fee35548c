//! The chain that hosts the Atoma contract (SPEC §12): blocks applied in order, epochs,
//! per-transaction randomness, durable storage, an event log with cursors, and the single
//! validator's local network. No networking: the RPC server serves a [`Node`] — this crate's
//! [`Ledger`] for reads and an [`Orderer`] for submissions — and the CLI runs a [`ChainHandle`].
//!
//! # Ordering apart from application
//! Two components meet at one function, [`Ledger::apply_block`]:
//!
//! - **Ordering** decides which transactions go into the next block, its timestamp, epoch and
//!   random seed. On a local network that is a [`Mempool`] and the [`LocalProposer`] (one
//!   validator's key, clock and epoch rule), driven by a producer thread in [`chain`]; a
//!   validator set puts Commonware Simplex consensus in its place, whose marshal layer delivers
//!   finalized blocks in height order, *at least once*.
//! - **Application** ([`Ledger`]) validates a block against the tip (height, parent, time, epoch
//!   rule, signatures), executes it in the contract — skipping a transaction whose nonce does not
//!   follow, never refusing the block for it — writes it and everything it produced in one redb
//!   commit, and publishes its events. Re-applying an applied height is a no-op, so an
//!   at-least-once delivery is safe.
//!
//! Execution ([`execution`]), storage ([`store`]) and queries never look at who ordered a block;
//! swapping the orderer changes only where blocks come from. Block validation re-checks every
//! transaction's signature, so a block from an untrusted proposer cannot break the state — it is
//! refused whole. What the ledger takes on trust from the orderer is the timestamp (within the
//! rules: never backwards) and the random seed (see `atoma_types::block`).
//!
//! # Map
//! - `atoma-types`: transactions, signatures, keys, digests, blocks, event records, outcomes and
//!   the named refusals — the wire types this crate stores and orders.
//! - [`state`]: the ledger's own state (tip, epoch clock, nonces) and the combined digest.
//! - [`execution`]: block validation and execution, pure and synchronous.
//! - [`store`]: the redb tables; one commit per block; snapshots; index checks and rebuilds; the
//!   checksum on every stored record. `dir_lock`: one process per store.
//! - [`ledger`]: apply, open, recover, read, dry runs, subscribe.
//! - [`node`]: [`Node`], the [`Orderer`] and [`LocalNetwork`] traits the RPC serves through.
//! - [`mempool`], [`proposer`]: the local network's ordering; [`sequencer`] bundles the two for
//!   code that orders blocks by hand.
//! - [`chain`]: [`Chain::open`], the producer thread and the [`ChainHandle`], the local
//!   network's orderer.
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
pub use node::{ChainInfo, ConsensusInfo, LocalNetwork, Node, Orderer};
pub use proposer::LocalProposer;
pub use sequencer::Sequencer;
pub use subscription::{EventSubscription, SubscriptionError};
