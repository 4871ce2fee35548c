//! Checksums on stored records: every value the store cannot rebuild from other values is
//! written **sealed** — its bytes followed by a checksum — and checked on every read.
//!
//! redb checksums its pages, but verifies them only when it recovers from a crash or checks the
//! file's integrity; a value that is wrong but well-formed — a bit flipped in a page after the
//! check, a bad sector read back, a tool or a bug that wrote through redb — would otherwise be
//! decoded and trusted. The checksum covers the table's name and the key as well as the value,
//! so a value that landed under another key, or in another table, fails too.
//!
//! The checksum lives in the value (an envelope), not in a table of its own: a read gets the
//! value and its checksum from the same lookup, a commit writes no extra keys, and a value can
//! never be separated from its checksum by a partial write or a deleted entry.
//!
//! It is blake2b-256 truncated to [`CHECKSUM_LEN`] bytes. It guards against accidents, not
//! against someone who can write the file (they can recompute it): at 128 bits a random change
//! goes unnoticed with probability 2⁻¹²⁸.

use atoma_contract::hash::blake2b256;
use serde::de::DeserializeOwned;

use crate::codec::decode_stored;
use crate::error::ChainError;

/// Bytes of checksum after every sealed value.
pub(crate) const CHECKSUM_LEN: usize = 16;
/// Separates these checksums from every other blake2b use in the chain.
const DOMAIN: &[u8] = b"atoma-store-record";

fn checksum(table: &str, key: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    // Table names hold no 0 byte and the key's length comes first, so
    // table ‖ 0 ‖ len(key) ‖ key ‖ payload is unambiguous (`meta`'s keys differ in length).
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes();
    let full = blake2b256(&[DOMAIN, table.as_bytes(), &[0], &key_len, key, payload]);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&full[..CHECKSUM_LEN]);
    out
}

/// `payload ‖ checksum(table, key, payload)`.
pub(crate) fn seal(table: &str, key: &[u8], mut payload: Vec<u8>) -> Vec<u8> {
    let sum = checksum(table, key, &payload);
    payload.extend_from_slice(&sum);
    payload
}

/// The payload of a sealed value, if its checksum holds; `what` names the record in the error.
pub(crate) fn unseal<'a>(
    table: &str,
    key: &[u8],
    bytes: &'a [u8],
    what: &dyn Fn() -> String,
) -> Result<&'a [u8], ChainError> {
    let split = bytes
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| corrupt(what, "it is too short to hold a checksum"))?;
    let (payload, sum) = bytes.split_at(split);
    if sum != checksum(table, key, payload) {
        return Err(corrupt(what, "its checksum does not match"));
    }
    Ok(payload)
}

/// A sealed value, checked and decoded.
pub(crate) fn open<T: DeserializeOwned>(
    table: &str,
    key: &[u8],
    bytes: &[u8],
    what: &dyn Fn() -> String,
) -> Result<T, ChainError> {
    decode_stored(unseal(table, key, bytes, what)?, &what())
}

fn corrupt(what: &dyn Fn() -> String, why: &str) -> ChainError {
    ChainError::corrupt(format!("{} is damaged: {why}", what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_to_the_value_the_key_or_the_table_is_caught() {
        let what = || "a record".to_string();
        let sealed = seal("blocks", &7u64.to_be_bytes(), vec![1, 2, 3]);
        assert_eq!(sealed.len(), 3 + CHECKSUM_LEN);
        assert_eq!(unseal("blocks", &7u64.to_be_bytes(), &sealed, &what).unwrap(), &[1, 2, 3]);
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x10;
            assert!(unseal("blocks", &7u64.to_be_bytes(), &flipped, &what).is_err(), "byte {i}");
        }
        assert!(unseal("blocks", &8u64.to_be_bytes(), &sealed, &what).is_err(), "another key");
        assert!(unseal("snapshots", &7u64.to_be_bytes(), &sealed, &what).is_err(), "another table");
        assert!(unseal("blocks", &7u64.to_be_bytes(), &sealed[1..], &what).is_err(), "truncated");
        let error = unseal("blocks", &7u64.to_be_bytes(), &[0; 5], &what).unwrap_err();
        assert_eq!(error.name(), "ECorruptStore");
        assert!(error.to_string().contains("a record is damaged"), "{error}");
    }
}
