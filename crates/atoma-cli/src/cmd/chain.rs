//! Accounts and the chain: faucet, balance, transfer, badges, status, audit, transactions, and
//! moving time on a local network.

use atoma_api::rpc::{BlockView, ConsensusView};
use atoma_contract::{Call, ObjectId};
use atoma_types::Digest;
use serde_json::json;

use crate::cli::{BadgeCmd, ClockCmd, Command, EpochCmd, FaucetArgs};
use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::format::{fields, short_id, toma};
use crate::output::Report;
use crate::render;

/// Runs the commands that are not in a group of their own.
///
/// # Errors
/// The named error of the failing call.
pub async fn run(ctx: &mut Ctx, command: Command) -> CliResult<Report> {
    match command {
        Command::Faucet(args) => faucet(ctx, args).await,
        Command::Balance { who } => balance(ctx, who.as_deref()).await,
        Command::Transfer { to, amount } => {
            let recipient = ctx.keys()?.address(&to)?;
            let (signer, result) = ctx.submit(Call::TransferToma { recipient, amount }).await?;
            let headline = format!("Sent {} to {}", toma(u128::from(amount)), ctx.label(&recipient));
            Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
        }
        Command::Badge(cmd) => badge(ctx, cmd).await,
        Command::Status => status(ctx).await,
        Command::Audit => {
            let rpc = ctx.rpc()?;
            Ok(render::audit(&rpc.check(rpc.client().audit().await)?))
        }
        Command::Tx { digest } => transaction(ctx, &digest).await,
        Command::Epoch(EpochCmd::Advance) => {
            let rpc = ctx.rpc()?;
            let block = rpc.check(rpc.client().advance_epoch().await)?;
            Ok(block_report("Advanced to", &block))
        }
        Command::Clock(ClockCmd::Advance { ms }) => {
            let rpc = ctx.rpc()?;
            let block = rpc.check(rpc.client().advance_clock(ms).await)?;
            Ok(block_report(&format!("Moved the clock {ms} ms forward:"), &block))
        }
        other => Err(CliError::invalid(format!("{other:?} is handled elsewhere"))),
    }
}

async fn faucet(ctx: &mut Ctx, args: FaucetArgs) -> CliResult<Report> {
    let to = ctx.address_or_signer(args.to.as_deref())?;
    let result = ctx.rpc()?.faucet(&to, args.amount).await?;
    let sent = result
        .events
        .iter()
        .find(|e| e.event_name() == "TomaTransferredEvent")
        .and_then(|e| e.parsed_json.get("amount"))
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse::<u128>().ok())
        .unwrap_or_default();
    let headline = format!("Sent {} from the faucet to {}", toma(sent), ctx.label(&to));
    Ok(render::transaction(&headline, "faucet", &result, &ctx.labels()))
}

async fn balance(ctx: &mut Ctx, who: Option<&str>) -> CliResult<Report> {
    let address = ctx.address_or_signer(who)?;
    let label = ctx.label(&address);
    let rpc = ctx.rpc()?;
    let balance = rpc.check(rpc.client().get_balance(&address).await)?;
    let json = json!({"address": address.to_string(), "label": label, "balance": balance.to_string()});
    Ok(Report::new(
        json,
        format!("{label} ({}): {}", short_id(&address.to_string()), toma(u128::from(balance))),
    ))
}

async fn badge(ctx: &mut Ctx, cmd: BadgeCmd) -> CliResult<Report> {
    match cmd {
        BadgeCmd::List { who } => {
            let owner = ctx.address_or_signer(who.as_deref())?;
            let label = ctx.label(&owner);
            let rpc = ctx.rpc()?;
            let badges = rpc.check(rpc.client().get_owned_badges(&owner).await)?;
            Ok(render::badges(&label, &badges))
        }
        BadgeCmd::Transfer { badge, to } => {
            let badge: ObjectId = badge.parse().map_err(|e| CliError::invalid(format!("badge: {e}")))?;
            let recipient = ctx.keys()?.address(&to)?;
            let (signer, result) = ctx.submit(Call::TransferBadge { badge, recipient }).await?;
            let headline =
                format!("Gave badge {} to {}", short_id(&badge.to_string()), ctx.label(&recipient));
            Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
        }
    }
}

async fn status(ctx: &mut Ctx) -> CliResult<Report> {
    let signer = ctx.signer().ok();
    let rpc = ctx.rpc()?;
    let info = rpc.check(rpc.client().get_chain_info().await)?;
    let db = rpc.check(rpc.client().get_db().await)?;
    let state = rpc.check(rpc.client().get_state_digest().await)?;
    let signer_balance = match &signer {
        Some(s) => Some(rpc.check(rpc.client().get_balance(&s.key.address()).await)?),
        None => None,
    };
    let url = ctx.global.rpc.clone();
    let signer_json = signer.as_ref().map(|s| {
        json!({"alias": s.alias, "address": s.key.address().to_string(),
               "balance": signer_balance.unwrap_or_default().to_string()})
    });
    let json = json!({"rpcUrl": url, "chain": render::to_json(&info), "db": render::to_json(&db),
                      "state": render::to_json(&state), "signer": signer_json});
    let signer_text = match (&signer, signer_balance) {
        (Some(s), Some(b)) => {
            format!("{} ({}), {}", s.alias, short_id(&s.key.address().to_string()), toma(u128::from(b)))
        }
        _ => "none (no account in the keystore; see `atoma keys list`)".into(),
    };
    let mut rows = vec![
        ("rpc", url),
        ("chain id", info.chain_id.to_string()),
        ("network", if info.local_network { "local".into() } else { "not local".into() }),
    ];
    if let Some(set) = &info.consensus {
        rows.extend(validator_set(set, info.height));
    }
    rows.extend([
        ("height", info.height.to_string()),
        ("state digest", format!("{} (after block {})", state.state_digest, state.height)),
        ("epoch", format!("{} (epochs last {} ms)", info.epoch, info.epoch_duration_ms)),
        ("nodes", db.next_node_small_id.saturating_sub(1).to_string()),
        ("tasks", db.next_task_small_id.saturating_sub(1).to_string()),
        ("stacks", db.next_stack_small_id.saturating_sub(1).to_string()),
        ("fee treasury", toma(u128::from(db.fee_treasury))),
        ("communal treasury", toma(u128::from(db.communal_treasury))),
        ("registration", if db.config.registration_enabled { "open".into() } else { "closed".into() }),
        ("key rotation", db.key_rotation_counter.to_string()),
        ("signer", signer_text),
    ]);
    Ok(Report::new(json, fields(&rows)))
}

/// `atoma status`'s rows for a validator set.
fn validator_set(set: &ConsensusView, height: u64) -> [(&'static str, String); 3] {
    let leader = set.leader.map_or("not seen yet".into(), |l| format!("validator {l}"));
    let others = set.validators.saturating_sub(1);
    let peers = set.peers.iter().map(|p| format!("{} at height {}", p.index, p.height)).collect::<Vec<_>>();
    let peers = if peers.is_empty() { String::new() } else { format!(": {}", peers.join(", ")) };
    [
        (
            "validators",
            format!(
                "{} ({}, tolerates {} faulty); this is validator {}",
                set.validators, set.engine, set.max_faulty, set.index
            ),
        ),
        (
            "consensus",
            format!(
                "view {}, finalized height {} (executed here: {height}), leader {leader}, \
                 {} ms from proposal to execution",
                set.view, set.finalized_height, set.finalization_latency_ms
            ),
        ),
        ("peers alive", format!("{} of {others}{peers}", set.peers.len())),
    ]
}

async fn transaction(ctx: &mut Ctx, digest: &str) -> CliResult<Report> {
    let digest: Digest = digest.parse().map_err(|e| CliError::invalid(format!("{digest:?}: {e}")))?;
    let rpc = ctx.rpc()?;
    let result = rpc.check(rpc.client().get_transaction(&digest).await)?;
    let sender = ctx.label(&result.sender);
    let headline = match &result.error {
        None => format!("Transaction {digest}: success"),
        Some(e) => format!("Transaction {digest}: failed with {} ({}): {}", e.name, e.code, e.message),
    };
    Ok(render::transaction(&headline, &sender, &result, &ctx.labels()))
}

fn block_report(verb: &str, block: &BlockView) -> Report {
    let text =
        format!("{verb} epoch {} (block {}, time {} ms)", block.epoch, block.height, block.timestamp_ms);
    Report::new(render::to_json(block), text)
}
