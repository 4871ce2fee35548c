//! The CLI's view of a node: the typed client of `atoma-client`, with every failure turned into a
//! named [`CliError`] and contract refusals of executed transactions turned into errors too.

use atoma_api::rpc::TransactionResult;
use atoma_client::{Client, ClientError};
use atoma_contract::{Address, Call};
use atoma_types::Keypair;

use crate::error::{CliError, CliErrorKind, CliResult};

/// A connection to the node at one URL.
pub struct Rpc {
    client: Client,
    url: String,
}

impl Rpc {
    /// A client of `url` (connects lazily).
    ///
    /// # Errors
    /// `EInvalidArgument` for a URL that is not http(s):// or ws(s)://.
    pub fn new(url: &str) -> CliResult<Self> {
        let client = Client::new(url).map_err(|e| CliError::invalid(e.to_string()))?;
        Ok(Rpc { client, url: url.to_string() })
    }

    /// The typed client, for calls not wrapped here; map its errors with [`Rpc::error`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The named error behind a client failure.
    pub fn error(&self, e: ClientError) -> CliError {
        match e {
            ClientError::Rpc(object) => match object.data {
                Some(view) => CliError::from(view),
                None => CliError::new(
                    CliErrorKind::ERpc,
                    format!("{} (JSON-RPC error {})", object.message, object.code),
                ),
            },
            ClientError::Transport(reason) if is_unreachable(&reason.message) => CliError::no_node(&self.url),
            ClientError::Transport(reason) => CliError::new(
                CliErrorKind::ERpc,
                format!("the node at {} did not answer: {reason}", self.url),
            ),
            ClientError::InvalidUrl { .. } => CliError::invalid(e.to_string()),
            ClientError::Decode { .. } => CliError::new(CliErrorKind::ERpc, e.to_string()),
        }
    }

    /// Maps a client result.
    ///
    /// # Errors
    /// The named error behind the failure.
    pub fn check<T>(&self, result: Result<T, ClientError>) -> CliResult<T> {
        result.map_err(|e| self.error(e))
    }

    /// Signs `call` with `key`, submits it and waits for its block. A contract refusal is an
    /// error here, named by the contract.
    ///
    /// # Errors
    /// The contract's or the ledger's named error; transport errors.
    pub async fn submit(&self, key: &Keypair, call: Call) -> CliResult<TransactionResult> {
        let result = self.check(self.client.sign_and_execute(key, call).await)?;
        succeeded(result)
    }

    /// Sends TOMA from the faucet (local network).
    ///
    /// # Errors
    /// `ENotLocalNetwork`, the contract's errors, transport errors.
    pub async fn faucet(&self, to: &Address, amount: Option<u64>) -> CliResult<TransactionResult> {
        let result = self.check(self.client.faucet(to, amount).await)?;
        succeeded(result)
    }
}

/// The result, or the contract's error when it refused the call.
fn succeeded(result: TransactionResult) -> CliResult<TransactionResult> {
    if result.is_success() {
        return Ok(result);
    }
    let digest = result.digest.to_string();
    let error = result.error.map(CliError::from).unwrap_or_else(|| {
        CliError::new(CliErrorKind::ERpc, format!("transaction {digest} failed without an error"))
    });
    Err(error.with_digest(digest))
}

/// Whether a transport failure means nothing listens at the URL.
fn is_unreachable(reason: &str) -> bool {
    let lower = reason.to_ascii_lowercase();
    ["connect", "refused", "unreachable", "dns", "no route"].iter().any(|w| lower.contains(w))
}
