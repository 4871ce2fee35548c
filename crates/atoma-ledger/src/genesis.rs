//! Genesis: what a chain starts from, and the keys of a local network (SPEC §13).
//!
//! A [`GenesisConfig`] fixes the validator, the admin, the initial balances, the contract's
//! configuration, the epoch duration and the genesis time. Its digest
//! (`blake2b-256("atoma-genesis" ‖ bcs(config))`) is the **chain id** every transaction names and
//! the seed of the object ids the contract creates at genesis; the genesis block (height 0) names
//! it as its parent, so every block digest depends on it.
//!
//! A local network ([`LocalKeys`]) has a validator key, an admin key (which receives the manager
//! badge), a faucet key holding a large allocation, and `accounts` test accounts whose keys are
//! fixed ([`Keypair::test_account`]) so that scripts can rely on them. The validator, admin and
//! faucet keys are fresh random keys, so every new local network has a new chain id.

use std::path::{Path, PathBuf};

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, AtomaDb, Config, Event, Genesis, TOMA};
use serde::{Deserialize, Serialize};

use crate::block::BlockHeader;
use crate::codec::encode;
use crate::digest::Digest;
use crate::error::ChainError;
use crate::keystore::Keystore;
use crate::state::{ChainParams, ChainState, LedgerState};
use crate::tx::Keypair;

/// The most test accounts a local network may create.
pub const MAX_TEST_ACCOUNTS: u64 = 1000;
/// Keystore alias of the validator's key.
pub const VALIDATOR_ALIAS: &str = "validator";
/// Keystore alias of the admin key, which holds the first manager badge.
pub const ADMIN_ALIAS: &str = "admin";
/// Keystore alias of the faucet's key.
pub const FAUCET_ALIAS: &str = "faucet";
/// Environment variable naming the default home of data and keys.
pub const ATOMA_HOME_ENV: &str = "ATOMA_HOME";

/// The keystore alias of the `index`-th test account: `account-<index>`.
pub fn test_account_alias(index: u64) -> String {
    format!("account-{index}")
}

/// `$ATOMA_HOME`, else `~/.atoma` (SPEC §13); `None` when neither can be found.
pub fn atoma_home() -> Option<PathBuf> {
    match std::env::var_os(ATOMA_HOME_ENV) {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".atoma")),
    }
}

/// Everything a chain starts from. Its digest is the chain id.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GenesisConfig {
    /// The genesis time, in milliseconds since the Unix epoch; epoch 0 starts here.
    pub timestamp_ms: u64,
    /// The ed25519 public key of the validator that orders blocks.
    pub validator_public_key: [u8; 32],
    /// Receives the first `AtomaManagerBadge`.
    pub admin: Address,
    /// Initial balances, in base units.
    pub allocations: Vec<(Address, u64)>,
    /// The contract's configuration.
    pub contract_config: Config,
    /// How long an epoch lasts at least.
    pub epoch_duration_ms: u64,
}

impl GenesisConfig {
    /// The genesis digest, which is the chain id.
    pub fn digest(&self) -> Digest {
        Digest(blake2b256(&[b"atoma-genesis", &encode(self)]))
    }

    /// The validator's address.
    pub fn validator(&self) -> Address {
        Address::from_ed25519_public_key(&self.validator_public_key)
    }

    /// What block validation needs from the genesis.
    pub fn params(&self) -> ChainParams {
        ChainParams { chain_id: self.digest().0, epoch_duration_ms: self.epoch_duration_ms }
    }

    /// The genesis block's header: height 0, no transactions, parent = the genesis digest.
    pub fn header(&self) -> BlockHeader {
        let digest = self.digest();
        BlockHeader {
            height: 0,
            parent_digest: digest,
            timestamp_ms: self.timestamp_ms,
            epoch: 0,
            random_seed: digest.0,
            tx_digests: Vec::new(),
        }
    }

    /// The state right after genesis, and the contract's genesis events.
    ///
    /// # Errors
    /// `EInvalidConfig` when the epoch duration is zero or the contract refuses the genesis
    /// (an address's allocations overflow).
    pub fn build_state(&self) -> Result<(ChainState, Vec<Event>), ChainError> {
        if self.epoch_duration_ms == 0 {
            return Err(ChainError::InvalidConfig("the epoch duration must be positive".into()));
        }
        let genesis = Genesis {
            admin: self.admin,
            allocations: self.allocations.clone(),
            config: self.contract_config.clone(),
            genesis_digest: self.digest().0,
        };
        let (db, events) =
            AtomaDb::genesis(&genesis).map_err(|e| ChainError::InvalidConfig(format!("genesis: {e}")))?;
        Ok((ChainState { db, ledger: LedgerState::at_genesis(&self.header()) }, events))
    }
}

/// How a new local network is set up.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LocalNetworkOptions {
    /// How many fixed-seed test accounts to fund (at most [`MAX_TEST_ACCOUNTS`]).
    pub accounts: u64,
    /// What each test account gets, in base units.
    pub account_balance: u64,
    /// What the admin gets, in base units.
    pub admin_balance: u64,
    /// What the faucet gets, in base units.
    pub faucet_balance: u64,
    /// How long an epoch lasts at least.
    pub epoch_duration_ms: u64,
    /// The contract's configuration.
    pub contract_config: Config,
}

impl Default for LocalNetworkOptions {
    /// 10 accounts of 10,000 TOMA, an admin with 1,000,000 TOMA, a faucet with 10^9 TOMA,
    /// one-minute epochs and the contract's defaults.
    fn default() -> Self {
        LocalNetworkOptions {
            accounts: 10,
            account_balance: 10_000 * TOMA,
            admin_balance: 1_000_000 * TOMA,
            faucet_balance: 1_000_000_000 * TOMA,
            epoch_duration_ms: 60_000,
            contract_config: Config::default(),
        }
    }
}

/// The keys of a local network.
#[derive(Clone, Debug)]
pub struct LocalKeys {
    /// Orders blocks and signs block seeds.
    pub validator: Keypair,
    /// Holds the first manager badge.
    pub admin: Keypair,
    /// Holds the faucet's allocation.
    pub faucet: Keypair,
    /// `accounts[i]` is [`Keypair::test_account`]`(i)`.
    pub accounts: Vec<Keypair>,
}

impl LocalKeys {
    /// Fresh validator, admin and faucet keys, and the first `accounts` test accounts.
    ///
    /// # Errors
    /// `InvalidConfig` over [`MAX_TEST_ACCOUNTS`]; `NoRandomness` without OS randomness.
    pub fn generate(accounts: u64) -> Result<Self, ChainError> {
        if accounts > MAX_TEST_ACCOUNTS {
            return Err(ChainError::InvalidConfig(format!("at most {MAX_TEST_ACCOUNTS} test accounts")));
        }
        Ok(LocalKeys {
            validator: Keypair::generate().map_err(ChainError::NoRandomness)?,
            admin: Keypair::generate().map_err(ChainError::NoRandomness)?,
            faucet: Keypair::generate().map_err(ChainError::NoRandomness)?,
            accounts: (0..accounts).map(Keypair::test_account).collect(),
        })
    }

    /// The genesis of a local network with these keys, starting at `timestamp_ms`.
    pub fn genesis(&self, options: &LocalNetworkOptions, timestamp_ms: u64) -> GenesisConfig {
        let mut allocations = vec![
            (self.admin.address(), options.admin_balance),
            (self.faucet.address(), options.faucet_balance),
        ];
        allocations.extend(self.accounts.iter().map(|k| (k.address(), options.account_balance)));
        GenesisConfig {
            timestamp_ms,
            validator_public_key: self.validator.public_key(),
            admin: self.admin.address(),
            allocations,
            contract_config: options.contract_config.clone(),
            epoch_duration_ms: options.epoch_duration_ms,
        }
    }

    /// Writes the keys into the keystore at `path`, replacing entries with the same aliases and
    /// keeping every other entry (keys a user imported).
    ///
    /// # Errors
    /// `EIo` or `EInvalidConfig` when the keystore cannot be read or written.
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let mut keystore = Keystore::load(path)?;
        keystore.upsert(VALIDATOR_ALIAS, &self.validator);
        keystore.upsert(ADMIN_ALIAS, &self.admin);
        keystore.upsert(FAUCET_ALIAS, &self.faucet);
        for (i, key) in (0u64..).zip(&self.accounts) {
            keystore.upsert(&test_account_alias(i), key);
        }
        keystore.save(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_id_commits_to_the_genesis() {
        let keys = LocalKeys::generate(2).unwrap();
        let options = LocalNetworkOptions::default();
        let g = keys.genesis(&options, 1_000);
        assert_eq!(g.digest(), keys.genesis(&options, 1_000).digest());
        assert_ne!(g.digest(), keys.genesis(&options, 1_001).digest());
        let (state, events) = g.build_state().unwrap();
        assert_eq!(state.db.balance(&keys.accounts[1].address()), options.account_balance);
        assert_eq!(events.len(), 1);
        assert!(state.db.audit().holds());
        assert!(LocalKeys::generate(MAX_TEST_ACCOUNTS + 1).is_err());
    }
}
