//! `atoma`: the command-line interface of the Atoma protocol (SPEC §13).
//!
//! `atoma start` runs a local network (chain + JSON-RPC server) in this process; every other
//! command talks to a running node over JSON-RPC with the typed client of `atoma-rpc`, signing
//! transactions with a key from `$ATOMA_HOME/keystore.json`. docs/CLI.md lists every command with
//! its help text; it is generated from the definitions below (`atoma docs cli`).

mod agent;
mod backend;
mod cli;
mod cmd;
mod commitments;
mod context;
mod demo;
mod docs;
mod error;
mod format;
mod keys;
mod names;
mod output;
mod render;
mod rpc;
mod start;
mod testnet;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let out = Output::new(cli.global.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            out.error(&error::CliError::new(error::CliErrorKind::ERpc, format!("cannot start tokio: {e}")));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(cli, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Help and version print as clap prints them; a usage error is, with `--json`, one JSON error
/// document like every other failure (`EInvalidArgument`), and exits with status 2 either way.
fn usage_error(e: &clap::Error) -> ExitCode {
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args().any(|a| a == "--json") {
        // Printing help to a closed pipe is nothing to report.
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
    }
    let text = e.render().to_string();
    // The lines before the usage: "the following required arguments were not provided: --units <UNITS> …".
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    let message = lines.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
    let message = message.trim_start_matches("error: ").to_string();
    Output::new(true).error(&error::CliError::invalid(message));
    ExitCode::from(2)
}
