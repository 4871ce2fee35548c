//! Shared by the integration tests: a real chain in a temp dir served on an ephemeral loopback
//! port, raw HTTP and WebSocket helpers for clients that misbehave, and the process's RSS.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask};
use atoma_rpc::{RpcConfig, RpcServerHandle, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The generous bound on any one request of a client: past it, the request "never completed".
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);

/// A running chain and server.
pub struct Node {
    pub chain: ChainHandle,
    pub task: ChainTask,
    pub server: RpcServerHandle,
}

impl Node {
    pub async fn start(config: ChainConfig, rpc: RpcConfig) -> Node {
        let (chain, task) = Chain::open(config).expect("the chain opens");
        let server = serve(chain.clone(), rpc).await.expect("the server starts");
        Node { chain, task, server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stops the server, then the chain, and waits until the database is closed.
    pub async fn stop(self) {
        let Node { chain, task, server } = self;
        let data_dir = chain.keystore_path().parent().expect("the data directory").to_path_buf();
        server.stop();
        tokio::time::timeout(Duration::from_secs(30), server.stopped()).await.expect("the server stops");
        chain.shutdown();
        drop(chain);
        tokio::task::spawn_blocking(move || task.join())
            .await
            .expect("joins")
            .expect("the chain thread ends");
        // The server's connection tasks may hold a handle a moment longer.
        tokio::task::spawn_blocking(move || Chain::wait_until_released(&data_dir, Duration::from_secs(30)))
            .await
            .expect("joins")
            .expect("the stopped chain releases its data directory");
    }
}

/// The RPC defaults on `127.0.0.1:0`.
pub fn loopback_rpc() -> RpcConfig {
    RpcConfig::listening_on(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// The process's resident set in bytes (`VmRSS` of /proc/self/status, the same figure as
/// /proc/self/statm's second field times the page size).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

/// A small deterministic generator for garbage (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// How a raw exchange ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Raw {
    /// The server answered with this HTTP status.
    Status(u16),
    /// The server closed the connection without an answer (or reset it).
    Closed,
    /// Nothing within [`REQUEST_DEADLINE`].
    Hung,
}

/// Writes `bytes` on a new connection and reads the answer's status line.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> (Raw, String) {
    exchange(addr, bytes, false).await
}

/// [`raw_exchange`], then closes the sending half: bytes that happen to be the start of a valid
/// request line would otherwise make the server wait for the rest (up to jsonrpsee's 30 s
/// first-request timeout).
pub async fn raw_exchange_then_close(addr: SocketAddr, bytes: &[u8]) -> (Raw, String) {
    exchange(addr, bytes, true).await
}

async fn exchange(addr: SocketAddr, bytes: &[u8], close_after: bool) -> (Raw, String) {
    let exchange = async {
        let Ok(mut stream) = TcpStream::connect(addr).await else { return (Raw::Closed, String::new()) };
        // The server may answer (and close) before reading everything; that is an answer too.
        let _ = stream.write_all(bytes).await;
        if close_after {
            let _ = stream.shutdown().await;
        }
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).to_string();
        match text.split(' ').nth(1).and_then(|s| s.parse().ok()) {
            Some(status) if text.starts_with("HTTP/1.1 ") => (Raw::Status(status), text),
            _ => (Raw::Closed, text),
        }
    };
    tokio::time::timeout(REQUEST_DEADLINE, exchange).await.unwrap_or((Raw::Hung, String::new()))
}

/// A `POST /` with `body` and `Connection: close`.
pub fn post(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST / HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A `GET` of `path` with `Connection: close`.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Opens a connection and starts a request it never finishes: the headers only up to a point
/// (`body: None`), or complete headers announcing `body_len` bytes of which only a few are sent.
pub async fn stalled(addr: SocketAddr, body_len: Option<usize>) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let start = match body_len {
        None => "POST / HTTP/1.1\r\nHost: load\r\nContent-Type: appl".to_string(),
        Some(len) => format!(
            "POST / HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{\"jsonrpc\""
        ),
    };
    stream.write_all(start.as_bytes()).await.ok()?;
    Some(stream)
}

/// Opens a WebSocket (the upgrade handshake, by hand) and returns the connection when the server
/// switched protocols, or the status it refused with.
pub async fn open_websocket(addr: SocketAddr) -> Result<TcpStream, Raw> {
    let handshake = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|_| Raw::Closed)?;
        let request = "GET / HTTP/1.1\r\nHost: load\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        stream.write_all(request.as_bytes()).await.map_err(|_| Raw::Closed)?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return Err(Raw::Closed),
            }
        }
        let text = String::from_utf8_lossy(&head);
        match text.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
            Some(101) => Ok(stream),
            Some(status) => Err(Raw::Status(status)),
            None => Err(Raw::Closed),
        }
    };
    tokio::time::timeout(REQUEST_DEADLINE, handshake).await.unwrap_or(Err(Raw::Hung))
}
