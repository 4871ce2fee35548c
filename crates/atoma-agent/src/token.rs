//! Stack tokens: what a stack's owner gives an OpenAI client as its API key (docs/AGENT.md §3).
//!
//! ```text
//! atoma-stack.<base64url(bcs(StackToken))>.<base64url(signature)>
//! ```
//!
//! The signature is the owner's, in the 97-byte form transactions carry, over the token's BCS
//! bytes in the domain [`DOMAIN`] (`atoma_types::tx::Keypair::sign_in_domain`): it can never
//! authorize a transaction. [`StackToken::parse`] checks the form, the signature, the chain and
//! the expiry; whether the owner owns the stack, and whether the stack is served here, is the
//! agent's to check against the chain.

use atoma_contract::Address;
use atoma_types::Keypair;
use atoma_types::tx::verify_in_domain;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The signing domain of stack tokens.
pub const DOMAIN: &[u8] = b"atoma-stack-token";
/// Every token starts with this.
pub const PREFIX: &str = "atoma-stack.";
/// The longest token accepted (a token is about 200 characters).
pub const MAX_TOKEN_LENGTH: usize = 1_024;

/// What a stack token grants: the use of one stack on one chain, by its owner, until a time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StackToken {
    /// The chain (its genesis digest).
    pub chain_id: [u8; 32],
    /// The stack's small id.
    pub stack: u64,
    /// The stack's owner, who signed the token.
    pub owner: Address,
    /// The last moment the token is good for, in Unix milliseconds.
    pub not_after_ms: u64,
}

/// Why a token is refused. [`TokenError::code`] is the OpenAI-shaped error's `code`.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TokenError {
    /// Not `atoma-stack.<token>.<signature>` with valid base64 and BCS.
    #[error("the API key is not an Atoma stack token (`atoma stack token <stack>` makes one)")]
    Malformed,
    /// The signature is not the owner's over this token.
    #[error("the stack token's signature does not verify for its owner")]
    BadSignature,
    /// The token names another chain.
    #[error("the stack token is for another chain")]
    WrongChain,
    /// The token's time is over.
    #[error("the stack token expired at {0} ms")]
    Expired(u64),
}

impl TokenError {
    /// The error's `code` in the API's answers.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed | TokenError::BadSignature => "invalid_stack_token",
            TokenError::WrongChain => "wrong_chain",
            TokenError::Expired(_) => "token_expired",
        }
    }
}

impl StackToken {
    /// The token's bytes as signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        atoma_types::codec::encode(self)
    }

    /// Signs the token with the owner's key. The key's address must be `owner` for the token to
    /// parse.
    pub fn sign(&self, owner: &Keypair) -> String {
        seal(PREFIX, DOMAIN, &self.to_bytes(), owner)
    }

    /// Parses and checks a token for `chain_id` at `now_ms`.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that fails.
    pub fn parse(token: &str, chain_id: &[u8; 32], now_ms: u64) -> Result<StackToken, TokenError> {
        let parsed: StackToken = open(token, PREFIX, DOMAIN, |t: &StackToken| t.owner)?;
        if parsed.chain_id != *chain_id {
            return Err(TokenError::WrongChain);
        }
        if now_ms > parsed.not_after_ms {
            return Err(TokenError::Expired(parsed.not_after_ms));
        }
        Ok(parsed)
    }
}

/// `<prefix><base64url(bytes)>.<base64url(signature in domain)>`.
fn seal(prefix: &str, domain: &[u8], bytes: &[u8], signer: &Keypair) -> String {
    let signature = signer.sign_in_domain(domain, bytes);
    format!("{prefix}{}.{}", URL_SAFE_NO_PAD.encode(bytes), URL_SAFE_NO_PAD.encode(signature))
}

/// The value [`seal`] sealed, checked: the form, canonical BCS, and the signature of the address
/// `signer` names in it.
fn open<T: Serialize + for<'de> Deserialize<'de>>(
    token: &str,
    prefix: &str,
    domain: &[u8],
    signer: impl FnOnce(&T) -> Address,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LENGTH {
        return Err(TokenError::Malformed);
    }
    let rest = token.strip_prefix(prefix).ok_or(TokenError::Malformed)?;
    let (body, signature) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TokenError::Malformed)?;
    let parsed: T = bcs::from_bytes(&bytes).map_err(|_| TokenError::Malformed)?;
    // One token, one encoding: no trailing bytes, nothing non-canonical.
    if atoma_types::codec::encode(&parsed) != bytes {
        return Err(TokenError::Malformed);
    }
    verify_in_domain(&signature, domain, &bytes, &signer(&parsed)).map_err(|_| TokenError::BadSignature)?;
    Ok(parsed)
}

/// The signing domain of transcript requests.
pub const TRANSCRIPT_DOMAIN: &[u8] = b"atoma-transcript-request";
/// Every transcript request's credential starts with this.
pub const TRANSCRIPT_PREFIX: &str = "atoma-node.";

/// What an attester's or oracle's agent sends to fetch a stack's transcript from the selected
/// node's agent (docs/AGENT.md §6): signed by the key that owns `node`'s badge. The serving agent
/// checks against the chain that `signer` owns `node` and that `node` may see the transcript.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TranscriptRequest {
    /// The chain (its genesis digest).
    pub chain_id: [u8; 32],
    /// The stack whose transcript is asked for.
    pub stack: u64,
    /// The asking node.
    pub node: u64,
    /// The owner of the asking node's badge, who signed.
    pub signer: Address,
    /// The last moment the request is good for, in Unix milliseconds.
    pub not_after_ms: u64,
}

impl TranscriptRequest {
    /// Signs the request with the node owner's key (whose address must be `signer`).
    pub fn sign(&self, signer: &Keypair) -> String {
        seal(TRANSCRIPT_PREFIX, TRANSCRIPT_DOMAIN, &atoma_types::codec::encode(self), signer)
    }

    /// Parses and checks a request for `chain_id` at `now_ms`.
    ///
    /// # Errors
    /// [`TokenError`] naming the first check that fails.
    pub fn parse(text: &str, chain_id: &[u8; 32], now_ms: u64) -> Result<Self, TokenError> {
        let parsed: TranscriptRequest =
            open(text, TRANSCRIPT_PREFIX, TRANSCRIPT_DOMAIN, |r: &Self| r.signer)?;
        if parsed.chain_id != *chain_id {
            return Err(TokenError::WrongChain);
        }
        if now_ms > parsed.not_after_ms {
            return Err(TokenError::Expired(parsed.not_after_ms));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: [u8; 32] = [4; 32];

    fn token(owner: &Keypair) -> StackToken {
        StackToken { chain_id: CHAIN, stack: 12, owner: owner.address(), not_after_ms: 5_000 }
    }

    #[test]
    fn a_signed_token_parses_until_it_expires() {
        let owner = Keypair::test_account(0);
        let signed = token(&owner).sign(&owner);
        assert!(signed.starts_with(PREFIX));
        assert!(signed.len() < MAX_TOKEN_LENGTH);
        assert_eq!(StackToken::parse(&signed, &CHAIN, 5_000), Ok(token(&owner)));
        assert_eq!(StackToken::parse(&signed, &CHAIN, 5_001), Err(TokenError::Expired(5_000)));
        assert_eq!(StackToken::parse(&signed, &[5; 32], 0), Err(TokenError::WrongChain));
    }

    #[test]
    fn forged_and_mangled_tokens_are_refused() {
        let owner = Keypair::test_account(0);
        let thief = Keypair::test_account(1);
        // Signed by someone else in the owner's name.
        let forged = token(&owner).sign(&thief);
        assert_eq!(StackToken::parse(&forged, &CHAIN, 0), Err(TokenError::BadSignature));
        // The body changed after signing (another stack).
        let signed = token(&owner).sign(&owner);
        let other = StackToken { stack: 13, ..token(&owner) };
        let (_, signature) = signed.rsplit_once('.').expect("a signature");
        let swapped = format!("{PREFIX}{}.{signature}", URL_SAFE_NO_PAD.encode(other.to_bytes()));
        assert_eq!(StackToken::parse(&swapped, &CHAIN, 0), Err(TokenError::BadSignature));
        // A transaction's signature is no token's.
        for bad in ["", "sk-abc", "atoma-stack.", "atoma-stack.a.b", "atoma-stack.!!.??"] {
            assert_eq!(StackToken::parse(bad, &CHAIN, 0), Err(TokenError::Malformed), "{bad:?}");
        }
        let long = format!("{signed}{}", "A".repeat(MAX_TOKEN_LENGTH));
        assert_eq!(StackToken::parse(&long, &CHAIN, 0), Err(TokenError::Malformed));
        // Trailing bytes after the BCS token.
        let mut padded = token(&owner).to_bytes();
        padded.push(0);
        let signature = URL_SAFE_NO_PAD.encode(owner.sign_in_domain(DOMAIN, &padded));
        let trailing = format!("{PREFIX}{}.{signature}", URL_SAFE_NO_PAD.encode(&padded));
        assert_eq!(StackToken::parse(&trailing, &CHAIN, 0), Err(TokenError::Malformed));
    }

    #[test]
    fn error_codes_are_the_documented_ones() {
        assert_eq!(TokenError::Malformed.code(), "invalid_stack_token");
        assert_eq!(TokenError::BadSignature.code(), "invalid_stack_token");
        assert_eq!(TokenError::WrongChain.code(), "wrong_chain");
        assert_eq!(TokenError::Expired(1).code(), "token_expired");
    }

    #[test]
    fn transcript_requests_are_signed_by_their_signer_in_their_own_domain() {
        let key = Keypair::test_account(2);
        let request =
            TranscriptRequest { chain_id: CHAIN, stack: 3, node: 4, signer: key.address(), not_after_ms: 10 };
        let signed = request.sign(&key);
        assert_eq!(TranscriptRequest::parse(&signed, &CHAIN, 10), Ok(request.clone()));
        assert_eq!(TranscriptRequest::parse(&signed, &CHAIN, 11), Err(TokenError::Expired(10)));
        let forged = request.sign(&Keypair::test_account(3));
        assert_eq!(TranscriptRequest::parse(&forged, &CHAIN, 0), Err(TokenError::BadSignature));
        // A stack token is no transcript request, and the other way round.
        let stack = token(&key).sign(&key);
        assert_eq!(TranscriptRequest::parse(&stack, &CHAIN, 0), Err(TokenError::Malformed));
        assert_eq!(StackToken::parse(&signed, &CHAIN, 0), Err(TokenError::Malformed));
    }
}
