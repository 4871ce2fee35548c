//! Builds large markets for the benchmarks through the contract's own entry functions.
#![allow(dead_code)]

use atoma_contract::call::Call;
use atoma_contract::event::Event;
use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, AtomaDb, Config, Genesis, NodeSmallId, StackSmallId, TaskSmallId, TxContext};

/// Drives an `AtomaDb` with contexts that never repeat a digest.
pub struct Driver {
    pub db: AtomaDb,
    pub epoch: u64,
    counter: u64,
}

/// The address that owns every node, and the buyer.
pub fn operator() -> Address {
    Address(blake2b256(&[b"bench-operator"]))
}

pub fn buyer() -> Address {
    Address(blake2b256(&[b"bench-buyer"]))
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Driver {
    /// A genesis where registration costs 1 base unit and two accounts hold a quarter of
    /// `u64::MAX` each.
    pub fn new() -> Self {
        let config = Config { registration_collateral: 1, ..Config::default() };
        let genesis = Genesis {
            admin: operator(),
            allocations: vec![(operator(), u64::MAX / 4), (buyer(), u64::MAX / 4)],
            config,
            genesis_digest: [9; 32],
        };
        let (db, _) = AtomaDb::genesis(&genesis).expect("genesis");
        Driver { db, epoch: 0, counter: 0 }
    }

    pub fn context(&mut self, sender: Address) -> TxContext {
        self.counter += 1;
        let digest = blake2b256(&[b"bench", &self.counter.to_le_bytes()]);
        TxContext {
            sender,
            epoch: self.epoch,
            timestamp_ms: self.counter,
            tx_digest: digest,
            random_seed: digest,
        }
    }

    /// Executes a call that must succeed.
    pub fn run(&mut self, sender: Address, call: &Call) -> Vec<Event> {
        let ctx = self.context(sender);
        match self.db.execute(&ctx, call) {
            Ok(events) => events,
            Err(e) => panic!("{call:?}: {e}"),
        }
    }

    pub fn create_task(&mut self) -> TaskSmallId {
        let call = Call::CreateTask {
            role: 0,
            model_name: None,
            security_level: 0,
            minimum_reputation_score: None,
            required_optimizations: 0,
        };
        match &self.run(operator(), &call)[0] {
            Event::TaskRegisteredEvent(e) => e.task_small_id,
            other => panic!("{other:?}"),
        }
    }

    /// Registers `n` nodes and subscribes each to `task` at price `1 + i % 1000`.
    pub fn add_nodes(&mut self, task: TaskSmallId, n: u64) -> Vec<NodeSmallId> {
        (0..n)
            .map(|i| {
                let register = Call::RegisterNode { collateral: 1, supported_optimizations: 0 };
                let node = match &self.run(operator(), &register)[0] {
                    Event::NodeRegisteredEvent(e) => e.node_small_id,
                    other => panic!("{other:?}"),
                };
                let subscribe = Call::SubscribeNodeToTask {
                    node,
                    task,
                    price_per_compute_unit: 1 + i % 1000,
                    max_num_compute_units: 1_000,
                };
                self.run(operator(), &subscribe);
                node
            })
            .collect()
    }

    /// Buys a stack of `units` with price cap `cap`; returns its id and selected node.
    pub fn buy(&mut self, task: TaskSmallId, units: u64, cap: u64) -> (StackSmallId, NodeSmallId) {
        let call = Call::AcquireNewStack { task, num_compute_units: units, max_price_per_compute_unit: cap };
        match &self.run(buyer(), &call)[0] {
            Event::StackCreatedEvent(e) => (e.small_id, e.selected_node),
            other => panic!("{other:?}"),
        }
    }
}

/// Resident memory of this process in bytes, from /proc (Linux).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// The mean of a criterion benchmark in nanoseconds, read from this run's
/// `target/criterion/<group>/<id>[/<param>]/new/estimates.json`.
pub fn mean_ns(group: &str, id: &str, param: Option<u64>) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let path = match param {
        Some(p) => format!("{dir}/criterion/{group}/{id}/{p}/new/estimates.json"),
        None => format!("{dir}/criterion/{group}/{id}/new/estimates.json"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}
