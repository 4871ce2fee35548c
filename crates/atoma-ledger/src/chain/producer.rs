//! The block producer: one thread that wakes when transactions arrive (or every block time),
//! takes the waiting transactions from the mempool, has the local proposer make the next block,
//! applies it, and answers its submitters; and serves the time controls between two blocks.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use atoma_types::{BlockHeader, LedgerError};
use tokio::sync::oneshot;

use super::pool::{Pool, TxReply, lock};
use super::{CONTROL_QUEUE, now_ms};
use crate::ledger::{ApplyOutcome, Ledger};
use crate::proposer::LocalProposer;

/// Where a time control's block header goes.
pub(super) type BlockReply = oneshot::Sender<Result<BlockHeader, LedgerError>>;

/// A time control for the producer thread.
pub(super) enum Control {
    /// Put the next block in the next epoch, now.
    AdvanceEpoch(BlockReply),
    /// Move the clock forward and make a block, now.
    AdvanceClock(u64, BlockReply),
}

impl Control {
    fn refuse(self, error: LedgerError) {
        let (Control::AdvanceEpoch(reply) | Control::AdvanceClock(_, reply)) = self;
        let _ = reply.send(Err(error));
    }
}

/// How the producer thread is woken: a flag for "transactions arrived" (set by any number of
/// admissions, taken once), a bounded queue of time controls, and a stop flag.
pub(crate) struct Signals {
    state: Mutex<SignalState>,
    changed: Condvar,
}

struct SignalState {
    woken: bool,
    controls: VecDeque<Control>,
    stop: bool,
}

impl Signals {
    pub(super) fn new() -> Self {
        let state = SignalState { woken: false, controls: VecDeque::new(), stop: false };
        Signals { state: Mutex::new(state), changed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, SignalState> {
        // Every statement leaves the state valid; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Transactions arrived (or a hold began): the producer looks at the mempool again.
    pub(super) fn wake(&self) {
        let mut state = self.lock();
        if !state.woken {
            state.woken = true;
            self.changed.notify_one();
        }
    }

    /// Queues a time control.
    ///
    /// # Errors
    /// `EChainStopped` once stopped; `EMempoolFull` when [`CONTROL_QUEUE`] controls wait.
    pub(super) fn control(&self, control: Control) -> Result<(), LedgerError> {
        let mut state = self.lock();
        if state.stop {
            return Err(LedgerError::EChainStopped);
        }
        if state.controls.len() >= CONTROL_QUEUE {
            return Err(LedgerError::EMempoolFull);
        }
        state.controls.push_back(control);
        self.changed.notify_one();
        Ok(())
    }

    /// Tells the producer to stop; controls still waiting are refused by it.
    pub(super) fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_one();
    }

    /// Waits until woken, a control or the stop arrives, or `deadline` passes; at once when
    /// `busy`. Returns the waiting controls (and clears the wake-up), or `None` once stopped.
    fn wait(&self, busy: bool, deadline: Option<Instant>) -> Option<Vec<Control>> {
        let mut state = self.lock();
        loop {
            if state.stop {
                return None;
            }
            if busy || state.woken || !state.controls.is_empty() {
                break;
            }
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
        state.woken = false;
        Some(state.controls.drain(..).collect())
    }

    /// Takes the controls left after the stop.
    fn take_controls(&self) -> Vec<Control> {
        self.lock().controls.drain(..).collect()
    }
}

/// The block-producer thread's state.
pub(super) struct Producer {
    pub(super) ledger: Arc<Ledger>,
    pub(super) pool: Arc<Mutex<Pool>>,
    pub(super) signals: Arc<Signals>,
    /// Makes each block of the mempool's transactions; its clock and epoch requests are the
    /// time controls' to move, served on this thread.
    pub(super) proposer: LocalProposer,
    /// Transactions per block, at most.
    pub(super) max_block_transactions: usize,
    pub(super) block_time: Option<Duration>,
}

impl Producer {
    /// Makes blocks until stopped. Each turn serves every waiting time control (each makes a
    /// block at once), refuses held transactions whose time ran out, and then makes at most one
    /// block: so under sustained load a control waits for one block at most.
    pub(super) fn run(mut self) {
        let mut next_tick = self.block_time.map(|t| Instant::now() + t);
        loop {
            let (ready, next_expiry) = {
                let pool = lock(&self.pool);
                (pool.mempool.queue_len() > 0, pool.mempool.next_expiry())
            };
            let busy = ready && self.block_time.is_none();
            let deadline = match (next_tick, next_expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(controls) = self.signals.wait(busy, deadline) else { break };
            for control in controls {
                self.serve(control);
            }
            if lock(&self.pool).stopped {
                break;
            }
            self.expire_held();
            match (next_tick, self.block_time) {
                (Some(tick), Some(period)) if Instant::now() >= tick => {
                    let _ = self.produce();
                    next_tick = Some(Instant::now() + period);
                }
                (None, _) if self.mempool_len() > 0 => {
                    let _ = self.produce();
                }
                _ => {}
            }
        }
        self.stop();
    }

    /// Makes the block a time control asks for and answers it.
    fn serve(&mut self, control: Control) {
        let reply = match control {
            Control::AdvanceEpoch(reply) => {
                self.proposer.force_next_epoch();
                reply
            }
            Control::AdvanceClock(ms, reply) => {
                self.proposer.advance_clock(ms);
                reply
            }
        };
        let _ = reply.send(self.produce());
    }

    /// Refuses the held transactions whose time ran out with `ENonceFuture`.
    fn expire_held(&self) {
        let mut pool = lock(&self.pool);
        let expired = pool.mempool.expire_held(Instant::now(), |sender| self.ledger.next_nonce(sender));
        if expired.is_empty() {
            return;
        }
        for (tx, error) in expired {
            if let Some(reply) = pool.held.remove(&tx.digest()) {
                let _ = reply.send(Err(error));
            }
        }
        self.ledger.metrics().set_mempool(pool.mempool.len());
    }

    fn mempool_len(&self) -> usize {
        lock(&self.pool).mempool.queue_len()
    }

    /// Proposes the next block, applies it, and answers its submitters.
    fn produce(&mut self) -> Result<BlockHeader, LedgerError> {
        let tip = self.ledger.tip();
        let (block, waiters) = {
            let mut pool = lock(&self.pool);
            let transactions = pool.mempool.take(self.max_block_transactions);
            let block = self.proposer.propose(&tip, now_ms(), transactions);
            let waiters: Vec<Option<TxReply>> =
                block.header().tx_digests.iter().map(|d| pool.waiters.remove(d)).collect();
            self.ledger.metrics().set_mempool(pool.mempool.len());
            (block, waiters)
        };
        // Admission verified every transaction; the block is not verified again.
        match self.ledger.apply_verified(&block) {
            Ok(ApplyOutcome::Applied(effects)) => {
                lock(&self.pool).mempool.settle(|sender| self.ledger.next_nonce(sender));
                for (outcome, waiter) in effects.outcomes.into_iter().zip(waiters) {
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(Ok(outcome));
                    }
                }
                Ok(effects.header)
            }
            Ok(ApplyOutcome::AlreadyApplied) => self
                .fail(waiters, &LedgerError::EInvalidBlock("the proposed height was already applied".into())),
            Err(error) => {
                // The operator's log gets the cause; the submitters get its name.
                tracing::error!(
                    height = block.header().height,
                    "a block could not be applied: {}",
                    error.chain()
                );
                self.fail(waiters, &error.refusal())
            }
        }
    }

    /// Answers a failed block's submitters and drops the mempool and the held transactions,
    /// whose nonces no longer follow.
    fn fail(&self, waiters: Vec<Option<TxReply>>, error: &LedgerError) -> Result<BlockHeader, LedgerError> {
        let mut pool = lock(&self.pool);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
        let dropped = pool.mempool.reset();
        pool.refuse(&dropped, error);
        self.ledger.metrics().set_mempool(0);
        Err(error.clone())
    }

    /// Refuses everything still waiting: the mempool, held submissions and time controls.
    fn stop(&self) {
        {
            let mut pool = lock(&self.pool);
            pool.stopped = true;
            pool.mempool.reset();
            for (_, waiter) in std::mem::take(&mut pool.waiters) {
                let _ = waiter.send(Err(LedgerError::EChainStopped));
            }
            for (_, reply) in std::mem::take(&mut pool.held) {
                let _ = reply.send(Err(LedgerError::EChainStopped));
            }
            self.ledger.metrics().set_mempool(0);
        }
        self.signals.stop();
        for control in self.signals.take_controls() {
            control.refuse(LedgerError::EChainStopped);
        }
    }
}
