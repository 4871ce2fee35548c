//! One client's connection to the node, over HTTP or WebSocket, and how a failed call is named.
//!
//! The load generator speaks JSON-RPC itself instead of going through `atoma_rpc::Client`
//! because it needs two things the typed client does not give: a WebSocket transport for
//! ordinary calls (one connection carries a client's whole pipeline, where HTTP/1.1 needs one
//! connection — and one of the server's connection slots — per request in flight), and the
//! HTTP status of a refused request (`429` when the server's connection limit is reached), which
//! is a "busy, retry" answer rather than a broken connection.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use atoma_api::ErrorView;
use atoma_api::rpc::{
    ChainInfoView, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESPONSE_BODY_BYTES, NonceView,
    TransactionResult, codes,
};
use atoma_contract::Address;
use atoma_types::{Digest, SignedTransaction};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonrpsee::core::client::{ClientT, Error as JsonRpcError};
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

/// How clients reach the node.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Transport {
    /// One WebSocket connection per client; its pipelined requests share it.
    #[default]
    WebSocket,
    /// HTTP `POST`s; every request in flight holds its own connection (HTTP/1.1).
    Http,
}

impl Transport {
    /// `"ws"` or `"http"`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "ws",
            Transport::Http => "http",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ws" | "websocket" => Ok(Transport::WebSocket),
            "http" => Ok(Transport::Http),
            other => Err(format!("unknown transport {other:?}: expected ws or http")),
        }
    }
}

/// Why one call failed.
#[derive(Clone, Debug)]
pub(crate) enum CallError {
    /// The server answered with a JSON-RPC error.
    Rpc { code: i32, data: Option<ErrorView>, message: String },
    /// The server refused the HTTP request with this status (429: connection limit).
    Http(u16),
    /// The request timed out: the server may or may not have acted on it.
    Timeout,
    /// The connection failed or broke: the server may or may not have acted on it.
    Transport(String),
    /// The answer did not have the expected shape.
    Decode(String),
}

/// What the caller should do about a failed call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Retry {
    /// Busy (a full mempool, the connection limit): nothing happened; send it again later.
    Busy,
    /// `ENonceFuture`: an earlier nonce of the same sender has not been admitted yet (requests
    /// in flight may overtake each other on the server); nothing happened; send it again.
    NotYet,
    /// The request may or may not have reached the mempool; find out before giving up.
    Unknown,
    /// A final answer.
    No,
}

impl CallError {
    fn from_jsonrpc(e: JsonRpcError) -> Self {
        match e {
            JsonRpcError::Call(object) => CallError::Rpc {
                code: object.code(),
                data: object.data().and_then(|raw| serde_json::from_str::<ErrorView>(raw.get()).ok()),
                message: object.message().to_string(),
            },
            JsonRpcError::RequestTimeout => CallError::Timeout,
            JsonRpcError::ParseError(e) => CallError::Decode(e.to_string()),
            JsonRpcError::Transport(inner) => {
                use jsonrpsee::client_transport::ws::WsHandshakeError;
                use jsonrpsee_http_client::transport::Error as HttpError;
                if let Some(HttpError::Rejected { status_code }) = inner.downcast_ref::<HttpError>() {
                    CallError::Http(*status_code)
                } else if let Some(WsHandshakeError::Rejected { status_code }) =
                    inner.downcast_ref::<WsHandshakeError>()
                {
                    CallError::Http(*status_code)
                } else {
                    CallError::Transport(inner.to_string())
                }
            }
            other => CallError::Transport(other.to_string()),
        }
    }

    /// A short stable name for counting: the named error behind a JSON-RPC error
    /// (`EMempoolFull`, `ENonceUsed`, …), else `rpc -32601`, `HTTP 429`, `timeout`, `transport`,
    /// `decode`.
    pub(crate) fn name(&self) -> String {
        match self {
            CallError::Rpc { data: Some(view), .. } => view.name.clone(),
            CallError::Rpc { code: codes::SERVER_BUSY, .. } => "busy".into(),
            CallError::Rpc { code, .. } => format!("rpc {code}"),
            CallError::Http(status) => format!("HTTP {status}"),
            CallError::Timeout => "timeout".into(),
            CallError::Transport(_) => "transport".into(),
            CallError::Decode(_) => "decode".into(),
        }
    }

    pub(crate) fn retry(&self) -> Retry {
        match self {
            CallError::Rpc { code: codes::SERVER_BUSY, .. } => Retry::Busy,
            CallError::Http(429 | 503) => Retry::Busy,
            CallError::Rpc { data: Some(view), .. } if view.name == "ENonceFuture" => Retry::NotYet,
            CallError::Timeout | CallError::Transport(_) => Retry::Unknown,
            _ => Retry::No,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rpc { code, message, .. } => write!(f, "{message} (JSON-RPC error {code})"),
            CallError::Http(status) => write!(f, "the server refused the request with HTTP {status}"),
            CallError::Timeout => f.write_str("the request timed out"),
            CallError::Transport(e) => write!(f, "connection failed: {e}"),
            CallError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

/// Positional parameters.
struct Positional(Vec<Value>);

impl ToRpcParams for Positional {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

/// A client's connection. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) struct Conn {
    inner: Arc<Inner>,
}

enum Inner {
    Http(HttpClient),
    /// Reconnects when the connection broke.
    Ws {
        url: String,
        timeout: Duration,
        client: Mutex<Arc<WsClient>>,
    },
}

impl Conn {
    /// Connects to `url` (`http://host:port`; the `ws://` form is derived for WebSocket). A
    /// WebSocket handshake refused as busy (the server's connection limit) is tried again for up
    /// to `retry_for`.
    pub(crate) async fn open(
        url: &str,
        transport: Transport,
        timeout: Duration,
        retry_for: Duration,
    ) -> Result<Self, CallError> {
        let (http_url, ws_url) = urls(url).ok_or_else(|| {
            CallError::Transport(format!("invalid RPC URL {url:?}: expected http:// or ws://"))
        })?;
        let inner = match transport {
            Transport::Http => Inner::Http(
                HttpClientBuilder::default()
                    .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
                    .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
                    .request_timeout(timeout)
                    .build(&http_url)
                    .map_err(CallError::from_jsonrpc)?,
            ),
            Transport::WebSocket => {
                let start = std::time::Instant::now();
                let client = loop {
                    match ws_connect(&ws_url, timeout).await {
                        Err(e) if e.retry() == Retry::Busy && start.elapsed() < retry_for => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => break other?,
                    }
                };
                Inner::Ws { url: ws_url, timeout, client: Mutex::new(Arc::new(client)) }
            }
        };
        Ok(Conn { inner: Arc::new(inner) })
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, params: Vec<Value>) -> Result<T, CallError> {
        let value: Value = match &*self.inner {
            Inner::Http(http) => http.request(method, Positional(params)).await,
            Inner::Ws { .. } => self.ws().await?.request(method, Positional(params)).await,
        }
        .map_err(CallError::from_jsonrpc)?;
        serde_json::from_value(value).map_err(|e| CallError::Decode(format!("{method}: {e}")))
    }

    /// The WebSocket client, reconnected first if the connection broke.
    async fn ws(&self) -> Result<Arc<WsClient>, CallError> {
        let Inner::Ws { url, timeout, client } = &*self.inner else {
            unreachable!("only called on WebSocket connections")
        };
        let mut current = client.lock().await;
        if !current.is_connected() {
            *current = Arc::new(ws_connect(url, *timeout).await?);
        }
        Ok(Arc::clone(&current))
    }

    pub(crate) async fn execute(&self, signed: &SignedTransaction) -> Result<TransactionResult, CallError> {
        let params = vec![
            Value::String(STANDARD.encode(&signed.tx_bytes)),
            Value::String(STANDARD.encode(&signed.signature)),
        ];
        self.call("atoma_executeTransaction", params).await
    }

    pub(crate) async fn transaction(&self, digest: &Digest) -> Result<TransactionResult, CallError> {
        self.call("atoma_getTransaction", vec![Value::String(digest.to_string())]).await
    }

    pub(crate) async fn chain_info(&self) -> Result<ChainInfoView, CallError> {
        self.call("atoma_getChainInfo", vec![]).await
    }

    pub(crate) async fn nonce(&self, address: &Address) -> Result<u64, CallError> {
        let view: NonceView = self.call("atoma_getNonce", vec![Value::String(address.to_string())]).await?;
        Ok(view.nonce)
    }

    pub(crate) async fn faucet(
        &self,
        address: &Address,
        amount: u64,
    ) -> Result<TransactionResult, CallError> {
        let params = vec![Value::String(address.to_string()), Value::String(amount.to_string())];
        self.call("atoma_faucet", params).await
    }

    pub(crate) async fn advance_epoch(&self) -> Result<Value, CallError> {
        self.call("atoma_advanceEpoch", vec![]).await
    }

    /// The contract's configuration as JSON (`atoma_getDb`'s `config`).
    pub(crate) async fn contract_config(&self) -> Result<Value, CallError> {
        let mut db: Value = self.call("atoma_getDb", vec![]).await?;
        Ok(db["config"].take())
    }
}

async fn ws_connect(url: &str, timeout: Duration) -> Result<WsClient, CallError> {
    WsClientBuilder::default()
        .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
        .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
        .request_timeout(timeout)
        .connection_timeout(timeout)
        .build(url)
        .await
        .map_err(CallError::from_jsonrpc)
}

/// The HTTP and WebSocket forms of an RPC URL.
fn urls(url: &str) -> Option<(String, String)> {
    [("http://", "ws://"), ("https://", "wss://")].into_iter().find_map(|(http, ws)| {
        let rest = url.strip_prefix(http).or_else(|| url.strip_prefix(ws))?;
        Some((format!("{http}{rest}"), format!("{ws}{rest}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_derive_the_other_scheme() {
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(urls("http://127.0.0.1:9000"), pair("http://127.0.0.1:9000", "ws://127.0.0.1:9000"));
        assert_eq!(urls("ws://h:1/x"), pair("http://h:1/x", "ws://h:1/x"));
        assert_eq!(urls("127.0.0.1:9000"), None);
    }

    #[test]
    fn errors_are_named_and_classified() {
        let busy = CallError::Rpc {
            code: codes::SERVER_BUSY,
            data: Some(ErrorView { name: "EMempoolFull".into(), code: 312_013_006, message: String::new() }),
            message: String::new(),
        };
        assert_eq!((busy.name(), busy.retry()), ("EMempoolFull".into(), Retry::Busy));
        let future = CallError::Rpc {
            code: codes::TRANSACTION_REJECTED,
            data: Some(ErrorView { name: "ENonceFuture".into(), code: 312_013_003, message: String::new() }),
            message: String::new(),
        };
        assert_eq!(future.retry(), Retry::NotYet);
        assert_eq!(
            (CallError::Http(429).name(), CallError::Http(429).retry()),
            ("HTTP 429".into(), Retry::Busy)
        );
        assert_eq!(CallError::Timeout.retry(), Retry::Unknown);
        let unknown = CallError::Rpc { code: -32601, data: None, message: String::new() };
        assert_eq!((unknown.name(), unknown.retry()), ("rpc -32601".into(), Retry::No));
    }
}
