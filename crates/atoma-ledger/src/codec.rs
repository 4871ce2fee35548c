//! Decoding the ledger's own records read back from disk. (Encoding, and the byte-string serde
//! form, are `atoma_types::codec`'s.)

use serde::de::DeserializeOwned;

pub(crate) use atoma_types::codec::encode;

use crate::error::ChainError;

/// Decodes a record read from disk; `what` names it in the error.
pub(crate) fn decode_stored<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ChainError> {
    bcs::from_bytes(bytes).map_err(|e| ChainError::corrupt(format!("{what} does not decode: {e}")))
}
