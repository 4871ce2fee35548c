//! Gossip between validators on the p2p channel `mempool`: transactions, so that whoever leads
//! next can include them; a local testnet's time controls; and state digests at snapshot heights,
//! so that a validator whose state diverged finds out.
//!
//! Messages are BCS-encoded [`GossipMessage`]s, bounded by the channel's message size. Received
//! transactions are verified like a client's (batched, on every core) before they enter the pool;
//! a peer cannot put anything in a pool that this validator would not have accepted itself.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use atoma_types::SignedTransaction;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner, Supervisor};
use serde::{Deserialize, Serialize};

use crate::PublicKey;
use crate::shared::{ControlRequest, Shared};
use crate::status::HEARTBEAT;

/// Transactions one message carries at most.
pub const MAX_GOSSIP_TRANSACTIONS: usize = 256;

/// What validators tell each other.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum GossipMessage {
    /// BCS signed transactions a client submitted.
    Transactions(Vec<Vec<u8>>),
    /// A local testnet's time control.
    Control(ControlRequest),
    /// The sender's combined state digest after the block at `height` (a snapshot height).
    StateDigest {
        /// The height.
        height: u64,
        /// The digest.
        digest: [u8; 32],
    },
    /// The sender is alive and has executed `height` (every [`crate::status::HEARTBEAT`]).
    Heartbeat {
        /// The newest height the sender executed.
        height: u64,
    },
}

impl GossipMessage {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        atoma_types::codec::encode(self)
    }
}

/// How often queued transactions are sent, batched.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(1);

/// Sends gossip to every other validator. Cheap to clone; clones share the sender and the queue.
///
/// Transactions are queued and sent in batches of up to [`MAX_GOSSIP_TRANSACTIONS`] by
/// [`flush_every`]: the p2p layer limits the messages a peer receives per second on each channel,
/// so one message per transaction would cap what one validator can take from its clients.
#[derive(Clone)]
pub struct Gossip<S> {
    sender: Arc<Mutex<S>>,
    queued: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<S: Sender<PublicKey = PublicKey>> Gossip<S> {
    /// Gossip through `sender`.
    pub fn new(sender: S) -> Self {
        Gossip { sender: Arc::new(Mutex::new(sender)), queued: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Sends `message` to every peer now; a peer that is offline misses it (it will find the
    /// transactions in the blocks).
    pub fn send(&self, message: &GossipMessage) {
        let bytes = message.encode();
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = sender.send(Recipients::All, bytes, false);
    }

    /// Queues a transaction (its BCS bytes) for the next batch.
    pub fn transaction(&self, bytes: Vec<u8>) {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner).push(bytes);
    }

    /// Sends every queued transaction, in batches.
    pub fn flush(&self) {
        let queued = std::mem::take(&mut *self.queued.lock().unwrap_or_else(PoisonError::into_inner));
        for batch in queued.chunks(MAX_GOSSIP_TRANSACTIONS) {
            self.send(&GossipMessage::Transactions(batch.to_vec()));
        }
    }
}

/// Starts the gossip's background tasks on `context`: the batched sends ([`flush_every`]) and the
/// heartbeat ([`heartbeat_every`]).
pub fn start_tasks<E, S>(context: &E, gossip: &Gossip<S>, shared: &Arc<Shared>)
where
    E: Clock + Spawner + Supervisor,
    S: Sender<PublicKey = PublicKey>,
{
    context.child("gossip_flush").spawn({
        let gossip = gossip.clone();
        move |clock| flush_every(clock, gossip)
    });
    context.child("heartbeat").spawn({
        let (gossip, shared) = (gossip.clone(), Arc::clone(shared));
        move |clock| heartbeat_every(clock, gossip, shared)
    });
}

/// Flushes `gossip`'s queue every [`FLUSH_INTERVAL`], forever.
pub async fn flush_every<E: Clock, S: Sender<PublicKey = PublicKey>>(clock: E, gossip: Gossip<S>) {
    loop {
        clock.sleep(FLUSH_INTERVAL).await;
        gossip.flush();
    }
}

/// Tells the peers every [`HEARTBEAT`] that this validator is alive, and counts the peers that
/// said so lately ([`crate::status`]), forever.
pub async fn heartbeat_every<E: Clock, S: Sender<PublicKey = PublicKey>>(
    clock: E,
    gossip: Gossip<S>,
    shared: Arc<Shared>,
) {
    loop {
        shared.liveness.beat();
        let peers = shared.liveness.connected().len();
        shared.metrics.peers.store(peers as u64, Ordering::Relaxed);
        gossip.send(&GossipMessage::Heartbeat { height: shared.ledger.tip().height });
        clock.sleep(HEARTBEAT).await;
    }
}

/// Receives gossip until the channel closes.
pub async fn receive<R: Receiver<PublicKey = PublicKey>>(mut receiver: R, shared: Arc<Shared>) {
    while let Ok((peer, bytes)) = receiver.recv().await {
        let Ok(message) = bcs::from_bytes::<GossipMessage>(bytes.as_ref()) else {
            tracing::debug!(%peer, "gossip that does not decode");
            continue;
        };
        match message {
            GossipMessage::Transactions(transactions) => admit(&shared, transactions),
            GossipMessage::Control(request) if shared.local_network => shared.controls.add(request),
            GossipMessage::Control(_) => {}
            GossipMessage::StateDigest { height, digest } => shared.divergence.report(&peer, height, digest),
            GossipMessage::Heartbeat { height } => shared.liveness.heard(&peer, height),
        }
    }
}

/// Verifies gossiped transactions and admits those that pass to the pool.
fn admit(shared: &Shared, transactions: Vec<Vec<u8>>) {
    let signed: Vec<SignedTransaction> = transactions
        .iter()
        .take(MAX_GOSSIP_TRANSACTIONS)
        .filter_map(|b| SignedTransaction::from_bytes(b).ok())
        .collect();
    let verified = atoma_types::batch::verify_transactions(signed, &shared.chain_id);
    let ledger = &shared.ledger;
    let mut pool = shared.pool();
    for tx in verified.into_iter().flatten() {
        let executed_next = ledger.next_nonce(&tx.sender());
        let counter = match pool.admit(tx, executed_next) {
            Ok(_) => &shared.metrics.gossip_admitted,
            Err(_) => &shared.metrics.gossip_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
