//! One client's connection to the node, and how the load generator reads a failed call.
//!
//! The calls go through `atoma_client::Client`: over one WebSocket per client
//! ([`Transport::WebSocket`]), which carries a client's whole pipeline on one connection and one
//! of the server's connection slots, or over HTTP, where every request in flight holds a
//! connection (HTTP/1.1) and a slot of its own. What this module adds is the load generator's
//! reading of failures: a full mempool or a refusal by HTTP status at the connection limit is
//! *busy* (nothing happened; send it again later), `ENonceFuture` is *not yet*, and a timeout or
//! a broken connection leaves it *unknown* whether the transaction reached the mempool.

use std::time::{Duration, Instant};

pub use atoma_client::Transport;
use atoma_client::{Client, ClientError, ClientOptions};

/// Connects to `url` (`http://host:port`; the `ws://` form is derived for WebSocket). A
/// WebSocket handshake refused as busy (the server's connection limit) is tried again for up to
/// `retry_for`.
///
/// # Errors
/// The last failure: an invalid URL, or a WebSocket that could not be opened.
pub(crate) async fn open(
    url: &str,
    transport: Transport,
    request_timeout: Duration,
    retry_for: Duration,
) -> Result<Client, ClientError> {
    let options = ClientOptions { transport, request_timeout };
    let start = Instant::now();
    loop {
        match Client::connect(url, options).await {
            Err(e) if retry(&e) == Retry::Busy && start.elapsed() < retry_for => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
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

/// What to do about `e`.
pub(crate) fn retry(e: &ClientError) -> Retry {
    if e.is_retryable() {
        return Retry::Busy;
    }
    match e {
        ClientError::Rpc(_) if e.name() == Some("ENonceFuture") => Retry::NotYet,
        ClientError::Transport(t) if t.http_status.is_none() => Retry::Unknown,
        _ => Retry::No,
    }
}

/// A short stable name of `e` for counting: the named error behind a JSON-RPC error
/// (`EMempoolFull`, `ENonceUsed`, …), else `busy`, `rpc -32601`, `HTTP 429`, `timeout`,
/// `transport`, `decode`.
pub(crate) fn failure_name(e: &ClientError) -> String {
    match e {
        ClientError::Rpc(object) => match &object.data {
            Some(view) => view.name.clone(),
            None if e.is_retryable() => "busy".into(),
            None => format!("rpc {}", object.code),
        },
        ClientError::Transport(t) => match t.http_status {
            Some(status) => format!("HTTP {status}"),
            None if t.timed_out => "timeout".into(),
            None => "transport".into(),
        },
        ClientError::InvalidUrl { .. } => "transport".into(),
        ClientError::Decode { .. } => "decode".into(),
    }
}

#[cfg(test)]
mod tests {
    use atoma_api::ErrorView;
    use atoma_api::rpc::codes;
    use atoma_client::{RpcErrorObject, TransportError};

    use super::*;

    fn rpc(code: i32, name: Option<&str>) -> ClientError {
        let data = name.map(|n| ErrorView { name: n.into(), code: 0, message: String::new() });
        ClientError::Rpc(RpcErrorObject { code, message: String::new(), data })
    }

    #[test]
    fn errors_are_named_and_classified() {
        let busy = rpc(codes::SERVER_BUSY, Some("EMempoolFull"));
        assert_eq!((failure_name(&busy), retry(&busy)), ("EMempoolFull".into(), Retry::Busy));
        let overloaded = rpc(codes::SERVER_BUSY, None);
        assert_eq!((failure_name(&overloaded), retry(&overloaded)), ("busy".into(), Retry::Busy));
        assert_eq!(retry(&rpc(codes::TRANSACTION_REJECTED, Some("ENonceFuture"))), Retry::NotYet);
        let refused = ClientError::Transport(TransportError::refused(429));
        assert_eq!((failure_name(&refused), retry(&refused)), ("HTTP 429".into(), Retry::Busy));
        let too_large = ClientError::Transport(TransportError::refused(413));
        assert_eq!(retry(&too_large), Retry::No);
        let late =
            ClientError::Transport(TransportError { timed_out: true, ..TransportError::broken("late") });
        assert_eq!((failure_name(&late), retry(&late)), ("timeout".into(), Retry::Unknown));
        let broken = ClientError::Transport(TransportError::broken("reset"));
        assert_eq!((failure_name(&broken), retry(&broken)), ("transport".into(), Retry::Unknown));
        let unknown = rpc(codes::METHOD_NOT_FOUND, None);
        assert_eq!((failure_name(&unknown), retry(&unknown)), ("rpc -32601".into(), Retry::No));
    }
}
