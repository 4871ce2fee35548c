//! What a run did, and how a failed run is reported.

use std::collections::BTreeMap;
use std::fmt;

use atoma_contract::call::{AdminOp, Call};
use atoma_types::Digest;

use crate::SimConfig;

/// The status column of a successful transaction.
pub const OK: &str = "ok";

/// Counts of one run. Everything here is a function of the seed and the configuration: two runs
/// of the same seed give equal reports (wall-clock time is measured outside).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// Blocks applied (the final height).
    pub blocks: u64,
    /// The final epoch.
    pub epochs: u64,
    /// Executed transactions by kind of call, then by status: [`OK`] or the contract error's name.
    pub transactions: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Transactions the ledger refused before execution, by what was wrong with them.
    pub rejected: BTreeMap<&'static str, u64>,
    /// Corrupted blocks `apply_block` refused, by what was wrong with them.
    pub refused_blocks: BTreeMap<&'static str, u64>,
    /// Applied blocks delivered again (at-least-once delivery), each a no-op.
    pub redelivered_blocks: u64,
    /// Events emitted, by name.
    pub events: BTreeMap<&'static str, u64>,
    /// Crash-and-restart cycles survived.
    pub crashes: u64,
    /// Transactions in a proposed block lost in a crash before it was applied.
    pub lost_transactions: u64,
    /// Individual invariant checks that passed.
    pub checks: u64,
    /// How honest attesters fared against the dispute window.
    pub punctuality: Punctuality,
    /// The final combined state digest (equal to a replay from genesis).
    pub state_digest: Digest,
    /// The final block's digest, which commits to every block of the run.
    pub tip_digest: Digest,
}

/// How honest attesters fared against the dispute window. Honest attesters answer within the
/// settlement timeout ([`crate::truth::attester_ready_ms`]); the auditor fails the run if one of
/// them is slashed on timeout although a block fell between its answer and its deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Punctuality {
    /// Attestations and attester disputes honest nodes got in.
    pub honest_attestations: u64,
    /// Of those, the ones in a block past the ticket's epoch rule: taken only because the
    /// window's floor in time still held it open (an honest attester slashed under the epoch
    /// rule alone).
    pub kept_open_by_floor: u64,
    /// Honest attesters slashed on timeout. Each is checked to have had no block at all between
    /// its answer and its deadline (the chain paused longer than the settlement timeout).
    pub honest_slashed_after_pause: u64,
}

impl Punctuality {
    fn add(&mut self, other: &Punctuality) {
        self.honest_attestations += other.honest_attestations;
        self.kept_open_by_floor += other.kept_open_by_floor;
        self.honest_slashed_after_pause += other.honest_slashed_after_pause;
    }
}

impl Report {
    /// Transactions executed (succeeded or failed in the contract).
    pub fn executed(&self) -> u64 {
        self.transactions.values().flat_map(BTreeMap::values).sum()
    }

    /// Transactions the contract applied.
    pub fn succeeded(&self) -> u64 {
        self.transactions.values().filter_map(|s| s.get(OK)).sum()
    }

    /// Transactions refused before execution.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Corrupted blocks refused.
    pub fn refused_blocks_total(&self) -> u64 {
        self.refused_blocks.values().sum()
    }

    /// Executed transactions of `kind` with `status` ([`OK`] or an error name).
    pub fn count(&self, kind: &str, status: &str) -> u64 {
        self.transactions.get(kind).and_then(|s| s.get(status)).copied().unwrap_or(0)
    }

    /// Events named `name`.
    pub fn event(&self, name: &str) -> u64 {
        self.events.get(name).copied().unwrap_or(0)
    }

    /// Counts one executed transaction.
    pub(crate) fn count_transaction(&mut self, kind: &'static str, status: &'static str) {
        *self.transactions.entry(kind).or_default().entry(status).or_default() += 1;
    }

    /// Adds another run's counts to these (digests and seed stay).
    pub fn merge(&mut self, other: &Report) {
        self.blocks += other.blocks;
        self.epochs += other.epochs;
        for (kind, statuses) in &other.transactions {
            for (status, n) in statuses {
                *self.transactions.entry(kind).or_default().entry(status).or_default() += n;
            }
        }
        add(&mut self.rejected, &other.rejected);
        add(&mut self.refused_blocks, &other.refused_blocks);
        add(&mut self.events, &other.events);
        self.redelivered_blocks += other.redelivered_blocks;
        self.crashes += other.crashes;
        self.lost_transactions += other.lost_transactions;
        self.checks += other.checks;
        self.punctuality.add(&other.punctuality);
    }

    /// A table of transactions by kind and status, rejections, refused blocks and events.
    pub fn details(&self) -> String {
        let mut out = String::from("transactions by kind and status\n");
        for (kind, statuses) in &self.transactions {
            let cells: Vec<String> = statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
            out += &format!("  {kind:<40} {}\n", cells.join(", "));
        }
        out += "refused before execution\n";
        for (kind, n) in &self.rejected {
            out += &format!("  {kind:<40} {n}\n");
        }
        out += "corrupted blocks refused\n";
        for (kind, n) in &self.refused_blocks {
            out += &format!("  {kind:<40} {n}\n");
        }
        out += "events\n";
        for (name, n) in &self.events {
            out += &format!("  {name:<40} {n}\n");
        }
        out
    }
}

fn add(into: &mut BTreeMap<&'static str, u64>, from: &BTreeMap<&'static str, u64>) {
    for (key, n) in from {
        *into.entry(key).or_default() += n;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} blocks, {} epochs, {} executed ({} ok), {} refused, {} bad blocks, {} crashes, {} checks, state {}",
            self.seed,
            self.blocks,
            self.epochs,
            self.executed(),
            self.succeeded(),
            self.rejected_total(),
            self.refused_blocks_total(),
            self.crashes,
            self.checks,
            self.state_digest
        )
    }
}

/// A run that broke an invariant (or could not run), with what it takes to reproduce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The seed of the failed run.
    pub seed: u64,
    /// Its configuration.
    pub config: SimConfig,
    /// The ledger's height when the failure was found.
    pub height: u64,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// The command that runs exactly this seed again.
    pub fn command(&self) -> String {
        reproduce_command(self.seed, &self.config)
    }
}

/// The command that reruns `seed` with `config`.
pub fn reproduce_command(seed: u64, config: &SimConfig) -> String {
    format!(
        "cargo run --release -p atoma-sim -- --seeds 1 --start {seed} --txs {} --crashes {}",
        config.transactions, config.crashes
    )
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} failed at height {}: {}\nreproduce with: {}",
            self.seed,
            self.height,
            self.message,
            self.command()
        )
    }
}

impl std::error::Error for Failure {}

/// The name a report counts a call under: the entry function, `Admin::<op>` for admin calls.
pub fn call_kind(call: &Call) -> &'static str {
    match call {
        Call::TransferToma { .. } => "TransferToma",
        Call::TransferBadge { .. } => "TransferBadge",
        Call::RegisterNode { .. } => "RegisterNode",
        Call::AddNodeCollateral { .. } => "AddNodeCollateral",
        Call::SubscribeNodeToTask { .. } => "SubscribeNodeToTask",
        Call::UpdateNodeSubscription { .. } => "UpdateNodeSubscription",
        Call::UnsubscribeNodeFromTask { .. } => "UnsubscribeNodeFromTask",
        Call::AddNodeToModel { .. } => "AddNodeToModel",
        Call::RemoveNodeFromModel { .. } => "RemoveNodeFromModel",
        Call::SetNodeOptimizations { .. } => "SetNodeOptimizations",
        Call::PermanentlyDisableNode { .. } => "PermanentlyDisableNode",
        Call::DestroyDisabledNode { .. } => "DestroyDisabledNode",
        Call::WithdrawFees { .. } => "WithdrawFees",
        Call::CreateTask { .. } => "CreateTask",
        Call::DeprecateTask { .. } => "DeprecateTask",
        Call::RemoveDeprecatedTask { .. } => "RemoveDeprecatedTask",
        Call::AcquireNewStack { .. } => "AcquireNewStack",
        Call::ReclaimExpiredStack { .. } => "ReclaimExpiredStack",
        Call::TrySettleStack { .. } => "TrySettleStack",
        Call::SubmitStackSettlementAttestation { .. } => "SubmitStackSettlementAttestation",
        Call::StartAttestationDispute { .. } => "StartAttestationDispute",
        Call::ContestClaimedUnits { .. } => "ContestClaimedUnits",
        Call::ResolveStackDispute { .. } => "ResolveStackDispute",
        Call::ClaimFunds { .. } => "ClaimFunds",
        Call::ExpireDispute { .. } => "ExpireDispute",
        Call::CommitNodePublicKey { .. } => "CommitNodePublicKey",
        Call::Admin { op, .. } => admin_kind(op),
        Call::SetNodeEndpoint { .. } => "SetNodeEndpoint",
    }
}

fn admin_kind(op: &AdminOp) -> &'static str {
    match op {
        AdminOp::AddModel { .. } => "Admin::AddModel",
        AdminOp::RemoveModel { .. } => "Admin::RemoveModel",
        AdminOp::DisableModel { .. } => "Admin::DisableModel",
        AdminOp::EnableModel { .. } => "Admin::EnableModel",
        AdminOp::AddModelEchelon { .. } => "Admin::AddModelEchelon",
        AdminOp::UpdateModelEchelon { .. } => "Admin::UpdateModelEchelon",
        AdminOp::RemoveModelEchelon { .. } => "Admin::RemoveModelEchelon",
        AdminOp::AddModelEchelonOracleNode { .. } => "Admin::AddModelEchelonOracleNode",
        AdminOp::RemoveModelEchelonOracleNode { .. } => "Admin::RemoveModelEchelonOracleNode",
        AdminOp::SetParameter { .. } => "Admin::SetParameter",
        AdminOp::DisableRegistration => "Admin::DisableRegistration",
        AdminOp::EnableRegistration => "Admin::EnableRegistration",
        AdminOp::PermanentlyDisableNode { .. } => "Admin::PermanentlyDisableNode",
        AdminOp::DeprecateTask { .. } => "Admin::DeprecateTask",
        AdminOp::RemoveDeprecatedTask { .. } => "Admin::RemoveDeprecatedTask",
        AdminOp::NewNetworkKeyRotation => "Admin::NewNetworkKeyRotation",
        AdminOp::AddAttestationRoot { .. } => "Admin::AddAttestationRoot",
        AdminOp::RemoveAttestationRoot { .. } => "Admin::RemoveAttestationRoot",
        AdminOp::WithdrawFeeTreasury { .. } => "Admin::WithdrawFeeTreasury",
        AdminOp::WithdrawCommunalTreasury { .. } => "Admin::WithdrawCommunalTreasury",
        AdminOp::CreateManagerBadge { .. } => "Admin::CreateManagerBadge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_its_seed_and_the_command_to_reproduce_it() {
        let failure = Failure { seed: 42, config: SimConfig::default(), height: 7, message: "boom".into() };
        let text = failure.to_string();
        assert!(text.contains("seed 42"), "{text}");
        assert!(text.contains("--start 42"), "{text}");
        assert!(text.contains(&format!("--txs {}", SimConfig::default().transactions)), "{text}");
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = Report::default();
        a.count_transaction("ClaimFunds", OK);
        a.count_transaction("ClaimFunds", "EStackInDispute");
        let mut b = a.clone();
        b.crashes = 2;
        b.merge(&a);
        assert_eq!((b.executed(), b.succeeded(), b.crashes), (4, 2, 2));
        assert_eq!(b.count("ClaimFunds", "EStackInDispute"), 2);
    }
}
