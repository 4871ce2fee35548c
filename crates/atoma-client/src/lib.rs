//! The typed Rust client of the Atoma chain's JSON-RPC interface (SPEC §13), for programs off the
//! chain: the CLI, a node agent, the load generator, any client.
//!
//! [`Client`] has one typed async method per RPC method, a [`Client::sign_and_execute`] helper,
//! and [`Client::subscribe_events`] for live events. It reads back the very types the server
//! writes: the `atoma-api` views and [`atoma_api::rpc`] shapes.
//!
//! - [`Client::new`]: calls over HTTP, a `POST` each. Simple and stateless; but every call in
//!   flight holds a connection, and one of the server's connection slots (HTTP 429 beyond them).
//! - [`Client::connect_ws`], or [`Client::connect`] with [`ClientOptions`]: calls over one
//!   WebSocket, any number in flight together, the same methods. For clients that pipeline.
//! - [`ClientError`] names what went wrong: the ledger's, contract's or RPC's named error behind
//!   a JSON-RPC error, whether retrying may help ([`ClientError::is_retryable`]), and the HTTP
//!   status of a request the server refused before reading it ([`ClientError::http_status`]).
//!
//! # Why a crate of its own
//! A program that only talks to a node must not build the node. This crate depends on the wire
//! types (`atoma-types`), the JSON shapes (`atoma-api`), the contract's call types
//! (`atoma-contract`) and jsonrpsee's *client* crates — not on the ledger, its storage (redb),
//! the sequencer or the server (`atoma-rpc`). What client and server must agree on (result
//! shapes, error codes, body limits, method names) lives in [`atoma_api::rpc`], which both read.
//!
//! # Features
//! - `tls`: `https://` and `wss://` URLs (rustls with the platform's certificate verifier).
//!
//! docs/RPC.md has the wire format of every method.

#![deny(missing_docs)]

mod client;
mod error;
mod events;
mod transport;

pub use client::Client;
pub use error::{ClientError, RpcErrorObject, TransportError};
pub use events::EventStream;
pub use transport::{ClientOptions, REQUEST_TIMEOUT, Transport};
