//! serde helpers for the value conventions of SPEC §10 in RPC responses, and the lenient readers
//! the parameters share with them.
//!
//! Serializing writes the one canonical form (a `u64` as a decimal string, ids as `0x` hex,
//! digests in base58); deserializing accepts what JSON tools produce (a `u64` as a string or a
//! number). `atoma-api` keeps its own helpers private, so the few needed here are repeated.

use core::fmt;
use core::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use serde_json::Value;

/// A `u64` read from a JSON number or a decimal string (no sign, no fraction, no spaces).
pub(crate) fn u64_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => decimal(s),
        _ => None,
    }
}

/// A decimal string of digits only, as a `u64`.
pub(crate) fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A `u64` as a decimal string; read from a string or a number.
pub(crate) mod u64_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64Visitor)
    }

    struct U64Visitor;

    impl Visitor<'_> for U64Visitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a u64 as a decimal string or a number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom("negative number"))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            decimal(v).ok_or_else(|| E::custom(format!("not a u64: {v:?}")))
        }
    }
}

/// An optional `u64`: `null` or a decimal string.
pub(crate) mod opt_u64_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => u64_of(&v).map(Some).ok_or_else(|| de::Error::custom(format!("not a u64: {v}"))),
        }
    }
}

/// A value written with `Display` and read with `FromStr`: addresses and object ids (`0x` hex),
/// digests (base58).
pub(crate) mod text {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e| de::Error::custom(format!("{e}: {text:?}")))
    }
}

/// A list of values written with `Display` and read with `FromStr`.
pub(crate) mod text_vec {
    use super::*;
    use serde::ser::SerializeSeq;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&item.to_string())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| text.parse().map_err(|e| de::Error::custom(format!("{e}: {text:?}"))))
            .collect()
    }
}

/// Bytes as standard base64 (with padding), as Sui sends transaction bytes.
pub(crate) mod base64_bytes {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(|e| de::Error::custom(format!("not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn u64_readers_accept_numbers_and_digit_strings_only() {
        assert_eq!(u64_of(&json!(7)), Some(7));
        assert_eq!(u64_of(&json!("18446744073709551615")), Some(u64::MAX));
        for bad in [json!(-1), json!(1.5), json!("+1"), json!(" 1"), json!(""), json!("18446744073709551616")]
        {
            assert_eq!(u64_of(&bad), None, "{bad}");
        }
    }
}
