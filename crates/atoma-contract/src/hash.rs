//! blake2b-256, the one hash of the protocol (SPEC §2).

use blake2::{Blake2b256, Digest};

/// blake2b-256 over the concatenation of `parts`.
pub fn blake2b256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Blake2b256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_matches_reference_vector() {
        // blake2b-256("") from RFC 7693's reference implementation.
        let expected = "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";
        let got: String = blake2b256(&[]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn parts_concatenate() {
        assert_eq!(blake2b256(&[b"ab", b"c"]), blake2b256(&[b"abc"]));
    }
}
