//! A local network in process for the agent's tests and its benchmark
//! (`examples/bench_agent.rs` includes this file): a chain in a directory, its RPC server on a
//! free loopback port, a client, and the admin with its manager badge.

#![allow(dead_code)] // the tests and the benchmark each use part of this

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use atoma_api::BadgeKindView;
use atoma_client::Client;
use atoma_contract::{AdminOp, Call, EchelonId, EchelonParams, ObjectId};
use atoma_ledger::genesis::ADMIN_ALIAS;
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask, Keystore};
use atoma_rpc::{RpcConfig, RpcServerHandle, serve};
use atoma_types::Keypair;

/// A running chain and RPC server.
pub struct Net {
    pub chain: ChainHandle,
    pub task: ChainTask,
    pub server: RpcServerHandle,
    pub client: Client,
    pub chain_id: [u8; 32],
    pub admin: Keypair,
    pub badge: ObjectId,
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Signs and submits; the contract must accept.
pub async fn ok(client: &Client, key: &Keypair, call: Call) {
    let result = client.sign_and_execute(key, call.clone()).await.unwrap_or_else(|e| panic!("{call:?}: {e}"));
    assert!(result.is_success(), "{call:?}: {:?}", result.error);
}

impl Net {
    /// A fresh local network with `accounts` test accounts in `dir/chain`, served on a free
    /// loopback port.
    pub async fn start(dir: &Path, accounts: u64) -> Net {
        let mut config = ChainConfig::local(dir.join("chain"));
        config.fresh = true;
        config.genesis.accounts = accounts;
        Net::open(dir, config, loopback()).await
    }

    /// The chain in `dir/chain` opened again after [`Net::stop`], served on `address` again (the
    /// port may take a moment to be free).
    pub async fn restart(dir: &Path, address: SocketAddr) -> Net {
        Net::open(dir, ChainConfig::local(dir.join("chain")), address).await
    }

    async fn open(dir: &Path, config: ChainConfig, address: SocketAddr) -> Net {
        let (chain, task) = Chain::open(config).expect("a chain");
        let deadline = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match serve(chain.clone(), RpcConfig::listening_on(address)).await {
                Ok(server) => break server,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("cannot serve on {address}: {e}"),
            }
        };
        let client = Client::new(&server.url()).expect("a client");
        let chain_id = client.get_chain_info().await.expect("info").chain_id.0;
        let keystore = Keystore::load(&dir.join("chain").join(KEYSTORE_FILE)).expect("keystore");
        let admin = keystore.keypair(ADMIN_ALIAS).expect("readable").expect("the admin key");
        let badges = client.get_owned_badges(&admin.address()).await.expect("badges");
        let badge = badges
            .iter()
            .find(|b| b.kind == BadgeKindView::AtomaManagerBadge)
            .map(|b| b.id)
            .expect("a manager badge");
        Net { chain, task, server, client, chain_id, admin, badge }
    }

    /// An admin call, which must succeed.
    pub async fn admin(&self, op: AdminOp) {
        ok(&self.client, &self.admin, Call::Admin { manager_badge: self.badge, op }).await;
    }

    /// Adds `model` with echelon 1 (fees of one base unit per token).
    pub async fn add_model(&self, model: &str, settlement_timeout_ms: u64) {
        self.admin(AdminOp::AddModel { name: model.into(), modality: 0 }).await;
        let params = EchelonParams {
            input_fee_per_token: 1,
            output_fee_per_token: 1,
            relative_performance: 1,
            settlement_timeout_ms,
        };
        self.admin(AdminOp::AddModelEchelon { model_name: model.into(), echelon: EchelonId(1), params })
            .await;
    }

    /// Stops the server, then the chain, and waits until the chain's thread has ended.
    pub async fn stop(self) {
        let Net { chain, task, server, client, .. } = self;
        drop(client);
        server.stop();
        server.stopped().await;
        chain.shutdown();
        drop(chain);
        tokio::task::spawn_blocking(move || task.join()).await.expect("joins").expect("the chain stopped");
    }
}
