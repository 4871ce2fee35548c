//! `atoma backend` as a real process: it prints its base URL, answers a chat completion the same
//! way twice (and differently with another variant), stops on SIGTERM, and refuses a taken
//! address by name.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use common::{Background, atoma};
use serde_json::{Value, json};

struct Backend {
    process: Background,
    address: String,
}

impl Backend {
    fn start(extra: &[&str]) -> Backend {
        let mut args = vec!["backend", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let process = Background::start(&args, None);
        let url = process.banner["baseUrl"].as_str().expect("baseUrl");
        let address = url.trim_start_matches("http://").trim_end_matches("/v1").to_string();
        Backend { process, address }
    }

    /// POSTs `body` to `path` (HTTP/1.1, the connection closed after) and returns the status
    /// and the body.
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let mut stream = TcpStream::connect(&self.address).expect("connects");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.address,
            body.len()
        )
        .expect("sends");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
        let json = answer.split("\r\n\r\n").nth(1).expect("a body");
        (status, serde_json::from_str(json).expect("JSON"))
    }
}

fn chat() -> Value {
    json!({"model": "demo", "messages": [{"role": "user", "content": "tell me about stacks"}], "max_tokens": 6})
}

#[test]
fn atoma_backend_serves_deterministic_answers() {
    let first = Backend::start(&[]);
    let (status, a) = first.post("/v1/chat/completions", &chat());
    assert_eq!(status, 200, "{a}");
    // "user: tell me about stacks" is 5 words, and 6 were asked for.
    assert_eq!(a["usage"]["total_tokens"], 11);
    let (_, again) = first.post("/v1/chat/completions", &chat());
    assert_eq!(again, a);
    let other = Backend::start(&["--variant", "3"]);
    let (_, b) = other.post("/v1/chat/completions", &chat());
    assert_ne!(b["choices"][0]["message"]["content"], a["choices"][0]["message"]["content"]);
}

#[test]
fn atoma_backend_refuses_an_unknown_model_and_stops_on_sigterm() {
    let mut backend = Backend::start(&["--model", "llama"]);
    let (status, error) = backend.post("/v1/chat/completions", &chat());
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "model_not_found");
    let _ =
        std::process::Command::new("kill").arg("-TERM").arg(backend.process.child.id().to_string()).status();
    let status = backend.process.child.wait().expect("exits");
    assert!(status.success(), "{status}");
}

#[test]
fn a_taken_address_is_refused_by_name() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("an address").to_string();
    let out = atoma().args(["--json", "backend", "--listen", &address]).output().expect("atoma runs");
    assert!(!out.status.success());
    let error: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(error["error"]["name"], "EAddressInUse", "{error}");
}
