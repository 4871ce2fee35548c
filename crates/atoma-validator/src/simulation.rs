//! A validator set in one process, for tests: Commonware's deterministic runtime (simulated time,
//! one seed decides every ordering) and its simulated network (links with latency, jitter and
//! loss; partitions by removing links), each validator with its own ledger on disk.
//!
//! [`SimNetwork::start`] deals a set and a local testnet genesis, links everyone and starts every
//! validator; [`SimNetwork::crash`] aborts a validator's tasks mid-flight (an unclean stop: its
//! journals and ledger keep what they synced) and [`SimNetwork::restart`] starts it again on the
//! same storage.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use atoma_ledger::genesis::{LocalKeys, LocalNetworkOptions};
use atoma_ledger::node::{LocalNetwork, Orderer};
use atoma_ledger::{GenesisConfig, Ledger, LedgerOptions};
use atoma_types::{SignedTransaction, TxOutcome};
use commonware_cryptography::Signer;
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock, Handle, Quota, Spawner, Supervisor as _, deterministic};
use commonware_utils::{NZU32, NZUsize};
use rand_core::SeedableRng;

use crate::PublicKey;
use commonware_consensus::marshal::core::Mailbox as MarshalMailbox;
use commonware_consensus::marshal::standard::Standard;

use crate::block::ConsensusBlock;
use crate::committee::{ValidatorSecrets, ValidatorSet, deal};
use crate::engine::{self, Channels, EngineConfig};
use crate::gossip::{Gossip, GossipMessage};
use crate::orderer::ValidatorOrderer;
use crate::pool::DEFAULT_POOL_CAPACITY;
use crate::shared::Shared;
use crate::status::Membership;

/// A simulated validator's p2p sender.
pub type SimSender = simulated::Sender<PublicKey, deterministic::Context>;
/// A simulated validator's orderer.
pub type SimOrderer = ValidatorOrderer<SimSender>;

/// Per-peer, per-channel message rate.
const QUOTA: Quota = Quota::per_second(NZU32!(1_000));

/// How a simulated set runs.
#[derive(Clone)]
pub struct SimConfig {
    /// Validators.
    pub validators: usize,
    /// The link between every two.
    pub link: Link,
    /// How long a view waits for its leader.
    pub leader_timeout: Duration,
    /// Test accounts funded at genesis.
    pub accounts: u64,
    /// Snapshots (and state digest comparisons) every this many blocks.
    pub snapshot_interval: u64,
}

impl SimConfig {
    /// `validators` validators on lossless 10 ± 3 ms links.
    pub fn new(validators: usize) -> Self {
        SimConfig {
            validators,
            link: Link {
                latency: Duration::from_millis(10),
                jitter: Duration::from_millis(3),
                success_rate: commonware_utils::probability!(1.0),
            },
            leader_timeout: Duration::from_millis(500),
            accounts: 8,
            snapshot_interval: 10,
        }
    }
}

/// A running simulated validator.
#[derive(Clone)]
pub struct Started {
    /// Its shared state: ledger, pool, seeds, counters.
    pub shared: Arc<Shared>,
    /// What its RPC would submit to.
    pub orderer: Arc<SimOrderer>,
    /// Its marshal: consensus blocks and finalizations by height.
    pub marshal: MarshalMailbox<crate::Scheme, Standard<ConsensusBlock>>,
}

/// The set, its keys and genesis, the network, and each validator's task.
pub struct SimNetwork {
    /// The validator set.
    pub set: ValidatorSet,
    secrets: Vec<ValidatorSecrets>,
    /// The chain's genesis.
    pub genesis: GenesisConfig,
    /// The local testnet's admin, faucet and test accounts.
    pub keys: LocalKeys,
    /// The simulated network.
    pub oracle: Oracle<PublicKey, deterministic::Context>,
    config: SimConfig,
    dir: PathBuf,
    tasks: Vec<Option<Handle<()>>>,
    started: Vec<Arc<Mutex<Option<Started>>>>,
}

impl SimNetwork {
    /// Deals a set of `config.validators` (from the runtime's seed), links every pair, and starts
    /// every validator, each keeping its ledger under `dir`.
    ///
    /// # Panics
    /// When the set cannot be dealt or a validator cannot start: a broken test setup.
    pub async fn start(context: &deterministic::Context, config: SimConfig, dir: PathBuf) -> Self {
        let mut seed = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut context.child("keys"), &mut seed);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        let (set, secrets) = deal(config.validators, &mut rng).expect("a set is dealt");
        let keys = LocalKeys::generate(config.accounts).expect("keys");
        let options = LocalNetworkOptions { accounts: config.accounts, ..LocalNetworkOptions::default() };
        let mut genesis = keys.genesis(&options, 0);
        genesis.validator_public_key = set.commitment();
        let n = config.validators;
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: engine::max_message_size(n as u32),
                max_peers_per_set: NZUsize!(n),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            set.participants.iter().cloned(),
        )
        .await;
        network.start();
        let mut sim = SimNetwork {
            set,
            secrets,
            genesis,
            keys,
            oracle,
            config,
            dir,
            tasks: (0..n).map(|_| None).collect(),
            started: (0..n).map(|_| Arc::new(Mutex::new(None))).collect(),
        };
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    sim.link(i, j).await;
                }
            }
        }
        for i in 0..n {
            sim.restart(context, i).await;
        }
        sim
    }

    /// The running validator `i`, once it started.
    pub fn validator(&self, i: usize) -> Option<Started> {
        self.started[i].lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    async fn link(&self, i: usize, j: usize) {
        let (a, b) = (self.set.participants[i].clone(), self.set.participants[j].clone());
        self.oracle.add_link(a, b, self.config.link.clone()).await.expect("link");
    }

    /// Cuts validator `i` off from everyone, both ways.
    pub async fn isolate(&self, i: usize) {
        let me = self.set.participants[i].clone();
        for (j, other) in self.set.participants.iter().enumerate() {
            if j != i {
                let _ = self.oracle.remove_link(me.clone(), other.clone()).await;
                let _ = self.oracle.remove_link(other.clone(), me.clone()).await;
            }
        }
    }

    /// Links validator `i` with everyone again.
    pub async fn heal(&self, i: usize) {
        for j in 0..self.len() {
            if j != i {
                self.link(i, j).await;
                self.link(j, i).await;
            }
        }
    }

    /// Aborts every task of validator `i` mid-flight: an unclean stop.
    pub fn crash(&mut self, i: usize) {
        *self.started[i].lock().unwrap_or_else(PoisonError::into_inner) = None;
        if let Some(task) = self.tasks[i].take() {
            task.abort();
        }
    }

    /// Starts validator `i` (again) on its storage, and returns once it runs; it catches up
    /// through marshal's backfill.
    pub async fn restart(&mut self, context: &deterministic::Context, i: usize) {
        let public_key = self.set.participants[i].clone();
        let chain_id = self.genesis.digest().0;
        let scheme = self.set.signer(&chain_id, &self.secrets[i]).expect("the share fits");
        let verifier = self.set.verifier(&chain_id);
        let (genesis, oracle) = (self.genesis.clone(), self.oracle.clone());
        let faucet = self.keys.faucet.clone();
        let path = self.dir.join(format!("v{i}")).join("chain.redb");
        let (slot, config) = (Arc::clone(&self.started[i]), self.config.clone());
        let membership =
            Membership { participants: self.set.participants.iter().cloned().collect(), index: i };
        let task = context.child("validator").with_attribute("index", i).spawn(move |context| async move {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
            let options =
                LedgerOptions { snapshot_interval: config.snapshot_interval, ..LedgerOptions::default() };
            let ledger = wait_for_ledger(&context, &path, options, &genesis).await;
            let control = oracle.control(public_key.clone());
            let mut registered = Vec::new();
            for channel in engine::channels::ALL {
                registered.push(control.register(channel, QUOTA).await.expect("a channel"));
            }
            let mut registered = registered.into_iter();
            let mut next = || registered.next().expect("six channels");
            let (votes, certificates, resolver, backfill, blocks) = (next(), next(), next(), next(), next());
            let (mempool_sender, mempool) = next();
            let shared = Arc::new(Shared::new(ledger, true, verifier, DEFAULT_POOL_CAPACITY, membership));
            let gossip = Gossip::new(mempool_sender);
            crate::gossip::start_tasks(&context, &gossip, &shared);
            let orderer = Arc::new(ValidatorOrderer::new(
                Arc::clone(&shared),
                gossip.clone(),
                &public_key,
                Some(faucet),
            ));
            let snapshot_shared = Arc::clone(&shared);
            let on_snapshot = Box::new(move |height: u64, digest: [u8; 32]| {
                snapshot_shared.divergence.ours(height, digest);
                gossip.send(&GossipMessage::StateDigest { height, digest });
            });
            let engine_config = EngineConfig {
                public_key: public_key.clone(),
                scheme,
                genesis: ConsensusBlock::genesis(&chain_id),
                partition_prefix: format!("v{i}"),
                blocker: oracle.control(public_key.clone()),
                peer_provider: oracle.manager(),
                leader_timeout: config.leader_timeout,
            };
            let channels = Channels { votes, certificates, resolver, backfill, blocks, mempool };
            let running = engine::start(
                context.child("node"),
                engine_config,
                Arc::clone(&shared),
                channels,
                on_snapshot,
            )
            .await;
            let marshal = running.marshal.clone();
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Started { shared, orderer, marshal });
            let _ = running.engine.await;
        });
        self.tasks[i] = Some(task);
        while self.validator(i).is_none() {
            context.sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until every running validator executed `height`; `false` after `deadline`.
    pub async fn wait_for_height(
        &self,
        context: &deterministic::Context,
        height: u64,
        deadline: Duration,
    ) -> bool {
        let start = context.current();
        loop {
            let running: Vec<Started> = (0..self.len()).filter_map(|i| self.validator(i)).collect();
            if !running.is_empty() && running.iter().all(|v| v.shared.ledger.tip().height >= height) {
                return true;
            }
            if context.current().duration_since(start).unwrap_or_default() > deadline {
                return false;
            }
            context.sleep(Duration::from_millis(20)).await;
        }
    }

    /// Submits through validator `i` and waits for the outcome.
    ///
    /// # Panics
    /// When validator `i` is not running.
    pub async fn submit(
        &self,
        i: usize,
        signed: SignedTransaction,
    ) -> Result<TxOutcome, atoma_types::LedgerError> {
        let orderer = self.validator(i).expect("running").orderer;
        orderer.submit(signed).await
    }

    /// Asks validator `i` to advance the epoch.
    ///
    /// # Panics
    /// When validator `i` is not running.
    pub async fn advance_epoch(
        &self,
        i: usize,
    ) -> Result<atoma_types::BlockHeader, atoma_types::LedgerError> {
        let orderer = self.validator(i).expect("running").orderer;
        LocalNetwork::advance_epoch(orderer.as_ref()).await
    }

    /// The identity of validator `i`.
    pub fn identity(&self, i: usize) -> PublicKey {
        self.secrets[i].identity.public_key()
    }
}

/// Opens the ledger at `path`, waiting while a crashed instance's last handles let go of it.
async fn wait_for_ledger(
    context: &deterministic::Context,
    path: &std::path::Path,
    options: LedgerOptions,
    genesis: &GenesisConfig,
) -> Arc<Ledger> {
    for _ in 0..1000 {
        match Ledger::open_or_create(path, options, || Ok(genesis.clone())) {
            Ok(ledger) => return Arc::new(ledger),
            Err(atoma_ledger::ChainError::DataDirInUse { .. }) => {
                context.sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("the ledger does not open: {}", e.chain()),
        }
    }
    panic!("the ledger stayed locked")
}
