//! One process per chain store: an exclusive advisory lock on a file beside it.
//!
//! Opening a store deletes a leftover `chain.redb.creating` and may create the store, and
//! `atoma start --fresh` deletes `chain.redb`: done while another process is creating or running
//! the same store, either could destroy it (a half-written file renamed into place, a live store
//! unlinked). So whoever opens a store first takes the lock on `<store name>.lock`
//! (`chain.lock` beside `chain.redb`) and holds it until the ledger is dropped; a second opener
//! — another process, or the same one while the first ledger lives — is refused with
//! `EDataDirInUse` before it touches anything. The kernel releases the lock when the process
//! dies, however it dies, so a killed node leaves nothing to clean up; the lock file itself stays
//! and is harmless.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::ChainError;

/// The lock on a chain store, held until dropped.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// Open for as long as the lock is held: closing it releases the lock.
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on the store at `store` (its file need not exist), without waiting.
    ///
    /// # Errors
    /// `EDataDirInUse` naming the directory when another holder has it; `EIo` when the lock file
    /// cannot be opened or locked.
    pub fn acquire(store: &Path) -> Result<Self, ChainError> {
        let path = lock_path(store);
        let io = |e: std::io::Error| ChainError::io(&path, e);
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                Err(ChainError::DataDirInUse { directory: directory(store).to_path_buf(), lock: path })
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// `<dir>/<stem>.lock` for the store `<dir>/<stem>.<ext>`: `chain.lock` for `chain.redb`.
pub(crate) fn lock_path(store: &Path) -> PathBuf {
    store.with_extension("lock")
}

fn directory(store: &Path) -> &Path {
    match store.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_by_name_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("chain.redb");
        let first = DataDirLock::acquire(&store).unwrap();
        assert!(dir.path().join("chain.lock").exists());
        let error = DataDirLock::acquire(&store).unwrap_err();
        assert_eq!(error.name(), "EDataDirInUse");
        assert!(error.to_string().contains(&dir.path().display().to_string()), "{error}");
        assert!(error.to_string().contains("another `atoma` process"), "{error}");
        // Another store in the same directory has a lock of its own.
        drop(DataDirLock::acquire(&dir.path().join("other.redb")).unwrap());
        drop(first);
        drop(DataDirLock::acquire(&store).unwrap());
    }
}
