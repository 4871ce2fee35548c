//! Following the chain's events from a durable cursor (docs/AGENT.md §1).
//!
//! Each round: **subscribe first**, then page through `atoma_queryEvents` from the stored cursor
//! to the end of the log, then read the subscription. An event committed between the two is in
//! both, so every event acted on since the subscription began is remembered and a repeat is
//! dropped; an event committed before the subscription is in the query alone, one after the
//! query in the subscription alone. (Querying first and subscribing after would lose what is
//! committed in between.) Each event is handed to the handler together with the store's write
//! transaction that also moves the cursor past it ([`AgentStore::act`]), so after a crash or a
//! dropped connection the next round starts right after the last event acted on: none missed,
//! none acted on twice.

use std::collections::HashSet;
use std::time::Duration;

use atoma_api::{EventEnvelope, EventId};
use atoma_client::{Client, ClientError};
use atoma_types::EventFilter;
use redb::WriteTransaction;

use crate::store::{AgentStore, StoreError};

/// Events per page while catching up.
pub const PAGE: u64 = 50;
/// The wait before a new round after the connection failed, doubled up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why following stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The store failed: the agent cannot remember what it did, so it stops.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The handler refused an event; nothing of it was written, and following stops there.
    #[error("acting on event {event:?}: {reason}")]
    Handler {
        /// The event.
        event: EventId,
        /// What the handler said.
        reason: String,
    },
}

/// Acts on one event. Its writes go through `txn`, which also moves the cursor; returning an
/// error writes nothing and stops following.
pub trait Handler {
    /// Acts on `event`.
    ///
    /// # Errors
    /// Anything that should stop the agent (its text is reported).
    fn handle(&mut self, event: &EventEnvelope, txn: &WriteTransaction) -> Result<(), String>;
}

impl<F: FnMut(&EventEnvelope, &WriteTransaction) -> Result<(), String>> Handler for F {
    fn handle(&mut self, event: &EventEnvelope, txn: &WriteTransaction) -> Result<(), String> {
        self(event, txn)
    }
}

/// Follows `filter`'s events through `client` until `stop` resolves, acting on each once with
/// `handler`; reconnects (with backoff) whenever the node cannot be reached or the subscription
/// ends.
///
/// # Errors
/// [`FollowError`] when the store or the handler fails; connection trouble is retried, never
/// returned.
pub async fn follow(
    client: &Client,
    filter: &EventFilter,
    store: &AgentStore,
    handler: &mut impl Handler,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), FollowError> {
    let mut backoff = FIRST_BACKOFF;
    tokio::pin!(stop);
    loop {
        let round = tokio::select! {
            round = one_round(client, filter, store, handler, &mut backoff) => round,
            () = &mut stop => return Ok(()),
        };
        match round {
            Ok(()) => {}
            Err(Round::Fatal(error)) => return Err(error),
            Err(Round::Connection(error)) => tracing::info!(%error, "the event subscription broke; resuming"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut stop => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Round {
    Fatal(FollowError),
    Connection(ClientError),
}

impl From<FollowError> for Round {
    fn from(error: FollowError) -> Self {
        Round::Fatal(error)
    }
}

/// One subscription's life: catch up from the cursor, then follow live until it ends.
async fn one_round(
    client: &Client,
    filter: &EventFilter,
    store: &AgentStore,
    handler: &mut impl Handler,
    backoff: &mut Duration,
) -> Result<(), Round> {
    let mut live = client.subscribe_events(filter).await.map_err(Round::Connection)?;
    let mut acted: HashSet<EventId> = HashSet::new();
    let mut cursor = store.cursor().map_err(FollowError::from)?;
    loop {
        let page = client
            .query_events(filter, cursor.as_ref(), Some(PAGE), false)
            .await
            .map_err(Round::Connection)?;
        for event in &page.data {
            act(store, handler, event)?;
            acted.insert(event.id.clone());
            cursor = Some(event.id.clone());
        }
        if !page.has_next_page || page.data.is_empty() {
            break;
        }
    }
    // Caught up, and the subscription works: the next failure starts the backoff afresh.
    *backoff = FIRST_BACKOFF;
    // The live events the catch-up already saw come first (the log's order); after the first
    // new one, none can repeat, and the set is dropped.
    let mut overlap = Some(acted);
    while let Some(next) = live.next().await {
        let event = next.map_err(Round::Connection)?;
        if let Some(seen) = &overlap {
            if seen.contains(&event.id) {
                continue;
            }
            overlap = None;
        }
        act(store, handler, &event)?;
    }
    Err(Round::Connection(ClientError::Decode {
        method: "atoma_subscribeEvents".into(),
        reason: "the subscription ended".into(),
    }))
}

fn act(store: &AgentStore, handler: &mut impl Handler, event: &EventEnvelope) -> Result<(), FollowError> {
    store.act(&event.id, |txn| {
        handler.handle(event, txn).map_err(|reason| FollowError::Handler { event: event.id.clone(), reason })
    })
}
