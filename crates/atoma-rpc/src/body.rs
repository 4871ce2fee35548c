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
//!   call runs.
//!
//! Other requests (`GET /health`, WebSocket upgrades, wrong methods or content types) pass
//! through untouched: jsonrpsee answers them without reading a body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use http_body::Body;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::http::{content_type_is_json, response};
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::{ErrorObjectOwned, Id, Response, ResponsePayload};
use tower::{Layer, Service};

use crate::error::{RpcError, RpcErrorName, codes};

/// Installs [`CompleteBodies`] in front of jsonrpsee.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CompleteBodiesLayer {
    timeout: Duration,
    max_bytes: u32,
}

impl CompleteBodiesLayer {
    pub fn new(timeout: Duration, max_bytes: u32) -> Self {
        CompleteBodiesLayer { timeout, max_bytes }
    }
}

impl<S> Layer<S> for CompleteBodiesLayer {
    type Service = CompleteBodies<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CompleteBodies { inner, timeout: self.timeout, max_bytes: self.max_bytes }
    }
}

/// Reads JSON-RPC request bodies whole before passing them on (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct CompleteBodies<S> {
    inner: S,
    timeout: Duration,
    max_bytes: u32,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

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
        // The service that was made ready goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (timeout, max_bytes) = (self.timeout, self.max_bytes);
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match tokio::time::timeout(timeout, read_whole(&parts.headers, body, max_bytes)).await
            {
                Err(_) => return Ok(timed_out()),
                Ok(Err(BodyError::TooLarge)) => return Ok(response::too_large(max_bytes)),
                // The client broke the body off or mis-framed it; nobody may be left to read this.
                Ok(Err(BodyError::Broken)) => return Ok(response::malformed()),
                Ok(Ok(bytes)) => bytes,
            };
            let request = HttpRequest::from_parts(parts, HttpBody::from(bytes));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

/// The body, if it is at most `max_bytes` long (by its `Content-Length` and by what arrives).
async fn read_whole<B>(headers: &http::HeaderMap, body: B, max_bytes: u32) -> Result<Vec<u8>, BodyError>
where
    B: Body<Data = Bytes>,
{
    let max_bytes = max_bytes as usize;
    let announced = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|len| len > max_bytes as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::with_capacity(announced.map_or(0, |len| len as usize).min(16 * 1024));
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > max_bytes {
                return Err(BodyError::TooLarge);
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(bytes)
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
