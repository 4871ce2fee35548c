//! Reading a method's parameters, positional (`[a, b]`) or named (`{"a": …, "b": …}`), with an
//! error message that names the parameter at fault.
//!
//! Each method declares its parameter names in order; [`Args::parse`] lines the request's params
//! up against them (refusing extra positions and unknown names), and [`Args::required`] /
//! [`Args::optional`] read one as a typed value through [`FromParam`]. Absent params, `null`,
//! `[]` and `{}` all mean "none given", and a trailing optional parameter may be left out or
//! `null`.

use atoma_api::EventId as EventIdJson;
use atoma_api::rpc::{filter_from_json, small_id_of, u64_of};
use atoma_contract::{Address, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::{Digest, EventFilter, EventId};
use jsonrpsee::types::Params;
use serde_json::Value;

use crate::error::RpcError;

/// A method's parameters, lined up with its parameter names.
pub(crate) struct Args {
    names: &'static [&'static str],
    values: Vec<Value>,
}

impl Args {
    /// Lines `params` up against `names`.
    pub fn parse(params: &Params<'_>, names: &'static [&'static str]) -> Result<Args, RpcError> {
        let raw: Value = match params.as_str() {
            None => Value::Null,
            Some(text) => serde_json::from_str(text)
                .map_err(|e| RpcError::invalid_params(format!("params are not JSON: {e}")))?,
        };
        let mut values = vec![Value::Null; names.len()];
        match raw {
            Value::Null => {}
            Value::Array(items) => {
                if items.len() > names.len() {
                    return Err(RpcError::invalid_params(format!(
                        "expected at most {} parameters ({}), got {}",
                        names.len(),
                        list(names),
                        items.len()
                    )));
                }
                for (slot, item) in values.iter_mut().zip(items) {
                    *slot = item;
                }
            }
            Value::Object(map) => {
                for (key, value) in map {
                    let index = names.iter().position(|n| *n == key).ok_or_else(|| {
                        RpcError::invalid_params(format!(
                            "unknown parameter `{key}`; expected {}",
                            list(names)
                        ))
                    })?;
                    values[index] = value;
                }
            }
            _ => return Err(RpcError::invalid_params("params must be an array or an object")),
        }
        Ok(Args { names, values })
    }

    /// The `index`-th parameter, which must be given.
    pub fn required<T: FromParam>(&self, index: usize) -> Result<T, RpcError> {
        self.optional(index)?.ok_or_else(|| {
            RpcError::invalid_params(format!(
                "missing parameter `{}`: expected {}",
                self.name(index),
                T::EXPECTED
            ))
        })
    }

    /// The `index`-th parameter, `None` when absent or `null`.
    pub fn optional<T: FromParam>(&self, index: usize) -> Result<Option<T>, RpcError> {
        match self.values.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_param(value).map(Some).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "invalid parameter `{}`: expected {}, got {}",
                    self.name(index),
                    T::EXPECTED,
                    excerpt(value)
                ))
            }),
        }
    }

    /// The `index`-th parameter's raw JSON (`null` when absent).
    pub fn raw(&self, index: usize) -> &Value {
        self.values.get(index).unwrap_or(&Value::Null)
    }

    /// The `index`-th parameter's name.
    pub fn name(&self, index: usize) -> &'static str {
        self.names.get(index).copied().unwrap_or("?")
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "no parameters".into();
    }
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// The start of a value as JSON, for error messages (never the whole of a large value).
fn excerpt(value: &Value) -> String {
    const MAX: usize = 80;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A type a parameter can be read as.
pub(crate) trait FromParam: Sized {
    /// What the parameter should look like, for error messages.
    const EXPECTED: &'static str;
    /// The value, or `None` when it does not fit.
    fn from_param(value: &Value) -> Option<Self>;
}

impl FromParam for u64 {
    const EXPECTED: &'static str = "a u64 as a number or a decimal string";
    fn from_param(value: &Value) -> Option<Self> {
        u64_of(value)
    }
}

impl FromParam for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_param(value: &Value) -> Option<Self> {
        value.as_bool()
    }
}

impl FromParam for String {
    const EXPECTED: &'static str = "a string";
    fn from_param(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_string)
    }
}

impl FromParam for Address {
    const EXPECTED: &'static str = "an address: 0x followed by 64 hex digits";
    fn from_param(value: &Value) -> Option<Self> {
        value.as_str()?.parse().ok()
    }
}

impl FromParam for Digest {
    const EXPECTED: &'static str = "a digest: 32 bytes in base58";
    fn from_param(value: &Value) -> Option<Self> {
        value.as_str()?.parse().ok()
    }
}

macro_rules! small_id_param {
    ($($t:ident => $what:literal),+) => {$(
        impl FromParam for $t {
            const EXPECTED: &'static str =
                concat!("a ", $what, " small id: a number, a decimal string or {\"inner\": \"7\"}");
            fn from_param(value: &Value) -> Option<Self> {
                small_id_of(value).map($t)
            }
        }
    )+};
}
small_id_param!(NodeSmallId => "node", TaskSmallId => "task", StackSmallId => "stack");

impl FromParam for EventId {
    const EXPECTED: &'static str = "an event id: {\"txDigest\": base58, \"eventSeq\": \"0\"}";
    fn from_param(value: &Value) -> Option<Self> {
        let id: EventIdJson = serde_json::from_value(value.clone()).ok()?;
        let tx_digest = Digest(id.tx_digest_bytes().ok()?);
        Some(EventId { tx_digest, event_seq: id.event_seq })
    }
}

/// An event filter; its errors are better said by [`filter_from_json`], see [`Args::filter`].
impl Args {
    /// The `index`-th parameter as an event filter (`All` when absent).
    pub fn filter(&self, index: usize) -> Result<EventFilter, RpcError> {
        filter_from_json(self.raw(index))
            .map_err(|e| RpcError::invalid_params(format!("invalid parameter `{}`: {e}", self.name(index))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["address", "amount"];

    fn args(json: &str) -> Result<Args, RpcError> {
        Args::parse(&Params::new(Some(json)), NAMES)
    }

    #[test]
    fn positional_and_named_params_line_up() {
        let address = format!("0x{}", "ab".repeat(32));
        for json in [format!(r#"["{address}", "5"]"#), format!(r#"{{"amount": 5, "address": "{address}"}}"#)]
        {
            let a = args(&json).unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(a.required::<Address>(0).ok(), Some(Address([0xab; 32])));
            assert_eq!(a.optional::<u64>(1).ok(), Some(Some(5)));
        }
        let a = args(&format!(r#"["{address}"]"#)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.optional::<u64>(1).ok(), Some(None));
        let none = Args::parse(&Params::new(None), NAMES).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(none.required::<Address>(0).unwrap_err().message.contains("missing parameter `address`"));
    }

    #[test]
    fn bad_params_name_the_culprit() {
        let message = |r: Result<Args, RpcError>| r.err().map(|e| e.message).unwrap_or_default();
        assert!(message(args("[1, 2, 3]")).contains("at most 2 parameters"));
        assert!(message(args(r#"{"adress": 1}"#)).contains("unknown parameter `adress`"));
        assert!(message(args("7")).contains("array or an object"));
        let a = args(r#"["0x12", -1]"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(a.required::<Address>(0).unwrap_err().message.contains("invalid parameter `address`"));
        assert!(a.optional::<u64>(1).unwrap_err().message.contains("invalid parameter `amount`"));
    }
}
