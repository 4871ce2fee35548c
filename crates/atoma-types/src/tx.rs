//! Transactions: what a client signs and the chain orders (SPEC §12).
//!
//! A [`Transaction`] names the chain (its genesis digest), the sender, the sender's nonce and one
//! contract [`Call`]. Its BCS bytes are signed with ed25519 over
//! `blake2b-256("atoma-tx" ‖ bcs(tx))`; the signature travels Sui-style as 97 bytes
//! `0x00 ‖ signature[64] ‖ public_key[32]`. A [`SignedTransaction`] carries both byte strings, and
//! its digest — blake2b-256 of its own BCS encoding — names it everywhere (shown in base58).
//!
//! [`SignedTransaction::verify`] does every check that needs no state, cheapest first: size (before
//! any decoding), canonical BCS, chain id, signature. What it returns, a [`VerifiedTransaction`],
//! can only be built that way, so code that holds one knows those checks passed. Nonces need the
//! chain's state and are checked by the orderer and again when a block is applied.

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, Call};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::codec::encode;
use crate::digest::Digest;
use crate::error::LedgerError;
use crate::signature::SignatureCheck;

/// The largest signed transaction accepted, in bytes of its BCS encoding (128 KiB).
pub const MAX_TRANSACTION_SIZE: usize = 128 * 1024;
/// The signature-scheme flag of ed25519, the only scheme accepted (as on Sui).
pub const ED25519_FLAG: u8 = 0x00;
/// The length of a serialized signature: flag, 64-byte signature, 32-byte public key.
pub const SIGNATURE_LENGTH: usize = 1 + 64 + 32;
/// Domain separator of the signed message, so that a transaction signature can never be
/// mistaken for a signature over anything else.
const SIGNING_DOMAIN: &[u8] = b"atoma-tx";

/// One call to the contract, by one sender, for one chain.
///
/// The field order is part of the wire format (BCS).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Transaction {
    /// The genesis digest of the chain this transaction is meant for.
    pub chain_id: [u8; 32],
    /// Who signs and pays; must be the address of the signing key.
    pub sender: Address,
    /// The sender's next sequence number (0 for a fresh account).
    pub nonce: u64,
    /// The entry function and its arguments.
    pub call: Call,
}

impl Transaction {
    /// The BCS bytes that are signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The 32-byte message an ed25519 key signs for these transaction bytes:
    /// `blake2b-256("atoma-tx" ‖ tx_bytes)`.
    pub fn signing_message(tx_bytes: &[u8]) -> [u8; 32] {
        blake2b256(&[SIGNING_DOMAIN, tx_bytes])
    }

    /// Signs the transaction with `key`. The key must be the sender's for the chain to accept it.
    pub fn sign(&self, key: &SigningKey) -> SignedTransaction {
        let tx_bytes = self.to_bytes();
        let signature = key.sign(&Self::signing_message(&tx_bytes));
        let mut serialized = Vec::with_capacity(SIGNATURE_LENGTH);
        serialized.push(ED25519_FLAG);
        serialized.extend_from_slice(&signature.to_bytes());
        serialized.extend_from_slice(key.verifying_key().as_bytes());
        SignedTransaction { tx_bytes, signature: serialized }
    }
}

/// A transaction as submitted: its BCS bytes and its 97-byte signature.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// `bcs(Transaction)`, exactly as signed.
    #[serde(with = "crate::codec::bytes")]
    pub tx_bytes: Vec<u8>,
    /// `0x00 ‖ ed25519 signature[64] ‖ public key[32]`.
    #[serde(with = "crate::codec::bytes")]
    pub signature: Vec<u8>,
}

impl SignedTransaction {
    /// The BCS encoding of the signed transaction (what a client sends).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a signed transaction, checking its size before decoding anything.
    ///
    /// # Errors
    /// `ETransactionTooLarge` over [`MAX_TRANSACTION_SIZE`]; `EMalformedTransaction` when the bytes
    /// are not exactly one BCS-encoded signed transaction (trailing bytes included).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        check_size(bytes.len())?;
        bcs::from_bytes(bytes)
            .map_err(|e| LedgerError::EMalformedTransaction(format!("not a signed transaction: {e}")))
    }

    /// The transaction digest: blake2b-256 of [`SignedTransaction::to_bytes`].
    pub fn digest(&self) -> Digest {
        Digest(blake2b256(&[&self.to_bytes()]))
    }

    /// The length of [`SignedTransaction::to_bytes`], computed without encoding.
    pub fn encoded_len(&self) -> usize {
        let field = |len: usize| uleb128_len(len).saturating_add(len);
        field(self.tx_bytes.len()).saturating_add(field(self.signature.len()))
    }

    /// Decodes the inner transaction without checking the signature.
    ///
    /// # Errors
    /// `EMalformedTransaction` when `tx_bytes` is not the canonical BCS encoding of a
    /// [`Transaction`] (so that one transaction has exactly one digest).
    pub fn decode_transaction(&self) -> Result<Transaction, LedgerError> {
        let tx: Transaction = bcs::from_bytes(&self.tx_bytes)
            .map_err(|e| LedgerError::EMalformedTransaction(format!("not a transaction: {e}")))?;
        if tx.to_bytes() != self.tx_bytes {
            return Err(LedgerError::EMalformedTransaction("not the canonical encoding".into()));
        }
        Ok(tx)
    }

    /// Decodes the inner transaction of a transaction a node stored, without the canonical
    /// check of [`SignedTransaction::decode_transaction`] (its bytes are pinned by its digest).
    fn decode_stored_transaction(&self) -> Result<Transaction, LedgerError> {
        bcs::from_bytes(&self.tx_bytes)
            .map_err(|e| LedgerError::EMalformedTransaction(format!("not a transaction: {e}")))
    }

    /// Every check that needs no chain state: size, encoding, chain id and signature (the rule
    /// of [`crate::signature`]). [`crate::batch::verify_transactions`] gives the same answers
    /// for many transactions, faster.
    ///
    /// # Errors
    /// `ETransactionTooLarge`, `EMalformedTransaction`, `EWrongChainId`, `EBadSignature`.
    pub fn verify(self, chain_id: &[u8; 32]) -> Result<VerifiedTransaction, LedgerError> {
        let (tx, check) = self.precheck(chain_id)?;
        if !check.holds() {
            return Err(signature_fails());
        }
        Ok(self.assume_verified(tx))
    }

    /// The checks of [`SignedTransaction::verify`] up to the signature's equation, cheapest
    /// first; the caller decides the equation (alone or in a batch).
    pub(crate) fn precheck(&self, chain_id: &[u8; 32]) -> Result<(Transaction, SignatureCheck), LedgerError> {
        check_size(self.encoded_len())?;
        let tx = self.decode_transaction()?;
        if tx.chain_id != *chain_id {
            return Err(LedgerError::EWrongChainId);
        }
        let message = Transaction::signing_message(&self.tx_bytes);
        let check = SignatureCheck::parse(&self.signature, message, &tx.sender)?;
        Ok((tx, check))
    }

    /// Decodes a transaction whose checks are known to have passed and wraps it without checking
    /// its signature again: for a node reading back its own store, which holds only transactions
    /// it verified before committing them (their bytes are pinned by their digests, so the
    /// canonical-encoding check is skipped too). Anything from outside must go through
    /// [`SignedTransaction::verify`].
    ///
    /// # Errors
    /// `EMalformedTransaction` when `tx_bytes` is not a BCS-encoded [`Transaction`].
    pub fn into_verified_from_own_store(self) -> Result<VerifiedTransaction, LedgerError> {
        let tx = self.decode_stored_transaction()?;
        Ok(self.assume_verified(tx))
    }

    /// Wraps a transaction whose signature is known to be valid (decided by the caller).
    pub(crate) fn assume_verified(self, tx: Transaction) -> VerifiedTransaction {
        let digest = self.digest();
        VerifiedTransaction { signed: self, tx, digest }
    }
}

/// The error of a signature whose equation does not hold.
pub(crate) fn signature_fails() -> LedgerError {
    LedgerError::EBadSignature("the signature does not verify")
}

fn check_size(size: usize) -> Result<(), LedgerError> {
    if size > MAX_TRANSACTION_SIZE {
        return Err(LedgerError::ETransactionTooLarge { size, limit: MAX_TRANSACTION_SIZE });
    }
    Ok(())
}

/// The number of bytes of the ULEB128 length prefix BCS writes before a byte vector.
fn uleb128_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// A signed transaction that passed [`SignedTransaction::verify`] for some chain.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedTransaction {
    signed: SignedTransaction,
    tx: Transaction,
    digest: Digest,
}

impl VerifiedTransaction {
    /// The transaction as submitted.
    pub fn signed(&self) -> &SignedTransaction {
        &self.signed
    }

    /// The decoded transaction.
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }

    /// The transaction digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The signer.
    pub fn sender(&self) -> Address {
        self.tx.sender
    }

    /// The sender's sequence number this transaction uses.
    pub fn nonce(&self) -> u64 {
        self.tx.nonce
    }
}

/// An ed25519 key pair and its address: what a client signs with.
#[derive(Clone)]
pub struct Keypair {
    key: SigningKey,
}

impl Keypair {
    /// A new key from the operating system's randomness.
    ///
    /// # Errors
    /// The operating system's error when it has no randomness to give.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        Ok(Self::from_secret_bytes(secret))
    }

    /// The key with this 32-byte ed25519 secret (seed).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Keypair { key: SigningKey::from_bytes(&secret) }
    }

    /// The `index`-th test account of a local network: the same key on every machine,
    /// `blake2b-256("atoma-test-account" ‖ u64_le(index))`. Never use these keys for value.
    pub fn test_account(index: u64) -> Self {
        Self::from_secret_bytes(blake2b256(&[b"atoma-test-account", &index.to_le_bytes()]))
    }

    /// The 32-byte secret (seed).
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The account address: `blake2b-256(0x00 ‖ public_key)`.
    pub fn address(&self) -> Address {
        Address::from_ed25519_public_key(&self.public_key())
    }

    /// The underlying ed25519 key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Builds and signs a transaction from this key's address.
    pub fn sign_call(&self, chain_id: [u8; 32], nonce: u64, call: Call) -> SignedTransaction {
        Transaction { chain_id, sender: self.address(), nonce, call }.sign(&self.key)
    }

    /// An ed25519 signature over `message`.
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// A serialized signature, in the 97-byte form transactions carry, over something that is
    /// not a transaction: the key signs [`domain_message`]`(domain, message)`, which can never be
    /// a transaction's signing message, so such a signature can never authorize a transaction
    /// (nor one domain's message pass for another's). [`verify_in_domain`] checks it.
    pub fn sign_in_domain(&self, domain: &[u8], message: &[u8]) -> Vec<u8> {
        let signature = self.key.sign(&domain_message(domain, message));
        let mut serialized = Vec::with_capacity(SIGNATURE_LENGTH);
        serialized.push(ED25519_FLAG);
        serialized.extend_from_slice(&signature.to_bytes());
        serialized.extend_from_slice(&self.public_key());
        serialized
    }
}

/// What [`Keypair::sign_in_domain`] signs: `blake2b-256("atoma-domain" ‖ u32_le(len(domain)) ‖
/// domain ‖ message)`. A transaction's message starts from `"atoma-tx"`, which differs from
/// `"atoma-domain"` in its seventh byte; the length prefix keeps domains apart from each other.
pub fn domain_message(domain: &[u8], message: &[u8]) -> [u8; 32] {
    let length = u32::try_from(domain.len()).unwrap_or(u32::MAX).to_le_bytes();
    blake2b256(&[b"atoma-domain", &length, domain, message])
}

/// Checks a signature made by [`Keypair::sign_in_domain`]: `signer`'s key signed `message` in
/// `domain`, under the chain's rule for signatures ([`crate::signature`]).
///
/// # Errors
/// `EBadSignature` naming what is wrong.
pub fn verify_in_domain(
    signature: &[u8],
    domain: &[u8],
    message: &[u8],
    signer: &Address,
) -> Result<(), LedgerError> {
    let check = SignatureCheck::parse(signature, domain_message(domain, message), signer)?;
    if check.holds() { Ok(()) } else { Err(signature_fails()) }
}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: [u8; 32] = [9; 32];

    fn call() -> Call {
        Call::TransferToma { recipient: Address([1; 32]), amount: 5 }
    }

    fn signed(key: &Keypair, nonce: u64) -> SignedTransaction {
        key.sign_call(CHAIN, nonce, call())
    }

    #[test]
    fn domain_signatures_verify_in_their_domain_only() {
        let key = Keypair::test_account(0);
        let signature = key.sign_in_domain(b"atoma-stack-token", b"stack 7");
        assert_eq!(signature.len(), SIGNATURE_LENGTH);
        assert_eq!(verify_in_domain(&signature, b"atoma-stack-token", b"stack 7", &key.address()), Ok(()));
        let name = |r: Result<(), LedgerError>| r.map_err(|e| e.name());
        assert_eq!(
            name(verify_in_domain(&signature, b"atoma-stack-token", b"stack 8", &key.address())),
            Err("EBadSignature")
        );
        assert_eq!(
            name(verify_in_domain(&signature, b"another", b"stack 7", &key.address())),
            Err("EBadSignature")
        );
        let other = Keypair::test_account(1).address();
        assert_eq!(
            name(verify_in_domain(&signature, b"atoma-stack-token", b"stack 7", &other)),
            Err("EBadSignature")
        );
        assert_eq!(
            name(verify_in_domain(&signature[1..], b"atoma-stack-token", b"stack 7", &key.address())),
            Err("EBadSignature")
        );
        // Never a transaction's message, whatever the domain.
        let tx = signed(&key, 0);
        assert_ne!(domain_message(b"", &tx.tx_bytes), Transaction::signing_message(&tx.tx_bytes));
    }

    #[test]
    fn sign_encode_verify_round_trip() {
        let key = Keypair::test_account(0);
        let stx = signed(&key, 3);
        assert_eq!(stx.signature.len(), SIGNATURE_LENGTH);
        assert_eq!(stx.encoded_len(), stx.to_bytes().len());
        let decoded = SignedTransaction::from_bytes(&stx.to_bytes()).unwrap();
        assert_eq!(decoded, stx);
        let digest = stx.digest();
        let verified = decoded.verify(&CHAIN).unwrap();
        assert_eq!(verified.digest(), digest);
        assert_eq!(verified.sender(), key.address());
        assert_eq!(verified.nonce(), 3);
        assert_eq!(verified.transaction().call, call());
    }

    #[test]
    fn checks_refuse_each_kind_of_bad_input() {
        let key = Keypair::test_account(0);
        let good = signed(&key, 0);
        let mut flag = good.clone();
        flag.signature[0] = 1;
        let mut sig = good.clone();
        sig.signature[5] ^= 1;
        let mut short = good.clone();
        short.signature.pop();
        let other = Keypair::test_account(1);
        let wrong_key = Transaction { chain_id: CHAIN, sender: key.address(), nonce: 0, call: call() }
            .sign(other.signing_key());
        for bad in [flag, sig, short, wrong_key] {
            assert_eq!(bad.verify(&CHAIN).map_err(|e| e.name()), Err("EBadSignature"));
        }
        assert_eq!(good.clone().verify(&[0; 32]), Err(LedgerError::EWrongChainId));
        let mut trailing = good.to_bytes();
        trailing.push(0);
        assert_eq!(
            SignedTransaction::from_bytes(&trailing).map_err(|e| e.name()),
            Err("EMalformedTransaction")
        );
        let mut inner = good.clone();
        inner.tx_bytes.push(0);
        assert_eq!(inner.verify(&CHAIN).map_err(|e| e.name()), Err("EMalformedTransaction"));
        let huge = vec![0u8; MAX_TRANSACTION_SIZE + 1];
        assert_eq!(SignedTransaction::from_bytes(&huge).map_err(|e| e.name()), Err("ETransactionTooLarge"));
    }

    #[test]
    fn test_accounts_are_fixed() {
        assert_eq!(Keypair::test_account(4).address(), Keypair::test_account(4).address());
        assert_ne!(Keypair::test_account(4).address(), Keypair::test_account(5).address());
        let k = Keypair::generate().unwrap();
        assert_eq!(Keypair::from_secret_bytes(k.secret_bytes()).address(), k.address());
        assert!(!format!("{k:?}").contains(&format!("{:?}", k.secret_bytes())));
    }
}
