//! Requests on their way to the inference backend and back (docs/AGENT.md §4).
//!
//! A user's request is checked and normalized into the exact bytes the backend receives — the
//! *input* of the transcript: `stream` off (the agent relays a stream after the whole answer is
//! recorded), `max_tokens` always set and capped to what the stack has left, the model named as
//! on chain. The backend's answer gives the units (`usage.total_tokens`) and the *output* of the
//! transcript: its canonical content (the texts of the choices, or the embeddings), which an
//! honest node and an honest attester running the same input produce alike, unlike the answer's
//! ids and timestamps. Attesters and oracles replay the same input bytes on their own backends.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::backend::ApiError;
use crate::config::ModelConfig;

/// Output tokens asked of the backend when a request does not say.
pub const DEFAULT_MAX_TOKENS: u64 = 256;
/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The API's inference routes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The route's path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }

    /// The route with this path.
    pub fn from_path(path: &str) -> Option<Self> {
        [Endpoint::Chat, Endpoint::Completions, Endpoint::Embeddings].into_iter().find(|e| e.path() == path)
    }

    /// The path under the backend's base URL (which ends in `/v1`).
    fn backend_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }
}

/// A user's request, checked.
#[derive(Debug)]
pub struct Request {
    /// The route.
    pub endpoint: Endpoint,
    /// The model, as named on chain.
    pub model: String,
    /// Whether the user asked for a stream.
    pub stream: bool,
    /// Whether the stream should end with a usage chunk.
    pub include_usage: bool,
    /// Output tokens asked for (`None` for embeddings).
    pub max_tokens: Option<u64>,
    /// Units the prompt is expected to take: one per whitespace-separated word of its text (exact
    /// for `atoma backend`; the count that matters is what the backend reports).
    pub prompt_estimate: u64,
    body: Map<String, Value>,
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The words of a string or an array of strings.
fn text_words(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::String(s)) => words(s),
        Some(Value::Array(items)) => items.iter().map(|v| text_words(Some(v))).sum(),
        _ => 0,
    }
}

impl Request {
    /// Checks a body for `endpoint`.
    ///
    /// # Errors
    /// HTTP 400 naming what is wrong: not a JSON object, no `model`, a bad `stream` or
    /// `max_tokens`.
    pub fn parse(endpoint: Endpoint, bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid("invalid_json", None, format!("the body is not JSON: {e}")))?;
        let Value::Object(body) = value else {
            return Err(ApiError::invalid("invalid_json", None, "the body must be a JSON object"));
        };
        let Some(Value::String(model)) = body.get("model") else {
            return Err(ApiError::invalid("missing_model", Some("model"), "`model` must be a string"));
        };
        let model = model.clone();
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(ApiError::invalid(
                    "invalid_stream",
                    Some("stream"),
                    "`stream` must be a boolean",
                ));
            }
        };
        if stream && endpoint == Endpoint::Embeddings {
            return Err(ApiError::invalid("invalid_stream", Some("stream"), "embeddings are not streamed"));
        }
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let max_tokens = match endpoint {
            Endpoint::Embeddings => None,
            Endpoint::Chat | Endpoint::Completions => {
                match body.get("max_completion_tokens").or_else(|| body.get("max_tokens")) {
                    None | Some(Value::Null) => Some(DEFAULT_MAX_TOKENS),
                    Some(v) => match v.as_u64() {
                        Some(n) if n >= 1 => Some(n),
                        _ => {
                            return Err(ApiError::invalid(
                                "invalid_max_tokens",
                                Some("max_tokens"),
                                "`max_tokens` must be a positive integer",
                            ));
                        }
                    },
                }
            }
        };
        let prompt_estimate = match endpoint {
            Endpoint::Chat => match body.get("messages") {
                Some(Value::Array(messages)) if !messages.is_empty() => messages
                    .iter()
                    .map(|m| {
                        let content = match m.get("content") {
                            Some(Value::Array(parts)) => {
                                parts.iter().map(|p| text_words(p.get("text"))).sum::<u64>()
                            }
                            other => text_words(other),
                        };
                        1 + content
                    })
                    .sum(),
                _ => {
                    return Err(ApiError::invalid(
                        "missing_messages",
                        Some("messages"),
                        "`messages` must be a non-empty array",
                    ));
                }
            },
            Endpoint::Completions => match body.get("prompt") {
                Some(p @ (Value::String(_) | Value::Array(_))) => text_words(Some(p)),
                _ => {
                    return Err(ApiError::invalid(
                        "missing_prompt",
                        Some("prompt"),
                        "`prompt` must be a string or strings",
                    ));
                }
            },
            Endpoint::Embeddings => match body.get("input") {
                Some(i @ (Value::String(_) | Value::Array(_))) => text_words(Some(i)),
                _ => {
                    return Err(ApiError::invalid(
                        "missing_input",
                        Some("input"),
                        "`input` must be a string or strings",
                    ));
                }
            },
        };
        Ok(Request { endpoint, model, stream, include_usage, max_tokens, prompt_estimate, body })
    }

    /// The units to reserve before the request is sent on, and the output tokens to ask for,
    /// given `left` units on the stack: `None` when even the prompt does not fit.
    pub fn budget(&self, left: u64) -> Option<(u64, Option<u64>)> {
        let room = left.checked_sub(self.prompt_estimate)?;
        match self.max_tokens {
            None => Some((self.prompt_estimate, None)),
            Some(_) if room == 0 => None,
            Some(asked) => {
                let capped = asked.min(room);
                Some((self.prompt_estimate + capped, Some(capped)))
            }
        }
    }

    /// The transcript's input: the body the backend receives, with the model as named on chain,
    /// no stream, and `max_tokens` set to `max_tokens`.
    pub fn input(&self, max_tokens: Option<u64>) -> Vec<u8> {
        let mut body = self.body.clone();
        body.remove("stream");
        body.remove("stream_options");
        body.remove("max_completion_tokens");
        if let Some(n) = max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }
}

/// The backend's answer to one input.
#[derive(Debug)]
pub struct Answer {
    /// The answer as the backend gave it.
    pub response: Value,
    /// `usage.total_tokens`.
    pub units: u64,
    /// The transcript's output.
    pub output: Vec<u8>,
}

/// Sends a transcript input to `model`'s backend.
///
/// # Errors
/// HTTP 504 `backend_timeout`, 502 `backend_unavailable` (cannot connect), 502 `backend_error`
/// (an error status or an answer without usage); the input is not valid JSON: 400.
pub async fn call(
    http: &reqwest::Client,
    backend: &ModelConfig,
    endpoint: Endpoint,
    input: &[u8],
) -> Result<Answer, ApiError> {
    let mut body: Map<String, Value> = serde_json::from_slice(input).map_err(|e| {
        ApiError::invalid("invalid_json", None, format!("the input is not a JSON object: {e}"))
    })?;
    if let Some(name) = &backend.backend_model {
        body.insert("model".into(), Value::String(name.clone()));
    }
    let url = format!("{}{}", backend.backend.trim_end_matches('/'), endpoint.backend_path());
    let timeout = Duration::from_secs(backend.timeout_secs);
    let sent = http.post(&url).timeout(timeout).json(&Value::Object(body)).send().await;
    let response = sent.map_err(|e| backend_failure(&e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| backend_failure(&e))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "backend_error",
            format!("the inference backend answered {status}: {text}"),
        ));
    }
    let response: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "backend_error",
            format!("the inference backend's answer is not JSON: {e}"),
        )
    })?;
    let units = response.pointer("/usage/total_tokens").and_then(Value::as_u64).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "backend_error",
            "the inference backend's answer reports no usage",
        )
    })?;
    let output = canonical_output(endpoint, &response);
    Ok(Answer { response, units, output })
}

fn backend_failure(error: &reqwest::Error) -> ApiError {
    if error.is_timeout() {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "backend_timeout",
            "the inference backend did not answer in time",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "backend_unavailable",
            format!("the inference backend cannot be reached: {error}"),
        )
    }
}

/// What an answer says, without what differs between two runs of the same input (ids,
/// timestamps): the choices' texts, or the embeddings, as JSON.
pub fn canonical_output(endpoint: Endpoint, response: &Value) -> Vec<u8> {
    let empty = Vec::new();
    let items = match endpoint {
        Endpoint::Embeddings => response.get("data"),
        Endpoint::Chat | Endpoint::Completions => response.get("choices"),
    }
    .and_then(Value::as_array)
    .unwrap_or(&empty);
    let parts: Vec<Value> = items
        .iter()
        .map(|item| match endpoint {
            Endpoint::Chat => item.pointer("/message/content").cloned().unwrap_or(Value::Null),
            Endpoint::Completions => item.get("text").cloned().unwrap_or(Value::Null),
            Endpoint::Embeddings => item.get("embedding").cloned().unwrap_or(Value::Null),
        })
        .collect();
    serde_json::to_vec(&parts).unwrap_or_default()
}

/// The answer for the user: the backend's, with the model named as on chain, or the same as a
/// stream of server-sent events (one chunk with the whole text, one with the finish reason, the
/// usage when asked for, `[DONE]`).
pub fn respond(request: &Request, mut response: Value, headers: &[(&'static str, String)]) -> Response {
    response["model"] = Value::String(request.model.clone());
    let mut reply =
        if request.stream { stream(request, &response) } else { axum::Json(response).into_response() };
    for (name, value) in headers {
        if let Ok(value) = value.parse() {
            reply.headers_mut().insert(*name, value);
        }
    }
    reply
}

fn stream(request: &Request, response: &Value) -> Response {
    let id = response.get("id").cloned().unwrap_or(Value::Null);
    let created = response.get("created").cloned().unwrap_or(json!(0));
    let model = response.get("model").cloned().unwrap_or(Value::Null);
    let empty = Vec::new();
    let choices = response.get("choices").and_then(Value::as_array).unwrap_or(&empty);
    let mut events = Vec::new();
    for (index, choice) in choices.iter().enumerate() {
        let finish = choice.get("finish_reason").cloned().unwrap_or(Value::Null);
        match request.endpoint {
            Endpoint::Chat => {
                let content = choice.pointer("/message/content").cloned().unwrap_or(json!(""));
                let delta = json!({"role": "assistant", "content": content});
                events.push(
                    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": index, "delta": delta, "finish_reason": null}]}),
                );
                events.push(
                    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": index, "delta": {}, "finish_reason": finish}]}),
                );
            }
            Endpoint::Completions | Endpoint::Embeddings => {
                let text = choice.get("text").cloned().unwrap_or(json!(""));
                events
                    .push(json!({"id": id, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": index, "text": text, "logprobs": null, "finish_reason": finish}]}));
            }
        }
    }
    if request.include_usage {
        let object =
            if request.endpoint == Endpoint::Chat { "chat.completion.chunk" } else { "text_completion" };
        events.push(json!({"id": id, "object": object, "created": created, "model": model, "choices": [],
            "usage": response.get("usage").cloned().unwrap_or(Value::Null)}));
    }
    crate::backend::sse(&events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_reserve_the_prompt_and_cap_the_output() {
        let body = br#"{"model": "m", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 10}"#;
        let request = Request::parse(Endpoint::Chat, body).expect("parses");
        assert_eq!(request.prompt_estimate, 4, "the role is a word, as the backend counts it");
        assert_eq!(request.budget(100), Some((14, Some(10))));
        assert_eq!(request.budget(6), Some((6, Some(2))), "the output is capped to what is left");
        assert_eq!(request.budget(4), None, "no room for a single output token");
        assert_eq!(request.budget(3), None);
        let input: Value = serde_json::from_slice(&request.input(Some(2))).expect("json");
        assert_eq!(input["max_tokens"], 2);
        assert!(input.get("stream").is_none());
    }

    #[test]
    fn embeddings_reserve_their_input_and_are_not_streamed() {
        let request = Request::parse(Endpoint::Embeddings, br#"{"model": "m", "input": ["a b", "c"]}"#)
            .expect("parses");
        assert_eq!(request.budget(3), Some((3, None)));
        assert_eq!(request.budget(2), None);
        let refused =
            Request::parse(Endpoint::Embeddings, br#"{"model": "m", "input": "a", "stream": true}"#);
        assert_eq!(refused.expect_err("refused").code(), "invalid_stream");
    }

    #[test]
    fn bad_requests_are_named() {
        let cases: [(Endpoint, &[u8], &str); 5] = [
            (Endpoint::Chat, b"not json", "invalid_json"),
            (Endpoint::Chat, b"[]", "invalid_json"),
            (Endpoint::Chat, br#"{"messages": []}"#, "missing_model"),
            (Endpoint::Chat, br#"{"model": "m", "messages": []}"#, "missing_messages"),
            (
                Endpoint::Completions,
                br#"{"model": "m", "prompt": "x", "max_tokens": 0}"#,
                "invalid_max_tokens",
            ),
        ];
        for (endpoint, body, code) in cases {
            assert_eq!(Request::parse(endpoint, body).expect_err("refused").code(), code);
        }
    }

    #[test]
    fn the_canonical_output_leaves_out_ids_and_times() {
        let a = json!({"id": "x1", "created": 5, "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]});
        let b = json!({"id": "x2", "created": 6, "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]});
        assert_eq!(canonical_output(Endpoint::Chat, &a), canonical_output(Endpoint::Chat, &b));
        assert_eq!(canonical_output(Endpoint::Chat, &a), br#"["hi"]"#);
        let c = json!({"choices": [{"message": {"content": "ho"}}]});
        assert_ne!(canonical_output(Endpoint::Chat, &a), canonical_output(Endpoint::Chat, &c));
    }
}
