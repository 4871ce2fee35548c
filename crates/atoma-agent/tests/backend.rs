//! The deterministic backend as a real server on loopback, asked over HTTP the way an
//! OpenAI client asks: every route, streamed and not, the variant, the delay, and bad requests
//! with their OpenAI-shaped errors.

use std::time::{Duration, Instant};

use atoma_agent::backend::{self, BackendConfig, RunningBackend};
use serde_json::{Value, json};

async fn start(config: BackendConfig) -> RunningBackend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    backend::spawn(listener, config).expect("serves")
}

async fn post(backend: &RunningBackend, path: &str, body: &Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", backend.base_url()))
        .json(body)
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

async fn post_json(backend: &RunningBackend, path: &str, body: &Value) -> Value {
    let (status, text) = post(backend, path, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

/// The `data:` payloads of a server-sent event stream, which must end with `[DONE]`.
fn events(text: &str) -> Vec<Value> {
    let payloads: Vec<&str> =
        text.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.trim_start_matches("data: ")).collect();
    assert_eq!(payloads.last(), Some(&"[DONE]"), "{text}");
    payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).expect("a JSON event")).collect()
}

fn chat_request(content: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": content}], "max_tokens": 12})
}

#[tokio::test]
async fn chat_answers_are_deterministic_and_count_words() {
    let honest = start(BackendConfig::default()).await;
    let again = start(BackendConfig::default()).await;
    let dishonest = start(BackendConfig { variant: 7, ..BackendConfig::default() }).await;
    let request = chat_request("what is a stack?");
    let a = post_json(&honest, "/chat/completions", &request).await;
    assert_eq!(a, post_json(&again, "/chat/completions", &request).await, "another server, the same answer");
    let text = a["choices"][0]["message"]["content"].as_str().expect("content");
    assert_eq!(text.split(' ').count(), 12);
    assert_eq!(a["object"], "chat.completion");
    assert_eq!(a["choices"][0]["message"]["role"], "assistant");
    // "system: be brief" and "user: what is a stack?" are 3 + 5 words.
    assert_eq!(a["usage"], json!({"prompt_tokens": 8, "completion_tokens": 12, "total_tokens": 20}));
    let b = post_json(&dishonest, "/chat/completions", &request).await;
    assert_ne!(b["choices"][0]["message"]["content"], a["choices"][0]["message"]["content"]);
    assert_eq!(b["usage"], a["usage"], "a dishonest answer is as long");
}

#[tokio::test]
async fn a_stream_carries_the_same_text_and_usage_on_request() {
    let server = start(BackendConfig::default()).await;
    let plain = post_json(&server, "/chat/completions", &chat_request("hello")).await;
    let mut request = chat_request("hello");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let (status, text) = post(&server, "/chat/completions", &request).await;
    assert_eq!(status, 200);
    let events = events(&text);
    let streamed: String =
        events.iter().filter_map(|e| e["choices"].get(0)?["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, plain["choices"][0]["message"]["content"].as_str().expect("content"));
    assert!(events.iter().all(|e| e["object"] == "chat.completion.chunk"));
    let last = events.last().expect("events");
    assert_eq!(last["usage"], plain["usage"]);
    assert_eq!(last["choices"], json!([]));
    // Without include_usage, no usage chunk.
    request["stream_options"] = json!({"include_usage": false});
    let (_, text) = post(&server, "/chat/completions", &request).await;
    assert!(self::events(&text).iter().all(|e| e.get("usage").is_none()));
}

#[tokio::test]
async fn completions_and_their_stream() {
    let server = start(BackendConfig::default()).await;
    let request = json!({"model": "m", "prompt": "once upon a time", "max_tokens": 5});
    let plain = post_json(&server, "/completions", &request).await;
    assert_eq!(plain["object"], "text_completion");
    assert_eq!(plain["usage"], json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}));
    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let (_, text) = post(&server, "/completions", &streaming).await;
    let streamed: String =
        events(&text).iter().filter_map(|e| e["choices"].get(0)?["text"].as_str()).collect();
    assert_eq!(streamed, plain["choices"][0]["text"].as_str().expect("text"));
}

#[tokio::test]
async fn embeddings_as_floats_or_base64() {
    let server = start(BackendConfig::default()).await;
    let floats =
        post_json(&server, "/embeddings", &json!({"model": "m", "input": ["a b", "c"], "dimensions": 4}))
            .await;
    assert_eq!(floats["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(floats["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    let first: Vec<f32> = floats["data"][0]["embedding"]
        .as_array()
        .expect("floats")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect();
    assert_eq!(first.len(), 4);
    // The official Python SDK asks for base64 (little-endian f32) unless told otherwise.
    let packed = post_json(
        &server,
        "/embeddings",
        &json!({"model": "m", "input": ["a b", "c"], "dimensions": 4, "encoding_format": "base64"}),
    )
    .await;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(packed["data"][0]["embedding"].as_str().expect("base64"))
        .expect("decodes");
    let decoded: Vec<f32> =
        bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().expect("four bytes"))).collect();
    assert_eq!(decoded, first);
}

#[tokio::test]
async fn models_are_listed_and_unknown_ones_refused() {
    let server =
        start(BackendConfig { models: vec!["llama".into(), "qwen".into()], ..BackendConfig::default() })
            .await;
    let listed: Value = reqwest::get(format!("{}/models", server.base_url()))
        .await
        .expect("an answer")
        .json()
        .await
        .expect("JSON");
    let ids: Vec<&str> =
        listed["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["llama", "qwen"]);
    let mut request = chat_request("hi");
    request["model"] = json!("gpt-9");
    let (status, text) = post(&server, "/chat/completions", &request).await;
    assert_eq!(status, 404);
    let error: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(error["error"]["code"], "model_not_found");
    assert_eq!(error["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn bad_requests_get_named_errors() {
    let server = start(BackendConfig::default()).await;
    let cases = [
        ("/chat/completions", json!({"messages": [{"role": "user", "content": "x"}]}), "missing_model"),
        ("/chat/completions", json!({"model": "m"}), "missing_messages"),
        ("/chat/completions", json!({"model": "m", "messages": []}), "missing_messages"),
        ("/chat/completions", json!({"model": "m", "messages": [{"content": "x"}]}), "invalid_message"),
        (
            "/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "invalid_max_tokens",
        ),
        (
            "/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1_000_000}),
            "invalid_max_tokens",
        ),
        (
            "/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
            "invalid_stream",
        ),
        ("/completions", json!({"model": "m", "prompt": 5}), "missing_prompt"),
        ("/embeddings", json!({"model": "m", "input": []}), "missing_input"),
        (
            "/embeddings",
            json!({"model": "m", "input": "x", "encoding_format": "hex"}),
            "invalid_encoding_format",
        ),
        ("/embeddings", json!({"model": "m", "input": "x", "dimensions": 0}), "invalid_dimensions"),
        ("/chat/completions", json!([1, 2]), "invalid_json"),
    ];
    for (path, body, code) in cases {
        let (status, text) = post(&server, path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {text}");
        let error: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(error["error"]["code"], code, "{path} {body}");
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("an answer");
    assert_eq!(raw.status().as_u16(), 400);
    let error: Value = raw.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], "invalid_json");
    let (status, _) = post(&server, "/nowhere", &json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_delay_slows_every_answer() {
    let server = start(BackendConfig { delay: Duration::from_millis(300), ..BackendConfig::default() }).await;
    let started = Instant::now();
    post_json(&server, "/chat/completions", &chat_request("slow")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}
