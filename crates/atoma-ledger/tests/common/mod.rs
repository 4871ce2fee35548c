//! Helpers shared by the integration tests: a local network in a temp dir and signing shortcuts.

#![allow(dead_code)]

use std::path::Path;

use atoma_contract::state::BadgeKind;
use atoma_contract::{Address, Call, ObjectId};
use atoma_ledger::genesis::{ADMIN_ALIAS, FAUCET_ALIAS, test_account_alias};
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask, Keystore, LedgerError};
use atoma_types::{Keypair, TxOutcome};

/// A local network with 3 test accounts and a snapshot every 2 blocks.
pub fn config(dir: &Path) -> ChainConfig {
    let mut config = ChainConfig::local(dir);
    config.genesis.accounts = 3;
    config.ledger.snapshot_interval = 2;
    config
}

/// The local network's keys, read back from its keystore.
pub struct Keys {
    pub admin: Keypair,
    pub faucet: Keypair,
    pub accounts: Vec<Keypair>,
}

pub fn keys(dir: &Path) -> Keys {
    let keystore = Keystore::load(&dir.join(KEYSTORE_FILE)).unwrap();
    let get = |alias: &str| keystore.keypair(alias).unwrap().unwrap();
    Keys {
        admin: get(ADMIN_ALIAS),
        faucet: get(FAUCET_ALIAS),
        accounts: (0..3).map(|i| get(&test_account_alias(i))).collect(),
    }
}

pub fn start(config: ChainConfig) -> (ChainHandle, ChainTask) {
    Chain::open(config).unwrap()
}

/// Shuts the chain down and waits until its database is closed.
pub fn stop(handle: ChainHandle, task: ChainTask) {
    handle.shutdown();
    drop(handle);
    task.join().unwrap();
}

pub fn chain_id(handle: &ChainHandle) -> [u8; 32] {
    handle.node().chain_info().chain_id.0
}

/// Signs `call` from `key` with its next nonce and waits for the block.
pub async fn send(handle: &ChainHandle, key: &Keypair, call: Call) -> Result<TxOutcome, LedgerError> {
    let nonce = handle.next_nonce(&key.address());
    handle.submit(key.sign_call(chain_id(handle), nonce, call)).await
}

/// Like [`send`], and the contract must accept the call.
pub async fn ok(handle: &ChainHandle, key: &Keypair, call: Call) -> TxOutcome {
    let outcome = send(handle, key, call.clone()).await.unwrap();
    assert!(outcome.status.is_success(), "{call:?} failed: {:?}", outcome.status);
    outcome
}

pub fn manager_badge(handle: &ChainHandle, admin: &Address) -> ObjectId {
    handle.ledger().with_state(|db| {
        db.owned_badges(admin)
            .into_iter()
            .find(|(_, b)| b.kind == BadgeKind::Manager)
            .map(|(id, _)| id)
            .unwrap()
    })
}
