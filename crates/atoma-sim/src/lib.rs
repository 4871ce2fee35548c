//! A seeded simulator of the whole Atoma ledger: many actors, honest and not, driving a real
//! [`atoma_ledger::Ledger`] on redb through crashes and restarts, with invariants checked after
//! every transaction and every block. Modelled on TigerBeetle's VOPR and Commonware's
//! deterministic runtime: **one `u64` seed decides everything**, so a failing seed is a complete
//! bug report.
//!
//! # The model
//! - **Determinism.** A ChaCha20 stream seeded by the seed ([`rng`]) draws the actors' keys, the
//!   validator's key, the genesis (epoch length, start time, some protocol delays), who acts in
//!   each block and what they send, block times, injected faults and crash points. There is no
//!   wall clock, no thread, no network and no OS randomness: the same seed gives the same blocks
//!   and the same final state digest ([`Report::tip_digest`], [`Report::state_digest`]).
//! - **A validator without a network.** Each block, actors read the state after the last block
//!   and plan their calls ([`plan`]); the simulator signs them with each sender's next nonce and
//!   submits them through the validator's own admission path (decode, verify, the
//!   [`atoma_ledger::Sequencer`]'s nonce and mempool checks). The sequencer proposes the block at
//!   a virtual time that advances by a drawn amount per block; epochs advance by the ledger's
//!   rule (time past the epoch's end), and now and then by a forced advance, as a local network's
//!   `advance_epoch` does. The block is applied to redb in a temp dir, half the time with
//!   [`atoma_ledger::Ledger::apply_verified`] (the producer's path: verified once, at admission)
//!   and half the time with [`atoma_ledger::Ledger::apply_block`] (a block from elsewhere,
//!   verified again).
//! - **Actors** ([`actors::Role`]): the admin (setup, parameter changes — valid, and invalid ones
//!   that must be refused — TEE key rotations, task deprecations, registration toggles, node
//!   disabling, treasury withdrawals); honest nodes (register, join models, commit enclave keys,
//!   subscribe, settle with honest commitments from
//!   [`atoma_contract::commitment::settlement_commitment`], attest honestly and dispute lies,
//!   claim, withdraw, sometimes retire and re-register); lazy nodes that never settle (their
//!   stacks expire and owners reclaim them); lying nodes (forged proofs, overclaimed units, wrong
//!   enclave signatures, forged attestations); no-show attesters; oracles that resolve disputes by
//!   the ground truth, late or never for one dispute in four (which then expires); users who buy
//!   stacks, contest units rightly and wrongly, reclaim expired stacks, expire abandoned disputes
//!   and move TOMA and badges; a task owner who keeps every kind of task alive; and an adversary.
//! - **Ground truth** ([`truth`]): what each stack's node really served and the units its owner
//!   counted derive from the seed and the stack's id, so honest parties agree and the oracle can
//!   judge.
//! - **Faults** ([`faults`]): garbage bytes, truncated and padded encodings, flipped signature
//!   bits, foreign keys, unknown signature schemes, wrong chain ids, used and future nonces,
//!   replays, duplicates and oversized transactions, each of which must be refused with its
//!   named ledger error and change nothing; corrupted blocks (wrong parent, skipped height, time
//!   going back, skipped or stuck epochs, bad signatures inside, mismatched bodies, a different
//!   block at an applied height, too many transactions) that `apply_block` must refuse whole;
//!   and redelivery of applied blocks, which must be a no-op. (A block whose transaction's nonce
//!   does not follow applies and skips that transaction; `atoma-ledger`'s ordering tests check
//!   it.)
//! - **Crashes.** At points drawn from the seed the ledger is dropped, sometimes after the
//!   sequencer proposed a block that was never applied (the block and the mempool are lost),
//!   then reopened from its directory with another snapshot interval. It must come back at the
//!   last committed block with the same state digest, the same nonces, a replay from genesis
//!   must agree, and redelivering the last block must be a no-op. Actors then carry on from the
//!   recovered state.
//!
//! # The checks ([`checks`])
//! After every transaction, in a shadow replica of the contract fed the same transactions and
//! contexts: the ledger's status and events equal the shadow's; supply is conserved (SPEC §7.4);
//! a failed transaction left no events, moved no money and (sampled) left the state digest
//! unchanged; refunds and timeout slashes equal the formulas of SPEC §7 and §9, computed from the
//! state before the call and independently of the contract's `money` module; honest operators
//! never lose a dispute and are paid for exactly the units they served; a purchase selected an
//! enabled node with collateral at its own price within the buyer's cap; attesters are distinct, never the selected node, enabled and collateralized; small
//! ids are fresh; no stack is paid out twice; calls with a certain outcome (an invalid parameter,
//! a call on another's object) got it. After every block: the epoch rule; the tip; every
//! sender's nonce advanced by exactly its executed transactions (in memory and on disk); a stored
//! transaction reads back as executed; supply; every open stack's escrow is exactly what SPEC §7.1
//! charges for its terms and covers what its ticket can pay; open-work counts; the sampling index holds exactly
//! the eligible subscribers, never a disabled or zero-collateral node; and, every few blocks,
//! the ledger's contract state equals the shadow's. At every restart and at the end: the state
//! digest equals [`atoma_ledger::Ledger::replay_from_genesis`].
//!
//! Run many seeds with the `atoma-sim` binary; a failure prints its seed and the command that
//! reproduces it ([`Failure::command`]).

#![deny(missing_docs)]

pub mod actors;
pub mod checks;
pub mod economics;
pub mod faults;
pub mod plan;
pub mod report;
pub mod rng;
pub mod truth;

mod sim;

pub use report::{Failure, Report};

/// How long one run goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Transactions to submit, valid and invalid together, before the run ends.
    pub transactions: u64,
    /// Crash-and-restart cycles, at points drawn from the seed between 20 % and 80 % of the run.
    pub crashes: u32,
    /// In how many of a thousand executed transactions the shadow's whole state digest is
    /// compared before and after (it must not change when the call fails). Hashing the state
    /// costs time linear in its size.
    pub failed_digest_permille: u64,
}

impl Default for SimConfig {
    /// 2,000 transactions, 2 crashes, a digest comparison for one transaction in ten.
    fn default() -> Self {
        SimConfig { transactions: 2_000, crashes: 2, failed_digest_permille: 100 }
    }
}

/// Runs the simulation of `seed`.
///
/// # Errors
/// The first broken invariant (or a ledger that could not be opened), with the seed and the
/// command that reproduces the run.
pub fn run(seed: u64, config: &SimConfig) -> Result<Report, Failure> {
    sim::Simulation::start(seed, config)?.run()
}
