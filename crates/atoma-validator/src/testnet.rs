//! A local testnet's genesis: a dealt validator set, the local network's keys and genesis, and one
//! directory per validator holding what that validator runs from (docs/VALIDATORS.md §5).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};
use atoma_ledger::keystore::KEYSTORE_FILE;

use crate::committee::{CommitteeError, NetworkFile, deal_from_os};

/// The first validator's RPC port; validator `i` serves on this plus `i`.
pub const DEFAULT_RPC_PORT: u16 = 9000;
/// The first validator's p2p port; validator `i` listens on this plus `i`.
pub const DEFAULT_P2P_PORT: u16 = 9100;

/// How to create a local testnet.
#[derive(Clone, Debug)]
pub struct TestnetOptions {
    /// Validators (4 tolerates one fault; 3f + 1 tolerates f).
    pub validators: usize,
    /// Validator `i` serves JSON-RPC on `127.0.0.1:(rpc_port + i)`.
    pub rpc_port: u16,
    /// Validator `i` listens for its peers on `127.0.0.1:(p2p_port + i)`.
    pub p2p_port: u16,
    /// The local network's accounts and balances.
    pub genesis: LocalNetworkOptions,
}

impl Default for TestnetOptions {
    fn default() -> Self {
        TestnetOptions {
            validators: 4,
            rpc_port: DEFAULT_RPC_PORT,
            p2p_port: DEFAULT_P2P_PORT,
            genesis: LocalNetworkOptions::default(),
        }
    }
}

/// The directory of validator `i` under a testnet's `root`.
pub fn validator_dir(root: &Path, i: usize) -> PathBuf {
    root.join(format!("validator-{i}"))
}

/// The validator directories of the testnet under `root`, if one was created there.
pub fn existing(root: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|i| validator_dir(root, i))
        .take_while(|dir| dir.join(crate::committee::NETWORK_FILE).exists())
        .collect()
}

/// Creates a testnet under `root` (which must hold none): deals the set, makes the local
/// network's keys and genesis, and writes each validator's directory — `network.json`, its
/// `identity.key` and `share.key`, and the local network's `keystore.json`. Returns the
/// directories.
///
/// # Errors
/// [`CommitteeError::Io`] for the files; [`CommitteeError::Invalid`] for a bad count or ports.
pub fn create(root: &Path, options: &TestnetOptions) -> Result<Vec<PathBuf>, CommitteeError> {
    let n = options.validators;
    let last = u16::try_from(n.saturating_sub(1))
        .map_err(|_| CommitteeError::Invalid("too many validators".into()))?;
    if options.rpc_port.checked_add(last).is_none() || options.p2p_port.checked_add(last).is_none() {
        return Err(CommitteeError::Invalid("the ports run past 65535".into()));
    }
    let (set, secrets) = deal_from_os(n)?;
    let keys = LocalKeys::generate(options.genesis.accounts)
        .map_err(|e| CommitteeError::Invalid(format!("the local network's keys: {}", e.chain())))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut genesis = keys.genesis(&options.genesis, u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    genesis.validator_public_key = set.commitment();
    let addresses: Vec<(SocketAddr, SocketAddr)> = (0..=last)
        .map(|i| {
            let at = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port + i));
            (at(options.p2p_port), at(options.rpc_port))
        })
        .collect();
    let file = NetworkFile::new(&set, genesis, true, &addresses);
    let mut dirs = Vec::with_capacity(n);
    for (i, secrets) in secrets.iter().enumerate() {
        let dir = validator_dir(root, i);
        std::fs::create_dir_all(&dir)
            .map_err(|source| CommitteeError::Io { path: dir.display().to_string(), source })?;
        file.save(&dir)?;
        secrets.save(&dir)?;
        keys.save(&dir.join(KEYSTORE_FILE))
            .map_err(|e| CommitteeError::Invalid(format!("the keystore: {}", e.chain())))?;
        dirs.push(dir);
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::committee::ValidatorSecrets;

    #[test]
    fn every_validator_gets_the_same_network_and_its_own_secrets() {
        let root = tempfile::tempdir().unwrap();
        let options = TestnetOptions { validators: 4, ..TestnetOptions::default() };
        let dirs = create(root.path(), &options).unwrap();
        assert_eq!(existing(root.path()), dirs);
        let files: Vec<NetworkFile> = dirs.iter().map(|d| NetworkFile::load(d).unwrap()).collect();
        assert!(files.windows(2).all(|w| w[0] == w[1]));
        let set = files[0].validator_set().unwrap();
        let chain = files[0].genesis.digest().0;
        for dir in &dirs {
            set.signer(&chain, &ValidatorSecrets::load(dir).unwrap()).expect("each share is the set's");
        }
        assert_eq!(files[0].validators[3].rpc_address.port(), DEFAULT_RPC_PORT + 3);
    }
}
