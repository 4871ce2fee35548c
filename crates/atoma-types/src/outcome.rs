//! What executing a transaction gave: its status and the events it emitted.

use atoma_contract::{Address, ContractError};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::events::EventRecord;

/// What the contract answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TxStatus {
    /// The call was applied and emitted its events.
    Success,
    /// The contract refused the call: nothing changed except the sender's nonce.
    Failure(ContractError),
}

impl TxStatus {
    /// Whether the call was applied.
    pub fn is_success(&self) -> bool {
        matches!(self, TxStatus::Success)
    }

    /// The contract's error, if it refused the call.
    pub fn error(&self) -> Option<ContractError> {
        match self {
            TxStatus::Success => None,
            TxStatus::Failure(e) => Some(*e),
        }
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
