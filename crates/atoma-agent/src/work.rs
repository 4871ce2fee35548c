//! What the agent does on its own (docs/AGENT.md §5–§6): it records the chain's events that
//! concern its nodes, and a worker settles, attests, resolves and claims.
//!
//! The event handler only writes records, in the transaction that moves the cursor; everything
//! that needs the chain or a backend is the worker's, which looks at the records every
//! [`TICK`] and does what is due. Every transaction goes through [`Shared::send`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atoma_api::{EventEnvelope, StackLookup, TicketStatusView};
use atoma_client::ClientError;
use atoma_contract::commitment::{party_commitment, settlement_commitment};
use atoma_contract::enums::SecurityLevel;
use atoma_contract::{Call, NodeSmallId, StackSmallId};
use redb::WriteTransaction;
use serde_json::Value;
use tokio::sync::watch;

use crate::agent::{AgentError, Shared, lock, now_ms};
use crate::records::{
    Phase, Purpose, StackRecord, add_attestation_in, add_dispute_in, count_in, put_stack_in, stack_in,
};
use crate::token::TranscriptRequest;
use crate::upstream::{self, Endpoint};

/// How often the worker looks for work.
pub const TICK: Duration = Duration::from_millis(250);
/// A stack is settled this many epochs before it could be reclaimed as expired.
pub const EXPIRY_MARGIN_EPOCHS: u64 = 1;
/// How long a transcript request is good for.
const TRANSCRIPT_REQUEST_TTL_MS: u64 = 60_000;

fn small(json: &Value, field: &str) -> Option<u64> {
    json.get(field)?.get("inner")?.as_str()?.parse().ok()
}

fn number(json: &Value, field: &str) -> Option<u64> {
    json.get(field)?.as_str()?.parse().ok()
}

fn smalls(json: &Value, field: &str) -> Vec<u64> {
    json.get(field)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|i| i.get("inner")?.as_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Records what the chain's events mean for the agent's nodes.
pub struct EventHandler {
    /// The agent.
    pub shared: Arc<Shared>,
}

impl crate::follow::Handler for EventHandler {
    fn handle(&mut self, event: &EventEnvelope, txn: &WriteTransaction) -> Result<(), String> {
        self.record(event, txn).map_err(|e| e.to_string())
    }
}

impl EventHandler {
    fn record(&self, event: &EventEnvelope, txn: &WriteTransaction) -> Result<(), crate::store::StoreError> {
        let json = &event.parsed_json;
        let ours = |node: Option<u64>| node.is_some_and(|n| self.shared.ours(n));
        match event.event_name() {
            "StackCreatedEvent" if ours(small(json, "selected_node")) => {
                let (Some(stack), Some(node), Some(task), Some(units)) = (
                    small(json, "small_id"),
                    small(json, "selected_node"),
                    small(json, "task_small_id"),
                    number(json, "num_compute_units"),
                ) else {
                    return Ok(());
                };
                if stack_in(txn, stack)?.is_none() {
                    tracing::info!(stack, node, units, "a stack was sampled to our node");
                    let record = StackRecord {
                        node,
                        task,
                        units,
                        used: 0,
                        requests: 0,
                        last_used_ms: 0,
                        phase: Phase::Serving,
                        outcome: None,
                    };
                    put_stack_in(txn, stack, &record)?;
                }
            }
            "StackTrySettleEvent" => {
                let Some(stack) = small(json, "stack_small_id") else { return Ok(()) };
                if let Some(mut record) = stack_in(txn, stack)?
                    && record.phase != Phase::Closed
                {
                    record.phase = Phase::Settled;
                    put_stack_in(txn, stack, &record)?;
                }
                for attester in smalls(json, "requested_attestation_nodes") {
                    if self.shared.ours(attester) {
                        tracing::info!(stack, node = attester, "our node is asked to attest");
                        add_attestation_in(txn, stack, attester)?;
                    }
                }
            }
            "StackAttestationDisputeEvent" | "StackUnitsContestedEvent" => {
                if let Some(stack) = small(json, "stack_small_id") {
                    add_dispute_in(txn, stack)?;
                }
            }
            "StackSettlementTicketClaimedEvent" | "StackExpiredEvent" => {
                let Some(stack) = small(json, "stack_small_id") else { return Ok(()) };
                if let Some(mut record) = stack_in(txn, stack)? {
                    record.phase = Phase::Closed;
                    let claimed = event.event_name() == "StackSettlementTicketClaimedEvent";
                    if claimed {
                        count_in(
                            txn,
                            "units_claimed",
                            number(json, "num_claimed_compute_units").unwrap_or(0),
                        )?;
                    }
                    record.outcome = Some(if claimed { "claimed" } else { "expired" }.into());
                    put_stack_in(txn, stack, &record)?;
                    self.shared.forget_stack(stack);
                }
            }
            "StackDisputeResolvedEvent" => {
                let Some(stack) = small(json, "stack_small_id") else { return Ok(()) };
                let right = json.get("selected_node_was_right").and_then(Value::as_bool).unwrap_or(true);
                if let Some(mut record) = stack_in(txn, stack)?
                    && !right
                {
                    record.phase = Phase::Closed;
                    record.outcome = Some("overturned by an oracle".into());
                    put_stack_in(txn, stack, &record)?;
                    self.shared.forget_stack(stack);
                }
                for node in smalls(json, "slashed_nodes") {
                    if self.shared.ours(node) {
                        tracing::warn!(stack, node, "an oracle slashed our node");
                        count_in(txn, "slashed", 1)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Announces the agent's public URL for each node whose endpoint on chain is another.
pub async fn announce(shared: &Shared) {
    let url = shared.public_url.clone();
    for &node in shared.nodes.keys() {
        let current = match shared.client.get_node(NodeSmallId(node)).await {
            Ok(view) => view.endpoint,
            Err(error) => {
                tracing::warn!(node, %error, "cannot read the node's endpoint");
                continue;
            }
        };
        if current.as_deref() == Some(url.as_str()) {
            continue;
        }
        let call = Call::SetNodeEndpoint { node: NodeSmallId(node), url: url.clone() };
        match shared.send(node, call, Purpose::Endpoint { node }).await {
            Ok(result) => tracing::info!(node, %url, status = ?result.status, "announced the endpoint"),
            Err(error) => tracing::warn!(node, %error, "cannot announce the endpoint"),
        }
    }
}

/// The worker: every [`TICK`], does what is due, until `stop` turns true.
///
/// # Errors
/// Never for chain trouble (logged and retried); a store failure stops it.
pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Result<(), AgentError> {
    loop {
        if let Err(error) = tick(&shared).await {
            match error {
                Trouble::Store(e) => return Err(AgentError::Store(e)),
                Trouble::Chain(e) => tracing::debug!(error = %e, "the worker will try again"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}

/// What interrupts a tick.
enum Trouble {
    Store(crate::store::StoreError),
    Chain(ClientError),
}

impl From<crate::store::StoreError> for Trouble {
    fn from(e: crate::store::StoreError) -> Self {
        Trouble::Store(e)
    }
}

impl From<ClientError> for Trouble {
    fn from(e: ClientError) -> Self {
        Trouble::Chain(e)
    }
}

async fn tick(shared: &Arc<Shared>) -> Result<(), Trouble> {
    // A transaction sent before a crash or a lost connection is accounted for first: a stack
    // whose settlement landed is settled, not settled again.
    shared.settle_recorded().await?;
    let info = shared.client.get_chain_info().await?;
    let (epoch, chain_ms) = (info.epoch, info.timestamp_ms);
    let mut claims: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (stack, record) in shared.store.stacks()? {
        // A node dropped from the configuration since the stack was recorded is left alone.
        if !shared.ours(record.node) {
            continue;
        }
        match record.phase {
            Phase::Serving => {
                if due_for_settlement(shared, stack, &record, epoch).await? {
                    settle(shared, stack).await?;
                }
            }
            Phase::Settling => settle(shared, stack).await?,
            Phase::Settled => {
                if claimable(shared, stack, epoch, chain_ms).await? {
                    claims.entry(record.node).or_default().push(stack);
                }
            }
            Phase::Closed => {}
        }
    }
    for (node, stacks) in claims {
        for batch in stacks.chunks(usize::from(u8::MAX) + 1) {
            let call = Call::ClaimFunds {
                node: NodeSmallId(node),
                stacks: batch.iter().map(|s| StackSmallId(*s)).collect(),
            };
            shared.send(node, call, Purpose::Claim { node, stacks: batch.to_vec() }).await?;
        }
    }
    for (stack, node) in shared.store.attestation_jobs()? {
        if let Err(error) = attest(shared, stack, node, epoch, chain_ms).await {
            match error {
                Trouble::Store(e) => return Err(Trouble::Store(e)),
                Trouble::Chain(e) => tracing::info!(stack, node, error = %e, "attestation not done yet"),
            }
        }
    }
    for stack in shared.store.dispute_jobs()? {
        if let Err(error) = resolve(shared, stack).await {
            match error {
                Trouble::Store(e) => return Err(Trouble::Store(e)),
                Trouble::Chain(e) => tracing::info!(stack, error = %e, "dispute not resolved yet"),
            }
        }
    }
    Ok(())
}

/// Units used up, idle long enough, or close to expiry — with something served.
async fn due_for_settlement(
    shared: &Shared,
    stack: u64,
    record: &StackRecord,
    epoch: u64,
) -> Result<bool, Trouble> {
    if record.used == 0 {
        return Ok(false);
    }
    if record.used >= record.units {
        return Ok(true);
    }
    let idle_ms = shared.config.idle_settle_secs.saturating_mul(1_000);
    if now_ms().saturating_sub(record.last_used_ms) >= idle_ms {
        return Ok(true);
    }
    let Some(view) = shared.stack_terms(stack).await? else { return Ok(true) };
    let expires = view.created_epoch.saturating_add(view.terms.stack_expiration_epochs);
    Ok(epoch.saturating_add(EXPIRY_MARGIN_EPOCHS) >= expires)
}

/// Stops serving the stack (once no request is in flight) and sends its settlement.
async fn settle(shared: &Shared, stack: u64) -> Result<(), Trouble> {
    {
        let reserved = lock(&shared.reserved);
        if reserved.get(&stack).is_some_and(|held| *held > 0) {
            return Ok(());
        }
        shared.store.write(|txn| {
            if let Some(mut record) = stack_in(txn, stack)?
                && record.phase == Phase::Serving
            {
                record.phase = Phase::Settling;
                put_stack_in(txn, stack, &record)?;
            }
            Ok(())
        })?;
    }
    let Some(record) = shared.store.stack(stack)? else { return Ok(()) };
    let Some(view) = shared.stack_terms(stack).await? else {
        close(shared, stack, "closed before it was settled")?;
        return Ok(());
    };
    let requests: Vec<(Vec<u8>, Vec<u8>)> =
        shared.store.exchanges(stack)?.into_iter().map(|e| (e.input, e.output)).collect();
    let k = view.terms.cross_validation_extra_nodes_count;
    let Ok((proof, leaf)) = settlement_commitment(&requests, k) else {
        close(shared, stack, "a request is too large to commit to")?;
        return Ok(());
    };
    let units = record.used.min(record.units);
    let tee_signature = if view.security_level == SecurityLevel::ConfidentialCompute.to_wire() {
        let enclave = shared.nodes.get(&record.node).and_then(|k| k.enclave.as_ref());
        let Some(enclave) = enclave else {
            close(
                shared,
                stack,
                "confidential compute needs the node's enclave key, which the agent does not have",
            )?;
            return Ok(());
        };
        Some(atoma_contract::tee::sign_settlement(enclave.signing_key(), StackSmallId(stack), units, &proof))
    } else {
        None
    };
    tracing::info!(stack, units, requests = requests.len(), "settling");
    let call = Call::TrySettleStack {
        node: NodeSmallId(record.node),
        stack: StackSmallId(stack),
        num_claimed_compute_units: units,
        committed_stack_proof: proof.to_vec(),
        stack_merkle_leaf: leaf.to_vec(),
        tee_signature,
    };
    shared.send(record.node, call, Purpose::Settle { stack }).await?;
    Ok(())
}

fn close(shared: &Shared, stack: u64, why: &str) -> Result<(), crate::store::StoreError> {
    tracing::warn!(stack, why, "stack closed without a settlement");
    shared.forget_stack(stack);
    shared.store.write(|txn| {
        if let Some(mut record) = stack_in(txn, stack)? {
            record.phase = Phase::Closed;
            record.outcome = Some(why.into());
            put_stack_in(txn, stack, &record)?;
        }
        Ok(())
    })
}

/// Whether a settled stack's ticket can be claimed in the next block, judged by the last block's
/// epoch and by the later of its timestamp and our clock (the next block is no earlier than
/// either, clocks agreeing); a stack that closed is recorded so. A claim sent a little early is
/// refused and sent again at a later tick.
async fn claimable(shared: &Shared, stack: u64, epoch: u64, chain_ms: u64) -> Result<bool, Trouble> {
    let view = match shared.client.get_stack(StackSmallId(stack)).await? {
        StackLookup::Open(view) => view,
        StackLookup::Closed(_) => {
            close(shared, stack, "closed")?;
            return Ok(false);
        }
    };
    let at = chain_ms.max(now_ms());
    Ok(view.settlement_ticket.is_some_and(|ticket| ticket.claimable(epoch, at)))
}

/// The transcript of a stack, fetched from its selected node's agent as `node`, with every
/// input run again on our own backend: `(inputs, our outputs)` and the units our backend counted.
async fn rerun(
    shared: &Shared,
    stack: u64,
    selected: u64,
    node: u64,
    task: u64,
) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, u64), Trouble> {
    let unavailable =
        |reason: String| Trouble::Chain(ClientError::Decode { method: "transcript".into(), reason });
    let endpoint = shared
        .client
        .get_node(NodeSmallId(selected))
        .await?
        .endpoint
        .ok_or_else(|| unavailable(format!("node {selected} announced no endpoint")))?;
    let keys =
        shared.nodes.get(&node).ok_or_else(|| unavailable(format!("node {node} is not operated here")))?;
    let request = TranscriptRequest {
        chain_id: shared.chain_id,
        stack,
        node,
        signer: keys.owner.address(),
        not_after_ms: now_ms().saturating_add(TRANSCRIPT_REQUEST_TTL_MS),
    };
    let url = format!("{}/atoma/v1/stacks/{stack}/transcript", endpoint.trim_end_matches('/'));
    let response = shared
        .http
        .get(&url)
        .bearer_auth(request.sign(&keys.owner))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| unavailable(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(unavailable(format!("{url} answered {status}: {text}")));
    }
    let body: Value = response.json().await.map_err(|e| unavailable(format!("{url}: {e}")))?;
    let model = shared.task_model(task).await?;
    let backend = model
        .as_ref()
        .and_then(|m| shared.config.models.get(m))
        .ok_or_else(|| unavailable(format!("no backend is configured for the model {model:?}")))?;
    let empty = Vec::new();
    let mut requests = Vec::new();
    let mut units = 0u64;
    for item in body.get("requests").and_then(Value::as_array).unwrap_or(&empty) {
        let path = item.get("endpoint").and_then(Value::as_str).unwrap_or_default();
        let input = item.get("input").and_then(Value::as_str).unwrap_or_default().as_bytes().to_vec();
        // A request of a kind we do not serve cannot be re-run: its output stays empty, and
        // the commitment differs from the selected node's, as it should.
        let output = match Endpoint::from_path(path) {
            Some(endpoint) => match upstream::call(&shared.http, backend, endpoint, &input).await {
                Ok(answer) => {
                    units = units.saturating_add(answer.units);
                    answer.output
                }
                Err(error) if error.code() == "invalid_json" => Vec::new(),
                Err(error) => return Err(unavailable(format!("our backend: {}", error.code()))),
            },
            None => Vec::new(),
        };
        requests.push((input, output));
    }
    Ok((requests, units))
}

/// Attests a stack as `node`, while the window is open (as of the last block: `epoch`,
/// `chain_ms`) and the attestation is not in.
async fn attest(shared: &Shared, stack: u64, node: u64, epoch: u64, chain_ms: u64) -> Result<(), Trouble> {
    if !shared.ours(node) {
        tracing::warn!(stack, node, "an attestation job for a node no longer operated here; dropped");
        return Ok(shared.store.finish_attestation(stack, node, None)?);
    }
    let view = match shared.client.get_stack(StackSmallId(stack)).await? {
        StackLookup::Open(view) => view,
        StackLookup::Closed(_) => return Ok(shared.store.finish_attestation(stack, node, None)?),
    };
    let Some(ticket) = &view.settlement_ticket else { return Ok(()) };
    let Some(position) = ticket.requested_attestation_nodes.iter().position(|n| n.0 == node) else {
        return Ok(shared.store.finish_attestation(stack, node, None)?);
    };
    let done = ticket.attestations.get(position).is_some_and(Option::is_some);
    let window_closed = !ticket.window_open(epoch, chain_ms);
    if done || window_closed {
        if window_closed && !done {
            tracing::warn!(stack, node, "the attestation window closed before we attested");
        }
        return Ok(shared.store.finish_attestation(stack, node, None)?);
    }
    let (requests, _) = rerun(shared, stack, view.selected_node.0, node, view.task_small_id.0).await?;
    let k = view.terms.cross_validation_extra_nodes_count;
    let party = u64::try_from(position).unwrap_or(u64::MAX).saturating_add(1);
    let Ok(commitment) = party_commitment(&requests, party, k) else {
        return Ok(shared.store.finish_attestation(stack, node, Some("attestations_impossible"))?);
    };
    let agrees = commitment.committed_stack_proof == ticket.committed_stack_proof;
    tracing::info!(stack, node, agrees, "attesting");
    let call = Call::SubmitStackSettlementAttestation {
        node: NodeSmallId(node),
        stack: StackSmallId(stack),
        committed_stack_proof: commitment.committed_stack_proof.to_vec(),
        stack_merkle_leaf: commitment.stack_merkle_leaf.to_vec(),
    };
    let result = shared.send(node, call, Purpose::Attest { stack, node }).await?;
    let counter = match (result.status == atoma_api::rpc::ExecutionStatus::Success, agrees) {
        (true, true) => "attestations_agreed",
        (true, false) => "attestations_disputed",
        (false, _) => "attestations_refused",
    };
    shared.store.finish_attestation(stack, node, Some(counter))?;
    Ok(())
}

/// Resolves a dispute as one of our oracle nodes that is no party to it.
async fn resolve(shared: &Shared, stack: u64) -> Result<(), Trouble> {
    let view = match shared.client.get_stack(StackSmallId(stack)).await? {
        StackLookup::Open(view) => view,
        StackLookup::Closed(_) => return Ok(shared.store.finish_dispute(stack, None)?),
    };
    let Some(ticket) = &view.settlement_ticket else { return Ok(shared.store.finish_dispute(stack, None)?) };
    if ticket.status != TicketStatusView::InDispute {
        return Ok(shared.store.finish_dispute(stack, None)?);
    }
    let Some(model) = shared.task_model(view.task_small_id.0).await? else {
        return Ok(shared.store.finish_dispute(stack, None)?);
    };
    let oracles = shared.client.get_model(&model).await?;
    let parties: Vec<u64> = std::iter::once(view.selected_node.0)
        .chain(ticket.requested_attestation_nodes.iter().map(|n| n.0))
        .collect();
    let oracle = oracles
        .echelons
        .iter()
        .flat_map(|e| e.oracles.iter().map(|n| n.0))
        .find(|n| shared.ours(*n) && !parties.contains(n));
    let Some(oracle) = oracle else { return Ok(shared.store.finish_dispute(stack, None)?) };
    let (requests, counted) =
        rerun(shared, stack, view.selected_node.0, oracle, view.task_small_id.0).await?;
    let k = view.terms.cross_validation_extra_nodes_count;
    let Ok((proof, _)) = settlement_commitment(&requests, k) else {
        return Ok(shared.store.finish_dispute(stack, None)?);
    };
    let units = counted.min(view.num_compute_units);
    tracing::info!(stack, oracle, units, "resolving a dispute");
    let call = Call::ResolveStackDispute {
        oracle_node: NodeSmallId(oracle),
        stack: StackSmallId(stack),
        correct_committed_stack_proof: proof.to_vec(),
        correct_units: units,
    };
    let result = shared.send(oracle, call, Purpose::Resolve { stack, node: oracle }).await?;
    let counter = if result.status == atoma_api::rpc::ExecutionStatus::Success {
        "disputes_resolved"
    } else {
        "disputes_refused"
    };
    shared.store.finish_dispute(stack, Some(counter))?;
    Ok(())
}
