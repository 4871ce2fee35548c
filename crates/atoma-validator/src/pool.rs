//! A validator's transaction pool: transactions verified and waiting for a block, from this
//! validator's clients and, by gossip, from every other validator's.
//!
//! Unlike the single validator's mempool, the pool does not decide the order: any validator may
//! lead the next view, and a leader builds on the chain consensus gives it, whose last blocks may
//! not be executed yet. So the pool keeps every transaction by sender and nonce, and
//! [`TxPool::select`] picks, for the chain being built on, the transactions that follow each
//! sender's nonce there — the executed nonces plus the transactions of the ancestors not yet
//! executed ([`Pending`]) — oldest first. Executed blocks take their transactions out
//! ([`TxPool::remove_executed`]), and with them any transaction whose nonce is used.
//!
//! Pure and synchronous: no I/O, no clock; the caller passes the executed nonces.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use atoma_contract::Address;
use atoma_types::{Digest, LedgerError, SignedTransaction, VerifiedTransaction};

/// How far ahead of its sender's executed nonce a transaction may be and still be admitted: a
/// client may pipeline this many.
pub const NONCE_WINDOW: u64 = 1024;
/// Transactions a pool holds by default.
pub const DEFAULT_POOL_CAPACITY: usize = 20_000;

/// What [`TxPool::admit`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Admitted {
    /// The transaction is new to the pool.
    New,
    /// The pool already holds it (gossip brings every transaction to every validator).
    Known,
}

/// The transactions of the chain being built on that are not executed yet: the senders' next
/// nonces after them, and their digests.
#[derive(Clone, Default, Debug)]
pub struct Pending {
    next: BTreeMap<Address, u64>,
    digests: BTreeSet<Digest>,
}

impl Pending {
    /// Counts one transaction of an ancestor not yet executed. Ancestors may be added in any
    /// order: only the highest nonce of each sender matters.
    pub fn add(&mut self, sender: Address, nonce: u64, digest: Digest) {
        let next = nonce.saturating_add(1);
        let entry = self.next.entry(sender).or_insert(next);
        *entry = (*entry).max(next);
        self.digests.insert(digest);
    }

    /// The sender's next nonce on the chain being built on.
    fn next_nonce(&self, sender: &Address, executed_next: u64) -> u64 {
        self.next.get(sender).copied().unwrap_or(0).max(executed_next)
    }
}

#[derive(Clone, Debug)]
struct Entry {
    tx: VerifiedTransaction,
    /// Arrival order: older transactions are proposed first.
    arrival: u64,
}

/// The pool. See the module docs.
#[derive(Debug)]
pub struct TxPool {
    capacity: usize,
    by_digest: BTreeMap<Digest, Entry>,
    /// Each sender's transactions by nonce (one per nonce: the first to arrive).
    by_sender: BTreeMap<Address, BTreeMap<u64, Digest>>,
    arrivals: u64,
}

impl TxPool {
    /// An empty pool of at most `capacity` transactions.
    pub fn new(capacity: usize) -> Self {
        TxPool { capacity, by_digest: BTreeMap::new(), by_sender: BTreeMap::new(), arrivals: 0 }
    }

    /// How many transactions wait.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Whether the pool holds this transaction.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.by_digest.contains_key(digest)
    }

    /// The pooled transaction with these exact bytes and signature, if the pool holds it (the
    /// digest covers both; the bytes are compared too, so that not even a hash collision could
    /// pass an unverified signature).
    pub fn get(&self, signed: &SignedTransaction) -> Option<&VerifiedTransaction> {
        let entry = self.by_digest.get(&signed.digest())?;
        (entry.tx.signed() == signed).then_some(&entry.tx)
    }

    /// Admits a verified transaction, given its sender's executed next nonce.
    ///
    /// # Errors
    /// `ENonceUsed` below the executed nonce, or when the pool holds another transaction of the
    /// sender with this nonce; `ENonceFuture` more than [`NONCE_WINDOW`] ahead; `EMempoolFull`.
    pub fn admit(&mut self, tx: VerifiedTransaction, executed_next: u64) -> Result<Admitted, LedgerError> {
        let digest = tx.digest();
        if self.by_digest.contains_key(&digest) {
            return Ok(Admitted::Known);
        }
        let (sender, nonce) = (tx.sender(), tx.nonce());
        let expected = self.next_nonce(&sender, executed_next);
        if nonce < executed_next {
            return Err(LedgerError::ENonceUsed { expected, got: nonce });
        }
        if nonce - executed_next > NONCE_WINDOW {
            return Err(LedgerError::ENonceFuture { expected, got: nonce });
        }
        if self.by_sender.get(&sender).is_some_and(|nonces| nonces.contains_key(&nonce)) {
            return Err(LedgerError::ENonceUsed { expected, got: nonce });
        }
        if self.by_digest.len() >= self.capacity {
            return Err(LedgerError::EMempoolFull);
        }
        self.arrivals += 1;
        self.by_sender.entry(sender).or_default().insert(nonce, digest);
        self.by_digest.insert(digest, Entry { tx, arrival: self.arrivals });
        Ok(Admitted::New)
    }

    /// The nonce the sender's next transaction should carry: after its executed nonce and every
    /// nonce the pool holds without a gap.
    pub fn next_nonce(&self, sender: &Address, executed_next: u64) -> u64 {
        let mut next = executed_next;
        if let Some(nonces) = self.by_sender.get(sender) {
            for nonce in nonces.range(executed_next..).map(|(n, _)| *n) {
                if nonce != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// The transactions for the next block on a chain whose unexecuted ancestors are `pending`:
    /// each sender's run of nonces that follows its nonce there, oldest transaction first, at most
    /// `max_transactions` and `max_bytes` (of their encodings) in all.
    pub fn select(
        &self,
        pending: &Pending,
        executed_next: impl Fn(&Address) -> u64,
        max_transactions: usize,
        max_bytes: usize,
    ) -> Vec<VerifiedTransaction> {
        // Each sender's first candidate, the oldest first; taking one makes its next nonce the
        // sender's candidate.
        let mut heads: BinaryHeap<std::cmp::Reverse<(u64, Address, u64)>> = BinaryHeap::new();
        let candidate = |sender: &Address, nonce: u64| -> Option<(u64, Address, u64)> {
            let digest = self.by_sender.get(sender)?.get(&nonce)?;
            if pending.digests.contains(digest) {
                return None;
            }
            Some((self.by_digest.get(digest)?.arrival, *sender, nonce))
        };
        for sender in self.by_sender.keys() {
            let next = pending.next_nonce(sender, executed_next(sender));
            heads.extend(candidate(sender, next).map(std::cmp::Reverse));
        }
        let (mut chosen, mut bytes) = (Vec::new(), 0usize);
        while let Some(std::cmp::Reverse((_, sender, nonce))) = heads.pop() {
            if chosen.len() >= max_transactions {
                break;
            }
            let Some(entry) = self.by_sender[&sender].get(&nonce).and_then(|d| self.by_digest.get(d)) else {
                continue;
            };
            let size = entry.tx.signed().encoded_len();
            if bytes.saturating_add(size) > max_bytes {
                // This sender's later nonces cannot go without this one; others may still fit.
                continue;
            }
            bytes += size;
            chosen.push(entry.tx.clone());
            if let Some(next) = nonce.checked_add(1) {
                heads.extend(candidate(&sender, next).map(std::cmp::Reverse));
            }
        }
        chosen
    }

    /// Takes out the transactions of an executed block (`digests`), and every transaction whose
    /// nonce is now used (`executed_next` gives each sender's next nonce after the block).
    /// Returns those taken out as used without being executed: their submitters are refused.
    pub fn remove_executed(
        &mut self,
        digests: &[Digest],
        executed_next: impl Fn(&Address) -> u64,
    ) -> Vec<VerifiedTransaction> {
        let mut senders = BTreeSet::new();
        for digest in digests {
            if let Some(entry) = self.remove(digest) {
                senders.insert(entry.tx.sender());
            }
        }
        let mut stale = Vec::new();
        for sender in senders {
            let next = executed_next(&sender);
            let used: Vec<Digest> = self
                .by_sender
                .get(&sender)
                .map(|nonces| nonces.range(..next).map(|(_, d)| *d).collect())
                .unwrap_or_default();
            stale.extend(used.iter().filter_map(|d| self.remove(d)).map(|e| e.tx));
        }
        stale
    }

    fn remove(&mut self, digest: &Digest) -> Option<Entry> {
        let entry = self.by_digest.remove(digest)?;
        let sender = entry.tx.sender();
        if let Some(nonces) = self.by_sender.get_mut(&sender) {
            nonces.remove(&entry.tx.nonce());
            if nonces.is_empty() {
                self.by_sender.remove(&sender);
            }
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::Call;
    use atoma_types::Keypair;

    const CHAIN: [u8; 32] = [3; 32];

    fn tx(key: &Keypair, nonce: u64) -> VerifiedTransaction {
        key.sign_call(CHAIN, nonce, Call::TransferToma { recipient: Address([9; 32]), amount: 1 })
            .verify(&CHAIN)
            .unwrap()
    }

    #[test]
    fn only_the_exact_signed_transaction_is_taken_as_verified() {
        let mut pool = TxPool::new(4);
        let k = Keypair::test_account(0);
        let admitted = tx(&k, 0);
        pool.admit(admitted.clone(), 0).unwrap();
        assert_eq!(pool.get(admitted.signed()), Some(&admitted));
        // The same transaction with a signature byte flipped is another one, never taken as
        // verified.
        let mut forged = admitted.signed().clone();
        forged.signature[10] ^= 1;
        assert_eq!(pool.get(&forged), None);
        forged.signature[10] ^= 1;
        assert_eq!(pool.get(&forged), Some(&admitted));
    }

    #[test]
    fn admission_bounds_nonces_and_the_pool() {
        let mut pool = TxPool::new(3);
        let k = Keypair::test_account(0);
        assert_eq!(pool.admit(tx(&k, 5), 5), Ok(Admitted::New));
        assert_eq!(pool.admit(tx(&k, 5), 5), Ok(Admitted::Known), "gossip repeats are no error");
        assert_eq!(pool.admit(tx(&k, 4), 5).map_err(|e| e.name()), Err("ENonceUsed"));
        let far = 5 + NONCE_WINDOW + 1;
        assert_eq!(pool.admit(tx(&k, far), 5).map_err(|e| e.name()), Err("ENonceFuture"));
        let mut other = tx(&k, 6);
        pool.admit(other.clone(), 5).unwrap();
        other = Keypair::test_account(0)
            .sign_call(CHAIN, 6, Call::TransferToma { recipient: Address([8; 32]), amount: 2 })
            .verify(&CHAIN)
            .unwrap();
        assert_eq!(pool.admit(other, 5).map_err(|e| e.name()), Err("ENonceUsed"), "nonce 6 is taken");
        assert_eq!(pool.next_nonce(&k.address(), 5), 7);
        pool.admit(tx(&k, 9), 5).unwrap();
        assert_eq!(pool.next_nonce(&k.address(), 5), 7, "a gap stops the run");
        assert_eq!(pool.admit(tx(&k, 10), 5).map_err(|e| e.name()), Err("EMempoolFull"));
    }

    #[test]
    fn selection_follows_the_chain_being_built_on() {
        let mut pool = TxPool::new(100);
        let (a, b) = (Keypair::test_account(0), Keypair::test_account(1));
        for n in 0..4 {
            pool.admit(tx(&a, n), 0).unwrap();
        }
        pool.admit(tx(&b, 0), 0).unwrap();
        pool.admit(tx(&b, 2), 0).unwrap();
        let executed = |_: &Address| 0;
        let all = pool.select(&Pending::default(), executed, 100, usize::MAX);
        assert_eq!(all.len(), 5, "b's nonce 2 waits for 1");
        // An unexecuted ancestor holds a's nonces 0 and 1: the block follows it.
        let mut pending = Pending::default();
        pending.add(a.address(), 1, tx(&a, 1).digest());
        pending.add(a.address(), 0, tx(&a, 0).digest());
        let next = pool.select(&pending, executed, 100, usize::MAX);
        let a_nonces: Vec<u64> =
            next.iter().filter(|t| t.sender() == a.address()).map(|t| t.nonce()).collect();
        assert_eq!(a_nonces, [2, 3]);
        assert_eq!(pool.select(&Pending::default(), executed, 2, usize::MAX).len(), 2, "the count bound");
        let one = tx(&a, 0).signed().encoded_len();
        assert_eq!(pool.select(&Pending::default(), executed, 100, one).len(), 1, "the byte bound");
    }

    #[test]
    fn executed_blocks_take_out_their_transactions_and_the_used_nonces() {
        let mut pool = TxPool::new(100);
        let a = Keypair::test_account(0);
        for n in 0..3 {
            pool.admit(tx(&a, n), 0).unwrap();
        }
        // Another validator's transaction with nonce 0 was executed, and ours with nonce 1.
        let stale = pool.remove_executed(&[tx(&a, 1).digest()], |_| 2);
        assert_eq!(stale.iter().map(|t| t.nonce()).collect::<Vec<_>>(), [0]);
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&tx(&a, 2).digest()));
    }
}
