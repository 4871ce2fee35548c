//! 32-byte digests of transactions, blocks, states and the genesis, shown in base58 as on Sui.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// A blake2b-256 digest. Shown in base58 (transaction digests, block digests, the chain id).
///
/// Serialized exactly as `struct Digest([u8; 32])` would be. In binary formats (BCS) the 32
/// bytes are written and read as four little-endian `u64`s — the same bytes, in four calls
/// instead of 32; a block header holds up to 1,024 digests and is encoded for every block.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

/// The 32 bytes as four little-endian words.
struct Words([u8; 32]);

impl Serialize for Words {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(4)?;
        for chunk in self.0.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            tuple.serialize_element(&u64::from_le_bytes(word))?;
        }
        tuple.end()
    }
}

struct WordsVisitor;

impl<'de> Visitor<'de> for WordsVisitor {
    type Value = [u8; 32];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("32 bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 32], A::Error> {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            let word: u64 = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Ok(bytes)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_newtype_struct("Digest", &self.0)
        } else {
            serializer.serialize_newtype_struct("Digest", &Words(self.0))
        }
    }
}

struct DigestVisitor;

impl<'de> Visitor<'de> for DigestVisitor {
    type Value = Digest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a digest")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Digest, D::Error> {
        if deserializer.is_human_readable() {
            <[u8; 32]>::deserialize(deserializer).map(Digest)
        } else {
            deserializer.deserialize_tuple(4, WordsVisitor).map(Digest)
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Digest, A::Error> {
        // Formats that write a newtype struct as a one-element sequence.
        seq.next_element::<[u8; 32]>()?.map(Digest).ok_or_else(|| de::Error::invalid_length(0, &self))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct("Digest", DigestVisitor)
    }
}

/// The error returned when a string is not a base58 digest of exactly 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("expected a base58 string of 32 bytes")]
pub struct ParseDigestError;

impl Digest {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base58 form, as shown to users.
    pub fn to_base58(&self) -> String {
        bs58::encode(&self.0).into_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl FromStr for Digest {
    type Err = ParseDigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // A 32-byte value is at most 44 base58 characters; refuse long input before decoding.
        if s.len() > 44 {
            return Err(ParseDigestError);
        }
        let bytes = bs58::decode(s).into_vec().map_err(|_| ParseDigestError)?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| ParseDigestError)?;
        Ok(Digest(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `#[derive(Serialize, Deserialize)]` gave before the words.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Derived(pub [u8; 32]);

    #[test]
    fn encodes_exactly_like_the_derived_form() {
        for seed in 0u8..20 {
            let bytes: [u8; 32] =
                core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(seed.wrapping_mul(101)));
            let (digest, derived) = (Digest(bytes), Derived(bytes));
            let bcs = bcs::to_bytes(&derived).unwrap();
            assert_eq!(bcs::to_bytes(&digest).unwrap(), bcs);
            assert_eq!(bcs::from_bytes::<Digest>(&bcs).unwrap(), digest);
            let json = serde_json::to_string(&derived).unwrap();
            assert_eq!(serde_json::to_string(&digest).unwrap(), json);
            assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), digest);
            let list = vec![digest; 3];
            assert_eq!(
                bcs::to_bytes(&list).unwrap(),
                bcs::to_bytes(&vec![Derived(bytes), Derived(bytes), Derived(bytes)]).unwrap()
            );
        }
        assert!(bcs::from_bytes::<Digest>(&[0u8; 31]).is_err(), "too short");
    }

    #[test]
    fn base58_round_trip() {
        let d = Digest([7; 32]);
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!("".parse::<Digest>(), Err(ParseDigestError));
        assert_eq!("0OIl".parse::<Digest>(), Err(ParseDigestError));
        assert_eq!(Digest([0; 32]).to_string(), "11111111111111111111111111111111");
    }
}
