//! The Atoma chain's JSON-RPC server (SPEC §13).
//!
//! [`serve`] answers JSON-RPC 2.0 over HTTP `POST` and WebSocket on one port (default
//! `127.0.0.1:9000`), plus plain `GET /health` and Prometheus `GET /metrics`. It is a thin shell
//! over an [`atoma_ledger::Node`] — the node's ledger for every read, its
//! [`atoma_ledger::Orderer`] for submissions, whoever orders: it reads parameters, calls them, and
//! turns the answers into `atoma-api` JSON. It holds no state of its own beyond two gauges.
//!
//! The typed Rust client is the `atoma-client` crate, which does not depend on this one: what
//! the two must agree on — result shapes, event filters as JSON, error codes, body limits, the
//! subscription's method names — is in [`atoma_api::rpc`], which both read.
//!
//! # Wire choices
//! - Transactions travel Sui-style: `atoma_executeTransaction(txBytes, signature)`, both in
//!   base64: `txBytes` is `bcs(Transaction)` exactly as signed, `signature` the 97 bytes
//!   `0x00 ‖ ed25519 signature ‖ public key` (docs/LEDGER.md §1). The call returns after the
//!   block is durably committed.
//! - A contract refusal is a *result* (`status: "failure"` and `error: {name, code, message}`),
//!   because the transaction was executed and consumed its nonce. Everything else that goes
//!   wrong is a JSON-RPC error whose `data` carries the ledger's, contract's or RPC's named error
//!   (`{"name": "ENonceUsed", "code": 312013002, "message": …}`); codes are in
//!   [`atoma_api::rpc::codes`].
//! - Unknown ids are errors, not `null`: code [`NOT_FOUND`](atoma_api::rpc::codes::NOT_FOUND)
//!   with `ETaskNotFound`, `ENodeNotFound`, `EStackNotFound`, `EModelNotFound`,
//!   `ENoSettlementTicket`, `ETransactionNotFound` or `EBlockNotFound` in `data`. Balances and nonces of unknown
//!   addresses are 0 and badge lists empty, as for any account that has not transacted.
//! - Parameters may be positional or named; `u64`s and small ids are numbers or decimal strings
//!   (small ids also `{"inner": "7"}`), addresses `0x` + 64 hex digits, digests base58.
//!
//! docs/RPC.md lists every method with examples, the error codes, the limits and the
//! subscription protocol.

#![deny(missing_docs)]

mod address;
mod body;
mod connection;
pub mod error;
mod http;
mod methods;
mod middleware;
mod outgoing;
mod params;
pub mod server;
mod subscription;

pub use error::{RPC_ERROR_CODE_BASE, RpcErrorName};
pub use outgoing::SEND_BUFFER_FULL_CLOSE_CODE;
pub use server::{RpcConfig, RpcServerHandle, ServeError, serve};
