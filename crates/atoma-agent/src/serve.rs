//! The agent's HTTP API (docs/AGENT.md §3, §4, §6, §7): the OpenAI-compatible routes for stack
//! owners, the transcript route for attesters and oracles, and the operator's status and
//! metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use atoma_api::StackLookup;
use atoma_contract::{NodeSmallId, StackSmallId};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::agent::{Shared, lock, now_ms};
use crate::backend::{ApiError, not_found};
use crate::records::{Exchange, Phase, StackRecord, put_stack_in, stack_in};
use crate::token::{StackToken, TokenError, TranscriptRequest};
use crate::upstream::{self, Endpoint, MAX_BODY_BYTES, Request};

type Ctx = State<Arc<Shared>>;

/// The API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/atoma/v1/stacks/{stack}/transcript", get(transcript))
        .route("/atoma/v1/status", get(status))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn chain_unavailable(error: &atoma_client::ClientError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "chain_unavailable",
        format!("the chain cannot be asked: {error}"),
    )
}

fn store_failed(error: &crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "agent_store_failed", error.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

async fn models(State(shared): Ctx) -> Response {
    let data: Vec<Value> = shared
        .config
        .models
        .keys()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "atoma"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn chat(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    serve(ctx, Endpoint::Chat, &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn completions(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    serve(ctx, Endpoint::Completions, &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn embeddings(ctx: Ctx, headers: HeaderMap, body: Bytes) -> Response {
    serve(ctx, Endpoint::Embeddings, &headers, &body).await.unwrap_or_else(IntoResponse::into_response)
}

/// The stack a token may use here, with its record: the token holds, names a stack sampled to
/// one of our nodes, and its signer owns the stack now.
async fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(u64, StackRecord), ApiError> {
    let Some(key) = bearer(headers) else {
        return Err(unauthorized(
            "invalid_stack_token",
            "no API key: give a stack token (`atoma stack token <stack>`) as the bearer token",
        ));
    };
    let token = StackToken::parse(key, &shared.chain_id, now_ms()).map_err(|e| token_refused(&e))?;
    let stack = token.stack;
    let record = match shared.store.stack(stack).map_err(|e| store_failed(&e))? {
        Some(record) => record,
        None => discover(shared, stack).await?,
    };
    let mut owner = shared.stack_owner(stack, false).await.map_err(|e| chain_unavailable(&e))?;
    if owner != Some(token.owner) {
        // The badge may have changed hands since the owner was read.
        owner = shared.stack_owner(stack, true).await.map_err(|e| chain_unavailable(&e))?;
    }
    if owner != Some(token.owner) {
        return Err(unauthorized(
            "not_the_stack_owner",
            format!("the token's signer {} does not own stack {stack}", token.owner),
        ));
    }
    Ok((stack, record))
}

fn token_refused(error: &TokenError) -> ApiError {
    unauthorized(error.code(), error.to_string())
}

/// A stack the follower has not recorded yet: asked of the chain, and recorded when it is open
/// and sampled to one of our nodes.
async fn discover(shared: &Shared, stack: u64) -> Result<StackRecord, ApiError> {
    let not_here = || {
        unauthorized(
            "stack_not_served_here",
            format!("stack {stack} is not open on a node this agent operates"),
        )
    };
    let lookup = shared.client.get_stack(StackSmallId(stack)).await;
    let view = match lookup {
        Ok(StackLookup::Open(view)) => view,
        Ok(StackLookup::Closed(_)) => return Err(not_here()),
        Err(e) if e.name() == Some("EStackNotFound") => return Err(not_here()),
        Err(e) => return Err(chain_unavailable(&e)),
    };
    if !shared.ours(view.selected_node.0) {
        return Err(not_here());
    }
    if view.owner.is_none() {
        return Err(not_here());
    }
    let fresh = StackRecord {
        node: view.selected_node.0,
        task: view.task_small_id.0,
        units: view.num_compute_units,
        used: 0,
        requests: 0,
        last_used_ms: 0,
        phase: Phase::Serving,
        outcome: None,
    };
    shared
        .store
        .write(|txn| match stack_in(txn, stack)? {
            Some(existing) => Ok(existing),
            None => {
                put_stack_in(txn, stack, &fresh)?;
                Ok(fresh)
            }
        })
        .map_err(|e| store_failed(&e))
}

/// Serves one inference request on a stack: authorize, check the model, reserve units, call
/// the backend, record the exchange durably, answer.
async fn serve(
    State(shared): Ctx,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (stack, record) = authorize(&shared, headers).await?;
    let request = Request::parse(endpoint, body)?;
    let model = shared.task_model(record.task).await.map_err(|e| chain_unavailable(&e))?;
    if model.as_ref().is_some_and(|m| *m != request.model)
        || !shared.config.models.contains_key(&request.model)
    {
        let served =
            model.unwrap_or_else(|| shared.config.models.keys().cloned().collect::<Vec<_>>().join(", "));
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("stack {stack} is served with the model `{served}`, not `{}`", request.model),
        ));
    }
    let backend = &shared.config.models[&request.model];
    // Reserve under the lock that settling takes too: no request starts on a stack that is
    // settling, and no settlement starts while a request is in flight.
    let (hold, max_tokens) = {
        let mut reserved = lock(&shared.reserved);
        let current = shared.store.stack(stack).map_err(|e| store_failed(&e))?.unwrap_or(record);
        if current.phase != Phase::Serving {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "stack_settled",
                format!("stack {stack} is {} and serves no more requests", current.phase.name()),
            ));
        }
        let held = reserved.get(&stack).copied().unwrap_or(0);
        let left = current.units.saturating_sub(current.used).saturating_sub(held);
        let Some((reservation, max_tokens)) = request.budget(left) else {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_compute_units",
                format!(
                    "stack {stack} has {left} compute units left; this request needs at least {}",
                    request.prompt_estimate + u64::from(request.max_tokens.is_some())
                ),
            ));
        };
        // Even a request that reserves no unit (an empty embedding input) is held: a
        // settlement must not start while it is in flight.
        let hold = reservation.max(1);
        reserved.insert(stack, held + hold);
        (hold, max_tokens)
    };
    let release = |shared: &Shared| {
        let mut reserved = lock(&shared.reserved);
        if let Some(held) = reserved.get_mut(&stack) {
            *held = held.saturating_sub(hold);
            if *held == 0 {
                reserved.remove(&stack);
            }
        }
    };
    let input = request.input(max_tokens);
    let answer = match upstream::call(&shared.http, backend, endpoint, &input).await {
        Ok(answer) => answer,
        Err(error) => {
            release(&shared);
            tracing::warn!(stack, code = error.code(), "a request failed at the backend; nothing counted");
            return Err(error);
        }
    };
    // The exchange is durable before the answer leaves; the reservation is released after,
    // so a settlement cannot start between the two.
    let recorded = {
        let shared = Arc::clone(&shared);
        let output = answer.output.clone();
        let reported = answer.units;
        tokio::task::spawn_blocking(move || {
            let exchange = Exchange { endpoint: endpoint.path().into(), input, output, units: reported };
            shared.store.record_exchange(stack, &exchange, now_ms())
        })
        .await
    };
    release(&shared);
    let record = match recorded {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => return Err(store_failed(&e)),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "agent_store_failed",
                e.to_string(),
            ));
        }
    };
    let left = record.units.saturating_sub(record.used);
    let headers = [("x-atoma-stack", stack.to_string()), ("x-atoma-units-left", left.to_string())];
    Ok(upstream::respond(&request, answer.response, &headers))
}

/// `GET /atoma/v1/stacks/{stack}/transcript`: the requests served on a stack of ours, for its
/// requested attesters and the oracles of its model, authenticated by their node's key.
async fn transcript(State(shared): Ctx, Path(stack): Path<u64>, headers: HeaderMap) -> Response {
    transcript_for(&shared, stack, &headers).await.unwrap_or_else(IntoResponse::into_response)
}

async fn transcript_for(shared: &Shared, stack: u64, headers: &HeaderMap) -> Result<Response, ApiError> {
    let Some(credential) = bearer(headers) else {
        return Err(unauthorized(
            "invalid_node_request",
            "no credential: sign a transcript request with a node's key",
        ));
    };
    let request =
        TranscriptRequest::parse(credential, &shared.chain_id, now_ms()).map_err(|e| token_refused(&e))?;
    if request.stack != stack {
        return Err(unauthorized("invalid_node_request", "the request names another stack"));
    }
    let node = shared.client.get_node(NodeSmallId(request.node)).await.map_err(|e| chain_unavailable(&e))?;
    if node.owner != Some(request.signer) {
        return Err(unauthorized(
            "not_the_node_owner",
            format!("the signer does not own node {}", request.node),
        ));
    }
    let Some(record) = shared.store.stack(stack).map_err(|e| store_failed(&e))? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "stack_not_served_here",
            format!("stack {stack} was not served here"),
        ));
    };
    if !may_see(shared, stack, record.task, request.node).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_an_attester_or_oracle",
            format!(
                "node {} is neither a requested attester of stack {stack} nor an oracle of its model",
                request.node
            ),
        ));
    }
    let exchanges = shared.store.exchanges(stack).map_err(|e| store_failed(&e))?;
    let requests: Vec<Value> = exchanges
        .iter()
        .map(|e| {
            json!({"endpoint": e.endpoint, "input": String::from_utf8_lossy(&e.input),
                   "output": String::from_utf8_lossy(&e.output), "units": e.units})
        })
        .collect();
    Ok(axum::Json(json!({"stack": stack, "node": record.node, "requests": requests})).into_response())
}

/// Whether `node` is a requested attester of the stack's ticket or an oracle of its model.
async fn may_see(shared: &Shared, stack: u64, task: u64, node: u64) -> Result<bool, ApiError> {
    let ticket = shared.client.get_settlement_ticket(StackSmallId(stack)).await;
    if let Ok(ticket) = &ticket
        && ticket.requested_attestation_nodes.contains(&NodeSmallId(node))
    {
        return Ok(true);
    }
    let Some(model) = shared.task_model(task).await.map_err(|e| chain_unavailable(&e))? else {
        return Ok(false);
    };
    let view = shared.client.get_model(&model).await.map_err(|e| chain_unavailable(&e))?;
    Ok(view.echelons.iter().any(|e| e.oracles.contains(&NodeSmallId(node))))
}

/// The operator's view: the nodes, every stack's state, the counters, and the transactions
/// whose outcome is not yet known.
pub fn status_json(shared: &Shared) -> Result<Value, crate::store::StoreError> {
    let stacks: Vec<Value> = shared
        .store
        .stacks()?
        .into_iter()
        .map(|(id, r)| {
            json!({"stack": id, "node": r.node, "phase": r.phase.name(), "units": r.units, "used": r.used,
                   "requests": r.requests, "outcome": r.outcome})
        })
        .collect();
    let counters: serde_json::Map<String, Value> =
        shared.store.counters()?.into_iter().map(|(k, v)| (k, json!(v))).collect();
    let pending: Vec<Value> =
        shared.store.sent()?.into_iter().map(|(_, s)| json!(format!("{:?}", s.purpose))).collect();
    Ok(json!({
        "nodes": shared.nodes.keys().collect::<Vec<_>>(),
        "publicUrl": shared.public_url,
        "stacks": stacks,
        "counters": counters,
        "pendingTransactions": pending,
        "attestationJobs": shared.store.attestation_jobs()?.len(),
        "disputeJobs": shared.store.dispute_jobs()?.len(),
    }))
}

async fn status(State(shared): Ctx) -> Response {
    match status_json(&shared) {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => store_failed(&e).into_response(),
    }
}

async fn metrics(State(shared): Ctx) -> Response {
    let mut text = String::new();
    let mut by_phase = std::collections::BTreeMap::new();
    let mut units = 0u64;
    match shared.store.stacks() {
        Ok(stacks) => {
            for (_, r) in stacks {
                *by_phase.entry(r.phase.name()).or_insert(0u64) += 1;
                if r.phase == Phase::Serving {
                    units = units.saturating_add(r.units.saturating_sub(r.used));
                }
            }
        }
        Err(e) => return store_failed(&e).into_response(),
    }
    let _ = writeln!(text, "# HELP atoma_agent_stacks Stacks of this agent's nodes, by phase.");
    let _ = writeln!(text, "# TYPE atoma_agent_stacks gauge");
    for phase in [Phase::Serving, Phase::Settling, Phase::Settled, Phase::Closed] {
        let _ = writeln!(
            text,
            "atoma_agent_stacks{{phase=\"{}\"}} {}",
            phase.name(),
            by_phase.get(phase.name()).unwrap_or(&0)
        );
    }
    if let Ok(counters) = shared.store.counters() {
        for (name, value) in counters {
            let _ = writeln!(text, "# TYPE atoma_agent_{name}_total counter");
            let _ = writeln!(text, "atoma_agent_{name}_total {value}");
        }
    }
    let _ =
        writeln!(text, "# HELP atoma_agent_units_unserved Compute units left on the stacks being served.");
    let _ = writeln!(text, "# TYPE atoma_agent_units_unserved gauge");
    let _ = writeln!(text, "atoma_agent_units_unserved {units}");
    let pending = shared.store.sent().map(|s| s.len()).unwrap_or(0);
    let _ = writeln!(text, "# TYPE atoma_agent_pending_transactions gauge");
    let _ = writeln!(text, "atoma_agent_pending_transactions {pending}");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
