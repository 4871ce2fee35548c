//! Arbitrary bytes as a signed transaction, and as a bare `Call`.
//!
//! 1. `SignedTransaction::from_bytes`, then `decode_transaction` and `verify(CHAIN_ID)`: never a
//!    panic; whatever is accepted re-encodes to exactly the input bytes and keeps its digest,
//!    and a refusal is one of the ledger's named errors.
//! 2. The same bytes as `bcs(Call)`: a call that decodes re-encodes to the same bytes (one call,
//!    one encoding), and signed by a test key it passes `verify` and round-trips (and its signed
//!    bytes go through 1., so that acceptance is exercised as well as refusal).
#![no_main]

use atoma_contract::Call;
use atoma_contract::hash::blake2b256;
use atoma_fuzz::CHAIN_ID;
use atoma_types::{Keypair, SignedTransaction};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signed_transaction(data);
    bare_call(data);
});

fn signed_transaction(data: &[u8]) {
    let signed = match SignedTransaction::from_bytes(data) {
        Ok(signed) => signed,
        Err(e) => {
            assert!(matches!(e.name(), "EMalformedTransaction" | "ETransactionTooLarge"), "{e:?}");
            return;
        }
    };
    assert_eq!(signed.to_bytes(), data, "a decoded signed transaction re-encodes differently");
    assert_eq!(signed.encoded_len(), data.len());
    assert_eq!(signed.digest().0, blake2b256(&[data]));
    let decoded = signed.decode_transaction();
    if let Ok(tx) = &decoded {
        assert_eq!(tx.to_bytes(), signed.tx_bytes, "a decoded transaction re-encodes differently");
    }
    match signed.clone().verify(&CHAIN_ID) {
        Ok(verified) => {
            let tx = decoded.expect("verify accepted what decode_transaction refused");
            assert_eq!(verified.signed(), &signed);
            assert_eq!(verified.transaction(), &tx);
            assert_eq!(verified.digest(), signed.digest());
            assert_eq!(verified.sender(), tx.sender);
        }
        Err(e) => assert!(
            matches!(e.name(), "EMalformedTransaction" | "EWrongChainId" | "EBadSignature"),
            "unexpected refusal {e:?}"
        ),
    }
}

fn bare_call(data: &[u8]) {
    let Ok(call) = bcs::from_bytes::<Call>(data) else { return };
    assert_eq!(bcs::to_bytes(&call).expect("encodes"), data, "a decoded call re-encodes differently");
    let key = Keypair::test_account(u64::from(data.first().copied().unwrap_or(0) % 4));
    let signed = key.sign_call(CHAIN_ID, data.len() as u64, call.clone());
    let bytes = signed.to_bytes();
    let back = match SignedTransaction::from_bytes(&bytes) {
        Ok(back) => back,
        // A call near the size limit signs into a transaction over it.
        Err(e) if e.name() == "ETransactionTooLarge" => return,
        Err(e) => panic!("a transaction we signed does not decode: {e:?}"),
    };
    assert_eq!(back, signed);
    // The signed bytes take the first path too, so that acceptance is exercised.
    signed_transaction(&bytes);
    let verified = back.verify(&CHAIN_ID).expect("a transaction we signed verifies");
    assert_eq!(verified.transaction().call, call);
    assert_eq!(verified.digest(), signed.digest());
}
