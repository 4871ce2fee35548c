//! The node's errors, in two kinds for two audiences.
//!
//! - A **refusal** ([`LedgerError`], from `atoma-types`): the request was refused and nothing
//!   changed — a bad signature, a stale nonce, a full mempool. Named and numbered
//!   (`312013000 + n`), safe to send to any client as it is.
//! - An **internal failure** (every other [`ChainError`]): the node could not do what was asked
//!   — its storage failed, it found damage on disk, a thread panicked holding a lock. These carry
//!   their cause ([`std::error::Error::source`]), the file and what the operator can do about it,
//!   and are meant for the operator: the CLI prints them, the node's log records them. A client
//!   is told only their name ([`ChainError::refusal`]: `EStorage`, `ECorruptStore`, …).

use std::path::PathBuf;

pub use atoma_types::error::{LEDGER_ERROR_CODE_BASE, LedgerError};

/// The cause of a storage failure: redb's error or the operating system's.
pub type StorageCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the node could not do what was asked. See the module docs.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The request was refused; nothing changed.
    #[error(transparent)]
    Refused(#[from] LedgerError),
    /// The storage failed: an I/O error, a full disk, the database engine's own error.
    #[error("the chain's storage failed: {what}")]
    Storage {
        /// What was being done, and on which file.
        what: String,
        /// The engine's or the operating system's error.
        #[source]
        source: StorageCause,
    },
    /// Stored data is damaged: it fails its checksum, does not decode, or disagrees with what
    /// it must match.
    #[error("{0}")]
    Corrupt(Damage),
    /// A file of the data directory (keystore, directory, lock file) could not be read or
    /// written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The operating system gave no randomness for a new key.
    #[error("the operating system gave no randomness for a new key")]
    NoRandomness(#[source] getrandom::Error),
    /// The configuration or the keystore is not usable.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Another process holds the data directory's lock: it has the chain store open. Two
    /// processes writing one store could destroy it, so the second one is refused.
    #[error("another `atoma` process is using the data directory {} (it holds {})", directory.display(), lock.display())]
    DataDirInUse {
        /// The data directory.
        directory: PathBuf,
        /// The lock file the other process holds.
        lock: PathBuf,
    },
    /// A block could not be committed, and recovering from that found the chain unable to go on
    /// (the indexes damaged): no block is taken until the node restarts.
    #[error("{why}")]
    Halted {
        /// Why the chain stopped, and what to do.
        why: String,
        /// The failure of the commit.
        #[source]
        cause: Box<ChainError>,
    },
    /// A thread panicked while it held one of the chain's locks, so what the lock guards may be
    /// half-changed: the chain halts rather than go on from it. Restarting the node recovers
    /// the state from disk.
    #[error("the chain halted: a thread panicked while holding the {0} lock; restart the node")]
    Poisoned(&'static str),
}

/// What damage was found on disk.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Damage {
    /// An index entry led to a record that is not the one it names. Indexes are derived from
    /// the blocks, so this one is repaired by rebuilding them.
    #[error("the index `{index}` is wrong: {found}")]
    IndexEntry {
        /// The index's table.
        index: String,
        /// What the entry led to.
        found: String,
    },
    /// Any other damage: a record that fails its checksum or does not decode, a missing block,
    /// a replay that reaches another state. Says what and where, and what to do about it when
    /// nothing can be repaired.
    #[error("{0}")]
    Store(String),
}

impl ChainError {
    /// Damage described by `what`.
    pub fn corrupt(what: impl Into<String>) -> Self {
        ChainError::Corrupt(Damage::Store(what.into()))
    }

    /// A storage failure while doing `what`.
    pub fn storage(what: impl Into<String>, source: impl Into<StorageCause>) -> Self {
        ChainError::Storage { what: what.into(), source: source.into() }
    }

    /// A failure on the file or directory `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ChainError::Io { path: path.into(), source }
    }

    /// What a client may be told: the refusal itself, or the bare name of an internal failure.
    pub fn refusal(&self) -> LedgerError {
        match self {
            ChainError::Refused(refusal) => refusal.clone(),
            ChainError::Storage { .. } => LedgerError::EStorage,
            ChainError::Corrupt(_) => LedgerError::ECorruptStore,
            ChainError::Io { .. } | ChainError::NoRandomness(_) => LedgerError::EIo,
            ChainError::InvalidConfig(_) => LedgerError::EInvalidConfig,
            ChainError::DataDirInUse { .. } => LedgerError::EDataDirInUse,
            ChainError::Halted { cause, .. } => cause.refusal(),
            ChainError::Poisoned(_) => LedgerError::EChainStopped,
        }
    }

    /// The stable name of [`ChainError::refusal`], such as `ENonceUsed` or `EStorage`.
    pub fn name(&self) -> &'static str {
        self.refusal().name()
    }

    /// Whether this is an internal failure (module docs), not a refusal.
    pub fn is_internal(&self) -> bool {
        !matches!(self, ChainError::Refused(_))
    }

    /// The whole cause chain in one line, for logs: `outer: inner: innermost`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.ends_with(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

impl From<redb::StorageError> for ChainError {
    /// A page that fails redb's own checks is damage on disk ([`ChainError::Corrupt`]);
    /// anything else — an I/O error, a full disk — is the storage failing.
    fn from(e: redb::StorageError) -> Self {
        match e {
            redb::StorageError::Corrupted(why) => {
                ChainError::corrupt(format!("redb found a damaged page: {why}"))
            }
            other => ChainError::storage("redb", other),
        }
    }
}

macro_rules! storage_errors {
    ($($ty:ident),+) => {
        $(impl From<redb::$ty> for ChainError {
            fn from(e: redb::$ty) -> Self {
                match e {
                    redb::$ty::Storage(storage) => storage.into(),
                    other => ChainError::storage("redb", other),
                }
            }
        })+
    };
}

storage_errors!(DatabaseError, TransactionError, TableError, CommitError);

impl From<redb::Error> for ChainError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(why) => redb::StorageError::Corrupted(why).into(),
            other => ChainError::storage("redb", other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_reach_clients_by_name_only() {
        let io = std::io::Error::other("disk on fire");
        let cases = [
            (ChainError::storage("commit of /secret/chain.redb", io), "EStorage"),
            (
                ChainError::corrupt("/secret/chain.redb: block 4 is missing; run `atoma start --fresh`"),
                "ECorruptStore",
            ),
            (ChainError::io("/secret/keystore.json", std::io::Error::other("denied")), "EIo"),
            (ChainError::InvalidConfig("/secret".into()), "EInvalidConfig"),
            (
                ChainError::DataDirInUse { directory: "/secret".into(), lock: "/secret/l".into() },
                "EDataDirInUse",
            ),
            (ChainError::Poisoned("state"), "EChainStopped"),
        ];
        for (error, name) in cases {
            assert!(error.is_internal());
            let refusal = error.refusal();
            assert_eq!(refusal.name(), name);
            let told = refusal.to_string();
            assert!(!told.contains("/secret") && !told.contains("--fresh"), "{told}");
        }
        let refused = ChainError::from(LedgerError::EMempoolFull);
        assert!(!refused.is_internal());
        assert_eq!(refused.refusal(), LedgerError::EMempoolFull);
    }

    #[test]
    fn the_operator_sees_the_cause_chain() {
        let error = ChainError::storage(
            "committing block 7 to /data/chain.redb",
            std::io::Error::other("no space left"),
        );
        assert_eq!(
            error.chain(),
            "the chain's storage failed: committing block 7 to /data/chain.redb: no space left"
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
