//! Identifiers and amounts (SPEC §2).
//!
//! Addresses and object ids are 32-byte values shown as `0x` + 64 lowercase hex digits. Small ids
//! are sequential `u64`s starting at 1 that are never reused. Each kind of id is its own type so
//! that a task id can never be passed where a node id is expected.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::hash::blake2b256;

/// Base units per TOMA: 1 TOMA = 10^9 base units.
pub const TOMA: u64 = 1_000_000_000;

/// The error returned when a hex id cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 0x followed by 64 hex digits")]
pub struct ParseIdError;

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8; 32]) -> fmt::Result {
    f.write_str("0x")?;
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

fn parse_hex32(s: &str) -> Result<[u8; 32], ParseIdError> {
    let hex = s.strip_prefix("0x").ok_or(ParseIdError)?;
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(ParseIdError);
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or(ParseIdError)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| ParseIdError)?;
    }
    Ok(out)
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        // 32 raw bytes in binary formats (BCS: the wire and storage format); `0x` hex in
        // human-readable ones (JSON), as everywhere users see an id.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(deserializer).map(Self)
                }
            }
        }

        impl $name {
            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(Self)
            }
        }
    };
}

hex_id!(
    /// A 32-byte account address: `blake2b-256(0x00 ‖ ed25519_public_key)`, as on Sui.
    Address
);
hex_id!(
    /// A 32-byte object id: `blake2b-256(tx_digest ‖ u64_le(creation_index))`.
    ObjectId
);

impl Address {
    /// The address of an ed25519 public key: `blake2b-256(0x00 ‖ public_key)`.
    pub fn from_ed25519_public_key(public_key: &[u8; 32]) -> Self {
        Address(blake2b256(&[&[0u8][..], &public_key[..]]))
    }
}

impl ObjectId {
    /// Derives the id of the `creation_index`-th object created by a transaction.
    pub fn derive(tx_digest: &[u8; 32], creation_index: u64) -> Self {
        ObjectId(blake2b256(&[&tx_digest[..], &creation_index.to_le_bytes()[..]]))
    }
}

macro_rules! small_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

impl crate::table::DenseKey for NodeSmallId {
    fn to_index(self) -> u64 {
        self.0
    }
    fn from_index(index: u64) -> Self {
        NodeSmallId(index)
    }
}

impl crate::table::DenseKey for StackSmallId {
    fn to_index(self) -> u64 {
        self.0
    }
    fn from_index(index: u64) -> Self {
        StackSmallId(index)
    }
}

small_id!(
    /// A node's sequential id (SPEC §2).
    NodeSmallId
);
small_id!(
    /// A task's sequential id (SPEC §2).
    TaskSmallId
);
small_id!(
    /// A stack's sequential id (SPEC §2).
    StackSmallId
);
small_id!(
    /// An echelon's id, chosen by the admin.
    EchelonId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::derive(&[7u8; 32], 3);
        let shown = id.to_string();
        assert_eq!(shown.len(), 66);
        assert_eq!(shown.parse::<ObjectId>(), Ok(id));
        assert_eq!("0x12".parse::<ObjectId>(), Err(ParseIdError));
        assert_eq!(
            "0xzz00000000000000000000000000000000000000000000000000000000000000".parse::<Address>(),
            Err(ParseIdError)
        );
    }

    #[test]
    fn ids_are_bytes_in_bcs_and_hex_in_json() {
        let id = Address([0xab; 32]);
        assert_eq!(bcs::to_bytes(&id).unwrap(), vec![0xab; 32]);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), id);
        assert!(serde_json::from_str::<Address>("\"0x12\"").is_err());
        assert_eq!(bcs::from_bytes::<Address>(&[0xab; 32]).unwrap(), id);
    }

    #[test]
    fn derived_ids_differ_by_index() {
        assert_ne!(ObjectId::derive(&[0; 32], 0), ObjectId::derive(&[0; 32], 1));
    }
}
