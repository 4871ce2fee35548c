//! Running one call: the context it gets, and the all-or-nothing rule.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::call::Call;
use crate::enums::Optimizations;
use crate::error::ContractError;
use crate::event::Event;
use crate::ids::{Address, NodeSmallId, ObjectId, TaskSmallId};
use crate::settlement::SettleRequest;
use crate::state::{AtomaDb, Node};
use crate::tasks::NewTask;
use crate::tee::KeyCommitment;

/// What the ledger tells the contract about the transaction being executed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TxContext {
    /// The address that signed the transaction.
    pub sender: Address,
    /// The epoch of the block.
    pub epoch: u64,
    /// The block's timestamp in milliseconds.
    pub timestamp_ms: u64,
    /// The transaction's digest; object ids derive from it (SPEC §2).
    pub tx_digest: [u8; 32],
    /// `blake2b-256(block_random_seed ‖ tx_digest)`; seeds the ChaCha20 generator (SPEC §8).
    pub random_seed: [u8; 32],
}

/// The mutable part of one execution: randomness, created objects and events so far.
pub(crate) struct Tx<'a> {
    pub ctx: &'a TxContext,
    pub rng: ChaCha20Rng,
    next_object: u64,
    pub events: Vec<Event>,
}

impl<'a> Tx<'a> {
    pub fn new(ctx: &'a TxContext) -> Self {
        Tx { ctx, rng: ChaCha20Rng::from_seed(ctx.random_seed), next_object: 0, events: Vec::new() }
    }

    /// The id of the next object this transaction creates.
    pub fn new_object_id(&mut self) -> ObjectId {
        let id = ObjectId::derive(&self.ctx.tx_digest, self.next_object);
        self.next_object += 1;
        id
    }

    pub fn emit(&mut self, event: impl Into<Event>) {
        self.events.push(event.into());
    }

    pub fn sender(&self) -> Address {
        self.ctx.sender
    }

    pub fn epoch(&self) -> u64 {
        self.ctx.epoch
    }

    pub fn timestamp_ms(&self) -> u64 {
        self.ctx.timestamp_ms
    }
}

impl AtomaDb {
    /// Executes one call atomically.
    ///
    /// On success the state changes and the call's events are returned in order. On failure the
    /// error is returned and the state is exactly as before: every write is journaled and rolled
    /// back. A panic inside the contract is a bug; it is caught, rolled back and reported as
    /// `EInternalPanic` so that a replica never halts on it (and every replica reports the same).
    ///
    /// # Errors
    /// The call's own errors, as listed on each entry function in SPEC §5.
    pub fn execute(&mut self, ctx: &TxContext, call: &Call) -> Result<Vec<Event>, ContractError> {
        let mut tx = Tx::new(ctx);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.dispatch(&mut tx, call)));
        match outcome {
            Ok(Ok(())) => {
                self.commit();
                Ok(tx.events)
            }
            Ok(Err(error)) => {
                self.rollback();
                Err(error)
            }
            Err(_) => {
                self.rollback();
                Err(ContractError::EInternalPanic)
            }
        }
    }

    /// Executes a call and undoes it whatever the outcome: what `execute` would return, at the
    /// cost of the call alone (no copy of the state). The state is unchanged afterwards.
    ///
    /// # Errors
    /// As [`AtomaDb::execute`].
    pub fn dry_run(&mut self, ctx: &TxContext, call: &Call) -> Result<Vec<Event>, ContractError> {
        let mut tx = Tx::new(ctx);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.dispatch(&mut tx, call)));
        self.rollback();
        match outcome {
            Ok(Ok(())) => Ok(tx.events),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ContractError::EInternalPanic),
        }
    }

    fn dispatch(&mut self, tx: &mut Tx<'_>, call: &Call) -> Result<(), ContractError> {
        match call {
            Call::TransferToma { recipient, amount } => self.transfer_toma(tx, *recipient, *amount),
            Call::TransferBadge { badge, recipient } => self.transfer_badge(tx, *badge, *recipient),
            Call::RegisterNode { collateral, supported_optimizations } => {
                self.register_node(tx, *collateral, *supported_optimizations)
            }
            Call::AddNodeCollateral { node, amount } => self.add_node_collateral(tx, *node, *amount),
            Call::SubscribeNodeToTask { node, task, price_per_compute_unit, max_num_compute_units } => {
                self.subscribe_node_to_task(tx, *node, *task, *price_per_compute_unit, *max_num_compute_units)
            }
            Call::UpdateNodeSubscription { node, task, price_per_compute_unit, max_num_compute_units } => {
                self.update_node_subscription(
                    tx,
                    *node,
                    *task,
                    *price_per_compute_unit,
                    *max_num_compute_units,
                )
            }
            Call::UnsubscribeNodeFromTask { node, task } => self.unsubscribe_node_from_task(tx, *node, *task),
            Call::AddNodeToModel { node, model_name, echelon } => {
                self.add_node_to_model(tx, *node, model_name, *echelon)
            }
            Call::RemoveNodeFromModel { node, model_name, echelon } => {
                self.remove_node_from_model(tx, *node, model_name, *echelon)
            }
            Call::SetNodeOptimizations { node, supported_optimizations } => {
                self.set_node_optimizations(tx, *node, *supported_optimizations)
            }
            Call::SetNodeEndpoint { node, url } => self.set_node_endpoint(tx, *node, url),
            Call::PermanentlyDisableNode { node } => {
                self.owned_node(tx, *node)?;
                self.disable_node(tx, *node)
            }
            Call::DestroyDisabledNode { node } => self.destroy_disabled_node(tx, *node),
            Call::WithdrawFees { node } => self.withdraw_fees(tx, *node),
            Call::CommitNodePublicKey { node, device_type, key_rotation_counter, public_key, evidence } => {
                let commitment = KeyCommitment {
                    node: *node,
                    device_type: *device_type,
                    rotation: *key_rotation_counter,
                    public_key,
                    evidence,
                };
                self.commit_node_public_key(tx, commitment)
            }
            Call::CreateTask {
                role,
                model_name,
                security_level,
                minimum_reputation_score,
                required_optimizations,
            } => {
                let request = NewTask {
                    role: *role,
                    model_name: model_name.as_deref(),
                    security_level: *security_level,
                    minimum_reputation_score: *minimum_reputation_score,
                    required_optimizations: *required_optimizations,
                };
                self.create_task(tx, request)
            }
            Call::DeprecateTask { task } => {
                self.owned_task(tx, *task)?;
                self.deprecate_task(tx, *task)
            }
            Call::RemoveDeprecatedTask { task } => {
                self.owned_task(tx, *task)?;
                self.remove_deprecated_task(tx, *task)
            }
            Call::AcquireNewStack { task, num_compute_units, max_price_per_compute_unit } => {
                self.acquire_new_stack(tx, *task, *num_compute_units, *max_price_per_compute_unit)
            }
            Call::ReclaimExpiredStack { stack } => self.reclaim_expired_stack(tx, *stack),
            Call::TrySettleStack {
                node,
                stack,
                num_claimed_compute_units,
                committed_stack_proof,
                stack_merkle_leaf,
                tee_signature,
            } => {
                let request = SettleRequest {
                    node: *node,
                    stack: *stack,
                    units: *num_claimed_compute_units,
                    proof: committed_stack_proof,
                    leaf: stack_merkle_leaf,
                    tee_signature: tee_signature.as_deref(),
                };
                self.try_settle_stack(tx, request)
            }
            Call::SubmitStackSettlementAttestation {
                node,
                stack,
                committed_stack_proof,
                stack_merkle_leaf,
            } => self.submit_stack_settlement_attestation(
                tx,
                *node,
                *stack,
                committed_stack_proof,
                stack_merkle_leaf,
            ),
            Call::StartAttestationDispute { node, stack, attestation_commitment } => {
                self.start_attestation_dispute(tx, *node, *stack, attestation_commitment)
            }
            Call::ContestClaimedUnits { stack, counted_units } => {
                self.contest_claimed_units(tx, *stack, *counted_units)
            }
            Call::ResolveStackDispute {
                oracle_node,
                stack,
                correct_committed_stack_proof,
                correct_units,
            } => self.resolve_stack_dispute(
                tx,
                *oracle_node,
                *stack,
                correct_committed_stack_proof,
                *correct_units,
            ),
            Call::ClaimFunds { node, stacks } => self.claim_funds(tx, *node, stacks),
            Call::ExpireDispute { stack } => self.expire_dispute(tx, *stack),
            Call::Admin { manager_badge, op } => self.admin(tx, *manager_badge, op),
        }
    }

    /// Keeps the call's writes and brings the sampling index up to date with them.
    ///
    /// Only what can change static eligibility is re-filed: subscriptions the call wrote, and
    /// the subscriptions of nodes whose collateral, status, reputation or optimizations changed.
    /// Task fields that matter for eligibility never change after creation, and a purchase
    /// touches one node, so this stays independent of the number of subscribers.
    fn commit(&mut self) {
        let mut first_seen: BTreeMap<NodeSmallId, Option<Node>> = BTreeMap::new();
        for (id, old) in self.nodes.journal() {
            first_seen.entry(*id).or_insert_with(|| old.cloned());
        }
        let changed_nodes: Vec<NodeSmallId> = first_seen
            .into_iter()
            .filter(|(id, old)| {
                let now = self.nodes.get(id);
                old.as_ref().map(eligibility_signature) != now.map(eligibility_signature)
            })
            .map(|(id, _)| id)
            .collect();
        let mut touched_pairs: Vec<(TaskSmallId, NodeSmallId)> =
            self.subscriptions.dirty_keys().copied().collect();
        touched_pairs.sort_unstable();
        touched_pairs.dedup();
        for node in changed_nodes {
            self.refresh_index_for_node(node);
        }
        for (task, node) in touched_pairs {
            self.refresh_index_entry(task, node);
        }
        self.each_journal(&mut |j| j.commit());
    }

    fn rollback(&mut self) {
        self.each_journal(&mut |j| j.rollback());
    }
}

/// The node fields that static eligibility depends on (see [`crate::sampling`]).
fn eligibility_signature(node: &Node) -> (bool, bool, u16, Optimizations) {
    (node.collateral > 0, node.is_disabled(), node.reputation, node.optimizations)
}
