//! JSON views of the state as a whole: `atoma_getDb` and `atoma_audit` (SPEC §13).

use atoma_contract::{AtomaDb, Audit, Config, ObjectId};
use serde::{Deserialize, Serialize};

use crate::wire;

/// Every configuration parameter, keyed by its SPEC §4 name.
///
/// Unlike the other views, keys are snake_case: they are the names the admin's setter takes and
/// `ParameterUpdatedEvent.parameter` reports, so a user can copy one into the other.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConfigView {
    #[serde(with = "wire::u64_str")]
    pub registration_collateral: u64,
    pub registration_enabled: bool,
    #[serde(with = "wire::u64_str")]
    pub settlement_timeout_ms: u64,
    #[serde(with = "wire::u64_str")]
    pub permille_to_slash_node_on_timeout: u64,
    #[serde(with = "wire::u64_str")]
    pub permille_for_oracle_on_dispute: u64,
    #[serde(with = "wire::u64_str")]
    pub permille_for_honest_nodes_on_dispute: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_probability_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_extra_nodes_count: u64,
    #[serde(with = "wire::u64_str")]
    pub cross_validation_extra_nodes_charge_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub sampling_consensus_charge_permille: u64,
    #[serde(with = "wire::u64_str")]
    pub stack_dispute_settlement_delay_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub task_removal_delay_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub node_destroy_delay_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub stack_expiration_epochs: u64,
    #[serde(with = "wire::u64_str")]
    pub dispute_resolution_deadline_epochs: u64,
}

impl From<&Config> for ConfigView {
    fn from(c: &Config) -> Self {
        ConfigView {
            registration_collateral: c.registration_collateral,
            registration_enabled: c.registration_enabled,
            settlement_timeout_ms: c.settlement_timeout_ms,
            permille_to_slash_node_on_timeout: c.permille_to_slash_node_on_timeout,
            permille_for_oracle_on_dispute: c.permille_for_oracle_on_dispute,
            permille_for_honest_nodes_on_dispute: c.permille_for_honest_nodes_on_dispute,
            cross_validation_probability_permille: c.cross_validation_probability_permille,
            cross_validation_extra_nodes_count: c.cross_validation_extra_nodes_count,
            cross_validation_extra_nodes_charge_permille: c.cross_validation_extra_nodes_charge_permille,
            sampling_consensus_charge_permille: c.sampling_consensus_charge_permille,
            stack_dispute_settlement_delay_epochs: c.stack_dispute_settlement_delay_epochs,
            task_removal_delay_epochs: c.task_removal_delay_epochs,
            node_destroy_delay_epochs: c.node_destroy_delay_epochs,
            stack_expiration_epochs: c.stack_expiration_epochs,
            dispute_resolution_deadline_epochs: c.dispute_resolution_deadline_epochs,
        }
    }
}

impl From<&ConfigView> for Config {
    fn from(c: &ConfigView) -> Self {
        Config {
            registration_collateral: c.registration_collateral,
            registration_enabled: c.registration_enabled,
            settlement_timeout_ms: c.settlement_timeout_ms,
            permille_to_slash_node_on_timeout: c.permille_to_slash_node_on_timeout,
            permille_for_oracle_on_dispute: c.permille_for_oracle_on_dispute,
            permille_for_honest_nodes_on_dispute: c.permille_for_honest_nodes_on_dispute,
            cross_validation_probability_permille: c.cross_validation_probability_permille,
            cross_validation_extra_nodes_count: c.cross_validation_extra_nodes_count,
            cross_validation_extra_nodes_charge_permille: c.cross_validation_extra_nodes_charge_permille,
            sampling_consensus_charge_permille: c.sampling_consensus_charge_permille,
            stack_dispute_settlement_delay_epochs: c.stack_dispute_settlement_delay_epochs,
            task_removal_delay_epochs: c.task_removal_delay_epochs,
            node_destroy_delay_epochs: c.node_destroy_delay_epochs,
            stack_expiration_epochs: c.stack_expiration_epochs,
            dispute_resolution_deadline_epochs: c.dispute_resolution_deadline_epochs,
        }
    }
}

/// A trusted attestation root (SPEC §6.4).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationRootView {
    /// The device type's wire number (SPEC §3).
    pub device_type: u16,
    pub public_key: [u8; 32],
}

/// The db object: ids, counters, treasuries, key rotation, attestation roots and configuration.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbView {
    #[serde(with = "wire::text")]
    pub db_id: ObjectId,
    #[serde(with = "wire::text")]
    pub package_id: ObjectId,
    /// The small id the next registered node gets.
    #[serde(with = "wire::u64_str")]
    pub next_node_small_id: u64,
    #[serde(with = "wire::u64_str")]
    pub next_task_small_id: u64,
    #[serde(with = "wire::u64_str")]
    pub next_stack_small_id: u64,
    #[serde(with = "wire::u64_str")]
    pub fee_treasury: u64,
    #[serde(with = "wire::u64_str")]
    pub communal_treasury: u64,
    #[serde(with = "wire::u64_str")]
    pub key_rotation_counter: u64,
    /// Minted at genesis (SPEC §7.4).
    #[serde(with = "wire::u128_str")]
    pub total_supply: u128,
    /// In device-type order.
    pub attestation_roots: Vec<AttestationRootView>,
    pub config: ConfigView,
}

impl DbView {
    /// The summary of `db`.
    pub fn new(db: &AtomaDb) -> Self {
        let g = db.globals();
        DbView {
            db_id: g.db_id,
            package_id: g.package_id,
            next_node_small_id: g.next_node_small_id,
            next_task_small_id: g.next_task_small_id,
            next_stack_small_id: g.next_stack_small_id,
            fee_treasury: g.fee_treasury,
            communal_treasury: g.communal_treasury,
            key_rotation_counter: g.key_rotation_counter,
            total_supply: g.total_supply,
            attestation_roots: db
                .attestation_roots()
                .map(|(device, key)| AttestationRootView { device_type: device.to_wire(), public_key: *key })
                .collect(),
            config: ConfigView::from(&g.config),
        }
    }
}

/// Every term of SPEC §7.4 in base units, as decimal strings, and whether they add up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    #[serde(with = "wire::u128_str")]
    pub total_supply: u128,
    #[serde(with = "wire::u128_str")]
    pub account_balances: u128,
    #[serde(with = "wire::u128_str")]
    pub fee_treasury: u128,
    #[serde(with = "wire::u128_str")]
    pub communal_treasury: u128,
    #[serde(with = "wire::u128_str")]
    pub node_collateral: u128,
    /// Locked and unlocked together.
    #[serde(with = "wire::u128_str")]
    pub node_fees: u128,
    #[serde(with = "wire::u128_str")]
    pub stack_escrow: u128,
    /// The sum of the six places TOMA can be.
    #[serde(with = "wire::u128_str")]
    pub accounted: u128,
    /// `accounted == totalSupply`.
    pub holds: bool,
}

impl AuditView {
    /// Audits `db` (a scan of the whole state).
    pub fn new(db: &AtomaDb) -> Self {
        AuditView::from(&db.audit())
    }
}

impl From<&Audit> for AuditView {
    fn from(a: &Audit) -> Self {
        AuditView {
            total_supply: a.total_supply,
            account_balances: a.account_balances,
            fee_treasury: a.fee_treasury,
            communal_treasury: a.communal_treasury,
            node_collateral: a.node_collateral,
            node_fees: a.node_fees,
            stack_escrow: a.stack_escrow,
            accounted: a.accounted(),
            holds: a.holds(),
        }
    }
}
