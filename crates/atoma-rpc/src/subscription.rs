//! `atoma_subscribeEvents`: live events over WebSocket, every one, in log order.
//!
//! A subscription delivers each matching event committed after the subscription was confirmed,
//! once, in the log's order, as an `EventEnvelope` notification:
//!
//! ```json
//! {"jsonrpc": "2.0", "method": "atoma_subscribeEvents",
//!  "params": {"subscription": 8215650176, "result": {"id": {…}, "type": "…", "parsedJson": {…}, …}}}
//! ```
//!
//! The ledger's broadcast drops events for a subscriber that falls more than its buffer behind (a
//! slow WebSocket reader makes its forwarder wait). The forwarder then does not give up: it reads
//! the missed events back from the log with the same filter, starting after the last event it
//! delivered, and drops live events it has already delivered — so the client sees no gap and no
//! repeat. If the ledger's live feed closes (the ledger was dropped), the subscription ends with an
//! error notification `{"name": "EChainStopped", …}`. A chain that was only shut down keeps its
//! ledger open while the server holds a handle: its subscriptions stay open and receive nothing
//! more, and end when the server stops.

use std::sync::Arc;

use atoma_api::rpc::{SUBSCRIBE_EVENTS, UNSUBSCRIBE_EVENTS};
use atoma_api::{ErrorView, EventEnvelope};
use atoma_ledger::{EventSubscription, LedgerError, SubscriptionError};
use atoma_types::events::MAX_PAGE_LIMIT;
use atoma_types::{EventFilter, EventId, EventRecord};
use jsonrpsee::RpcModule;
use jsonrpsee::core::{RegisterMethodError, SubscriptionError as CloseError};
use jsonrpsee::server::{PendingSubscriptionSink, SubscriptionCloseResponse, SubscriptionSink};
use jsonrpsee::types::{ErrorObjectOwned, Params};

use crate::error::RpcError;
use crate::params::Args;
use crate::server::Context;

pub(crate) fn register(m: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    m.register_subscription(SUBSCRIBE_EVENTS, SUBSCRIBE_EVENTS, UNSUBSCRIBE_EVENTS, |p, pending, c, _| {
        subscribe(p, pending, c)
    })?;
    Ok(())
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    c: Arc<Context>,
) -> SubscriptionCloseResponse {
    let parsed = crate::methods::serving(&c).and_then(|()| Args::parse(&params, &["filter"]));
    let filter = match parsed.and_then(|args| args.filter(0)) {
        Ok(filter) => filter,
        Err(e) => {
            pending.reject(ErrorObjectOwned::from(e)).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // Subscribe first, then note the newest event: anything after it is new, anything up to it
    // that the live feed repeats is dropped.
    let live = c.node.ledger().subscribe(filter.clone());
    let last = match newest_event(&c) {
        Ok(last) => last,
        Err(e) => {
            pending.reject(ErrorObjectOwned::from(RpcError::from(e))).await;
            return SubscriptionCloseResponse::None;
        }
    };
    let Ok(sink) = pending.accept().await else { return SubscriptionCloseResponse::None };
    let _active = c.metrics.subscription_opened();
    Forwarder { c, filter, sink, live, last }.run().await
}

/// The position and id of the newest event in the log, if any.
fn newest_event(c: &Context) -> Result<Option<Delivered>, atoma_ledger::ChainError> {
    let page = c.node.ledger().query_events(&EventFilter::All, None, Some(1), true)?;
    Ok(page.data.first().map(Delivered::of))
}

/// The last event delivered (or known to predate the subscription).
#[derive(Clone, Copy)]
struct Delivered {
    position: (u64, u64, u64),
    id: EventId,
}

impl Delivered {
    fn of(record: &EventRecord) -> Self {
        Delivered { position: record.position(), id: record.id }
    }
}

struct Forwarder {
    c: Arc<Context>,
    filter: EventFilter,
    sink: SubscriptionSink,
    live: EventSubscription,
    last: Option<Delivered>,
}

/// Why forwarding stopped.
enum Stop {
    /// The client went away or unsubscribed.
    Disconnected,
    /// The chain failed; tell the client.
    Failed(LedgerError),
}

impl Forwarder {
    async fn run(mut self) -> SubscriptionCloseResponse {
        let stop = loop {
            let next = tokio::select! {
                () = self.sink.closed() => break Stop::Disconnected,
                next = self.live.recv() => next,
            };
            let step = match next {
                Ok(record) => self.deliver(&record).await,
                Err(SubscriptionError::Lagged(_)) => self.catch_up().await,
                Err(SubscriptionError::Closed) => Err(Stop::Failed(LedgerError::EChainStopped)),
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        match stop {
            Stop::Disconnected => SubscriptionCloseResponse::None,
            Stop::Failed(e) => {
                let view = ErrorView { name: e.name().into(), code: e.code(), message: e.to_string() };
                match serde_json::value::to_raw_value(&view) {
                    Ok(json) => SubscriptionCloseResponse::NotifErr(CloseError::from_json(json)),
                    Err(_) => SubscriptionCloseResponse::NotifErr(CloseError::from(e.to_string())),
                }
            }
        }
    }

    /// Sends `record` unless it was already delivered.
    async fn deliver(&mut self, record: &EventRecord) -> Result<(), Stop> {
        if self.last.is_some_and(|last| record.position() <= last.position) {
            return Ok(());
        }
        let envelope = EventEnvelope::new(
            self.c.package_id,
            record.id.tx_digest.0,
            record.id.event_seq,
            record.sender,
            record.timestamp_ms,
            &record.event,
        );
        let message = serde_json::value::to_raw_value(&envelope).map_err(|e| {
            tracing::error!("an event could not be encoded for a subscriber: {e}");
            Stop::Failed(LedgerError::EChainStopped)
        })?;
        self.sink.send(message).await.map_err(|_| Stop::Disconnected)?;
        self.last = Some(Delivered::of(record));
        Ok(())
    }

    /// Reads what the live feed dropped back from the log, after the last delivered event.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        self.c.metrics.subscription_caught_up();
        loop {
            let cursor = self.last.map(|l| l.id);
            let page = self
                .c
                .node
                .ledger()
                .query_events(&self.filter, cursor, Some(MAX_PAGE_LIMIT), false)
                .map_err(|e| Stop::Failed(crate::error::told(e)))?;
            for record in &page.data {
                self.deliver(record).await?;
            }
            if !page.has_next_page || page.data.is_empty() {
                return Ok(());
            }
        }
    }
}
