//! A test world: genesis with funded accounts, a clock, and checks after every call.
//!
//! Every call made through [`World::call`] checks that supply is conserved (SPEC §7.4) and that a
//! failed call left the state digest unchanged and emitted nothing.
#![allow(dead_code)]

use atoma_contract::call::{AdminOp, Call, EchelonParams};
use atoma_contract::commitment::settlement_commitment;
use atoma_contract::event::Event;
use atoma_contract::hash::blake2b256;
use atoma_contract::state::BadgeKind;
use atoma_contract::{
    Address, AtomaDb, Config, ContractError, EchelonId, Genesis, NodeSmallId, ObjectId, StackSmallId, TOMA,
    TaskSmallId, TxContext,
};

/// Every test account starts with this much.
pub const START_BALANCE: u64 = 1_000_000 * TOMA;
/// The default registration collateral.
pub const COLLATERAL: u64 = 1_000 * TOMA;
/// The model most tests use.
pub const MODEL: &str = "llama-3.1-8b";

pub fn addr(i: u8) -> Address {
    Address(blake2b256(&[b"test-account", &[i]]))
}

pub struct World {
    pub db: AtomaDb,
    pub epoch: u64,
    pub time_ms: u64,
    counter: u64,
    pub admin: Address,
    pub manager_badge: ObjectId,
    pub seed: u64,
    /// Every call made, with its context, for replays.
    pub log: Vec<(TxContext, Call)>,
    pub genesis: Genesis,
}

impl World {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        let admin = addr(0);
        let allocations = (0..=40u8).map(|i| (addr(i), START_BALANCE)).collect();
        let genesis = Genesis { admin, allocations, config, genesis_digest: [42; 32] };
        let recorded = genesis.clone();
        let (db, events) = AtomaDb::genesis(&genesis).expect("genesis");
        assert_eq!(events.len(), 1);
        let manager_badge = db
            .owned_badges(&admin)
            .into_iter()
            .find(|(_, b)| b.kind == BadgeKind::Manager)
            .map(|(id, _)| id)
            .expect("admin holds a manager badge");
        World {
            db,
            epoch: 0,
            time_ms: 1_000,
            counter: 0,
            admin,
            manager_badge,
            seed: 0,
            log: Vec::new(),
            genesis: recorded,
        }
    }

    fn next_context(&mut self, sender: Address) -> TxContext {
        self.counter += 1;
        self.time_ms += 10;
        let digest = blake2b256(&[b"tx", &self.counter.to_le_bytes()]);
        TxContext {
            sender,
            epoch: self.epoch,
            timestamp_ms: self.time_ms,
            tx_digest: digest,
            random_seed: blake2b256(&[b"seed", &self.seed.to_le_bytes(), &digest]),
        }
    }

    /// Executes a call and checks the invariants that must hold after any call.
    pub fn call(&mut self, sender: Address, call: Call) -> Result<Vec<Event>, ContractError> {
        let before = self.db.state_digest();
        let ctx = self.next_context(sender);
        let result = self.db.execute(&ctx, &call);
        self.log.push((ctx, call.clone()));
        let audit = self.db.audit();
        assert!(audit.holds(), "supply not conserved after {call:?}: {audit:?}");
        match &result {
            Ok(_) => {}
            Err(e) => {
                assert_ne!(*e, ContractError::EInternalPanic, "contract panicked on {call:?}");
                assert_eq!(self.db.state_digest(), before, "failed call {call:?} changed the state");
            }
        }
        result
    }

    #[track_caller]
    pub fn ok(&mut self, sender: Address, call: Call) -> Vec<Event> {
        match self.call(sender, call.clone()) {
            Ok(events) => events,
            Err(e) => panic!("{call:?} failed: {e}"),
        }
    }

    #[track_caller]
    pub fn err(&mut self, sender: Address, call: Call) -> ContractError {
        match self.call(sender, call.clone()) {
            Ok(events) => panic!("{call:?} succeeded with {events:?}"),
            Err(e) => e,
        }
    }

    /// Replays every logged call from genesis and returns the final digest.
    pub fn replay(&self) -> [u8; 32] {
        let (mut db, _) = AtomaDb::genesis(&self.genesis).expect("genesis");
        for (ctx, call) in &self.log {
            let _ = db.execute(ctx, call);
        }
        db.state_digest()
    }

    pub fn admin_call(&mut self, op: AdminOp) -> Result<Vec<Event>, ContractError> {
        let call = Call::Admin { manager_badge: self.manager_badge, op };
        self.call(self.admin, call)
    }

    #[track_caller]
    pub fn admin_ok(&mut self, op: AdminOp) -> Vec<Event> {
        self.admin_call(op.clone()).unwrap_or_else(|e| panic!("{op:?} failed: {e}"))
    }

    pub fn advance_epochs(&mut self, n: u64) {
        self.epoch += n;
        self.time_ms += n * 60_000;
    }

    pub fn balance(&self, who: Address) -> u64 {
        self.db.balance(&who)
    }

    /// Adds `name` with echelon 1.
    pub fn add_model(&mut self, name: &str) {
        self.admin_ok(AdminOp::AddModel { name: name.into(), modality: 0 });
        self.admin_ok(AdminOp::AddModelEchelon {
            model_name: name.into(),
            echelon: EchelonId(1),
            params: EchelonParams {
                input_fee_per_token: 1,
                output_fee_per_token: 2,
                relative_performance: 100,
                settlement_timeout_ms: 30_000,
            },
        });
    }

    pub fn register_node(&mut self, owner: Address) -> NodeSmallId {
        let events =
            self.ok(owner, Call::RegisterNode { collateral: COLLATERAL, supported_optimizations: 0 });
        match &events[0] {
            Event::NodeRegisteredEvent(e) => e.node_small_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Registers a node that serves `MODEL` in echelon 1.
    pub fn register_model_node(&mut self, owner: Address) -> NodeSmallId {
        let node = self.register_node(owner);
        self.ok(owner, Call::AddNodeToModel { node, model_name: MODEL.into(), echelon: EchelonId(1) });
        node
    }

    pub fn create_task(&mut self, owner: Address, level: u16, model: Option<&str>) -> TaskSmallId {
        let events = self.ok(
            owner,
            Call::CreateTask {
                role: 0,
                model_name: model.map(str::to_string),
                security_level: level,
                minimum_reputation_score: None,
                required_optimizations: 0,
            },
        );
        match &events[0] {
            Event::TaskRegisteredEvent(e) => e.task_small_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn subscribe(
        &mut self,
        owner: Address,
        node: NodeSmallId,
        task: TaskSmallId,
        price: u64,
        max_units: u64,
    ) {
        self.ok(
            owner,
            Call::SubscribeNodeToTask {
                node,
                task,
                price_per_compute_unit: price,
                max_num_compute_units: max_units,
            },
        );
    }

    /// Buys a stack; returns its id and the selected node.
    pub fn buy(
        &mut self,
        owner: Address,
        task: TaskSmallId,
        units: u64,
        cap: u64,
    ) -> (StackSmallId, NodeSmallId) {
        let events = self.ok(
            owner,
            Call::AcquireNewStack { task, num_compute_units: units, max_price_per_compute_unit: cap },
        );
        match &events[0] {
            Event::StackCreatedEvent(e) => (e.small_id, e.selected_node),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The owner of a node's badge.
    pub fn node_owner(&self, node: NodeSmallId) -> Address {
        let badge = self.db.node(node).expect("node").badge_id;
        self.db.badge(badge).expect("badge").owner
    }

    pub fn settle_call(
        &self,
        node: NodeSmallId,
        stack: StackSmallId,
        units: u64,
        proof: [u8; 32],
        leaf: [u8; 32],
    ) -> Call {
        Call::TrySettleStack {
            node,
            stack,
            num_claimed_compute_units: units,
            committed_stack_proof: proof.to_vec(),
            stack_merkle_leaf: leaf.to_vec(),
            tee_signature: None,
        }
    }
}

/// The honest commitment for a stack whose requests were served identically.
pub fn honest_commitment(k: u64) -> ([u8; 32], [u8; 32]) {
    let requests =
        vec![(b"What is 2+2?".to_vec(), b"4".to_vec()), (b"Capital of France?".to_vec(), b"Paris".to_vec())];
    settlement_commitment(&requests, k).expect("small requests")
}

/// The leaf party `i` computes from the honest outputs.
pub fn honest_leaf(i: u64) -> [u8; 32] {
    let requests =
        vec![(b"What is 2+2?".to_vec(), b"4".to_vec()), (b"Capital of France?".to_vec(), b"Paris".to_vec())];
    atoma_contract::commitment::stack_merkle_leaf(i, &requests).expect("small requests")
}

/// The names of a list of events.
pub fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}
