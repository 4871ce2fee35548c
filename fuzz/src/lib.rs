//! Shared by the fuzz targets in `fuzz_targets/`: the pre-built market, the call generator, and
//! a small blocking HTTP client for the RPC target. See `fuzz/README.md`.

pub mod calls;
pub mod http;
pub mod market;

/// The chain id `tx_decode` verifies against (and its seeds are signed for).
pub const CHAIN_ID: [u8; 32] = [7; 32];
