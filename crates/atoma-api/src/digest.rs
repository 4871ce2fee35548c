//! Transaction digests in base58 (SPEC §10, §12), as Sui shows them.

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// A character outside the bitcoin base58 alphabet.
    #[error("not base58: {0}")]
    NotBase58(String),
    /// Valid base58 that does not decode to exactly 32 bytes.
    #[error("a digest is 32 bytes, this is {0}")]
    WrongLength(usize),
}

/// A 32-byte digest in base58 with the bitcoin alphabet (43 or 44 characters for most digests).
pub fn encode_digest(digest: &[u8; 32]) -> String {
    bs58::encode(digest).into_string()
}

/// Parses a base58 digest written by [`encode_digest`].
///
/// # Errors
/// [`DigestError`] when the text is not base58 or not 32 bytes long.
pub fn decode_digest(text: &str) -> Result<[u8; 32], DigestError> {
    let bytes = bs58::decode(text).into_vec().map_err(|e| DigestError::NotBase58(e.to_string()))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| DigestError::WrongLength(bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_uses_the_bitcoin_alphabet() {
        let digest: [u8; 32] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        let text = encode_digest(&digest);
        assert_eq!(decode_digest(&text), Ok(digest));
        // Bitcoin's alphabet leaves out 0, O, I and l.
        assert!(!text.contains(['0', 'O', 'I', 'l']));
        // Leading zero bytes are kept as leading `1`s.
        assert_eq!(encode_digest(&[0; 32]), "1".repeat(32));
        assert_eq!(decode_digest(&"1".repeat(32)), Ok([0; 32]));
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(decode_digest("0OIl"), Err(DigestError::NotBase58(_))));
        assert_eq!(decode_digest("2"), Err(DigestError::WrongLength(1)));
        assert_eq!(decode_digest(""), Err(DigestError::WrongLength(0)));
    }
}
