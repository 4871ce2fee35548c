//! Admin functions (SPEC §5.6): models, echelons, oracles, parameters, TEE roots, treasuries
//! and manager badges. Every one needs a manager badge the sender owns and emits an event that
//! names what changed.

use std::collections::BTreeSet;

use crate::call::{AdminOp, EchelonParams};
use crate::enums::{DeviceType, Modality};
use crate::error::ContractError;
use crate::event::{
    AttestationRootAddedEvent, AttestationRootRemovedEvent, EchelonAddedEvent, EchelonRemovedEvent,
    EchelonUpdatedEvent, ManagerBadgeCreatedEvent, ModelAddedEvent, ModelRemovedEvent,
    ModelStatusChangedEvent, OracleAddedEvent, OracleRemovedEvent, ParameterUpdatedEvent,
    RegistrationStatusChangedEvent, TreasuryWithdrawnEvent,
};
use crate::exec::Tx;
use crate::ids::{Address, EchelonId, NodeSmallId, ObjectId};
use crate::state::{AtomaDb, BadgeKind, Echelon, Model};

/// The longest model name, in bytes.
pub const MAX_MODEL_NAME_LEN: usize = 128;

/// Which treasury a withdrawal draws from.
#[derive(Clone, Copy)]
enum Treasury {
    Fee,
    Communal,
}

impl AtomaDb {
    pub(crate) fn admin(
        &mut self,
        tx: &mut Tx<'_>,
        badge: ObjectId,
        op: &AdminOp,
    ) -> Result<(), ContractError> {
        self.require_manager(tx, badge)?;
        match op {
            AdminOp::AddModel { name, modality } => self.add_model(tx, name, *modality),
            AdminOp::RemoveModel { name } => self.remove_model(tx, name),
            AdminOp::DisableModel { name } => self.set_model_enabled(tx, name, false),
            AdminOp::EnableModel { name } => self.set_model_enabled(tx, name, true),
            AdminOp::AddModelEchelon { model_name, echelon, params } => {
                self.add_model_echelon(tx, model_name, *echelon, params)
            }
            AdminOp::UpdateModelEchelon { model_name, echelon, params } => {
                self.update_model_echelon(tx, model_name, *echelon, params)
            }
            AdminOp::RemoveModelEchelon { model_name, echelon } => {
                self.remove_model_echelon(tx, model_name, *echelon)
            }
            AdminOp::AddModelEchelonOracleNode { model_name, echelon, node } => {
                self.set_oracle(tx, model_name, *echelon, *node, true)
            }
            AdminOp::RemoveModelEchelonOracleNode { model_name, echelon, node } => {
                self.set_oracle(tx, model_name, *echelon, *node, false)
            }
            AdminOp::SetParameter { parameter, value } => {
                let old = self.globals.get_mut().config.set(*parameter, *value)?;
                let parameter = parameter.name().to_string();
                tx.emit(ParameterUpdatedEvent { parameter, old_value: old, new_value: *value });
                Ok(())
            }
            AdminOp::DisableRegistration => self.set_registration(tx, false),
            AdminOp::EnableRegistration => self.set_registration(tx, true),
            AdminOp::PermanentlyDisableNode { node } => self.disable_node(tx, *node),
            AdminOp::DeprecateTask { task } => self.deprecate_task(tx, *task),
            AdminOp::RemoveDeprecatedTask { task } => self.remove_deprecated_task(tx, *task),
            AdminOp::NewNetworkKeyRotation => self.new_network_key_rotation(tx),
            AdminOp::AddAttestationRoot { device_type, public_key } => {
                self.add_attestation_root(tx, *device_type, public_key)
            }
            AdminOp::RemoveAttestationRoot { device_type } => self.remove_attestation_root(tx, *device_type),
            AdminOp::WithdrawFeeTreasury { amount, recipient } => {
                self.withdraw_treasury(tx, Treasury::Fee, *amount, *recipient)
            }
            AdminOp::WithdrawCommunalTreasury { amount, recipient } => {
                self.withdraw_treasury(tx, Treasury::Communal, *amount, *recipient)
            }
            AdminOp::CreateManagerBadge { recipient } => {
                let badge_id = self.mint_badge(tx, *recipient, BadgeKind::Manager);
                tx.emit(ManagerBadgeCreatedEvent { badge_id, recipient: *recipient });
                Ok(())
            }
        }
    }

    fn add_model(&mut self, tx: &mut Tx<'_>, name: &str, modality: u16) -> Result<(), ContractError> {
        if name.is_empty() || name.len() > MAX_MODEL_NAME_LEN {
            return Err(ContractError::EInvalidModelName);
        }
        let modality_value = Modality::from_wire(modality).ok_or(ContractError::EInvalidModality)?;
        if self.models.contains_key(&name.to_string()) {
            return Err(ContractError::EModelAlreadyExists);
        }
        let model = Model {
            name: name.to_string(),
            modality: modality_value,
            enabled: true,
            echelons: Default::default(),
        };
        self.models.insert(name.to_string(), model);
        tx.emit(ModelAddedEvent { model_name: name.to_string(), modality });
        Ok(())
    }

    fn remove_model(&mut self, tx: &mut Tx<'_>, name: &str) -> Result<(), ContractError> {
        let model = self.models.get(&name.to_string()).cloned().ok_or(ContractError::EModelNotFound)?;
        if self.tasks.values().any(|t| t.model_name.as_deref() == Some(name)) {
            return Err(ContractError::EModelInUse);
        }
        for echelon in model.echelons.keys() {
            self.drop_echelon_members(name, *echelon);
        }
        self.models.remove(&name.to_string());
        tx.emit(ModelRemovedEvent { model_name: name.to_string() });
        Ok(())
    }

    /// Removes every node's membership in one echelon of a model.
    fn drop_echelon_members(&mut self, model: &str, echelon: EchelonId) {
        let name = model.to_string();
        let members: Vec<NodeSmallId> = self
            .model_nodes
            .range((name.clone(), echelon, NodeSmallId(0))..=(name.clone(), echelon, NodeSmallId(u64::MAX)))
            .map(|((_, _, node), _)| *node)
            .collect();
        for node in members {
            self.model_nodes.remove(&(name.clone(), echelon, node));
            self.node_models.remove(&(node, name.clone(), echelon));
        }
    }

    fn set_model_enabled(&mut self, tx: &mut Tx<'_>, name: &str, enabled: bool) -> Result<(), ContractError> {
        let model = self.models.get_mut(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
        model.enabled = enabled;
        tx.emit(ModelStatusChangedEvent { model_name: name.to_string(), enabled });
        Ok(())
    }

    fn add_model_echelon(
        &mut self,
        tx: &mut Tx<'_>,
        name: &str,
        id: EchelonId,
        p: &EchelonParams,
    ) -> Result<(), ContractError> {
        validate_echelon(p)?;
        let model = self.models.get_mut(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
        if model.echelons.contains_key(&id) {
            return Err(ContractError::EEchelonAlreadyExistsForModel);
        }
        let echelon = Echelon {
            id,
            input_fee_per_token: p.input_fee_per_token,
            output_fee_per_token: p.output_fee_per_token,
            relative_performance: p.relative_performance,
            settlement_timeout_ms: p.settlement_timeout_ms,
            oracles: BTreeSet::new(),
        };
        model.echelons.insert(id, echelon);
        tx.emit(EchelonAddedEvent {
            model_name: name.to_string(),
            echelon_id: id,
            input_fee_per_token: p.input_fee_per_token,
            output_fee_per_token: p.output_fee_per_token,
            relative_performance: p.relative_performance,
            settlement_timeout_ms: p.settlement_timeout_ms,
        });
        Ok(())
    }

    fn update_model_echelon(
        &mut self,
        tx: &mut Tx<'_>,
        name: &str,
        id: EchelonId,
        p: &EchelonParams,
    ) -> Result<(), ContractError> {
        validate_echelon(p)?;
        let model = self.models.get_mut(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
        let echelon = model.echelons.get_mut(&id).ok_or(ContractError::EEchelonNotFound)?;
        echelon.input_fee_per_token = p.input_fee_per_token;
        echelon.output_fee_per_token = p.output_fee_per_token;
        echelon.relative_performance = p.relative_performance;
        echelon.settlement_timeout_ms = p.settlement_timeout_ms;
        tx.emit(EchelonUpdatedEvent {
            model_name: name.to_string(),
            echelon_id: id,
            input_fee_per_token: p.input_fee_per_token,
            output_fee_per_token: p.output_fee_per_token,
            relative_performance: p.relative_performance,
            settlement_timeout_ms: p.settlement_timeout_ms,
        });
        Ok(())
    }

    fn remove_model_echelon(
        &mut self,
        tx: &mut Tx<'_>,
        name: &str,
        id: EchelonId,
    ) -> Result<(), ContractError> {
        let model = self.models.get_mut(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
        model.echelons.remove(&id).ok_or(ContractError::EEchelonNotFound)?;
        self.drop_echelon_members(name, id);
        tx.emit(EchelonRemovedEvent { model_name: name.to_string(), echelon_id: id });
        Ok(())
    }

    fn set_oracle(
        &mut self,
        tx: &mut Tx<'_>,
        name: &str,
        id: EchelonId,
        node: NodeSmallId,
        add: bool,
    ) -> Result<(), ContractError> {
        if !self.nodes.contains_key(&node) {
            return Err(ContractError::ENodeNotFound);
        }
        let model = self.models.get_mut(&name.to_string()).ok_or(ContractError::EModelNotFound)?;
        let echelon = model.echelons.get_mut(&id).ok_or(ContractError::EEchelonNotFound)?;
        let model_name = name.to_string();
        if add {
            if !echelon.oracles.insert(node) {
                return Err(ContractError::EOracleAlreadyExists);
            }
            tx.emit(OracleAddedEvent { model_name, echelon_id: id, node_small_id: node });
        } else {
            if !echelon.oracles.remove(&node) {
                return Err(ContractError::ENotAnOracle);
            }
            tx.emit(OracleRemovedEvent { model_name, echelon_id: id, node_small_id: node });
        }
        Ok(())
    }

    fn set_registration(&mut self, tx: &mut Tx<'_>, enabled: bool) -> Result<(), ContractError> {
        self.globals.get_mut().config.registration_enabled = enabled;
        tx.emit(RegistrationStatusChangedEvent { enabled });
        Ok(())
    }

    fn add_attestation_root(
        &mut self,
        tx: &mut Tx<'_>,
        device_type: u16,
        key: &[u8; 32],
    ) -> Result<(), ContractError> {
        let device = DeviceType::from_wire(device_type).ok_or(ContractError::EInvalidDeviceType)?;
        if ed25519_dalek::VerifyingKey::from_bytes(key).is_err() {
            return Err(ContractError::EInvalidPublicKey);
        }
        self.attestation_roots.insert(device, *key);
        tx.emit(AttestationRootAddedEvent { device_type, public_key: key.to_vec() });
        Ok(())
    }

    fn remove_attestation_root(&mut self, tx: &mut Tx<'_>, device_type: u16) -> Result<(), ContractError> {
        let device = DeviceType::from_wire(device_type).ok_or(ContractError::EInvalidDeviceType)?;
        self.attestation_roots.remove(&device).ok_or(ContractError::EAttestationRootNotFound)?;
        tx.emit(AttestationRootRemovedEvent { device_type });
        Ok(())
    }

    /// Pays from a treasury. Escrow and node fees are held apart from the treasuries, so a
    /// withdrawal can never take what open stacks or nodes are owed.
    fn withdraw_treasury(
        &mut self,
        tx: &mut Tx<'_>,
        which: Treasury,
        amount: u64,
        recipient: Address,
    ) -> Result<(), ContractError> {
        if amount == 0 {
            return Err(ContractError::EInvalidAmount);
        }
        let g = self.globals.get_mut();
        let (balance, name) = match which {
            Treasury::Fee => (&mut g.fee_treasury, "fee"),
            Treasury::Communal => (&mut g.communal_treasury, "communal"),
        };
        *balance = balance.checked_sub(amount).ok_or(ContractError::EInsufficientTreasury)?;
        self.credit(recipient, amount)?;
        tx.emit(TreasuryWithdrawnEvent { treasury: name.to_string(), amount, recipient });
        Ok(())
    }
}

/// An echelon needs non-zero fees and performance, and a timeout of at most
/// [`crate::config::MAX_SETTLEMENT_TIMEOUT_MS`].
fn validate_echelon(p: &EchelonParams) -> Result<(), ContractError> {
    if p.input_fee_per_token == 0 || p.output_fee_per_token == 0 {
        return Err(ContractError::EProtocolFeeCannotBeZero);
    }
    if p.relative_performance == 0 {
        return Err(ContractError::ERelativePerformanceCannotBeZero);
    }
    if !(1..=crate::config::MAX_SETTLEMENT_TIMEOUT_MS).contains(&p.settlement_timeout_ms) {
        return Err(ContractError::EInvalidParameter);
    }
    Ok(())
}
