//! Request bodies are read whole, within a deadline, before jsonrpsee sees the request.
//!
//! jsonrpsee takes a connection slot (`RpcConfig::max_connections`) as soon as a request's
//! headers are in and then reads the body inside it with no timeout, so `max_connections`
//! requests that never finish their bodies locked every other client out. This tower layer sits
//! in front of jsonrpsee and reads the body of every JSON-RPC `POST` first, holding no slot:
//!
//! - a body longer than `RpcConfig::max_request_body_bytes` (announced or sent) is answered
//!   `413` with jsonrpsee's own -32007 error, as jsonrpsee would;
//! - a body that has not arrived whole within `RpcConfig::request_body_timeout` of the headers is
//!   answered `408` with a JSON-RPC error (-32600, `ERequestBodyTimeout`) and `Connection:
//!   close`; the connection is closed;
//! - a complete body goes to jsonrpsee in memory, so the slot it takes is held only while the
//!   call runs;
//! - bodies being read share a budget of `RpcConfig::max_buffered_body_bytes`: each reserves
//!   its announced `Content-Length` (the size limit when it announces none) before a byte is
//!   read, and a `POST` that does not fit is answered `429` at once (with `Connection: close`, its
//!   body unread). So no more than the budget is ever buffered, however many sockets or HTTP/2
//!   streams clients open, while small stalled bodies take little of it.
//!
//! Other requests (`GET /health`, WebSocket upgrades, wrong methods or content types) pass
//! through untouched: jsonrpsee answers them without reading a body.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use atoma_api::rpc::codes;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use http_body::Body;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::http::{content_type_is_json, response};
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::{ErrorObjectOwned, Id, Response, ResponsePayload};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::error::{RpcError, RpcErrorName};
use crate::http::ResponseFuture;

/// Installs [`CompleteBodies`] in front of jsonrpsee.
#[derive(Clone, Debug)]
pub(crate) struct CompleteBodiesLayer {
    timeout: Duration,
    max_bytes: u32,
    /// One permit per byte that bodies being read may buffer; shared by every connection.
    budget: Arc<Semaphore>,
}

impl CompleteBodiesLayer {
    /// Reads bodies of at most `max_bytes`, each within `timeout`, buffering at most
    /// `budget_bytes` for all of them together.
    pub fn new(timeout: Duration, max_bytes: u32, budget_bytes: usize) -> Self {
        let budget = Arc::new(Semaphore::new(budget_bytes.min(Semaphore::MAX_PERMITS)));
        CompleteBodiesLayer { timeout, max_bytes, budget }
    }
}

impl<S> Layer<S> for CompleteBodiesLayer {
    type Service = CompleteBodies<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompleteBodies {
            inner,
            timeout: self.timeout,
            max_bytes: self.max_bytes,
            budget: Arc::clone(&self.budget),
        }
    }
}

/// Reads JSON-RPC request bodies whole before passing them on (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct CompleteBodies<S> {
    inner: S,
    timeout: Duration,
    max_bytes: u32,
    budget: Arc<Semaphore>,
}

impl<S, B> Service<HttpRequest<B>> for CompleteBodies<S>
where
    S: Service<HttpRequest<HttpBody>, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let jsonrpc_post = request.method() == Method::POST
            && content_type_is_json(&request)
            && !is_upgrade_request(&request);
        if !jsonrpc_post {
            let answer = self.inner.call(request.map(HttpBody::new));
            return Box::pin(async move { answer.await.map_err(Into::into) });
        }
        // What this body may take of the budget: what it announces, or the most it may be.
        let max_bytes = self.max_bytes;
        let reserve = match content_length(request.headers()) {
            Some(len) if len > u64::from(max_bytes) => {
                return Box::pin(async move { Ok(response::too_large(max_bytes)) });
            }
            Some(len) => len as u32,
            None => max_bytes,
        };
        let Ok(permit) = Arc::clone(&self.budget).try_acquire_many_owned(reserve) else {
            return Box::pin(async { Ok(busy()) });
        };
        // The service that was made ready goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = self.timeout;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match tokio::time::timeout(timeout, read_whole(body, reserve)).await {
                Err(_) => return Ok(timed_out()),
                // More than the size limit, when no length was announced.
                Ok(Err(BodyError::Longer)) if reserve == max_bytes => {
                    return Ok(response::too_large(max_bytes));
                }
                // The client broke the body off or sent more than it announced; nobody may be
                // left to read this.
                Ok(Err(BodyError::Longer | BodyError::Broken)) => return Ok(response::malformed()),
                Ok(Ok(bytes)) => bytes,
            };
            // The body is read; what bounds the call from here is jsonrpsee's connection slot.
            drop(permit);
            let request = HttpRequest::from_parts(parts, HttpBody::from(bytes));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

enum BodyError {
    /// More bytes came than the body may have.
    Longer,
    Broken,
}

/// The request's `Content-Length`, if it announces a readable one.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// The body, if it is at most `limit` bytes long.
async fn read_whole<B>(body: B, limit: u32) -> Result<Vec<u8>, BodyError>
where
    B: Body<Data = Bytes>,
{
    let limit = limit as usize;
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::with_capacity(limit.min(16 * 1024));
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > limit {
                return Err(BodyError::Longer);
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
}

/// `429` (jsonrpsee's own busy answer), closing the connection: the body is left unread.
fn busy() -> HttpResponse {
    let mut response = response::too_many_requests();
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `408` with a JSON-RPC error, closing the connection (the rest of the body may still come).
fn timed_out() -> HttpResponse {
    let error = RpcError::named_rpc(codes::INVALID_REQUEST, RpcErrorName::ERequestBodyTimeout);
    let answer = Response::new(ResponsePayload::<()>::error(ErrorObjectOwned::from(error)), Id::Null);
    let body = serde_json::to_string(&answer).unwrap_or_default();
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
