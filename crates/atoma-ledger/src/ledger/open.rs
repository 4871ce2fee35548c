//! Opening a ledger: the data directory's lock, creating a new store atomically with its
//! genesis, and recovering the state of an existing one.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, RwLock};

use tokio::sync::broadcast;

use super::recovery::{rebuild_indexes, recover};
use super::{Durable, Ledger, LedgerOptions, Live};
use crate::dir_lock::DataDirLock;
use crate::error::ChainError;
use crate::events::{EventId, EventRecord};
use crate::genesis::GenesisConfig;
use crate::metrics::Metrics;
use crate::state::combined_digest;
use crate::store::{Commit, Snapshot, Store};
use atoma_types::{TxOutcome, TxStatus};

impl Ledger {
    /// Opens the ledger stored at `path`, recovering to its last committed block.
    ///
    /// # Errors
    /// `EInvalidConfig` when the store has no genesis; `EDataDirInUse` when another ledger has
    /// it open; `EStorage`, `ECorruptStore` from recovery.
    pub fn open(path: &Path, options: LedgerOptions) -> Result<Self, ChainError> {
        Self::open_or_create(path, options, || {
            Err(ChainError::InvalidConfig("the store has no genesis".into()))
        })
    }

    /// Opens the ledger at `path`, first creating the store with the genesis that `make_genesis`
    /// returns if there is none yet.
    ///
    /// A new store is built at a temporary name beside `path` (`<name>.creating`), its genesis
    /// committed, and only then renamed to `path` (and the directory synced): a start killed
    /// half-way leaves no store, and the next start removes the leftover and begins again.
    ///
    /// The ledger holds an exclusive lock on `<stem>.lock` beside `path` (`chain.lock`) from
    /// before it touches any file until it is dropped, so that no other opener — another
    /// process, or this one again — can remove or create the store under it.
    ///
    /// # Errors
    /// `EDataDirInUse` when another ledger has this store open; `EInvalidConfig` for bad options
    /// or genesis; `EStorage`, `ECorruptStore` from storage; `EIo` for the lock file.
    pub fn open_or_create(
        path: &Path,
        options: LedgerOptions,
        make_genesis: impl FnOnce() -> Result<GenesisConfig, ChainError>,
    ) -> Result<Self, ChainError> {
        if options.snapshot_interval == 0 || options.event_buffer == 0 {
            return Err(ChainError::InvalidConfig("snapshot interval and event buffer must be ≥ 1".into()));
        }
        let lock = DataDirLock::acquire(path)?;
        let (store, genesis) = open_store(path, make_genesis)?;
        let params = genesis.params();
        let (state, mut repairs) = recover(&store, &params)?;
        store.delete_snapshots(&repairs.damaged_snapshots)?;
        let damage = repairs.index_damage.take().map(|d| d.to_string());
        if let Some(why) =
            damage.map_or_else(|| store.check_indexes(&state.ledger.nonces), |why| Ok(Some(why)))?
        {
            rebuild_indexes(&store, &state.ledger.nonces, &why)?;
            repairs
                .done
                .push(format!("the event and transaction indexes were rebuilt from the blocks ({why})"));
        }
        let metrics = Metrics::default();
        metrics.set_height(state.ledger.height);
        metrics.storage_repaired(repairs.done.len() as u64);
        let (events, _) = broadcast::channel(options.event_buffer);
        let durable = RwLock::new(Durable::of(&state));
        let live = RwLock::new(Live { state });
        let halted = AtomicBool::new(false);
        let repairs = repairs.done;
        Ok(Ledger {
            store,
            live,
            durable,
            genesis,
            params,
            options,
            events,
            metrics,
            halted,
            repairs,
            dry_runs: Mutex::new(None),
            _lock: lock,
        })
    }
}

/// Writes the genesis block, the genesis events and the genesis snapshot in one commit.
fn write_genesis(store: &Store, genesis: &GenesisConfig) -> Result<(), ChainError> {
    let (state, events) = genesis.build_state()?;
    let header = genesis.header();
    let digest = genesis.digest();
    let records = (0u64..)
        .zip(events)
        .map(|(event_seq, event)| EventRecord {
            id: EventId { tx_digest: digest, event_seq },
            height: 0,
            tx_index: 0,
            sender: genesis.admin,
            timestamp_ms: genesis.timestamp_ms,
            event,
        })
        .collect();
    let outcome = TxOutcome {
        digest,
        sender: genesis.admin,
        height: 0,
        index: 0,
        epoch: 0,
        timestamp_ms: genesis.timestamp_ms,
        status: TxStatus::Success,
        events: records,
    };
    let contract = state.db.canonical_bytes();
    let state_digest = combined_digest(&contract, &state.ledger);
    let snapshot = Snapshot { height: 0, ledger: state.ledger, contract, digest: state_digest };
    store.commit(&Commit {
        header: &header,
        digest: header.digest(),
        transactions: vec![(None, &outcome)],
        state_digest: Some(state_digest),
        nonces: &[],
        snapshot: Some(snapshot),
        genesis: Some(genesis),
    })
}

/// The file a new store is built in before it is renamed to `path`.
fn creating_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".creating");
    path.with_file_name(name)
}

/// Opens the store at `path` with its genesis, first creating both if there is no store.
fn open_store(
    path: &Path,
    make_genesis: impl FnOnce() -> Result<GenesisConfig, ChainError>,
) -> Result<(Store, GenesisConfig), ChainError> {
    let io = |e: std::io::Error| ChainError::storage(path.display().to_string(), e);
    let creating = creating_path(path);
    // What a start killed while creating the store left: never renamed, so never acknowledged.
    match std::fs::remove_file(&creating) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut make_genesis = Some(make_genesis);
    let mut new_genesis = || {
        make_genesis.take().map_or_else(|| Err(ChainError::InvalidConfig("no genesis".into())), |make| make())
    };
    if !path.try_exists().map_err(io)? {
        let genesis = new_genesis()?;
        let created = create_store(&creating, &genesis).and_then(|()| {
            std::fs::rename(&creating, path).map_err(io)?;
            sync_directory(path)
        });
        if let Err(e) = created {
            let _ = std::fs::remove_file(&creating);
            return Err(e);
        }
    }
    let store = Store::open(path)?;
    let genesis = match store.genesis()? {
        Some(genesis) => genesis,
        // A store created before this one was made atomic could hold no genesis yet.
        None => {
            let genesis = new_genesis()?;
            write_genesis(&store, &genesis)?;
            genesis
        }
    };
    Ok((store, genesis))
}

fn create_store(path: &Path, genesis: &GenesisConfig) -> Result<(), ChainError> {
    let store = Store::create(path)?;
    write_genesis(&store, genesis)
}

/// Makes a rename in `path`'s directory durable.
fn sync_directory(path: &Path) -> Result<(), ChainError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let io = |e: std::io::Error| ChainError::storage(format!("syncing the directory {}", dir.display()), e);
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    #[cfg(not(unix))]
    let _ = io;
    Ok(())
}
