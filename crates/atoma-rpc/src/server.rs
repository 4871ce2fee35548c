//! Starting and stopping the server: [`serve`], [`RpcConfig`], [`RpcServerHandle`].
//!
//! One jsonrpsee service answers JSON-RPC over HTTP `POST` and over WebSocket on the same port,
//! behind the server's own accept loop (`connection.rs`), which knows each peer's address and
//! writes through a bounded queue (`outgoing.rs`); small tower layers in front of jsonrpsee
//! answer `GET /health` and `GET /metrics` (`http.rs`), read request bodies whole within a
//! deadline (`body.rs`) and count each address's connections (`connection.rs`, `address.rs`).
//! Everything that comes from outside is bounded here: request and response sizes, connections
//! (in all and per address), subscriptions (per connection and per address), batch lengths, what
//! a WebSocket may leave unread, and time — for a connection's first request, for a request
//! body, and for a WebSocket that sends nothing (jsonrpsee's pings); page sizes, the faucet and
//! clock moves are bounded by the methods.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use atoma_api::rpc::{DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESPONSE_BODY_BYTES};
use atoma_contract::{ObjectId, TOMA};
use atoma_ledger::Node;
use jsonrpsee::server::{
    BatchRequestConfig, Methods, PingConfig, Server, ServerConfig, ServerHandle, stop_channel,
};
use tokio::net::TcpListener;

use crate::address::{AddressLimits, PerAddress};
use crate::body::CompleteBodiesLayer;
use crate::connection::{ConnectionSettings, PerAddressLayer};
use crate::http::HealthAndMetricsLayer;
use crate::methods;

/// The port of SPEC §13.
pub const DEFAULT_PORT: u16 = 9000;
/// 32 MiB: what request bodies being read may buffer together (128 bodies of the largest size).
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: u64 = 32 * 1024 * 1024;
/// Simultaneous HTTP requests and WebSocket connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 128;
/// Simultaneous HTTP requests and WebSocket connections from one IP address: three quarters of
/// [`DEFAULT_MAX_CONNECTIONS`], so that one address never takes the last 32 slots while a local
/// tool (a load test, a CLI script, an agent) on loopback still gets many.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: u32 = 96;
/// Live `atoma_subscribeEvents` subscriptions per WebSocket connection.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 16;
/// Live `atoma_subscribeEvents` subscriptions of one IP address over all its connections.
pub const DEFAULT_MAX_SUBSCRIPTIONS_PER_ADDRESS: u32 = 128;
/// 2 MiB: what a WebSocket may leave unread (some 3,000 event notifications) before it is cut.
pub const DEFAULT_WS_SEND_BUFFER_BYTES: u64 = 2 * 1024 * 1024;
/// Calls in one JSON-RPC batch.
pub const DEFAULT_MAX_BATCH_LEN: u32 = 32;
/// 10 s for a new connection to send its first request's headers.
pub const DEFAULT_FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// 10 s for a request body to arrive whole after its headers: a 256 KiB body at 256 kbit/s.
pub const DEFAULT_REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// 60 s in which a WebSocket sends no frame at all (no message, no pong) closes it.
pub const DEFAULT_WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// What `atoma_faucet` sends when no amount is named: 1,000 TOMA.
pub const DEFAULT_FAUCET_AMOUNT: u64 = 1_000 * TOMA;
/// The most one `atoma_faucet` call sends: 1,000,000 TOMA.
pub const DEFAULT_FAUCET_MAX_AMOUNT: u64 = 1_000_000 * TOMA;
/// The furthest one `atoma_advanceClock` call moves the clock: 365 days.
pub const MAX_ADVANCE_CLOCK_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// How to run the server. [`RpcConfig::default`] listens on `127.0.0.1:9000`; tests use port 0
/// and read the bound address from [`RpcServerHandle::local_addr`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RpcConfig {
    /// Where to listen, for HTTP and WebSocket alike.
    pub listen_addr: SocketAddr,
    /// Larger request bodies get [`atoma_api::rpc::codes::OVERSIZED_REQUEST`]. The default,
    /// [`DEFAULT_MAX_REQUEST_BODY_BYTES`], is also the client's limit.
    pub max_request_body_bytes: u32,
    /// Larger responses get [`atoma_api::rpc::codes::OVERSIZED_RESPONSE`] instead. The default,
    /// [`DEFAULT_MAX_RESPONSE_BODY_BYTES`], is also the client's limit.
    pub max_response_body_bytes: u32,
    /// Simultaneous HTTP requests (from complete body to answer) and WebSocket connections;
    /// more are refused with HTTP 429 (`ETooManyConnections`).
    pub max_connections: u32,
    /// The same, from one remote IP address (a WebSocket counts until its TCP connection is
    /// gone); more are refused with HTTP 429 and `ETooManyConnectionsFromAddress`.
    pub max_connections_per_address: u32,
    /// What the bodies of JSON-RPC `POST`s being read (before their requests take a slot of
    /// [`RpcConfig::max_connections`]) may buffer together; at least
    /// [`RpcConfig::max_request_body_bytes`]. Each body reserves its announced `Content-Length`
    /// (the size limit when it announces none) before a byte is read; one that does not fit is
    /// answered HTTP 429 at once, its connection closed.
    pub max_buffered_body_bytes: u64,
    /// More get [`atoma_api::rpc::codes::TOO_MANY_SUBSCRIPTIONS`].
    pub max_subscriptions_per_connection: u32,
    /// Live subscriptions of one remote IP address over all its connections; more get
    /// [`atoma_api::rpc::codes::TOO_MANY_SUBSCRIPTIONS`] with `ETooManySubscriptionsFromAddress`.
    pub max_subscriptions_per_address: u32,
    /// What the server keeps queued for a WebSocket that does not read: when more than this
    /// was already waiting before a message, the connection is closed with code 1008 and reason
    /// `ESendBufferFull` after what was queued (a subscriber resumes with `from`). The server's
    /// writers never wait on a peer.
    pub ws_send_buffer_bytes: u64,
    /// Longer batches are refused whole.
    pub max_batch_len: u32,
    /// A new connection that has not sent its first request's headers this long after it was
    /// accepted is closed. (Such a connection holds no slot of
    /// [`RpcConfig::max_connections`], only a socket; later requests on a keep-alive connection
    /// are not timed.)
    pub first_request_timeout: Duration,
    /// A JSON-RPC `POST` whose body has not arrived whole this long after its headers is answered
    /// HTTP 408 with -32600 `ERequestBodyTimeout`, and its connection is closed. Bodies are read
    /// before the request takes a slot of [`RpcConfig::max_connections`], so a stalled body
    /// holds none.
    pub request_body_timeout: Duration,
    /// A WebSocket is *idle* when the server has received no frame from it — no request, no
    /// pong — for this long; it is then closed and its slot freed. The server pings every
    /// WebSocket every half of this, so a live client (whose WebSocket stack answers pings, as
    /// the protocol requires) is never idle, with or without subscriptions or calls; a peer that
    /// answers no ping is dropped even with a live subscription, as it cannot be told from a
    /// dead one. It is closed between this and 1.5 times this after its last frame.
    pub ws_idle_timeout: Duration,
    /// `atoma_faucet` without an amount sends this many base units.
    pub faucet_default_amount: u64,
    /// `atoma_faucet` refuses larger amounts.
    pub faucet_max_amount: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
            max_response_body_bytes: DEFAULT_MAX_RESPONSE_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
            max_subscriptions_per_connection: DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
            max_subscriptions_per_address: DEFAULT_MAX_SUBSCRIPTIONS_PER_ADDRESS,
            ws_send_buffer_bytes: DEFAULT_WS_SEND_BUFFER_BYTES,
            max_batch_len: DEFAULT_MAX_BATCH_LEN,
            first_request_timeout: DEFAULT_FIRST_REQUEST_TIMEOUT,
            request_body_timeout: DEFAULT_REQUEST_BODY_TIMEOUT,
            ws_idle_timeout: DEFAULT_WS_IDLE_TIMEOUT,
            faucet_default_amount: DEFAULT_FAUCET_AMOUNT,
            faucet_max_amount: DEFAULT_FAUCET_MAX_AMOUNT,
        }
    }
}

impl RpcConfig {
    /// The defaults, listening on `addr`.
    pub fn listening_on(addr: SocketAddr) -> Self {
        RpcConfig { listen_addr: addr, ..RpcConfig::default() }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        #[source]
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("invalid RPC configuration: {0}")]
    InvalidConfig(String),
    /// Two methods share a name (a bug).
    #[error("cannot register the RPC methods: {0}")]
    Register(String),
}

/// What every method handler shares.
pub(crate) struct Context {
    /// The node served: its ledger for reads, its orderer for submissions.
    pub node: Node,
    /// Fixed at genesis; every event envelope names it.
    pub package_id: ObjectId,
    pub config: RpcConfig,
    pub metrics: Arc<crate::http::RpcMetrics>,
    /// What each remote address holds.
    pub addresses: Arc<AddressLimits>,
}

/// A running server. It runs while any clone of its handle is alive: dropping the last one stops
/// it, like calling [`RpcServerHandle::stop`], so a server never outlives whoever started it.
///
/// To shut a node down cleanly, stop the server first, then the chain:
///
/// ```no_run
/// # async fn demo(chain: atoma_ledger::ChainHandle, task: atoma_ledger::ChainTask) {
/// let server = atoma_rpc::serve(chain.clone(), atoma_rpc::RpcConfig::default()).await.expect("binds");
/// // … until Ctrl-C …
/// server.stop();
/// server.stopped().await; // connections closed; the server's chain handles are dropped
/// chain.shutdown();
/// drop(chain);
/// let _ = task.join(); // the database is closed and can be reopened
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RpcServerHandle {
    addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcServerHandle {
    /// The address the server is bound to (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, for `atoma_client::Client::new`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://<addr>`, where subscriptions are served.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Asks the server to stop accepting and to close its connections. Idempotent.
    pub fn stop(&self) {
        // Already stopped is what was asked for.
        let _ = self.handle.stop();
    }

    /// Waits until the server has stopped (after [`RpcServerHandle::stop`]).
    pub async fn stopped(self) {
        self.handle.stopped().await;
    }
}

/// Serves `node` over JSON-RPC (HTTP and WebSocket on one port) plus `GET /health` and
/// `GET /metrics`, until [`RpcServerHandle::stop`]. A [`atoma_ledger::ChainHandle`] (a local
/// network) converts into its [`Node`]; any other orderer comes as `Node::new(ledger, orderer)`.
/// Must be called inside a tokio runtime; the server runs on it.
///
/// # Errors
/// [`ServeError::Bind`] when the address cannot be bound; [`ServeError::InvalidConfig`] for a
/// zero limit or timeout, or a faucet default above its cap.
pub async fn serve(node: impl Into<Node>, config: RpcConfig) -> Result<RpcServerHandle, ServeError> {
    let node = node.into();
    validate(&config)?;
    let bind_error = |source| ServeError::Bind { addr: config.listen_addr, source };
    let metrics = Arc::new(crate::http::RpcMetrics::default());
    let addresses = AddressLimits::new(PerAddress {
        connections: config.max_connections_per_address,
        subscriptions: config.max_subscriptions_per_address,
    });
    let package_id = node.chain_info().package_id;
    let context = Context {
        node: node.clone(),
        package_id,
        config: config.clone(),
        metrics: Arc::clone(&metrics),
        addresses: Arc::clone(&addresses),
    };
    let module = methods::module(context).map_err(|e| ServeError::Register(e.to_string()))?;
    // Outermost first: `/health` and `/metrics` need no body; bodies are read whole before a
    // request counts against its address or takes a connection slot of jsonrpsee's.
    let http = tower::ServiceBuilder::new()
        .layer(HealthAndMetricsLayer::new(node, Arc::clone(&metrics)))
        .layer(CompleteBodiesLayer::new(
            config.request_body_timeout,
            config.max_request_body_bytes,
            usize::try_from(config.max_buffered_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(PerAddressLayer::new(addresses));
    let rpc = jsonrpsee::core::middleware::RpcServiceBuilder::new()
        .layer_fn(crate::middleware::NameHttpSubscriptions);
    let listener = TcpListener::bind(config.listen_addr).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let builder = Server::builder()
        .set_config(server_config(&config))
        .set_http_middleware(http)
        .set_rpc_middleware(rpc)
        .to_service_builder();
    let (stop, handle) = stop_channel();
    let methods = Methods::from(module);
    let settings = ConnectionSettings {
        first_request_timeout: config.first_request_timeout,
        send_buffer_bytes: usize::try_from(config.ws_send_buffer_bytes).unwrap_or(usize::MAX),
        grace: config.ws_idle_timeout,
        metrics: Arc::clone(&metrics),
    };
    let per_connection = stop.clone();
    let make = move || builder.clone().build(methods.clone(), per_connection.clone());
    tokio::spawn(crate::connection::accept(listener, make, stop, settings));
    Ok(RpcServerHandle { addr, handle })
}

fn server_config(config: &RpcConfig) -> ServerConfig {
    ServerConfig::builder()
        .max_request_body_size(config.max_request_body_bytes)
        .max_response_body_size(config.max_response_body_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .set_first_request_timeout(Some(config.first_request_timeout))
        // jsonrpsee checks at each ping whether the peer has sent anything (a pong counts) within
        // the inactive limit; pinging twice per limit leaves a live peer a whole interval to
        // answer.
        .enable_ws_ping(
            PingConfig::new()
                // tokio refuses a zero interval.
                .ping_interval((config.ws_idle_timeout / 2).max(Duration::from_nanos(1)))
                .inactive_limit(config.ws_idle_timeout)
                .max_failures(1),
        )
        .build()
}

fn validate(config: &RpcConfig) -> Result<(), ServeError> {
    let bad = |what: &str| Err(ServeError::InvalidConfig(what.into()));
    if config.max_request_body_bytes == 0 || config.max_response_body_bytes == 0 {
        return bad("body size limits must be > 0");
    }
    if config.max_buffered_body_bytes < u64::from(config.max_request_body_bytes) {
        return bad("the buffered body budget must hold at least one body of the largest size");
    }
    if config.max_connections == 0
        || config.max_connections_per_address == 0
        || config.max_subscriptions_per_connection == 0
        || config.max_subscriptions_per_address == 0
        || config.max_batch_len == 0
        || config.ws_send_buffer_bytes == 0
    {
        return bad("connection, subscription, batch and send buffer limits must be > 0");
    }
    let timeouts = [config.first_request_timeout, config.request_body_timeout, config.ws_idle_timeout];
    if timeouts.contains(&Duration::ZERO) {
        return bad("timeouts must be > 0");
    }
    if config.faucet_default_amount == 0 || config.faucet_default_amount > config.faucet_max_amount {
        return bad("the faucet's default amount must be > 0 and at most its cap");
    }
    Ok(())
}
