//! `atoma start`: a local network in one process — the chain, its RPC server, and a banner.
//!
//! The chain lives in the data directory (default `$ATOMA_HOME`): `chain.redb` and the
//! keystore the chain writes on first run. When the data directory is not `$ATOMA_HOME`, the
//! network's keys are copied into `$ATOMA_HOME/keystore.json` too, so that every other command
//! finds them by alias. The process runs until Ctrl-C (SIGINT) or SIGTERM, then stops the RPC
//! server, lets the block producer finish, and exits; everything committed stays on disk.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atoma_api::rpc::{DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESPONSE_BODY_BYTES};
use atoma_ledger::chain::{CHAIN_DB_FILE, DEFAULT_NONCE_HOLD_MS, MAX_BLOCK_TIME_MS, MAX_NONCE_HOLD_MS};
use atoma_ledger::genesis::{ADMIN_ALIAS, FAUCET_ALIAS, MAX_TEST_ACCOUNTS};
use atoma_ledger::keystore::KEYSTORE_FILE;
use atoma_ledger::{Chain, ChainConfig, ChainError, ChainHandle, ChainTask, Keystore};
use atoma_rpc::server::{self as rpc, DEFAULT_PORT};
use atoma_rpc::{RpcConfig, RpcServerHandle, ServeError};
use clap::Args;
use serde_json::{Value, json};

use crate::error::{CliError, CliErrorKind, CliResult};
use crate::format::{Table, short_id, toma};
use crate::keys::{self, Keys};
use crate::output::Output;

/// `atoma start` options.
#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Where the chain database lives [default: $ATOMA_HOME, else ~/.atoma]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the JSON-RPC server listens (HTTP and WebSocket); port 0 picks a free port
    #[arg(long, value_name = "HOST:PORT", default_value_t = default_rpc_addr())]
    pub rpc_addr: SocketAddr,
    /// Funded test accounts to create at genesis (first run or --fresh only)
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TEST_ACCOUNTS))]
    pub accounts: u64,
    /// Make a block every MS milliseconds, empty or not [default: a block whenever transactions arrive]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=MAX_BLOCK_TIME_MS))]
    pub block_time_ms: Option<u64>,
    /// How long an epoch lasts at least, in milliseconds (first run or --fresh only)
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub epoch_ms: u64,
    /// Delete the chain database and start over from a new genesis (imported keys are kept)
    #[arg(long)]
    pub fresh: bool,
    /// How long a transaction a few nonces ahead waits for the missing ones before it is refused
    /// ENonceFuture, in milliseconds (0: refused at once)
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_NONCE_HOLD_MS,
          value_parser = clap::value_parser!(u64).range(0..=MAX_NONCE_HOLD_MS))]
    pub nonce_hold_ms: u64,
    #[command(flatten)]
    pub rpc_limits: RpcLimitArgs,
}

/// The RPC server's limits (docs/RPC.md, "Limits"); each is checked when the server starts.
#[derive(Args, Debug, Clone)]
pub struct RpcLimitArgs {
    /// Simultaneous HTTP requests and WebSocket connections; more are answered HTTP 429
    #[arg(long, value_name = "N", default_value_t = rpc::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_connections: u32,
    /// The same, from one IP address (ETooManyConnectionsFromAddress)
    #[arg(long, value_name = "N", default_value_t = rpc::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_connections_per_address: u32,
    /// Live event subscriptions per WebSocket connection
    #[arg(long, value_name = "N", default_value_t = rpc::DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_subscriptions_per_connection: u32,
    /// Live event subscriptions of one IP address over all its connections
    /// (ETooManySubscriptionsFromAddress)
    #[arg(long, value_name = "N", default_value_t = rpc::DEFAULT_MAX_SUBSCRIPTIONS_PER_ADDRESS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_subscriptions_per_address: u32,
    /// What a WebSocket may leave unread before it is closed (1008 ESendBufferFull), in bytes
    #[arg(long, value_name = "BYTES", default_value_t = rpc::DEFAULT_WS_SEND_BUFFER_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rpc_ws_send_buffer_bytes: u64,
    /// The largest request body, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REQUEST_BODY_BYTES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_request_body_bytes: u32,
    /// The largest response body, in bytes
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RESPONSE_BODY_BYTES,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_response_body_bytes: u32,
    /// What request bodies being read may buffer together, in bytes (at least one largest body)
    #[arg(long, value_name = "BYTES", default_value_t = rpc::DEFAULT_MAX_BUFFERED_BODY_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub rpc_max_buffered_body_bytes: u64,
    /// Calls in one JSON-RPC batch
    #[arg(long, value_name = "N", default_value_t = rpc::DEFAULT_MAX_BATCH_LEN,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_max_batch_len: u32,
    /// How long a new connection may take to send its first request's headers, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = millis(rpc::DEFAULT_FIRST_REQUEST_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..=MAX_RPC_TIMEOUT_MS))]
    pub rpc_first_request_timeout_ms: u64,
    /// How long a request body may take to arrive after its headers (then HTTP 408), in
    /// milliseconds
    #[arg(long, value_name = "MS", default_value_t = millis(rpc::DEFAULT_REQUEST_BODY_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..=MAX_RPC_TIMEOUT_MS))]
    pub rpc_request_body_timeout_ms: u64,
    /// How long a WebSocket may send nothing, not even a pong, before it is closed, in
    /// milliseconds
    #[arg(long, value_name = "MS", default_value_t = millis(rpc::DEFAULT_WS_IDLE_TIMEOUT),
          value_parser = clap::value_parser!(u64).range(1..=MAX_RPC_TIMEOUT_MS))]
    pub rpc_ws_idle_timeout_ms: u64,
}

/// The longest RPC timeout a flag takes: one day.
pub const MAX_RPC_TIMEOUT_MS: u64 = 86_400_000;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RpcLimitArgs {
    /// The server's configuration: these limits, listening on `addr`.
    pub fn config(&self, addr: SocketAddr) -> RpcConfig {
        RpcConfig {
            max_connections: self.rpc_max_connections,
            max_connections_per_address: self.rpc_max_connections_per_address,
            max_subscriptions_per_connection: self.rpc_max_subscriptions_per_connection,
            max_subscriptions_per_address: self.rpc_max_subscriptions_per_address,
            ws_send_buffer_bytes: self.rpc_ws_send_buffer_bytes,
            max_request_body_bytes: self.rpc_max_request_body_bytes,
            max_response_body_bytes: self.rpc_max_response_body_bytes,
            max_buffered_body_bytes: self.rpc_max_buffered_body_bytes,
            max_batch_len: self.rpc_max_batch_len,
            first_request_timeout: Duration::from_millis(self.rpc_first_request_timeout_ms),
            request_body_timeout: Duration::from_millis(self.rpc_request_body_timeout_ms),
            ws_idle_timeout: Duration::from_millis(self.rpc_ws_idle_timeout_ms),
            ..RpcConfig::listening_on(addr)
        }
    }
}

/// Runs the local network until Ctrl-C.
///
/// # Errors
/// Ledger errors from opening the chain (`EDataDirInUse` when another `atoma` runs on the
/// data directory); `EAddressInUse` when the RPC address cannot be bound.
pub async fn run(args: StartArgs, out: &Output) -> CliResult<()> {
    install_log();
    let home = keys::home()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| home.clone());
    let new_genesis = args.fresh || !data_dir.join(CHAIN_DB_FILE).exists();
    let (chain, task) = open_chain(&args, &data_dir).await?;
    for repair in chain.ledger().repairs() {
        out.note(&format!("the chain store was damaged and repaired: {repair}"));
    }
    let server = match serve(&chain, args.rpc_limits.config(args.rpc_addr)).await {
        Ok(server) => server,
        Err(e) => {
            stop_chain(chain, task).await;
            return Err(e);
        }
    };
    if let Err(e) = share_keys(&home, &data_dir) {
        stop_rpc_and_chain(server, chain, task).await;
        return Err(e);
    }
    let banner = Banner { chain: &chain, server: &server, data_dir: &data_dir, home: &home, new_genesis };
    out.stream(&banner.json(), &banner.human());
    wait_for_shutdown().await;
    out.note("shutting down: stopping the RPC server and the block producer");
    stop_rpc_and_chain(server, chain, task).await;
    out.note("stopped; the chain is on disk and `atoma start` continues it");
    Ok(())
}

/// The node's log on stderr: what the chain and the RPC server report for the operator — a block
/// that could not be stored, a request that failed inside the node — with every cause. Filtered by
/// `ATOMA_LOG` (`tracing` directives such as `debug` or `atoma_rpc=debug`); by default the atoma
/// crates at `info` and everything else at `warn`.
pub fn install_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // A second `start` in one process (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).try_init();
}

/// The environment variable that filters the node's log.
pub const LOG_ENV: &str = "ATOMA_LOG";
const DEFAULT_LOG_FILTER: &str = "warn,atoma_ledger=info,atoma_rpc=info,atoma_cli=info";

/// Where `atoma start` listens unless told otherwise: loopback, on the RPC's default port.
pub fn default_rpc_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT))
}

/// Where the other commands look for a node unless told otherwise: one started with the defaults.
pub fn default_rpc_url() -> String {
    format!("http://{}", default_rpc_addr())
}

async fn open_chain(args: &StartArgs, data_dir: &Path) -> CliResult<(ChainHandle, ChainTask)> {
    let mut config = ChainConfig::local(data_dir);
    config.fresh = args.fresh;
    config.block_time_ms = args.block_time_ms;
    config.genesis.accounts = args.accounts;
    config.genesis.epoch_duration_ms = args.epoch_ms;
    config.nonce_hold_ms = args.nonce_hold_ms;
    // Opening recovers from disk (redb, replay): blocking work.
    let dir = data_dir.display().to_string();
    tokio::task::spawn_blocking(move || Chain::open(config))
        .await
        .map_err(|e| CliError::new(CliErrorKind::ERpc, format!("the chain failed to open: {e}")))?
        .map_err(|e| {
            let in_use = matches!(e, ChainError::DataDirInUse { .. });
            let mut error = CliError::from(e);
            let hint = "stop it, or give this one its own ATOMA_HOME or --data-dir";
            if in_use {
                // The ledger's lock (`chain.lock`): the message names the directory already.
                error.message = format!("{}; {hint}", error.message);
            } else if error.message.contains("already open") {
                // redb's own lock on `chain.redb`, held by something that is not a ledger.
                error.message = format!("{}: another process is using {dir}; {hint}", error.message);
            }
            error
        })
}

async fn serve(chain: &ChainHandle, config: RpcConfig) -> CliResult<RpcServerHandle> {
    atoma_rpc::serve(chain.clone(), config).await.map_err(|e| match e {
        ServeError::Bind { .. } => CliError::new(
            CliErrorKind::EAddressInUse,
            format!("{e}. Is another `atoma start` running? Stop it, or pass --rpc-addr 127.0.0.1:PORT"),
        ),
        // A combination of limits the flags' own ranges let through.
        ServeError::InvalidConfig(_) => CliError::new(CliErrorKind::EInvalidArgument, e.to_string()),
        other => CliError::new(CliErrorKind::ERpc, other.to_string()),
    })
}

/// Copies the chain's keys into `$ATOMA_HOME/keystore.json` when the chain keeps them elsewhere.
fn share_keys(home: &Path, data_dir: &Path) -> CliResult<()> {
    let same = match (std::fs::canonicalize(home), std::fs::canonicalize(data_dir)) {
        (Ok(a), Ok(b)) => a == b,
        _ => home == data_dir,
    };
    if same {
        return Ok(());
    }
    let chain_keys = Keystore::load(&data_dir.join(KEYSTORE_FILE)).map_err(CliError::from)?;
    Keys::load(home)?.merge(&chain_keys)
}

/// Waits for Ctrl-C, or SIGTERM on Unix.
pub async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn stop_rpc_and_chain(server: RpcServerHandle, chain: ChainHandle, task: ChainTask) {
    server.stop();
    server.stopped().await;
    stop_chain(chain, task).await;
}

async fn stop_chain(chain: ChainHandle, task: ChainTask) {
    chain.shutdown();
    drop(chain);
    // Joining waits for the producer thread; a panic there is already lost, nothing to add.
    let _ = tokio::task::spawn_blocking(move || task.join()).await;
}

/// What `atoma start` prints once the network is up.
struct Banner<'a> {
    chain: &'a ChainHandle,
    server: &'a RpcServerHandle,
    data_dir: &'a Path,
    home: &'a Path,
    new_genesis: bool,
}

/// One funded key of the local network.
struct Account {
    alias: String,
    address: String,
    balance: u64,
}

impl Banner<'_> {
    /// The admin, the faucet and the test accounts, with their balances now.
    fn accounts(&self) -> Vec<Account> {
        let Ok(store) = Keystore::load(&self.data_dir.join(KEYSTORE_FILE)) else {
            return Vec::new();
        };
        store
            .entries()
            .iter()
            .filter(|e| e.alias == ADMIN_ALIAS || e.alias == FAUCET_ALIAS || e.alias.starts_with("account-"))
            .filter_map(|e| {
                let address = e.address.parse().ok()?;
                let balance = self.chain.ledger().with_state(|db| db.balance(&address));
                Some(Account { alias: e.alias.clone(), address: e.address.clone(), balance })
            })
            .collect()
    }

    fn json(&self) -> Value {
        let info = self.chain.node().chain_info();
        let accounts: Vec<Value> = self
            .accounts()
            .iter()
            .map(|a| json!({"alias": a.alias, "address": a.address, "balance": a.balance.to_string()}))
            .collect();
        json!({
            "chainId": info.chain_id.to_string(),
            "rpcUrl": self.server.url(),
            "wsUrl": self.server.ws_url(),
            "height": info.height.to_string(),
            "epoch": info.epoch.to_string(),
            "newGenesis": self.new_genesis,
            "dataDir": self.data_dir.display().to_string(),
            "keystore": self.home.join(KEYSTORE_FILE).display().to_string(),
            "accounts": accounts,
        })
    }

    fn human(&self) -> String {
        let info = self.chain.node().chain_info();
        let url = self.server.url();
        let mut table = Table::new(&["ALIAS", "ADDRESS", "BALANCE"]);
        for a in self.accounts() {
            table.row(vec![a.alias, short_id(&a.address), toma(u128::from(a.balance))]);
        }
        let how = if self.new_genesis { "new genesis" } else { "continuing from disk" };
        let rpc_flag = if url == default_rpc_url() { String::new() } else { format!(" --rpc {url}") };
        format!(
            "Atoma local network is running ({how})\n\n\
             chain id:   {}\n\
             height:     {} (epoch {})\n\
             RPC:        {url}  (WebSocket: {})\n\
             data:       {}\n\
             keystore:   {}\n\n\
             {}\n\n\
             Try, in another terminal:\n\
             \x20 atoma{rpc_flag} status\n\
             \x20 atoma{rpc_flag} balance account-0\n\
             \x20 atoma{rpc_flag} faucet --to account-1 --amount 500\n\
             \x20 atoma{rpc_flag} demo                 # the whole protocol in one walkthrough\n\
             \x20 atoma{rpc_flag} events --follow      # watch events as they happen\n\n\
             Press Ctrl-C to stop; the chain continues where it left off on the next `atoma start`.",
            info.chain_id,
            info.height,
            info.epoch,
            self.server.ws_url(),
            self.data_dir.display(),
            self.home.join(KEYSTORE_FILE).display(),
            table.render(),
        )
    }
}
