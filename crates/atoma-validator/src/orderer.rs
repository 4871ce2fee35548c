//! What a validator's RPC submits to: the validator set's [`Orderer`].
//!
//! A submission is verified like on the single validator (size, encoding, chain id, signature),
//! admitted to this validator's pool — its nonce checked against the executed one and the
//! transactions already pooled — and gossiped to every other validator, so that whoever leads
//! next can include it. The answer comes when the block holding it is executed and durable here,
//! or when another transaction took its nonce. On a local testnet the faucet signs from the
//! faucet key like any client, and the time controls are requests a leader's block serves.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use atoma_contract::{Address, Call};
use atoma_ledger::node::{BoxFuture, ConsensusInfo, LocalNetwork, Orderer};
use atoma_types::{BlockHeader, Keypair, LedgerError, SignedTransaction, Transaction, TxOutcome};
use commonware_p2p::Sender;
use tokio::sync::oneshot;

use crate::PublicKey;
use crate::gossip::{Gossip, GossipMessage};
use crate::shared::{ControlKind, ControlRequest, Shared};

/// The validator set's orderer, as one validator serves it. See the module docs.
pub struct ValidatorOrderer<S> {
    shared: Arc<Shared>,
    gossip: Gossip<S>,
    validator: Address,
    faucet: Option<Keypair>,
    /// Serializes the faucet's nonces.
    faucet_lock: Mutex<()>,
}

impl<S: Sender<PublicKey = PublicKey>> ValidatorOrderer<S> {
    /// The orderer of the validator `identity`, on a local testnet with this faucet key.
    pub fn new(
        shared: Arc<Shared>,
        gossip: Gossip<S>,
        identity: &PublicKey,
        faucet: Option<Keypair>,
    ) -> Self {
        let key: [u8; 32] = identity.as_ref().try_into().unwrap_or([0; 32]);
        ValidatorOrderer {
            shared,
            gossip,
            validator: Address::from_ed25519_public_key(&key),
            faucet,
            faucet_lock: Mutex::new(()),
        }
    }

    /// Verifies, admits and gossips a transaction; the receiver is answered with its outcome.
    fn admit(
        &self,
        signed: SignedTransaction,
    ) -> Result<oneshot::Receiver<Result<TxOutcome, LedgerError>>, LedgerError> {
        if let Some(refusal) = Orderer::halted(self) {
            return Err(refusal);
        }
        let bytes = signed.to_bytes();
        let tx = signed.verify(&self.shared.chain_id)?;
        let digest = tx.digest();
        let receiver = self.shared.waiters.transaction(digest);
        let executed_next = self.shared.ledger.next_nonce(&tx.sender());
        if let Err(refusal) = self.shared.pool().admit(tx, executed_next) {
            self.shared.waiters.refuse(&[(digest, refusal.clone())]);
            return Err(refusal);
        }
        self.gossip.transaction(bytes);
        Ok(receiver)
    }

    /// Asks the leaders for a time control and waits for the block that serves it.
    async fn control(&self, kind: ControlKind) -> Result<BlockHeader, LedgerError> {
        if let Some(refusal) = Orderer::halted(self) {
            return Err(refusal);
        }
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|_| LedgerError::EIo)?;
        let request = ControlRequest { id: u64::from_le_bytes(id), kind };
        let receiver = self.shared.waiters.control(request.id);
        self.shared.controls.add(request);
        self.gossip.send(&GossipMessage::Control(request));
        receiver.await.unwrap_or(Err(LedgerError::EChainStopped))
    }
}

async fn outcome(
    receiver: oneshot::Receiver<Result<TxOutcome, LedgerError>>,
) -> Result<TxOutcome, LedgerError> {
    receiver.await.unwrap_or(Err(LedgerError::EChainStopped))
}

impl<S: Sender<PublicKey = PublicKey>> Orderer for ValidatorOrderer<S> {
    fn submit(&self, signed: SignedTransaction) -> BoxFuture<'_, Result<TxOutcome, LedgerError>> {
        let admitted = self.admit(signed);
        Box::pin(async move { outcome(admitted?).await })
    }

    fn next_nonce(&self, sender: &Address) -> u64 {
        let executed_next = self.shared.ledger.next_nonce(sender);
        self.shared.pool().next_nonce(sender, executed_next)
    }

    fn validator(&self) -> Address {
        self.validator
    }

    fn local_network(&self) -> Option<&dyn LocalNetwork> {
        if self.shared.local_network { Some(self) } else { None }
    }

    fn halted(&self) -> Option<LedgerError> {
        if self.shared.diverged() {
            return Some(LedgerError::EStateDiverged);
        }
        self.shared.halted().map(|_| LedgerError::EChainStopped)
    }

    fn prometheus(&self) -> String {
        let membership = &self.shared.membership;
        let leader = self.shared.liveness.leader().map_or(-1, |(_, leader)| leader as i64);
        let gauges = [
            ("atoma_validator_validators", "Validators in the set.", membership.participants.len() as i64),
            ("atoma_validator_index", "This validator's index in the set.", membership.index as i64),
            ("atoma_validator_leader", "The newest view's leader, by index (-1: none yet).", leader),
        ];
        let mut text = self.shared.metrics.to_prometheus();
        for (name, help, value) in gauges {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
        }
        text
    }

    fn consensus(&self) -> Option<ConsensusInfo> {
        let (shared, membership) = (&self.shared, &self.shared.membership);
        let metrics = &shared.metrics;
        let peers = shared
            .liveness
            .connected()
            .into_iter()
            .filter_map(|(peer, height)| Some((membership.position(&peer)? as u64, height)))
            .collect();
        Some(ConsensusInfo {
            engine: "simplex".into(),
            validators: membership.participants.len() as u64,
            max_faulty: membership.max_faulty() as u64,
            index: membership.index as u64,
            view: metrics.view.load(Ordering::Relaxed),
            finalized_height: metrics.finalized_height.load(Ordering::Relaxed),
            leader: shared.liveness.leader().map(|(_, leader)| leader as u64),
            peers,
            finalization_latency_ms: metrics.finalization_latency_ms.load(Ordering::Relaxed),
        })
    }
}

impl<S: Sender<PublicKey = PublicKey>> LocalNetwork for ValidatorOrderer<S> {
    fn faucet(&self, recipient: Address, amount: u64) -> BoxFuture<'_, Result<TxOutcome, LedgerError>> {
        let admitted = (|| {
            let key = self.faucet.as_ref().ok_or(LedgerError::EInvalidConfig)?;
            let _one_at_a_time = self.faucet_lock.lock().unwrap_or_else(PoisonError::into_inner);
            let nonce = Orderer::next_nonce(self, &key.address());
            let call = Call::TransferToma { recipient, amount };
            let signed = Transaction { chain_id: self.shared.chain_id, sender: key.address(), nonce, call }
                .sign(key.signing_key());
            self.admit(signed)
        })();
        Box::pin(async move { outcome(admitted?).await })
    }

    fn advance_epoch(&self) -> BoxFuture<'_, Result<BlockHeader, LedgerError>> {
        Box::pin(self.control(ControlKind::AdvanceEpoch))
    }

    fn advance_clock(&self, ms: u64) -> BoxFuture<'_, Result<BlockHeader, LedgerError>> {
        Box::pin(self.control(ControlKind::AdvanceClock(ms)))
    }
}
