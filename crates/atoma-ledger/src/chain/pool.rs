//! Admission: the mempool, who waits for which transaction, and the gate every submission
//! passes through (the chain handle's and the verifier thread's) to enter it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use atoma_types::{Digest, LedgerError, TxOutcome, VerifiedTransaction};
use tokio::sync::oneshot;

use super::producer::Signals;
use crate::admission::AdmissionReply;
use crate::ledger::Ledger;
use crate::mempool::{Admission, Mempool};

/// Where a transaction's outcome goes when its block is applied.
pub(super) type TxReply = oneshot::Sender<Result<TxOutcome, LedgerError>>;

/// The mempool and who waits for which transaction.
pub(super) struct Pool {
    pub(super) mempool: Mempool,
    /// Transactions in the mempool, by digest: answered when their block is committed.
    pub(super) waiters: BTreeMap<Digest, TxReply>,
    /// Held submissions, by digest: answered when released (admitted) or refused.
    pub(super) held: BTreeMap<Digest, AdmissionReply>,
    pub(super) stopped: bool,
}

/// What admitting a transaction needs: the ledger's nonces, the mempool, and a way to wake the
/// producer. Shared by the handle and the verifier thread.
#[derive(Clone)]
pub(crate) struct Gate {
    pub(super) ledger: Arc<Ledger>,
    pub(super) pool: Arc<Mutex<Pool>>,
    pub(super) signals: Arc<Signals>,
    /// How long a submission with a nonce a little ahead is held; `None` refuses it at once.
    pub(super) hold: Option<Duration>,
}

/// A transaction accepted into the mempool; resolves when its block is committed.
#[derive(Debug)]
pub struct PendingTransaction {
    pub(super) digest: Digest,
    pub(super) receiver: oneshot::Receiver<Result<TxOutcome, LedgerError>>,
}

impl PendingTransaction {
    /// The transaction's digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Waits until the transaction's block is durably committed.
    ///
    /// # Errors
    /// `EStorage` when its block could not be stored; `EChainStopped` when the chain shut down
    /// before ordering it.
    pub async fn outcome(self) -> Result<TxOutcome, LedgerError> {
        self.receiver.await.map_err(|_| LedgerError::EChainStopped)?
    }
}

pub(super) fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    // The pool's invariants hold between statements; a panic elsewhere cannot break them.
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Gate {
    /// The chain id transactions must name.
    pub(crate) fn chain_id(&self) -> [u8; 32] {
        self.ledger.params().chain_id
    }

    /// Admits verified transactions in order (each refused one is skipped, later ones still
    /// try), and wakes the producer once. Nothing is held: a nonce ahead is refused at once.
    pub(crate) fn admit_all(
        &self,
        verified: Vec<Result<VerifiedTransaction, LedgerError>>,
    ) -> Vec<Result<PendingTransaction, LedgerError>> {
        let results = {
            let mut pool = lock(&self.pool);
            let stopped = pool.stopped;
            verified
                .into_iter()
                .map(|tx| {
                    if stopped { Err(LedgerError::EChainStopped) } else { self.admit_locked(&mut pool, tx?) }
                })
                .collect()
        };
        self.wake();
        results
    }

    /// Admits verified submissions in order and answers each on its reply, holding those whose
    /// nonce is a little ahead (their reply is kept until they are released or refused); wakes
    /// the producer once.
    pub(crate) fn admit_submissions(
        &self,
        submissions: impl IntoIterator<Item = (Result<VerifiedTransaction, LedgerError>, AdmissionReply)>,
    ) {
        {
            let mut pool = lock(&self.pool);
            let hold_until = self.hold.map(|hold| Instant::now() + hold);
            for (verified, reply) in submissions {
                let admitted = match verified {
                    Err(error) => Err(error),
                    Ok(_) if pool.stopped => Err(LedgerError::EChainStopped),
                    Ok(tx) => {
                        let digest = tx.digest();
                        match self.admit_or_hold(&mut pool, tx, hold_until) {
                            Ok(Some(pending)) => Ok(pending),
                            Ok(None) => {
                                pool.held.insert(digest, reply);
                                continue;
                            }
                            Err(error) => Err(error),
                        }
                    }
                };
                // A submitter that went away does not withdraw its transaction.
                let _ = reply.send(admitted);
            }
        }
        self.wake();
    }

    /// Admits one verified transaction for the sender's expected nonce; the pool is locked.
    pub(super) fn admit_locked(
        &self,
        pool: &mut Pool,
        tx: VerifiedTransaction,
    ) -> Result<PendingTransaction, LedgerError> {
        let digest = tx.digest();
        let applied_next = self.ledger.next_nonce(&tx.sender());
        let released = pool.mempool.admit_releasing(tx, applied_next)?;
        Ok(self.queued(pool, digest, released))
    }

    /// Admits (`Some`) or holds until `hold_until` (`None`) one verified transaction; the pool is
    /// locked. Without `hold_until`, as [`Gate::admit_locked`].
    fn admit_or_hold(
        &self,
        pool: &mut Pool,
        tx: VerifiedTransaction,
        hold_until: Option<Instant>,
    ) -> Result<Option<PendingTransaction>, LedgerError> {
        let Some(hold_until) = hold_until else { return self.admit_locked(pool, tx).map(Some) };
        let digest = tx.digest();
        let applied_next = self.ledger.next_nonce(&tx.sender());
        match pool.mempool.admit_or_hold(tx, applied_next, hold_until)? {
            Admission::Queued(released) => Ok(Some(self.queued(pool, digest, released))),
            Admission::Held => {
                self.ledger.metrics().set_mempool(pool.mempool.len());
                Ok(None)
            }
        }
    }

    /// A transaction entered the mempool, followed by the held ones it `released`: registers
    /// their waiters and answers the held ones' submitters.
    fn queued(
        &self,
        pool: &mut Pool,
        digest: Digest,
        released: Vec<VerifiedTransaction>,
    ) -> PendingTransaction {
        for tx in released {
            let pending = pool.wait_for(tx.digest());
            if let Some(reply) = pool.held.remove(&tx.digest()) {
                // A submitter that went away does not withdraw its transaction.
                let _ = reply.send(Ok(pending));
            }
        }
        self.ledger.metrics().set_mempool(pool.mempool.len());
        pool.wait_for(digest)
    }

    pub(super) fn wake(&self) {
        self.signals.wake();
    }
}

impl Pool {
    /// Registers a waiter for a transaction now in the mempool.
    pub(super) fn wait_for(&mut self, digest: Digest) -> PendingTransaction {
        let (sender, receiver) = oneshot::channel();
        self.waiters.insert(digest, sender);
        PendingTransaction { digest, receiver }
    }

    /// Answers every waiter and held submission in `dropped` with `error`.
    pub(super) fn refuse(&mut self, dropped: &[VerifiedTransaction], error: &LedgerError) {
        for tx in dropped {
            let digest = tx.digest();
            if let Some(waiter) = self.waiters.remove(&digest) {
                let _ = waiter.send(Err(error.clone()));
            }
            if let Some(reply) = self.held.remove(&digest) {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
