//! The typed Rust client: one async method per RPC method, returning the same types the server
//! serializes (`atoma-api` views and [`atoma_api::rpc`] shapes), a helper that signs and submits a call,
//! and a stream of live events.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atoma_client::ClientError> {
//! use atoma_contract::Call;
//! use atoma_types::Keypair;
//! use atoma_client::Client;
//!
//! let client = Client::new("http://127.0.0.1:9000")?;
//! let key = Keypair::test_account(0);
//! let result = client.sign_and_execute(&key, Call::RegisterNode { collateral: 1_000_000_000_000, supported_optimizations: 0 }).await?;
//! println!("{} {:?} {:?}", result.digest, result.status, result.error);
//! # Ok(()) }
//! ```
//!
//! Requests go over HTTP; each [`Client::subscribe_events`] opens its own WebSocket connection
//! to the same host and port. Every method maps to the RPC method named in its docs
//! (docs/RPC.md has the wire format).

use core::fmt;
use std::time::Duration;

use atoma_api::rpc::{
    BalanceView, BlockView, ChainInfoView, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESPONSE_BODY_BYTES,
    DryRunResult, EventPage, NonceView, SUBSCRIBE_EVENTS, TaskPage, TransactionResult, UNSUBSCRIBE_EVENTS,
    codes, filter_to_json,
};
use atoma_api::{
    AuditView, BadgeView, DbView, ErrorView, EventEnvelope, EventId, ModelView, NodeView, StackLookup,
    TaskView, TicketView,
};
use atoma_contract::{Address, Call, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::{Digest, EventFilter, Keypair, SignedTransaction};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonrpsee::core::client::{ClientT, Error as JsonRpcError, Subscription, SubscriptionClientT};
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee_ws_client::{WsClient, WsClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

/// How long one request may take, submissions (which wait for their block) included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The server could not be reached, the connection broke, or the request timed out.
    #[error("cannot reach the RPC server: {0}")]
    Transport(String),
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

    /// Whether the same request may succeed later unchanged (the chain or server was busy).
    pub fn is_retryable(&self) -> bool {
        self.rpc_code() == Some(codes::SERVER_BUSY)
    }

    fn from_jsonrpc(method: &str, e: JsonRpcError) -> Self {
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
            other => ClientError::Transport(other.to_string()),
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

/// A connection to an Atoma RPC server.
#[derive(Clone, Debug)]
pub struct Client {
    http: HttpClient,
    ws_url: String,
}

impl Client {
    /// A client of the server at `url`: `http://host:port` (or `ws://host:port`; the other
    /// scheme is derived). `https`/`wss` need the crate's `tls` feature. Connects lazily.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`].
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl { url: url.into(), reason: reason.into() };
        let (http_url, ws_url) = [("http://", "ws://"), ("https://", "wss://")]
            .into_iter()
            .find_map(|(http, ws)| {
                let rest = url.strip_prefix(http).or_else(|| url.strip_prefix(ws))?;
                Some((format!("{http}{rest}"), format!("{ws}{rest}")))
            })
            .ok_or_else(|| invalid("expected http://, https://, ws:// or wss://"))?;
        let http = HttpClientBuilder::default()
            .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
            .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
            .request_timeout(REQUEST_TIMEOUT)
            .build(&http_url)
            .map_err(|e| invalid(&e.to_string()))?;
        Ok(Client { http, ws_url })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Vec<Value>,
    ) -> Result<T, ClientError> {
        let value: Value = self
            .http
            .request(method, Positional(params))
            .await
            .map_err(|e| ClientError::from_jsonrpc(method, e))?;
        serde_json::from_value(value)
            .map_err(|e| ClientError::Decode { method: method.into(), reason: e.to_string() })
    }

    /// `atoma_executeTransaction`: submits a signed transaction and waits until its block is
    /// durably committed. A contract refusal is `Ok` with `status: failure`.
    ///
    /// # Errors
    /// [`ClientError::Rpc`] with `EBadSignature`, `EWrongChainId`, `ENonceUsed`, `ENonceFuture`,
    /// `EMalformedTransaction`, `ETransactionTooLarge` (nothing changed) or `EMempoolFull`
    /// (retryable); transport and decode errors.
    pub async fn execute_transaction(
        &self,
        signed: &SignedTransaction,
    ) -> Result<TransactionResult, ClientError> {
        self.call("atoma_executeTransaction", tx_params(signed)).await
    }

    /// Signs `call` with `key` for the server's chain and the key's next nonce (both fetched from
    /// the server), and submits it like [`Client::execute_transaction`]. Concurrent calls for one
    /// key can race for a nonce (one gets `ENonceUsed`); sign and pipeline nonces yourself then.
    ///
    /// # Errors
    /// As [`Client::execute_transaction`].
    pub async fn sign_and_execute(
        &self,
        key: &Keypair,
        call: Call,
    ) -> Result<TransactionResult, ClientError> {
        let chain_id = self.get_chain_info().await?.chain_id;
        let nonce = self.get_nonce(&key.address()).await?;
        self.execute_transaction(&key.sign_call(chain_id.0, nonce, call)).await
    }

    /// `atoma_dryRunTransaction`: what the transaction would do now; nothing is stored. The
    /// nonce is not checked.
    ///
    /// # Errors
    /// `EBadSignature`, `EWrongChainId`, `EMalformedTransaction`, `ETransactionTooLarge`;
    /// transport and decode errors.
    pub async fn dry_run_transaction(&self, signed: &SignedTransaction) -> Result<DryRunResult, ClientError> {
        self.call("atoma_dryRunTransaction", tx_params(signed)).await
    }

    /// `atoma_getTransaction`: a stored transaction with its status, events and bytes.
    ///
    /// # Errors
    /// `ETransactionNotFound`; transport and decode errors.
    pub async fn get_transaction(&self, digest: &Digest) -> Result<TransactionResult, ClientError> {
        self.call("atoma_getTransaction", vec![Value::String(digest.to_string())]).await
    }

    /// `atoma_getChainInfo`: the chain id, the tip and the validator.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_chain_info(&self) -> Result<ChainInfoView, ClientError> {
        self.call("atoma_getChainInfo", vec![]).await
    }

    /// `atoma_getLatestBlock`: the tip's header.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_latest_block(&self) -> Result<BlockView, ClientError> {
        self.call("atoma_getLatestBlock", vec![]).await
    }

    /// `atoma_getBlock`: the header at `height`.
    ///
    /// # Errors
    /// `EBlockNotFound`; transport and decode errors.
    pub async fn get_block(&self, height: u64) -> Result<BlockView, ClientError> {
        self.call("atoma_getBlock", vec![u64_param(height)]).await
    }

    /// `atoma_getBalance`: the address's TOMA in base units.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_balance(&self, address: &Address) -> Result<u64, ClientError> {
        let view: BalanceView = self.call("atoma_getBalance", vec![address_param(address)]).await?;
        Ok(view.balance)
    }

    /// `atoma_getNonce`: the nonce the address's next transaction must carry.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_nonce(&self, address: &Address) -> Result<u64, ClientError> {
        let view: NonceView = self.call("atoma_getNonce", vec![address_param(address)]).await?;
        Ok(view.nonce)
    }

    /// `atoma_getDb`: counters, treasuries, attestation roots and configuration.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_db(&self) -> Result<DbView, ClientError> {
        self.call("atoma_getDb", vec![]).await
    }

    /// `atoma_getNode`.
    ///
    /// # Errors
    /// `ENodeNotFound`; transport and decode errors.
    pub async fn get_node(&self, node: NodeSmallId) -> Result<NodeView, ClientError> {
        self.call("atoma_getNode", vec![u64_param(node.0)]).await
    }

    /// `atoma_getTask`.
    ///
    /// # Errors
    /// `ETaskNotFound`; transport and decode errors.
    pub async fn get_task(&self, task: TaskSmallId) -> Result<TaskView, ClientError> {
        self.call("atoma_getTask", vec![u64_param(task.0)]).await
    }

    /// `atoma_listTasks`: tasks after `cursor` (exclusive), at most `limit` (default 50, at most
    /// 1,000).
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn list_tasks(
        &self,
        cursor: Option<TaskSmallId>,
        limit: Option<u64>,
    ) -> Result<TaskPage, ClientError> {
        let params =
            vec![cursor.map_or(Value::Null, |c| u64_param(c.0)), limit.map_or(Value::Null, u64_param)];
        self.call("atoma_listTasks", params).await
    }

    /// `atoma_getStack`: the open stack, or how it closed.
    ///
    /// # Errors
    /// `EStackNotFound` when no stack ever had the id; transport and decode errors.
    pub async fn get_stack(&self, stack: StackSmallId) -> Result<StackLookup, ClientError> {
        self.call("atoma_getStack", vec![u64_param(stack.0)]).await
    }

    /// `atoma_getSettlementTicket`: the open stack's ticket.
    ///
    /// # Errors
    /// `ENoSettlementTicket` (open, not settled yet), `EStackNotFound` (unknown or closed);
    /// transport and decode errors.
    pub async fn get_settlement_ticket(&self, stack: StackSmallId) -> Result<TicketView, ClientError> {
        self.call("atoma_getSettlementTicket", vec![u64_param(stack.0)]).await
    }

    /// `atoma_getModel`.
    ///
    /// # Errors
    /// `EModelNotFound`; transport and decode errors.
    pub async fn get_model(&self, name: &str) -> Result<ModelView, ClientError> {
        self.call("atoma_getModel", vec![Value::String(name.into())]).await
    }

    /// `atoma_getOwnedBadges`: the badges `owner` holds, in id order.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_owned_badges(&self, owner: &Address) -> Result<Vec<BadgeView>, ClientError> {
        self.call("atoma_getOwnedBadges", vec![address_param(owner)]).await
    }

    /// `atoma_audit`: every term of the supply and whether they add up.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn audit(&self) -> Result<AuditView, ClientError> {
        self.call("atoma_audit", vec![]).await
    }

    /// `atoma_queryEvents`: one page of events matching `filter`, strictly after `cursor` (before
    /// it when `descending`), at most `limit` (default 50, at most 1,000).
    ///
    /// # Errors
    /// `EInvalidCursor` for a cursor of an unknown transaction; transport and decode errors.
    pub async fn query_events(
        &self,
        filter: &EventFilter,
        cursor: Option<&EventId>,
        limit: Option<u64>,
        descending: bool,
    ) -> Result<EventPage, ClientError> {
        let cursor = match cursor {
            Some(c) => serde_json::to_value(c).map_err(|e| ClientError::Decode {
                method: "atoma_queryEvents".into(),
                reason: e.to_string(),
            })?,
            None => Value::Null,
        };
        let params = vec![
            filter_to_json(filter),
            cursor,
            limit.map_or(Value::Null, u64_param),
            Value::Bool(descending),
        ];
        self.call("atoma_queryEvents", params).await
    }

    /// `atoma_subscribeEvents` over a new WebSocket connection: every matching event committed
    /// after this returns, in order.
    ///
    /// # Errors
    /// Transport errors (the WebSocket could not be opened); `TOO_MANY_SUBSCRIPTIONS` cannot
    /// happen on the fresh connection.
    pub async fn subscribe_events(&self, filter: &EventFilter) -> Result<EventStream, ClientError> {
        let ws: WsClient = WsClientBuilder::default()
            .max_request_size(DEFAULT_MAX_REQUEST_BODY_BYTES)
            .max_response_size(DEFAULT_MAX_RESPONSE_BODY_BYTES)
            .request_timeout(REQUEST_TIMEOUT)
            .build(&self.ws_url)
            .await
            .map_err(|e| ClientError::from_jsonrpc(SUBSCRIBE_EVENTS, e))?;
        let subscription = ws
            .subscribe(SUBSCRIBE_EVENTS, Positional(vec![filter_to_json(filter)]), UNSUBSCRIBE_EVENTS)
            .await
            .map_err(|e| ClientError::from_jsonrpc(SUBSCRIBE_EVENTS, e))?;
        Ok(EventStream { subscription, _connection: ws })
    }

    /// `atoma_faucet` (local network only): sends `amount` base units (the server's default when
    /// `None`) from the faucet account to `recipient`.
    ///
    /// # Errors
    /// `ENotLocalNetwork`; invalid params for an amount of 0 or above the server's cap;
    /// `EMempoolFull`; transport and decode errors.
    pub async fn faucet(
        &self,
        recipient: &Address,
        amount: Option<u64>,
    ) -> Result<TransactionResult, ClientError> {
        self.call("atoma_faucet", vec![address_param(recipient), amount.map_or(Value::Null, u64_param)]).await
    }

    /// `atoma_advanceEpoch` (local network only): makes a block in the next epoch at once.
    ///
    /// # Errors
    /// `ENotLocalNetwork`; transport and decode errors.
    pub async fn advance_epoch(&self) -> Result<BlockView, ClientError> {
        self.call("atoma_advanceEpoch", vec![]).await
    }

    /// `atoma_advanceClock` (local network only): moves the validator's clock forward by `ms`
    /// (at most 365 days) and makes a block at once.
    ///
    /// # Errors
    /// `ENotLocalNetwork`; invalid params above the cap; transport and decode errors.
    pub async fn advance_clock(&self, ms: u64) -> Result<BlockView, ClientError> {
        self.call("atoma_advanceClock", vec![u64_param(ms)]).await
    }
}

fn tx_params(signed: &SignedTransaction) -> Vec<Value> {
    vec![Value::String(STANDARD.encode(&signed.tx_bytes)), Value::String(STANDARD.encode(&signed.signature))]
}

fn u64_param(v: u64) -> Value {
    Value::String(v.to_string())
}

fn address_param(address: &Address) -> Value {
    Value::String(address.to_string())
}

/// Live events of one subscription, on its own WebSocket connection.
///
/// If the reader falls far behind (more than 1,024 undelivered notifications in the client), the
/// client library drops the subscription and [`EventStream::next`] ends; resume with
/// [`Client::query_events`] from the last event's id.
pub struct EventStream {
    subscription: Subscription<EventEnvelope>,
    /// Kept open for as long as the stream lives.
    _connection: WsClient,
}

impl EventStream {
    /// The next event, or `None` when the subscription ended (connection closed, the server
    /// stopped, or the reader fell too far behind).
    pub async fn next(&mut self) -> Option<Result<EventEnvelope, ClientError>> {
        let next = self.subscription.next().await?;
        Some(next.map_err(|e| ClientError::Decode { method: SUBSCRIBE_EVENTS.into(), reason: e.to_string() }))
    }

    /// Ends the subscription (`atoma_unsubscribeEvents`) and closes the connection.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn unsubscribe(self) -> Result<(), ClientError> {
        self.subscription.unsubscribe().await.map_err(|e| ClientError::from_jsonrpc(UNSUBSCRIBE_EVENTS, e))
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}
