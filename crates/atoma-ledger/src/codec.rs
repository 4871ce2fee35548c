//! BCS encoding of the ledger's own records.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LedgerError;

/// BCS-encodes a value.
///
/// Every type encoded here is a plain struct, enum, vector or ordered map of bounded size, which
/// BCS always encodes (it fails only past 2^31 elements or on recursive types); a failure would
/// be a bug in the type, not something an input can cause.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bcs::to_bytes(value).expect("ledger records are always BCS-encodable")
}

/// Decodes a record read from disk; `what` names it in the error.
pub(crate) fn decode_stored<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, LedgerError> {
    bcs::from_bytes(bytes).map_err(|e| LedgerError::ECorruptStore(format!("{what} does not decode: {e}")))
}
