//! Command handlers: each turns parsed arguments into RPC calls and a [`Report`].

mod admin;
mod bench;
mod chain;
mod events;
mod keys;
mod market;
pub(crate) mod node;

use crate::cli::{Cli, Command, DocsCmd};
use crate::context::Ctx;
use crate::error::CliResult;
use crate::output::{Output, Report};

/// Runs one command and prints its result.
///
/// # Errors
/// Whatever the command fails with; the caller prints it.
pub async fn run(cli: Cli, out: Output) -> CliResult<()> {
    let Cli { global, command } = cli;
    let mut ctx = Ctx::new(global, out);
    let report = match command {
        Command::Start(args) => return crate::start::run(args, &out).await,
        Command::Testnet(args) => return crate::testnet::run_testnet(args, &out).await,
        Command::Validator(args) => return crate::testnet::run_validator(args, &out).await,
        Command::Backend(args) => return crate::backend::run(args, &out).await,
        Command::Agent(crate::agent::AgentCmd::Run(args)) => {
            return crate::agent::run(&mut ctx, args, &out).await;
        }
        Command::Agent(crate::agent::AgentCmd::Status { url }) => crate::agent::status(&url).await?,
        Command::Chat(args) => crate::agent::chat(&mut ctx, args).await?,
        Command::Events(args) => return events::run(&mut ctx, args).await,
        Command::Demo(args) => return crate::demo::run(&mut ctx, args).await,
        Command::Bench(args) => bench::run(&ctx, args).await?,
        Command::Docs(DocsCmd::Cli) => {
            let markdown = crate::docs::cli_markdown();
            Report::new(serde_json::json!({ "markdown": markdown }), markdown)
        }
        Command::Keys(cmd) => keys::run(&mut ctx, cmd)?,
        Command::Node(cmd) => node::run(&mut ctx, cmd).await?,
        Command::Task(cmd) => market::task(&mut ctx, cmd).await?,
        Command::Stack(cmd) => market::stack(&mut ctx, cmd).await?,
        Command::Model(cmd) => market::model(&mut ctx, cmd).await?,
        Command::Admin(args) => admin::run(&mut ctx, args).await?,
        other => chain::run(&mut ctx, other).await?,
    };
    ctx.out.report(&report);
    Ok(())
}
