//! Settlement commitments from the requests a node served (SPEC §6.3), for `--outputs FILE`.
//!
//! The file is a JSON array with one object per request of the stack, in the order served:
//!
//! ```json
//! [{"input": "What is 2+2?", "output": "4"},
//!  {"inputHex": "00ff", "outputHex": "0102"}]
//! ```
//!
//! `input`/`output` are UTF-8 text; `inputHex`/`outputHex` give raw bytes in hex. Party `i`
//! (0 = the selected node, 1..=k = the attesters in the order the ticket lists them) computes
//! its leaf with `atoma_contract::commitment`, and every party computes the same proof over the
//! leaves of parties `0..=k` from its own outputs.

use std::path::Path;

use atoma_contract::commitment::{committed_stack_proof, stack_merkle_leaf};
use serde::Deserialize;

use crate::error::{CliError, CliErrorKind, CliResult};
use crate::format::parse_hex;

/// The largest outputs file read: 64 MiB.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The most attester slots a stack can have (the contract caps the count at 16).
const MAX_PARTIES: u64 = 16;

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

/// The `(committed_stack_proof, stack_merkle_leaf)` party `party` submits for a stack with `k`
/// attester slots.
///
/// # Errors
/// `EInvalidArgument` for a party beyond `k` or a `k` above 16; `EFile` for a request longer
/// than 4 GiB.
pub fn for_party(requests: &Requests, party: u64, k: u64) -> CliResult<([u8; 32], [u8; 32])> {
    if k > MAX_PARTIES || party > k {
        return Err(CliError::invalid(format!("party {party} of a stack with {k} attester slots")));
    }
    let too_large = |_| CliError::new(CliErrorKind::EFile, "a request's input or output exceeds 4 GiB");
    let leaves: Vec<[u8; 32]> =
        (0..=k).map(|i| stack_merkle_leaf(i, requests)).collect::<Result<_, _>>().map_err(too_large)?;
    let leaf = leaves
        .get(usize::try_from(party).unwrap_or(usize::MAX))
        .copied()
        .ok_or_else(|| CliError::invalid(format!("party {party} of a stack with {k} attester slots")))?;
    Ok((committed_stack_proof(&leaves), leaf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::commitment::settlement_commitment;

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

    #[test]
    fn the_selected_node_commits_like_the_contract_crate() {
        let requests = vec![(b"q".to_vec(), b"a".to_vec()), (b"q2".to_vec(), b"a2".to_vec())];
        let expected = settlement_commitment(&requests, 2).expect("small");
        assert_eq!(for_party(&requests, 0, 2).ok(), Some(expected));
        let (proof, leaf) = for_party(&requests, 2, 2).expect("party 2 exists");
        assert_eq!(proof, expected.0);
        assert_eq!(leaf, stack_merkle_leaf(2, &requests).expect("small"));
        assert!(for_party(&requests, 3, 2).is_err());
    }
}
