//! BCS encoding of the chain's records, and a faster serde form for byte strings.

use serde::Serialize;

/// BCS-encodes a value.
///
/// Every type encoded here is a plain struct, enum, vector or ordered map of bounded size, which
/// BCS always encodes (it fails only past 2^31 elements or on recursive types); a failure would
/// be a bug in the type, not something an input can cause.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bcs::to_bytes(value).expect("chain records are always BCS-encodable")
}

/// `#[serde(with = "atoma_types::codec::bytes")]` on a `Vec<u8>`: encoded exactly like a plain
/// `Vec<u8>` (in BCS a length, then the bytes; in JSON an array of numbers), but decoded with one
/// copy instead of one visit per byte — most of the cost of reading transactions back on replay.
pub mod bytes {
    use serde::de::{Deserializer, Error, SeqAccess, Visitor};
    use serde::ser::Serializer;

    /// Writes the bytes as a byte string.
    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// Reads a byte string, or a sequence of bytes from formats that have no byte strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Bounded by the input: a sequence yields at most one byte per element it holds.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Plain {
        a: Vec<u8>,
    }

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Fast {
        #[serde(with = "super::bytes")]
        a: Vec<u8>,
    }

    #[test]
    fn bytes_encode_like_a_plain_vector() {
        for len in [0usize, 1, 127, 128, 300, 20_000] {
            let a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let plain = bcs::to_bytes(&Plain { a: a.clone() }).unwrap();
            assert_eq!(bcs::to_bytes(&Fast { a: a.clone() }).unwrap(), plain);
            assert_eq!(bcs::from_bytes::<Fast>(&plain).unwrap(), Fast { a: a.clone() });
            let json = serde_json::to_string(&Plain { a: a.clone() }).unwrap();
            assert_eq!(serde_json::to_string(&Fast { a: a.clone() }).unwrap(), json);
            assert_eq!(serde_json::from_str::<Fast>(&json).unwrap(), Fast { a });
        }
        // A non-canonical length prefix (1 written in two bytes) is refused either way.
        assert!(bcs::from_bytes::<Fast>(&[0x81, 0x00, 7]).is_err());
        assert!(bcs::from_bytes::<Plain>(&[0x81, 0x00, 7]).is_err());
    }
}
