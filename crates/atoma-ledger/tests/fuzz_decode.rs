//! The CI counterpart of the `tx_decode` fuzz target (fuzz/README.md): arbitrary bytes and
//! mutated valid transactions never panic the decoder or the checks, are refused with one of the
//! ledger's named errors, and whatever is accepted round-trips to the same bytes and digest.
//! A real chain fed mutated transactions refuses every one and does not change.

mod common;

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, Call, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use atoma_ledger::LedgerError;
use atoma_types::tx::MAX_TRANSACTION_SIZE;
use atoma_types::{Keypair, SignedTransaction};
use common::{chain_id, config, keys, start, stop};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::sync::OnceLock;

const CHAIN: [u8; 32] = [7; 32];

/// What decoding may refuse with, and what the stateless checks may add.
const DECODE_ERRORS: &[&str] = &["EMalformedTransaction", "ETransactionTooLarge"];
const VERIFY_ERRORS: &[&str] =
    &["EMalformedTransaction", "ETransactionTooLarge", "EWrongChainId", "EBadSignature"];

/// Decodes and verifies like the chain does; `Ok` only for a transaction that passes every
/// stateless check, after checking that it round-trips.
fn decode_and_verify(bytes: &[u8]) -> Result<SignedTransaction, LedgerError> {
    let signed = SignedTransaction::from_bytes(bytes).inspect_err(|e| {
        assert!(DECODE_ERRORS.contains(&e.name()), "from_bytes refused with {e:?}");
    })?;
    assert_eq!(signed.to_bytes(), bytes, "accepted bytes re-encode differently");
    assert_eq!(signed.digest().0, blake2b256(&[bytes]), "the digest is not of the bytes");
    if let Ok(tx) = signed.decode_transaction() {
        assert_eq!(tx.to_bytes(), signed.tx_bytes, "a decoded transaction re-encodes differently");
    }
    let verified = signed.clone().verify(&CHAIN).inspect_err(|e| {
        assert!(VERIFY_ERRORS.contains(&e.name()), "verify refused with {e:?}");
    })?;
    assert_eq!(verified.digest(), signed.digest());
    assert_eq!(verified.signed(), &signed);
    Ok(signed)
}

/// A few calls of different shapes: fixed-size fields, strings, options, vectors.
fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<u64>())
            .prop_map(|(r, amount)| Call::TransferToma { recipient: Address(r), amount }),
        (any::<u64>(), any::<u8>()).prop_map(|(collateral, supported_optimizations)| Call::RegisterNode {
            collateral,
            supported_optimizations
        }),
        (any::<u64>(), ".{0,20}", any::<u64>()).prop_map(|(node, model_name, echelon)| {
            Call::AddNodeToModel { node: NodeSmallId(node), model_name, echelon: EchelonId(echelon) }
        }),
        (any::<u16>(), proptest::option::of(".{0,12}"), any::<u16>(), any::<Option<u16>>(), any::<u8>())
            .prop_map(
                |(role, model_name, security_level, minimum_reputation_score, required_optimizations)| {
                    Call::CreateTask {
                        role,
                        model_name,
                        security_level,
                        minimum_reputation_score,
                        required_optimizations,
                    }
                }
            ),
        (any::<u64>(), any::<u64>(), prop::collection::vec(any::<u8>(), 0..40), any::<Option<Vec<u8>>>())
            .prop_map(|(stack, units, proof, tee_signature)| Call::TrySettleStack {
                node: NodeSmallId(1),
                stack: StackSmallId(stack),
                num_claimed_compute_units: units,
                committed_stack_proof: proof.clone(),
                stack_merkle_leaf: proof,
                tee_signature,
            }),
        prop::collection::vec(any::<u64>(), 0..20).prop_map(|s| Call::ClaimFunds {
            node: NodeSmallId(2),
            stacks: s.into_iter().map(StackSmallId).collect()
        }),
        (any::<[u8; 32]>(), any::<u64>()).prop_map(|(badge, task)| Call::Admin {
            manager_badge: ObjectId(badge),
            op: atoma_contract::AdminOp::DeprecateTask { task: TaskSmallId(task) }
        }),
    ]
}

/// Signing and verifying cost milliseconds in a debug build, so the mutation tests draw from a
/// few transactions signed once.
fn signed() -> impl Strategy<Value = SignedTransaction> {
    (0u64..4, any::<u64>(), call())
        .prop_map(|(key, nonce, call)| Keypair::test_account(key).sign_call(CHAIN, nonce, call))
}

fn presigned() -> impl Strategy<Value = SignedTransaction> {
    static POOL: OnceLock<Vec<SignedTransaction>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        (0..8).map(|_| signed().new_tree(&mut runner).unwrap().current()).collect()
    });
    prop::sample::select(pool.clone())
}

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    Insert { at: usize, value: u8 },
    Delete { at: usize },
    Truncate { at: usize },
    Append { bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        prop::collection::vec(any::<u8>(), 1..8).prop_map(|bytes| Mutation::Append { bytes }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match m {
        Mutation::Flip { at, bit } if len > 0 => bytes[at % len] ^= 1 << bit,
        Mutation::Set { at, value } if len > 0 => bytes[at % len] = *value,
        Mutation::Insert { at, value } => bytes.insert(at % (len + 1), *value),
        Mutation::Delete { at } if len > 0 => {
            bytes.remove(at % len);
        }
        Mutation::Truncate { at } => bytes.truncate(at % (len + 1)),
        Mutation::Append { bytes: more } => bytes.extend_from_slice(more),
        _ => {}
    }
}

/// Where a mutation lands: the whole encoding, or one of the two fields re-encoded around it.
#[derive(Clone, Copy, Debug)]
enum Layer {
    Outer,
    TxBytes,
    Signature,
}

fn mutate(signed: &SignedTransaction, layer: Layer, mutations: &[Mutation]) -> Vec<u8> {
    let mut field = match layer {
        Layer::Outer => signed.to_bytes(),
        Layer::TxBytes => signed.tx_bytes.clone(),
        Layer::Signature => signed.signature.clone(),
    };
    mutations.iter().for_each(|m| apply(&mut field, m));
    match layer {
        Layer::Outer => field,
        Layer::TxBytes => {
            SignedTransaction { tx_bytes: field, signature: signed.signature.clone() }.to_bytes()
        }
        Layer::Signature => {
            SignedTransaction { tx_bytes: signed.tx_bytes.clone(), signature: field }.to_bytes()
        }
    }
}

fn layer() -> impl Strategy<Value = Layer> {
    prop_oneof![Just(Layer::Outer), Just(Layer::TxBytes), Just(Layer::Signature)]
}

proptest! {
    // A few seconds in a debug build; PROPTEST_CASES=100000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_are_refused_by_name_or_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_and_verify(&bytes);
    }

    /// Bytes that start like a signed transaction get further into the decoder.
    #[test]
    fn arbitrary_fields_are_refused_by_name(
        tx_bytes in prop::collection::vec(any::<u8>(), 0..300),
        signature in prop::collection::vec(any::<u8>(), 95..99),
    ) {
        let bytes = SignedTransaction { tx_bytes, signature }.to_bytes();
        let _ = decode_and_verify(&bytes);
    }

    /// Any change to a valid transaction's bytes is refused (BCS is canonical and `verify_strict`
    /// is not malleable), with a named error.
    #[test]
    fn mutated_transactions_are_refused_by_name(
        signed in presigned(),
        layer in layer(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let bytes = mutate(&signed, layer, &mutations);
        let result = decode_and_verify(&bytes);
        if bytes == signed.to_bytes() {
            prop_assert!(result.is_ok());
        } else {
            prop_assert!(result.is_err(), "a mutated transaction was accepted: {:?}", mutations);
        }
    }
}

#[test]
fn valid_transactions_are_accepted_and_round_trip() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..8 {
        let signed = presigned().new_tree(&mut runner).unwrap().current();
        assert_eq!(decode_and_verify(&signed.to_bytes()).ok(), Some(signed));
    }
}

#[test]
fn oversized_bytes_are_refused_before_decoding() {
    for len in [MAX_TRANSACTION_SIZE + 1, 4 * MAX_TRANSACTION_SIZE] {
        let error = SignedTransaction::from_bytes(&vec![0xff; len]).unwrap_err();
        assert_eq!(error.name(), "ETransactionTooLarge");
    }
}

/// Mutated transactions sent to a real chain are refused by name and change nothing; the good
/// transaction they were made from is still accepted afterwards.
#[tokio::test]
async fn a_chain_refuses_mutated_transactions_and_does_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, task) = start(config(dir.path()));
    let user = keys(dir.path()).accounts.remove(0);
    let chain = chain_id(&handle);
    let call = Call::TransferToma { recipient: Address([9; 32]), amount: 5 };
    let good = user.sign_call(chain, 0, call);
    let before = handle.ledger().state_digest();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let cases = (layer(), prop::collection::vec(mutation(), 1..3));
    for _ in 0..24 {
        let (layer, mutations) = cases.new_tree(&mut runner).unwrap().current();
        let bytes = mutate(&good, layer, &mutations);
        if bytes == good.to_bytes() {
            continue;
        }
        let error = handle.submit_bytes(&bytes).await.expect_err("a mutated transaction is refused");
        assert!(VERIFY_ERRORS.contains(&error.name()), "{mutations:?} refused with {error:?}");
    }
    assert_eq!(handle.ledger().state_digest(), before, "a refused transaction changed the state");
    assert_eq!(handle.next_nonce(&user.address()), 0);
    let outcome = handle.submit_bytes(&good.to_bytes()).await.unwrap();
    assert!(outcome.status.is_success());
    stop(handle, task);
}
