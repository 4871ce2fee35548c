//! The server's own accept loop: each connection knows its peer's address and writes through a
//! bounded queue (`outgoing.rs`).
//!
//! jsonrpsee's `Server::start` neither tells its HTTP middleware who the peer is nor lets it
//! wrap the socket, so the server accepts connections itself, as jsonrpsee's low-level API
//! allows: per connection, a jsonrpsee service (`TowerServiceBuilder::build`, which still counts
//! `max_connections`) behind our HTTP layers, served by hyper with upgrades, closed when it
//! sends no request within `first_request_timeout`, and shut down gracefully when the server
//! stops. Every request carries a [`Peer`] in its extensions — the address, and the connection's
//! queue — which the per-address layer ([`PerAddressLayer`]) and the subscriptions read.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::http::is_json;
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse, StopHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::{Layer, Service, ServiceExt};

use crate::address::{AddressLimits, Kind};
use crate::error::{RpcError, RpcErrorName};
use crate::http::ResponseFuture;
use crate::outgoing::{self, Outgoing};

/// Who sent a request: in every request's extensions, and so in every call's.
#[derive(Clone)]
pub(crate) struct Peer {
    pub ip: IpAddr,
    pub out: Arc<Outgoing>,
}

/// How each connection is served.
#[derive(Clone)]
pub(crate) struct ConnectionSettings {
    pub first_request_timeout: Duration,
    pub send_buffer_bytes: usize,
    /// How long a finished or cut connection's queue may take to be delivered.
    pub grace: Duration,
    pub metrics: Arc<crate::http::RpcMetrics>,
}

/// Accepts connections on `listener` until `stop`, serving each with a service made by `make`.
pub(crate) async fn accept<M, S>(
    listener: TcpListener,
    make: M,
    stop: StopHandle,
    settings: ConnectionSettings,
) where
    M: Fn() -> S,
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let stopped = stop.clone().shutdown();
    tokio::pin!(stopped);
    loop {
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: the next accept may succeed.
                    tracing::debug!("accepting a connection failed: {e}");
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
            continue;
        }
        let (io, out) = outgoing::split(
            socket,
            settings.send_buffer_bytes,
            settings.grace,
            Arc::clone(&settings.metrics),
        );
        let peer = Peer { ip: remote.ip().to_canonical(), out };
        let service = WithPeer { inner: make(), peer };
        tokio::spawn(serve_connection(io, service, stop.clone(), settings.first_request_timeout));
    }
}

async fn serve_connection<S>(
    io: outgoing::ConnIo,
    service: S,
    stop: StopHandle,
    first_request_timeout: Duration,
) where
    S: Service<HttpRequest<Incoming>, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let request_received = Arc::new(Notify::new());
    let service = Hyper { inner: service, request_received: Arc::clone(&request_received) };
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let stopped = stop.shutdown();
    tokio::pin!(conn, stopped);
    let first_request = async {
        if tokio::time::timeout(first_request_timeout, request_received.notified()).await.is_err() {
            return;
        }
        std::future::pending::<()>().await;
    };
    let result = tokio::select! {
        result = &mut conn => result,
        () = &mut stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = first_request => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!("a connection ended with an error: {e}");
    }
}

/// hyper's service trait over a tower service; notes that a request came.
#[derive(Clone)]
struct Hyper<S> {
    inner: S,
    request_received: Arc<Notify>,
}

impl<S> hyper::service::Service<HttpRequest<Incoming>> for Hyper<S>
where
    S: Service<HttpRequest<Incoming>, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn call(&self, request: HttpRequest<Incoming>) -> Self::Future {
        self.request_received.notify_one();
        let service = self.inner.clone();
        Box::pin(service.oneshot(request))
    }
}

/// Puts the [`Peer`] into each request's extensions and hands it on as jsonrpsee's body type.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: Peer,
}

impl<S> Service<HttpRequest<Incoming>> for WithPeer<S>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<Incoming>) -> Self::Future {
        let mut request = request.map(HttpBody::new);
        request.extensions_mut().insert(self.peer.clone());
        Box::pin(self.inner.call(request))
    }
}

/// Installs [`PerAddress`] (behind the layer that reads bodies whole, so that a body still
/// arriving holds nothing).
#[derive(Clone)]
pub(crate) struct PerAddressLayer {
    limits: Arc<AddressLimits>,
}

impl PerAddressLayer {
    pub fn new(limits: Arc<AddressLimits>) -> Self {
        PerAddressLayer { limits }
    }
}

impl<S> Layer<S> for PerAddressLayer {
    type Service = PerAddress<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerAddress { inner, limits: Arc::clone(&self.limits) }
    }
}

/// Counts JSON-RPC `POST`s being served and WebSockets against their peer's address, and
/// answers HTTP 429 with `ETooManyConnectionsFromAddress` beyond its limit.
#[derive(Clone)]
pub(crate) struct PerAddress<S> {
    inner: S,
    limits: Arc<AddressLimits>,
}

impl<S, B> Service<HttpRequest<B>> for PerAddress<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let upgrade = is_upgrade_request(&request);
        let counted = upgrade
            || (request.method() == http::Method::POST
                && is_json(request.headers().get(http::header::CONTENT_TYPE)));
        let peer = request.extensions().get::<Peer>().cloned();
        let (Some(peer), true) = (peer, counted) else {
            let answer = self.inner.call(request);
            return Box::pin(async move { answer.await.map_err(Into::into) });
        };
        let Some(permit) = self.limits.try_acquire(peer.ip, Kind::Connection) else {
            return Box::pin(std::future::ready(Ok(refusal(
                StatusCode::TOO_MANY_REQUESTS,
                RpcErrorName::ETooManyConnectionsFromAddress,
            ))));
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await.map_err(Into::into)?;
            if upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS {
                // Held until the TCP connection is gone.
                peer.out.upgraded(Some(permit));
            }
            Ok(response)
        })
    }
}

/// An HTTP error answer with a JSON-RPC error body naming `name`, with the busy code.
pub(crate) fn refusal(status: StatusCode, name: RpcErrorName) -> HttpResponse {
    RpcError::named_rpc(name.json_rpc_code(), name).into_http(status)
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("ip", &self.ip).finish_non_exhaustive()
    }
}
