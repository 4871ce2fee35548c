//! [`EventStream`]: the live events of one `atoma_subscribeEvents` subscription.

use core::fmt;

use atoma_api::EventEnvelope;
use atoma_api::rpc::{SUBSCRIBE_EVENTS, UNSUBSCRIBE_EVENTS};
use jsonrpsee::core::client::Subscription;
use jsonrpsee_ws_client::WsClient;

use crate::error::ClientError;

/// Live events of one subscription, on its own WebSocket connection.
///
/// If the reader falls far behind (more than 1,024 undelivered notifications in the client), the
/// client library drops the subscription and [`EventStream::next`] ends; resume with
/// [`Client::query_events`](crate::Client::query_events) from the last event's id.
pub struct EventStream {
    subscription: Subscription<EventEnvelope>,
    /// Kept open for as long as the stream lives.
    _connection: WsClient,
}

impl EventStream {
    pub(crate) fn new(subscription: Subscription<EventEnvelope>, connection: WsClient) -> Self {
        EventStream { subscription, _connection: connection }
    }

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
