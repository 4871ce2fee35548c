//! The cast of a run: who takes part, with which keys and which behaviour, and the genesis that
//! funds them.
//!
//! Every key derives from the run's seed, so the chain id, every address and every signature of
//! a run are fixed by its seed.

use atoma_contract::{Address, Config, NodeSmallId, TOMA};
use atoma_ledger::GenesisConfig;
use atoma_types::Keypair;
use ed25519_dalek::SigningKey;

use crate::rng::SimRng;

/// The models the admin adds; model-bound tasks name them.
pub const MODELS: [&str; 2] = ["sim-llama-3-8b", "sim-mistral-7b"];
/// The confidential-compute device type every node claims (NVIDIA GPU).
pub const DEVICE_TYPE: u16 = 300;
/// One step of a node's price per compute unit, in base units.
pub const PRICE_STEP: u64 = 1_000_000;
/// What every actor holds at genesis.
pub const ACTOR_BALANCE: u64 = 100_000 * TOMA;
/// Every optimization bit (SPEC §3).
pub const ALL_OPTIMIZATIONS: u8 = 0b1_1111;

/// How an actor behaves.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Role {
    /// Holds the manager badge: sets up models and roots, changes parameters mid-flight (valid
    /// and invalid values), rotates TEE keys, deprecates tasks, toggles registration, disables
    /// nodes, withdraws treasuries.
    Admin,
    /// Registers, joins models, commits enclave keys, subscribes, settles honestly, attests
    /// honestly (and disputes a lie it sees), claims, withdraws fees, sometimes retires.
    HonestNode,
    /// Like an honest node but never settles: its stacks expire and their owners reclaim them.
    LazyNode,
    /// Settles with a forged proof or overclaimed units about half the time, and sometimes
    /// attests to a forged proof.
    LyingNode,
    /// Settles honestly but never attests: it is slashed on timeout when a ticket is claimed.
    NoShowNode,
    /// A node serving one model, seated as its oracle: resolves disputes by the ground truth,
    /// late or never for some, so that those expire.
    Oracle,
    /// Buys stacks, contests claimed units (rightly, and sometimes wrongly), reclaims expired
    /// stacks, expires abandoned disputes, moves TOMA and stack badges.
    User,
    /// A user who also keeps one live task per kind of task, replacing deprecated ones, and
    /// sometimes sends invalid task definitions.
    TaskOwner,
    /// Sends transactions that must be refused (bad signatures, wrong nonces, wrong chain id,
    /// garbage bytes, oversized) and calls that must fail (on objects it does not own).
    Adversary,
}

impl Role {
    /// Whether the role operates a node.
    pub fn is_node(self) -> bool {
        matches!(self, Role::HonestNode | Role::LazyNode | Role::LyingNode | Role::NoShowNode | Role::Oracle)
    }

    /// How likely (permille) the actor acts in a given block.
    pub fn activity_permille(self) -> u64 {
        match self {
            Role::HonestNode | Role::LazyNode | Role::LyingNode | Role::NoShowNode => 850,
            Role::Oracle | Role::TaskOwner => 700,
            Role::User => 600,
            Role::Admin => 500,
            Role::Adversary => 400,
        }
    }
}

/// One participant.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Its behaviour.
    pub role: Role,
    /// Its account key.
    pub key: Keypair,
    /// `key`'s address.
    pub address: Address,
    /// For oracles, the index into [`MODELS`] of the model it judges; for others, the model it
    /// joins first.
    pub model: usize,
}

/// Everyone in a run, plus the keys of the validator and the confidential-compute chain.
#[derive(Clone, Debug)]
pub struct Cast {
    /// Orders blocks and signs block seeds.
    pub validator: Keypair,
    /// Actor 0 is the admin.
    pub actors: Vec<Actor>,
    /// The attestation root the admin trusts for [`DEVICE_TYPE`].
    pub tee_root: SigningKey,
    /// The device key the root vouches for; it vouches for the nodes' enclave keys.
    pub tee_device: SigningKey,
    enclave_secret: [u8; 32],
}

impl Cast {
    /// Draws the cast of a run: the admin, 5–8 honest nodes, 1–2 lazy, 1–2 lying and 1–2
    /// no-show nodes, 2 oracles, 5–8 users, a task owner and an adversary, in an order drawn
    /// from the seed (the admin first).
    pub fn new(rng: &mut SimRng) -> Self {
        let validator = Keypair::from_secret_bytes(rng.bytes32());
        let mut roles = Vec::new();
        let counts = [
            (Role::HonestNode, rng.range(5, 8)),
            (Role::LazyNode, rng.range(1, 2)),
            (Role::LyingNode, rng.range(1, 2)),
            (Role::NoShowNode, rng.range(1, 2)),
            (Role::Oracle, 2),
            (Role::User, rng.range(5, 8)),
            (Role::TaskOwner, 1),
            (Role::Adversary, 1),
        ];
        for (role, count) in counts {
            roles.extend(std::iter::repeat_n(role, usize::try_from(count).unwrap_or(1)));
        }
        rng.shuffle(&mut roles);
        roles.insert(0, Role::Admin);
        let mut oracles = 0;
        let actors = roles
            .into_iter()
            .map(|role| {
                let key = Keypair::from_secret_bytes(rng.bytes32());
                let model = if role == Role::Oracle {
                    oracles += 1;
                    (oracles - 1) % MODELS.len()
                } else {
                    rng.index(MODELS.len())
                };
                Actor { role, address: key.address(), key, model }
            })
            .collect();
        Cast {
            validator,
            actors,
            tee_root: SigningKey::from_bytes(&rng.bytes32()),
            tee_device: SigningKey::from_bytes(&rng.bytes32()),
            enclave_secret: rng.bytes32(),
        }
    }

    /// The admin (actor 0).
    pub fn admin(&self) -> &Actor {
        &self.actors[0]
    }

    /// The index of the adversary.
    pub fn adversary(&self) -> usize {
        self.actors.iter().position(|a| a.role == Role::Adversary).unwrap_or(0)
    }

    /// The enclave key a node holds for a key rotation: fixed by the seed, the node and the
    /// rotation, so a node recommits a new key after every rotation.
    pub fn enclave_key(&self, node: NodeSmallId, rotation: u64) -> SigningKey {
        let secret = atoma_contract::hash::blake2b256(&[
            &self.enclave_secret,
            &node.0.to_le_bytes(),
            &rotation.to_le_bytes(),
        ]);
        SigningKey::from_bytes(&secret)
    }

    /// The genesis of the run: every actor funded, the validator's key, an epoch length and a
    /// start time drawn from the seed, and short protocol delays so that expiry, dispute and
    /// removal paths are reached within a few thousand transactions.
    pub fn genesis(&self, rng: &mut SimRng) -> GenesisConfig {
        let contract_config = Config {
            cross_validation_probability_permille: 500,
            cross_validation_extra_nodes_count: rng.range(1, 2),
            stack_dispute_settlement_delay_epochs: 1,
            task_removal_delay_epochs: 1,
            node_destroy_delay_epochs: 1,
            stack_expiration_epochs: rng.range(2, 3),
            dispute_resolution_deadline_epochs: rng.range(1, 2),
            ..Config::default()
        };
        GenesisConfig {
            timestamp_ms: 1_700_000_000_000 + rng.below(100_000_000_000),
            validator_public_key: self.validator.public_key(),
            admin: self.admin().address,
            allocations: self.actors.iter().map(|a| (a.address, ACTOR_BALANCE)).collect(),
            contract_config,
            epoch_duration_ms: rng.range(10_000, 30_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_fixes_the_cast_and_the_genesis() {
        let (mut a, mut b) = (SimRng::new(3), SimRng::new(3));
        let (ca, cb) = (Cast::new(&mut a), Cast::new(&mut b));
        assert_eq!(ca.genesis(&mut a).digest(), cb.genesis(&mut b).digest());
        assert_eq!(ca.admin().role, Role::Admin);
        assert_eq!(ca.actors.iter().filter(|x| x.role == Role::Oracle).count(), 2);
        let oracle_models: Vec<usize> =
            ca.actors.iter().filter(|x| x.role == Role::Oracle).map(|x| x.model).collect();
        assert_eq!(oracle_models, [0, 1], "one oracle per model");
        let mut c = SimRng::new(4);
        assert_ne!(Cast::new(&mut c).validator.address(), ca.validator.address());
        assert_ne!(
            ca.enclave_key(NodeSmallId(1), 0).to_bytes(),
            ca.enclave_key(NodeSmallId(1), 1).to_bytes()
        );
    }
}
