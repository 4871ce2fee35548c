//! Admission for many concurrent submitters: a verifier thread takes every submission waiting,
//! verifies them together (signatures in batches, on every core:
//! [`crate::batch::verify_transactions`]) and admits them to the mempool in the order they
//! arrived.
//!
//! Under load, submissions pile up while a batch is being verified, so the next batch is larger
//! and each signature cheaper; an idle chain verifies a lone submission at once. Verification
//! comes before a nonce is reserved, so a forged transaction can never take its sender's nonce,
//! and the answer for each transaction is the one [`crate::SignedTransaction::verify`] gives.
//!
//! Submissions can reach this queue out of their nonces' order (an RPC server runs the requests
//! of one connection concurrently), so a submission whose nonce is a little ahead is held for a
//! while instead of refused ([`crate::Sequencer::admit_or_hold`]); its answer comes when it is
//! released or refused.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::batch::verify_transactions;
use crate::chain::{Gate, PendingTransaction};
use crate::error::LedgerError;
use crate::tx::SignedTransaction;

/// Submissions one verifier pass takes at most.
pub const MAX_ADMISSION_BATCH: usize = 4096;

/// Where a submission's admission result goes.
pub(crate) type AdmissionReply = oneshot::Sender<Result<PendingTransaction, LedgerError>>;
type Reply = AdmissionReply;

/// Submissions waiting for the verifier thread.
pub(crate) struct AdmissionQueue {
    queue: Mutex<Queue>,
    ready: Condvar,
    capacity: usize,
}

struct Queue {
    jobs: Vec<(SignedTransaction, Reply)>,
    closed: bool,
}

impl AdmissionQueue {
    /// A queue that refuses submissions (`EMempoolFull`) beyond `capacity` waiting.
    pub(crate) fn new(capacity: usize) -> Self {
        AdmissionQueue {
            queue: Mutex::new(Queue { jobs: Vec::new(), closed: false }),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// Queues a submission; the receiver gets its admission result.
    ///
    /// # Errors
    /// `EChainStopped` after [`AdmissionQueue::close`]; `EMempoolFull` when the queue is full.
    pub(crate) fn push(
        &self,
        signed: SignedTransaction,
    ) -> Result<oneshot::Receiver<Result<PendingTransaction, LedgerError>>, LedgerError> {
        let (reply, receiver) = oneshot::channel();
        {
            let mut queue = self.lock();
            if queue.closed {
                return Err(LedgerError::EChainStopped);
            }
            if queue.jobs.len() >= self.capacity {
                return Err(LedgerError::EMempoolFull);
            }
            queue.jobs.push((signed, reply));
        }
        self.ready.notify_one();
        Ok(receiver)
    }

    /// Refuses new submissions and tells the verifier thread to finish.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue's invariants hold between statements; a panic elsewhere cannot break them.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for submissions and takes up to [`MAX_ADMISSION_BATCH`]; `None` once closed.
    fn take(&self) -> Option<Vec<(SignedTransaction, Reply)>> {
        let mut queue = self.lock();
        while queue.jobs.is_empty() && !queue.closed {
            queue = self.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
        }
        if queue.closed {
            return None;
        }
        let taken = queue.jobs.len().min(MAX_ADMISSION_BATCH);
        let rest = queue.jobs.split_off(taken);
        Some(std::mem::replace(&mut queue.jobs, rest))
    }

    /// Refuses everything still waiting.
    fn drain_stopped(&self) {
        for (_, reply) in std::mem::take(&mut self.lock().jobs) {
            let _ = reply.send(Err(LedgerError::EChainStopped));
        }
    }
}

/// The verifier thread: verifies and admits batches until the queue is closed.
pub(crate) fn run_verifier(queue: &AdmissionQueue, gate: &Gate) {
    while let Some(jobs) = queue.take() {
        let (signed, replies): (Vec<SignedTransaction>, Vec<Reply>) = jobs.into_iter().unzip();
        let verified = verify_transactions(signed, &gate.chain_id());
        gate.admit_submissions(verified.into_iter().zip(replies));
    }
    queue.drain_stopped();
}
