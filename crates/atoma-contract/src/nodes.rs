//! Nodes (SPEC §5.1): registration, collateral, subscriptions, models, disabling, fees, and the
//! slashing and reputation rules of SPEC §9.1 and §9.3.

use crate::config::MAX_ENDPOINT_BYTES;
use crate::enums::{Optimizations, SecurityLevel, reputation};
use crate::error::ContractError;
use crate::event::{
    NodeCollateralAddedEvent, NodeDestroyedEvent, NodeDisabledEvent, NodeEndpointSetEvent,
    NodeFeesWithdrawnEvent, NodeOptimizationsUpdatedEvent, NodeRegisteredEvent, NodeSlashedEvent,
    NodeSubscribedToModelEvent, NodeSubscribedToTaskEvent, NodeUnsubscribedFromModelEvent,
    NodeUnsubscribedFromTaskEvent, NodeUpdateSubscriptionEvent,
};
use crate::exec::Tx;
use crate::ids::{EchelonId, NodeSmallId, TaskSmallId};
use crate::money;
use crate::state::{AtomaDb, BadgeKind, Node, NodeFees, Subscription, Task};

impl AtomaDb {
    pub(crate) fn register_node(
        &mut self,
        tx: &mut Tx<'_>,
        collateral: u64,
        bits: u8,
    ) -> Result<(), ContractError> {
        let globals = self.globals.get().clone();
        if !globals.config.registration_enabled {
            return Err(ContractError::ENodeRegDisabled);
        }
        let optimizations = Optimizations::from_bits(bits).ok_or(ContractError::EInvalidOptimizations)?;
        if collateral < globals.config.registration_collateral {
            return Err(ContractError::EInsufficientCollateral);
        }
        self.debit(tx.sender(), collateral)?;
        let small_id = NodeSmallId(globals.next_node_small_id);
        self.globals.get_mut().next_node_small_id += 1;
        let badge_id = self.mint_badge(tx, tx.sender(), BadgeKind::Node(small_id));
        let node = Node {
            small_id,
            badge_id,
            collateral,
            optimizations,
            reputation: reputation::INITIAL,
            registered_epoch: tx.epoch(),
            disabled_at_epoch: None,
            fees: NodeFees { locked: 0, locked_epoch: tx.epoch(), unlocked: 0 },
            last_reputation_epoch: None,
            tee_key: None,
            open_work: 0,
        };
        self.nodes.insert(small_id, node);
        tx.emit(NodeRegisteredEvent { badge_id, node_small_id: small_id });
        Ok(())
    }

    pub(crate) fn add_node_collateral(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
        amount: u64,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        if amount == 0 {
            return Err(ContractError::EInvalidAmount);
        }
        self.debit(tx.sender(), amount)?;
        let collateral = node.collateral.checked_add(amount).ok_or(ContractError::EArithmeticOverflow)?;
        self.node_mut(id)?.collateral = collateral;
        tx.emit(NodeCollateralAddedEvent { node_small_id: id, amount, collateral });
        Ok(())
    }

    /// Whether `node` meets `task`'s requirements for subscribing (SPEC §5.1).
    fn meets_task_requirements(&self, node: &Node, task: &Task) -> bool {
        let model_ok = task.model_name.as_ref().is_none_or(|model| self.serves_model(node.small_id, model));
        let tee_ok = task.security_level != SecurityLevel::ConfidentialCompute
            || self.has_current_tee_key(node.small_id);
        node.reputation >= task.minimum_reputation_score.unwrap_or(0)
            && node.optimizations.supports_all(task.required_optimizations)
            && model_ok
            && tee_ok
    }

    /// Whether the node serves `model` in any echelon.
    pub(crate) fn serves_model(&self, node: NodeSmallId, model: &str) -> bool {
        let model = model.to_string();
        self.node_models
            .range((node, model.clone(), EchelonId(0))..=(node, model, EchelonId(u64::MAX)))
            .next()
            .is_some()
    }

    pub(crate) fn subscribe_node_to_task(
        &mut self,
        tx: &mut Tx<'_>,
        node_id: NodeSmallId,
        task_id: TaskSmallId,
        price: u64,
        max_units: u64,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, node_id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        let task = self.tasks.get(&task_id).cloned().ok_or(ContractError::ETaskNotFound)?;
        if task.deprecated_at_epoch.is_some() {
            return Err(ContractError::ETaskDeprecated);
        }
        if self.subscriptions.contains_key(&(task_id, node_id)) {
            return Err(ContractError::ENodeAlreadySubscribedToTask);
        }
        validate_offer(price, max_units)?;
        if !self.meets_task_requirements(&node, &task) {
            return Err(ContractError::ENodeDoesNotMeetTaskRequirements);
        }
        let sub = Subscription { price_per_compute_unit: price, max_num_compute_units: max_units };
        self.subscriptions.insert((task_id, node_id), sub);
        self.node_tasks.insert((node_id, task_id), ());
        self.task_mut(task_id)?.num_subscribers += 1;
        tx.emit(NodeSubscribedToTaskEvent {
            task_small_id: task_id,
            node_small_id: node_id,
            price_per_compute_unit: price,
            max_num_compute_units: max_units,
        });
        Ok(())
    }

    pub(crate) fn update_node_subscription(
        &mut self,
        tx: &mut Tx<'_>,
        node_id: NodeSmallId,
        task_id: TaskSmallId,
        price: u64,
        max_units: u64,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, node_id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        if !self.tasks.contains_key(&task_id) {
            return Err(ContractError::ETaskNotFound);
        }
        let sub =
            self.subscriptions.get_mut(&(task_id, node_id)).ok_or(ContractError::ENodeNotSubscribedToTask)?;
        validate_offer(price, max_units)?;
        *sub = Subscription { price_per_compute_unit: price, max_num_compute_units: max_units };
        tx.emit(NodeUpdateSubscriptionEvent {
            task_small_id: task_id,
            node_small_id: node_id,
            price_per_compute_unit: price,
            max_num_compute_units: max_units,
        });
        Ok(())
    }

    pub(crate) fn unsubscribe_node_from_task(
        &mut self,
        tx: &mut Tx<'_>,
        node_id: NodeSmallId,
        task_id: TaskSmallId,
    ) -> Result<(), ContractError> {
        self.owned_node(tx, node_id)?;
        if !self.tasks.contains_key(&task_id) {
            return Err(ContractError::ETaskNotFound);
        }
        if !self.subscriptions.contains_key(&(task_id, node_id)) {
            return Err(ContractError::ENodeNotSubscribedToTask);
        }
        self.drop_subscription(task_id, node_id)?;
        tx.emit(NodeUnsubscribedFromTaskEvent { task_small_id: task_id, node_small_id: node_id });
        Ok(())
    }

    /// Removes a subscription and its reverse entry.
    pub(crate) fn drop_subscription(
        &mut self,
        task: TaskSmallId,
        node: NodeSmallId,
    ) -> Result<(), ContractError> {
        self.subscriptions.remove(&(task, node));
        self.node_tasks.remove(&(node, task));
        if let Some(t) = self.tasks.get_mut(&task) {
            t.num_subscribers = t.num_subscribers.checked_sub(1).ok_or(ContractError::EInternalPanic)?;
        }
        Ok(())
    }

    pub(crate) fn add_node_to_model(
        &mut self,
        tx: &mut Tx<'_>,
        node_id: NodeSmallId,
        model_name: &str,
        echelon: EchelonId,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, node_id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        let model = self.models.get(&model_name.to_string()).ok_or(ContractError::EModelNotFound)?;
        if !model.enabled {
            return Err(ContractError::EModelDisabled);
        }
        if !model.echelons.contains_key(&echelon) {
            return Err(ContractError::EEchelonNotFound);
        }
        let key = (node_id, model_name.to_string(), echelon);
        if self.node_models.contains_key(&key) {
            return Err(ContractError::ENodeAlreadySubscribedToModel);
        }
        self.node_models.insert(key, ());
        self.model_nodes.insert((model_name.to_string(), echelon, node_id), ());
        tx.emit(NodeSubscribedToModelEvent {
            node_small_id: node_id,
            model_name: model_name.to_string(),
            echelon_id: echelon,
        });
        Ok(())
    }

    pub(crate) fn remove_node_from_model(
        &mut self,
        tx: &mut Tx<'_>,
        node_id: NodeSmallId,
        model_name: &str,
        echelon: EchelonId,
    ) -> Result<(), ContractError> {
        self.owned_node(tx, node_id)?;
        if !self.models.contains_key(&model_name.to_string()) {
            return Err(ContractError::EModelNotFound);
        }
        let key = (node_id, model_name.to_string(), echelon);
        if !self.node_models.contains_key(&key) {
            return Err(ContractError::ENodeNotSubscribedToModel);
        }
        self.node_models.remove(&key);
        self.model_nodes.remove(&(model_name.to_string(), echelon, node_id));
        if !self.serves_model(node_id, model_name) && self.subscribed_to_model_task(node_id, model_name) {
            return Err(ContractError::ENodeServesTaskWithModel);
        }
        tx.emit(NodeUnsubscribedFromModelEvent {
            node_small_id: node_id,
            model_name: model_name.to_string(),
            echelon_id: echelon,
        });
        Ok(())
    }

    /// The `(node, model, echelon)` memberships of one node, found by a range over the node.
    pub(crate) fn node_model_keys(&self, id: NodeSmallId) -> Vec<(NodeSmallId, String, EchelonId)> {
        let first = (id, String::new(), EchelonId(0));
        match id.0.checked_add(1) {
            Some(next) => {
                let end = (NodeSmallId(next), String::new(), EchelonId(0));
                self.node_models.range(first..end).map(|(k, _)| k.clone()).collect()
            }
            None => self.node_models.range(first..).map(|(k, _)| k.clone()).collect(),
        }
    }

    /// Whether the node is subscribed to a task that names `model`.
    fn subscribed_to_model_task(&self, node: NodeSmallId, model: &str) -> bool {
        self.node_tasks
            .range((node, TaskSmallId(0))..=(node, TaskSmallId(u64::MAX)))
            .filter_map(|((_, task), _)| self.tasks.get(task))
            .any(|task| task.model_name.as_deref() == Some(model))
    }

    pub(crate) fn set_node_optimizations(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
        bits: u8,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        let optimizations = Optimizations::from_bits(bits).ok_or(ContractError::EInvalidOptimizations)?;
        self.node_mut(id)?.optimizations = optimizations;
        tx.emit(NodeOptimizationsUpdatedEvent { node_small_id: id, supported_optimizations: bits });
        Ok(())
    }

    /// Publishes where the node's agent serves users; setting the same URL again emits the event
    /// again. `ENodeNotFound`, `ENotAuthorized`, `ENodeAlreadyDisabled`, `EInvalidEndpoint`.
    pub(crate) fn set_node_endpoint(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
        url: &str,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        if !is_valid_endpoint(url) {
            return Err(ContractError::EInvalidEndpoint);
        }
        self.node_endpoints.insert(id, url.to_string());
        tx.emit(NodeEndpointSetEvent { node_small_id: id, url: url.to_string() });
        Ok(())
    }

    /// Disables a node for good; the caller has checked who may do it.
    pub(crate) fn disable_node(&mut self, tx: &mut Tx<'_>, id: NodeSmallId) -> Result<(), ContractError> {
        let node = self.node_mut(id)?;
        if node.is_disabled() {
            return Err(ContractError::ENodeAlreadyDisabled);
        }
        node.disabled_at_epoch = Some(tx.epoch());
        tx.emit(NodeDisabledEvent { node_small_id: id, epoch: tx.epoch() });
        Ok(())
    }

    pub(crate) fn destroy_disabled_node(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
    ) -> Result<(), ContractError> {
        let node = self.owned_node(tx, id)?;
        let disabled_at = node.disabled_at_epoch.ok_or(ContractError::ENodeNotDisabled)?;
        let delay = self.globals.get().config.node_destroy_delay_epochs;
        if tx.epoch() < disabled_at.saturating_add(delay) {
            return Err(ContractError::ENodeMustWaitBeforeDestroy);
        }
        if node.open_work > 0 {
            return Err(ContractError::ENodeHasOpenWork);
        }
        if node.fees.locked_at(tx.epoch()) > 0 {
            return Err(ContractError::ENodeHasLockedFees);
        }
        let fees = node.fees.unlocked_at(tx.epoch());
        self.remove_node_everywhere(id)?;
        self.burn_badge(node.badge_id);
        self.nodes.remove(&id);
        let total = node.collateral.checked_add(fees).ok_or(ContractError::EArithmeticOverflow)?;
        self.credit(tx.sender(), total)?;
        tx.emit(NodeDestroyedEvent {
            node_small_id: id,
            collateral_returned: node.collateral,
            fees_returned: fees,
        });
        Ok(())
    }

    /// Removes a node's subscriptions, model memberships, oracle seats and endpoint.
    fn remove_node_everywhere(&mut self, id: NodeSmallId) -> Result<(), ContractError> {
        self.node_endpoints.remove(&id);
        let tasks: Vec<TaskSmallId> = self
            .node_tasks
            .range((id, TaskSmallId(0))..=(id, TaskSmallId(u64::MAX)))
            .map(|((_, t), _)| *t)
            .collect();
        for task in tasks {
            self.drop_subscription(task, id)?;
        }
        let memberships = self.node_model_keys(id);
        for (node, model, echelon) in memberships {
            self.node_models.remove(&(node, model.clone(), echelon));
            self.model_nodes.remove(&(model, echelon, node));
        }
        let seats: Vec<String> = self
            .models
            .iter()
            .filter(|(_, m)| m.echelons.values().any(|e| e.oracles.contains(&id)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in seats {
            if let Some(model) = self.models.get_mut(&name) {
                for echelon in model.echelons.values_mut() {
                    echelon.oracles.remove(&id);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn withdraw_fees(&mut self, tx: &mut Tx<'_>, id: NodeSmallId) -> Result<(), ContractError> {
        self.owned_node(tx, id)?;
        let paid = self.pay_out_unlocked_fees(tx, id)?;
        if paid == 0 {
            return Err(ContractError::ENoFeesToWithdraw);
        }
        Ok(())
    }

    /// Pays a node's unlocked fees to the owner of its badge; returns the amount.
    pub(crate) fn pay_out_unlocked_fees(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
    ) -> Result<u64, ContractError> {
        let epoch = tx.epoch();
        let node = self.node_mut(id)?;
        node.fees.roll(epoch);
        let amount = core::mem::take(&mut node.fees.unlocked);
        let badge = node.badge_id;
        if amount > 0 {
            let owner = self.badge_owner(badge).ok_or(ContractError::EBadgeNotFound)?;
            self.credit(owner, amount)?;
            tx.emit(NodeFeesWithdrawnEvent { node_small_id: id, amount });
        }
        Ok(amount)
    }

    /// The node for writing. `ENodeNotFound`.
    pub(crate) fn node_mut(&mut self, id: NodeSmallId) -> Result<&mut Node, ContractError> {
        self.nodes.get_mut(&id).ok_or(ContractError::ENodeNotFound)
    }

    /// The task for writing. `ETaskNotFound`.
    pub(crate) fn task_mut(&mut self, id: TaskSmallId) -> Result<&mut Task, ContractError> {
        self.tasks.get_mut(&id).ok_or(ContractError::ETaskNotFound)
    }

    /// Credits earnings to a node; they unlock at the next epoch (SPEC §7.3).
    pub(crate) fn credit_node_fees(
        &mut self,
        tx: &Tx<'_>,
        id: NodeSmallId,
        amount: u64,
    ) -> Result<(), ContractError> {
        if amount == 0 {
            return Ok(());
        }
        let epoch = tx.epoch();
        let node = self.node_mut(id)?;
        node.fees.roll(epoch);
        node.fees.locked = node.fees.locked.checked_add(amount).ok_or(ContractError::EArithmeticOverflow)?;
        Ok(())
    }

    /// Changes a node's count of open stacks and tickets that name it.
    pub(crate) fn adjust_open_work(&mut self, id: NodeSmallId, add: bool) -> Result<(), ContractError> {
        let node = self.node_mut(id)?;
        node.open_work = if add { node.open_work.checked_add(1) } else { node.open_work.checked_sub(1) }
            .ok_or(ContractError::EInternalPanic)?;
        Ok(())
    }

    /// Adds to the communal treasury.
    pub(crate) fn add_to_communal(&mut self, amount: u64) -> Result<(), ContractError> {
        let g = self.globals.get_mut();
        g.communal_treasury =
            g.communal_treasury.checked_add(amount).ok_or(ContractError::EArithmeticOverflow)?;
        Ok(())
    }

    /// SPEC §9.1 timeout slash: `⌈collateral·p/1000⌉` to the communal treasury, reputation −10.
    pub(crate) fn slash_on_timeout(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
    ) -> Result<u64, ContractError> {
        let permille = self.globals.get().config.permille_to_slash_node_on_timeout;
        let node = self.node_mut(id)?;
        let amount = money::timeout_slash(node.collateral, permille)?;
        node.collateral -= amount;
        node.reputation = node.reputation.saturating_sub(reputation::TIMEOUT_PENALTY);
        let event = NodeSlashedEvent {
            node_small_id: id,
            reason: "timeout".into(),
            amount,
            remaining_collateral: node.collateral,
            reputation: node.reputation,
        };
        self.add_to_communal(amount)?;
        tx.emit(event);
        Ok(amount)
    }

    /// SPEC §9.1 dispute slash: all collateral and locked fees; reputation 0. The caller divides
    /// the returned amount (SPEC §9.2).
    pub(crate) fn slash_on_dispute(
        &mut self,
        tx: &mut Tx<'_>,
        id: NodeSmallId,
    ) -> Result<u64, ContractError> {
        let epoch = tx.epoch();
        let node = self.node_mut(id)?;
        node.fees.roll(epoch);
        let amount =
            node.collateral.checked_add(node.fees.locked).ok_or(ContractError::EArithmeticOverflow)?;
        node.collateral = 0;
        node.fees.locked = 0;
        node.reputation = 0;
        tx.emit(NodeSlashedEvent {
            node_small_id: id,
            reason: "dispute".into(),
            amount,
            remaining_collateral: 0,
            reputation: 0,
        });
        Ok(amount)
    }

    /// SPEC §9.3: +1 at most once per epoch for a node whose stack was claimed, up to 1000.
    pub(crate) fn reward_reputation(&mut self, tx: &Tx<'_>, id: NodeSmallId) -> Result<(), ContractError> {
        let epoch = tx.epoch();
        let node = self.node_mut(id)?;
        if node.last_reputation_epoch != Some(epoch) {
            node.last_reputation_epoch = Some(epoch);
            node.reputation = (node.reputation + 1).min(reputation::MAX);
        }
        Ok(())
    }
}

/// An endpoint is an `http://` or `https://` URL with something after the scheme, at most
/// [`MAX_ENDPOINT_BYTES`] long, of printable ASCII without spaces (`0x21..=0x7e`). The contract
/// checks only this shape: whether anything answers there is for the user to find out.
pub fn is_valid_endpoint(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    url.len() <= MAX_ENDPOINT_BYTES
        && rest.is_some_and(|rest| !rest.is_empty())
        && url.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A subscription's price and capacity must both be positive.
fn validate_offer(price: u64, max_units: u64) -> Result<(), ContractError> {
    if price == 0 {
        return Err(ContractError::EInvalidPricePerComputeUnit);
    }
    if max_units == 0 {
        return Err(ContractError::EInvalidComputeUnits);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_short_printable_http_urls() {
        let longest = format!("https://{}", "a".repeat(MAX_ENDPOINT_BYTES - "https://".len()));
        for good in ["http://a", "https://node-7.example:8443/v1", "http://127.0.0.1:4000", longest.as_str()]
        {
            assert!(is_valid_endpoint(good), "{good}");
        }
        let too_long = format!("{longest}a");
        for bad in [
            "",
            "http://",
            "https://",
            "ftp://a",
            "HTTP://a",
            "a.example",
            "http://a b",
            "http://a\t",
            "http://a\n",
            "http://é",
            "http://a\u{7f}",
            too_long.as_str(),
        ] {
            assert!(!is_valid_endpoint(bad), "{bad:?}");
        }
    }
}
