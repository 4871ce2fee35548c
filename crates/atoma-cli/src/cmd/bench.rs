//! `atoma bench`: drives a running local network with the load generator of `atoma-load` and
//! prints what it measured — transactions per second and acknowledgement latency percentiles,
//! measured from first send to the durable result.

use std::time::Duration;

use atoma_load::{LoadConfig, LoadError, Stop, Transport, Workload};

use crate::cli::BenchArgs;
use crate::context::Ctx;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::output::Report;

/// Runs the load and reports it; a progress bar goes to stderr unless `--json`.
///
/// # Errors
/// `EInvalidArgument` for settings the generator refuses; `ENoNodeRunning` when the node cannot
/// be reached; `ERpc` when funding the accounts or preparing the market fails.
pub async fn run(ctx: &Ctx, args: BenchArgs) -> CliResult<Report> {
    let mut config = LoadConfig::new(ctx.global.rpc.clone());
    config.concurrency = args.concurrency;
    config.pipeline = args.pipeline;
    config.stop = match args.seconds {
        Some(seconds) => Stop::Duration(Duration::from_secs(seconds)),
        None => Stop::Transactions(args.txs),
    };
    config.workload = if args.workload == "mix" { Workload::mix() } else { Workload::Transfers };
    config.transport = if args.http { Transport::Http } else { Transport::WebSocket };
    let result = if ctx.out.is_json() {
        atoma_load::run(&config, |_: &atoma_load::Progress| {}).await
    } else {
        atoma_load::run(&config, atoma_load::progress::stderr_bar(30)).await
    };
    let report = result.map_err(|e| match e {
        LoadError::InvalidConfig(reason) => CliError::invalid(reason),
        LoadError::Connect(reason) => CliError::new(CliErrorKind::ENoNodeRunning, reason),
        LoadError::Setup(reason) => CliError::new(CliErrorKind::ERpc, reason),
    })?;
    Ok(Report::new(report.to_json(), report.table()))
}
