//! The admin: setup, then parameter changes and other interventions mid-flight.

use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::{AtomaDb, Config, ContractError, EchelonId, TOMA};

use super::{Expect, View, live_tasks, manager_badge, nodes_of};
use crate::actors::{Actor, DEVICE_TYPE, MODELS, Role};
use crate::rng::SimRng;

type Calls = Vec<(Call, Expect)>;

/// The admin's calls: the setup until it is complete (models, echelons, the attestation root,
/// oracle seats), then at most one intervention per block.
pub(super) fn plan(v: &View<'_>, rng: &mut SimRng, actor: &Actor) -> Calls {
    let db = v.db;
    let Some(badge) = manager_badge(db, &actor.address) else { return Vec::new() };
    let admin = |op| Call::Admin { manager_badge: badge, op };
    let mut calls = Vec::new();
    for (i, name) in MODELS.iter().enumerate() {
        if db.model(name).is_none() {
            calls.push((
                admin(AdminOp::AddModel { name: (*name).into(), modality: 0 }),
                Expect::Exactly(Ok(())),
            ));
            for echelon in 1..=(2 - i as u64) {
                let op = AdminOp::AddModelEchelon {
                    model_name: (*name).into(),
                    echelon: EchelonId(echelon),
                    params: echelon_params(rng),
                };
                calls.push((admin(op), Expect::Exactly(Ok(()))));
            }
        }
    }
    if !db.attestation_roots().any(|(device, _)| device.to_wire() == DEVICE_TYPE) {
        let op = AdminOp::AddAttestationRoot {
            device_type: DEVICE_TYPE,
            public_key: v.cast.tee_root.verifying_key().to_bytes(),
        };
        calls.push((admin(op), Expect::Exactly(Ok(()))));
    }
    for oracle in v.cast.actors.iter().filter(|a| a.role == Role::Oracle) {
        let model = MODELS[oracle.model];
        for node in nodes_of(db, &oracle.address).into_iter().filter(|n| !n.is_disabled()) {
            let serves = db.node_models(node.small_id).iter().any(|(m, _)| m == model);
            let seated = db
                .model(model)
                .and_then(|m| m.echelons.get(&EchelonId(1)))
                .map(|e| e.oracles.contains(&node.small_id));
            if serves && seated == Some(false) {
                let op = AdminOp::AddModelEchelonOracleNode {
                    model_name: model.into(),
                    echelon: EchelonId(1),
                    node: node.small_id,
                };
                calls.push((admin(op), Expect::Anything));
            }
        }
    }
    if calls.is_empty() && rng.chance(600) {
        calls.extend(intervene(v, rng).map(|(op, expect)| (admin(op), expect)));
    }
    calls
}

fn echelon_params(rng: &mut SimRng) -> EchelonParams {
    EchelonParams {
        input_fee_per_token: rng.range(1, 10),
        output_fee_per_token: rng.range(1, 10),
        relative_performance: rng.range(1, 200),
        settlement_timeout_ms: rng.range(1_000, 60_000),
    }
}

/// One admin intervention.
fn intervene(v: &View<'_>, rng: &mut SimRng) -> Option<(AdminOp, Expect)> {
    let db = v.db;
    let config = db.config();
    if !config.registration_enabled && rng.chance(500) {
        return Some((AdminOp::EnableRegistration, Expect::Exactly(Ok(()))));
    }
    if let Some(model) = db.models().find(|m| !m.enabled)
        && rng.chance(500)
    {
        return Some((AdminOp::EnableModel { name: model.name.clone() }, Expect::Exactly(Ok(()))));
    }
    let set = |parameter, value| {
        let expect = Expect::Exactly(expected_parameter_outcome(parameter, value, config));
        (AdminOp::SetParameter { parameter, value }, expect)
    };
    let parameter = *rng.pick(Parameter::ALL)?;
    match rng.below(100) {
        0..=39 => Some(set(parameter, valid_value(rng, parameter, config))),
        40..=54 => Some(set(parameter, invalid_value(rng, parameter, config))),
        55..=58 => Some((AdminOp::NewNetworkKeyRotation, Expect::Exactly(Ok(())))),
        59..=62 => {
            let tasks = live_tasks(db);
            rng.pick(&tasks).map(|t| (AdminOp::DeprecateTask { task: t.small_id }, Expect::Anything))
        }
        63..=70 => {
            let delay = config.task_removal_delay_epochs;
            let removable: Vec<_> = db
                .tasks_from(atoma_contract::TaskSmallId(0))
                .filter(|t| {
                    t.deprecated_at_epoch.is_some_and(|at| v.epoch >= at + delay) && t.open_stacks == 0
                })
                .collect();
            rng.pick(&removable)
                .map(|t| (AdminOp::RemoveDeprecatedTask { task: t.small_id }, Expect::Anything))
        }
        71..=73 => Some((AdminOp::DisableRegistration, Expect::Anything)),
        74 => {
            let oracles: Vec<_> =
                v.cast.actors.iter().filter(|a| a.role == Role::Oracle).map(|a| a.address).collect();
            let nodes: Vec<_> = db
                .nodes()
                .filter(|n| !n.is_disabled())
                .filter(|n| db.badge(n.badge_id).is_some_and(|b| !oracles.contains(&b.owner)))
                .collect();
            rng.pick(&nodes).map(|n| (AdminOp::PermanentlyDisableNode { node: n.small_id }, Expect::Anything))
        }
        75..=84 => Some(withdraw(db, rng, v.cast.admin().address)),
        85..=89 => {
            let model = MODELS[rng.index(MODELS.len())];
            let op = AdminOp::UpdateModelEchelon {
                model_name: model.into(),
                echelon: EchelonId(1),
                params: echelon_params(rng),
            };
            Some((op, Expect::Anything))
        }
        // Taken away for a while: the setup puts roots and oracle seats back on a later turn,
        // and a disabled model is enabled again.
        90 => {
            Some((AdminOp::DisableModel { name: MODELS[rng.index(MODELS.len())].into() }, Expect::Anything))
        }
        91 => Some((AdminOp::RemoveAttestationRoot { device_type: DEVICE_TYPE }, Expect::Anything)),
        92 => {
            let model = MODELS[rng.index(MODELS.len())];
            let seated: Vec<_> = db
                .model(model)
                .and_then(|m| m.echelons.get(&EchelonId(1)))
                .map(|e| e.oracles.iter().copied().collect())
                .unwrap_or_default();
            rng.pick(&seated).map(|node| {
                let op = AdminOp::RemoveModelEchelonOracleNode {
                    model_name: model.into(),
                    echelon: EchelonId(1),
                    node: *node,
                };
                (op, Expect::Exactly(Ok(())))
            })
        }
        _ => None,
    }
}

/// A treasury withdrawal: half the time within the treasury, half the time beyond it.
fn withdraw(db: &AtomaDb, rng: &mut SimRng, recipient: atoma_contract::Address) -> (AdminOp, Expect) {
    let globals = db.globals();
    let fee = rng.chance(500);
    let held = if fee { globals.fee_treasury } else { globals.communal_treasury };
    // Beyond the treasury by far more than a block's slashes could add to it.
    let amount = if rng.chance(500) && held > 0 { rng.range(1, held) } else { u64::MAX - rng.below(TOMA) };
    let op = if fee {
        AdminOp::WithdrawFeeTreasury { amount, recipient }
    } else {
        AdminOp::WithdrawCommunalTreasury { amount, recipient }
    };
    (op, if amount > held { Expect::Failure } else { Expect::Anything })
}

/// The inclusive range each parameter may take, as SPEC §4 and the parameter's docs state it.
/// Written here independently of the contract's own table, so that the two are checked against
/// each other.
pub fn parameter_bounds(parameter: Parameter) -> (u64, u64) {
    match parameter {
        Parameter::RegistrationCollateral => (1, u64::MAX),
        Parameter::SettlementTimeoutMs => (1, 86_400_000),
        Parameter::CrossValidationExtraNodesCount => (1, 16),
        Parameter::StackDisputeSettlementDelayEpochs
        | Parameter::StackExpirationEpochs
        | Parameter::DisputeResolutionDeadlineEpochs => (1, 1000),
        _ => (0, 1000),
    }
}

/// What setting `parameter` to `value` must give under `config`: `EInvalidParameter` out of
/// range, `ETotalPermilleMustBeLessThan1000` when the dispute shares would pass 1000.
pub fn expected_parameter_outcome(
    parameter: Parameter,
    value: u64,
    config: &Config,
) -> Result<(), ContractError> {
    let (low, high) = parameter_bounds(parameter);
    if !(low..=high).contains(&value) {
        return Err(ContractError::EInvalidParameter);
    }
    let other = match parameter {
        Parameter::PermilleForOracleOnDispute => config.permille_for_honest_nodes_on_dispute,
        Parameter::PermilleForHonestNodesOnDispute => config.permille_for_oracle_on_dispute,
        _ => return Ok(()),
    };
    if value + other > 1000 {
        return Err(ContractError::ETotalPermilleMustBeLessThan1000);
    }
    Ok(())
}

/// A value in the range the simulation keeps each parameter in: valid, and small enough delays
/// that expiry and disputes happen within a run.
fn valid_value(rng: &mut SimRng, parameter: Parameter, config: &Config) -> u64 {
    match parameter {
        Parameter::RegistrationCollateral => rng.range(500, 1500) * TOMA,
        Parameter::SettlementTimeoutMs => rng.range(1_000, 120_000),
        Parameter::PermilleToSlashNodeOnTimeout => rng.range(0, 300),
        Parameter::PermilleForOracleOnDispute => {
            rng.range(0, 1000 - config.permille_for_honest_nodes_on_dispute)
        }
        Parameter::PermilleForHonestNodesOnDispute => {
            rng.range(0, 1000 - config.permille_for_oracle_on_dispute)
        }
        Parameter::CrossValidationProbabilityPermille => *rng.pick(&[0, 250, 500, 750, 1000]).unwrap_or(&500),
        Parameter::CrossValidationExtraNodesCount => rng.range(1, 3),
        Parameter::CrossValidationExtraNodesChargePermille => rng.range(0, 100),
        Parameter::SamplingConsensusChargePermille => rng.range(0, 400),
        Parameter::StackDisputeSettlementDelayEpochs => rng.range(1, 2),
        Parameter::TaskRemovalDelayEpochs | Parameter::NodeDestroyDelayEpochs => rng.range(0, 2),
        Parameter::StackExpirationEpochs | Parameter::DisputeResolutionDeadlineEpochs => rng.range(1, 3),
    }
}

/// A value the contract must refuse: out of range, or dispute shares adding up past 1000.
fn invalid_value(rng: &mut SimRng, parameter: Parameter, config: &Config) -> u64 {
    let (low, high) = parameter_bounds(parameter);
    let other = match parameter {
        Parameter::PermilleForOracleOnDispute => config.permille_for_honest_nodes_on_dispute,
        Parameter::PermilleForHonestNodesOnDispute => config.permille_for_oracle_on_dispute,
        _ => 0,
    };
    if other > 0 && rng.chance(500) {
        return rng.range(1001 - other, 1000);
    }
    if low > 0 && (high == u64::MAX || rng.chance(500)) {
        return 0;
    }
    high + rng.range(1, 5000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sims_bounds_agree_with_the_contracts() {
        for p in Parameter::ALL {
            assert_eq!(parameter_bounds(*p), atoma_contract::config::range(*p), "{}", p.name());
        }
    }

    #[test]
    fn drawn_values_are_what_they_claim() {
        let config = Config::default();
        let mut rng = SimRng::new(11);
        for _ in 0..50 {
            for p in Parameter::ALL {
                assert_eq!(
                    expected_parameter_outcome(*p, valid_value(&mut rng, *p, &config), &config),
                    Ok(())
                );
                assert!(
                    expected_parameter_outcome(*p, invalid_value(&mut rng, *p, &config), &config).is_err()
                );
            }
        }
        assert_eq!(
            expected_parameter_outcome(Parameter::PermilleForOracleOnDispute, 801, &config),
            Err(ContractError::ETotalPermilleMustBeLessThan1000)
        );
    }
}
