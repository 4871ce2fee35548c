//! Settlement commitments from the requests a node served (SPEC §6.3), for `--outputs FILE`.
//!
//! The file is a JSON array with one object per request of the stack, in the order served:
//!
//! ```json
//! [{"input": "What is 2+2?", "output": "4"},
//!  {"inputHex": "00ff", "outputHex": "0102"}]
//! ```
//!
//! `input`/`output` are UTF-8 text; `inputHex`/`outputHex` give raw bytes in hex. What a party
//! submits is computed from these by `atoma_contract::commitment::party_commitment`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{CliError, CliErrorKind, CliResult};
use crate::format::parse_hex;

/// The largest outputs file read: 64 MiB.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One request as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RequestJson {
    input: Option<String>,
    output: Option<String>,
    input_hex: Option<String>,
    output_hex: Option<String>,
}

/// A stack's requests, as `(input, output)` byte pairs.
pub type Requests = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads an outputs file.
///
/// # Errors
/// `EFile` when it cannot be read or is not in the format above.
pub fn read(path: &Path) -> CliResult<Requests> {
    let bad = |what: String| CliError::new(CliErrorKind::EFile, format!("{}: {what}", path.display()));
    let size = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
    if size > MAX_FILE_BYTES {
        return Err(bad(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    parse(&text).map_err(bad)
}

/// Parses the JSON text of an outputs file.
///
/// # Errors
/// A message saying which request is malformed.
pub fn parse(text: &str) -> Result<Requests, String> {
    let requests: Vec<RequestJson> = serde_json::from_str(text)
        .map_err(|e| format!("expected a JSON array of {{\"input\": …, \"output\": …}} objects: {e}"))?;
    requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let input = bytes(r.input, r.input_hex).map_err(|e| format!("request {i}: input: {e}"))?;
            let output = bytes(r.output, r.output_hex).map_err(|e| format!("request {i}: output: {e}"))?;
            Ok((input, output))
        })
        .collect()
}

fn bytes(text: Option<String>, hex: Option<String>) -> Result<Vec<u8>, String> {
    match (text, hex) {
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(hex)) => parse_hex(&hex),
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => Err("give the text or the hex, not both".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_hex_requests_are_read() {
        let requests =
            parse(r#"[{"input": "hi", "output": "yo"}, {"inputHex": "00ff", "outputHex": ""}, {}]"#)
                .expect("valid file");
        assert_eq!(requests[0], (b"hi".to_vec(), b"yo".to_vec()));
        assert_eq!(requests[1], (vec![0, 255], Vec::new()));
        assert_eq!(requests[2], (Vec::new(), Vec::new()));
        assert!(parse(r#"[{"input": "a", "inputHex": "00"}]"#).is_err());
        assert!(parse(r#"[{"prompt": "a"}]"#).is_err());
        assert!(parse(r#"{"input": "a"}"#).is_err());
    }
}
