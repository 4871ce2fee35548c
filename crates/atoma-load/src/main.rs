//! `atoma-load`: the load generator on the command line, usable before `atoma bench` exists.
//!
//! ```sh
//! cargo run --release -p atoma-load -- --rpc http://127.0.0.1:9000 --concurrency 64 --txs 20000
//! ```

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use atoma_contract::TOMA;
use atoma_load::{Accounts, LoadConfig, Stop, Transport, Workload};
use clap::Parser;

/// Drive an Atoma node over JSON-RPC with concurrent signing clients; print tx/s, acknowledgement
/// latency percentiles and errors by name.
#[derive(Parser, Debug)]
#[command(name = "atoma-load", version)]
struct Args {
    /// The node's RPC URL.
    #[arg(long, env = "ATOMA_RPC", default_value = "http://127.0.0.1:9000")]
    rpc: String,
    /// Concurrent clients, each with its own key(s) and connection.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Transactions each key keeps in flight.
    #[arg(long, default_value_t = atoma_load::config::DEFAULT_PIPELINE)]
    pipeline: usize,
    /// Stop after this many transactions.
    #[arg(long, conflicts_with = "duration")]
    txs: Option<u64>,
    /// Stop sending after this many seconds instead.
    #[arg(long)]
    duration: Option<f64>,
    /// `ws` (one WebSocket per client) or `http` (one connection per request in flight).
    #[arg(long, default_value = "ws")]
    transport: Transport,
    /// Buy, settle and claim stacks in a market the clients prepare, instead of transfers.
    #[arg(long)]
    mix: bool,
    /// With --mix on a local network: advance the epoch this often (0: never), so claims come due.
    #[arg(long, default_value_t = 1000)]
    advance_epoch_ms: u64,
    /// Sign with the local network's test accounts from this index on, instead of new keys funded
    /// by the faucet.
    #[arg(long)]
    test_accounts: Option<u64>,
    /// TOMA the faucet gives each new key.
    #[arg(long, default_value_t = 2_000)]
    fund_toma: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    fn config(&self) -> LoadConfig {
        let mut config = LoadConfig::new(self.rpc.clone());
        config.concurrency = self.concurrency;
        config.pipeline = self.pipeline;
        config.transport = self.transport;
        config.stop = match (self.txs, self.duration) {
            (_, Some(secs)) => Stop::Duration(Duration::from_secs_f64(secs.max(0.0))),
            (Some(n), None) => Stop::Transactions(n),
            (None, None) => Stop::Transactions(10_000),
        };
        if self.mix {
            let every = (self.advance_epoch_ms > 0).then(|| Duration::from_millis(self.advance_epoch_ms));
            config.workload = Workload::Mix { advance_epoch_every: every };
        }
        config.accounts = match self.test_accounts {
            Some(first) => Accounts::TestAccounts { first },
            None => Accounts::Faucet { amount: self.fund_toma.saturating_mul(TOMA) },
        };
        config
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = args.config();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("atoma-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let mut bar = atoma_load::progress::stderr_bar(30);
    let outcome = runtime.block_on(atoma_load::run(&config, |p: &atoma_load::Progress| {
        if show_progress {
            bar(p);
        }
    }));
    match outcome {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            if report.errors > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("atoma-load: {e}");
            ExitCode::FAILURE
        }
    }
}
