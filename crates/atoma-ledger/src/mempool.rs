//! The mempool: transactions accepted for ordering, waiting for a block.
//!
//! It holds a bounded queue of verified transactions, counts the nonces of transactions it has
//! accepted but that are not yet applied (so a client can pipeline nonces n, n+1, …), and holds
//! for a while transactions whose nonce is a little ahead (so pipelined submissions that
//! overtook each other are still ordered by nonce). It does no I/O and reads no clock: the
//! caller passes the time. Whoever proposes blocks — the single validator's
//! [`crate::proposer::LocalProposer`], or a consensus leader — takes transactions from the front
//! with [`Mempool::take`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use atoma_contract::Address;

use crate::error::LedgerError;
use crate::tx::VerifiedTransaction;

/// How far ahead of its sender's next nonce a transaction may be and still be held
/// ([`Mempool::admit_or_hold`]). Held nonces are distinct, so this also bounds the held
/// transactions of one sender.
pub const NONCE_HOLD_WINDOW: u64 = 32;
/// Held transactions of all senders together, at most (and never more than half the mempool's
/// capacity: see [`Mempool::max_held`]).
pub const MAX_HELD_TRANSACTIONS: usize = 1024;

/// What [`Mempool::admit_or_hold`] did with a transaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// It is in the mempool, and so are the sender's held transactions it released (listed here,
    /// in nonce order, right behind it).
    Queued(Vec<VerifiedTransaction>),
    /// It waits for the sender's missing nonces until the given time.
    Held,
}

/// A transaction waiting for its sender's missing nonces.
#[derive(Debug)]
struct Held {
    tx: VerifiedTransaction,
    until: Instant,
}

/// Transactions accepted for ordering. See the module docs.
#[derive(Debug)]
pub struct Mempool {
    capacity: usize,
    queue: VecDeque<VerifiedTransaction>,
    /// Next nonce of senders with transactions accepted but not yet applied.
    pending: BTreeMap<Address, u64>,
    /// Transactions ahead of their sender's next nonce, by sender and nonce.
    held: BTreeMap<Address, BTreeMap<u64, Held>>,
    /// When each held transaction expires: the same entries as `held`, soonest first.
    expiries: BTreeSet<(Instant, Address, u64)>,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` transactions (held ones included).
    pub fn new(capacity: usize) -> Self {
        Mempool {
            capacity,
            queue: VecDeque::new(),
            pending: BTreeMap::new(),
            held: BTreeMap::new(),
            expiries: BTreeSet::new(),
        }
    }

    /// The nonce the sender's next transaction must carry, given its next nonce among applied
    /// blocks: accepted transactions waiting for a block count as used.
    pub fn expected_nonce(&self, sender: &Address, applied_next: u64) -> u64 {
        self.pending.get(sender).copied().unwrap_or(0).max(applied_next)
    }

    /// Accepts a verified transaction into the mempool; a nonce ahead of the expected one is
    /// refused at once.
    ///
    /// # Errors
    /// `ENonceUsed` / `ENonceFuture` when the nonce is not [`Mempool::expected_nonce`];
    /// `EMempoolFull` when the mempool (held transactions included) holds its capacity.
    pub fn admit(&mut self, tx: VerifiedTransaction, applied_next: u64) -> Result<(), LedgerError> {
        self.admit_releasing(tx, applied_next).map(drop)
    }

    /// [`Mempool::admit`], returning the sender's held transactions that the admission
    /// released: they follow it in the mempool, in nonce order.
    ///
    /// # Errors
    /// As [`Mempool::admit`].
    pub fn admit_releasing(
        &mut self,
        tx: VerifiedTransaction,
        applied_next: u64,
    ) -> Result<Vec<VerifiedTransaction>, LedgerError> {
        let sender = tx.sender();
        let expected = self.expected_nonce(&sender, applied_next);
        let got = tx.nonce();
        if got < expected {
            return Err(LedgerError::ENonceUsed { expected, got });
        }
        if got > expected {
            return Err(LedgerError::ENonceFuture { expected, got });
        }
        if self.len() >= self.capacity {
            return Err(LedgerError::EMempoolFull);
        }
        let mut next = expected.checked_add(1).ok_or(LedgerError::ENonceUsed { expected, got })?;
        self.queue.push_back(tx);
        let mut released = Vec::new();
        if let Some(slots) = self.held.get_mut(&sender) {
            // Like an admitted one, a held nonce of u64::MAX is never released: no nonce could
            // follow it.
            while let Some(after) = next.checked_add(1) {
                let Some(held) = slots.remove(&next) else { break };
                self.expiries.remove(&(held.until, sender, next));
                self.queue.push_back(held.tx.clone());
                released.push(held.tx);
                next = after;
            }
            if slots.is_empty() {
                self.held.remove(&sender);
            }
        }
        self.pending.insert(sender, next);
        Ok(released)
    }

    /// [`Mempool::admit_releasing`], except that a transaction whose nonce is ahead of the
    /// expected one by at most [`NONCE_HOLD_WINDOW`] is held until `hold_until`: the admission
    /// of the nonces before it releases it into the mempool, [`Mempool::expire_held`] refuses
    /// it after that time. Held transactions count toward the mempool's capacity.
    ///
    /// # Errors
    /// `ENonceUsed` below [`Mempool::expected_nonce`]. `ENonceFuture` above it when the nonce
    /// is more than [`NONCE_HOLD_WINDOW`] ahead, when that nonce is already held, or when no room
    /// is left to hold it ([`Mempool::max_held`], or the capacity). `EMempoolFull` when the
    /// expected nonce comes and the mempool, held transactions included, holds its capacity.
    pub fn admit_or_hold(
        &mut self,
        tx: VerifiedTransaction,
        applied_next: u64,
        hold_until: Instant,
    ) -> Result<Admission, LedgerError> {
        let sender = tx.sender();
        let expected = self.expected_nonce(&sender, applied_next);
        let got = tx.nonce();
        if got <= expected {
            return self.admit_releasing(tx, applied_next).map(Admission::Queued);
        }
        let room = self.len() < self.capacity && self.held_len() < self.max_held();
        let slots = self.held.entry(sender).or_default();
        if got - expected > NONCE_HOLD_WINDOW || !room || slots.contains_key(&got) {
            if slots.is_empty() {
                self.held.remove(&sender);
            }
            return Err(LedgerError::ENonceFuture { expected, got });
        }
        slots.insert(got, Held { tx, until: hold_until });
        self.expiries.insert((hold_until, sender, got));
        Ok(Admission::Held)
    }

    /// Removes the held transactions whose time ran out by `now`, each with the `ENonceFuture`
    /// it gets (against the sender's expected nonce now, given its next nonce among applied
    /// blocks).
    pub fn expire_held(
        &mut self,
        now: Instant,
        applied_next: impl Fn(&Address) -> u64,
    ) -> Vec<(VerifiedTransaction, LedgerError)> {
        let mut expired = Vec::new();
        while let Some(&(until, sender, got)) = self.expiries.first() {
            if until > now {
                break;
            }
            self.expiries.pop_first();
            let expected = self.expected_nonce(&sender, applied_next(&sender));
            let Some(slots) = self.held.get_mut(&sender) else { continue };
            if let Some(held) = slots.remove(&got) {
                expired.push((held.tx, LedgerError::ENonceFuture { expected, got }));
            }
            if slots.is_empty() {
                self.held.remove(&sender);
            }
        }
        expired
    }

    /// How many transactions may be held at once: [`MAX_HELD_TRANSACTIONS`], but at most half the
    /// capacity, so that held transactions can never fill the mempool and lock out the nonces
    /// they wait for.
    pub fn max_held(&self) -> usize {
        MAX_HELD_TRANSACTIONS.min(self.capacity / 2)
    }

    /// When the first held transaction expires, if any is held.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(until, _, _)| *until)
    }

    /// Transactions waiting for a block (held ones not included).
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Transactions held for their senders' missing nonces.
    pub fn held_len(&self) -> usize {
        self.expiries.len()
    }

    /// What counts toward the capacity: transactions waiting for a block and held ones.
    pub fn len(&self) -> usize {
        self.queue_len() + self.held_len()
    }

    /// Whether nothing waits for a block and nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` of the oldest waiting transactions, in order, for the next block.
    pub fn take(&mut self, max: usize) -> Vec<VerifiedTransaction> {
        let count = self.queue.len().min(max);
        self.queue.drain(..count).collect()
    }

    /// Forgets pending nonces that applied blocks have caught up with.
    pub fn settle(&mut self, applied_next: impl Fn(&Address) -> u64) {
        self.pending.retain(|sender, next| *next > applied_next(sender));
    }

    /// Drops every waiting and held transaction and every pending nonce, returning the dropped
    /// transactions (the waiting ones, then the held ones). Used when a proposed block could not
    /// be applied: later transactions of its senders could no longer follow their nonces.
    pub fn reset(&mut self) -> Vec<VerifiedTransaction> {
        self.pending.clear();
        self.expiries.clear();
        let held = std::mem::take(&mut self.held).into_values().flat_map(BTreeMap::into_values);
        self.queue.drain(..).chain(held.map(|h| h.tx)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Keypair;
    use atoma_contract::Call;
    use std::time::Instant;

    const CHAIN: [u8; 32] = [1; 32];

    fn tx(key: &Keypair, nonce: u64) -> VerifiedTransaction {
        key.sign_call(CHAIN, nonce, Call::TransferToma { recipient: Address([2; 32]), amount: 1 })
            .verify(&CHAIN)
            .unwrap()
    }

    #[test]
    fn nonces_pipeline_and_the_mempool_is_bounded() {
        let mut s = Mempool::new(2);
        let k = Keypair::test_account(0);
        assert_eq!(s.admit(tx(&k, 1), 0), Err(LedgerError::ENonceFuture { expected: 0, got: 1 }));
        s.admit(tx(&k, 0), 0).unwrap();
        assert_eq!(s.admit(tx(&k, 0), 0), Err(LedgerError::ENonceUsed { expected: 1, got: 0 }));
        s.admit(tx(&k, 1), 0).unwrap();
        assert_eq!(s.admit(tx(&k, 2), 0), Err(LedgerError::EMempoolFull));
        assert_eq!(s.expected_nonce(&k.address(), 0), 2);
        assert_eq!(s.take(10).len(), 2);
        s.settle(|_| 2);
        assert_eq!(s.expected_nonce(&k.address(), 0), 0, "settled senders fall back to the applied nonce");
    }

    fn nonces(txs: &[VerifiedTransaction]) -> Vec<u64> {
        txs.iter().map(VerifiedTransaction::nonce).collect()
    }

    #[test]
    fn nonces_ahead_are_held_and_released_in_order() {
        let mut s = Mempool::new(100);
        let (k, other) = (Keypair::test_account(0), Keypair::test_account(1));
        let until = Instant::now();
        assert_eq!(s.admit_or_hold(tx(&k, 3), 0, until), Ok(Admission::Held));
        assert_eq!(s.admit_or_hold(tx(&k, 1), 0, until), Ok(Admission::Held));
        assert_eq!(s.admit_or_hold(tx(&other, 0), 0, until), Ok(Admission::Queued(vec![])));
        assert_eq!(
            s.admit_or_hold(tx(&k, 1), 0, until),
            Err(LedgerError::ENonceFuture { expected: 0, got: 1 }),
            "a held nonce is not held twice"
        );
        assert_eq!((s.queue_len(), s.held_len(), s.expected_nonce(&k.address(), 0)), (1, 2, 0));
        // Nonce 0 releases 1 but not 3, which still misses 2.
        assert_eq!(s.admit_or_hold(tx(&k, 0), 0, until), Ok(Admission::Queued(vec![tx(&k, 1)])));
        assert_eq!((s.queue_len(), s.held_len(), s.expected_nonce(&k.address(), 0)), (3, 1, 2));
        // Without a hold (enqueue), the expected nonce still releases what follows it.
        assert_eq!(s.admit_releasing(tx(&k, 2), 0), Ok(vec![tx(&k, 3)]));
        assert_eq!((s.held_len(), s.expected_nonce(&k.address(), 0)), (0, 4));
        assert_eq!(nonces(&s.take(100)), [0, 0, 1, 2, 3]);
        assert_eq!(
            s.admit_or_hold(tx(&k, 2), 0, until),
            Err(LedgerError::ENonceUsed { expected: 4, got: 2 })
        );
    }

    #[test]
    fn holds_are_bounded_and_expire() {
        let mut s = Mempool::new(4);
        let k = Keypair::test_account(0);
        let start = Instant::now();
        let later = start + std::time::Duration::from_secs(1);
        let far = NONCE_HOLD_WINDOW + 1;
        assert_eq!(
            s.admit_or_hold(tx(&k, far), 0, start),
            Err(LedgerError::ENonceFuture { expected: 0, got: far }),
            "beyond the window: refused at once"
        );
        assert_eq!(s.admit_or_hold(tx(&k, NONCE_HOLD_WINDOW), 0, start), Ok(Admission::Held));
        assert_eq!(s.admit_or_hold(tx(&k, 2), 0, later), Ok(Admission::Held));
        assert_eq!(s.max_held(), 2, "half the capacity");
        assert_eq!(
            s.admit_or_hold(tx(&k, 3), 0, later),
            Err(LedgerError::ENonceFuture { expected: 0, got: 3 })
        );
        // Held transactions count toward the capacity.
        s.admit(tx(&Keypair::test_account(1), 0), 0).unwrap();
        s.admit(tx(&Keypair::test_account(2), 0), 0).unwrap();
        assert_eq!(s.admit(tx(&Keypair::test_account(3), 0), 0), Err(LedgerError::EMempoolFull));
        assert_eq!(s.len(), 4);
        assert_eq!(s.next_expiry(), Some(start));
        let expired = s.expire_held(start, |_| 0);
        assert_eq!(
            expired,
            vec![(tx(&k, NONCE_HOLD_WINDOW), LedgerError::ENonceFuture { expected: 0, got: 32 })]
        );
        assert_eq!((s.held_len(), s.next_expiry()), (1, Some(later)));
        assert_eq!(s.admit(tx(&Keypair::test_account(3), 0), 0), Ok(()), "an expired hold frees its place");
        assert_eq!(s.reset().len(), 4, "a reset drops the held transaction too");
        assert_eq!((s.len(), s.next_expiry()), (0, None));
    }

    #[test]
    fn the_held_total_is_bounded() {
        let mut s = Mempool::new(10 * MAX_HELD_TRANSACTIONS);
        let until = Instant::now();
        let mut i = 0u64;
        while s.held_len() < MAX_HELD_TRANSACTIONS {
            assert_eq!(s.admit_or_hold(tx(&Keypair::test_account(i), 1), 0, until), Ok(Admission::Held));
            i += 1;
        }
        let last = Keypair::test_account(i);
        assert_eq!(
            s.admit_or_hold(tx(&last, 1), 0, until),
            Err(LedgerError::ENonceFuture { expected: 0, got: 1 })
        );
        assert_eq!(s.admit_or_hold(tx(&last, 0), 0, until), Ok(Admission::Queued(vec![])));
    }
}
