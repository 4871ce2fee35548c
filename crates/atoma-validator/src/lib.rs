//! A validator of the Atoma chain's validator set (docs/VALIDATORS.md).
//!
//! Several validators order blocks with Commonware's Simplex BFT consensus; each block's
//! randomness comes from the engine's threshold BLS VRF, taken from a view later than the
//! block's own so that no validator, and no coalition below the threshold, can steer it.
//! Finalized blocks flow from marshal to the [`executor`], which derives the ledger block and
//! applies it with `atoma_ledger::Ledger::apply_verified` before acknowledging it. Clients submit to
//! any validator's RPC through its [`orderer::ValidatorOrderer`]; transactions are gossiped so the
//! next leaders include them.
//!
//! Everything that knows Commonware is in this crate: the rest of the workspace sees a
//! `Ledger`, a `Node` and an `Orderer`.
//!
//! - [`block`]: the consensus block marshal carries.
//! - [`committee`]: the validator set, its keys, and the files a validator runs from.
//! - [`app`]: proposing and verifying blocks; [`executor`]: applying finalized ones.
//! - [`pool`]: transactions waiting for a block; [`gossip`]: between validators.
//! - [`seeds`]: the VRF seeds the engine reports, by view.
//! - [`orderer`]: what the RPC submits to; [`divergence`]: comparing state digests.
//! - [`shared`]: what the parts share; [`engine`]: the actors, wired.
//! - [`simulation`]: a whole set in one deterministic process, for tests.
//! - [`testnet`]: a local testnet's genesis; [`process`]: one validator as a process.

#![deny(missing_docs)]

pub mod app;
pub mod block;
pub mod committee;
pub mod divergence;
pub mod engine;
pub mod executor;
pub mod gossip;
pub mod orderer;
pub mod pool;
pub mod process;
pub mod seeds;
pub mod shared;
pub mod simulation;
pub mod status;
pub mod testnet;

/// The digest of consensus blocks.
pub type Digest = commonware_cryptography::sha256::Digest;
/// A validator's identity: its ed25519 public key.
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;
/// The BLS12-381 variant: 48-byte signatures, 96-byte public keys.
pub type V = commonware_cryptography::bls12381::primitives::variant::MinSig;
/// Simplex's signing scheme: threshold BLS with a VRF seed per view.
pub type Scheme = commonware_consensus::simplex::scheme::bls12381_threshold::vrf::Scheme<PublicKey, V>;
/// The consensus context handed to propose and verify.
pub type Context = commonware_consensus::simplex::types::Context<Digest, PublicKey>;
