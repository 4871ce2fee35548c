//! Contract errors as JSON (SPEC §13): `{"name": "ETaskNotFound", "code": 312012017, "message": "…"}`.
//!
//! The CLI prints this object under `"error"`; the RPC puts it in the JSON-RPC error's `data`.

use atoma_contract::ContractError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A contract error as the RPC and CLI show it. `code` is a JSON number (it fits easily).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ErrorView {
    /// The stable name, such as `ETaskNotFound`.
    pub name: String,
    /// `312012000 + n` (SPEC §11).
    pub code: u64,
    /// A sentence for humans.
    pub message: String,
}

impl From<ContractError> for ErrorView {
    fn from(e: ContractError) -> Self {
        ErrorView { name: e.name().to_string(), code: e.code(), message: e.message().to_string() }
    }
}

impl ErrorView {
    /// The contract error this names, when both its name and its number are known to this build.
    pub fn contract_error(&self) -> Option<ContractError> {
        ContractError::from_name(&self.name).filter(|e| e.code() == self.code)
    }
}

/// `{"name": …, "code": …, "message": …}` for `e`.
pub fn error_json(e: ContractError) -> Value {
    let view = ErrorView::from(e);
    let mut map = serde_json::Map::new();
    map.insert("name".to_string(), Value::String(view.name));
    map.insert("code".to_string(), Value::from(view.code));
    map.insert("message".to_string(), Value::String(view.message));
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_matches_spec_example() {
        let v = error_json(ContractError::ETaskNotFound);
        assert_eq!(v["name"], "ETaskNotFound");
        assert_eq!(v["code"], 312_012_017u64);
        assert_eq!(v["message"], ContractError::ETaskNotFound.message());
        let keys: Vec<_> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["name", "code", "message"]);
    }

    #[test]
    fn every_error_round_trips_through_json() {
        for e in ContractError::ALL {
            let view: ErrorView = serde_json::from_value(error_json(*e)).expect("error JSON parses");
            assert_eq!(view.contract_error(), Some(*e));
            assert_eq!(serde_json::to_value(&view).ok(), Some(error_json(*e)));
        }
    }

    #[test]
    fn unknown_or_mismatched_errors_are_not_guessed() {
        let view = ErrorView { name: "ETaskNotFound".into(), code: 312_012_018, message: String::new() };
        assert_eq!(view.contract_error(), None);
        let view = ErrorView { name: "ENoSuchThing".into(), code: 312_012_017, message: String::new() };
        assert_eq!(view.contract_error(), None);
    }
}
