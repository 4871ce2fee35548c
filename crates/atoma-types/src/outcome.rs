//! What a transaction in an applied block came to: its status and the events it emitted.

use atoma_contract::{Address, ContractError};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::LedgerError;
use crate::events::EventRecord;

/// What became of a transaction in an applied block.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TxStatus {
    /// The call was applied and emitted its events.
    Success,
    /// The contract refused the call: nothing changed except the sender's nonce.
    Failure(ContractError),
    /// The transaction was ordered into a block but not executed: a check of the ledger's own
    /// that needs the state failed there. Nothing changed, not even the sender's nonce. A
    /// single validator never orders such a transaction; a consensus leader might, and a
    /// finalized block must apply whatever it holds (docs/LEDGER.md §3).
    Skipped(SkipReason),
}

/// Why a transaction in an applied block was skipped. Named and numbered like the ledger's
/// refusals ([`LedgerError`]) it stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SkipReason {
    /// Its nonce was already used when its block was applied (a transaction ordered twice, or
    /// one whose nonce another took first).
    NonceUsed,
    /// Its nonce was ahead of the sender's next one when its block was applied.
    NonceFuture,
}

impl SkipReason {
    /// Every reason.
    pub const ALL: [SkipReason; 2] = [SkipReason::NonceUsed, SkipReason::NonceFuture];

    /// The refusal's stable name: `ENonceUsed`, `ENonceFuture`.
    pub fn name(self) -> &'static str {
        self.refusal().name()
    }

    /// The refusal's number (`312013002`, `312013003`).
    pub fn code(self) -> u64 {
        self.refusal().code()
    }

    /// A sentence for humans.
    pub fn message(self) -> &'static str {
        match self {
            SkipReason::NonceUsed => "the nonce was already used when its block was applied; nothing changed",
            SkipReason::NonceFuture => {
                "the nonce was ahead of the sender's next one when its block was applied; nothing changed"
            }
        }
    }

    /// The reason with this number, if any.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    fn refusal(self) -> LedgerError {
        match self {
            SkipReason::NonceUsed => LedgerError::ENonceUsed { expected: 0, got: 0 },
            SkipReason::NonceFuture => LedgerError::ENonceFuture { expected: 0, got: 0 },
        }
    }
}

impl TxStatus {
    /// Whether the call was applied.
    pub fn is_success(&self) -> bool {
        matches!(self, TxStatus::Success)
    }

    /// The contract's error, if it refused the call.
    pub fn error(&self) -> Option<ContractError> {
        match self {
            TxStatus::Failure(e) => Some(*e),
            TxStatus::Success | TxStatus::Skipped(_) => None,
        }
    }

    /// Whether the transaction was executed (successfully or not): it then used its nonce.
    pub fn was_executed(&self) -> bool {
        !matches!(self, TxStatus::Skipped(_))
    }

    /// The number of the error behind a failure — the contract's, or the ledger's for a skipped
    /// transaction — as stored; `None` on success.
    pub fn error_code(&self) -> Option<u64> {
        match self {
            TxStatus::Success => None,
            TxStatus::Failure(e) => Some(e.code()),
            TxStatus::Skipped(reason) => Some(reason.code()),
        }
    }

    /// The status a stored error number stands for ([`TxStatus::error_code`]); `None` for a
    /// number that is neither a contract error's nor a skip reason's.
    pub fn from_error_code(code: Option<u64>) -> Option<Self> {
        let Some(code) = code else { return Some(TxStatus::Success) };
        ContractError::ALL
            .iter()
            .find(|e| e.code() == code)
            .map(|e| TxStatus::Failure(*e))
            .or_else(|| SkipReason::from_code(code).map(TxStatus::Skipped))
    }
}

/// The effects of an executed transaction: its status and the events it emitted. Objects the
/// call created (badges, stacks, tasks) are named by its events; the ledger records no separate
/// object list.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxOutcome {
    /// The transaction digest.
    pub digest: Digest,
    /// Who signed it.
    pub sender: Address,
    /// The block that holds the transaction.
    pub height: u64,
    /// The transaction's index in its block.
    pub index: u64,
    /// The block's epoch.
    pub epoch: u64,
    /// The block's timestamp.
    pub timestamp_ms: u64,
    /// What the contract answered.
    pub status: TxStatus,
    /// Empty when the call failed.
    pub events: Vec<EventRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_stored_number() {
        let statuses = [TxStatus::Success]
            .into_iter()
            .chain(ContractError::ALL.iter().map(|e| TxStatus::Failure(*e)))
            .chain(SkipReason::ALL.map(TxStatus::Skipped));
        for status in statuses {
            assert_eq!(TxStatus::from_error_code(status.error_code()), Some(status));
        }
        assert_eq!(TxStatus::from_error_code(Some(7)), None);
        assert_eq!(SkipReason::NonceUsed.name(), "ENonceUsed");
        assert_eq!(SkipReason::NonceFuture.code(), 312_013_003);
        assert!(!TxStatus::Skipped(SkipReason::NonceUsed).was_executed());
    }
}
