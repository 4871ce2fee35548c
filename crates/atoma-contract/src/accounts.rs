//! Balances and badges: who holds TOMA and who may act on what.

use crate::error::ContractError;
use crate::event::{BadgeTransferredEvent, TomaTransferredEvent};
use crate::exec::Tx;
use crate::ids::{Address, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use crate::state::{AtomaDb, Badge, BadgeKind, Node, Stack, Task};

impl AtomaDb {
    /// Takes `amount` from `who`'s balance.
    pub(crate) fn debit(&mut self, who: Address, amount: u64) -> Result<(), ContractError> {
        let balance = self.balances.get(&who).copied().unwrap_or(0);
        let rest = balance.checked_sub(amount).ok_or(ContractError::EInsufficientBalance)?;
        if rest == 0 {
            self.balances.remove(&who);
        } else {
            self.balances.insert(who, rest);
        }
        Ok(())
    }

    /// Adds `amount` to `who`'s balance.
    pub(crate) fn credit(&mut self, who: Address, amount: u64) -> Result<(), ContractError> {
        if amount == 0 {
            return Ok(());
        }
        let balance = self.balances.get(&who).copied().unwrap_or(0);
        let total = balance.checked_add(amount).ok_or(ContractError::EArithmeticOverflow)?;
        self.balances.insert(who, total);
        Ok(())
    }

    /// Creates a badge of `kind` owned by `owner`.
    pub(crate) fn mint_badge(&mut self, tx: &mut Tx<'_>, owner: Address, kind: BadgeKind) -> ObjectId {
        let id = tx.new_object_id();
        self.badges.insert(id, Badge { owner, kind });
        self.owned.insert((owner, id), ());
        id
    }

    /// Destroys a badge (its object closed).
    pub(crate) fn burn_badge(&mut self, id: ObjectId) {
        if let Some(badge) = self.badges.remove(&id) {
            self.owned.remove(&(badge.owner, id));
        }
    }

    /// The owner of a badge.
    pub(crate) fn badge_owner(&self, id: ObjectId) -> Option<Address> {
        self.badges.get(&id).map(|b| b.owner)
    }

    /// Fails with `ENotAuthorized` unless the sender owns badge `id`.
    pub(crate) fn require_owner(&self, tx: &Tx<'_>, id: ObjectId) -> Result<(), ContractError> {
        if self.badge_owner(id) == Some(tx.sender()) { Ok(()) } else { Err(ContractError::ENotAuthorized) }
    }

    /// Fails with `ENotAuthorized` unless `badge` is a manager badge the sender owns.
    pub(crate) fn require_manager(&self, tx: &Tx<'_>, badge: ObjectId) -> Result<(), ContractError> {
        match self.badges.get(&badge) {
            Some(b) if b.kind == BadgeKind::Manager && b.owner == tx.sender() => Ok(()),
            _ => Err(ContractError::ENotAuthorized),
        }
    }

    /// The node, if the sender operates it. `ENodeNotFound`, `ENotAuthorized`.
    pub(crate) fn owned_node(&self, tx: &Tx<'_>, id: NodeSmallId) -> Result<Node, ContractError> {
        let node = self.nodes.get(&id).ok_or(ContractError::ENodeNotFound)?;
        self.require_owner(tx, node.badge_id)?;
        Ok(node.clone())
    }

    /// The task, if the sender owns it. `ETaskNotFound`, `ENotAuthorized`.
    pub(crate) fn owned_task(&self, tx: &Tx<'_>, id: TaskSmallId) -> Result<Task, ContractError> {
        let task = self.tasks.get(&id).ok_or(ContractError::ETaskNotFound)?;
        self.require_owner(tx, task.badge_id)?;
        Ok(task.clone())
    }

    /// The open stack, or the error that says why there is none.
    pub(crate) fn open_stack(&self, id: StackSmallId) -> Result<Stack, ContractError> {
        match self.stacks.get(&id) {
            Some(stack) => Ok(stack.clone()),
            None if self.closed_stacks.contains_key(&id) => Err(ContractError::EStackAlreadyClaimed),
            None => Err(ContractError::EStackNotFound),
        }
    }

    /// The open stack, if the sender owns it. `EStackNotFound`, `ENotAuthorized`.
    pub(crate) fn owned_stack(&self, tx: &Tx<'_>, id: StackSmallId) -> Result<Stack, ContractError> {
        let stack = self.open_stack(id)?;
        self.require_owner(tx, stack.badge_id)?;
        Ok(stack)
    }

    /// Who receives a stack's refunds: the current owner of its badge.
    pub(crate) fn stack_owner(&self, stack: &Stack) -> Result<Address, ContractError> {
        self.badge_owner(stack.badge_id).ok_or(ContractError::EBadgeNotFound)
    }

    pub(crate) fn transfer_toma(
        &mut self,
        tx: &mut Tx<'_>,
        recipient: Address,
        amount: u64,
    ) -> Result<(), ContractError> {
        if amount == 0 {
            return Err(ContractError::EInvalidAmount);
        }
        self.debit(tx.sender(), amount)?;
        self.credit(recipient, amount)?;
        tx.emit(TomaTransferredEvent { sender: tx.sender(), recipient, amount });
        Ok(())
    }

    pub(crate) fn transfer_badge(
        &mut self,
        tx: &mut Tx<'_>,
        badge_id: ObjectId,
        recipient: Address,
    ) -> Result<(), ContractError> {
        let badge = self.badges.get(&badge_id).cloned().ok_or(ContractError::EBadgeNotFound)?;
        self.require_owner(tx, badge_id)?;
        self.owned.remove(&(badge.owner, badge_id));
        self.owned.insert((recipient, badge_id), ());
        self.badges.insert(badge_id, Badge { owner: recipient, kind: badge.kind });
        tx.emit(BadgeTransferredEvent { badge_id, from: badge.owner, to: recipient });
        Ok(())
    }
}
