//! The methods of SPEC §13: one handler each, reading its parameters with [`Args`] and answering
//! with an `atoma-api` view or an [`atoma_api::rpc`] shape.
//!
//! Reads run on tokio's blocking pool (`register_blocking_method`): they take the state's read
//! lock or a redb read transaction, which a block commit can hold for an fsync, and the audit
//! and dry run walk or copy the whole state. Transactions and the local-network controls are
//! async: they wait for their block without holding a thread.

use atoma_api::rpc::{
    BalanceView, BlockView, ChainInfoView, ConsensusView, DryRunResult, EventPage, ExecutionStatus,
    NonceView, PeerView, TaskPage, TransactionData, TransactionResult,
};
use atoma_api::{
    AuditView, BadgeView, DbView, EventEnvelope, EventId as EventIdJson, ModelView, NodeView, StackLookup,
    TaskView, TicketView,
};
use atoma_contract::{Address, Call, ContractError, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_ledger::{ChainInfo, LedgerError, LocalNetwork};
use atoma_types::events::effective_limit;
use atoma_types::tx::MAX_TRANSACTION_SIZE;
use atoma_types::{Block, BlockHeader, Digest, EventId, EventRecord, SignedTransaction, TxOutcome};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonrpsee::RpcModule;
use jsonrpsee::core::RegisterMethodError;
use serde::Serialize;
use serde_json::Value;

use crate::error::{RpcError, RpcErrorName};
use crate::params::Args;
use crate::server::{Context, MAX_ADVANCE_CLOCK_MS};

type Handler = fn(&Context, &Args) -> Result<Value, RpcError>;

/// Every method, registered on one module.
pub(crate) fn module(context: Context) -> Result<RpcModule<Context>, RegisterMethodError> {
    let mut m = RpcModule::new(context);
    let reads: [(&'static str, &'static [&'static str], Handler); 18] = [
        ("atoma_dryRunTransaction", &["txBytes", "signature"], dry_run),
        ("atoma_getTransaction", &["digest"], get_transaction),
        ("atoma_getChainInfo", &[], |c, _| to_json(&chain_info(&c.node.chain_info()))),
        ("atoma_getLatestBlock", &[], |c, _| to_json(&block_view(&c.node.ledger().latest_block()?))),
        ("atoma_getBlock", &["height"], get_block),
        ("atoma_getBalance", &["address"], get_balance),
        ("atoma_getNonce", &["address"], get_nonce),
        ("atoma_getDb", &[], |c, _| to_json(&c.node.ledger().with_state(DbView::new))),
        ("atoma_getNode", &["node"], get_node),
        ("atoma_getTask", &["task"], get_task),
        ("atoma_listTasks", &["cursor", "limit"], list_tasks),
        ("atoma_getStack", &["stack"], get_stack),
        ("atoma_getSettlementTicket", &["stack"], get_settlement_ticket),
        ("atoma_getModel", &["name"], get_model),
        ("atoma_getOwnedBadges", &["owner"], get_owned_badges),
        ("atoma_audit", &[], |c, _| to_json(&c.node.ledger().with_state(AuditView::new))),
        ("atoma_getStateDigest", &[], |c, _| to_json(&c.node.ledger().with_chain_state(state_digest))),
        ("atoma_queryEvents", &["filter", "cursor", "limit", "descending"], query_events),
    ];
    for (name, params, handler) in reads {
        m.register_blocking_method(name, move |p, c, _| {
            serving(&c)?;
            Args::parse(&p, params).and_then(|args| handler(&c, &args))
        })?;
    }
    register_async(&mut m)?;
    crate::subscription::register(&mut m)?;
    Ok(m)
}

/// The methods that wait for a block.
fn register_async(m: &mut RpcModule<Context>) -> Result<(), RegisterMethodError> {
    m.register_async_method("atoma_executeTransaction", |p, c, _| async move {
        serving(&c)?;
        let signed = signed_transaction(&Args::parse(&p, &["txBytes", "signature"])?)?;
        let outcome = c.node.orderer().submit(signed).await?;
        to_json(&transaction_result(&c, &outcome, None))
    })?;
    m.register_async_method("atoma_faucet", |p, c, _| async move {
        let local = local_network(&c)?;
        let args = Args::parse(&p, &["address", "amount"])?;
        let recipient: Address = args.required(0)?;
        let amount = args.optional::<u64>(1)?.unwrap_or(c.config.faucet_default_amount);
        if amount == 0 || amount > c.config.faucet_max_amount {
            return Err(RpcError::invalid_params(format!(
                "invalid parameter `amount`: expected 1..={} base units",
                c.config.faucet_max_amount
            )));
        }
        let outcome = local.faucet(recipient, amount).await?;
        to_json(&transaction_result(&c, &outcome, None))
    })?;
    m.register_async_method("atoma_advanceEpoch", |p, c, _| async move {
        let local = local_network(&c)?;
        Args::parse(&p, &[])?;
        to_json(&header_view(&local.advance_epoch().await?))
    })?;
    m.register_async_method("atoma_advanceClock", |p, c, _| async move {
        let local = local_network(&c)?;
        let ms: u64 = Args::parse(&p, &["ms"])?.required(0)?;
        if ms > MAX_ADVANCE_CLOCK_MS {
            return Err(RpcError::invalid_params(format!(
                "invalid parameter `ms`: expected at most {MAX_ADVANCE_CLOCK_MS} (365 days)"
            )));
        }
        to_json(&header_view(&local.advance_clock(ms).await?))
    })?;
    Ok(())
}

/// The faucet and time controls, or `ENotLocalNetwork`.
fn local_network(c: &Context) -> Result<&dyn LocalNetwork, RpcError> {
    serving(c)?;
    c.node.orderer().local_network().ok_or_else(|| LedgerError::ENotLocalNetwork.into())
}

/// `Ok` while the node serves; its refusal once it stopped (a validator whose state diverged).
pub(crate) fn serving(c: &Context) -> Result<(), RpcError> {
    c.node.orderer().halted().map_or(Ok(()), |refusal| Err(refusal.into()))
}

fn to_json(value: &impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(format!("cannot encode the answer: {e}")))
}

/// `txBytes` and `signature` in base64, bounded before decoding.
fn signed_transaction(args: &Args) -> Result<SignedTransaction, RpcError> {
    let tx_bytes = base64_param(args, 0)?;
    let signature = base64_param(args, 1)?;
    Ok(SignedTransaction { tx_bytes, signature })
}

fn base64_param(args: &Args, index: usize) -> Result<Vec<u8>, RpcError> {
    let text: String = args.required(index)?;
    // Four characters carry three bytes; anything longer than the limit allows is refused
    // without decoding it.
    let size = text.len() / 4 * 3;
    if size > MAX_TRANSACTION_SIZE {
        return Err(LedgerError::ETransactionTooLarge { size, limit: MAX_TRANSACTION_SIZE }.into());
    }
    STANDARD.decode(text.as_bytes()).map_err(|e| {
        RpcError::invalid_params(format!("invalid parameter `{}`: not base64: {e}", args.name(index)))
    })
}

fn envelope(c: &Context, record: &EventRecord) -> EventEnvelope {
    EventEnvelope::new(
        c.package_id,
        record.id.tx_digest.0,
        record.id.event_seq,
        record.sender,
        record.timestamp_ms,
        &record.event,
    )
}

fn transaction_result(
    c: &Context,
    outcome: &TxOutcome,
    transaction: Option<TransactionData>,
) -> TransactionResult {
    let (status, error) = ExecutionStatus::of(&outcome.status);
    TransactionResult {
        digest: outcome.digest,
        status,
        error,
        sender: outcome.sender,
        block_height: outcome.height,
        tx_index: outcome.index,
        epoch: outcome.epoch,
        timestamp_ms: outcome.timestamp_ms,
        events: outcome.events.iter().map(|r| envelope(c, r)).collect(),
        transaction,
    }
}

fn dry_run(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let signed = signed_transaction(args)?;
    let sender = signed.decode_transaction()?.sender;
    let outcome = c.node.ledger().dry_run(signed)?;
    let (status, error) = ExecutionStatus::of(&outcome.status);
    let events = (0u64..)
        .zip(&outcome.events)
        .map(|(seq, event)| {
            EventEnvelope::new(c.package_id, outcome.digest.0, seq, sender, outcome.timestamp_ms, event)
        })
        .collect();
    to_json(&DryRunResult {
        digest: outcome.digest,
        status,
        error,
        epoch: outcome.epoch,
        timestamp_ms: outcome.timestamp_ms,
        events,
    })
}

fn get_transaction(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let digest: Digest = args.required(0)?;
    let found = c.node.ledger().transaction(&digest)?;
    let response = found.ok_or_else(|| RpcError::not_found_rpc(RpcErrorName::ETransactionNotFound))?;
    let data = response.signed.zip(response.transaction).map(|(signed, tx)| TransactionData {
        tx_bytes: signed.tx_bytes,
        signature: signed.signature,
        nonce: tx.nonce,
        call: call_name(&tx.call),
        arguments: serde_json::to_value(&tx.call).unwrap_or(Value::Null),
    });
    to_json(&transaction_result(c, &response.outcome, data))
}

/// The entry function's name: the `Call` variant, or `Admin::<op>` for admin calls.
pub(crate) fn call_name(call: &Call) -> String {
    fn variant(value: &Value) -> Option<&str> {
        match value {
            Value::String(name) => Some(name),
            Value::Object(map) if map.len() == 1 => map.keys().next().map(String::as_str),
            _ => None,
        }
    }
    let name = |value: Result<Value, serde_json::Error>| {
        value.ok().as_ref().and_then(variant).unwrap_or("Unknown").to_string()
    };
    match call {
        Call::Admin { op, .. } => format!("Admin::{}", name(serde_json::to_value(op))),
        other => name(serde_json::to_value(other)),
    }
}

fn chain_info(info: &ChainInfo) -> ChainInfoView {
    ChainInfoView {
        chain_id: info.chain_id,
        genesis_digest: info.genesis_digest,
        height: info.height,
        epoch: info.epoch,
        timestamp_ms: info.timestamp_ms,
        latest_block_digest: info.latest_block_digest,
        validator: info.validator,
        local_network: info.local_network,
        epoch_duration_ms: info.epoch_duration_ms,
        package_id: info.package_id,
        db_id: info.db_id,
        consensus: info.consensus.as_ref().map(|c| ConsensusView {
            engine: c.engine.clone(),
            validators: c.validators,
            max_faulty: c.max_faulty,
            index: c.index,
            view: c.view,
            finalized_height: c.finalized_height,
            leader: c.leader,
            peers: c.peers.iter().map(|&(index, height)| PeerView { index, height }).collect(),
            finalization_latency_ms: c.finalization_latency_ms,
        }),
    }
}

fn header_view(header: &BlockHeader) -> BlockView {
    BlockView {
        height: header.height,
        digest: header.digest(),
        parent_digest: header.parent_digest,
        timestamp_ms: header.timestamp_ms,
        epoch: header.epoch,
        random_seed: header.random_seed,
        transactions: header.tx_digests.clone(),
    }
}

fn block_view(block: &Block) -> BlockView {
    header_view(&block.header)
}

fn get_block(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let height: u64 = args.required(0)?;
    let block = c
        .node
        .ledger()
        .block(height)?
        .ok_or_else(|| RpcError::not_found_rpc(RpcErrorName::EBlockNotFound))?;
    to_json(&block_view(&block))
}

fn get_balance(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let address: Address = args.required(0)?;
    to_json(&BalanceView { address, balance: c.node.ledger().with_state(|db| db.balance(&address)) })
}

fn get_nonce(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let address: Address = args.required(0)?;
    to_json(&NonceView { address, nonce: c.node.orderer().next_nonce(&address) })
}

fn get_node(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let id: NodeSmallId = args.required(0)?;
    let view = c.node.ledger().with_chain_state(|s| NodeView::find(&s.db, id, s.ledger.epoch));
    to_json(&view.ok_or_else(|| RpcError::not_found(ContractError::ENodeNotFound))?)
}

fn get_task(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let id: TaskSmallId = args.required(0)?;
    let view = c.node.ledger().with_state(|db| TaskView::find(db, id));
    to_json(&view.ok_or_else(|| RpcError::not_found(ContractError::ETaskNotFound))?)
}

fn list_tasks(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let cursor: Option<TaskSmallId> = args.optional(0)?;
    let limit = effective_limit(args.optional::<u64>(1)?.map(|l| usize::try_from(l).unwrap_or(usize::MAX)));
    // The cursor is exclusive: the page starts after it.
    let from = match cursor {
        None => Some(0),
        Some(id) => id.0.checked_add(1),
    };
    let mut data: Vec<TaskView> = match from {
        Some(from) => c.node.ledger().with_state(|db| {
            db.tasks_from(TaskSmallId(from))
                .take(limit.saturating_add(1))
                .map(|t| TaskView::new(db, t))
                .collect()
        }),
        None => Vec::new(),
    };
    let has_next_page = data.len() > limit;
    data.truncate(limit);
    let next_cursor = data.last().map(|t| t.small_id.0).or(cursor.map(|c| c.0));
    to_json(&TaskPage { data, next_cursor, has_next_page })
}

fn get_stack(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let id: StackSmallId = args.required(0)?;
    let view = c.node.ledger().with_state(|db| StackLookup::find(db, id));
    to_json(&view.ok_or_else(|| RpcError::not_found(ContractError::EStackNotFound))?)
}

fn get_settlement_ticket(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let id: StackSmallId = args.required(0)?;
    let found = c.node.ledger().with_state(|db| TicketView::find(db, id).ok_or(db.stack(id).is_some()));
    match found {
        Ok(view) => to_json(&view),
        Err(true) => Err(RpcError::not_found(ContractError::ENoSettlementTicket)),
        Err(false) => Err(RpcError::not_found(ContractError::EStackNotFound)),
    }
}

fn get_model(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let name: String = args.required(0)?;
    let view = c.node.ledger().with_state(|db| ModelView::find(db, &name));
    to_json(&view.ok_or_else(|| RpcError::not_found(ContractError::EModelNotFound))?)
}

fn get_owned_badges(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let owner: Address = args.required(0)?;
    to_json(&c.node.ledger().with_state(|db| BadgeView::owned_by(db, &owner)))
}

fn query_events(c: &Context, args: &Args) -> Result<Value, RpcError> {
    let filter = args.filter(0)?;
    let cursor: Option<EventId> = args.optional(1)?;
    let limit = args.optional::<u64>(2)?.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let descending = args.optional::<bool>(3)?.unwrap_or(false);
    let page = c.node.ledger().query_events(&filter, cursor, limit, descending)?;
    to_json(&EventPage {
        data: page.data.iter().map(|r| envelope(c, r)).collect(),
        next_cursor: page.next_cursor.map(|id| EventIdJson::new(&id.tx_digest.0, id.event_seq)),
        has_next_page: page.has_next_page,
    })
}

/// The state's digest with the block it follows, read under one lock.
fn state_digest(state: &atoma_ledger::state::ChainState) -> atoma_api::rpc::StateDigestView {
    atoma_api::rpc::StateDigestView {
        height: state.ledger.height,
        block_digest: state.ledger.block_digest,
        state_digest: state.digest(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoma_contract::AdminOp;

    #[test]
    fn call_names_are_variant_names() {
        let register = Call::RegisterNode { collateral: 1, supported_optimizations: 0 };
        assert_eq!(call_name(&register), "RegisterNode");
        let admin = |op| Call::Admin { manager_badge: atoma_contract::ObjectId([0; 32]), op };
        assert_eq!(call_name(&admin(AdminOp::DisableRegistration)), "Admin::DisableRegistration");
        assert_eq!(call_name(&admin(AdminOp::AddModel { name: "m".into(), modality: 0 })), "Admin::AddModel");
    }
}
