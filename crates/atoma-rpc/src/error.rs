//! How ledger and contract errors become JSON-RPC errors.
//!
//! Every error the server makes carries, when a named error is behind it, that error's
//! `{"name", "code", "message"}` (the `atoma-api` [`ErrorView`]) in the JSON-RPC error's `data`,
//! so the CLI can print it as SPEC §13 shows. The JSON-RPC code says what *kind* of failure it
//! was; the codes, and when each is answered, are in [`atoma_api::rpc::codes`], which clients
//! read too. The RPC's own named errors (not found, no WebSocket, a body too slow) are
//! [`RpcErrorName`]s.

use atoma_api::ErrorView;
use atoma_api::rpc::codes;
use atoma_contract::ContractError;
use atoma_ledger::{ChainError, LedgerError};
use jsonrpsee::types::ErrorObjectOwned;

/// The base of the RPC's own error numbers, next to the contract's `312012000` and the ledger's
/// `312013000` (SPEC §11). Used for not-found errors that have no contract or ledger name.
pub const RPC_ERROR_CODE_BASE: u64 = 312_014_000;

/// The RPC's own named errors: things neither the contract nor the ledger has a name for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RpcErrorName {
    /// No transaction has this digest.
    ETransactionNotFound,
    /// No block has this height (yet).
    EBlockNotFound,
    /// Subscriptions live on a WebSocket connection; plain HTTP has nowhere to push events.
    ESubscriptionNeedsWebSocket,
    /// The request's body did not arrive whole within [`crate::RpcConfig::request_body_timeout`].
    ERequestBodyTimeout,
    /// The server holds [`crate::RpcConfig::max_connections`] connections already (HTTP 429).
    ETooManyConnections,
    /// The peer's address holds [`crate::RpcConfig::max_connections_per_address`] connections
    /// already (HTTP 429).
    ETooManyConnectionsFromAddress,
    /// The peer's address holds [`crate::RpcConfig::max_subscriptions_per_address`]
    /// subscriptions already.
    ETooManySubscriptionsFromAddress,
    /// The peer left more than [`crate::RpcConfig::ws_send_buffer_bytes`] unread: its WebSocket
    /// is closed (code 1008, this name as the reason).
    ESendBufferFull,
}

impl RpcErrorName {
    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            RpcErrorName::ETransactionNotFound => "ETransactionNotFound",
            RpcErrorName::EBlockNotFound => "EBlockNotFound",
            RpcErrorName::ESubscriptionNeedsWebSocket => "ESubscriptionNeedsWebSocket",
            RpcErrorName::ERequestBodyTimeout => "ERequestBodyTimeout",
            RpcErrorName::ETooManyConnections => "ETooManyConnections",
            RpcErrorName::ETooManyConnectionsFromAddress => "ETooManyConnectionsFromAddress",
            RpcErrorName::ETooManySubscriptionsFromAddress => "ETooManySubscriptionsFromAddress",
            RpcErrorName::ESendBufferFull => "ESendBufferFull",
        }
    }

    /// `312014000 + n`; numbers are never reused.
    pub fn code(self) -> u64 {
        RPC_ERROR_CODE_BASE
            + match self {
                RpcErrorName::ETransactionNotFound => 0,
                RpcErrorName::EBlockNotFound => 1,
                RpcErrorName::ESubscriptionNeedsWebSocket => 2,
                RpcErrorName::ERequestBodyTimeout => 3,
                RpcErrorName::ETooManyConnections => 4,
                RpcErrorName::ETooManyConnectionsFromAddress => 5,
                RpcErrorName::ETooManySubscriptionsFromAddress => 6,
                RpcErrorName::ESendBufferFull => 7,
            }
    }

    /// A sentence for humans.
    pub fn message(self) -> &'static str {
        match self {
            RpcErrorName::ETransactionNotFound => "no transaction has this digest",
            RpcErrorName::EBlockNotFound => "no block has this height",
            RpcErrorName::ESubscriptionNeedsWebSocket => {
                "subscriptions need a WebSocket connection (ws://…); plain HTTP cannot push events"
            }
            RpcErrorName::ERequestBodyTimeout => {
                "the request body did not arrive in time; the connection is closed"
            }
            RpcErrorName::ETooManyConnections => {
                "the server serves as many connections as it may; retry later"
            }
            RpcErrorName::ETooManyConnectionsFromAddress => {
                "your address holds as many connections and requests in flight as it may; retry when one ends"
            }
            RpcErrorName::ETooManySubscriptionsFromAddress => {
                "your address holds as many subscriptions as it may; end one first"
            }
            RpcErrorName::ESendBufferFull => {
                "the connection left more unread than its send buffer holds; it is closed — subscribe again with `from` to resume"
            }
        }
    }

    /// The JSON-RPC error code it is answered under.
    pub fn json_rpc_code(self) -> i32 {
        match self {
            RpcErrorName::ETransactionNotFound | RpcErrorName::EBlockNotFound => codes::NOT_FOUND,
            RpcErrorName::ESubscriptionNeedsWebSocket => codes::METHOD_NOT_FOUND,
            RpcErrorName::ERequestBodyTimeout => codes::INVALID_REQUEST,
            RpcErrorName::ETooManyConnections
            | RpcErrorName::ETooManyConnectionsFromAddress
            | RpcErrorName::ESendBufferFull => codes::SERVER_BUSY,
            RpcErrorName::ETooManySubscriptionsFromAddress => codes::TOO_MANY_SUBSCRIPTIONS,
        }
    }

    /// `{name, code, message}`.
    pub fn view(self) -> ErrorView {
        ErrorView { name: self.name().into(), code: self.code(), message: self.message().into() }
    }
}

/// An error the server answers a request with.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct RpcError {
    pub code: i32,
    pub message: String,
    pub data: Option<ErrorView>,
}

impl RpcError {
    pub fn invalid_params(message: impl Into<String>) -> Self {
        RpcError { code: codes::INVALID_PARAMS, message: message.into(), data: None }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        RpcError { code: codes::INTERNAL_ERROR, message: message.into(), data: None }
    }

    /// A not-found error named by the contract, such as `ETaskNotFound`.
    pub fn not_found(error: ContractError) -> Self {
        Self::named(codes::NOT_FOUND, ErrorView::from(error))
    }

    /// A subscription method called where nothing can be pushed.
    pub fn subscription_needs_websocket() -> Self {
        Self::named(codes::METHOD_NOT_FOUND, RpcErrorName::ESubscriptionNeedsWebSocket.view())
    }

    /// A not-found error of the RPC's own.
    pub fn not_found_rpc(name: RpcErrorName) -> Self {
        Self::named(codes::NOT_FOUND, name.view())
    }

    /// One of the RPC's own named errors, under the JSON-RPC `code`.
    pub fn named_rpc(code: i32, name: RpcErrorName) -> Self {
        Self::named(code, name.view())
    }

    fn named(code: i32, view: ErrorView) -> Self {
        RpcError { code, message: format!("{}: {}", view.name, view.message), data: Some(view) }
    }

    /// An HTTP answer with `status` whose body is this error as a JSON-RPC response (`id` null),
    /// closing the connection when `status` is not 200 (the request may not have been read).
    pub fn into_http(self, status: http::StatusCode) -> jsonrpsee::server::HttpResponse {
        use http::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
        use jsonrpsee::types::{Id, Response, ResponsePayload};
        let answer = Response::new(ResponsePayload::<()>::error(ErrorObjectOwned::from(self)), Id::Null);
        let body = serde_json::to_string(&answer).unwrap_or_default();
        let mut response = jsonrpsee::server::HttpResponse::new(jsonrpsee::server::HttpBody::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        if status != http::StatusCode::OK {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<LedgerError> for RpcError {
    fn from(e: LedgerError) -> Self {
        let code = match &e {
            LedgerError::EBadSignature(_)
            | LedgerError::EWrongChainId
            | LedgerError::ENonceUsed { .. }
            | LedgerError::ENonceFuture { .. }
            | LedgerError::EMalformedTransaction(_)
            | LedgerError::ETransactionTooLarge { .. } => codes::TRANSACTION_REJECTED,
            LedgerError::EMempoolFull => codes::SERVER_BUSY,
            LedgerError::ENotLocalNetwork => codes::NOT_LOCAL_NETWORK,
            LedgerError::EInvalidCursor => codes::INVALID_PARAMS,
            LedgerError::EChainStopped
            | LedgerError::EInvalidBlock(_)
            | LedgerError::EStorage
            | LedgerError::ECorruptStore
            | LedgerError::EIo
            | LedgerError::EInvalidConfig
            | LedgerError::EDataDirInUse
            | LedgerError::EStateDiverged => codes::CHAIN_UNAVAILABLE,
        };
        // The Display form starts with the name; the message is what follows it.
        let text = e.to_string();
        let message = text.strip_prefix(e.name()).map_or(text.as_str(), |m| m.trim_start_matches(": "));
        Self::named(code, ErrorView { name: e.name().into(), code: e.code(), message: message.into() })
    }
}

impl From<ChainError> for RpcError {
    /// A refusal goes to the client as it is. An internal failure is logged here with its
    /// cause, its file and its remedy — for the node's operator — and the client gets only its
    /// name (`EStorage`, `ECorruptStore`, …).
    fn from(e: ChainError) -> Self {
        told(e).into()
    }
}

/// What a client is told of `e`: the refusal, or the bare name of an internal failure, which is
/// logged here with its whole cause chain for the operator.
pub(crate) fn told(e: ChainError) -> LedgerError {
    if e.is_internal() {
        tracing::error!("a request failed inside the node: {}", e.chain());
    }
    e.refusal()
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObjectOwned::owned(e.code, e.message, e.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_errors_keep_their_name_and_number() {
        let e = RpcError::from(LedgerError::ENonceUsed { expected: 3, got: 1 });
        assert_eq!(e.code, codes::TRANSACTION_REJECTED);
        let data = e.data.expect("named");
        assert_eq!((data.name.as_str(), data.code), ("ENonceUsed", 312_013_002));
        assert_eq!(data.message, "nonce 1 is already used; the sender's next nonce is 3");
        assert_eq!(e.message, format!("ENonceUsed: {}", data.message));
        assert_eq!(RpcError::from(LedgerError::EMempoolFull).code, codes::SERVER_BUSY);
        assert_eq!(RpcError::from(LedgerError::EInvalidCursor).code, codes::INVALID_PARAMS);
    }

    #[test]
    fn internal_failures_reach_the_client_by_name_only() {
        let io = std::io::Error::other("no space left on /var/lib/atoma");
        let e = RpcError::from(ChainError::storage("committing to /var/lib/atoma/chain.redb", io));
        assert_eq!(e.code, codes::CHAIN_UNAVAILABLE);
        let data = e.data.expect("named");
        assert_eq!((data.name.as_str(), data.code), ("EStorage", 312_013_011));
        assert!(!e.message.contains("/var/lib") && !data.message.contains("/var/lib"), "{}", e.message);
        let damaged =
            RpcError::from(ChainError::corrupt("chain.redb: block 3 is missing; run `atoma start --fresh`"));
        assert!(!damaged.message.contains("--fresh"), "{}", damaged.message);
    }

    #[test]
    fn rpc_names_do_not_collide_with_the_ledger_or_the_contract() {
        for name in [
            RpcErrorName::ETransactionNotFound,
            RpcErrorName::EBlockNotFound,
            RpcErrorName::ESubscriptionNeedsWebSocket,
            RpcErrorName::ERequestBodyTimeout,
            RpcErrorName::ETooManyConnections,
            RpcErrorName::ETooManyConnectionsFromAddress,
            RpcErrorName::ETooManySubscriptionsFromAddress,
            RpcErrorName::ESendBufferFull,
        ] {
            assert!(name.code() >= RPC_ERROR_CODE_BASE && name.code() < RPC_ERROR_CODE_BASE + 1000);
            assert!(ContractError::from_name(name.name()).is_none());
        }
    }
}
