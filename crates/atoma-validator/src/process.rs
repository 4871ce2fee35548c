//! One validator as a process: Commonware's tokio runtime, authenticated and encrypted p2p with
//! the static peer list of `network.json`, the ledger in the validator's directory, and the
//! JSON-RPC server on its RPC address — the same RPC as `atoma start`, with this validator's
//! orderer behind it.
//!
//! The directory holds `network.json`, `identity.key`, `share.key`, on a local testnet
//! `keystore.json` (the faucet's key), and what the validator writes: `chain.redb` (the ledger)
//! and `consensus/` (the engine's journals and archives).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atoma_ledger::genesis::FAUCET_ALIAS;
use atoma_ledger::keystore::{KEYSTORE_FILE, Keystore};
use atoma_ledger::node::Node;
use atoma_ledger::{ChainError, Ledger, LedgerOptions};
use atoma_rpc::{RpcConfig, RpcServerHandle};
use commonware_cryptography::{ChaCha20Poly1305, Signer};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager};
use commonware_runtime::{Quota, Runner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::ordered::Map;
use commonware_utils::{NZU32, NZUsize};

use crate::block::ConsensusBlock;
use crate::committee::{CommitteeError, NetworkFile, ValidatorSecrets, ValidatorSet};
use crate::engine::{self, Channels, EngineConfig, channels};
use crate::gossip::{Gossip, GossipMessage};
use crate::orderer::ValidatorOrderer;
use crate::pool::DEFAULT_POOL_CAPACITY;
use crate::shared::Shared;
use crate::status::Membership;

/// The ledger's file in a validator's directory.
pub const CHAIN_DB_FILE: &str = "chain.redb";
/// The engine's storage in a validator's directory.
pub const CONSENSUS_DIR: &str = "consensus";
/// How long a view waits for its leader's proposal on real networks.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a validator could not run.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// Its files or keys are not usable.
    #[error(transparent)]
    Committee(#[from] CommitteeError),
    /// Its ledger could not be opened.
    #[error("{}", .0.chain())]
    Ledger(#[from] ChainError),
    /// Its RPC address could not be bound.
    #[error("cannot serve JSON-RPC: {0}")]
    Rpc(String),
    /// The validator is not one of the set in `network.json`.
    #[error("{0}: this validator's identity is not in the set of network.json")]
    NotAValidator(String),
}

/// What a started validator tells whoever started it.
#[derive(Clone, Debug)]
pub struct Ready {
    /// Its index in the set.
    pub index: usize,
    /// The set's size.
    pub validators: usize,
    /// Where it serves JSON-RPC.
    pub rpc_url: String,
    /// Where it listens for its peers.
    pub p2p_address: std::net::SocketAddr,
    /// The chain id.
    pub chain_id: atoma_types::Digest,
    /// The height its ledger opened at.
    pub height: u64,
}

/// Runs the validator in `dir` until the process is asked to stop (Ctrl-C, SIGTERM), then exits
/// the process; calls `on_ready` once it serves. Blocks the calling thread; returns only when
/// the validator cannot start.
///
/// # Errors
/// [`ValidatorError`] when it cannot start.
pub fn run(
    dir: &Path,
    ledger_options: LedgerOptions,
    on_ready: impl FnOnce(&Ready) + Send + 'static,
) -> Result<(), ValidatorError> {
    let network = NetworkFile::load(dir)?;
    let set = network.validator_set()?;
    let secrets = ValidatorSecrets::load(dir)?;
    let chain_id = network.genesis.digest().0;
    let scheme = set.signer(&chain_id, &secrets)?;
    let public_key = secrets.identity.public_key();
    let index = set
        .participants
        .position(&public_key)
        .ok_or_else(|| ValidatorError::NotAValidator(dir.display().to_string()))?;
    let genesis = network.genesis.clone();
    let ledger =
        Arc::new(Ledger::open_or_create(&dir.join(CHAIN_DB_FILE), ledger_options, move || Ok(genesis))?);
    if ledger.genesis().digest() != network.genesis.digest() {
        return Err(ValidatorError::Committee(CommitteeError::Invalid(format!(
            "{}: the ledger holds another chain than network.json's",
            dir.join(CHAIN_DB_FILE).display()
        ))));
    }
    let faucet = if network.local_network {
        Keystore::load(&dir.join(KEYSTORE_FILE))?.keypair(FAUCET_ALIAS)?
    } else {
        None
    };
    let config =
        cw_tokio::Config::new().with_worker_threads(2).with_storage_directory(dir.join(CONSENSUS_DIR));
    let dir: PathBuf = dir.to_path_buf();
    cw_tokio::Runner::new(config).start(move |context| async move {
        let started = serve(context, Start { network, set, secrets, scheme, ledger, faucet, index }).await;
        match started {
            Ok((server, ready)) => {
                on_ready(&ready);
                wait_for_signal().await;
                tracing::info!("stopping the validator in {}", dir.display());
                server.stop();
                server.stopped().await;
                // Everything this validator holds is durable at every step (the ledger commits
                // each block, the engine syncs its journal before every vote), so stopping is
                // exiting: the runtime would otherwise wait for its actors, which run forever.
                std::process::exit(0)
            }
            Err(e) => Err(e),
        }
    })
}

struct Start {
    network: NetworkFile,
    set: ValidatorSet,
    secrets: ValidatorSecrets,
    scheme: crate::Scheme,
    ledger: Arc<Ledger>,
    faucet: Option<atoma_types::Keypair>,
    index: usize,
}

/// Starts p2p, the engine and the RPC server.
async fn serve(context: cw_tokio::Context, start: Start) -> Result<(RpcServerHandle, Ready), ValidatorError> {
    let Start { network, set, secrets, scheme, ledger, faucet, index } = start;
    let n = set.len();
    let chain_id = network.genesis.digest().0;
    let me = &network.validators[index];
    let public_key = secrets.identity.public_key();
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: secrets.identity.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let namespace = [&b"atoma-p2p:"[..], &chain_id[..]].concat();
    let max_message = engine::max_message_size(n as u32);
    let p2p = if network.local_network {
        lookup::Config::local(handshake, &namespace, me.p2p_address, NZUsize!(n), max_message, NZUsize!(1024))
    } else {
        let mut config = lookup::Config::recommended(
            handshake,
            &namespace,
            me.p2p_address,
            NZUsize!(n),
            max_message,
            NZUsize!(1024),
        );
        // Validators often reach each other over private networks.
        config.allow_private_ips = true;
        config
    };
    let (mut p2p_network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
    let peers: Map<_, Address> = Map::from_iter_dedup(
        set.participants.iter().cloned().zip(network.validators.iter().map(|v| Address::from(v.p2p_address))),
    );
    let _ = oracle.track(0, peers);
    // Messages a peer may send on each channel per second. The p2p layer sizes its queues by it
    // (a burst for every peer), so it must stay modest; transactions travel in batches.
    let quota = Quota::per_second(NZU32!(1_000));
    let mut register = |channel| p2p_network.register(channel, quota);
    let (votes, certificates, resolver, backfill, blocks) = (
        register(channels::VOTES),
        register(channels::CERTIFICATES),
        register(channels::RESOLVER),
        register(channels::BACKFILL),
        register(channels::BLOCKS),
    );
    let (mempool_sender, mempool) = register(channels::MEMPOOL);
    p2p_network.start();

    let shared = Arc::new(Shared::new(
        Arc::clone(&ledger),
        network.local_network,
        set.verifier(&chain_id),
        DEFAULT_POOL_CAPACITY,
        Membership { participants: set.participants.iter().cloned().collect(), index },
    ));
    let gossip = Gossip::new(mempool_sender);
    crate::gossip::start_tasks(&context, &gossip, &shared);
    let orderer = Arc::new(ValidatorOrderer::new(Arc::clone(&shared), gossip.clone(), &public_key, faucet));
    let snapshot_shared = Arc::clone(&shared);
    let on_snapshot = Box::new(move |height: u64, digest: [u8; 32]| {
        snapshot_shared.divergence.ours(height, digest);
        gossip.send(&GossipMessage::StateDigest { height, digest });
    });
    let engine_config = EngineConfig {
        public_key,
        scheme,
        genesis: ConsensusBlock::genesis(&chain_id),
        partition_prefix: "atoma".into(),
        blocker: oracle.clone(),
        peer_provider: oracle.clone(),
        leader_timeout: LEADER_TIMEOUT,
    };
    let channels = Channels { votes, certificates, resolver, backfill, blocks, mempool };
    let _running =
        engine::start(context.child("validator"), engine_config, Arc::clone(&shared), channels, on_snapshot)
            .await;
    let server =
        atoma_rpc::serve(Node::new(Arc::clone(&ledger), orderer), RpcConfig::listening_on(me.rpc_address))
            .await
            .map_err(|e| ValidatorError::Rpc(e.to_string()))?;
    let ready = Ready {
        index,
        validators: n,
        rpc_url: server.url(),
        p2p_address: me.p2p_address,
        chain_id: atoma_types::Digest(chain_id),
        height: ledger.tip().height,
    };
    Ok((server, ready))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
