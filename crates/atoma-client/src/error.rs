//! Why a call failed: [`ClientError`], and what a caller can tell from it — the named error behind
//! a JSON-RPC error, whether the same request may succeed later, and the HTTP status of a request
//! the server refused before reading it.

use core::fmt;
use core::ops::Deref;

use atoma_api::ErrorView;
use atoma_api::rpc::codes;
use jsonrpsee::client_transport::ws::WsHandshakeError;
use jsonrpsee::core::client::Error as JsonRpcError;
use jsonrpsee_http_client::transport::Error as HttpError;

/// A JSON-RPC error as the server sent it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RpcErrorObject {
    /// The JSON-RPC code (see [`atoma_api::rpc::codes`]).
    pub code: i32,
    /// The server's message.
    pub message: String,
    /// The ledger, contract or RPC error behind it (`{name, code, message}`), when there is one.
    pub data: Option<ErrorView>,
}

impl fmt::Display for RpcErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (JSON-RPC error {})", self.message, self.code)
    }
}

/// Why a request got no JSON-RPC answer.
///
/// Unless the server refused it by HTTP status ([`TransportError::http_status`]), which it does
/// before reading the request, the server may or may not have acted on it: a transaction may be
/// in the mempool. It reads as its message (`&str`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TransportError {
    /// What went wrong, for humans.
    pub message: String,
    /// The HTTP status the server refused the request or the WebSocket handshake with: 429 when
    /// its connection limit is reached (busy, try again), 413 for a body over its limit.
    pub http_status: Option<u16>,
    /// Whether the request went unanswered for the client's request timeout.
    pub timed_out: bool,
}

impl TransportError {
    /// A failure with no HTTP status and no timeout: the connection could not be made or broke.
    pub fn broken(message: impl Into<String>) -> Self {
        TransportError { message: message.into(), http_status: None, timed_out: false }
    }

    /// The server refused the request or the handshake with HTTP `status`.
    pub fn refused(status: u16) -> Self {
        TransportError {
            message: format!("the server refused the request with HTTP {status}"),
            http_status: Some(status),
            timed_out: false,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message, so that a `Transport` reason reads as text where a `String` was expected.
impl Deref for TransportError {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `http(s)://…` or `ws(s)://…`.
    #[error("invalid RPC URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached, the connection broke, the request timed out, or the
    /// server refused it by HTTP status.
    #[error("cannot reach the RPC server: {0}")]
    Transport(TransportError),
    /// The server answered with a JSON-RPC error.
    #[error("{0}")]
    Rpc(RpcErrorObject),
    /// The server's answer does not have the expected shape.
    #[error("cannot decode the answer of {method}: {reason}")]
    Decode {
        /// The RPC method called.
        method: String,
        /// What did not fit.
        reason: String,
    },
}

impl ClientError {
    /// The named error behind a JSON-RPC error (`ENonceUsed`, `ETaskNotFound`, …), if any.
    pub fn error_view(&self) -> Option<&ErrorView> {
        match self {
            ClientError::Rpc(e) => e.data.as_ref(),
            _ => None,
        }
    }

    /// The name of the error behind a JSON-RPC error, such as `ENonceUsed`.
    pub fn name(&self) -> Option<&str> {
        self.error_view().map(|v| v.name.as_str())
    }

    /// The JSON-RPC code, for [`ClientError::Rpc`].
    pub fn rpc_code(&self) -> Option<i32> {
        match self {
            ClientError::Rpc(e) => Some(e.code),
            _ => None,
        }
    }

    /// The HTTP status the server refused the request (or the WebSocket handshake) with, such as
    /// 429 when its connection limit is reached.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ClientError::Transport(e) => e.http_status,
            _ => None,
        }
    }

    /// Whether the same request may succeed later unchanged because the chain or the server was
    /// busy: `EMempoolFull` (or jsonrpsee's own busy answer), or HTTP 429 / 503. Nothing
    /// happened then.
    pub fn is_retryable(&self) -> bool {
        self.rpc_code() == Some(codes::SERVER_BUSY) || matches!(self.http_status(), Some(429 | 503))
    }

    /// Reads jsonrpsee's error for a call of `method`.
    pub(crate) fn from_jsonrpc(method: &str, e: JsonRpcError) -> Self {
        match e {
            JsonRpcError::Call(object) => {
                let data = object.data().and_then(|raw| serde_json::from_str::<ErrorView>(raw.get()).ok());
                ClientError::Rpc(RpcErrorObject {
                    code: object.code(),
                    message: object.message().to_string(),
                    data,
                })
            }
            JsonRpcError::ParseError(e) => {
                ClientError::Decode { method: method.into(), reason: e.to_string() }
            }
            JsonRpcError::RequestTimeout => ClientError::Transport(TransportError {
                message: JsonRpcError::RequestTimeout.to_string(),
                http_status: None,
                timed_out: true,
            }),
            JsonRpcError::Transport(inner) => ClientError::Transport(TransportError {
                http_status: refused_with(inner.as_ref()),
                message: inner.to_string(),
                timed_out: false,
            }),
            other => ClientError::Transport(TransportError::broken(other.to_string())),
        }
    }
}

/// The HTTP status of a request or handshake the server refused, from the transport's error.
fn refused_with(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<u16> {
    match error.downcast_ref::<HttpError>() {
        Some(HttpError::Rejected { status_code }) => Some(*status_code),
        _ => match error.downcast_ref::<WsHandshakeError>() {
            Some(WsHandshakeError::Rejected { status_code }) => Some(*status_code),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_by_http_status_are_told_apart_from_broken_connections() {
        let http = ClientError::from_jsonrpc(
            "m",
            JsonRpcError::Transport(Box::new(HttpError::Rejected { status_code: 429 })),
        );
        assert_eq!(http.http_status(), Some(429));
        assert!(http.is_retryable());
        assert!(matches!(&http, ClientError::Transport(t) if t.contains("429")), "{http}");
        let ws = ClientError::from_jsonrpc(
            "m",
            JsonRpcError::Transport(Box::new(WsHandshakeError::Rejected { status_code: 503 })),
        );
        assert_eq!(ws.http_status(), Some(503));
        let too_large = ClientError::Transport(TransportError::refused(413));
        assert!(!too_large.is_retryable());
        let broken = ClientError::from_jsonrpc("m", JsonRpcError::Custom("reset".into()));
        assert_eq!(broken.http_status(), None);
        assert!(!broken.is_retryable());
        let late = ClientError::from_jsonrpc("m", JsonRpcError::RequestTimeout);
        assert!(matches!(late, ClientError::Transport(TransportError { timed_out: true, .. })));
    }

    #[test]
    fn json_rpc_errors_keep_their_code_and_name() {
        let data = serde_json::value::to_raw_value(&ErrorView {
            name: "EMempoolFull".into(),
            code: 312_013_006,
            message: "the mempool is full".into(),
        })
        .expect("encodes");
        let object =
            jsonrpsee_ws_client::types::ErrorObjectOwned::owned(codes::SERVER_BUSY, "busy", Some(data));
        let e = ClientError::from_jsonrpc("m", JsonRpcError::Call(object));
        assert_eq!((e.rpc_code(), e.name()), (Some(codes::SERVER_BUSY), Some("EMempoolFull")));
        assert!(e.is_retryable());
    }
}
