//! Plain HTTP on the RPC's port: `GET /health` and `GET /metrics`.
//!
//! A tower layer in front of jsonrpsee answers these two paths itself and passes every other
//! request on (JSON-RPC `POST`s and WebSocket upgrades, on any path).
//!
//! - `GET /health`: `200` and `{"status": "ok", "chainId": "…", "height": "…", "epoch": "…"}`.
//! - `GET /metrics`: `200` and Prometheus' text format: the ledger's metrics
//!   ([`atoma_ledger::MetricsSnapshot::to_prometheus`]), the same transaction counters as one
//!   family labelled by status, and the server's own subscription gauges.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use atoma_ledger::{MetricsSnapshot, Node};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use atoma_api::rpc::HealthView;

/// The RPC server's own counters.
#[derive(Debug, Default)]
pub(crate) struct RpcMetrics {
    active_subscriptions: AtomicU64,
    subscription_catch_ups: AtomicU64,
    websockets_cut: AtomicU64,
}

/// Counts one live subscription while it exists.
pub(crate) struct ActiveSubscription(Arc<RpcMetrics>);

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        self.0.active_subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RpcMetrics {
    pub fn subscription_opened(self: &Arc<Self>) -> ActiveSubscription {
        self.active_subscriptions.fetch_add(1, Ordering::Relaxed);
        ActiveSubscription(Arc::clone(self))
    }

    pub fn subscription_caught_up(&self) {
        self.subscription_catch_ups.fetch_add(1, Ordering::Relaxed);
    }

    pub fn websocket_cut(&self) {
        self.websockets_cut.fetch_add(1, Ordering::Relaxed);
    }

    fn to_prometheus(&self) -> String {
        let rows = [
            (
                "atoma_rpc_active_subscriptions",
                "gauge",
                "Live event subscriptions.",
                self.active_subscriptions.load(Ordering::Relaxed),
            ),
            (
                "atoma_rpc_subscription_catch_ups_total",
                "counter",
                "Times a slow subscriber was caught up from the event log.",
                self.subscription_catch_ups.load(Ordering::Relaxed),
            ),
            (
                "atoma_rpc_websockets_cut_total",
                "counter",
                "WebSockets closed because they left more than their send buffer unread (ESendBufferFull).",
                self.websockets_cut.load(Ordering::Relaxed),
            ),
        ];
        rows.iter()
            .map(|(name, kind, help, value)| {
                format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n")
            })
            .collect()
    }
}

/// The transaction counters as one family, `atoma_transactions_total{status="…"}`.
fn transactions_by_status(m: &MetricsSnapshot) -> String {
    let mut text = String::from(
        "# HELP atoma_transactions_total Transactions by outcome: success and failure were executed, \
         rejected were refused before execution.\n# TYPE atoma_transactions_total counter\n",
    );
    for (status, value) in [
        ("success", m.transactions_succeeded),
        ("failure", m.transactions_failed),
        ("rejected", m.transactions_rejected),
    ] {
        text.push_str(&format!("atoma_transactions_total{{status=\"{status}\"}} {value}\n"));
    }
    text
}

/// Installs [`HealthAndMetrics`] in front of the JSON-RPC service.
#[derive(Clone)]
pub(crate) struct HealthAndMetricsLayer {
    node: Node,
    metrics: Arc<RpcMetrics>,
}

impl HealthAndMetricsLayer {
    pub fn new(node: Node, metrics: Arc<RpcMetrics>) -> Self {
        HealthAndMetricsLayer { node, metrics }
    }
}

impl<S> Layer<S> for HealthAndMetricsLayer {
    type Service = HealthAndMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HealthAndMetrics { inner, node: self.node.clone(), metrics: Arc::clone(&self.metrics) }
    }
}

/// Answers `GET /health` and `GET /metrics`; passes everything else to `inner`.
#[derive(Clone)]
pub(crate) struct HealthAndMetrics<S> {
    inner: S,
    node: Node,
    metrics: Arc<RpcMetrics>,
}

/// What the server's HTTP layers answer with.
pub(crate) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

impl<S, B> Service<HttpRequest<B>> for HealthAndMetrics<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        if request.method() == Method::GET {
            let answer = match request.uri().path() {
                "/health" => Some(self.health()),
                "/metrics" => Some(self.metrics()),
                _ => None,
            };
            if let Some(response) = answer {
                return Box::pin(std::future::ready(Ok(response)));
            }
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

impl<S> HealthAndMetrics<S> {
    fn health(&self) -> HttpResponse {
        let info = self.node.chain_info();
        let view = HealthView {
            status: "ok".into(),
            chain_id: info.chain_id,
            height: info.height,
            epoch: info.epoch,
        };
        match serde_json::to_string(&view) {
            Ok(body) => response(StatusCode::OK, "application/json", body),
            Err(e) => response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", e.to_string()),
        }
    }

    fn metrics(&self) -> HttpResponse {
        let snapshot = self.node.ledger().metrics().snapshot();
        let body = snapshot.to_prometheus()
            + &transactions_by_status(&snapshot)
            + &self.metrics.to_prometheus()
            + &self.node.orderer().prometheus();
        response(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
    }
}

fn response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
