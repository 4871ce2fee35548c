//! A local network for measuring: a chain in a data directory and the JSON-RPC server, until
//! Ctrl-C. What `atoma start` does, without the CLI, so the load generator can be measured
//! against the server alone.
//!
//! ```sh
//! cargo run --release -p atoma-load --example node -- --dir /tmp/atoma-load-node --port 9000
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use atoma_ledger::{Chain, ChainConfig};
use atoma_rpc::{RpcConfig, serve};
use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// The chain's data directory (created if absent; a fresh genesis each start).
    #[arg(long, default_value = "/tmp/atoma-load-node")]
    dir: PathBuf,
    /// Loopback port to serve on.
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Funded test accounts.
    #[arg(long, default_value_t = 10)]
    accounts: u64,
    /// Mempool capacity.
    #[arg(long, default_value_t = atoma_ledger::chain::DEFAULT_MEMPOOL_CAPACITY)]
    mempool: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut config = ChainConfig::local(&args.dir);
    config.fresh = true;
    config.genesis.accounts = args.accounts;
    config.mempool_capacity = args.mempool;
    let (chain, task) = Chain::open(config)?;
    let server =
        serve(chain.clone(), RpcConfig::listening_on(SocketAddr::from(([127, 0, 0, 1], args.port)))).await?;
    println!("serving {} (data in {}); Ctrl-C stops", server.url(), args.dir.display());
    tokio::signal::ctrl_c().await?;
    server.stop();
    server.stopped().await;
    chain.shutdown();
    drop(chain);
    tokio::task::spawn_blocking(move || task.join()).await??;
    Ok(())
}
