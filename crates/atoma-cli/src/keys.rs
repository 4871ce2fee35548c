//! The keystore as the CLI sees it: one file, `$ATOMA_HOME/keystore.json`, shared with the chain.
//!
//! The format is the ledger's ([`atoma_ledger::keystore`]): a JSON array of
//! `{"alias", "address", "private_key"}`. `atoma start` writes the local network's keys there
//! (`validator`, `admin`, `faucet`, `account-0`, …), and `atoma keys new|import` add the user's
//! own. The CLI adds two kinds of helper keys for confidential compute on a local network:
//! `dev-root-<device>` (a development attestation root) and `enclave-node-<n>` (a node's enclave
//! key). None of these helper or system keys is ever picked as the default signer.
//!
//! **Which key signs.** `--as ALIAS|ADDRESS` (or `ATOMA_AS`) names it. Without it, admin commands
//! sign as `admin`, and every other command signs as the first keystore entry that is an account
//! of the user: not `validator`, `admin`, `faucet`, nor a helper key. On a fresh local network
//! that is `account-0`; after `atoma keys new me` on an empty home it is `me`.

use std::path::{Path, PathBuf};

use atoma_contract::Address;
use atoma_ledger::genesis::{ADMIN_ALIAS, FAUCET_ALIAS, VALIDATOR_ALIAS, atoma_home};
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Keystore, KeystoreEntry};
use atoma_types::Keypair;

use crate::error::{CliError, CliErrorKind, CliResult};

/// The alias prefix of development attestation roots: `dev-root-<device type>`.
pub const DEV_ROOT_PREFIX: &str = "dev-root-";
/// The alias prefix of enclave keys: `enclave-node-<node small id>`.
pub const ENCLAVE_PREFIX: &str = "enclave-node-";
/// The longest alias accepted.
const MAX_ALIAS_LEN: usize = 64;

/// `$ATOMA_HOME`, else `~/.atoma`.
///
/// # Errors
/// `EKeystore` when neither `ATOMA_HOME` nor `HOME` is set.
pub fn home() -> CliResult<PathBuf> {
    atoma_home().ok_or_else(|| {
        CliError::new(CliErrorKind::EKeystore, "set ATOMA_HOME (or HOME) to say where keys and data live")
    })
}

/// Whether `alias` names a key that is not a user's account.
pub fn is_system_alias(alias: &str) -> bool {
    [VALIDATOR_ALIAS, ADMIN_ALIAS, FAUCET_ALIAS].contains(&alias)
        || alias.starts_with(DEV_ROOT_PREFIX)
        || alias.starts_with(ENCLAVE_PREFIX)
}

/// What kind of key an alias names, for listings.
pub fn alias_kind(alias: &str) -> &'static str {
    match alias {
        VALIDATOR_ALIAS => "validator",
        ADMIN_ALIAS => "admin (manager badge)",
        FAUCET_ALIAS => "faucet",
        a if a.starts_with(DEV_ROOT_PREFIX) => "dev attestation root",
        a if a.starts_with(ENCLAVE_PREFIX) => "enclave key",
        a if a.starts_with("account-") => "test account",
        _ => "account",
    }
}

/// The keystore file and its entries.
pub struct Keys {
    path: PathBuf,
    store: Keystore,
}

/// A key found in the keystore.
pub struct Named {
    /// Its alias.
    pub alias: String,
    /// The key itself.
    pub key: Keypair,
}

impl Keys {
    /// Loads `<home>/keystore.json` (missing is empty).
    ///
    /// # Errors
    /// `EKeystore` when the file is unreadable.
    pub fn load(home: &Path) -> CliResult<Self> {
        let path = home.join(KEYSTORE_FILE);
        let store = Keystore::load(&path).map_err(keystore_error)?;
        Ok(Keys { path, store })
    }

    /// Loads the keystore of [`home`].
    ///
    /// # Errors
    /// As [`home`] and [`Keys::load`].
    pub fn load_default() -> CliResult<Self> {
        Self::load(&home()?)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[KeystoreEntry] {
        self.store.entries()
    }

    /// The key named by an alias or an address.
    ///
    /// # Errors
    /// `EUnknownKey` when no entry matches; `EKeystore` when the entry is damaged.
    pub fn find(&self, who: &str) -> CliResult<Named> {
        let entry = self
            .entries()
            .iter()
            .find(|e| e.alias == who || e.address.eq_ignore_ascii_case(who))
            .ok_or_else(|| {
                CliError::new(
                    CliErrorKind::EUnknownKey,
                    format!("no key {who:?} in {}; see `atoma keys list`", self.path.display()),
                )
            })?;
        let key = entry.keypair().map_err(keystore_error)?;
        Ok(Named { alias: entry.alias.clone(), key })
    }

    /// The key stored under exactly this alias, if any.
    ///
    /// # Errors
    /// `EKeystore` when the entry is damaged.
    pub fn get(&self, alias: &str) -> CliResult<Option<Keypair>> {
        self.store.keypair(alias).map_err(keystore_error)
    }

    /// The signer: `who` when given, else `fallback` when given, else the first user account.
    ///
    /// # Errors
    /// `EUnknownKey` when nothing matches or the keystore has no user account.
    pub fn signer(&self, who: Option<&str>, fallback: Option<&str>) -> CliResult<Named> {
        if let Some(who) = who.or(fallback) {
            return self.find(who);
        }
        let first = self.entries().iter().find(|e| !is_system_alias(&e.alias)).ok_or_else(|| {
            CliError::new(
                CliErrorKind::EUnknownKey,
                format!(
                    "{} has no account to sign with: run `atoma start` (which creates funded test \
                     accounts) or `atoma keys new NAME`, or pass --as",
                    self.path.display()
                ),
            )
        })?;
        self.find(&first.alias)
    }

    /// An address: `0x…` as written, else the address of the key with this alias.
    ///
    /// # Errors
    /// `EUnknownKey` when it is neither an address nor a known alias.
    pub fn address(&self, who: &str) -> CliResult<Address> {
        if who.starts_with("0x") {
            return who.parse().map_err(|e| CliError::invalid(format!("{who:?}: {e}")));
        }
        self.find(who).map(|n| n.key.address())
    }

    /// The alias of `address`, if the keystore has it.
    pub fn alias_of(&self, address: &Address) -> Option<&str> {
        let text = address.to_string();
        self.entries().iter().find(|e| e.address == text).map(|e| e.alias.as_str())
    }

    /// Stores `key` under a new alias and saves the file.
    ///
    /// # Errors
    /// `EInvalidArgument` for a bad alias; `EKeystore` when it is taken or the file cannot be
    /// written.
    pub fn add(&mut self, alias: &str, key: &Keypair) -> CliResult<()> {
        check_alias(alias)?;
        if self.entries().iter().any(|e| e.alias == alias) {
            return Err(CliError::new(CliErrorKind::EKeystore, format!("the alias {alias:?} is taken")));
        }
        self.put(alias, key)
    }

    /// Stores `key` under `alias`, replacing any entry with that alias, and saves the file.
    ///
    /// # Errors
    /// `EKeystore` when the file cannot be written.
    pub fn put(&mut self, alias: &str, key: &Keypair) -> CliResult<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::new(CliErrorKind::EKeystore, format!("{}: {e}", dir.display())))?;
        }
        self.store.upsert(alias, key);
        self.store.save(&self.path).map_err(keystore_error)
    }

    /// Copies every entry of `other` into this keystore (replacing same aliases) and saves it.
    ///
    /// # Errors
    /// `EKeystore` when an entry is damaged or the file cannot be written.
    pub fn merge(&mut self, other: &Keystore) -> CliResult<()> {
        for entry in other.entries() {
            let key = entry.keypair().map_err(keystore_error)?;
            self.store.upsert(&entry.alias, &key);
        }
        self.store.save(&self.path).map_err(keystore_error)
    }
}

fn check_alias(alias: &str) -> CliResult<()> {
    let ok = !alias.is_empty()
        && alias.len() <= MAX_ALIAS_LEN
        && !alias.starts_with("0x")
        && alias.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CliError::invalid(format!(
            "{alias:?} is not an alias: use 1 to {MAX_ALIAS_LEN} letters, digits, '-', '_' or '.', \
             not starting with 0x"
        )))
    }
}

fn keystore_error(e: atoma_ledger::ChainError) -> CliError {
    CliError::new(CliErrorKind::EKeystore, CliError::from(e).message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_signer_skips_system_and_helper_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::load(dir.path()).unwrap();
        assert_eq!(keys.signer(None, None).err().map(|e| e.name), Some("EUnknownKey".into()));
        keys.put("validator", &Keypair::test_account(90)).unwrap();
        keys.put("admin", &Keypair::test_account(91)).unwrap();
        keys.put("dev-root-300", &Keypair::test_account(92)).unwrap();
        keys.put("account-0", &Keypair::test_account(0)).unwrap();
        let reloaded = Keys::load(dir.path()).unwrap();
        assert_eq!(reloaded.signer(None, None).unwrap().alias, "account-0");
        assert_eq!(reloaded.signer(None, Some("admin")).unwrap().alias, "admin");
        assert_eq!(reloaded.signer(Some("dev-root-300"), Some("admin")).unwrap().alias, "dev-root-300");
        let by_address = Keypair::test_account(0).address().to_string();
        assert_eq!(reloaded.find(&by_address).unwrap().alias, "account-0");
        assert_eq!(reloaded.address("account-0").unwrap(), Keypair::test_account(0).address());
        assert!(reloaded.address("0x12").is_err());
    }

    #[test]
    fn aliases_are_checked_and_never_taken_twice() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::load(dir.path()).unwrap();
        keys.add("me", &Keypair::test_account(1)).unwrap();
        assert_eq!(keys.add("me", &Keypair::test_account(2)).err().map(|e| e.name), Some("EKeystore".into()));
        for bad in ["", "0xabc", "has space", &"x".repeat(65)] {
            assert!(keys.add(bad, &Keypair::test_account(3)).is_err(), "{bad:?}");
        }
    }
}
