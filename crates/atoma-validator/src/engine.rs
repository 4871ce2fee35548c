//! One validator's actors, wired: Simplex (votes, certificates), marshal (finalized blocks,
//! backfill) with its block broadcast and resolver, the application behind marshal's `Inline`
//! wrapper, the seed reporter, the executor, and the gossip receiver. Generic over Commonware's
//! runtime and p2p network, so the same wiring runs N validators in one deterministic
//! simulation (tests) and one validator per process on tokio with authenticated p2p.
//!
//! Every actor is spawned from a child of the context given, so aborting the task that owns it
//! aborts the whole validator (an unclean crash, in the simulation).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use commonware_broadcast::buffered;
use commonware_consensus::marshal::core::{Actor as MarshalActor, Mailbox as MarshalMailbox};
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Inline, Standard};
use commonware_consensus::marshal::{self};
use commonware_consensus::simplex::config::{ForwardPolicy, SkipPolicy};
use commonware_consensus::simplex::elector::{Random, RandomVersion};
use commonware_consensus::simplex::{self};
use commonware_consensus::types::{Epoch, FixedEpocher, ViewDelta};
use commonware_cryptography::certificate::ConstantProvider;
use commonware_cryptography::{Digested, Digestible};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize};
use rand_core::CryptoRng;

use crate::app::App;
use crate::block::{BlockLimits, ConsensusBlock};
use crate::executor::{Finalized, OnSnapshot};
use crate::seeds::SeedReporter;
use crate::shared::Shared;
use crate::{Digest, PublicKey, Scheme};

/// The p2p channels, the same on every validator.
pub mod channels {
    /// Simplex's votes.
    pub const VOTES: u64 = 0;
    /// Simplex's certificates.
    pub const CERTIFICATES: u64 = 1;
    /// Simplex's certificate resolver.
    pub const RESOLVER: u64 = 2;
    /// Marshal's backfill of finalized blocks.
    pub const BACKFILL: u64 = 3;
    /// Full blocks, broadcast by their proposer.
    pub const BLOCKS: u64 = 4;
    /// Transactions, time controls and state digests (`crate::gossip`).
    pub const MEMPOOL: u64 = 5;
    /// Every channel, in order.
    pub const ALL: [u64; 6] = [VOTES, CERTIFICATES, RESOLVER, BACKFILL, BLOCKS, MEMPOOL];
}

/// The largest message any channel carries for a set of `n`: blocks, certificates, gossip.
pub fn max_message_size(n: u32) -> u32 {
    let limits = BlockLimits::default();
    let gossip = u32::try_from(
        crate::gossip::MAX_GOSSIP_TRANSACTIONS * (atoma_types::tx::MAX_TRANSACTION_SIZE + 8) + 64,
    )
    .unwrap_or(u32::MAX);
    commonware_p2p::max_message_size(&[
        simplex::max_payload_size::<Scheme, Digest>(n),
        marshal::max_payload_size::<Standard<ConsensusBlock>, Scheme>(n, &limits),
    ])
    .max(gossip)
}

/// One (sender, receiver) pair per channel.
pub struct Channels<S, R> {
    /// [`channels::VOTES`].
    pub votes: (S, R),
    /// [`channels::CERTIFICATES`].
    pub certificates: (S, R),
    /// [`channels::RESOLVER`].
    pub resolver: (S, R),
    /// [`channels::BACKFILL`].
    pub backfill: (S, R),
    /// [`channels::BLOCKS`].
    pub blocks: (S, R),
    /// [`channels::MEMPOOL`]'s receiver (its sender goes to the orderer's gossip).
    pub mempool: R,
}

/// How one validator runs.
pub struct EngineConfig<B, P> {
    /// Its identity.
    pub public_key: PublicKey,
    /// Its signing scheme: share, polynomial, participants.
    pub scheme: Scheme,
    /// The chain's genesis consensus block.
    pub genesis: ConsensusBlock,
    /// The prefix of every storage partition of this validator (unique per validator when
    /// several share one storage root, as in the simulation).
    pub partition_prefix: String,
    /// Blocks misbehaving peers.
    pub blocker: B,
    /// Tells which peers there are.
    pub peer_provider: P,
    /// How long a view waits for its leader's proposal.
    pub leader_timeout: Duration,
}

/// A running validator's handles.
pub struct Running {
    /// Simplex's task.
    pub engine: Handle<()>,
    /// Marshal's mailbox: blocks and finalizations by height, for tests and tools.
    pub marshal: MarshalMailbox<Scheme, Standard<ConsensusBlock>>,
}

/// Archive settings for marshal's finalized blocks and certificates.
fn archive<C>(prefix: &str, name: &str, page_cache: CacheRef, codec_config: C) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 64,
        freezer_table_resize_frequency: 10,
        freezer_table_resize_chunk_size: 10,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache,
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1024),
        codec_config,
        replay_buffer: NZUsize!(1024 * 1024),
        freezer_key_write_buffer: NZUsize!(1024 * 1024),
        freezer_value_write_buffer: NZUsize!(1024 * 1024),
        ordinal_write_buffer: NZUsize!(1024 * 1024),
    }
}

/// Starts one validator's actors on `context`. `on_snapshot` hears each snapshot height's state
/// digest (the caller gossips it).
///
/// # Panics
/// When a storage partition cannot be opened: the validator cannot run without its journals.
pub async fn start<E, B, P, S, R>(
    context: E,
    config: EngineConfig<B, P>,
    shared: Arc<Shared>,
    channels: Channels<S, R>,
    on_snapshot: OnSnapshot,
) -> Running
where
    E: Clock + CryptoRng + Spawner + Storage + Metrics,
    B: Blocker<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let EngineConfig {
        public_key,
        scheme,
        genesis,
        partition_prefix: prefix,
        blocker,
        peer_provider,
        leader_timeout,
    } = config;
    let limits = BlockLimits::default();
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));
    let mailbox_size: NonZeroUsize = NZUsize!(1024);
    // One epoch forever: changing the set needs a new Simplex instance (not built yet).
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));

    let resolver = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: public_key.clone(),
            peer_provider: peer_provider.clone(),
            blocker: blocker.clone(),
            mailbox_size,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (broadcast, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: public_key.clone(),
            mailbox_size,
            deque_size: 10,
            priority: false,
            codec_config: limits,
            peer_provider: peer_provider.clone(),
            strategy: Sequential,
        },
    );
    broadcast.start(channels.blocks);

    // The certificates' codec config (the scheme's own, unbounded: the archive is ours alone).
    let certificate_codec =
        <Scheme as commonware_cryptography::certificate::Verifier>::certificate_codec_config_unbounded;
    #[allow(clippy::unit_arg)]
    let certificates_config = archive(&prefix, "finalizations", page_cache.clone(), certificate_codec());
    let certificates = immutable::Archive::init(context.child("finalizations"), certificates_config)
        .await
        .expect("the finalizations archive opens");
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive(&prefix, "blocks", page_cache.clone(), limits),
    )
    .await
    .expect("the blocks archive opens");
    let genesis_digest = genesis.digest();
    let (marshal_actor, marshal, _floor) = MarshalActor::<_, Standard<ConsensusBlock>, _, _, _, _, _>::init(
        context.child("marshal"),
        certificates,
        blocks,
        marshal::Config {
            provider: ConstantProvider::new(scheme.clone()),
            epocher: epocher.clone(),
            start: marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
            partition_prefix: format!("{prefix}-marshal"),
            mailbox_size,
            view_retention: ViewDelta::new(10),
            prunable_items_per_section: NZU64!(10),
            page_cache: page_cache.clone(),
            replay_buffer: NZUsize!(1024 * 1024),
            key_write_buffer: NZUsize!(1024 * 1024),
            value_write_buffer: NZUsize!(1024 * 1024),
            block_codec_config: limits,
            max_repair: NZUsize!(10),
            // A block waits for the seed of the view after it, which the next two blocks may
            // carry: room for them before the first is acknowledged.
            max_pending_acks: NZUsize!(8),
            strategy: Sequential,
        },
    )
    .await;

    let (finalized, deliveries) = Finalized::new(Arc::clone(&shared));
    let executor_shared = Arc::clone(&shared);
    context
        .child("executor")
        .dedicated()
        .spawn(move |clock| crate::executor::run(clock, executor_shared, deliveries, on_snapshot));
    marshal_actor.start(finalized, buffer, resolver);

    let gossip_shared = Arc::clone(&shared);
    context.child("gossip").spawn(move |_| crate::gossip::receive(channels.mempool, gossip_shared));

    let inline =
        Inline::new(context.child("inline"), App::new(Arc::clone(&shared)), marshal.clone(), epocher);
    let reporter = SeedReporter { shared: Arc::clone(&shared), inner: inline.clone() };
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: Random::<commonware_cryptography::Sha256>::new(RandomVersion::V1),
            blocker,
            automaton: inline.clone(),
            relay: inline,
            reporter,
            strategy: Sequential,
            partition: format!("{prefix}-simplex"),
            mailbox_size,
            epoch: Epoch::zero(),
            floor: simplex::Floor::Genesis(genesis_digest),
            replay_buffer: NZUsize!(1024 * 1024),
            write_buffer: NZUsize!(1024 * 1024),
            page_cache,
            leader_timeout,
            certification_timeout: leader_timeout * 2,
            timeout_retry: leader_timeout,
            view_retention: ViewDelta::new(10),
            skip: SkipPolicy::Enabled {
                timeout: leader_timeout * 5,
                budget: simplex::SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(Duration::from_secs(1)),
            fetch_retry_delay: Duration::from_millis(200),
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );
    let engine = engine.start(channels.votes, channels.certificates, channels.resolver);
    Running { engine, marshal }
}
