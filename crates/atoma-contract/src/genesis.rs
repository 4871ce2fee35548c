//! Genesis: the first state of a network.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::ContractError;
use crate::event::{Event, PublishedEvent};
use crate::exec::{Tx, TxContext};
use crate::ids::Address;
use crate::state::{AtomaDb, BadgeKind, Globals};
use crate::table::Cell;

/// What a network starts with. Genesis is the only time TOMA is minted: the total supply is
/// the sum of the allocations and never changes afterwards (SPEC §7.4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Genesis {
    /// Receives the first `AtomaManagerBadge`.
    pub admin: Address,
    /// Initial balances; an address may appear more than once.
    pub allocations: Vec<(Address, u64)>,
    /// The configuration the network starts with.
    pub config: Config,
    /// Object ids created at genesis derive from this digest.
    pub genesis_digest: [u8; 32],
}

impl AtomaDb {
    /// Builds the genesis state and its `PublishedEvent`.
    ///
    /// # Errors
    /// `EArithmeticOverflow` when one address's allocations add up past `u64::MAX`.
    pub fn genesis(genesis: &Genesis) -> Result<(AtomaDb, Vec<Event>), ContractError> {
        let ctx = TxContext {
            sender: genesis.admin,
            epoch: 0,
            timestamp_ms: 0,
            tx_digest: genesis.genesis_digest,
            random_seed: genesis.genesis_digest,
        };
        let mut tx = Tx::new(&ctx);
        let package_id = tx.new_object_id();
        let db_id = tx.new_object_id();
        let total_supply = genesis.allocations.iter().map(|(_, amount)| u128::from(*amount)).sum();
        let globals = Globals {
            db_id,
            package_id,
            next_node_small_id: 1,
            next_task_small_id: 1,
            next_stack_small_id: 1,
            fee_treasury: 0,
            communal_treasury: 0,
            key_rotation_counter: 0,
            total_supply,
            config: genesis.config.clone(),
        };
        let mut db = AtomaDb {
            globals: Cell::new(globals),
            balances: Default::default(),
            badges: Default::default(),
            owned: Default::default(),
            nodes: Default::default(),
            subscriptions: Default::default(),
            node_tasks: Default::default(),
            models: Default::default(),
            model_nodes: Default::default(),
            node_models: Default::default(),
            tasks: Default::default(),
            stacks: Default::default(),
            closed_stacks: Default::default(),
            attestation_roots: Default::default(),
            node_endpoints: Default::default(),
            sampling: Default::default(),
        };
        for (address, amount) in &genesis.allocations {
            db.credit(*address, *amount)?;
        }
        let manager_badge = db.mint_badge(&mut tx, genesis.admin, BadgeKind::Manager);
        tx.emit(PublishedEvent { db: db_id, manager_badge });
        db.each_journal(&mut |j| j.commit());
        Ok((db, tx.events))
    }
}
