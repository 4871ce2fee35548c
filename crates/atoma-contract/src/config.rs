//! The protocol's configuration and its genesis defaults (SPEC §4).

use serde::{Deserialize, Serialize};

use crate::call::Parameter;
use crate::error::ContractError;
use crate::ids::TOMA;

/// The most attesters a single cross-validation may request.
pub const MAX_CROSS_VALIDATION_EXTRA_NODES: u64 = 16;
/// The longest delay, in epochs, any epoch parameter may be set to.
pub const MAX_DELAY_EPOCHS: u64 = 1000;
/// The longest settlement timeout, global or an echelon's: one day. The timeout is also the
/// dispute window's floor in time, so it bounds how long a claim can be held back.
pub const MAX_SETTLEMENT_TIMEOUT_MS: u64 = 86_400_000;
/// The longest node endpoint URL, in bytes ([`crate::Call::SetNodeEndpoint`]).
pub const MAX_ENDPOINT_BYTES: usize = 256;

/// Every parameter the admin can change. A stack copies the ones that decide what it costs and
/// pays ([`crate::state::StackTerms`]), so later changes never touch an existing stack.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Config {
    /// Collateral a node must put up to register, in base units.
    pub registration_collateral: u64,
    /// Whether new nodes may register.
    pub registration_enabled: bool,
    /// The response deadline, in milliseconds, nodes and proxies work to.
    pub settlement_timeout_ms: u64,
    /// Share of collateral slashed on a timeout.
    pub permille_to_slash_node_on_timeout: u64,
    /// Oracle's share of a dispute slash.
    pub permille_for_oracle_on_dispute: u64,
    /// Honest parties' share of a dispute slash.
    pub permille_for_honest_nodes_on_dispute: u64,
    /// Chance that a sampling-consensus settlement is cross-validated.
    pub cross_validation_probability_permille: u64,
    /// Attesters sampled per cross-validation (`k`).
    pub cross_validation_extra_nodes_count: u64,
    /// Fee per attester, in permille of the base cost (`X`).
    pub cross_validation_extra_nodes_charge_permille: u64,
    /// Sampling-consensus surcharge, in permille of the base cost (`S`).
    pub sampling_consensus_charge_permille: u64,
    /// Epochs a settlement ticket stays open to attestations and disputes.
    pub stack_dispute_settlement_delay_epochs: u64,
    /// Epochs between a task's deprecation and its removal.
    pub task_removal_delay_epochs: u64,
    /// Epochs between a node's disabling and its destruction.
    pub node_destroy_delay_epochs: u64,
    /// Epochs after purchase before an unsettled stack can be reclaimed.
    pub stack_expiration_epochs: u64,
    /// Epochs a dispute waits for an oracle before it can expire.
    pub dispute_resolution_deadline_epochs: u64,
}

impl Default for Config {
    /// The genesis defaults of SPEC §4.
    fn default() -> Self {
        Config {
            registration_collateral: 1_000 * TOMA,
            registration_enabled: true,
            settlement_timeout_ms: 60_000,
            permille_to_slash_node_on_timeout: 100,
            permille_for_oracle_on_dispute: 100,
            permille_for_honest_nodes_on_dispute: 200,
            cross_validation_probability_permille: 10,
            cross_validation_extra_nodes_count: 1,
            cross_validation_extra_nodes_charge_permille: 12,
            sampling_consensus_charge_permille: 200,
            stack_dispute_settlement_delay_epochs: 1,
            task_removal_delay_epochs: 1,
            node_destroy_delay_epochs: 2,
            stack_expiration_epochs: 7,
            dispute_resolution_deadline_epochs: 7,
        }
    }
}

impl Config {
    /// The current value of a parameter.
    pub fn get(&self, parameter: Parameter) -> u64 {
        match parameter {
            Parameter::RegistrationCollateral => self.registration_collateral,
            Parameter::SettlementTimeoutMs => self.settlement_timeout_ms,
            Parameter::PermilleToSlashNodeOnTimeout => self.permille_to_slash_node_on_timeout,
            Parameter::PermilleForOracleOnDispute => self.permille_for_oracle_on_dispute,
            Parameter::PermilleForHonestNodesOnDispute => self.permille_for_honest_nodes_on_dispute,
            Parameter::CrossValidationProbabilityPermille => self.cross_validation_probability_permille,
            Parameter::CrossValidationExtraNodesCount => self.cross_validation_extra_nodes_count,
            Parameter::CrossValidationExtraNodesChargePermille => {
                self.cross_validation_extra_nodes_charge_permille
            }
            Parameter::SamplingConsensusChargePermille => self.sampling_consensus_charge_permille,
            Parameter::StackDisputeSettlementDelayEpochs => self.stack_dispute_settlement_delay_epochs,
            Parameter::TaskRemovalDelayEpochs => self.task_removal_delay_epochs,
            Parameter::NodeDestroyDelayEpochs => self.node_destroy_delay_epochs,
            Parameter::StackExpirationEpochs => self.stack_expiration_epochs,
            Parameter::DisputeResolutionDeadlineEpochs => self.dispute_resolution_deadline_epochs,
        }
    }

    fn slot(&mut self, parameter: Parameter) -> &mut u64 {
        match parameter {
            Parameter::RegistrationCollateral => &mut self.registration_collateral,
            Parameter::SettlementTimeoutMs => &mut self.settlement_timeout_ms,
            Parameter::PermilleToSlashNodeOnTimeout => &mut self.permille_to_slash_node_on_timeout,
            Parameter::PermilleForOracleOnDispute => &mut self.permille_for_oracle_on_dispute,
            Parameter::PermilleForHonestNodesOnDispute => &mut self.permille_for_honest_nodes_on_dispute,
            Parameter::CrossValidationProbabilityPermille => &mut self.cross_validation_probability_permille,
            Parameter::CrossValidationExtraNodesCount => &mut self.cross_validation_extra_nodes_count,
            Parameter::CrossValidationExtraNodesChargePermille => {
                &mut self.cross_validation_extra_nodes_charge_permille
            }
            Parameter::SamplingConsensusChargePermille => &mut self.sampling_consensus_charge_permille,
            Parameter::StackDisputeSettlementDelayEpochs => &mut self.stack_dispute_settlement_delay_epochs,
            Parameter::TaskRemovalDelayEpochs => &mut self.task_removal_delay_epochs,
            Parameter::NodeDestroyDelayEpochs => &mut self.node_destroy_delay_epochs,
            Parameter::StackExpirationEpochs => &mut self.stack_expiration_epochs,
            Parameter::DisputeResolutionDeadlineEpochs => &mut self.dispute_resolution_deadline_epochs,
        }
    }

    /// Sets a parameter after checking its range; returns the old value.
    ///
    /// # Errors
    /// `EInvalidParameter` when the value is out of the parameter's range;
    /// `ETotalPermilleMustBeLessThan1000` when the dispute shares would exceed 1000 permille.
    pub fn set(&mut self, parameter: Parameter, value: u64) -> Result<u64, ContractError> {
        let (min, max) = range(parameter);
        if value < min || value > max {
            return Err(ContractError::EInvalidParameter);
        }
        let shares = match parameter {
            Parameter::PermilleForOracleOnDispute => Some(value + self.permille_for_honest_nodes_on_dispute),
            Parameter::PermilleForHonestNodesOnDispute => Some(value + self.permille_for_oracle_on_dispute),
            _ => None,
        };
        if shares.is_some_and(|total| total > 1000) {
            return Err(ContractError::ETotalPermilleMustBeLessThan1000);
        }
        Ok(core::mem::replace(self.slot(parameter), value))
    }
}

/// The inclusive range each parameter may take.
pub fn range(parameter: Parameter) -> (u64, u64) {
    match parameter {
        Parameter::RegistrationCollateral => (1, u64::MAX),
        Parameter::SettlementTimeoutMs => (1, MAX_SETTLEMENT_TIMEOUT_MS),
        Parameter::PermilleToSlashNodeOnTimeout
        | Parameter::PermilleForOracleOnDispute
        | Parameter::PermilleForHonestNodesOnDispute
        | Parameter::CrossValidationProbabilityPermille
        | Parameter::CrossValidationExtraNodesChargePermille
        | Parameter::SamplingConsensusChargePermille => (0, 1000),
        Parameter::CrossValidationExtraNodesCount => (1, MAX_CROSS_VALIDATION_EXTRA_NODES),
        Parameter::StackDisputeSettlementDelayEpochs
        | Parameter::StackExpirationEpochs
        | Parameter::DisputeResolutionDeadlineEpochs => (1, MAX_DELAY_EPOCHS),
        Parameter::TaskRemovalDelayEpochs | Parameter::NodeDestroyDelayEpochs => (0, MAX_DELAY_EPOCHS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_spec_table() {
        let c = Config::default();
        assert_eq!(c.registration_collateral, 1_000_000_000_000);
        assert_eq!(c.get(Parameter::SamplingConsensusChargePermille), 200);
        assert_eq!(c.get(Parameter::NodeDestroyDelayEpochs), 2);
        assert_eq!(c.get(Parameter::DisputeResolutionDeadlineEpochs), 7);
        for p in Parameter::ALL {
            let (min, max) = range(*p);
            assert!((min..=max).contains(&c.get(*p)), "{} default out of range", p.name());
        }
    }

    #[test]
    fn set_validates() {
        let mut c = Config::default();
        assert_eq!(
            c.set(Parameter::CrossValidationExtraNodesCount, 0),
            Err(ContractError::EInvalidParameter)
        );
        assert_eq!(
            c.set(Parameter::PermilleForOracleOnDispute, 801),
            Err(ContractError::ETotalPermilleMustBeLessThan1000)
        );
        assert_eq!(
            c.set(Parameter::SettlementTimeoutMs, MAX_SETTLEMENT_TIMEOUT_MS + 1),
            Err(ContractError::EInvalidParameter)
        );
        assert_eq!(c.set(Parameter::SettlementTimeoutMs, MAX_SETTLEMENT_TIMEOUT_MS), Ok(60_000));
        assert_eq!(c.set(Parameter::PermilleForOracleOnDispute, 800), Ok(100));
        assert_eq!(c.permille_for_oracle_on_dispute, 800);
    }
}
