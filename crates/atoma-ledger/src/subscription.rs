//! Live events: a filtered receiver of everything the ledger commits, in commit order.
//!
//! The ledger publishes a block's events after its commit returned, from the one place that
//! applies blocks, so every subscriber sees events in the log's order. A subscriber that falls
//! more than the buffer behind loses events and is told so ([`SubscriptionError::Lagged`]); it can
//! catch up from the log with a query whose cursor is the last event it saw.

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::events::{EventFilter, EventRecord};

/// Why a subscription stopped delivering.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The subscriber fell behind and this many events were dropped for it.
    #[error("the subscriber fell behind; {0} events were skipped")]
    Lagged(u64),
    /// The ledger was closed.
    #[error("the ledger is closed")]
    Closed,
}

/// Events committed after the subscription was made, that match its filter.
#[derive(Debug)]
pub struct EventSubscription {
    receiver: broadcast::Receiver<EventRecord>,
    filter: EventFilter,
}

impl EventSubscription {
    pub(crate) fn new(receiver: broadcast::Receiver<EventRecord>, filter: EventFilter) -> Self {
        EventSubscription { receiver, filter }
    }

    /// The filter.
    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }

    /// Waits for the next matching event.
    ///
    /// # Errors
    /// `Lagged` when events were dropped (the next call continues after them); `Closed` when the
    /// ledger is gone.
    pub async fn recv(&mut self) -> Result<EventRecord, SubscriptionError> {
        loop {
            match self.receiver.recv().await {
                Ok(event) if self.filter.matches(&event) => return Ok(event),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => return Err(SubscriptionError::Lagged(n)),
                Err(RecvError::Closed) => return Err(SubscriptionError::Closed),
            }
        }
    }

    /// The next matching event if one is already waiting, without blocking.
    ///
    /// # Errors
    /// As [`EventSubscription::recv`].
    pub fn try_recv(&mut self) -> Result<Option<EventRecord>, SubscriptionError> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) if self.filter.matches(&event) => return Ok(Some(event)),
                Ok(_) => {}
                Err(TryRecvError::Empty) => return Ok(None),
                Err(TryRecvError::Lagged(n)) => return Err(SubscriptionError::Lagged(n)),
                Err(TryRecvError::Closed) => return Err(SubscriptionError::Closed),
            }
        }
    }
}
