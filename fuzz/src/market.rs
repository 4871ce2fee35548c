//! A small live market to fuzz against: funded accounts (two of them near `u64::MAX / 2`, so
//! transfers between them can overflow), a model with one echelon and an oracle, four nodes with
//! every optimization and an enclave key, one task per security level plus a model-bound task
//! with no security, every node subscribed to every task, one stack bought on each task, and
//! cross-validation always on with two attesters.

use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::commitment::{settlement_commitment, stack_merkle_leaf};
use atoma_contract::hash::blake2b256;
use atoma_contract::state::BadgeKind;
use atoma_contract::tee::build_evidence;
use atoma_contract::{Address, AtomaDb, Config, EchelonId, Genesis, NodeSmallId, ObjectId, TOMA, TxContext};
use ed25519_dalek::SigningKey;

/// The model every node serves.
pub const MODEL: &str = "llama";
/// The device type whose attestation root the admin trusts.
pub const DEVICE_TYPE: u16 = 300;
/// How many senders the fuzzers choose from (index 0 is the admin).
pub const SENDERS: usize = 9;
/// Sender 5 owns the oracle node; 6 buys; 7 and 8 hold almost `u64::MAX / 2` each.
pub const ORACLE_OWNER: usize = 5;
/// The buyer of the pre-built stacks.
pub const BUYER: usize = 6;

/// The `i`-th sender's address.
pub fn sender(i: usize) -> Address {
    Address(blake2b256(&[b"fuzz-sender", &[i as u8]]))
}

/// The enclave key a node commits (and signs confidential settlements with).
pub fn enclave_key(node: NodeSmallId) -> SigningKey {
    SigningKey::from_bytes(&blake2b256(&[b"fuzz-enclave", &node.0.to_le_bytes()]))
}

/// The attestation root of [`DEVICE_TYPE`].
pub fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// The device key vouched for by [`root_key`].
pub fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// The requests every honest party served.
pub fn requests() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![(b"2+2?".to_vec(), b"4".to_vec()), (b"capital of France?".to_vec(), b"Paris".to_vec())]
}

/// The honest committed proof for `k` attesters.
pub fn honest_proof(k: u64) -> [u8; 32] {
    settlement_commitment(&requests(), k).expect("small requests").0
}

/// Party `i`'s honest leaf.
pub fn honest_leaf(i: u64) -> [u8; 32] {
    stack_merkle_leaf(i, &requests()).expect("small requests")
}

/// A built market: the state and what a fuzzer needs to aim at it.
#[derive(Clone)]
pub struct Market {
    /// The state after setup.
    pub db: AtomaDb,
    /// The genesis it started from.
    pub genesis: Genesis,
    /// The manager badge the admin (sender 0) holds.
    pub manager_badge: ObjectId,
    /// Epoch and time of the next call.
    pub clock: Clock,
}

/// Epoch, time and a counter for transaction digests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Clock {
    /// The current epoch.
    pub epoch: u64,
    /// The current time in ms.
    pub time_ms: u64,
    /// Transactions executed so far.
    pub counter: u64,
}

impl Clock {
    /// The context of the next transaction from `sender`.
    pub fn next(&mut self, sender: Address) -> TxContext {
        self.counter += 1;
        self.time_ms += 10;
        let digest = blake2b256(&[b"fuzz-tx", &self.counter.to_le_bytes()]);
        TxContext {
            sender,
            epoch: self.epoch,
            timestamp_ms: self.time_ms,
            tx_digest: digest,
            random_seed: blake2b256(&[b"fuzz-seed", &digest]),
        }
    }

    /// Moves `n` epochs on.
    pub fn advance(&mut self, n: u64) {
        self.epoch += n;
        self.time_ms += n * 60_000;
    }
}

impl Market {
    /// Builds the market; every setup call must succeed.
    pub fn build() -> Market {
        let mut allocations: Vec<(Address, u64)> =
            (0..SENDERS).map(|i| (sender(i), 1_000_000 * TOMA)).collect();
        allocations[7].1 = u64::MAX / 2 - 1;
        allocations[8].1 = u64::MAX / 2 - 1;
        let genesis =
            Genesis { admin: sender(0), allocations, config: Config::default(), genesis_digest: [42; 32] };
        let (db, _) = AtomaDb::genesis(&genesis).expect("genesis");
        let manager_badge = db
            .owned_badges(&sender(0))
            .into_iter()
            .find(|(_, b)| b.kind == BadgeKind::Manager)
            .map(|(id, _)| id)
            .expect("the admin holds a manager badge");
        let mut m =
            Market { db, genesis, manager_badge, clock: Clock { epoch: 0, time_ms: 1_000, counter: 0 } };
        m.setup();
        m
    }

    fn ok(&mut self, who: usize, call: Call) {
        let ctx = self.clock.next(sender(who));
        if let Err(e) = self.db.execute(&ctx, &call) {
            panic!("market setup: {call:?} failed: {e}");
        }
    }

    fn admin(&mut self, op: AdminOp) {
        self.ok(0, Call::Admin { manager_badge: self.manager_badge, op });
    }

    fn setup(&mut self) {
        self.admin(AdminOp::AddModel { name: MODEL.into(), modality: 0 });
        let params = EchelonParams {
            input_fee_per_token: 1,
            output_fee_per_token: 2,
            relative_performance: 100,
            settlement_timeout_ms: 30_000,
        };
        self.admin(AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon: EchelonId(1), params });
        self.admin(AdminOp::AddAttestationRoot {
            device_type: DEVICE_TYPE,
            public_key: root_key().verifying_key().to_bytes(),
        });
        // Nodes 1..=4 belong to senders 1..=4; node 5, the oracle, to sender 5.
        for owner in 1..=ORACLE_OWNER {
            let node = NodeSmallId(owner as u64);
            self.ok(
                owner,
                Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0b1_1111 },
            );
            self.ok(owner, Call::AddNodeToModel { node, model_name: MODEL.into(), echelon: EchelonId(1) });
            let public_key = enclave_key(node).verifying_key().to_bytes();
            let evidence = build_evidence(&root_key(), &device_key(), &public_key, node, 0);
            self.ok(
                owner,
                Call::CommitNodePublicKey {
                    node,
                    device_type: DEVICE_TYPE,
                    key_rotation_counter: 0,
                    public_key,
                    evidence,
                },
            );
        }
        self.admin(AdminOp::AddModelEchelonOracleNode {
            model_name: MODEL.into(),
            echelon: EchelonId(1),
            node: NodeSmallId(ORACLE_OWNER as u64),
        });
        // Tasks 1..=4: no security, confidential compute, sampling consensus, no security on the model.
        for (level, model) in [(0, false), (1, false), (2, true), (0, true)] {
            let call = Call::CreateTask {
                role: 0,
                model_name: model.then(|| MODEL.to_string()),
                security_level: level,
                minimum_reputation_score: None,
                required_optimizations: 0,
            };
            self.ok(BUYER, call);
        }
        for node in 1..=4u64 {
            for task in 1..=4u64 {
                let call = Call::SubscribeNodeToTask {
                    node: NodeSmallId(node),
                    task: atoma_contract::TaskSmallId(task),
                    price_per_compute_unit: node,
                    max_num_compute_units: 1_000,
                };
                self.ok(node as usize, call);
            }
        }
        self.admin(AdminOp::SetParameter {
            parameter: Parameter::CrossValidationProbabilityPermille,
            value: 1000,
        });
        self.admin(AdminOp::SetParameter { parameter: Parameter::CrossValidationExtraNodesCount, value: 2 });
        for task in 1..=4u64 {
            let call = Call::AcquireNewStack {
                task: atoma_contract::TaskSmallId(task),
                num_compute_units: 100,
                max_price_per_compute_unit: 10,
            };
            self.ok(BUYER, call);
        }
        assert!(self.db.audit().holds());
    }
}
