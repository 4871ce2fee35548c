//! The ledger's named refusals: why a transaction was refused before execution, or why the chain
//! could not do what was asked — what a client may see.
//!
//! Every variant is safe to send anywhere: it names no file, no path and no local remedy. A node's
//! internal failures (its storage failing, damage found on disk, a poisoned lock) are typed errors
//! of the node (`atoma_ledger::ChainError`), with their causes; a client is told only their name
//! here ([`LedgerError::EStorage`], [`LedgerError::ECorruptStore`], …), and the node's operator
//! reads the detail in the node's log.
//!
//! These are **not contract errors** (SPEC §11, last sentence). A contract error means the
//! transaction was ordered and executed, consumed its nonce and changed nothing else; a ledger
//! error means the transaction never reached the contract (or the request never reached the
//! chain) and changed nothing at all. To keep the two apart on the wire, ledger errors are
//! numbered `312013000 + n` ([`LEDGER_ERROR_CODE_BASE`]), next to the contract's `312012000 + n`.
//! Names and numbers are stable; numbers are never reused.

/// The base that every ledger error number is added to. The contract's base is `312_012_000`.
pub const LEDGER_ERROR_CODE_BASE: u64 = 312_013_000;

/// Why the ledger refused a transaction or a request. Nothing changed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LedgerError {
    /// The signature is not 97 bytes, its flag is not `0x00` (ed25519), its public key is not
    /// the sender's, or it does not verify.
    #[error("EBadSignature: {0}")]
    EBadSignature(&'static str),
    /// The transaction names another chain (its `chain_id` is not this chain's genesis digest).
    #[error("EWrongChainId: the transaction is for another chain")]
    EWrongChainId,
    /// The nonce was already used (or is waiting in the mempool).
    #[error("ENonceUsed: nonce {got} is already used; the sender's next nonce is {expected}")]
    ENonceUsed {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce skips ahead of the sender's next nonce.
    #[error("ENonceFuture: nonce {got} is ahead; the sender's next nonce is {expected}")]
    ENonceFuture {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The bytes are not a canonical BCS encoding of a signed transaction.
    #[error("EMalformedTransaction: {0}")]
    EMalformedTransaction(String),
    /// The signed transaction is larger than [`crate::tx::MAX_TRANSACTION_SIZE`].
    #[error("ETransactionTooLarge: {size} bytes, the limit is {limit}")]
    ETransactionTooLarge {
        /// The transaction's size in bytes.
        size: usize,
        /// [`crate::tx::MAX_TRANSACTION_SIZE`].
        limit: usize,
    },
    /// The mempool is full: the chain is busy, try again later.
    #[error("EMempoolFull: the mempool is full; try again later")]
    EMempoolFull,
    /// Faucet and time controls exist only on a local network (SPEC §13).
    #[error("ENotLocalNetwork: only a local network offers this")]
    ENotLocalNetwork,
    /// The chain has shut down, or its block producer stopped.
    #[error("EChainStopped: the chain is not running")]
    EChainStopped,
    /// A block does not follow the chain's tip or one of its transactions is invalid.
    #[error("EInvalidBlock: {0}")]
    EInvalidBlock(String),
    /// An event cursor names a transaction this chain does not know.
    #[error("EInvalidCursor: the cursor names an unknown transaction")]
    EInvalidCursor,
    /// The node's storage failed (an I/O error, a full disk).
    #[error("EStorage: the node's storage failed; its operator's log says why")]
    EStorage,
    /// The node found its stored data damaged and will not serve it.
    #[error("ECorruptStore: the node found its stored data damaged; its operator's log says where")]
    ECorruptStore,
    /// A file of the node's data directory (keystore, directory) could not be read or written.
    #[error("EIo: a file of the node's data directory could not be read or written")]
    EIo,
    /// The node's configuration or keystore is not usable.
    #[error("EInvalidConfig: the node's configuration is not usable")]
    EInvalidConfig,
    /// Another process holds the data directory's lock: it has the chain store open. Two
    /// processes writing one store could destroy it, so the second one is refused.
    #[error("EDataDirInUse: another process is using the node's data directory")]
    EDataDirInUse,
    /// The node's state differs from what other validators who agree among themselves reached
    /// at the same height: it stopped rather than serve a wrong state.
    #[error("EStateDiverged: this validator's state differs from the other validators'; it stopped serving")]
    EStateDiverged,
}

impl LedgerError {
    /// The error's offset from [`LEDGER_ERROR_CODE_BASE`].
    pub fn offset(&self) -> u64 {
        match self {
            LedgerError::EBadSignature(_) => 0,
            LedgerError::EWrongChainId => 1,
            LedgerError::ENonceUsed { .. } => 2,
            LedgerError::ENonceFuture { .. } => 3,
            LedgerError::EMalformedTransaction(_) => 4,
            LedgerError::ETransactionTooLarge { .. } => 5,
            LedgerError::EMempoolFull => 6,
            LedgerError::ENotLocalNetwork => 7,
            LedgerError::EChainStopped => 8,
            LedgerError::EInvalidBlock(_) => 9,
            LedgerError::EInvalidCursor => 10,
            LedgerError::EStorage => 11,
            LedgerError::ECorruptStore => 12,
            LedgerError::EIo => 13,
            LedgerError::EInvalidConfig => 14,
            LedgerError::EDataDirInUse => 15,
            LedgerError::EStateDiverged => 16,
        }
    }

    /// The error's stable name, such as `ENonceUsed`.
    pub fn name(&self) -> &'static str {
        match self {
            LedgerError::EBadSignature(_) => "EBadSignature",
            LedgerError::EWrongChainId => "EWrongChainId",
            LedgerError::ENonceUsed { .. } => "ENonceUsed",
            LedgerError::ENonceFuture { .. } => "ENonceFuture",
            LedgerError::EMalformedTransaction(_) => "EMalformedTransaction",
            LedgerError::ETransactionTooLarge { .. } => "ETransactionTooLarge",
            LedgerError::EMempoolFull => "EMempoolFull",
            LedgerError::ENotLocalNetwork => "ENotLocalNetwork",
            LedgerError::EChainStopped => "EChainStopped",
            LedgerError::EInvalidBlock(_) => "EInvalidBlock",
            LedgerError::EInvalidCursor => "EInvalidCursor",
            LedgerError::EStorage => "EStorage",
            LedgerError::ECorruptStore => "ECorruptStore",
            LedgerError::EIo => "EIo",
            LedgerError::EInvalidConfig => "EInvalidConfig",
            LedgerError::EDataDirInUse => "EDataDirInUse",
            LedgerError::EStateDiverged => "EStateDiverged",
        }
    }

    /// The full error number: `312013000 + offset`.
    pub fn code(&self) -> u64 {
        LEDGER_ERROR_CODE_BASE + self.offset()
    }

    /// Whether this is a node's internal failure rather than a refusal of the request: the
    /// request may have been fine, the node could not serve it.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            LedgerError::EStorage
                | LedgerError::ECorruptStore
                | LedgerError::EIo
                | LedgerError::EInvalidConfig
                | LedgerError::EDataDirInUse
        )
    }

    /// Whether the same request may succeed later unchanged (the chain was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::EMempoolFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn one_of_each() -> Vec<LedgerError> {
        vec![
            LedgerError::EBadSignature("x"),
            LedgerError::EWrongChainId,
            LedgerError::ENonceUsed { expected: 1, got: 0 },
            LedgerError::ENonceFuture { expected: 1, got: 2 },
            LedgerError::EMalformedTransaction(String::new()),
            LedgerError::ETransactionTooLarge { size: 1, limit: 0 },
            LedgerError::EMempoolFull,
            LedgerError::ENotLocalNetwork,
            LedgerError::EChainStopped,
            LedgerError::EInvalidBlock(String::new()),
            LedgerError::EInvalidCursor,
            LedgerError::EStorage,
            LedgerError::ECorruptStore,
            LedgerError::EIo,
            LedgerError::EInvalidConfig,
            LedgerError::EDataDirInUse,
            LedgerError::EStateDiverged,
        ]
    }

    #[test]
    fn names_and_numbers_are_unique_and_stable() {
        let all = one_of_each();
        let codes: BTreeSet<u64> = all.iter().map(LedgerError::code).collect();
        let names: BTreeSet<&str> = all.iter().map(LedgerError::name).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(names.len(), all.len());
        assert_eq!(LedgerError::EBadSignature("x").code(), 312_013_000);
        assert_eq!(LedgerError::EMempoolFull.code(), 312_013_006);
        assert_eq!(LedgerError::EDataDirInUse.code(), 312_013_015);
        for e in &all {
            assert!(e.to_string().starts_with(e.name()), "{e}");
            assert!(e.code() > atoma_contract::error::ERROR_CODE_BASE + 999, "clashes with the contract");
        }
    }
}
