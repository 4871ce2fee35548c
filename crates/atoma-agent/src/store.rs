//! The agent's own durable state: one redb file (docs/AGENT.md §1).
//!
//! This module holds the event cursor — the id of the last event the agent acted on — and
//! [`crate::records`] the agent's other tables. An action and the cursor that led to it are written in one transaction ([`AgentStore::act`]), so after a
//! crash either both happened or neither did: no event is missed, none is acted on twice.

use std::path::Path;

use atoma_api::EventId;
use redb::{Database, ReadableDatabase as _, TableDefinition, WriteTransaction};

/// Small values by name: the cursor.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CURSOR: &str = "event_cursor";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb could not open, read or write the file.
    #[error("the agent's store {what}: {source}")]
    Storage {
        /// What was being done.
        what: &'static str,
        /// redb's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value does not decode.
    #[error("the agent's store holds a damaged {0}")]
    Damaged(&'static str),
}

fn storage<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |source| StoreError::Storage { what, source: Box::new(source) }
}

/// The agent's store.
pub struct AgentStore {
    db: Database,
}

impl AgentStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    /// [`StoreError::Storage`] when redb cannot open or initialize it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(storage("cannot be opened"))?;
        let txn = db.begin_write().map_err(storage("cannot be written"))?;
        txn.open_table(META).map_err(storage("cannot be written"))?;
        txn.commit().map_err(storage("cannot be written"))?;
        Ok(AgentStore { db })
    }

    /// The id of the last event acted on; `None` before the first.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be read.
    pub fn cursor(&self) -> Result<Option<EventId>, StoreError> {
        let txn = self.db.begin_read().map_err(storage("cannot be read"))?;
        let table = txn.open_table(META).map_err(storage("cannot be read"))?;
        let Some(value) = table.get(CURSOR).map_err(storage("cannot be read"))? else { return Ok(None) };
        serde_json::from_slice(value.value()).map(Some).map_err(|_| StoreError::Damaged("event cursor"))
    }

    /// Runs `action` and moves the cursor to `event` in one durable transaction: both happen or
    /// neither does. `action` writes its own tables through the transaction it is given.
    ///
    /// # Errors
    /// [`StoreError`] from the store, or the action's own error (nothing is then written).
    pub fn act<E: From<StoreError>>(
        &self,
        event: &EventId,
        action: impl FnOnce(&WriteTransaction) -> Result<(), E>,
    ) -> Result<(), E> {
        let txn = self.db.begin_write().map_err(storage("cannot be written"))?;
        action(&txn)?;
        {
            let mut table = txn.open_table(META).map_err(storage("cannot be written"))?;
            let bytes = serde_json::to_vec(event).map_err(|_| StoreError::Damaged("event cursor"))?;
            table.insert(CURSOR, bytes.as_slice()).map_err(storage("cannot be written"))?;
        }
        txn.commit().map_err(storage("cannot be written"))?;
        Ok(())
    }

    /// The underlying database, for the agent's other tables.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: TableDefinition<u64, ()> = TableDefinition::new("seen");

    #[test]
    fn the_cursor_moves_with_the_action_or_not_at_all() {
        let dir = tempfile::tempdir().expect("a dir");
        let path = dir.path().join("agent.redb");
        let first = EventId::new(&[1; 32], 0);
        {
            let store = AgentStore::open(&path).expect("opens");
            assert_eq!(store.cursor().expect("reads"), None);
            store
                .act::<StoreError>(&first, |txn| {
                    txn.open_table(SEEN).map_err(storage("x"))?.insert(1, ()).map_err(storage("x"))?;
                    Ok(())
                })
                .expect("acts");
            // A failing action writes nothing, the cursor included.
            let second = EventId::new(&[2; 32], 0);
            let failed = store.act::<StoreError>(&second, |txn| {
                txn.open_table(SEEN).map_err(storage("x"))?.insert(2, ()).map_err(storage("x"))?;
                Err(StoreError::Damaged("on purpose"))
            });
            assert!(failed.is_err());
        }
        let store = AgentStore::open(&path).expect("opens again");
        assert_eq!(store.cursor().expect("reads"), Some(first));
        let txn = store.database().begin_read().expect("reads");
        let seen = txn.open_table(SEEN).expect("the table");
        assert!(seen.get(1).expect("reads").is_some());
        assert!(seen.get(2).expect("reads").is_none());
    }
}
