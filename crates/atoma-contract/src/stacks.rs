//! Stacks (SPEC §5.3): buying compute units, reclaiming expired stacks, and closing stacks.

use crate::enums::SecurityLevel;
use crate::error::ContractError;
use crate::event::{StackCreatedEvent, StackExpiredEvent};
use crate::exec::Tx;
use crate::ids::{EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use crate::money;
use crate::sampling::Want;
use crate::state::{AtomaDb, BadgeKind, ClosedStack, Split, Stack, StackClosure, StackTerms, Task};

impl AtomaDb {
    pub(crate) fn acquire_new_stack(
        &mut self,
        tx: &mut Tx<'_>,
        task_id: TaskSmallId,
        units: u64,
        max_price: u64,
    ) -> Result<(), ContractError> {
        let task = self.tasks.get(&task_id).cloned().ok_or(ContractError::ETaskNotFound)?;
        if task.deprecated_at_epoch.is_some() {
            return Err(ContractError::ETaskDeprecated);
        }
        if let Some(name) = &task.model_name
            && !self.models.get(name).is_some_and(|m| m.enabled)
        {
            return Err(ContractError::EModelDisabled);
        }
        if units == 0 {
            return Err(ContractError::EInvalidComputeUnits);
        }
        if max_price == 0 {
            return Err(ContractError::EInvalidPricePerComputeUnit);
        }
        if task.num_subscribers == 0 {
            return Err(ContractError::ENoNodesSubscribedToTask);
        }
        let want = Want { units, price_cap: Some(max_price), exclude: &[] };
        let node =
            self.sample_eligible(&mut tx.rng, &task, &want).ok_or(ContractError::ENoNodesEligibleForTask)?;
        let price = self
            .subscriptions
            .get(&(task_id, node))
            .map(|s| s.price_per_compute_unit)
            .ok_or(ContractError::ENoNodesEligibleForTask)?;
        let terms = self.stack_terms(&task, node);
        let escrow = money::escrow(task.security_level, price, units, &terms)?;
        self.debit(tx.sender(), escrow)?;
        let small_id = StackSmallId(self.globals.get().next_stack_small_id);
        self.globals.get_mut().next_stack_small_id += 1;
        let id = tx.new_object_id();
        let badge_id = self.mint_badge(tx, tx.sender(), BadgeKind::Stack(small_id));
        let stack = Stack {
            id,
            small_id,
            badge_id,
            task_small_id: task_id,
            selected_node: node,
            num_compute_units: units,
            price_per_compute_unit: price,
            security_level: task.security_level,
            escrow,
            terms,
            created_epoch: tx.epoch(),
            created_ms: tx.ctx.timestamp_ms,
            ticket: None,
        };
        self.stacks.insert(small_id, stack);
        self.task_mut(task_id)?.open_stacks += 1;
        self.adjust_open_work(node, true)?;
        tx.emit(StackCreatedEvent {
            stack_id: id,
            small_id,
            selected_node: node,
            num_compute_units: units,
            price,
            owner: tx.sender(),
            task_small_id: task_id,
        });
        Ok(())
    }

    /// The terms a stack bought now would keep for its whole life.
    fn stack_terms(&self, task: &Task, node: NodeSmallId) -> StackTerms {
        let c = &self.globals.get().config;
        StackTerms {
            sampling_consensus_charge_permille: c.sampling_consensus_charge_permille,
            cross_validation_extra_nodes_charge_permille: c.cross_validation_extra_nodes_charge_permille,
            cross_validation_extra_nodes_count: c.cross_validation_extra_nodes_count,
            cross_validation_probability_permille: c.cross_validation_probability_permille,
            stack_dispute_settlement_delay_epochs: c.stack_dispute_settlement_delay_epochs,
            stack_expiration_epochs: c.stack_expiration_epochs,
            dispute_resolution_deadline_epochs: c.dispute_resolution_deadline_epochs,
            settlement_timeout_ms: self.echelon_timeout(task, node).unwrap_or(c.settlement_timeout_ms),
        }
    }

    /// The settlement timeout of the lowest echelon in which `node` serves the task's model.
    fn echelon_timeout(&self, task: &Task, node: NodeSmallId) -> Option<u64> {
        let name = task.model_name.clone()?;
        let model = self.models.get(&name)?;
        let ((_, _, echelon), _) = self
            .node_models
            .range((node, name.clone(), EchelonId(0))..=(node, name, EchelonId(u64::MAX)))
            .next()?;
        model.echelons.get(echelon).map(|e| e.settlement_timeout_ms)
    }

    pub(crate) fn reclaim_expired_stack(
        &mut self,
        tx: &mut Tx<'_>,
        id: StackSmallId,
    ) -> Result<(), ContractError> {
        let stack = self.owned_stack(tx, id)?;
        let expires_at = stack.created_epoch.saturating_add(stack.terms.stack_expiration_epochs);
        if stack.ticket.is_some() || tx.epoch() < expires_at {
            return Err(ContractError::EStackNotExpired);
        }
        let split = Split { refund: stack.escrow, ..Split::default() };
        self.close_stack(tx, &stack, StackClosure::Reclaimed, split)?;
        self.credit(tx.sender(), stack.escrow)?;
        tx.emit(StackExpiredEvent {
            stack_small_id: id,
            selected_node_id: stack.selected_node,
            refund_amount: stack.escrow,
        });
        self.slash_on_timeout(tx, stack.selected_node)?;
        Ok(())
    }

    /// Closes a stack: removes it and its badge, keeps its [`ClosedStack`] record, and releases
    /// the task and every node it named. The caller moves the escrow as `split` says, to the
    /// owner the record names (read before the badge is burnt).
    pub(crate) fn close_stack(
        &mut self,
        tx: &Tx<'_>,
        stack: &Stack,
        closure: StackClosure,
        split: Split,
    ) -> Result<(), ContractError> {
        let record = ClosedStack {
            closure,
            owner: self.stack_owner(stack)?,
            task_small_id: stack.task_small_id,
            selected_node: stack.selected_node,
            num_compute_units: stack.num_compute_units,
            price_per_compute_unit: stack.price_per_compute_unit,
            escrow: stack.escrow,
            claimed_units: stack.ticket.as_ref().map(|t| t.num_claimed_compute_units),
            paid_units: split.paid_units,
            paid_to_node: split.node,
            paid_to_attesters: split.attesters,
            surcharge: split.surcharge,
            refund: split.refund,
            closed_epoch: tx.epoch(),
        };
        let total = [split.node, split.attesters, split.surcharge, split.refund]
            .iter()
            .try_fold(0u64, |sum, part| sum.checked_add(*part))
            .ok_or(ContractError::EArithmeticOverflow)?;
        if total != stack.escrow {
            return Err(ContractError::EInternalPanic);
        }
        self.stacks.remove(&stack.small_id);
        self.closed_stacks.insert(stack.small_id, record);
        self.burn_badge(stack.badge_id);
        let task = self.task_mut(stack.task_small_id)?;
        task.open_stacks = task.open_stacks.checked_sub(1).ok_or(ContractError::EInternalPanic)?;
        self.adjust_open_work(stack.selected_node, false)?;
        if let Some(ticket) = &stack.ticket {
            for attester in &ticket.requested_attestation_nodes {
                self.adjust_open_work(*attester, false)?;
            }
        }
        Ok(())
    }

    /// Whether stacks of this level can have attesters.
    pub(crate) fn uses_sampling_consensus(stack: &Stack) -> bool {
        stack.security_level == SecurityLevel::SamplingConsensus
    }
}
