//! A deterministic OpenAI-compatible inference server for tests and demos (docs/AGENT.md §8).
//!
//! The same request gives the same answer every time: the output is words drawn from a fixed
//! list by a hash of the model, the input and the server's variant, as many as `max_tokens`
//! asks ([`DEFAULT_MAX_TOKENS`] by default), and `usage` counts one token per
//! whitespace-separated word of input and output. Two servers with different variants answer
//! differently (a dishonest node, for dispute tests); a delay makes one slow (timeout tests). It
//! is not a model: it exists so that agents, settlement and attestation can run end to end in CI.

use std::net::SocketAddr;
use std::time::Duration;

use atoma_contract::hash::blake2b256;
use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Output tokens when a request does not say.
pub const DEFAULT_MAX_TOKENS: u64 = 16;
/// The most output tokens one request may ask for.
pub const MAX_TOKENS: u64 = 4_096;
/// Embedding dimensions when a request does not say.
pub const DEFAULT_DIMENSIONS: usize = 8;
/// The most embedding dimensions one request may ask for.
pub const MAX_DIMENSIONS: usize = 4_096;
/// The most inputs one embeddings request may carry.
pub const MAX_EMBEDDING_INPUTS: usize = 2_048;

/// The words answers are made of.
const WORDS: [&str; 32] = [
    "atoma",
    "compute",
    "stack",
    "node",
    "proof",
    "epoch",
    "oracle",
    "sample",
    "settle",
    "attest",
    "model",
    "task",
    "units",
    "escrow",
    "claim",
    "window",
    "enclave",
    "quote",
    "leaf",
    "merkle",
    "seed",
    "block",
    "chain",
    "price",
    "echelon",
    "collateral",
    "fee",
    "reputation",
    "dispute",
    "refund",
    "token",
    "answer",
];

/// How the backend answers.
#[derive(Clone, Debug, Default)]
pub struct BackendConfig {
    /// Changes every answer; backends with the same variant answer alike.
    pub variant: u64,
    /// Waited before every answer.
    pub delay: Duration,
    /// The models served; empty: any model name is served.
    pub models: Vec<String>,
}

/// A running backend.
pub struct RunningBackend {
    /// Where it listens.
    pub address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningBackend {
    /// Its OpenAI base URL (`http://address/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }
}

impl Drop for RunningBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the backend on `listener` until the returned handle is dropped.
pub fn spawn(listener: TcpListener, config: BackendConfig) -> std::io::Result<RunningBackend> {
    let address = listener.local_addr()?;
    let app = router(config);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the deterministic backend stopped");
        }
    });
    Ok(RunningBackend { address, task })
}

/// The backend's routes.
pub fn router(config: BackendConfig) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .fallback(not_found)
        .with_state(std::sync::Arc::new(config))
}

type Shared = State<std::sync::Arc<BackendConfig>>;

/// An error in the shape the OpenAI API and its SDKs use.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    param: Option<&'static str>,
}

impl ApiError {
    /// An error with this status and code and no parameter.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), param: None }
    }

    /// The error's `code`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// An HTTP 400 naming the parameter at fault.
    pub fn invalid(code: &'static str, param: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into(), param }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "server_error"
        } else if self.status == StatusCode::NOT_FOUND && self.code != "model_not_found" {
            "not_found_error"
        } else {
            "invalid_request_error"
        };
        let body =
            json!({"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The answer to a path no route serves.
pub async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "unknown_url",
        message: "no such route".into(),
        param: None,
    }
}

async fn models(State(config): Shared) -> Response {
    let names: Vec<&str> = if config.models.is_empty() {
        vec!["atoma-deterministic"]
    } else {
        config.models.iter().map(String::as_str).collect()
    };
    let data: Vec<Value> = names
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "atoma"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// A JSON body, or the OpenAI-shaped error for one that is not.
fn body(
    request: Result<axum::Json<Value>, JsonRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let axum::Json(value) =
        request.map_err(|e| ApiError::invalid("invalid_json", None, format!("the body is not JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid("invalid_json", None, "the body must be a JSON object")),
    }
}

fn model(config: &BackendConfig, body: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    let Some(Value::String(name)) = body.get("model") else {
        return Err(ApiError::invalid("missing_model", Some("model"), "`model` must be a string"));
    };
    if !config.models.is_empty() && !config.models.contains(name) {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            code: "model_not_found",
            message: format!("The model `{name}` does not exist"),
            param: Some("model"),
        });
    }
    Ok(name.clone())
}

fn max_tokens(body: &serde_json::Map<String, Value>) -> Result<u64, ApiError> {
    let value = body.get("max_completion_tokens").or_else(|| body.get("max_tokens"));
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_MAX_TOKENS),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "invalid_max_tokens",
                Some("max_tokens"),
                format!("`max_tokens` must be an integer in 1..={MAX_TOKENS}"),
            )),
        },
    }
}

fn stream(body: &serde_json::Map<String, Value>) -> Result<(bool, bool), ApiError> {
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid("invalid_stream", Some("stream"), "`stream` must be a boolean"));
        }
    };
    let usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((stream, usage))
}

/// One token per whitespace-separated word.
fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// `count` words determined by the model, the input and the variant.
fn generate(config: &BackendConfig, model: &str, input: &str, count: u64) -> Vec<&'static str> {
    let seed =
        blake2b256(&[b"atoma-backend", model.as_bytes(), &config.variant.to_le_bytes(), input.as_bytes()]);
    let mut words = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut block = 0u64;
    while (words.len() as u64) < count {
        let bytes = blake2b256(&[&seed, &block.to_le_bytes()]);
        for byte in bytes {
            if words.len() as u64 == count {
                break;
            }
            words.push(WORDS[usize::from(byte) % WORDS.len()]);
        }
        block += 1;
    }
    words
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn id(prefix: &str, model: &str, input: &str, variant: u64) -> String {
    let digest =
        blake2b256(&[b"atoma-backend-id", model.as_bytes(), &variant.to_le_bytes(), input.as_bytes()]);
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// The chat's messages as one text: `role: content` per line.
fn chat_input(body: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    let Some(Value::Array(messages)) = body.get("messages") else {
        return Err(ApiError::invalid("missing_messages", Some("messages"), "`messages` must be an array"));
    };
    if messages.is_empty() {
        return Err(ApiError::invalid("missing_messages", Some("messages"), "`messages` must not be empty"));
    }
    let mut text = String::new();
    for message in messages {
        let role = message.get("role").and_then(Value::as_str);
        let content = match message.get("content") {
            Some(Value::String(s)) => s.clone(),
            // The content-parts form: the text parts, in order.
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        let Some(role) = role else {
            return Err(ApiError::invalid(
                "invalid_message",
                Some("messages"),
                "every message needs a `role`",
            ));
        };
        text.push_str(role);
        text.push_str(": ");
        text.push_str(&content);
        text.push('\n');
    }
    Ok(text)
}

/// A completion prompt: a string, or an array of strings taken together.
fn prompt_input(body: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    match body.get("prompt") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) if parts.iter().all(Value::is_string) => {
            Ok(parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        }
        _ => Err(ApiError::invalid("missing_prompt", Some("prompt"), "`prompt` must be a string or strings")),
    }
}

/// A completion's answer, before it is shaped as a chat or a text completion.
struct Generated {
    model: String,
    words: Vec<&'static str>,
    usage: Value,
    id: String,
    stream: bool,
    include_usage: bool,
}

/// Checks a completion request (its input read by `input_of`), waits the configured delay, and
/// generates the answer.
async fn generated(
    config: &BackendConfig,
    request: Result<axum::Json<Value>, JsonRejection>,
    input_of: fn(&serde_json::Map<String, Value>) -> Result<String, ApiError>,
    id_prefix: &str,
) -> Result<Generated, ApiError> {
    let body = body(request)?;
    let model = model(config, &body)?;
    let input = input_of(&body)?;
    let max = max_tokens(&body)?;
    let (stream, include_usage) = stream(&body)?;
    tokio::time::sleep(config.delay).await;
    let words = generate(config, &model, &input, max);
    let usage = usage(count_tokens(&input), words.len() as u64);
    let id = id(id_prefix, &model, &input, config.variant);
    Ok(Generated { model, words, usage, id, stream, include_usage })
}

async fn chat(
    State(config): Shared,
    request: Result<axum::Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Generated { model, words, usage, id, stream, include_usage } =
        generated(&config, request, chat_input, "chatcmpl").await?;
    if !stream {
        let text = words.join(" ");
        return Ok(axum::Json(json!({
            "id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
            "usage": usage,
        }))
        .into_response());
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for (i, word) in words.iter().enumerate() {
        let piece = if i == 0 { (*word).to_string() } else { format!(" {word}") };
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("length")));
    if include_usage {
        events.push(json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                           "choices": [], "usage": usage}));
    }
    Ok(sse(&events))
}

async fn completions(
    State(config): Shared,
    request: Result<axum::Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Generated { model, words, usage, id, stream, include_usage } =
        generated(&config, request, prompt_input, "cmpl").await?;
    let choice = |text: String, finish: Value| json!({"index": 0, "text": text, "logprobs": null, "finish_reason": finish});
    if !stream {
        return Ok(axum::Json(json!({
            "id": id, "object": "text_completion", "created": 0, "model": model,
            "choices": [choice(words.join(" "), json!("length"))], "usage": usage,
        }))
        .into_response());
    }
    let chunk = |choices: Value| json!({"id": id, "object": "text_completion", "created": 0, "model": model, "choices": choices});
    let mut events: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let piece = if i == 0 { (*word).to_string() } else { format!(" {word}") };
            chunk(json!([choice(piece, Value::Null)]))
        })
        .collect();
    events.push(chunk(json!([choice(String::new(), json!("length"))])));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage;
        events.push(last);
    }
    Ok(sse(&events))
}

async fn embeddings(
    State(config): Shared,
    request: Result<axum::Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let body = body(request)?;
    let model = model(&config, &body)?;
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        _ => {
            return Err(ApiError::invalid(
                "missing_input",
                Some("input"),
                "`input` must be a string or strings",
            ));
        }
    };
    if inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(ApiError::invalid(
            "too_many_inputs",
            Some("input"),
            format!("at most {MAX_EMBEDDING_INPUTS} inputs"),
        ));
    }
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64().and_then(|d| usize::try_from(d).ok()) {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d,
            _ => {
                return Err(ApiError::invalid(
                    "invalid_dimensions",
                    Some("dimensions"),
                    format!("`dimensions` must be an integer in 1..={MAX_DIMENSIONS}"),
                ));
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_encoding_format",
                Some("encoding_format"),
                format!("`encoding_format` {other:?} is neither \"float\" nor \"base64\""),
            ));
        }
    };
    tokio::time::sleep(config.delay).await;
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += count_tokens(text);
            let vector = embed(&config, &model, text, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

/// A unit vector in `dimensions` dimensions determined by the model, the text and the variant.
fn embed(config: &BackendConfig, model: &str, text: &str, dimensions: usize) -> Vec<f32> {
    let seed =
        blake2b256(&[b"atoma-embedding", model.as_bytes(), &config.variant.to_le_bytes(), text.as_bytes()]);
    let raw: Vec<f32> = (0..dimensions as u64)
        .map(|i| {
            let h = blake2b256(&[&seed, &i.to_le_bytes()]);
            // A value in [-1, 1) from the hash's first two bytes.
            f32::from(u16::from_le_bytes([h[0], h[1]])) / 32_768.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 { raw.iter().map(|x| x / norm).collect() } else { raw }
}

/// Server-sent events: each value as `data: <json>`, then `data: [DONE]`.
/// Server-sent events: one `data:` line per event, then `data: [DONE]`.
pub fn sse(events: &[Value]) -> Response {
    let mut text = String::new();
    for event in events {
        text.push_str("data: ");
        text.push_str(&event.to_string());
        text.push_str("\n\n");
    }
    text.push_str("data: [DONE]\n\n");
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_determined_by_model_input_and_variant() {
        let honest = BackendConfig::default();
        let other = BackendConfig { variant: 1, ..BackendConfig::default() };
        let a = generate(&honest, "m", "user: hello\n", 40);
        assert_eq!(a.len(), 40);
        assert_eq!(a, generate(&honest, "m", "user: hello\n", 40));
        assert_ne!(a, generate(&other, "m", "user: hello\n", 40));
        assert_ne!(a, generate(&honest, "m", "user: hello!\n", 40));
        assert_ne!(a, generate(&honest, "n", "user: hello\n", 40));
        assert_eq!(generate(&honest, "m", "x", 0), Vec::<&str>::new());
    }

    #[test]
    fn tokens_are_words() {
        assert_eq!(count_tokens("user: hello  there\n"), 3);
        assert_eq!(count_tokens(""), 0);
    }

    #[test]
    fn embeddings_are_unit_vectors() {
        let v = embed(&BackendConfig::default(), "m", "text", 16);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
}
