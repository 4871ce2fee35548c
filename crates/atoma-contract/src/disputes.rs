//! Disputes (SPEC §5.4, §9.2): contested units, oracle resolution and expiry.

use crate::error::ContractError;
use crate::event::{
    StackDisputeExpiredEvent, StackDisputeResolvedEvent, StackSettlementTicketEvent, StackUnitsContestedEvent,
};
use crate::exec::Tx;
use crate::ids::{NodeSmallId, StackSmallId};
use crate::money;
use crate::settlement::{bytes32, window_open};
use crate::state::{AtomaDb, SettlementTicket, Split, Stack, StackClosure, TicketStatus};

/// Who was right and what the slash paid, for the resolution event.
struct Verdict {
    slashed_nodes: Vec<NodeSmallId>,
    slashed_amount: u64,
    honest_nodes: Vec<NodeSmallId>,
    split: money::DisputeSplit,
}

impl AtomaDb {
    /// Whether `node` is an oracle of any echelon of `model`.
    pub(crate) fn is_oracle(&self, model: Option<&String>, node: NodeSmallId) -> bool {
        model
            .and_then(|name| self.models.get(name))
            .is_some_and(|m| m.echelons.values().any(|e| e.oracles.contains(&node)))
    }

    /// Whether `model` has at least one oracle.
    fn has_oracle(&self, model: Option<&String>) -> bool {
        model
            .and_then(|name| self.models.get(name))
            .is_some_and(|m| m.echelons.values().any(|e| !e.oracles.is_empty()))
    }

    pub(crate) fn contest_claimed_units(
        &mut self,
        tx: &mut Tx<'_>,
        stack_id: StackSmallId,
        counted: u64,
    ) -> Result<(), ContractError> {
        let stack = self.owned_stack(tx, stack_id)?;
        let ticket = stack.ticket.clone().ok_or(ContractError::ENoSettlementTicket)?;
        if matches!(ticket.status, TicketStatus::InDispute { .. }) {
            return Err(ContractError::EStackAlreadyInDispute);
        }
        if !window_open(&stack, &ticket, tx) {
            return Err(ContractError::EStackDisputePeriodOver);
        }
        if counted > stack.num_compute_units {
            return Err(ContractError::ETooManyComputedUnits);
        }
        if counted == ticket.num_claimed_compute_units {
            return Err(ContractError::EUnitsNotContested);
        }
        let task = self.tasks.get(&stack.task_small_id).ok_or(ContractError::ETaskNotFound)?;
        if !self.has_oracle(task.model_name.as_ref()) {
            return Err(ContractError::ENoOracleForTask);
        }
        let stored = self.stacks.get_mut(&stack_id).and_then(|s| s.ticket.as_mut());
        let stored = stored.ok_or(ContractError::ENoSettlementTicket)?;
        stored.contested_units = Some(counted);
        stored.status = TicketStatus::InDispute { since_epoch: tx.epoch() };
        tx.emit(StackUnitsContestedEvent {
            stack_small_id: stack_id,
            claimed_units: ticket.num_claimed_compute_units,
            counted_units: counted,
        });
        Ok(())
    }

    pub(crate) fn resolve_stack_dispute(
        &mut self,
        tx: &mut Tx<'_>,
        oracle: NodeSmallId,
        stack_id: StackSmallId,
        correct_proof: &[u8],
        correct_units: u64,
    ) -> Result<(), ContractError> {
        self.owned_node(tx, oracle)?;
        let stack = self.open_stack(stack_id)?;
        let ticket = stack.ticket.clone().ok_or(ContractError::ENoSettlementTicket)?;
        if !matches!(ticket.status, TicketStatus::InDispute { .. }) {
            return Err(ContractError::EStackNotInSettlementDispute);
        }
        let task = self.tasks.get(&stack.task_small_id).ok_or(ContractError::ETaskNotFound)?;
        if !self.is_oracle(task.model_name.as_ref(), oracle) {
            return Err(ContractError::ENotAnOracle);
        }
        if stack.selected_node == oracle || ticket.requested_attestation_nodes.contains(&oracle) {
            return Err(ContractError::EOracleIsDisputeParty);
        }
        let correct_proof = bytes32(correct_proof, ContractError::EInvalidCommittedStackProof)?;
        if correct_units > stack.num_compute_units {
            return Err(ContractError::ETooManyComputedUnits);
        }
        let node_right = ticket.committed_stack_proof == correct_proof;
        let verdict = self.judge(tx, &stack, &ticket, oracle, &correct_proof)?;
        let refund = if node_right {
            self.uphold_ticket(tx, &stack, ticket, correct_units, &verdict)?;
            0
        } else {
            self.overturn_ticket(tx, &stack, &ticket)?
        };
        tx.emit(StackDisputeResolvedEvent {
            stack_small_id: stack_id,
            oracle_node_id: oracle,
            correct_committed_stack_proof: correct_proof,
            correct_units,
            selected_node_was_right: node_right,
            slashed_nodes: verdict.slashed_nodes,
            slashed_amount: verdict.slashed_amount,
            oracle_reward: verdict.split.oracle,
            honest_nodes: verdict.honest_nodes,
            honest_reward_each: verdict.split.per_honest,
            user_refund_amount: refund,
        });
        Ok(())
    }

    /// Slashes every party whose proof differs from the oracle's and divides the slash among
    /// the oracle, the honest parties and the communal treasury (SPEC §9.2).
    fn judge(
        &mut self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        ticket: &SettlementTicket,
        oracle: NodeSmallId,
        correct: &[u8; 32],
    ) -> Result<Verdict, ContractError> {
        let mut parties = vec![(stack.selected_node, Some(ticket.committed_stack_proof))];
        for (attester, attestation) in ticket.requested_attestation_nodes.iter().zip(&ticket.attestations) {
            parties.push((*attester, attestation.as_ref().map(|a| a.committed_stack_proof)));
        }
        let (mut slashed_nodes, mut honest_nodes, mut total) = (Vec::new(), Vec::new(), 0u64);
        for (node, proof) in parties {
            match proof {
                Some(p) if &p == correct => honest_nodes.push(node),
                Some(_) => {
                    let amount = self.slash_on_dispute(tx, node)?;
                    total = total.checked_add(amount).ok_or(ContractError::EArithmeticOverflow)?;
                    slashed_nodes.push(node);
                }
                None => {}
            }
        }
        let c = &self.globals.get().config;
        let honest = u64::try_from(honest_nodes.len()).map_err(|_| ContractError::EArithmeticOverflow)?;
        let split = money::split_dispute_slash(
            total,
            c.permille_for_oracle_on_dispute,
            c.permille_for_honest_nodes_on_dispute,
            honest,
        )?;
        self.credit_node_fees(tx, oracle, split.oracle)?;
        for node in &honest_nodes {
            self.credit_node_fees(tx, *node, split.per_honest)?;
        }
        self.add_to_communal(split.communal)?;
        Ok(Verdict { slashed_nodes, slashed_amount: total, honest_nodes, split })
    }

    /// The selected node was right: the ticket becomes claimable, at the oracle's count if the
    /// owner contested the units; a node that claimed more than that is slashed on timeout, and
    /// so is each attester that never attested, if its deadline has passed.
    fn uphold_ticket(
        &mut self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        mut ticket: Box<SettlementTicket>,
        correct_units: u64,
        verdict: &Verdict,
    ) -> Result<(), ContractError> {
        if ticket.contested_units.is_some() {
            ticket.settled_units = correct_units;
            let overclaimed = ticket.num_claimed_compute_units > correct_units;
            if overclaimed && !verdict.slashed_nodes.contains(&stack.selected_node) {
                self.slash_on_timeout(tx, stack.selected_node)?;
            }
        }
        self.slash_absent_attesters(tx, stack, &ticket)?;
        ticket.status = TicketStatus::Confirmed;
        ticket.dispute_settled_at_epoch = tx.epoch();
        tx.emit(StackSettlementTicketEvent {
            stack_small_id: stack.small_id,
            selected_node_id: stack.selected_node,
            num_claimed_compute_units: ticket.settled_units,
            requested_attestation_nodes: ticket.requested_attestation_nodes.clone(),
            dispute_settled_at_epoch: ticket.dispute_settled_at_epoch,
            committed_stack_proof: ticket.committed_stack_proof,
        });
        self.stacks.get_mut(&stack.small_id).ok_or(ContractError::EStackNotFound)?.ticket = Some(ticket);
        Ok(())
    }

    /// The selected node was wrong: attesters that never attested are slashed on timeout if
    /// their deadline has passed, and the owner gets the whole escrow back. Returns the refund.
    fn overturn_ticket(
        &mut self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        ticket: &SettlementTicket,
    ) -> Result<u64, ContractError> {
        self.slash_absent_attesters(tx, stack, ticket)?;
        let owner = self.stack_owner(stack)?;
        let split = Split { refund: stack.escrow, ..Split::default() };
        self.close_stack(tx, stack, StackClosure::RefundedAfterDispute, split)?;
        self.credit(owner, stack.escrow)?;
        Ok(stack.escrow)
    }

    /// An oracle decided the ticket: each requested attester that never attested is slashed on
    /// timeout if its deadline ([`SettlementTicket::window_floor_ms`]) has passed, and excused
    /// (neither paid nor slashed) if the oracle decided before it.
    fn slash_absent_attesters(
        &mut self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        ticket: &SettlementTicket,
    ) -> Result<(), ContractError> {
        if !ticket.attester_timed_out(&stack.terms, tx.timestamp_ms()) {
            return Ok(());
        }
        for (attester, attestation) in ticket.requested_attestation_nodes.iter().zip(&ticket.attestations) {
            if attestation.is_none() {
                self.slash_on_timeout(tx, *attester)?;
            }
        }
        Ok(())
    }

    pub(crate) fn expire_dispute(
        &mut self,
        tx: &mut Tx<'_>,
        stack_id: StackSmallId,
    ) -> Result<(), ContractError> {
        let stack = self.open_stack(stack_id)?;
        let ticket = stack.ticket.as_ref().ok_or(ContractError::ENoSettlementTicket)?;
        let TicketStatus::InDispute { since_epoch } = ticket.status else {
            return Err(ContractError::EStackNotInSettlementDispute);
        };
        if tx.epoch() < since_epoch.saturating_add(stack.terms.dispute_resolution_deadline_epochs) {
            return Err(ContractError::ENotEnoughEpochsPassed);
        }
        let owner = self.stack_owner(&stack)?;
        let split = Split { refund: stack.escrow, ..Split::default() };
        self.close_stack(tx, &stack, StackClosure::DisputeExpired, split)?;
        self.credit(owner, stack.escrow)?;
        tx.emit(StackDisputeExpiredEvent { stack_small_id: stack_id, refund_amount: stack.escrow });
        Ok(())
    }
}
