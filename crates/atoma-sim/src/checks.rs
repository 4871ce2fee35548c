//! The auditor: invariants checked after every transaction and every block, and after every
//! restart.
//!
//! The auditor keeps its own replica of the contract (the *shadow*), fed the same transactions
//! with the same contexts the ledger derives, so that it can check things at the moment of each
//! transaction that the state after a whole block no longer shows (which node a purchase
//! selected, and whether it was eligible then). It also keeps its own model of every sender's
//! nonce and of which stacks have been paid out.

use std::collections::{BTreeMap, BTreeSet};

use atoma_contract::enums::SecurityLevel;
use atoma_contract::event::Event;
use atoma_contract::sampling::statically_eligible;
use atoma_contract::state::{Stack, StackTerms};
use atoma_contract::{Address, AtomaDb, Audit, Call, ContractError, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_ledger::{BlockEffects, GenesisConfig, Ledger, Tip};
use atoma_types::{Block, Digest, TxOutcome, TxStatus};

use crate::actors::Role;
use crate::plan::Planned;
use crate::report::{OK, Punctuality, Report, call_kind};
use crate::rng::SimRng;
use crate::truth::{StackTruth, attester_ready_ms};

/// Fails the enclosing function with a formatted message unless the condition holds; counts
/// the check.
macro_rules! ensure {
    ($checks:expr, $cond:expr, $($msg:tt)+) => {{
        $checks += 1;
        if !$cond {
            return Err(format!($($msg)+));
        }
    }};
}

/// Compare the shadow with the ledger's whole state every this many blocks (and at restarts
/// and the end).
const SHADOW_DIGEST_EVERY: u64 = 16;

/// A block and what surrounded it, for [`Auditor::after_block`].
pub struct AppliedBlock<'a> {
    /// The applied block.
    pub block: &'a Block,
    /// What applying it produced.
    pub effects: &'a BlockEffects,
    /// The planned calls, aligned with the block's transactions.
    pub planned: &'a [Planned],
    /// The tip before the block.
    pub tip_before: Tip,
    /// Whether the sequencer was asked to start the next epoch.
    pub forced_epoch: bool,
}

/// What the shadow held just before a transaction, for checking the amounts its events report.
struct Before {
    /// The stacks the call names.
    stacks: BTreeMap<StackSmallId, Stack>,
    /// Every node's collateral and reputation, updated as the transaction's slashes are read.
    nodes: BTreeMap<NodeSmallId, (u64, u16)>,
    /// The timeout slash in force.
    timeout_permille: u64,
    /// The oracle's share of a dispute slash in force.
    oracle_permille: u64,
}

/// See the module docs.
pub struct Auditor {
    shadow: AtomaDb,
    shadow_audit: Audit,
    epoch_duration_ms: u64,
    nonces: BTreeMap<Address, u64>,
    paid: BTreeSet<StackSmallId>,
    last_ids: [u64; 3],
    rng: SimRng,
    failed_digest_permille: u64,
    /// The run's seed and every account's role, for the checks on honest nodes.
    honesty: Option<(u64, BTreeMap<Address, Role>)>,
    /// Checks passed so far.
    pub checks: u64,
    /// The timestamps of the applied blocks, ascending.
    block_times: Vec<u64>,
    /// Honest attesters and the dispute window so far.
    pub punctuality: Punctuality,
}

impl Auditor {
    /// An auditor whose shadow starts from `genesis`, tracking the nonces of `addresses`.
    ///
    /// # Errors
    /// When the genesis does not build.
    pub fn new(
        genesis: &GenesisConfig,
        addresses: impl IntoIterator<Item = Address>,
        rng: SimRng,
        failed_digest_permille: u64,
    ) -> Result<Self, String> {
        let (state, _) = genesis.build_state().map_err(|e| format!("genesis: {e}"))?;
        let shadow = state.db;
        Ok(Auditor {
            shadow_audit: shadow.audit(),
            shadow,
            epoch_duration_ms: genesis.epoch_duration_ms,
            nonces: addresses.into_iter().map(|a| (a, 0)).collect(),
            paid: BTreeSet::new(),
            last_ids: [0; 3],
            rng,
            failed_digest_permille,
            honesty: None,
            checks: 0,
            block_times: Vec::new(),
            punctuality: Punctuality::default(),
        })
    }

    /// Also checks that honest operators (honest and no-show nodes, which both settle
    /// truthfully) are never slashed for a dispute and are always paid for exactly the units
    /// they served, by the ground truth of the run `seed`.
    #[must_use]
    pub fn with_roles(mut self, seed: u64, roles: impl IntoIterator<Item = (Address, Role)>) -> Self {
        self.honesty = Some((seed, roles.into_iter().collect()));
        self
    }

    /// Whether the node's operator settles truthfully.
    fn honest_operator(&self, node: NodeSmallId) -> bool {
        let Some((_, roles)) = &self.honesty else { return false };
        let owner = self.shadow.node(node).and_then(|n| self.shadow.badge(n.badge_id)).map(|b| b.owner);
        owner.and_then(|o| roles.get(&o)).is_some_and(|r| matches!(r, Role::HonestNode | Role::NoShowNode))
    }

    /// The role of the node's operator, when roles are known.
    fn operator_role(&self, node: NodeSmallId) -> Option<Role> {
        let (_, roles) = self.honesty.as_ref()?;
        let owner = self.shadow.node(node).and_then(|n| self.shadow.badge(n.badge_id)).map(|b| b.owner)?;
        roles.get(&owner).copied()
    }

    /// An honest attester was slashed on timeout by this transaction: it must have been an absent
    /// attester of a stack the call decided, and no block may have fallen between its answer and
    /// its deadline (it would have attested in that block, and the window takes an attestation
    /// until the deadline).
    fn check_honest_timeout(&mut self, node: NodeSmallId, before: &Before) -> Result<(), String> {
        let Some((seed, _)) = &self.honesty else { return Ok(()) };
        let absent = before.stacks.values().find_map(|stack| {
            let ticket = stack.ticket.as_ref()?;
            let position = ticket.requested_attestation_nodes.iter().position(|n| *n == node)?;
            ticket.attestations.get(position).is_some_and(Option::is_none).then(|| {
                let ready = attester_ready_ms(*seed, stack, ticket.created_ms, position);
                (stack.small_id, ready, ticket.window_floor_ms(&stack.terms))
            })
        });
        let Some((stack, ready, deadline)) = absent else {
            // The other timeout slash: a stack its node never settled, reclaimed after expiry.
            let unsettled = before.stacks.values().any(|s| s.selected_node == node && s.ticket.is_none());
            ensure!(
                self.checks,
                unsettled,
                "honest node {node} was slashed on timeout, but it owed no attestation and no settlement"
            );
            return Ok(());
        };
        let first = self.block_times.partition_point(|t| *t < ready);
        let inside = self.block_times.get(first).filter(|t| **t < deadline);
        ensure!(
            self.checks,
            inside.is_none(),
            "honest attester {node} of stack {stack} was slashed on timeout, yet it answered at {ready} ms \
             and the block at {} ms came before its deadline at {deadline} ms",
            inside.copied().unwrap_or_default()
        );
        self.punctuality.honest_slashed_after_pause += 1;
        Ok(())
    }

    /// Counts an honest node's attestation that the contract took, and whether only the window's
    /// floor in time kept it open.
    fn count_honest_attestation(&mut self, call: &Call, sender: Address, epoch: u64, before: &Before) {
        let stack = match call {
            Call::SubmitStackSettlementAttestation { stack, .. }
            | Call::StartAttestationDispute { stack, .. } => stack,
            _ => return,
        };
        let honest =
            self.honesty.as_ref().and_then(|(_, roles)| roles.get(&sender)) == Some(&Role::HonestNode);
        if !honest {
            return;
        }
        self.punctuality.honest_attestations += 1;
        let ticket = before.stacks.get(stack).and_then(|s| s.ticket.as_ref());
        if ticket.is_some_and(|t| epoch >= t.dispute_settled_at_epoch) {
            self.punctuality.kept_open_by_floor += 1;
        }
    }

    /// The digest of the shadow's contract state.
    pub fn shadow_digest(&self) -> [u8; 32] {
        self.shadow.state_digest()
    }

    /// Every check that follows an applied block; counts it into `report`.
    ///
    /// # Errors
    /// The first invariant found broken.
    pub fn after_block(
        &mut self,
        ledger: &Ledger,
        b: &AppliedBlock<'_>,
        report: &mut Report,
    ) -> Result<(), String> {
        let header = &b.block.header;
        ensure!(
            self.checks,
            b.effects.outcomes.len() == b.block.transactions.len(),
            "one outcome per transaction"
        );
        ensure!(
            self.checks,
            b.planned.len() == b.block.transactions.len(),
            "the block holds exactly what was admitted"
        );
        let mut senders = BTreeSet::new();
        for (index, (outcome, planned)) in b.effects.outcomes.iter().zip(b.planned).enumerate() {
            let sender = self.transaction(b.block, index, outcome, planned, report)?;
            senders.insert(sender);
        }
        self.check_epoch(ledger, b)?;
        for (address, expected) in &self.nonces {
            let next = ledger.next_nonce(address);
            ensure!(
                self.checks,
                next == *expected,
                "{address}: next nonce {next}, but {expected} transactions executed"
            );
        }
        for sender in &senders {
            let stored = ledger.stored_nonce(sender).map_err(|e| e.to_string())?;
            ensure!(self.checks, stored == self.nonces[sender], "{sender}: stored nonce {stored} differs");
        }
        if let Some(index) =
            (!b.effects.outcomes.is_empty()).then(|| self.rng.index(b.effects.outcomes.len()))
        {
            let outcome = &b.effects.outcomes[index];
            let stored = ledger.transaction(&outcome.digest).map_err(|e| e.to_string())?;
            ensure!(
                self.checks,
                stored.map(|r| r.outcome).as_ref() == Some(outcome),
                "stored outcome of {}",
                outcome.digest
            );
        }
        ledger.with_state(|db| self.check_state(db))?;
        if header.height.is_multiple_of(SHADOW_DIGEST_EVERY) {
            self.check_shadow(ledger)?;
        }
        self.block_times.push(header.timestamp_ms);
        Ok(())
    }

    /// Re-executes one transaction in the shadow and checks it against the ledger's outcome.
    fn transaction(
        &mut self,
        block: &Block,
        index: usize,
        outcome: &TxOutcome,
        planned: &Planned,
        report: &mut Report,
    ) -> Result<Address, String> {
        let header = &block.header;
        let signed = &block.transactions[index];
        let digest = signed.digest();
        let tx = signed.decode_transaction().map_err(|e| e.to_string())?;
        ensure!(
            self.checks,
            header.tx_digests[index] == digest && outcome.digest == digest,
            "tx {index}: digest"
        );
        ensure!(
            self.checks,
            outcome.height == header.height
                && outcome.index == index as u64
                && outcome.epoch == header.epoch
                && outcome.timestamp_ms == header.timestamp_ms
                && outcome.sender == tx.sender,
            "tx {digest}: outcome placed wrong"
        );
        ensure!(self.checks, tx.call == planned.call, "tx {digest} is not the planned call");
        let ctx = header.tx_context(tx.sender, &digest);
        let before = self.rng.chance(self.failed_digest_permille).then(|| self.shadow.state_digest());
        let mut amounts = self.before(&tx.call);
        let result = self.shadow.execute(&ctx, &tx.call);
        let ledger_events: Vec<&Event> = outcome.events.iter().map(|r| &r.event).collect();
        let status = match &result {
            Ok(events) => {
                ensure!(
                    self.checks,
                    outcome.status == TxStatus::Success,
                    "tx {digest}: ledger {:?}, shadow success",
                    outcome.status
                );
                ensure!(
                    self.checks,
                    events.iter().eq(ledger_events.iter().copied()),
                    "tx {digest}: events differ from the shadow's"
                );
                Ok(())
            }
            Err(error) => {
                ensure!(
                    self.checks,
                    outcome.status == TxStatus::Failure(*error),
                    "tx {digest}: ledger {:?}, shadow {error}",
                    outcome.status
                );
                ensure!(self.checks, outcome.events.is_empty(), "failed tx {digest} left events");
                ensure!(
                    self.checks,
                    *error != ContractError::EInternalPanic,
                    "the contract panicked on {:?}",
                    tx.call
                );
                ensure!(
                    self.checks,
                    self.shadow.audit() == self.shadow_audit,
                    "failed tx {digest} moved money"
                );
                if let Some(before) = before {
                    ensure!(
                        self.checks,
                        self.shadow.state_digest() == before,
                        "failed tx {digest} changed the state"
                    );
                }
                Err(*error)
            }
        };
        for (seq, record) in (0u64..).zip(&outcome.events) {
            ensure!(
                self.checks,
                record.id.tx_digest == digest
                    && record.id.event_seq == seq
                    && record.height == header.height
                    && record.tx_index == index as u64
                    && record.sender == tx.sender
                    && record.timestamp_ms == header.timestamp_ms,
                "tx {digest}: event record {seq} misplaced"
            );
        }
        ensure!(
            self.checks,
            planned.expect.admits(status),
            "{:?} gave {status:?}, expected {:?}",
            tx.call,
            planned.expect
        );
        let audit = self.shadow.audit();
        ensure!(self.checks, audit.holds(), "supply not conserved after {:?}: {audit:?}", tx.call);
        self.shadow_audit = audit;
        if let Ok(events) = &result {
            self.count_honest_attestation(&tx.call, tx.sender, header.epoch, &amounts);
            for event in events {
                self.observe(event, &tx.call, tx.sender)?;
                self.check_amounts(event, &mut amounts)?;
                report.events.entry(event.name()).and_modify(|n| *n += 1).or_insert(1);
            }
        }
        *self.nonces.entry(tx.sender).or_default() += 1;
        report.count_transaction(call_kind(&tx.call), status.err().map_or(OK, ContractError::name));
        Ok(tx.sender)
    }

    /// Checks one event against the shadow at the moment it was emitted.
    fn observe(&mut self, event: &Event, call: &Call, sender: Address) -> Result<(), String> {
        match event {
            Event::NodeRegisteredEvent(e) => self.fresh(0, e.node_small_id.0, "node"),
            Event::TaskRegisteredEvent(e) => self.fresh(1, e.task_small_id.0, "task"),
            Event::StackCreatedEvent(e) => {
                self.fresh(2, e.small_id.0, "stack")?;
                self.eligible(e.selected_node, "selected")?;
                let offer = self.shadow.subscription(e.task_small_id, e.selected_node);
                ensure!(
                    self.checks,
                    offer.is_some_and(|o| o.price_per_compute_unit == e.price),
                    "stack {} not at its node's price",
                    e.small_id
                );
                ensure!(self.checks, e.owner == sender, "stack {} owned by someone else", e.small_id);
                if let Call::AcquireNewStack { task, num_compute_units, max_price_per_compute_unit } = call {
                    ensure!(
                        self.checks,
                        e.task_small_id == *task
                            && e.num_compute_units == *num_compute_units
                            && e.price <= *max_price_per_compute_unit,
                        "stack {} does not match its purchase",
                        e.small_id
                    );
                }
                Ok(())
            }
            Event::StackTrySettleEvent(e) => {
                let attesters = &e.requested_attestation_nodes;
                let distinct: BTreeSet<_> = attesters.iter().collect();
                ensure!(
                    self.checks,
                    distinct.len() == attesters.len(),
                    "stack {}: attesters repeat",
                    e.stack_small_id
                );
                ensure!(
                    self.checks,
                    !attesters.contains(&e.selected_node_id),
                    "stack {}: the selected node attests",
                    e.stack_small_id
                );
                for attester in attesters {
                    self.eligible(*attester, "attester")?;
                }
                Ok(())
            }
            Event::NodeEndpointSetEvent(e) => {
                let node = self.shadow.node(e.node_small_id);
                let owner = node.and_then(|n| self.shadow.badge(n.badge_id)).map(|b| b.owner);
                ensure!(
                    self.checks,
                    node.is_some_and(|n| !n.is_disabled())
                        && owner == Some(sender)
                        && self.shadow.node_endpoint(e.node_small_id) == Some(e.url.as_str()),
                    "node {}: endpoint set by someone else, on a disabled node, or not kept",
                    e.node_small_id
                );
                Ok(())
            }
            Event::NodeDestroyedEvent(e) => {
                ensure!(
                    self.checks,
                    self.shadow.node_endpoint(e.node_small_id).is_none(),
                    "destroyed node {} kept its endpoint",
                    e.node_small_id
                );
                Ok(())
            }
            Event::StackSettlementTicketClaimedEvent(e) => self.paid(e.stack_small_id),
            Event::StackExpiredEvent(e) => self.paid(e.stack_small_id),
            Event::StackDisputeExpiredEvent(e) => self.paid(e.stack_small_id),
            Event::StackDisputeResolvedEvent(e) if !e.selected_node_was_right => self.paid(e.stack_small_id),
            _ => Ok(()),
        }
    }

    /// The part of the shadow a transaction's amounts are checked against.
    fn before(&self, call: &Call) -> Before {
        let named: Vec<StackSmallId> = match call {
            Call::ClaimFunds { stacks, .. } => stacks.clone(),
            Call::ReclaimExpiredStack { stack }
            | Call::ExpireDispute { stack }
            | Call::ResolveStackDispute { stack, .. }
            | Call::SubmitStackSettlementAttestation { stack, .. }
            | Call::StartAttestationDispute { stack, .. } => vec![*stack],
            _ => Vec::new(),
        };
        let config = self.shadow.config();
        Before {
            stacks: named
                .into_iter()
                .filter_map(|id| self.shadow.stack(id).map(|s| (id, s.clone())))
                .collect(),
            nodes: self.shadow.nodes().map(|n| (n.small_id, (n.collateral, n.reputation))).collect(),
            timeout_permille: config.permille_to_slash_node_on_timeout,
            oracle_permille: config.permille_for_oracle_on_dispute,
        }
    }

    /// Refunds and slashes as SPEC §7 and §9 compute them, from the state before the call.
    fn check_amounts(&mut self, event: &Event, before: &mut Before) -> Result<(), String> {
        let escrow_of = |id: StackSmallId| before.stacks.get(&id).map(|s| s.escrow);
        match event {
            Event::StackSettlementTicketClaimedEvent(e) => {
                let id = e.stack_small_id;
                let Some(stack) = before.stacks.get(&id) else {
                    return Err(format!("claimed stack {id} was not open"));
                };
                let settled = stack.ticket.as_ref().map(|t| t.settled_units);
                ensure!(
                    self.checks,
                    settled == Some(e.num_claimed_compute_units),
                    "stack {id}: paid for other units"
                );
                if let Some((seed, _)) = &self.honesty
                    && self.honest_operator(e.selected_node_id)
                {
                    let used = StackTruth::of(*seed, stack).used_units;
                    ensure!(
                        self.checks,
                        e.num_claimed_compute_units == used,
                        "honest node {} paid for {} units of stack {id}, it served {used}",
                        e.selected_node_id,
                        e.num_claimed_compute_units
                    );
                }
                let record = self.shadow.closed_stack(id).copied();
                ensure!(
                    self.checks,
                    record.is_some_and(|r| r.refund == e.user_refund_amount
                        && r.paid_units == e.num_claimed_compute_units
                        && r.escrow == stack.escrow
                        && r.paid_to_node + r.paid_to_attesters + r.surcharge + r.refund == r.escrow),
                    "stack {id}: the closed record {record:?} does not match the claim {e:?}"
                );
                let paid = spec_payout(stack, e.num_claimed_compute_units, e.attestation_nodes.len());
                let refund = u128::from(stack.escrow).checked_sub(paid);
                ensure!(
                    self.checks,
                    refund == Some(u128::from(e.user_refund_amount)),
                    "stack {id}: refund {} but escrow {} less payouts {paid}",
                    e.user_refund_amount,
                    stack.escrow
                );
            }
            Event::StackExpiredEvent(e) => {
                let id = e.stack_small_id;
                ensure!(self.checks, escrow_of(id) == Some(e.refund_amount), "stack {id}: expiry refund");
            }
            Event::StackDisputeExpiredEvent(e) => {
                let id = e.stack_small_id;
                ensure!(
                    self.checks,
                    escrow_of(id) == Some(e.refund_amount),
                    "stack {id}: dispute expiry refund"
                );
            }
            Event::StackDisputeResolvedEvent(e) => {
                let id = e.stack_small_id;
                let refund = if e.selected_node_was_right { Some(0) } else { escrow_of(id) };
                ensure!(self.checks, refund == Some(e.user_refund_amount), "stack {id}: resolution refund");
                let oracle = u128::from(e.slashed_amount) * u128::from(before.oracle_permille) / 1000;
                let honest = u128::from(e.honest_reward_each) * e.honest_nodes.len() as u128;
                ensure!(
                    self.checks,
                    u128::from(e.oracle_reward) == oracle && oracle + honest <= u128::from(e.slashed_amount),
                    "stack {id}: the slash of {} is not divided as SPEC §9.2 says",
                    e.slashed_amount
                );
            }
            Event::NodeSlashedEvent(e) => {
                let node = e.node_small_id;
                let Some((collateral, reputation)) = before.nodes.get(&node).copied() else {
                    return Err(format!("slashed node {node} did not exist"));
                };
                if e.reason == "timeout" && self.operator_role(node) == Some(Role::HonestNode) {
                    self.check_honest_timeout(node, before)?;
                }
                let after = if e.reason == "timeout" {
                    let amount =
                        (u128::from(collateral) * u128::from(before.timeout_permille)).div_ceil(1000);
                    let amount = u64::try_from(amount).unwrap_or(u64::MAX).min(collateral);
                    let expected = (collateral - amount, reputation.saturating_sub(10));
                    ensure!(
                        self.checks,
                        e.amount == amount && (e.remaining_collateral, e.reputation) == expected,
                        "node {node}: timeout slash {e:?} from {collateral}, expected {amount}"
                    );
                    expected
                } else {
                    ensure!(
                        self.checks,
                        !self.honest_operator(node),
                        "honest node {node} lost a dispute: {e:?}"
                    );
                    ensure!(
                        self.checks,
                        e.reason == "dispute"
                            && e.amount >= collateral
                            && e.remaining_collateral == 0
                            && e.reputation == 0,
                        "node {node}: dispute slash {e:?} from {collateral}"
                    );
                    (0, 0)
                };
                before.nodes.insert(node, after);
            }
            _ => {}
        }
        Ok(())
    }

    /// Small ids count up and are never reused.
    fn fresh(&mut self, kind: usize, id: u64, what: &str) -> Result<(), String> {
        ensure!(
            self.checks,
            id > self.last_ids[kind],
            "{what} id {id} after {} was issued",
            self.last_ids[kind]
        );
        self.last_ids[kind] = id;
        Ok(())
    }

    /// A sampled node is enabled and has collateral.
    fn eligible(&mut self, node: NodeSmallId, role: &str) -> Result<(), String> {
        let n = self.shadow.node(node);
        ensure!(
            self.checks,
            n.is_some_and(|n| !n.is_disabled() && n.collateral > 0),
            "{role} node {node} is missing, disabled or without collateral"
        );
        Ok(())
    }

    /// A stack is paid out at most once, and is closed once paid.
    fn paid(&mut self, stack: StackSmallId) -> Result<(), String> {
        ensure!(self.checks, self.paid.insert(stack), "stack {stack} paid out twice");
        ensure!(
            self.checks,
            self.shadow.stack(stack).is_none() && self.shadow.stack_closure(stack).is_some(),
            "paid stack {stack} is still open"
        );
        Ok(())
    }

    /// The epoch follows the ledger's rule: up by one when forced or when time passed its end.
    fn check_epoch(&mut self, ledger: &Ledger, b: &AppliedBlock<'_>) -> Result<(), String> {
        let header = &b.block.header;
        let before = b.tip_before;
        let due = header.timestamp_ms >= before.epoch_start_ms + self.epoch_duration_ms;
        let expected = if b.forced_epoch || due { before.epoch + 1 } else { before.epoch };
        ensure!(
            self.checks,
            header.epoch == expected,
            "block {} in epoch {}, expected {expected}",
            header.height,
            header.epoch
        );
        let tip = ledger.tip();
        let start = if header.epoch == before.epoch { before.epoch_start_ms } else { header.timestamp_ms };
        ensure!(
            self.checks,
            tip.height == header.height
                && tip.digest == b.block.digest()
                && tip.timestamp_ms == header.timestamp_ms
                && tip.epoch == header.epoch
                && tip.epoch_start_ms == start,
            "the tip {tip:?} is not block {}",
            header.height
        );
        Ok(())
    }

    /// Invariants of the whole state after a block.
    fn check_state(&mut self, db: &AtomaDb) -> Result<(), String> {
        let audit = db.audit();
        ensure!(self.checks, audit.holds(), "supply not conserved: {audit:?}");
        let mut open_work: BTreeMap<NodeSmallId, u64> = BTreeMap::new();
        for stack in db.stacks() {
            self.check_stack(stack)?;
            *open_work.entry(stack.selected_node).or_default() += 1;
            for attester in stack.ticket.iter().flat_map(|t| &t.requested_attestation_nodes) {
                *open_work.entry(*attester).or_default() += 1;
            }
        }
        for node in db.nodes() {
            let expected = open_work.get(&node.small_id).copied().unwrap_or(0);
            ensure!(
                self.checks,
                node.open_work == expected,
                "node {} open work {} but {expected}",
                node.small_id,
                node.open_work
            );
        }
        for task in db.tasks_from(TaskSmallId(0)) {
            let indexed = db.indexed_candidates(task.small_id, None);
            let mut expected: Vec<NodeSmallId> = db
                .subscribers(task.small_id)
                .filter(|(node, _)| db.node(*node).is_some_and(|n| statically_eligible(n, task)))
                .map(|(node, _)| node)
                .collect();
            expected.sort();
            ensure!(
                self.checks,
                indexed == expected,
                "task {}: sampling index {indexed:?}, eligible {expected:?}",
                task.small_id
            );
            for node in &indexed {
                let n = db.node(*node);
                ensure!(
                    self.checks,
                    n.is_some_and(|n| !n.is_disabled() && n.collateral > 0),
                    "task {}: node {node} samplable",
                    task.small_id
                );
            }
        }
        Ok(())
    }

    /// An open stack: not paid, its escrow exactly what its terms charge, and enough for any
    /// settlement its ticket can still pay.
    fn check_stack(&mut self, stack: &Stack) -> Result<(), String> {
        let id = stack.small_id;
        ensure!(self.checks, !self.paid.contains(&id), "stack {id} is open after it was paid out");
        let escrow = spec_escrow(
            stack.security_level,
            stack.price_per_compute_unit,
            stack.num_compute_units,
            &stack.terms,
        );
        ensure!(
            self.checks,
            escrow == u128::from(stack.escrow),
            "stack {id}: escrow {} but the terms charge {escrow}",
            stack.escrow
        );
        let Some(ticket) = &stack.ticket else { return Ok(()) };
        let attesters = &ticket.requested_attestation_nodes;
        let distinct: BTreeSet<_> = attesters.iter().collect();
        ensure!(
            self.checks,
            distinct.len() == attesters.len() && !distinct.contains(&stack.selected_node),
            "stack {id}: attesters"
        );
        ensure!(self.checks, ticket.attestations.len() == attesters.len(), "stack {id}: attestation slots");
        ensure!(
            self.checks,
            ticket.settled_units <= stack.num_compute_units,
            "stack {id}: settles more units than bought"
        );
        let payout = spec_payout(stack, ticket.settled_units, attesters.len());
        ensure!(
            self.checks,
            payout <= u128::from(stack.escrow),
            "stack {id}: pays {payout} from escrow {}",
            stack.escrow
        );
        Ok(())
    }

    /// The shadow and the ledger hold the same contract state.
    fn check_shadow(&mut self, ledger: &Ledger) -> Result<(), String> {
        let ledger_digest = ledger.with_state(AtomaDb::state_digest);
        ensure!(
            self.checks,
            ledger_digest == self.shadow_digest(),
            "the ledger's contract state differs from the shadow's"
        );
        Ok(())
    }

    /// After a restart: the ledger recovered exactly the last committed block and state, which
    /// a replay from genesis confirms, and every nonce.
    ///
    /// # Errors
    /// The first difference.
    pub fn check_recovered(&mut self, ledger: &Ledger, tip: Tip, digest: Digest) -> Result<(), String> {
        ensure!(self.checks, ledger.tip() == tip, "recovered to {:?}, committed {tip:?}", ledger.tip());
        ensure!(self.checks, ledger.state_digest() == digest, "recovered a different state");
        self.check_replay(ledger)?;
        for (address, expected) in &self.nonces {
            let (next, stored) =
                (ledger.next_nonce(address), ledger.stored_nonce(address).map_err(|e| e.to_string())?);
            ensure!(
                self.checks,
                next == *expected && stored == *expected,
                "{address}: nonce {next}/{stored} after restart"
            );
        }
        Ok(())
    }

    /// The state digest equals a replay from genesis, and the shadow agrees.
    ///
    /// # Errors
    /// When they differ or the replay fails.
    pub fn check_replay(&mut self, ledger: &Ledger) -> Result<(), String> {
        let replayed = ledger.replay_from_genesis().map_err(|e| format!("replay from genesis: {e}"))?;
        let digest = ledger.state_digest();
        ensure!(
            self.checks,
            replayed == digest,
            "replay from genesis gives {replayed}, the ledger holds {digest}"
        );
        self.check_shadow(ledger)
    }
}

/// SPEC §7.1's escrow, computed here from the formula rather than with the contract's `money`
/// module: `base(N)`, plus for sampling consensus `⌈base·S/1000⌉ + k·⌈base·X/1000⌉`.
fn spec_escrow(level: SecurityLevel, price: u64, units: u64, terms: &StackTerms) -> u128 {
    let base = u128::from(price) * u128::from(units);
    if level != SecurityLevel::SamplingConsensus {
        return base;
    }
    let surcharge = (base * u128::from(terms.sampling_consensus_charge_permille)).div_ceil(1000);
    let per_attester = (base * u128::from(terms.cross_validation_extra_nodes_charge_permille)).div_ceil(1000);
    base + surcharge + u128::from(terms.cross_validation_extra_nodes_count) * per_attester
}

/// SPEC §7.2's payouts for `units` with `attesters` paid attesters: `base(c)` to the node, and for
/// sampling consensus `⌈base·S/1000⌉` to the treasury and `⌊base·X/1000⌋` to each attester.
fn spec_payout(stack: &Stack, units: u64, attesters: usize) -> u128 {
    let base = u128::from(stack.price_per_compute_unit) * u128::from(units);
    if stack.security_level != SecurityLevel::SamplingConsensus {
        return base;
    }
    let terms = &stack.terms;
    let surcharge = (base * u128::from(terms.sampling_consensus_charge_permille)).div_ceil(1000);
    let per_attester = base * u128::from(terms.cross_validation_extra_nodes_charge_permille) / 1000;
    base + surcharge + per_attester * attesters as u128
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::money;

    fn terms(rng: &mut SimRng) -> StackTerms {
        StackTerms {
            sampling_consensus_charge_permille: rng.range(0, 1000),
            cross_validation_extra_nodes_charge_permille: rng.range(0, 1000),
            cross_validation_extra_nodes_count: rng.range(1, 16),
            cross_validation_probability_permille: 0,
            stack_dispute_settlement_delay_epochs: 1,
            stack_expiration_epochs: 1,
            dispute_resolution_deadline_epochs: 1,
            settlement_timeout_ms: 1,
        }
    }

    #[test]
    fn the_spec_formulas_agree_with_the_contracts_money_module() {
        let mut rng = SimRng::new(3);
        for _ in 0..2000 {
            let terms = terms(&mut rng);
            let (price, units) = (rng.range(1, 1 << 20), rng.range(1, 1 << 20));
            for level in SecurityLevel::ALL {
                let escrow = money::escrow(*level, price, units, &terms).unwrap();
                assert_eq!(spec_escrow(*level, price, units, &terms), u128::from(escrow));
                let claimed = rng.range(0, units);
                let shares = money::shares(*level, price, claimed, &terms).unwrap();
                let stack = Stack {
                    id: atoma_contract::ObjectId([0; 32]),
                    small_id: StackSmallId(1),
                    badge_id: atoma_contract::ObjectId([1; 32]),
                    task_small_id: TaskSmallId(1),
                    selected_node: NodeSmallId(1),
                    num_compute_units: units,
                    price_per_compute_unit: price,
                    security_level: *level,
                    escrow,
                    terms,
                    created_epoch: 0,
                    created_ms: 0,
                    ticket: None,
                };
                let k = usize::try_from(terms.cross_validation_extra_nodes_count).unwrap();
                let paid = u128::from(shares.node)
                    + u128::from(shares.surcharge)
                    + u128::from(shares.per_attester) * k as u128;
                assert_eq!(spec_payout(&stack, claimed, k), paid);
                assert!(paid <= u128::from(escrow));
            }
        }
    }
}
