//! How a client's calls travel: an HTTP `POST` per call, or one WebSocket that carries them all.
//!
//! Over HTTP/1.1 every call in flight holds a connection of its own — and one of the server's
//! connection slots, beyond which it answers HTTP 429. One WebSocket carries any number of calls
//! in flight on one connection and one slot, which is what a client that pipelines many calls
//! (the load generator, an agent) wants. A WebSocket that broke is opened again at the next call.

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use atoma_api::rpc::{DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESPONSE_BODY_BYTES};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::error::ClientError;

/// How long one request may take, submissions (which wait for their block) included, unless
/// [`ClientOptions::request_timeout`] says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How a client's calls travel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    /// One WebSocket connection carries every call, those in flight together.
    WebSocket,
    /// An HTTP `POST` per call; every call in flight holds its own connection (HTTP/1.1).
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

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ws" | "websocket" => Ok(Transport::WebSocket),
            "http" => Ok(Transport::Http),
            other => Err(format!("unknown transport {other:?}: expected ws or http")),
        }
    }
}

/// How [`Client::connect`](crate::Client::connect) makes a client. The default is what
/// [`Client::new`](crate::Client::new) makes: HTTP, [`REQUEST_TIMEOUT`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClientOptions {
    /// How the calls travel. Subscriptions always open a WebSocket of their own.
    pub transport: Transport,
    /// How long one request may take; over WebSocket also how long opening the connection may.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { transport: Transport::Http, request_timeout: REQUEST_TIMEOUT }
    }
}

/// The HTTP and WebSocket forms of an RPC URL given in either.
pub(crate) fn urls(url: &str) -> Option<(String, String)> {
    [("http://", "ws://"), ("https://", "wss://")].into_iter().find_map(|(http, ws)| {
        let rest = url.strip_prefix(http).or_else(|| url.strip_prefix(ws))?;
        Some((format!("{http}{rest}"), format!("{ws}{rest}")))
    })
}

/// Positional parameters.
pub(crate) struct Positional(pub(crate) Vec<Value>);

impl ToRpcParams for Positional {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

/// What carries a client's calls. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub(crate) enum Calls {
    Http(HttpClient),
    WebSocket(Arc<WsCalls>),
}

impl Calls {
    /// HTTP to `url`; connects at the first call.
    pub(crate) fn http(url: &str, timeout: Duration) -> Result<Self, jsonrpsee::core::client::Error> {
        let client = HttpClientBuilder::default()
            .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
            .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
            .request_timeout(timeout)
            .build(url)?;
        Ok(Calls::Http(client))
    }

    /// A WebSocket to `url`, opened now.
    pub(crate) async fn websocket(url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let client = ws_connect(url, timeout).await?;
        Ok(Calls::WebSocket(Arc::new(WsCalls {
            url: url.to_string(),
            timeout,
            current: Mutex::new(Arc::new(client)),
        })))
    }

    pub(crate) fn transport(&self) -> Transport {
        match self {
            Calls::Http(_) => Transport::Http,
            Calls::WebSocket(_) => Transport::WebSocket,
        }
    }

    /// Calls `method` with positional `params`; its result as JSON.
    pub(crate) async fn request(
        &self,
        method: &'static str,
        params: Vec<Value>,
    ) -> Result<Value, ClientError> {
        let answer = match self {
            Calls::Http(http) => http.request(method, Positional(params)).await,
            Calls::WebSocket(ws) => ws.client().await?.request(method, Positional(params)).await,
        };
        answer.map_err(|e| ClientError::from_jsonrpc(method, e))
    }
}

/// One WebSocket for calls, reopened when it broke.
pub(crate) struct WsCalls {
    url: String,
    timeout: Duration,
    current: Mutex<Arc<WsClient>>,
}

impl WsCalls {
    /// The open connection; if it broke, a new one (calls wait meanwhile, so only one is opened).
    async fn client(&self) -> Result<Arc<WsClient>, ClientError> {
        let mut current = self.current.lock().await;
        if !current.is_connected() {
            *current = Arc::new(ws_connect(&self.url, self.timeout).await?);
        }
        Ok(Arc::clone(&current))
    }
}

/// Opens a WebSocket to `url` with the RPC's body limits; `timeout` bounds the handshake and
/// each request.
///
/// # Errors
/// [`ClientError::Transport`], with the HTTP status when the server refused the handshake (429
/// at its connection limit).
pub(crate) async fn ws_connect(url: &str, timeout: Duration) -> Result<WsClient, ClientError> {
    WsClientBuilder::default()
        .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
        .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
        .request_timeout(timeout)
        .connection_timeout(timeout)
        .build(url)
        .await
        .map_err(|e| ClientError::from_jsonrpc("the WebSocket handshake", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_derive_the_other_scheme() {
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(urls("http://127.0.0.1:9000"), pair("http://127.0.0.1:9000", "ws://127.0.0.1:9000"));
        assert_eq!(urls("ws://h:1/x"), pair("http://h:1/x", "ws://h:1/x"));
        assert_eq!(urls("wss://h"), pair("https://h", "wss://h"));
        assert_eq!(urls("127.0.0.1:9000"), None);
    }

    #[test]
    fn transports_read_their_names() {
        for t in [Transport::WebSocket, Transport::Http] {
            assert_eq!(t.name().parse::<Transport>(), Ok(t));
        }
        assert_eq!("websocket".parse::<Transport>(), Ok(Transport::WebSocket));
        assert!("tcp".parse::<Transport>().is_err());
    }
}
