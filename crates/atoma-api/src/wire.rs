//! serde helpers for the value conventions of SPEC §10, used by the views and the envelope.
//!
//! Each submodule is meant for `#[serde(with = "…")]`. Serializing writes the one canonical
//! form; deserializing is lenient where JSON tools are (a `u64` may come as a string or a number)
//! and strict where a wrong value would be silently misread (ids must be `0x` + 64 hex digits).

use core::fmt;
use core::str::FromStr;

use atoma_contract::{EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
        // `u128::from_str` accepts a leading `+`; the wire format never has one.
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::custom(format!("not a decimal integer: {v:?}")));
        }
        v.parse().map_err(|_| E::custom(format!("decimal integer out of range: {v:?}")))
    }
}

/// An address or object id as `0x` + 64 lowercase hex digits.
pub(crate) mod hex {
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
        text.parse().map_err(de::Error::custom)
    }
}

/// An optional address or object id: `null` or `0x` hex.
pub(crate) mod opt_hex {
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
        match Option::<String>::deserialize(d)? {
            Some(text) => text.parse().map(Some).map_err(de::Error::custom),
            None => Ok(None),
        }
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
        #[serde(with = "hex")]
        d: Address,
        #[serde(with = "opt_hex")]
        e: Option<ObjectId>,
        #[serde(with = "small")]
        f: NodeSmallId,
        #[serde(with = "opt_small")]
        g: Option<TaskSmallId>,
        #[serde(with = "small_vec")]
        h: Vec<StackSmallId>,
        #[serde(with = "echelon")]
        i: EchelonId,
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
        ];
        for (key, value) in bad {
            let mut v = serde_json::to_value(sample()).expect("serializes");
            v[key] = value.clone();
            assert!(serde_json::from_value::<Sample>(v).is_err(), "accepted {key} = {value}");
        }
    }
}
