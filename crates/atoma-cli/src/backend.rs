//! `atoma backend`: the deterministic OpenAI-compatible inference server (docs/AGENT.md §8), for
//! agents in tests and demos.

use std::net::SocketAddr;
use std::time::Duration;

use atoma_agent::backend::{self, BackendConfig};
use clap::Args;
use serde_json::json;

use crate::error::{CliError, CliErrorKind, CliResult};
use crate::output::Output;

/// `atoma backend` options.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Where to listen
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Changes every answer: backends with the same variant answer alike (another variant makes
    /// a dishonest node for dispute tests)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub variant: u64,
    /// Wait this long before every answer
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,
    /// A model to serve (repeatable) [default: any model name]
    #[arg(long = "model", value_name = "NAME")]
    pub models: Vec<String>,
}

/// Serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// `EAddressInUse` when `--listen` cannot be bound.
pub async fn run(args: BackendArgs, out: &Output) -> CliResult<()> {
    crate::start::install_log();
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(|e| {
        CliError::new(CliErrorKind::EAddressInUse, format!("cannot listen on {}: {e}", args.listen))
    })?;
    let config = BackendConfig {
        variant: args.variant,
        delay: Duration::from_millis(args.delay_ms),
        models: args.models.clone(),
    };
    let running = backend::spawn(listener, config)
        .map_err(|e| CliError::new(CliErrorKind::EAddressInUse, format!("{}: {e}", args.listen)))?;
    let models = if args.models.is_empty() { "any model".to_string() } else { args.models.join(", ") };
    out.stream(
        &json!({"baseUrl": running.base_url(), "variant": args.variant, "delayMs": args.delay_ms, "models": args.models}),
        &format!(
            "deterministic backend on {} (variant {}, {models}); OpenAI base URL {}",
            running.address,
            args.variant,
            running.base_url()
        ),
    );
    crate::start::wait_for_shutdown().await;
    Ok(())
}
