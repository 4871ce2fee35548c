//! Tasks (SPEC §5.2): creation, deprecation and removal.

use crate::enums::{Optimizations, SecurityLevel, TaskRole, reputation};
use crate::error::ContractError;
use crate::event::{TaskDeprecationEvent, TaskRegisteredEvent, TaskRemoveEvent};
use crate::exec::Tx;
use crate::ids::{NodeSmallId, TaskSmallId};
use crate::state::{AtomaDb, BadgeKind, Task};

/// What `create_task` is asked for, as raw wire values.
pub(crate) struct NewTask<'a> {
    pub role: u16,
    pub model_name: Option<&'a str>,
    pub security_level: u16,
    pub minimum_reputation_score: Option<u16>,
    pub required_optimizations: u8,
}

impl AtomaDb {
    pub(crate) fn create_task(&mut self, tx: &mut Tx<'_>, req: NewTask<'_>) -> Result<(), ContractError> {
        let role = TaskRole::from_wire(req.role).ok_or(ContractError::EInvalidTaskRole)?;
        let level =
            SecurityLevel::from_wire(req.security_level).ok_or(ContractError::EInvalidSecurityLevel)?;
        if req.minimum_reputation_score.is_some_and(|r| r > reputation::MAX) {
            return Err(ContractError::EInvalidMinimumReputationScore);
        }
        let required = Optimizations::from_bits(req.required_optimizations)
            .ok_or(ContractError::EInvalidOptimizations)?;
        if let Some(name) = req.model_name {
            let model = self.models.get(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
            if !model.enabled {
                return Err(ContractError::EModelDisabled);
            }
        } else if level == SecurityLevel::SamplingConsensus {
            return Err(ContractError::ESamplingConsensusRequiresModel);
        }
        let small_id = TaskSmallId(self.globals.get().next_task_small_id);
        self.globals.get_mut().next_task_small_id += 1;
        let id = tx.new_object_id();
        let badge_id = self.mint_badge(tx, tx.sender(), BadgeKind::Task(small_id));
        self.tasks.insert(
            small_id,
            Task {
                id,
                small_id,
                badge_id,
                role,
                model_name: req.model_name.map(str::to_string),
                security_level: level,
                minimum_reputation_score: req.minimum_reputation_score,
                required_optimizations: required,
                created_epoch: tx.epoch(),
                deprecated_at_epoch: None,
                num_subscribers: 0,
                open_stacks: 0,
            },
        );
        tx.emit(TaskRegisteredEvent { task_id: id, task_small_id: small_id });
        Ok(())
    }

    /// Deprecates a task; the caller has checked who may do it.
    pub(crate) fn deprecate_task(&mut self, tx: &mut Tx<'_>, id: TaskSmallId) -> Result<(), ContractError> {
        let epoch = tx.epoch();
        let task = self.task_mut(id)?;
        if task.deprecated_at_epoch.is_some() {
            return Err(ContractError::ETaskAlreadyDeprecated);
        }
        task.deprecated_at_epoch = Some(epoch);
        let task_id = task.id;
        tx.emit(TaskDeprecationEvent { task_id, task_small_id: id, epoch });
        Ok(())
    }

    /// Removes a deprecated task and its subscriptions; the caller has checked who may do it.
    pub(crate) fn remove_deprecated_task(
        &mut self,
        tx: &mut Tx<'_>,
        id: TaskSmallId,
    ) -> Result<(), ContractError> {
        let task = self.tasks.get(&id).cloned().ok_or(ContractError::ETaskNotFound)?;
        let deprecated_at = task.deprecated_at_epoch.ok_or(ContractError::ETaskNotDeprecated)?;
        let delay = self.globals.get().config.task_removal_delay_epochs;
        if tx.epoch() < deprecated_at.saturating_add(delay) {
            return Err(ContractError::ENotEnoughEpochsPassed);
        }
        if task.open_stacks > 0 {
            return Err(ContractError::ETaskHasOpenStacks);
        }
        let subscribers: Vec<NodeSmallId> = self
            .subscriptions
            .range((id, NodeSmallId(0))..=(id, NodeSmallId(u64::MAX)))
            .map(|((_, node), _)| *node)
            .collect();
        for node in subscribers {
            self.drop_subscription(id, node)?;
        }
        self.burn_badge(task.badge_id);
        self.tasks.remove(&id);
        tx.emit(TaskRemoveEvent { task_id: task.id, task_small_id: id, removed_at_epoch: tx.epoch() });
        Ok(())
    }
}
