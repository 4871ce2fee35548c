//! JSON-RPC middleware: turns jsonrpsee's answer to a subscription method over plain HTTP (an
//! anonymous -32603 "Internal error", which this server reserves for bugs) into the named
//! `ESubscriptionNeedsWebSocket`. Only single calls are rewritten: jsonrpsee runs the calls of a
//! batch below the middleware, so a subscription inside an HTTP batch keeps jsonrpsee's answer.

use std::future::Future;

use atoma_api::rpc::{SUBSCRIBE_EVENTS, UNSUBSCRIBE_EVENTS, codes};
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::server::MethodResponse;
use jsonrpsee::types::{ErrorObjectOwned, Request};

use crate::error::RpcError;

/// Wraps the server's RPC service (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct NameHttpSubscriptions<S>(pub S);

impl<S> RpcServiceT for NameHttpSubscriptions<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let subscription = matches!(request.method_name(), SUBSCRIBE_EVENTS | UNSUBSCRIBE_EVENTS);
        let id = request.id().into_owned();
        let inner = self.0.clone();
        async move {
            let response = inner.call(request).await;
            if subscription && response.as_error_code() == Some(codes::INTERNAL_ERROR) {
                MethodResponse::error(id, ErrorObjectOwned::from(RpcError::subscription_needs_websocket()))
            } else {
                response
            }
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.0.batch(batch)
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.0.notification(notification)
    }
}
