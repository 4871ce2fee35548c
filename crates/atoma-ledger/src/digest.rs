//! 32-byte digests of transactions, blocks, states and the genesis, shown in base58 as on Sui.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

/// A blake2b-256 digest. Shown in base58 (transaction digests, block digests, the chain id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; 32]);

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

    #[test]
    fn base58_round_trip() {
        let d = Digest([7; 32]);
        assert_eq!(d.to_string().parse::<Digest>(), Ok(d));
        assert_eq!("".parse::<Digest>(), Err(ParseDigestError));
        assert_eq!("0OIl".parse::<Digest>(), Err(ParseDigestError));
        assert_eq!(Digest([0; 32]).to_string(), "11111111111111111111111111111111");
    }
}
