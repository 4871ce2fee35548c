//! `atoma admin …`: every `AdminOp` (SPEC §5.6 and §5.5's key rotation), signed with a manager
//! badge the signer owns.

use atoma_contract::{AdminOp, EchelonId, EchelonParams, NodeSmallId, Parameter, TaskSmallId};
use atoma_types::Keypair;

use crate::cli::{AdminArgs, AdminCmd, EchelonArgs, Hex, OracleArgs, WithdrawArgs};
use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::format::{parse_toma, toma};
use crate::keys::DEV_ROOT_PREFIX;
use crate::names::{device_name, modality_name};
use crate::output::Report;
use crate::render;

/// Runs an admin subcommand.
///
/// # Errors
/// `ENoManagerBadge`; the contract's named errors.
pub async fn run(ctx: &mut Ctx, args: AdminArgs) -> CliResult<Report> {
    let badge = args.badge.clone();
    let mut dev_root = None;
    let (op, headline) = match args.cmd {
        AdminCmd::AddRoot { device, public_key: None, dev: true } => {
            let key = Keypair::generate().map_err(CliError::from)?;
            let op = AdminOp::AddAttestationRoot { device_type: device, public_key: key.public_key() };
            let headline = format!(
                "Trusted a development attestation root for {} (stored as {DEV_ROOT_PREFIX}{device})",
                device_name(device)
            );
            dev_root = Some((device, key));
            (op, headline)
        }
        cmd => op_of(ctx, cmd)?,
    };
    let (signer, result) = ctx.submit_admin(badge.as_deref(), op).await?;
    if let Some((device, key)) = dev_root {
        ctx.keys()?.put(&format!("{DEV_ROOT_PREFIX}{device}"), &key)?;
    }
    Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
}

/// The operation and its headline.
fn op_of(ctx: &mut Ctx, cmd: AdminCmd) -> CliResult<(AdminOp, String)> {
    Ok(match cmd {
        AdminCmd::AddModel { name, modality } => {
            let headline = format!("Added model {name} ({})", modality_name(modality));
            (AdminOp::AddModel { name, modality }, headline)
        }
        AdminCmd::RemoveModel { name } => {
            (AdminOp::RemoveModel { name: name.clone() }, format!("Removed model {name}"))
        }
        AdminCmd::EnableModel { name } => {
            (AdminOp::EnableModel { name: name.clone() }, format!("Enabled model {name}"))
        }
        AdminCmd::DisableModel { name } => {
            (AdminOp::DisableModel { name: name.clone() }, format!("Disabled model {name}"))
        }
        AdminCmd::AddEchelon(e) => echelon(e, true),
        AdminCmd::UpdateEchelon(e) => echelon(e, false),
        AdminCmd::RemoveEchelon(e) => (
            AdminOp::RemoveModelEchelon { model_name: e.model.clone(), echelon: EchelonId(e.echelon) },
            format!("Removed echelon {} of {}", e.echelon, e.model),
        ),
        AdminCmd::AddOracle(o) => oracle(o, true),
        AdminCmd::RemoveOracle(o) => oracle(o, false),
        AdminCmd::Set { param, value } => set(&param, &value)?,
        AdminCmd::DisableRegistration => (AdminOp::DisableRegistration, "Closed node registration".into()),
        AdminCmd::EnableRegistration => (AdminOp::EnableRegistration, "Opened node registration".into()),
        AdminCmd::DisableNode { node } => {
            (AdminOp::PermanentlyDisableNode { node: NodeSmallId(node) }, format!("Disabled node {node}"))
        }
        AdminCmd::DeprecateTask { task } => {
            (AdminOp::DeprecateTask { task: TaskSmallId(task) }, format!("Deprecated task {task}"))
        }
        AdminCmd::RemoveTask { task } => {
            (AdminOp::RemoveDeprecatedTask { task: TaskSmallId(task) }, format!("Removed task {task}"))
        }
        AdminCmd::RotateKeys => (AdminOp::NewNetworkKeyRotation, "Started a new key rotation".into()),
        AdminCmd::AddRoot { device, public_key, .. } => {
            let Some(Hex(bytes)) = public_key else {
                return Err(CliError::invalid("give --public-key HEX or --dev"));
            };
            let public_key = <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| CliError::invalid("--public-key must be 32 bytes (64 hex digits)"))?;
            let headline = format!("Trusted an attestation root for {}", device_name(device));
            (AdminOp::AddAttestationRoot { device_type: device, public_key }, headline)
        }
        AdminCmd::RemoveRoot { device } => (
            AdminOp::RemoveAttestationRoot { device_type: device },
            format!("Removed the attestation root of {}", device_name(device)),
        ),
        AdminCmd::WithdrawFeesTreasury(w) => withdraw(ctx, w, true)?,
        AdminCmd::WithdrawCommunalTreasury(w) => withdraw(ctx, w, false)?,
        AdminCmd::NewManagerBadge { to } => {
            let recipient = ctx.keys()?.address(&to)?;
            (AdminOp::CreateManagerBadge { recipient }, format!("Created a manager badge for {to}"))
        }
    })
}

fn echelon(e: EchelonArgs, add: bool) -> (AdminOp, String) {
    let params = EchelonParams {
        input_fee_per_token: e.input_fee,
        output_fee_per_token: e.output_fee,
        relative_performance: e.performance,
        settlement_timeout_ms: e.timeout_ms,
    };
    let (model_name, id) = (e.model, EchelonId(e.echelon));
    let headline = format!("{} echelon {} of {model_name}", if add { "Added" } else { "Updated" }, e.echelon);
    let op = if add {
        AdminOp::AddModelEchelon { model_name, echelon: id, params }
    } else {
        AdminOp::UpdateModelEchelon { model_name, echelon: id, params }
    };
    (op, headline)
}

fn oracle(o: OracleArgs, add: bool) -> (AdminOp, String) {
    let (model_name, echelon, node) = (o.model.clone(), EchelonId(o.echelon), NodeSmallId(o.node));
    if add {
        let headline = format!("Node {} is an oracle of {} echelon {}", o.node, o.model, o.echelon);
        (AdminOp::AddModelEchelonOracleNode { model_name, echelon, node }, headline)
    } else {
        let headline = format!("Node {} is no longer an oracle of {} echelon {}", o.node, o.model, o.echelon);
        (AdminOp::RemoveModelEchelonOracleNode { model_name, echelon, node }, headline)
    }
}

/// `set PARAM VALUE`: VALUE is the raw number, or TOMA when it ends in `TOMA`/`toma`.
fn set(param: &str, value: &str) -> CliResult<(AdminOp, String)> {
    let parameter = Parameter::from_name(param).ok_or_else(|| {
        let names: Vec<&str> = Parameter::ALL.iter().map(|p| p.name()).collect();
        CliError::invalid(format!("{param:?} is not a parameter; one of: {}", names.join(", ")))
    })?;
    let lower = value.to_ascii_lowercase();
    let value = if lower.ends_with("toma") || lower.ends_with("base") {
        parse_toma(value).map_err(CliError::invalid)?
    } else {
        value.trim().parse::<u64>().map_err(|_| CliError::invalid(format!("{value:?} is not a number")))?
    };
    Ok((AdminOp::SetParameter { parameter, value }, format!("Set {param} to {value}")))
}

fn withdraw(ctx: &mut Ctx, w: WithdrawArgs, fee: bool) -> CliResult<(AdminOp, String)> {
    let recipient = match &w.to {
        Some(to) => ctx.keys()?.address(to)?,
        None => ctx.admin_signer()?.key.address(),
    };
    let which = if fee { "fee" } else { "communal" };
    let headline = format!(
        "Withdrew {} from the {which} treasury to {}",
        toma(u128::from(w.amount)),
        ctx.label(&recipient)
    );
    let op = if fee {
        AdminOp::WithdrawFeeTreasury { amount: w.amount, recipient }
    } else {
        AdminOp::WithdrawCommunalTreasury { amount: w.amount, recipient }
    };
    Ok((op, headline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_take_raw_numbers_or_toma() {
        let (op, _) = set("registration_collateral", "2000TOMA").expect("valid");
        assert_eq!(
            op,
            AdminOp::SetParameter { parameter: Parameter::RegistrationCollateral, value: 2_000_000_000_000 }
        );
        let (op, _) = set("stack_expiration_epochs", "3").expect("valid");
        assert_eq!(op, AdminOp::SetParameter { parameter: Parameter::StackExpirationEpochs, value: 3 });
        assert!(set("no_such_parameter", "1").is_err());
        assert!(set("stack_expiration_epochs", "x").is_err());
    }
}
