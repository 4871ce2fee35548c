//! The keystore file shared by the chain and the CLI.
//!
//! A JSON array of entries, each `{"alias": "admin", "address": "0x…", "private_key": "…"}` where
//! `private_key` is the 32-byte ed25519 secret in 64 lowercase hex digits (a `0x` prefix is
//! accepted on reading) and `address` is its account address. The chain writes the local
//! network's keys under the aliases `validator`, `admin`, `faucet` and `account-<i>`, and reads the
//! validator's and the faucet's keys back on every start; other entries are kept untouched. The
//! file holds secrets in the clear, for local networks: it is written with mode 0600.

use std::path::Path;

use atoma_contract::Address;
use serde::{Deserialize, Serialize};

use crate::error::ChainError;
use crate::tx::Keypair;

/// The keystore's file name inside the data directory.
pub const KEYSTORE_FILE: &str = "keystore.json";
/// The largest keystore file read, in bytes.
const MAX_KEYSTORE_SIZE: u64 = 16 * 1024 * 1024;

/// One key of the keystore, as stored.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct KeystoreEntry {
    /// The name `--as` uses, such as `admin` or `account-0`.
    pub alias: String,
    /// `0x` + 64 hex digits.
    pub address: String,
    /// 64 hex digits: the ed25519 secret.
    pub private_key: String,
}

impl KeystoreEntry {
    /// The entry's key, checked against its address.
    ///
    /// # Errors
    /// `EInvalidConfig` when the key is not 32 bytes of hex or does not match the address.
    pub fn keypair(&self) -> Result<Keypair, ChainError> {
        let bad = |what: &str| ChainError::InvalidConfig(format!("keystore entry {:?}: {what}", self.alias));
        let secret =
            parse_hex32(&self.private_key).ok_or_else(|| bad("private_key is not 32 bytes of hex"))?;
        let key = Keypair::from_secret_bytes(secret);
        let address: Address = self.address.parse().map_err(|_| bad("address is not 0x + 64 hex digits"))?;
        if key.address() != address {
            return Err(bad("address does not match private_key"));
        }
        Ok(key)
    }
}

/// The keystore's entries, in file order.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Keystore {
    entries: Vec<KeystoreEntry>,
}

impl Keystore {
    /// Reads the keystore at `path`; a missing file is an empty keystore.
    ///
    /// # Errors
    /// `EIo` when the file cannot be read; `EInvalidConfig` when it is not a keystore.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let io = |e: std::io::Error| ChainError::io(path, e);
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Keystore::default()),
            Err(e) => return Err(io(e)),
            Ok(meta) if meta.len() > MAX_KEYSTORE_SIZE => {
                return Err(ChainError::InvalidConfig(format!("{} is too large", path.display())));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let entries = serde_json::from_str(&text)
            .map_err(|e| ChainError::InvalidConfig(format!("{} is not a keystore: {e}", path.display())))?;
        Ok(Keystore { entries })
    }

    /// Writes the keystore to `path` atomically (a temporary file, then a rename), mode 0600.
    ///
    /// # Errors
    /// `EIo` when the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let io = |e: std::io::Error| ChainError::io(path, e);
        let text = serde_json::to_string_pretty(&self.entries)
            .map_err(|e| ChainError::InvalidConfig(format!("the keystore cannot be encoded: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        write_private(&tmp, text.as_bytes()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Every entry, in file order.
    pub fn entries(&self) -> &[KeystoreEntry] {
        &self.entries
    }

    /// The key stored under `alias`.
    ///
    /// # Errors
    /// `EInvalidConfig` when the entry is damaged.
    pub fn keypair(&self, alias: &str) -> Result<Option<Keypair>, ChainError> {
        self.entries.iter().find(|e| e.alias == alias).map(KeystoreEntry::keypair).transpose()
    }

    /// Stores `key` under `alias`, replacing any entry with that alias.
    pub fn upsert(&mut self, alias: &str, key: &Keypair) {
        let entry = KeystoreEntry {
            alias: alias.to_string(),
            address: key.address().to_string(),
            private_key: to_hex(&key.secret_bytes()),
        };
        match self.entries.iter_mut().find(|e| e.alias == alias) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_round_trip_and_other_entries_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEYSTORE_FILE);
        let mut ks = Keystore::load(&path).unwrap();
        let a = Keypair::test_account(1);
        ks.upsert("mine", &a);
        ks.upsert("admin", &Keypair::test_account(2));
        ks.save(&path).unwrap();
        let mut again = Keystore::load(&path).unwrap();
        assert_eq!(again.keypair("mine").unwrap().unwrap().address(), a.address());
        again.upsert("admin", &Keypair::test_account(3));
        assert_eq!(again.entries().len(), 2);
        assert_eq!(again.entries()[0].private_key.len(), 64);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"alias\": \"mine\""));
    }

    #[test]
    fn damaged_entries_are_refused() {
        let entry = KeystoreEntry {
            alias: "x".into(),
            address: Keypair::test_account(1).address().to_string(),
            private_key: to_hex(&Keypair::test_account(2).secret_bytes()),
        };
        assert!(entry.keypair().is_err());
        let short = KeystoreEntry { private_key: "abcd".into(), ..entry };
        assert!(short.keypair().is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEYSTORE_FILE);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(Keystore::load(&path).map_err(|e| e.name()), Err("EInvalidConfig"));
    }
}
