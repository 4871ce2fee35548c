//! Verifying many transactions at once: signatures in batches, on every core.
//!
//! [`verify_transactions`] gives, for each transaction, exactly what
//! [`SignedTransaction::verify`] would — the signature rule of [`crate::signature`] is decided the
//! same way alone and in batches — so the answer depends neither on how transactions were grouped
//! nor on how the work was spread over threads. Only the speed does: decoding, hashing and key
//! decoding run on up to [`std::thread::available_parallelism`] scoped threads, each verifying its
//! share of signatures in batches.

use std::sync::OnceLock;

use crate::error::LedgerError;
use crate::signature::{SignatureCheck, check_all};
use crate::tx::{SignedTransaction, Transaction, VerifiedTransaction, signature_fails};

/// The fewest transactions worth a thread of their own: below this, starting a thread costs
/// more than it saves.
pub const MIN_PER_THREAD: usize = 64;

/// Each transaction's verification result, in order: the same as [`SignedTransaction::verify`]
/// on each, computed with batched signature checks spread over the machine's cores.
pub fn verify_transactions(
    transactions: Vec<SignedTransaction>,
    chain_id: &[u8; 32],
) -> Vec<Result<VerifiedTransaction, LedgerError>> {
    let threads = (transactions.len() / MIN_PER_THREAD).clamp(1, cores());
    if threads == 1 {
        return verify_share(transactions, chain_id);
    }
    let share = transactions.len().div_ceil(threads);
    let mut shares = Vec::with_capacity(threads);
    let mut rest = transactions;
    while rest.len() > share {
        let tail = rest.split_off(share);
        shares.push(rest);
        rest = tail;
    }
    shares.push(rest);
    std::thread::scope(|scope| {
        let mut shares = shares.into_iter();
        let first = shares.next().unwrap_or_default();
        let others: Vec<_> = shares.map(|s| scope.spawn(move || verify_share(s, chain_id))).collect();
        let mut results = verify_share(first, chain_id);
        for handle in others {
            // A verifier thread panicking would be a bug; its transactions are then refused.
            results.extend(handle.join().unwrap_or_else(|_| Vec::new()));
        }
        results
    })
}

/// One thread's work: pre-checks, then the signatures of those that passed, in batches.
fn verify_share(
    transactions: Vec<SignedTransaction>,
    chain_id: &[u8; 32],
) -> Vec<Result<VerifiedTransaction, LedgerError>> {
    let prechecked: Vec<Result<(Transaction, SignatureCheck), LedgerError>> =
        transactions.iter().map(|t| t.precheck(chain_id)).collect();
    let checks: Vec<SignatureCheck> =
        prechecked.iter().filter_map(|p| p.as_ref().ok()).map(|(_, check)| check.clone()).collect();
    let mut holds = check_all(&checks).into_iter();
    transactions
        .into_iter()
        .zip(prechecked)
        .map(|(signed, prechecked)| {
            let (tx, _) = prechecked?;
            match holds.next() {
                Some(true) => Ok(signed.assume_verified(tx)),
                _ => Err(signature_fails()),
            }
        })
        .collect()
}

/// The cores verification may use.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Keypair;
    use atoma_contract::{Address, Call};

    const CHAIN: [u8; 32] = [4; 32];

    #[test]
    fn many_at_once_answer_like_one_at_a_time() {
        let call = Call::TransferToma { recipient: Address([1; 32]), amount: 1 };
        let mut txs: Vec<SignedTransaction> =
            (0..150u64).map(|i| Keypair::test_account(i % 7).sign_call(CHAIN, i, call.clone())).collect();
        txs[3].signature[10] ^= 1;
        txs[64].tx_bytes.push(0);
        txs[100] = Keypair::test_account(1).sign_call([0; 32], 0, call);
        txs[101].signature[0] = 1;
        txs[149].signature[40] ^= 1;
        let one_by_one: Vec<_> = txs.iter().cloned().map(|t| t.verify(&CHAIN)).collect();
        assert_eq!(one_by_one.iter().filter(|r| r.is_err()).count(), 5);
        assert_eq!(verify_transactions(txs.clone(), &CHAIN), one_by_one);
        assert_eq!(verify_transactions(txs[..10].to_vec(), &CHAIN), one_by_one[..10]);
        assert!(verify_transactions(Vec::new(), &CHAIN).is_empty());
        assert!(cores() >= 1);
    }
}
