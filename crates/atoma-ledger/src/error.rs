//! The ledger's own errors: why a transaction was refused before execution, or why the chain
//! could not do what was asked.
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
    /// The embedded database failed.
    #[error("EStorage: {0}")]
    EStorage(String),
    /// The data on disk does not decode or does not match its digest.
    #[error("ECorruptStore: {0}")]
    ECorruptStore(String),
    /// A file of the data directory (keystore, directory) could not be read or written.
    #[error("EIo: {0}")]
    EIo(String),
    /// The configuration or the keystore is not usable.
    #[error("EInvalidConfig: {0}")]
    EInvalidConfig(String),
    /// Another process holds the data directory's lock: it has the chain store open. Two
    /// processes writing one store could destroy it, so the second one is refused.
    #[error("EDataDirInUse: another `atoma` process is using the data directory {0}")]
    EDataDirInUse(String),
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
            LedgerError::EStorage(_) => 11,
            LedgerError::ECorruptStore(_) => 12,
            LedgerError::EIo(_) => 13,
            LedgerError::EInvalidConfig(_) => 14,
            LedgerError::EDataDirInUse(_) => 15,
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
            LedgerError::EStorage(_) => "EStorage",
            LedgerError::ECorruptStore(_) => "ECorruptStore",
            LedgerError::EIo(_) => "EIo",
            LedgerError::EInvalidConfig(_) => "EInvalidConfig",
            LedgerError::EDataDirInUse(_) => "EDataDirInUse",
        }
    }

    /// The full error number: `312013000 + offset`.
    pub fn code(&self) -> u64 {
        LEDGER_ERROR_CODE_BASE + self.offset()
    }

    /// Whether the same request may succeed later unchanged (the chain was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, LedgerError::EMempoolFull)
    }
}

impl From<redb::StorageError> for LedgerError {
    /// A page that fails redb's own checks is damage on disk (`ECorruptStore`); anything else —
    /// an I/O error, a full disk — is the storage failing (`EStorage`).
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Corrupted(why) => {
                LedgerError::ECorruptStore(format!("redb found a damaged page: {why}"))
            }
            other => LedgerError::EStorage(other.to_string()),
        }
    }
}

macro_rules! storage_errors {
    ($($ty:ident),+) => {
        $(impl From<redb::$ty> for LedgerError {
            fn from(e: redb::$ty) -> Self {
                match e {
                    redb::$ty::Storage(storage) => storage.into(),
                    other => LedgerError::EStorage(other.to_string()),
                }
            }
        })+
    };
}

storage_errors!(DatabaseError, TransactionError, TableError, CommitError);

impl From<redb::Error> for LedgerError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(why) => redb::StorageError::Corrupted(why).into(),
            other => LedgerError::EStorage(other.to_string()),
        }
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
            LedgerError::EStorage(String::new()),
            LedgerError::ECorruptStore(String::new()),
            LedgerError::EIo(String::new()),
            LedgerError::EInvalidConfig(String::new()),
            LedgerError::EDataDirInUse(String::new()),
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
        assert_eq!(LedgerError::EDataDirInUse(String::new()).code(), 312_013_015);
        for e in &all {
            assert!(e.to_string().starts_with(e.name()), "{e}");
            assert!(e.code() > atoma_contract::error::ERROR_CODE_BASE + 999, "clashes with the contract");
        }
    }
}
