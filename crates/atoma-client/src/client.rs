//! The typed Rust client: one async method per RPC method, returning the same types the server
//! serializes (`atoma-api` views and [`atoma_api::rpc`] shapes), a helper that signs and submits a
//! call, and a stream of live events.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atoma_client::ClientError> {
//! use atoma_contract::Call;
//! use atoma_types::Keypair;
//! use atoma_client::Client;
//!
//! let client = Client::new("http://127.0.0.1:9000")?; // or Client::connect_ws(url).await?
//! let key = Keypair::test_account(0);
//! let result = client.sign_and_execute(&key, Call::RegisterNode { collateral: 1_000_000_000_000, supported_optimizations: 0 }).await?;
//! println!("{} {:?} {:?}", result.digest, result.status, result.error);
//! # Ok(()) }
//! ```
//!
//! Calls go over HTTP ([`Client::new`]) or over one WebSocket ([`Client::connect_ws`]), with the
//! same methods; each [`Client::subscribe_events`] opens a WebSocket connection of its own to the
//! same host and port. Every method maps to the RPC method named in its docs (docs/RPC.md has
//! the wire format).

use core::fmt;
use std::time::Duration;

use atoma_api::rpc::{
    BalanceView, BlockView, ChainInfoView, DryRunResult, EventPage, NonceView, SUBSCRIBE_EVENTS,
    StateDigestView, TaskPage, TransactionResult, UNSUBSCRIBE_EVENTS, filter_to_json,
};
use atoma_api::{
    AuditView, BadgeView, DbView, EventId, ModelView, NodeView, StackLookup, TaskView, TicketView,
};
use atoma_contract::{Address, Call, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::{Digest, EventFilter, Keypair, SignedTransaction};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonrpsee::core::client::SubscriptionClientT;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ClientError;
use crate::events::EventStream;
use crate::transport::{Calls, ClientOptions, Positional, REQUEST_TIMEOUT, Transport, urls, ws_connect};

/// A connection to an Atoma RPC server. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    calls: Calls,
    /// Where subscriptions go.
    ws_url: String,
    request_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.calls.transport())
            .field("ws_url", &self.ws_url)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `url` whose calls go over HTTP: `http://host:port` (or
    /// `ws://host:port`; the other scheme is derived). `https`/`wss` need the crate's `tls`
    /// feature. Connects lazily.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`].
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Self::over_http(url, REQUEST_TIMEOUT)
    }

    /// A client of the server at `url` (as for [`Client::new`]) whose calls all go over one
    /// WebSocket, opened now and opened again at the next call if it breaks.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`]; [`ClientError::Transport`] when the WebSocket cannot be
    /// opened, with [`ClientError::http_status`] 429 when the server is at its connection limit.
    pub async fn connect_ws(url: &str) -> Result<Self, ClientError> {
        Self::connect(url, ClientOptions { transport: Transport::WebSocket, ..ClientOptions::default() })
            .await
    }

    /// A client of the server at `url` (as for [`Client::new`]) with the transport and request
    /// timeout of `options`. Over WebSocket the connection is opened now.
    ///
    /// # Errors
    /// As [`Client::connect_ws`].
    pub async fn connect(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let request_timeout = options.request_timeout;
        match options.transport {
            Transport::Http => Self::over_http(url, request_timeout),
            Transport::WebSocket => {
                let (_, ws_url) = split_url(url)?;
                let calls = Calls::websocket(&ws_url, request_timeout).await?;
                Ok(Client { calls, ws_url, request_timeout })
            }
        }
    }

    fn over_http(url: &str, request_timeout: Duration) -> Result<Self, ClientError> {
        let (http_url, ws_url) = split_url(url)?;
        let calls = Calls::http(&http_url, request_timeout).map_err(|e| invalid_url(url, &e.to_string()))?;
        Ok(Client { calls, ws_url, request_timeout })
    }

    /// How this client's calls travel.
    pub fn transport(&self) -> Transport {
        self.calls.transport()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Vec<Value>,
    ) -> Result<T, ClientError> {
        let value = self.calls.request(method, params).await?;
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

    /// `atoma_getStateDigest`: the digest of the whole state after the tip, with the tip's
    /// height and block digest.
    ///
    /// # Errors
    /// Transport and decode errors.
    pub async fn get_state_digest(&self) -> Result<StateDigestView, ClientError> {
        self.call("atoma_getStateDigest", vec![]).await
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

    /// `atoma_subscribeEvents` over a new WebSocket connection (whatever this client's
    /// transport): every matching event committed after this returns, in order.
    ///
    /// # Errors
    /// Transport errors (the WebSocket could not be opened; HTTP 429 when the server or this
    /// address holds its maximum of connections); `TOO_MANY_SUBSCRIPTIONS` with
    /// `ETooManySubscriptionsFromAddress` when this address holds its maximum of subscriptions.
    pub async fn subscribe_events(&self, filter: &EventFilter) -> Result<EventStream, ClientError> {
        self.subscribe_events_from(filter, None).await
    }

    /// `atoma_subscribeEvents` resuming after the event `from` (the id of the last event the
    /// caller handled): every matching event after it — read back from the log, then live —
    /// in order, none twice. With `None`, as [`Client::subscribe_events`]. A stream that ended
    /// (the connection broke, or the server closed it with `ESendBufferFull` because it was not
    /// read) is resumed this way with no gap.
    ///
    /// # Errors
    /// As [`Client::subscribe_events`]; invalid params with `EInvalidCursor` when no event has
    /// the id `from`.
    pub async fn subscribe_events_from(
        &self,
        filter: &EventFilter,
        from: Option<&EventId>,
    ) -> Result<EventStream, ClientError> {
        let from = match from {
            Some(id) => serde_json::to_value(id).map_err(|e| ClientError::Decode {
                method: SUBSCRIBE_EVENTS.into(),
                reason: e.to_string(),
            })?,
            None => Value::Null,
        };
        let ws = ws_connect(&self.ws_url, self.request_timeout).await?;
        let subscription = ws
            .subscribe(SUBSCRIBE_EVENTS, Positional(vec![filter_to_json(filter), from]), UNSUBSCRIBE_EVENTS)
            .await
            .map_err(|e| ClientError::from_jsonrpc(SUBSCRIBE_EVENTS, e))?;
        Ok(EventStream::new(subscription, ws))
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

/// The HTTP and WebSocket forms of `url`.
fn split_url(url: &str) -> Result<(String, String), ClientError> {
    urls(url).ok_or_else(|| invalid_url(url, "expected http://, https://, ws:// or wss://"))
}

fn invalid_url(url: &str, reason: &str) -> ClientError {
    ClientError::InvalidUrl { url: url.into(), reason: reason.into() }
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
