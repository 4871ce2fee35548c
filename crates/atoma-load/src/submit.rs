//! Sending one signed transaction until the chain answers it, and the counters every client
//! shares.
//!
//! A transaction is retried, unchanged, while the answer says nothing happened and it may work
//! later: busy (`EMempoolFull`, HTTP 429) and `ENonceFuture` (its predecessor, sent just before
//! on another request, has not been admitted yet — the server handles requests in flight
//! concurrently, so pipelined nonces can overtake each other). When the request itself failed
//! (timeout, broken connection) the transaction may have been admitted; sending it again then
//! answers `ENonceUsed`, and the transaction is looked up by digest instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use atoma_api::rpc::TransactionResult;
use atoma_client::{Client, ClientError};
use atoma_types::{Digest, SignedTransaction};

use crate::config::Stop;
use crate::conn::{Retry, failure_name, retry};
use crate::progress::{Phase, Progress};

/// Counters shared by every client of a run.
pub(crate) struct Shared {
    stop: Stop,
    /// Set when the load starts.
    started: Mutex<Option<Instant>>,
    tickets: AtomicU64,
    pub(crate) setup_done: AtomicU64,
    sent: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
    names: Mutex<Names>,
}

#[derive(Default)]
pub(crate) struct Names {
    pub(crate) failures: BTreeMap<String, u64>,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) retries: BTreeMap<String, u64>,
}

fn bump(map: &mut BTreeMap<String, u64>, name: &str) {
    *map.entry(name.to_string()).or_default() += 1;
}

impl Shared {
    pub(crate) fn new(stop: Stop) -> Self {
        Shared {
            stop,
            started: Mutex::new(None),
            tickets: AtomicU64::new(0),
            setup_done: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            names: Mutex::new(Names::default()),
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the clock of the load.
    pub(crate) fn start(&self) -> Instant {
        let now = Instant::now();
        *self.started.lock().unwrap_or_else(PoisonError::into_inner) = Some(now);
        now
    }

    fn started(&self) -> Option<Instant> {
        *self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether one more transaction may be sent; counts it as sent if so.
    pub(crate) fn take_ticket(&self) -> bool {
        let more = match self.stop {
            Stop::Transactions(n) => self.tickets.fetch_add(1, Ordering::Relaxed) < n,
            Stop::Duration(d) => self.started().is_some_and(|t| t.elapsed() < d),
        };
        if more {
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        more
    }

    pub(crate) fn executed(&self, result: &TransactionResult) {
        match &result.error {
            None => self.succeeded.fetch_add(1, Ordering::Relaxed),
            Some(view) => {
                bump(&mut self.names().failures, &view.name);
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    pub(crate) fn error(&self, name: &str) {
        bump(&mut self.names().errors, name);
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    fn retried(&self, name: &str) {
        bump(&mut self.names().retries, name);
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn take_names(&self) -> Names {
        std::mem::take(&mut *self.names())
    }

    pub(crate) fn progress(&self, phase: Phase) -> Progress {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Progress {
            phase,
            elapsed: self.started().map_or(Duration::ZERO, |t| t.elapsed()),
            stop: self.stop,
            sent: get(&self.sent),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            errors: get(&self.errors),
            retries: get(&self.retries),
        }
    }
}

/// How a transaction ended.
pub(crate) enum Answer {
    /// On the chain, with this result.
    Executed(Box<TransactionResult>),
    /// Never executed: the last answer's name.
    Refused(String),
}

/// Sends transactions over one connection, retrying as the module docs say.
#[derive(Clone)]
pub(crate) struct Submitter {
    pub(crate) conn: Client,
    shared: Arc<Shared>,
    retry_for: Duration,
    /// Whether retries count in the run's figures (not during setup).
    counted: bool,
}

impl Submitter {
    pub(crate) fn new(conn: Client, shared: Arc<Shared>, retry_for: Duration, counted: bool) -> Self {
        Submitter { conn, shared, retry_for, counted }
    }

    pub(crate) async fn submit(&self, signed: &SignedTransaction) -> Answer {
        let start = Instant::now();
        let mut attempt: u32 = 0;
        let mut maybe_admitted = false;
        loop {
            let error = match self.conn.execute_transaction(signed).await {
                Ok(result) => return Answer::Executed(Box::new(result)),
                Err(e) => e,
            };
            let retry = retry(&error);
            maybe_admitted |= retry == Retry::Unknown;
            if maybe_admitted && error.name() == Some("ENonceUsed") {
                return self.look_up(signed.digest(), &error).await;
            }
            if retry == Retry::No || start.elapsed() >= self.retry_for {
                if maybe_admitted {
                    return self.look_up_once(signed.digest(), &error).await;
                }
                return Answer::Refused(failure_name(&error));
            }
            if self.counted {
                self.shared.retried(&failure_name(&error));
            }
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(backoff(retry, attempt, signed.digest())).await;
        }
    }

    /// Waits for a transaction that may be in the mempool to show up on the chain.
    async fn look_up(&self, digest: Digest, why: &ClientError) -> Answer {
        let start = Instant::now();
        let mut attempt = 0;
        while start.elapsed() < self.retry_for {
            if let Ok(result) = self.conn.get_transaction(&digest).await {
                return Answer::Executed(Box::new(result));
            }
            attempt += 1;
            tokio::time::sleep(backoff(Retry::Busy, attempt, digest)).await;
        }
        Answer::Refused(failure_name(why))
    }

    async fn look_up_once(&self, digest: Digest, why: &ClientError) -> Answer {
        match self.conn.get_transaction(&digest).await {
            Ok(result) => Answer::Executed(Box::new(result)),
            Err(_) => Answer::Refused(failure_name(why)),
        }
    }
}

/// How long to wait before sending again, growing to a quarter second: from a short first wait
/// for a nonce whose predecessor is probably being admitted right now (but may itself be waiting
/// out a busy server, so the wait grows too), from a longer one for a busy server; with a little
/// jitter from the digest so that clients turned away together do not come back together.
fn backoff(retry: Retry, attempt: u32, digest: Digest) -> Duration {
    let (base_us, cap_us) = match retry {
        Retry::NotYet => (500, 250_000),
        _ => (5_000, 250_000),
    };
    let grown = base_us * (1u64 << attempt.min(10).saturating_sub(1));
    let jitter = u64::from(digest.0[(attempt as usize) % 32]) * base_us / 256;
    Duration::from_micros(grown.min(cap_us) + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        let d = Digest([0; 32]);
        assert_eq!(backoff(Retry::NotYet, 1, d), Duration::from_micros(500));
        assert_eq!(backoff(Retry::Busy, 1, d), Duration::from_millis(5));
        assert_eq!(backoff(Retry::Busy, 2, d), Duration::from_millis(10));
        assert_eq!(backoff(Retry::Busy, 30, d), Duration::from_millis(250));
        assert_eq!(backoff(Retry::NotYet, 30, d), Duration::from_millis(250));
        assert!(backoff(Retry::Busy, 1, Digest([255; 32])) < Duration::from_millis(10));
    }

    #[test]
    fn tickets_stop_at_the_count() {
        let shared = Shared::new(Stop::Transactions(2));
        assert!(shared.take_ticket() && shared.take_ticket());
        assert!(!shared.take_ticket());
        assert_eq!(shared.progress(Phase::Running).sent, 2);
        let timed = Shared::new(Stop::Duration(Duration::from_secs(60)));
        assert!(!timed.take_ticket(), "no tickets before the start");
        timed.start();
        assert!(timed.take_ticket());
    }
}
