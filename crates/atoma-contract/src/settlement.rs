//! Settlement (SPEC §5.4, §6, §7.2): the selected node's ticket, attestations, and claims.
//!
//! A ticket's *window* ([`SettlementTicket::window_open`]) is open while the ticket is not
//! confirmed and either the epoch is before `dispute_settled_at_epoch` or the block is before
//! the ticket's timestamp plus the stack's settlement timeout; attestations, attester disputes
//! and unit contests happen inside it, and claims after it (or at once when the ticket is
//! `Confirmed`). An attester that never attested is slashed on timeout only once that time has
//! passed: at the claim of a pending ticket, or when an oracle decides the ticket after it.

use crate::commitment::committed_stack_proof;
use crate::enums::SecurityLevel;
use crate::error::ContractError;
use crate::event::{
    NewStackSettlementAttestationEvent, StackAttestationDisputeEvent, StackSettlementTicketClaimedEvent,
    StackSettlementTicketEvent, StackTrySettleEvent,
};
use crate::exec::Tx;
use crate::ids::{NodeSmallId, StackSmallId};
use crate::money;
use crate::sampling::{Want, uniform_below};
use crate::state::{AtomaDb, Attestation, SettlementTicket, Split, Stack, StackClosure, TicketStatus};
use crate::tee;

/// The most stacks one `claim_funds` call may name.
pub const MAX_STACKS_PER_CLAIM: usize = 256;

/// A 32-byte commitment from a call's byte vector, or `error`.
pub(crate) fn bytes32(bytes: &[u8], error: ContractError) -> Result<[u8; 32], ContractError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| error)
}

/// Whether the stack's ticket still accepts attestations, disputes and contests in this block.
pub(crate) fn window_open(stack: &Stack, ticket: &SettlementTicket, tx: &Tx<'_>) -> bool {
    ticket.window_open(&stack.terms, tx.epoch(), tx.timestamp_ms())
}

/// What `try_settle_stack` carries.
pub(crate) struct SettleRequest<'a> {
    pub node: NodeSmallId,
    pub stack: StackSmallId,
    pub units: u64,
    pub proof: &'a [u8],
    pub leaf: &'a [u8],
    pub tee_signature: Option<&'a [u8]>,
}

impl AtomaDb {
    pub(crate) fn try_settle_stack(
        &mut self,
        tx: &mut Tx<'_>,
        req: SettleRequest<'_>,
    ) -> Result<(), ContractError> {
        self.owned_node(tx, req.node)?;
        let stack = self.open_stack(req.stack)?;
        if stack.selected_node != req.node {
            return Err(ContractError::ENodeNotSelectedForStack);
        }
        if stack.ticket.is_some() {
            return Err(ContractError::EStackInSettlementDispute);
        }
        if req.units > stack.num_compute_units {
            return Err(ContractError::ETooManyComputedUnits);
        }
        let proof = bytes32(req.proof, ContractError::EInvalidCommittedStackProof)?;
        let leaf = bytes32(req.leaf, ContractError::EInvalidStackMerkleLeaf)?;
        let confirmed = match (stack.security_level, req.tee_signature) {
            (SecurityLevel::ConfidentialCompute, Some(signature)) => {
                self.check_tee_settlement(&stack, req.units, &proof, signature)?;
                true
            }
            (SecurityLevel::ConfidentialCompute, None) => return Err(ContractError::EInvalidTeeProof),
            (_, Some(_)) => return Err(ContractError::ETaskIsNotConfidentialCompute),
            (_, None) => false,
        };
        let attesters = self.draw_attesters(tx, &stack)?;
        for attester in &attesters {
            self.adjust_open_work(*attester, true)?;
        }
        let epoch = tx.epoch();
        let ticket = SettlementTicket {
            num_claimed_compute_units: req.units,
            committed_stack_proof: proof,
            stack_merkle_leaf: leaf,
            attestations: vec![None; attesters.len()],
            requested_attestation_nodes: attesters.clone(),
            created_epoch: epoch,
            created_ms: tx.ctx.timestamp_ms,
            dispute_settled_at_epoch: if confirmed {
                epoch
            } else {
                epoch.saturating_add(stack.terms.stack_dispute_settlement_delay_epochs)
            },
            status: if confirmed { TicketStatus::Confirmed } else { TicketStatus::Pending },
            contested_units: None,
            settled_units: req.units,
        };
        let settled_at = ticket.dispute_settled_at_epoch;
        self.stacks.get_mut(&req.stack).ok_or(ContractError::EStackNotFound)?.ticket = Some(Box::new(ticket));
        tx.emit(StackTrySettleEvent {
            stack_small_id: req.stack,
            selected_node_id: req.node,
            requested_attestation_nodes: attesters.clone(),
            committed_stack_proof: proof,
            stack_merkle_leaf: leaf,
            num_claimed_compute_units: req.units,
        });
        if confirmed {
            tx.emit(StackSettlementTicketEvent {
                stack_small_id: req.stack,
                selected_node_id: req.node,
                num_claimed_compute_units: req.units,
                requested_attestation_nodes: attesters,
                dispute_settled_at_epoch: settled_at,
                committed_stack_proof: proof,
            });
        }
        Ok(())
    }

    /// For sampling consensus, with the stack's probability, samples its `k` attesters (SPEC §6.2).
    fn draw_attesters(&self, tx: &mut Tx<'_>, stack: &Stack) -> Result<Vec<NodeSmallId>, ContractError> {
        if !Self::uses_sampling_consensus(stack) {
            return Ok(Vec::new());
        }
        if uniform_below(&mut tx.rng, 1000) >= stack.terms.cross_validation_probability_permille {
            return Ok(Vec::new());
        }
        let task = self.tasks.get(&stack.task_small_id).ok_or(ContractError::ETaskNotFound)?;
        let exclude = [stack.selected_node];
        let want = Want { units: stack.num_compute_units, price_cap: None, exclude: &exclude };
        let count = usize::try_from(stack.terms.cross_validation_extra_nodes_count)
            .map_err(|_| ContractError::EArithmeticOverflow)?;
        Ok(self.sample_unique(&mut tx.rng, task, &want, count))
    }

    /// Checks a confidential-compute settlement signature against the node's current key.
    fn check_tee_settlement(
        &self,
        stack: &Stack,
        units: u64,
        proof: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), ContractError> {
        let rotation = self.globals.get().key_rotation_counter;
        let key = self
            .nodes
            .get(&stack.selected_node)
            .and_then(|n| n.tee_key.clone())
            .filter(|k| k.key_rotation_counter == rotation)
            .ok_or(ContractError::EInvalidTeeProof)?;
        let message = tee::settlement_message(stack.small_id, units, proof);
        if tee::verify_signature(&key.public_key, &message, signature) {
            Ok(())
        } else {
            Err(ContractError::EInvalidTeeProof)
        }
    }

    /// The stack and the position of `node` among its requested attesters.
    fn attester_position(&self, stack: &Stack, node: NodeSmallId) -> Result<usize, ContractError> {
        let ticket = stack.ticket.as_ref().ok_or(ContractError::ENoSettlementTicket)?;
        ticket
            .requested_attestation_nodes
            .iter()
            .position(|n| *n == node)
            .ok_or(ContractError::ENodeNotSelectedForAttestation)
    }

    pub(crate) fn submit_stack_settlement_attestation(
        &mut self,
        tx: &mut Tx<'_>,
        node: NodeSmallId,
        stack_id: StackSmallId,
        proof: &[u8],
        leaf: &[u8],
    ) -> Result<(), ContractError> {
        self.owned_node(tx, node)?;
        let stack = self.open_stack(stack_id)?;
        if !Self::uses_sampling_consensus(&stack) {
            return Err(ContractError::EStackDoesNotRequireSamplingConsensus);
        }
        let position = self.attester_position(&stack, node)?;
        let mut ticket = stack.ticket.clone().ok_or(ContractError::ENoSettlementTicket)?;
        if ticket.attestations.get(position).is_some_and(Option::is_some) {
            return Err(ContractError::EAlreadyAttested);
        }
        if !window_open(&stack, &ticket, tx) {
            return Err(ContractError::EStackDisputePeriodOver);
        }
        let proof = bytes32(proof, ContractError::EInvalidCommittedStackProof)?;
        let leaf = bytes32(leaf, ContractError::EInvalidStackMerkleLeaf)?;
        if let Some(slot) = ticket.attestations.get_mut(position) {
            *slot = Some(Attestation { committed_stack_proof: proof, stack_merkle_leaf: Some(leaf) });
        }
        tx.emit(NewStackSettlementAttestationEvent {
            stack_small_id: stack_id,
            attestation_node_id: node,
            committed_stack_proof: proof,
            stack_merkle_leaf: leaf,
        });
        if proof != ticket.committed_stack_proof {
            self.open_attestation_dispute(tx, &stack, &mut ticket, node, proof);
        } else if ticket.status == TicketStatus::Pending && ticket.attestations.iter().all(Option::is_some) {
            self.finish_attestation(tx, &stack, &mut ticket, node);
        }
        self.stacks.get_mut(&stack_id).ok_or(ContractError::EStackNotFound)?.ticket = Some(ticket);
        Ok(())
    }

    /// Every attester agreed on the proof: check the leaves (SPEC §6.2) and settle or dispute.
    ///
    /// When fewer attesters were available than the stack's `k`, the leaves of the empty slots
    /// are unknown and the proof hash cannot be recomputed; agreement on the proof is the check.
    fn finish_attestation(
        &self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        ticket: &mut SettlementTicket,
        last: NodeSmallId,
    ) {
        let mut leaves = vec![ticket.stack_merkle_leaf];
        leaves.extend(ticket.attestations.iter().flatten().filter_map(|a| a.stack_merkle_leaf));
        let full = u64::try_from(ticket.requested_attestation_nodes.len()).ok()
            == Some(stack.terms.cross_validation_extra_nodes_count);
        let recomputed = committed_stack_proof(&leaves);
        if full && recomputed != ticket.committed_stack_proof {
            self.open_attestation_dispute(tx, stack, ticket, last, recomputed);
            return;
        }
        ticket.status = TicketStatus::Confirmed;
        ticket.dispute_settled_at_epoch = tx.epoch();
        tx.emit(StackSettlementTicketEvent {
            stack_small_id: stack.small_id,
            selected_node_id: stack.selected_node,
            num_claimed_compute_units: ticket.num_claimed_compute_units,
            requested_attestation_nodes: ticket.requested_attestation_nodes.clone(),
            dispute_settled_at_epoch: ticket.dispute_settled_at_epoch,
            committed_stack_proof: ticket.committed_stack_proof,
        });
    }

    /// Puts the ticket in dispute (if it is not already) and says who disagreed.
    fn open_attestation_dispute(
        &self,
        tx: &mut Tx<'_>,
        stack: &Stack,
        ticket: &mut SettlementTicket,
        attester: NodeSmallId,
        commitment: [u8; 32],
    ) {
        if !matches!(ticket.status, TicketStatus::InDispute { .. }) {
            ticket.status = TicketStatus::InDispute { since_epoch: tx.epoch() };
        }
        tx.emit(StackAttestationDisputeEvent {
            stack_small_id: stack.small_id,
            attestation_commitment: commitment,
            attestation_node_id: attester,
            original_node_id: stack.selected_node,
            original_commitment: ticket.committed_stack_proof,
        });
    }

    pub(crate) fn start_attestation_dispute(
        &mut self,
        tx: &mut Tx<'_>,
        node: NodeSmallId,
        stack_id: StackSmallId,
        commitment: &[u8],
    ) -> Result<(), ContractError> {
        self.owned_node(tx, node)?;
        let stack = self.open_stack(stack_id)?;
        if !Self::uses_sampling_consensus(&stack) {
            return Err(ContractError::ETaskSecurityLevelNotSamplingConsensus);
        }
        let position = self.attester_position(&stack, node)?;
        let mut ticket = stack.ticket.clone().ok_or(ContractError::ENoSettlementTicket)?;
        if matches!(ticket.status, TicketStatus::InDispute { .. }) {
            return Err(ContractError::EStackAlreadyInDispute);
        }
        if ticket.attestations.get(position).is_some_and(Option::is_some) {
            return Err(ContractError::EAlreadyAttested);
        }
        if !window_open(&stack, &ticket, tx) {
            return Err(ContractError::EStackDisputePeriodOver);
        }
        let commitment = bytes32(commitment, ContractError::EInvalidCommittedStackProof)?;
        if let Some(slot) = ticket.attestations.get_mut(position) {
            *slot = Some(Attestation { committed_stack_proof: commitment, stack_merkle_leaf: None });
        }
        self.open_attestation_dispute(tx, &stack, &mut ticket, node, commitment);
        self.stacks.get_mut(&stack_id).ok_or(ContractError::EStackNotFound)?.ticket = Some(ticket);
        Ok(())
    }

    pub(crate) fn claim_funds(
        &mut self,
        tx: &mut Tx<'_>,
        node: NodeSmallId,
        stacks: &[StackSmallId],
    ) -> Result<(), ContractError> {
        self.owned_node(tx, node)?;
        if stacks.is_empty() || stacks.len() > MAX_STACKS_PER_CLAIM {
            return Err(ContractError::ETooManyStacks);
        }
        for id in stacks {
            let stack = self.open_stack(*id)?;
            if stack.selected_node != node {
                return Err(ContractError::ENodeNotSelectedForSettlement);
            }
            let ticket = stack.ticket.as_ref().ok_or(ContractError::ENoSettlementTicket)?;
            if matches!(ticket.status, TicketStatus::InDispute { .. }) {
                return Err(ContractError::EStackInDispute);
            }
            if !ticket.claimable(&stack.terms, tx.epoch(), tx.timestamp_ms()) {
                return Err(ContractError::EStackDisputePeriodIsNotOver);
            }
            self.settle_claim(tx, &stack)?;
        }
        self.pay_out_unlocked_fees(tx, node)?;
        Ok(())
    }

    /// Pays a claimable stack out (SPEC §7.2) and closes it.
    fn settle_claim(&mut self, tx: &mut Tx<'_>, stack: &Stack) -> Result<(), ContractError> {
        let ticket = stack.ticket.as_ref().ok_or(ContractError::ENoSettlementTicket)?;
        let units = ticket.settled_units;
        let shares = money::shares(stack.security_level, stack.price_per_compute_unit, units, &stack.terms)?;
        let mut paid = u128::from(shares.node) + u128::from(shares.surcharge);
        self.credit_node_fees(tx, stack.selected_node, shares.node)?;
        let g = self.globals.get_mut();
        g.fee_treasury =
            g.fee_treasury.checked_add(shares.surcharge).ok_or(ContractError::EArithmeticOverflow)?;
        let mut rewarded = Vec::new();
        for (attester, attestation) in ticket.requested_attestation_nodes.iter().zip(&ticket.attestations) {
            match attestation {
                Some(a) if a.committed_stack_proof == ticket.committed_stack_proof => {
                    self.credit_node_fees(tx, *attester, shares.per_attester)?;
                    paid += u128::from(shares.per_attester);
                    rewarded.push(*attester);
                }
                // A wrong attester was already slashed when its dispute was resolved.
                Some(_) => {}
                // A pending ticket is claimable only once its window closed, past the floor in
                // time: the attester missed its deadline.
                None if ticket.status == TicketStatus::Pending => {
                    self.slash_on_timeout(tx, *attester)?;
                }
                // Confirmed by an oracle, who judged the absent attesters then.
                None => {}
            }
        }
        let refund = u128::from(stack.escrow).checked_sub(paid).ok_or(ContractError::EArithmeticOverflow)?;
        let refund = u64::try_from(refund).map_err(|_| ContractError::EArithmeticOverflow)?;
        let owner = self.stack_owner(stack)?;
        let attesters = u64::try_from(paid - u128::from(shares.node) - u128::from(shares.surcharge))
            .map_err(|_| ContractError::EArithmeticOverflow)?;
        let split =
            Split { paid_units: units, node: shares.node, attesters, surcharge: shares.surcharge, refund };
        self.close_stack(tx, stack, StackClosure::Claimed, split)?;
        self.credit(owner, refund)?;
        self.reward_reputation(tx, stack.selected_node)?;
        tx.emit(StackSettlementTicketClaimedEvent {
            stack_small_id: stack.small_id,
            selected_node_id: stack.selected_node,
            attestation_nodes: rewarded,
            num_claimed_compute_units: units,
            user_refund_amount: refund,
        });
        Ok(())
    }
}
