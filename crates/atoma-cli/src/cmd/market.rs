//! `atoma task …`, `atoma stack …`, `atoma model …`: SPEC §5.2, §5.3 and the owner's side of
//! §5.4.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use atoma_agent::token::StackToken;
use atoma_api::{ModelView, StackLookup};
use atoma_contract::{Call, ContractError, StackSmallId, TaskSmallId};
use atoma_types::EventFilter;
use atoma_types::events::MAX_PAGE_LIMIT;
use serde_json::json;

use crate::cli::{ModelCmd, StackCmd, TaskCmd};
use crate::context::Ctx;
use crate::error::{CliError, CliResult};
use crate::format::Table;
use crate::names::{modality_name, role_name, security_name};
use crate::output::Report;
use crate::render;

/// The most pages `model list` reads from the event log.
const MAX_MODEL_PAGES: usize = 100;

/// Runs a `task` subcommand.
///
/// # Errors
/// The named error of the failing call.
pub async fn task(ctx: &mut Ctx, cmd: TaskCmd) -> CliResult<Report> {
    let (call, headline) = match cmd {
        TaskCmd::Show { task } => {
            let rpc = ctx.rpc()?;
            return Ok(render::task(&rpc.check(rpc.client().get_task(TaskSmallId(task)).await)?));
        }
        TaskCmd::List { cursor, limit } => return list_tasks(ctx, cursor, limit).await,
        TaskCmd::Create { role, model, security, min_reputation, optimizations } => {
            let what = format!(
                "{} task, {} security{}",
                role_name(role),
                security_name(security),
                model.as_ref().map(|m| format!(", model {m}")).unwrap_or_default()
            );
            let call = Call::CreateTask {
                role,
                model_name: model,
                security_level: security,
                minimum_reputation_score: min_reputation,
                required_optimizations: optimizations,
            };
            (call, what)
        }
        TaskCmd::Deprecate { task } => {
            (Call::DeprecateTask { task: TaskSmallId(task) }, format!("Deprecated task {task}"))
        }
        TaskCmd::Remove { task } => {
            (Call::RemoveDeprecatedTask { task: TaskSmallId(task) }, format!("Removed task {task}"))
        }
    };
    let (signer, result) = ctx.submit(call).await?;
    let headline = match render::created(&result.events).get("task").and_then(|v| v.as_str()) {
        Some(id) => format!("Created task {id}: {headline}"),
        None => headline,
    };
    Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
}

async fn list_tasks(ctx: &mut Ctx, cursor: Option<u64>, limit: usize) -> CliResult<Report> {
    let rpc = ctx.rpc()?;
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let page = rpc.check(rpc.client().list_tasks(cursor.map(TaskSmallId), Some(limit)).await)?;
    let mut text = render::task_table(&page.data);
    if let (true, Some(next)) = (page.has_next_page, page.next_cursor) {
        text.push_str(&format!("\n\nmore: --cursor {next}"));
    }
    Ok(Report::new(render::to_json(&page), text))
}

/// `atoma stack token`: a stack token signed by the signer, who must own the stack.
async fn stack_token(ctx: &mut Ctx, stack: u64, valid_hours: u64) -> CliResult<Report> {
    let signer = ctx.signer()?;
    let rpc = ctx.rpc()?;
    let view = match rpc.check(rpc.client().get_stack(StackSmallId(stack)).await)? {
        StackLookup::Open(view) => view,
        StackLookup::Closed(_) => return Err(CliError::invalid(format!("stack {stack} is closed"))),
    };
    let owner = signer.key.address();
    if view.owner != Some(owner) {
        let holder = view.owner.map_or_else(|| "nobody".to_string(), |o| ctx.label(&o));
        return Err(CliError::invalid(format!(
            "stack {stack} belongs to {holder}, not to the signer {} (choose the owner with --as)",
            signer.alias
        )));
    }
    let chain_id = rpc.check(rpc.client().get_chain_info().await)?.chain_id.0;
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis())
        .unwrap_or(u64::MAX);
    let not_after_ms = now_ms.saturating_add(valid_hours.saturating_mul(3_600_000));
    let token = StackToken { chain_id, stack, owner, not_after_ms }.sign(&signer.key);
    let json = json!({"token": token, "stack": stack, "owner": owner.to_string(),
                      "notAfterMs": not_after_ms.to_string(), "selectedNode": view.selected_node.0});
    let text = format!(
        "{token}\n\nThe API key for stack {stack} (node {}), signed by {}, good for {valid_hours} h. Use it as\n\
         OpenAI(base_url=\"<the node's agent>/v1\", api_key=\"<this token>\")",
        view.selected_node.0, signer.alias
    );
    Ok(Report::new(json, text))
}

/// Runs a `stack` subcommand.
///
/// # Errors
/// The named error of the failing call.
pub async fn stack(ctx: &mut Ctx, cmd: StackCmd) -> CliResult<Report> {
    let (call, headline) = match cmd {
        StackCmd::Show { stack } => {
            let rpc = ctx.rpc()?;
            return Ok(render::stack(&rpc.check(rpc.client().get_stack(StackSmallId(stack)).await)?));
        }
        StackCmd::Token { stack, valid_hours } => return stack_token(ctx, stack, valid_hours).await,
        StackCmd::Ticket { stack } => {
            let rpc = ctx.rpc()?;
            return Ok(render::ticket(
                &rpc.check(rpc.client().get_settlement_ticket(StackSmallId(stack)).await)?,
            ));
        }
        StackCmd::Buy { task, units, max_price } => (
            Call::AcquireNewStack {
                task: TaskSmallId(task),
                num_compute_units: units,
                max_price_per_compute_unit: max_price,
            },
            String::new(),
        ),
        StackCmd::Contest { stack, units } => (
            Call::ContestClaimedUnits { stack: StackSmallId(stack), counted_units: units },
            format!("Contested stack {stack}: you counted {units} units"),
        ),
        StackCmd::Reclaim { stack } => {
            (Call::ReclaimExpiredStack { stack: StackSmallId(stack) }, format!("Reclaimed stack {stack}"))
        }
        StackCmd::ExpireDispute { stack } => (
            Call::ExpireDispute { stack: StackSmallId(stack) },
            format!("Expired the dispute of stack {stack}"),
        ),
    };
    let (signer, result) = ctx.submit(call).await?;
    let headline = if headline.is_empty() { bought(&result) } else { headline };
    Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
}

/// "Bought stack 3: 100 units from node 2 at 5 base units each".
fn bought(result: &atoma_api::rpc::TransactionResult) -> String {
    let created = render::created(&result.events);
    let get = |k: &str| created.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    let units = result
        .events
        .iter()
        .find_map(|e| e.parsed_json.get("num_compute_units").and_then(|v| v.as_str()))
        .unwrap_or("?");
    format!(
        "Bought stack {}: {units} compute units from node {} at {} base units each",
        get("stack"),
        get("selectedNode"),
        get("price")
    )
}

/// Runs a `model` subcommand.
///
/// # Errors
/// `EModelNotFound`; transport errors.
pub async fn model(ctx: &mut Ctx, cmd: ModelCmd) -> CliResult<Report> {
    match cmd {
        ModelCmd::Show { name } => {
            let rpc = ctx.rpc()?;
            Ok(render::model(&rpc.check(rpc.client().get_model(&name).await)?))
        }
        ModelCmd::List => list_models(ctx).await,
    }
}

/// The RPC has no model listing: the names come from `ModelAddedEvent`s, and each model that
/// still exists is fetched.
async fn list_models(ctx: &mut Ctx) -> CliResult<Report> {
    let rpc = ctx.rpc()?;
    let filter = EventFilter::EventType("ModelAddedEvent".into());
    let mut names = BTreeSet::new();
    let mut cursor = None;
    let page_limit = u64::try_from(MAX_PAGE_LIMIT).unwrap_or(u64::MAX);
    for _ in 0..MAX_MODEL_PAGES {
        let page =
            rpc.check(rpc.client().query_events(&filter, cursor.as_ref(), Some(page_limit), false).await)?;
        names.extend(
            page.data.iter().filter_map(|e| e.parsed_json.get("model_name")?.as_str().map(str::to_string)),
        );
        if !page.has_next_page {
            break;
        }
        cursor = page.next_cursor;
    }
    let mut models: Vec<ModelView> = Vec::new();
    for name in names {
        match rpc.client().get_model(&name).await {
            Ok(model) => models.push(model),
            Err(e) if e.name() == Some(ContractError::EModelNotFound.name()) => {}
            Err(e) => return Err(rpc.error(e)),
        }
    }
    let mut table = Table::new(&["MODEL", "MODALITY", "ENABLED", "ECHELONS"]);
    for m in &models {
        let echelons: Vec<String> = m.echelons.iter().map(|e| e.id.to_string()).collect();
        table.row(vec![
            m.name.clone(),
            modality_name(m.modality),
            m.enabled.to_string(),
            if echelons.is_empty() { "-".into() } else { echelons.join(",") },
        ]);
    }
    let text = if table.is_empty() { "no models".into() } else { table.render() };
    Ok(Report::new(json!({ "models": render::to_json(&models), "count": models.len() }), text))
}
