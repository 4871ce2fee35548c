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
//! The ledger's broadcast drops events for a subscriber that falls more than its buffer behind
//! (its forwarder outrun by the chain; a WebSocket reader that is slow does not hold it up, as its
//! writes are queued and the connection is cut when the queue is full). The forwarder then does
//! not give up: it reads
//! the missed events back from the log with the same filter, starting after the last event it
//! delivered, and drops live events it has already delivered — so the client sees no gap and no
//! repeat. If the ledger's live feed closes (the ledger was dropped), the subscription ends with an
//! error notification `{"name": "EChainStopped", …}`. A chain that was only shut down keeps its
//! ledger open while the server holds a handle: its subscriptions stay open and receive nothing
//! more, and end when the server stops.

use std::net::IpAddr;
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

use crate::address::Kind;
use crate::connection::Peer;
use crate::error::{RpcError, RpcErrorName};
use crate::params::Args;
use crate::server::Context;

pub(crate) fn register(m: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    m.register_subscription(SUBSCRIBE_EVENTS, SUBSCRIBE_EVENTS, UNSUBSCRIBE_EVENTS, |p, pending, c, ext| {
        subscribe(p, pending, c, ext.get::<Peer>().map(|peer| peer.ip))
    })?;
    Ok(())
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    c: Arc<Context>,
    peer: Option<IpAddr>,
) -> SubscriptionCloseResponse {
    let parsed = crate::methods::serving(&c).and_then(|()| Args::parse(&params, &["filter", "from"]));
    let args = parsed.and_then(|args| Ok((args.filter(0)?, args.optional::<EventId>(1)?)));
    let (filter, from) = match args {
        Ok(args) => args,
        Err(e) => {
            pending.reject(ErrorObjectOwned::from(e)).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // Held while the subscription lives. A peer without an address (none today) is not counted.
    let permit = match peer.map(|ip| c.addresses.try_acquire(ip, Kind::Subscription)) {
        Some(None) => {
            let name = RpcErrorName::ETooManySubscriptionsFromAddress;
            pending.reject(ErrorObjectOwned::from(RpcError::named_rpc(name.json_rpc_code(), name))).await;
            return SubscriptionCloseResponse::None;
        }
        Some(Some(permit)) => Some(permit),
        None => None,
    };
    // Subscribe first, then note where delivery starts: the newest event, or the client's
    // `from`. Anything after it is delivered — from the log first when `from` is given — and
    // anything up to it that the live feed repeats is dropped.
    let live = c.node.ledger().subscribe(filter.clone());
    let last = match from.map_or_else(|| newest_event(&c), |from| event_at(&c, from)) {
        Ok(last) => last,
        Err(e) => {
            pending.reject(ErrorObjectOwned::from(e)).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // Counted before the client hears of it, so the gauge never lags its answer.
    let _active = c.metrics.subscription_opened();
    let Ok(sink) = pending.accept().await else { return SubscriptionCloseResponse::None };
    let _permit = permit;
    Forwarder { c, filter, sink, live, last }.run(from.is_some()).await
}

/// The position and id of the newest event in the log, if any.
fn newest_event(c: &Context) -> Result<Option<Delivered>, RpcError> {
    let page = c.node.ledger().query_events(&EventFilter::All, None, Some(1), true)?;
    Ok(page.data.first().map(Delivered::of))
}

/// The position and id of the event `id`; `EInvalidCursor` when no event has it.
fn event_at(c: &Context, id: EventId) -> Result<Option<Delivered>, RpcError> {
    let found = c.node.ledger().transaction(&id.tx_digest)?;
    let record = found.and_then(|tx| tx.outcome.events.into_iter().find(|e| e.id == id));
    match record {
        Some(record) => Ok(Some(Delivered::of(&record))),
        None => Err(RpcError::from(LedgerError::EInvalidCursor)),
    }
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
    /// Forwards until the client leaves or the chain fails; `catch_up_first` when the client
    /// named where to start, so the log's events after it come before the live ones.
    async fn run(mut self, catch_up_first: bool) -> SubscriptionCloseResponse {
        let first = if catch_up_first { self.catch_up().await } else { Ok(()) };
        let stop = if let Err(stop) = first {
            stop
        } else {
            loop {
                let next = tokio::select! {
                    () = self.sink.closed() => break Stop::Disconnected,
                    next = self.live.recv() => next,
                };
                let step = match next {
                    Ok(record) => self.deliver(&record).await,
                    Err(SubscriptionError::Lagged(_)) => {
                        self.c.metrics.subscription_caught_up();
                        self.catch_up().await
                    }
                    Err(SubscriptionError::Closed) => Err(Stop::Failed(LedgerError::EChainStopped)),
                };
                if let Err(stop) = step {
                    break stop;
                }
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
