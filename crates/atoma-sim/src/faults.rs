//! Faults at the ledger's edge: transactions it must refuse before execution, and blocks
//! [`atoma_ledger::Ledger::apply_block`] must refuse whole. Each comes with the error the ledger
//! must answer; a refused fault must change nothing.

use atoma_contract::call::Call;
use atoma_ledger::state::epoch_due;
use atoma_ledger::{Ledger, Tip};
use atoma_types::block::MAX_BLOCK_TRANSACTIONS;
use atoma_types::tx::MAX_TRANSACTION_SIZE;
use atoma_types::{Block, Keypair, SignedTransaction, Transaction};

use crate::rng::SimRng;

/// A submission the ledger must refuse.
#[derive(Clone, Debug)]
pub struct BadSubmission {
    /// What is wrong with it.
    pub kind: &'static str,
    /// The bytes a client sends.
    pub bytes: Vec<u8>,
    /// The name of the ledger error it must get.
    pub expected: &'static str,
}

/// What forging a bad submission needs.
pub struct TxFaults<'a> {
    /// This chain's id.
    pub chain_id: [u8; 32],
    /// The adversary's key.
    pub key: &'a Keypair,
    /// The adversary's next nonce, counting its transactions in the mempool.
    pub next_nonce: u64,
    /// Transactions of the last applied block (replays).
    pub recent: &'a [SignedTransaction],
    /// Transactions admitted for the next block (duplicates).
    pub pending: &'a [SignedTransaction],
}

impl TxFaults<'_> {
    fn harmless(&self) -> Call {
        Call::TransferToma { recipient: self.key.address(), amount: 1 }
    }

    fn valid(&self) -> SignedTransaction {
        self.key.sign_call(self.chain_id, self.next_nonce, self.harmless())
    }

    /// One bad submission of a kind drawn from `rng`.
    pub fn draw(&self, rng: &mut SimRng) -> BadSubmission {
        let bad = |kind, bytes, expected| BadSubmission { kind, bytes, expected };
        let malformed = "EMalformedTransaction";
        let bad_signature = "EBadSignature";
        match rng.below(24) {
            0..=2 => {
                let len = rng.index(300);
                bad("garbage bytes", rng.bytes(len), malformed)
            }
            3..=4 => {
                let bytes = self.valid().to_bytes();
                let cut = 1 + rng.index(bytes.len() - 1);
                bad("truncated", bytes[..cut].to_vec(), malformed)
            }
            5 => bad("trailing byte", [self.valid().to_bytes(), vec![0]].concat(), malformed),
            6..=8 => {
                let mut signed = self.valid();
                let byte = 1 + rng.index(64);
                signed.signature[byte] ^= 1 << rng.below(8);
                bad("flipped signature bit", signed.to_bytes(), bad_signature)
            }
            9..=10 => {
                let other = Keypair::from_secret_bytes(rng.bytes32());
                let tx = Transaction {
                    chain_id: self.chain_id,
                    sender: self.key.address(),
                    nonce: self.next_nonce,
                    call: self.harmless(),
                };
                bad("signed by another key", tx.sign(other.signing_key()).to_bytes(), bad_signature)
            }
            11 => {
                let mut signed = self.valid();
                signed.signature[0] = 1 + u8::try_from(rng.below(255)).unwrap_or(0);
                bad("unknown signature scheme", signed.to_bytes(), bad_signature)
            }
            12..=13 => {
                let mut chain = self.chain_id;
                chain[rng.index(32)] ^= 1;
                bad(
                    "wrong chain id",
                    self.key.sign_call(chain, self.next_nonce, self.harmless()).to_bytes(),
                    "EWrongChainId",
                )
            }
            14..=15 if self.next_nonce > 0 => {
                let nonce = rng.below(self.next_nonce);
                bad(
                    "used nonce",
                    self.key.sign_call(self.chain_id, nonce, self.harmless()).to_bytes(),
                    "ENonceUsed",
                )
            }
            16..=17 => {
                let nonce = self.next_nonce + rng.range(1, 10);
                bad(
                    "future nonce",
                    self.key.sign_call(self.chain_id, nonce, self.harmless()).to_bytes(),
                    "ENonceFuture",
                )
            }
            18..=20 if !self.recent.is_empty() => {
                let replay = rng.pick(self.recent).map(SignedTransaction::to_bytes).unwrap_or_default();
                bad("replay of an executed transaction", replay, "ENonceUsed")
            }
            21..=22 if !self.pending.is_empty() => {
                let duplicate = rng.pick(self.pending).map(SignedTransaction::to_bytes).unwrap_or_default();
                bad("duplicate of a pending transaction", duplicate, "ENonceUsed")
            }
            23 => {
                let call = Call::CreateTask {
                    role: 0,
                    model_name: Some("x".repeat(MAX_TRANSACTION_SIZE)),
                    security_level: 0,
                    minimum_reputation_score: None,
                    required_optimizations: 0,
                };
                let signed = self.key.sign_call(self.chain_id, self.next_nonce, call);
                bad("oversized", signed.to_bytes(), "ETransactionTooLarge")
            }
            _ => {
                let len = 1 + rng.index(64);
                bad("garbage bytes", rng.bytes(len), malformed)
            }
        }
    }
}

/// What forging bad blocks needs.
pub struct BlockFaults<'a> {
    /// The block the sequencer proposed.
    pub block: &'a Block,
    /// The ledger it is for.
    pub ledger: &'a Ledger,
    /// The ledger's tip.
    pub tip: Tip,
}

impl BlockFaults<'_> {
    /// One to three corrupted variants of the proposed block, each named; all must be refused
    /// with `EInvalidBlock`. (A transaction whose nonce does not follow is no such variant: a
    /// block holding one applies, and the transaction is skipped — docs/LEDGER.md §3.)
    pub fn draw(&self, rng: &mut SimRng) -> Vec<(&'static str, Block)> {
        let count = rng.range(1, 3);
        (0..count).filter_map(|_| self.variant(rng)).collect()
    }

    fn variant(&self, rng: &mut SimRng) -> Option<(&'static str, Block)> {
        let mut b = self.block.clone();
        let has_txs = !b.transactions.is_empty();
        let i = if has_txs { rng.index(b.transactions.len()) } else { 0 };
        let kind = match rng.below(10) {
            0 => {
                b.header.parent_digest.0[rng.index(32)] ^= 1;
                "wrong parent"
            }
            1 => {
                b.header.height += 1;
                "height skips"
            }
            2 if self.tip.timestamp_ms > 0 => {
                b.header.timestamp_ms =
                    self.tip.timestamp_ms - rng.range(1, self.tip.timestamp_ms.min(60_000));
                "time goes backwards"
            }
            3 => {
                b.header.epoch = self.tip.epoch + 2;
                "epoch skips"
            }
            4 if b.header.epoch > self.tip.epoch => {
                let params = self.ledger.params();
                if !epoch_due(self.tip.epoch_start_ms, params.epoch_duration_ms, b.header.timestamp_ms) {
                    return None;
                }
                b.header.epoch = self.tip.epoch;
                "epoch stays past its end"
            }
            5 if has_txs => {
                b.transactions[i].signature[1 + rng.index(64)] ^= 1;
                b.header.tx_digests[i] = b.transactions[i].digest();
                "bad signature inside"
            }
            6 if has_txs => {
                b.header.tx_digests[i].0[0] ^= 1;
                "header names another transaction"
            }
            7 if has_txs => {
                b.transactions.pop();
                "body misses a transaction"
            }
            8 if self.tip.height >= 1 => {
                let mut applied = self.ledger.block(self.tip.height).ok().flatten()?;
                applied.header.timestamp_ms += 1;
                b = applied;
                "different block at an applied height"
            }
            9 if has_txs => {
                let tx = b.transactions[0].clone();
                b.transactions = vec![tx; MAX_BLOCK_TRANSACTIONS + 1];
                b.header.tx_digests = vec![b.transactions[0].digest(); MAX_BLOCK_TRANSACTIONS + 1];
                "too many transactions"
            }
            _ => return None,
        };
        Some((kind, b))
    }
}
