//! What the JSON-RPC server (`atoma-rpc`) and its clients (`atoma-client`, the CLI, the load
//! generator) must agree on, in one place that neither of them owns: the result shapes, event
//! filters as JSON, the lenient readers of parameters, the subscription's method names, the body
//! size limits and the error codes. A client depends on this crate, never on the server, so it
//! pulls in no chain, no storage and no server.
//!
//! Conventions are those of SPEC §10 and the views of this crate: keys in camelCase, `u64` as
//! decimal strings (read back from strings or numbers), addresses and object ids as `0x` + 64 hex
//! digits, transaction and block digests in base58, byte strings of transactions in base64.
//! docs/RPC.md lists every method with examples.

mod types;

pub use crate::wire::u64_of;
pub use types::{
    BalanceView, BlockView, ChainInfoView, ConsensusView, DryRunResult, EventPage, ExecutionStatus,
    HealthView, NonceView, PeerView, StateDigestView, TaskPage, TransactionData, TransactionResult,
    filter_from_json, filter_to_json, small_id_of,
};

/// The subscribe method, which is also the notifications' `method`: `[filter]`, answers a
/// subscription id.
pub const SUBSCRIBE_EVENTS: &str = "atoma_subscribeEvents";
/// The unsubscribe method: `[subscriptionId]`, answers `true`.
pub const UNSUBSCRIBE_EVENTS: &str = "atoma_unsubscribeEvents";

/// 256 KiB: the server's default request body limit, and what a client sends at most. Room for the
/// ledger's 128 KiB transaction limit in base64 (×4/3) and the envelope.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u32 = 256 * 1024;
/// 16 MiB: the server's default response body limit, and what a client reads at most. A page of
/// 1,000 events fits many times over.
pub const DEFAULT_MAX_RESPONSE_BODY_BYTES: u32 = 16 * 1024 * 1024;

pub mod codes {
    //! The JSON-RPC error codes the server answers with.
    //!
    //! Every error the server makes carries, when a named error is behind it, that error's
    //! `{"name", "code", "message"}` (an [`ErrorView`](crate::ErrorView)) in the JSON-RPC error's
    //! `data`. The JSON-RPC code says what *kind* of failure it was (limits and timeouts are fields
    //! of the server's `RpcConfig`):
    //!
    //! | code | constant | when | `data` |
    //! |---|---|---|---|
    //! | -32700 | [`PARSE_ERROR`] | the body is not JSON, or is JSON but not a request object (jsonrpsee reads both alike) | — |
    //! | -32600 | [`INVALID_REQUEST`] | a malformed batch; a request body that did not arrive within `request_body_timeout` (HTTP 408) | — / `ERequestBodyTimeout` |
    //! | -32601 | [`METHOD_NOT_FOUND`] | no such method | — |
    //! | -32602 | [`INVALID_PARAMS`] | a parameter is missing, unknown, extra or of the wrong type; the message names it | `EInvalidCursor` for an unknown cursor |
    //! | -32601 | [`METHOD_NOT_FOUND`] | `atoma_subscribeEvents` / `atoma_unsubscribeEvents` over plain HTTP (they need a WebSocket) | `ESubscriptionNeedsWebSocket` |
    //! | -32603 | [`INTERNAL_ERROR`] | a bug | — |
    //! | -32006 | [`TOO_MANY_SUBSCRIPTIONS`] | the connection holds its maximum of subscriptions | — |
    //! | -32007 | [`OVERSIZED_REQUEST`] | the body exceeds the request limit | — |
    //! | -32008 | [`OVERSIZED_RESPONSE`] | the answer would exceed the response limit | — |
    //! | -32009 | [`SERVER_BUSY`] | the mempool is full (retry later) | `EMempoolFull` |
    //! | -32010 | [`BATCH_TOO_LONG`] | a batch holds more calls than `max_batch_len` | — |
    //! | -32050 | [`TRANSACTION_REJECTED`] | the ledger refused the transaction before execution; nothing changed | `EBadSignature`, `EWrongChainId`, `ENonceUsed`, `ENonceFuture`, `EMalformedTransaction`, `ETransactionTooLarge` |
    //! | -32051 | [`NOT_FOUND`] | the id names nothing | `ETaskNotFound`, `ENodeNotFound`, `EStackNotFound`, `EModelNotFound`, `ENoSettlementTicket`, `ETransactionNotFound`, `EBlockNotFound` |
    //! | -32052 | [`NOT_LOCAL_NETWORK`] | faucet or time controls on a chain that is not a local network | `ENotLocalNetwork` |
    //! | -32053 | [`CHAIN_UNAVAILABLE`] | the chain stopped or its storage failed | `EChainStopped`, `EStorage`, … |
    //!
    //! -32000…-32011 are jsonrpsee's own; ours start at -32050 so that they never collide.
    //! A transaction the contract refuses is **not** an error: it was executed, consumed its nonce and
    //! comes back with `status: "failure"` and the contract error in the result.

    /// The body is not valid JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// A malformed request (jsonrpsee answers [`PARSE_ERROR`] for most non-requests).
    pub const INVALID_REQUEST: i32 = -32600;
    /// The method does not exist.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// A parameter is missing, unknown, extra, or not of the expected type.
    pub const INVALID_PARAMS: i32 = -32602;
    /// A bug in the server.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// jsonrpsee: the connection already holds its maximum of subscriptions.
    pub const TOO_MANY_SUBSCRIPTIONS: i32 = -32006;
    /// jsonrpsee: the request body exceeds the server's `max_request_body_bytes`.
    pub const OVERSIZED_REQUEST: i32 = -32007;
    /// jsonrpsee: the response would exceed the server's `max_response_body_bytes`.
    pub const OVERSIZED_RESPONSE: i32 = -32008;
    /// The chain is busy (`EMempoolFull`); the same request may succeed later. jsonrpsee uses
    /// the same code when it is busy itself.
    pub const SERVER_BUSY: i32 = -32009;
    /// jsonrpsee: the batch holds more calls than the server's `max_batch_len`.
    pub const BATCH_TOO_LONG: i32 = -32010;
    /// The ledger refused the transaction before execution; nothing changed.
    pub const TRANSACTION_REJECTED: i32 = -32050;
    /// The id names nothing.
    pub const NOT_FOUND: i32 = -32051;
    /// Only a local network offers the faucet and the time controls.
    pub const NOT_LOCAL_NETWORK: i32 = -32052;
    /// The chain is stopped or its storage failed.
    pub const CHAIN_UNAVAILABLE: i32 = -32053;
}
