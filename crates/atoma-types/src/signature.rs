//! ed25519 as the chain checks it: one rule, decided identically one signature at a time and in
//! batches, so that whether a transaction is valid never depends on which batch it was checked in
//! (nor on threads or timing).
//!
//! # The rule
//! A serialized signature `0x00 ‖ sig[64] ‖ public_key[32]` over the message `m` is valid when
//!
//! 1. the flag is `0x00` and the key's address is the sender;
//! 2. the key decodes to a curve point `A` that is **not of small order**;
//! 3. `R = sig[..32]` is a **canonical** encoding (`y < p`) of a point that is **not of small
//!    order**, and `s = sig[32..]` is a canonical scalar (`s < ℓ`);
//! 4. the **cofactored** equation holds: `[8]([s]B − R − [k]A) = 0`, with
//!    `k = SHA-512(R ‖ public_key ‖ m) mod ℓ`.
//!
//! Why cofactored: the cofactorless equation of `verify_strict` (`[s]B = R + [k]A`) cannot be
//! decided by batch verification. A batch combines the signatures with random coefficients `zᵢ`,
//! and a signer who adds a small-order point to its own `R` breaks the single equation but passes
//! the batch whenever `zᵢ` happens to kill that point (with probability up to 1/2). Which batch a
//! signature lands in would then decide its validity. The cofactored equation ignores
//! small-order components by definition, so a batch holds exactly when every member's equation
//! holds (up to the batch's 2⁻¹²⁸ soundness error). This is ZIP-215's reasoning, as used by
//! Zcash's and Sui's ed25519 verifiers; rules 2 and 3 are stricter than ZIP-215 (no small-order
//! points, no non-canonical `R`). Every signature that `verify_strict` accepts passes this rule;
//! the only signatures this rule accepts and `verify_strict` refuses are ones whose own signer
//! deliberately built `R` with a small-order component — it changes nothing about who can sign.
//!
//! # Batches
//! [`check_all`] first tries `ed25519_dalek::verify_batch` (cofactorless, so it holding proves
//! every member's cofactored equation) on chunks of [`BATCH_CHUNK`]; a chunk that fails is split
//! to find the culprits, ending in single checks of the cofactored equation. The single check is
//! the authority; the batch only makes the common case (everything valid) about four times
//! cheaper.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use atoma_contract::Address;
use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha512};

use crate::error::LedgerError;
use crate::tx::{ED25519_FLAG, SIGNATURE_LENGTH};

/// Signatures verified together at most; larger sets are split into chunks of this size.
/// 256 is where batch verification's rate per signature peaks on the project's machine
/// (`cargo bench -p atoma-ledger --bench verify`).
pub const BATCH_CHUNK: usize = 256;
/// Below this size a failed batch is resolved by single checks instead of being split further.
const SPLIT_BELOW: usize = 8;

/// One signature, parsed and pre-checked (rules 1–3); [`SignatureCheck::holds`] decides rule 4.
#[derive(Clone, Debug)]
pub(crate) struct SignatureCheck {
    message: [u8; 32],
    signature: Signature,
    key: VerifyingKey,
}

impl SignatureCheck {
    /// Parses a serialized signature over `message` and checks rules 1–3.
    ///
    /// # Errors
    /// `EBadSignature` naming the rule that fails.
    pub(crate) fn parse(serialized: &[u8], message: [u8; 32], sender: &Address) -> Result<Self, LedgerError> {
        let bad = LedgerError::EBadSignature;
        let serialized: &[u8; SIGNATURE_LENGTH] =
            serialized.try_into().map_err(|_| bad("a signature is 97 bytes: flag, signature, public key"))?;
        let (flag, rest) = serialized.split_at(1);
        if flag != [ED25519_FLAG] {
            return Err(bad("unknown signature scheme flag; only 0x00 (ed25519) is accepted"));
        }
        let (signature, public_key) = rest.split_at(64);
        let signature: [u8; 64] = signature.try_into().map_err(|_| bad("malformed signature"))?;
        let public_key: [u8; 32] = public_key.try_into().map_err(|_| bad("malformed public key"))?;
        if Address::from_ed25519_public_key(&public_key) != *sender {
            return Err(bad("the public key is not the sender's"));
        }
        let key = decode_key(&public_key)?;
        let signature = Signature::from_bytes(&signature);
        if !is_canonical_large_order(signature.r_bytes()) {
            return Err(bad("R is not a canonical point of large order"));
        }
        if Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes())).is_none() {
            return Err(bad("s is not a canonical scalar"));
        }
        Ok(SignatureCheck { message, signature, key })
    }

    /// The cofactored equation `[8]([s]B − R − [k]A) = 0` (rule 4), one signature alone.
    pub(crate) fn holds(&self) -> bool {
        let Some(r) = CompressedEdwardsY(*self.signature.r_bytes()).decompress() else { return false };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*self.signature.s_bytes())) else {
            return false;
        };
        let mut hash = Sha512::new();
        hash.update(self.signature.r_bytes());
        hash.update(self.key.as_bytes());
        hash.update(self.message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let a = self.key.to_edwards();
        let s_b_minus_k_a = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-k, &a, &s);
        (s_b_minus_k_a - r).mul_by_cofactor().is_identity()
    }
}

/// Public keys decoded most recently: decoding one is a square root, as costly as half a batched
/// verification, and senders sign many transactions. Decoding is a pure function of the bytes, so
/// the cache changes no answer.
struct KeyCache {
    keys: BTreeMap<[u8; 32], VerifyingKey>,
}

/// Keys the cache holds before it starts over (about 4 MB).
const KEY_CACHE_CAPACITY: usize = 16_384;

/// Decodes a public key that is not of small order (rule 2), through the cache.
fn decode_key(public_key: &[u8; 32]) -> Result<VerifyingKey, LedgerError> {
    static CACHE: Mutex<KeyCache> = Mutex::new(KeyCache { keys: BTreeMap::new() });
    let cache = || CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = cache().keys.get(public_key) {
        return Ok(*key);
    }
    let key =
        VerifyingKey::from_bytes(public_key).map_err(|_| LedgerError::EBadSignature("invalid public key"))?;
    if key.is_weak() {
        return Err(LedgerError::EBadSignature("the public key has small order"));
    }
    let mut cache = cache();
    if cache.keys.len() >= KEY_CACHE_CAPACITY {
        cache.keys.clear();
    }
    cache.keys.insert(*public_key, key);
    Ok(key)
}

/// Whether `r` encodes, canonically, a point not of small order. Decoding is left to the
/// equation; this looks at the bytes only: `y < p`, and `y` is not the y-coordinate of one of the
/// eight small-order points (every point with such a `y` has small order).
fn is_canonical_large_order(r: &[u8; 32]) -> bool {
    let mut y = *r;
    y[31] &= 0x7f;
    is_below_field_prime(&y) && !small_order_ys().contains(&y)
}

/// Whether a 255-bit little-endian number is below `p = 2²⁵⁵ − 19`.
fn is_below_field_prime(y: &[u8; 32]) -> bool {
    // p is 0xed, then 30 bytes of 0xff, then 0x7f (little-endian); y ≥ p only when y agrees with
    // p on the top 31 bytes and its lowest byte is ≥ 0xed.
    let top_is_max = y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff);
    !(top_is_max && y[0] >= 0xed)
}

/// The canonical y-coordinates (sign bit cleared) of the eight points of small order.
fn small_order_ys() -> &'static [[u8; 32]; 8] {
    static YS: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    YS.get_or_init(|| {
        EIGHT_TORSION.map(|point| {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            y
        })
    })
}

/// Whether each check holds: exactly `checks.iter().map(SignatureCheck::holds)`, computed with
/// batch verification on chunks of [`BATCH_CHUNK`] (see the module docs).
pub(crate) fn check_all(checks: &[SignatureCheck]) -> Vec<bool> {
    check_in_chunks(checks, BATCH_CHUNK)
}

fn check_in_chunks(checks: &[SignatureCheck], chunk_size: usize) -> Vec<bool> {
    let mut out = vec![false; checks.len()];
    for (chunk, out) in checks.chunks(chunk_size).zip(out.chunks_mut(chunk_size)) {
        decide(chunk, out, None);
    }
    out
}

/// Fills `out` for `checks`; `batch` is the batch's result when already known.
fn decide(checks: &[SignatureCheck], out: &mut [bool], batch: Option<bool>) {
    if checks.len() < SPLIT_BELOW {
        for (check, out) in checks.iter().zip(out.iter_mut()) {
            *out = check.holds();
        }
        return;
    }
    if batch.unwrap_or_else(|| batch_holds(checks)) {
        out.fill(true);
        return;
    }
    let middle = checks.len() / 2;
    let (left, right) = checks.split_at(middle);
    let (left_out, right_out) = out.split_at_mut(middle);
    match (batch_holds(left), batch_holds(right)) {
        // Both halves fail: culprits are likely many, so check them one by one.
        (false, false) => {
            for (check, out) in checks.iter().zip(out.iter_mut()) {
                *out = check.holds();
            }
        }
        (left_ok, right_ok) => {
            decide(left, left_out, Some(left_ok));
            decide(right, right_out, Some(right_ok));
        }
    }
}

/// `ed25519_dalek::verify_batch` over `checks`. Holding proves each member's cofactored
/// equation; failing proves nothing about any one member.
fn batch_holds(checks: &[SignatureCheck]) -> bool {
    let messages: Vec<&[u8]> = checks.iter().map(|c| &c.message[..]).collect();
    let signatures: Vec<Signature> = checks.iter().map(|c| c.signature).collect();
    let keys: Vec<VerifyingKey> = checks.iter().map(|c| c.key).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Keypair;

    fn serialized(key: &Keypair, signature: &[u8; 64]) -> Vec<u8> {
        [&[ED25519_FLAG][..], signature, &key.public_key()].concat()
    }

    fn check(key: &Keypair, message: [u8; 32]) -> SignatureCheck {
        let signature = key.sign_message(&message);
        SignatureCheck::parse(&serialized(key, &signature), message, &key.address()).unwrap()
    }

    /// A signature by `key` whose R carries the small-order point `torsion`: valid under the
    /// cofactored equation, refused by `verify_strict`.
    fn with_torsion(key: &Keypair, message: [u8; 32], torsion: &EdwardsPoint) -> [u8; 64] {
        let hashed_secret = Sha512::digest(key.secret_bytes());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&hashed_secret[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let secret = Scalar::from_bytes_mod_order(secret);
        let r =
            Scalar::from_bytes_mod_order_wide(&Sha512::digest([b"nonce" as &[u8], &message].concat()).into());
        let big_r = (EdwardsPoint::mul_base(&r) + torsion).compress();
        let mut hash = Sha512::new();
        hash.update(big_r.as_bytes());
        hash.update(key.public_key());
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let s = r + k * secret;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        signature
    }

    /// Honest checks by `count` keys (debug builds sign slowly, so tests stay small and use
    /// small chunks to cross chunk boundaries).
    fn honest(count: u64) -> Vec<SignatureCheck> {
        (0..count).map(|i| check(&Keypair::test_account(i), [i as u8; 32])).collect()
    }

    #[test]
    fn honest_signatures_hold_alone_and_in_batches() {
        let checks = honest(40);
        assert!(batch_holds(&checks), "the fast path holds for honest signatures");
        assert!(checks.iter().all(SignatureCheck::holds));
        assert!(check_all(&checks).iter().all(|&ok| ok));
        assert!(check_in_chunks(&checks, 16).iter().all(|&ok| ok));
    }

    #[test]
    fn batches_find_every_culprit() {
        let mut checks = honest(60);
        for culprit in [0, 7, 15, 16, 40, 41, 59] {
            checks[culprit].message[0] ^= 1;
        }
        let expected: Vec<bool> = checks.iter().map(SignatureCheck::holds).collect();
        assert_eq!(expected.iter().filter(|ok| !**ok).count(), 7);
        assert_eq!(check_all(&checks), expected);
        for chunk in [16, 33] {
            assert_eq!(check_in_chunks(&checks, chunk), expected, "chunks of {chunk}");
        }
    }

    #[test]
    fn torsion_in_r_is_decided_the_same_alone_and_in_any_batch() {
        let key = Keypair::test_account(1);
        let verifying = VerifyingKey::from_bytes(&key.public_key()).unwrap();
        let others = honest(17);
        // Orders 8, 4 and 2.
        for i in [1, 2, 4] {
            let torsion = &EIGHT_TORSION[i];
            let message = [i as u8; 32];
            let signature = with_torsion(&key, message, torsion);
            assert!(verifying.verify_strict(&message, &Signature::from_bytes(&signature)).is_err());
            let tricky =
                SignatureCheck::parse(&serialized(&key, &signature), message, &key.address()).unwrap();
            assert!(tricky.holds(), "the cofactored equation ignores the torsion");
            for size in [8, 17] {
                let mut checks = others[..size].to_vec();
                checks[size / 3] = tricky.clone();
                assert!(check_all(&checks).iter().all(|&ok| ok), "batch of {size}");
            }
        }
    }

    #[test]
    fn small_order_and_non_canonical_points_are_refused() {
        let key = Keypair::test_account(2);
        let message = [3; 32];
        let good = key.sign_message(&message);
        let parse = |signature: [u8; 64]| match SignatureCheck::parse(
            &serialized(&key, &signature),
            message,
            &key.address(),
        ) {
            Ok(_) => "ok",
            Err(LedgerError::EBadSignature(reason)) => reason,
            Err(other) => panic!("{other:?}"),
        };
        assert_eq!(parse(good), "ok");
        for point in EIGHT_TORSION {
            let mut small_r = good;
            small_r[..32].copy_from_slice(point.compress().as_bytes());
            assert_eq!(parse(small_r), "R is not a canonical point of large order");
            small_r[31] |= 0x80;
            assert_eq!(parse(small_r), "R is not a canonical point of large order", "sign bit set");
            let weak = point.compress().to_bytes();
            let weak_sender = Address::from_ed25519_public_key(&weak);
            let signature = [&[ED25519_FLAG][..], &good, &weak].concat();
            assert!(
                matches!(
                    SignatureCheck::parse(&signature, message, &weak_sender),
                    Err(LedgerError::EBadSignature(r)) if r.contains("small order") || r.contains("invalid")
                ),
                "weak key"
            );
        }
        let mut big_y = good;
        big_y[..32].copy_from_slice(&field_number(0xee));
        assert_eq!(parse(big_y), "R is not a canonical point of large order", "y ≥ p");
        let mut big_s = good;
        big_s[63] |= 0x70;
        assert_eq!(parse(big_s), "s is not a canonical scalar");
        assert!(is_below_field_prime(&field_number(0xec)), "p − 1");
        assert!(!is_below_field_prime(&field_number(0xed)), "p");
        assert!(is_below_field_prime(&[0xff; 32].map(|b| b & 0x7f)), "below p in the top byte");
    }

    /// `2²⁵⁵ − 256 + low`: p when `low` is 0xed.
    fn field_number(low: u8) -> [u8; 32] {
        let mut y = [0xff; 32];
        y[0] = low;
        y[31] = 0x7f;
        y
    }
}
