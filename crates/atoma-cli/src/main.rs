//! `atoma`: the command-line interface of the Atoma protocol (SPEC §13).
//!
//! `atoma start` runs a local network (chain + JSON-RPC server) in this process; every other
//! command talks to a running node over JSON-RPC with the typed client of `atoma-rpc`, signing
//! transactions with a key from `$ATOMA_HOME/keystore.json`. docs/CLI.md lists every command with
//! its help text; it is generated from the definitions below (`atoma docs cli`).

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

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
