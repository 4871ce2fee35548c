//! serde helpers for the value conventions of SPEC §10, used by the views, the envelope and the
//! RPC's result shapes ([`crate::rpc`]), and the lenient readers the RPC's parameters share with
//! them.
//!
//! Each submodule is meant for `#[serde(with = "…")]`. Serializing writes the one canonical
//! form; deserializing is lenient where JSON tools are (a `u64` may come as a string or a number)
//! and strict where a wrong value would be silently misread (ids must be `0x` + 64 hex digits).

use core::fmt;
use core::str::FromStr;

use atoma_contract::{EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A `u64` read from a JSON number or a decimal string (no sign, no fraction, no spaces), as the
/// RPC's parameters accept it.
pub fn u64_of(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => decimal(s).and_then(|v| u64::try_from(v).ok()),
        _ => None,
    }
}

/// A string of decimal digits only (the wire format never has a sign or spaces), as a number;
/// `None` for anything else or a value beyond `u128`.
fn decimal(text: &str) -> Option<u128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A `u64` or `u128` written as a decimal string, read from a string or a number.
pub(crate) mod u64_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = d.deserialize_any(DecimalVisitor)?;
        u64::try_from(v).map_err(|_| de::Error::custom("number does not fit in u64"))
    }
}

/// Like [`u64_str`], for the `u128` sums of the audit.
pub(crate) mod u128_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        d.deserialize_any(DecimalVisitor)
    }
}

/// An optional `u64`: `null` or a decimal string.
pub(crate) mod opt_u64_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(Decimal).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(Option::<Decimal>::deserialize(d)?.map(|v| v.0))
    }
}

/// A `u64` that serializes as a decimal string; the building block of the nested shapes.
#[derive(Clone, Copy)]
struct Decimal(u64);

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        u64_str::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u64_str::deserialize(d).map(Decimal)
    }
}

/// Accepts a non-negative integer as a JSON number or a decimal string.
struct DecimalVisitor;

impl Visitor<'_> for DecimalVisitor {
    type Value = u128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer as a decimal string or a number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u128, E> {
        Ok(u128::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<u128, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u128, E> {
        u128::try_from(v).map_err(|_| E::custom("negative number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u128, E> {
        decimal(v).ok_or_else(|| E::custom(format!("not a decimal integer in range: {v:?}")))
    }
}

/// A value written with `Display` and read with `FromStr`: addresses and object ids (`0x` + 64
/// lowercase hex digits), digests (base58).
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
        parse(String::deserialize(d)?)
    }

    /// `text` read with `FromStr`; the error names the text.
    pub(super) fn parse<T, E>(text: String) -> Result<T, E>
    where
        T: FromStr,
        T::Err: fmt::Display,
        E: de::Error,
    {
        text.parse().map_err(|e| E::custom(format!("{e}: {text:?}")))
    }
}

/// An optional value written with `Display` and read with `FromStr`: `null` or its text.
pub(crate) mod opt_text {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        Option::<String>::deserialize(d)?.map(text::parse).transpose()
    }
}

/// A list of values written with `Display` and read with `FromStr`: `["…", …]`.
pub(crate) mod text_vec {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        Vec::<String>::deserialize(d)?.into_iter().map(text::parse).collect()
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

/// A node, task or stack small id.
pub(crate) trait SmallId: Copy {
    fn to_u64(self) -> u64;
    fn from_u64(v: u64) -> Self;
}

macro_rules! small_id {
    ($($t:ty),+) => {$(
        impl SmallId for $t {
            fn to_u64(self) -> u64 {
                self.0
            }
            fn from_u64(v: u64) -> Self {
                Self(v)
            }
        }
    )+};
}
small_id!(NodeSmallId, TaskSmallId, StackSmallId);

/// A bare `u64` small id, where the id's kind is given by another field.
impl SmallId for u64 {
    fn to_u64(self) -> u64 {
        self
    }
    fn from_u64(v: u64) -> Self {
        v
    }
}

/// `{"inner": "7"}`, the JSON of Sui's small-id structs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inner {
    inner: Decimal,
}

/// A small id as `{"inner": "7"}`.
pub(crate) mod small {
    use super::*;

    pub fn serialize<T: SmallId, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        Inner { inner: Decimal(v.to_u64()) }.serialize(s)
    }

    pub fn deserialize<'de, T: SmallId, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        Inner::deserialize(d).map(|v| T::from_u64(v.inner.0))
    }
}

/// An optional small id: `null` or `{"inner": "7"}`.
pub(crate) mod opt_small {
    use super::*;

    pub fn serialize<T: SmallId, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|v| Inner { inner: Decimal(v.to_u64()) }).serialize(s)
    }

    pub fn deserialize<'de, T: SmallId, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        Ok(Option::<Inner>::deserialize(d)?.map(|v| T::from_u64(v.inner.0)))
    }
}

/// A list of small ids: `[{"inner": "7"}, …]`.
pub(crate) mod small_vec {
    use super::*;

    pub fn serialize<T: SmallId, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|v| Inner { inner: Decimal(v.to_u64()) }))
    }

    pub fn deserialize<'de, T: SmallId, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        Ok(Vec::<Inner>::deserialize(d)?.into_iter().map(|v| T::from_u64(v.inner.0)).collect())
    }
}

/// `{"id": "1"}`, the JSON of an echelon id.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EchelonJson {
    id: Decimal,
}

/// An echelon id as `{"id": "1"}`.
pub(crate) mod echelon {
    use super::*;

    pub fn serialize<S: Serializer>(v: &EchelonId, s: S) -> Result<S::Ok, S::Error> {
        EchelonJson { id: Decimal(v.0) }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EchelonId, D::Error> {
        EchelonJson::deserialize(d).map(|v| EchelonId(v.id.0))
    }
}

#[cfg(test)]
mod tests {
    use atoma_contract::{Address, ObjectId};
    use serde_json::json;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "u64_str")]
        a: u64,
        #[serde(with = "u128_str")]
        b: u128,
        #[serde(with = "opt_u64_str")]
        c: Option<u64>,
        #[serde(with = "text")]
        d: Address,
        #[serde(with = "opt_text")]
        e: Option<ObjectId>,
        #[serde(with = "small")]
        f: NodeSmallId,
        #[serde(with = "opt_small")]
        g: Option<TaskSmallId>,
        #[serde(with = "small_vec")]
        h: Vec<StackSmallId>,
        #[serde(with = "echelon")]
        i: EchelonId,
        #[serde(with = "text_vec")]
        j: Vec<Address>,
        #[serde(with = "base64_bytes")]
        k: Vec<u8>,
    }

    fn sample() -> Sample {
        Sample {
            a: u64::MAX,
            b: u128::MAX,
            c: Some(5),
            d: Address([0xab; 32]),
            e: None,
            f: NodeSmallId(7),
            g: Some(TaskSmallId(8)),
            h: vec![StackSmallId(9), StackSmallId(10)],
            i: EchelonId(2),
            j: vec![Address([1; 32])],
            k: vec![0, 1, 255],
        }
    }

    #[test]
    fn writes_the_spec_shapes_and_reads_them_back() {
        let v = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(
            v,
            json!({
                "a": "18446744073709551615",
                "b": "340282366920938463463374607431768211455",
                "c": "5",
                "d": format!("0x{}", "ab".repeat(32)),
                "e": null,
                "f": {"inner": "7"},
                "g": {"inner": "8"},
                "h": [{"inner": "9"}, {"inner": "10"}],
                "i": {"id": "2"},
                "j": [format!("0x{}", "01".repeat(32))],
                "k": "AAH/",
            })
        );
        assert_eq!(serde_json::from_value::<Sample>(v).ok(), Some(sample()));
    }

    #[test]
    fn reads_numbers_where_strings_are_written() {
        let mut v = serde_json::to_value(sample()).expect("serializes");
        v["a"] = json!(12);
        v["c"] = json!(13);
        v["f"] = json!({"inner": 14});
        let s: Sample = serde_json::from_value(v).expect("numbers are accepted");
        assert_eq!((s.a, s.c, s.f), (12, Some(13), NodeSmallId(14)));
    }

    #[test]
    fn rejects_what_it_would_misread() {
        let bad = [
            ("a", json!("12a")),
            ("a", json!(" 12")),
            ("a", json!(1.5)),
            ("a", json!("18446744073709551616")),
            ("b", json!("-1")),
            ("d", json!("ab".repeat(32))),
            ("d", json!(format!("0x{}", "ab".repeat(31)))),
            ("f", json!({"inner": "1", "extra": "2"})),
            ("f", json!("7")),
            ("i", json!({"inner": "2"})),
            ("j", json!(["0x12"])),
            ("k", json!("not base64!")),
        ];
        for (key, value) in bad {
            let mut v = serde_json::to_value(sample()).expect("serializes");
            v[key] = value.clone();
            assert!(serde_json::from_value::<Sample>(v).is_err(), "accepted {key} = {value}");
        }
    }

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
