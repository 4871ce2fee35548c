//! `atoma testnet` and `atoma validator`: a validator set on this machine (docs/VALIDATORS.md).
//!
//! `atoma testnet` creates a local testnet under `$ATOMA_HOME/testnet` on first run (a dealt
//! validator set, the local network's keys and genesis, one directory per validator), shares
//! its keys with the keystore the other commands sign from, starts one `atoma validator` process
//! per directory, waits until every one serves JSON-RPC, and stops them on Ctrl-C. Each
//! validator's log goes to `validator.log` in its directory. `atoma validator --dir D` runs one
//! validator in the foreground — what an operator runs on their own machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atoma_client::Client;
use atoma_ledger::LedgerOptions;
use atoma_ledger::genesis::{LocalNetworkOptions, MAX_TEST_ACCOUNTS};
use atoma_ledger::keystore::{KEYSTORE_FILE, Keystore};
use atoma_validator::committee::NetworkFile;
use atoma_validator::testnet::{self, DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, TestnetOptions};
use clap::Args;
use serde_json::json;

use crate::error::{CliError, CliErrorKind, CliResult};
use crate::keys::{self, Keys};
use crate::output::Output;

/// `atoma testnet` options.
#[derive(Args, Debug, Clone)]
pub struct TestnetArgs {
    /// Validators in the set (4 tolerates one faulty; 3f+1 tolerate f)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub validators: u16,
    /// Where the testnet lives [default: $ATOMA_HOME/testnet]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Validator i serves JSON-RPC on 127.0.0.1:(PORT + i)
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_RPC_PORT)]
    pub rpc_port: u16,
    /// Validator i listens for its peers on 127.0.0.1:(PORT + i)
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_P2P_PORT)]
    pub p2p_port: u16,
    /// Funded test accounts to create at genesis (first run or --fresh only)
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TEST_ACCOUNTS))]
    pub accounts: u64,
    /// How long an epoch lasts at least, in milliseconds (first run or --fresh only)
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub epoch_ms: u64,
    /// Delete the testnet and create a new one (a new genesis, new validator keys)
    #[arg(long)]
    pub fresh: bool,
    /// Create the testnet's directories and exit without starting the validators
    #[arg(long)]
    pub create_only: bool,
}

/// `atoma validator` options.
#[derive(Args, Debug, Clone)]
pub struct ValidatorArgs {
    /// The validator's directory: network.json, identity.key, share.key (see docs/VALIDATORS.md)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Runs one validator in the foreground until Ctrl-C or SIGTERM.
///
/// # Errors
/// `EValidator` when its files, keys or ledger cannot be used, or its RPC address is taken.
pub async fn run_validator(args: ValidatorArgs, out: &Output) -> CliResult<()> {
    crate::start::install_log();
    let dir = args.dir.clone();
    let json = out.is_json();
    // The validator runs its own runtime (Commonware's, on tokio): on a thread of its own.
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = atoma_validator::process::run(&dir, LedgerOptions::default(), move |ready| {
            let doc = json!({
                "validator": ready.index,
                "validators": ready.validators,
                "rpcUrl": ready.rpc_url,
                "p2pAddress": ready.p2p_address.to_string(),
                "chainId": ready.chain_id.to_string(),
                "height": ready.height.to_string(),
            });
            let text = format!(
                "validator {} of {} is running: RPC {} · p2p {} · chain {} at height {}",
                ready.index, ready.validators, ready.rpc_url, ready.p2p_address, ready.chain_id, ready.height
            );
            Output::new(json).stream(&doc, &text);
        });
        let _ = sender.send(result);
    });
    let result =
        receiver.await.map_err(|_| validator_error("the validator's thread ended without a word"))?;
    result.map_err(|e| validator_error(&e.to_string()))
}

fn validator_error(message: &str) -> CliError {
    CliError::new(CliErrorKind::EValidator, message)
}

/// Creates the testnet if needed, starts its validators and waits for Ctrl-C.
///
/// # Errors
/// `EValidator` when the testnet cannot be created or a validator does not start.
pub async fn run_testnet(args: TestnetArgs, out: &Output) -> CliResult<()> {
    let home = keys::home()?;
    let root = args.dir.clone().unwrap_or_else(|| home.join("testnet"));
    let dirs = prepare(&args, &root)?;
    for dir in &dirs {
        Keys::load(&home)?.merge(&Keystore::load(&dir.join(KEYSTORE_FILE)).map_err(CliError::from)?)?;
    }
    if args.create_only {
        let doc = json!({"dir": root.display().to_string(), "validators": dirs.len()});
        out.stream(&doc, &format!("created a testnet of {} validators in {}", dirs.len(), root.display()));
        return Ok(());
    }
    let mut children = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        match spawn_validator(dir) {
            Ok(child) => children.push(child),
            Err(e) => {
                stop(children);
                return Err(e);
            }
        }
    }
    let network = NetworkFile::load(&dirs[0]).map_err(|e| validator_error(&e.to_string()))?;
    let rpc: Vec<SocketAddr> = network.validators.iter().map(|v| v.rpc_address).collect();
    if let Err(e) = wait_until_serving(&rpc, &mut children).await {
        stop(children);
        return Err(e);
    }
    out.stream(&banner_json(&root, &network), &banner(&root, &network, &home));
    crate::start::wait_for_shutdown().await;
    out.note("shutting down: stopping the validators");
    stop(children);
    out.note("stopped; the testnet continues where it left off on the next `atoma testnet`");
    Ok(())
}

/// The testnet's validator directories: those in `root`, or a new testnet's.
fn prepare(args: &TestnetArgs, root: &Path) -> CliResult<Vec<PathBuf>> {
    let existing = testnet::existing(root);
    if !existing.is_empty() && !args.fresh {
        return Ok(existing);
    }
    if args.fresh && root.exists() {
        std::fs::remove_dir_all(root).map_err(|e| validator_error(&format!("{}: {e}", root.display())))?;
    }
    let genesis = LocalNetworkOptions {
        accounts: args.accounts,
        epoch_duration_ms: args.epoch_ms,
        ..LocalNetworkOptions::default()
    };
    let options = TestnetOptions {
        validators: usize::from(args.validators),
        rpc_port: args.rpc_port,
        p2p_port: args.p2p_port,
        genesis,
    };
    testnet::create(root, &options).map_err(|e| validator_error(&e.to_string()))
}

/// Starts `atoma validator --dir dir`, its output in `dir/validator.log`.
fn spawn_validator(dir: &Path) -> CliResult<Child> {
    let exe =
        std::env::current_exe().map_err(|e| validator_error(&format!("which atoma is running: {e}")))?;
    let log = dir.join("validator.log");
    let file =
        std::fs::File::create(&log).map_err(|e| validator_error(&format!("{}: {e}", log.display())))?;
    let err = file.try_clone().map_err(|e| validator_error(&format!("{}: {e}", log.display())))?;
    Command::new(exe)
        .arg("validator")
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| validator_error(&format!("cannot start a validator: {e}")))
}

/// Waits until every validator answers over JSON-RPC; fails if one exits first.
async fn wait_until_serving(rpc: &[SocketAddr], children: &mut [Child]) -> CliResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, address) in rpc.iter().enumerate() {
        let client =
            Client::new(&format!("http://{address}")).map_err(|e| validator_error(&e.to_string()))?;
        loop {
            if client.get_chain_info().await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = children[i].try_wait() {
                return Err(validator_error(&format!(
                    "validator {i} exited ({status}); see its validator.log"
                )));
            }
            if Instant::now() > deadline {
                return Err(validator_error(&format!(
                    "validator {i} did not serve within 60 s; see its validator.log"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Asks every validator to stop (SIGTERM), then kills those still running after 10 s.
fn stop(mut children: Vec<Child>) {
    for child in &children {
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for child in &mut children {
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn banner_json(root: &Path, network: &NetworkFile) -> serde_json::Value {
    let validators: Vec<serde_json::Value> = network
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            json!({
                "rpcUrl": format!("http://{}", v.rpc_address),
                "p2pAddress": v.p2p_address.to_string(),
                "dir": testnet::validator_dir(root, i).display().to_string(),
            })
        })
        .collect();
    json!({
        "chainId": network.genesis.digest().to_string(),
        "dir": root.display().to_string(),
        "validators": validators,
    })
}

fn banner(root: &Path, network: &NetworkFile, home: &Path) -> String {
    let rows: Vec<String> = network
        .validators
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "  {i}  RPC http://{}  p2p {}  log {}",
                v.rpc_address,
                v.p2p_address,
                testnet::validator_dir(root, i).join("validator.log").display()
            )
        })
        .collect();
    let first = network.validators.first().map(|v| format!("http://{}", v.rpc_address)).unwrap_or_default();
    let rpc_flag =
        if first == crate::start::default_rpc_url() { String::new() } else { format!(" --rpc {first}") };
    let f = network.validators.len().saturating_sub(1) / 3;
    format!(
        "Atoma testnet of {} validators is running (it tolerates {f} faulty)\n\n\
         chain id:   {}\n\
         testnet:    {}\n\
         keystore:   {}\n\n\
         {}\n\n\
         Any validator's RPC serves every method. Try, in another terminal:\n\
         \x20 atoma{rpc_flag} status\n\
         \x20 atoma{rpc_flag} demo\n\n\
         Press Ctrl-C to stop; the testnet continues where it left off on the next `atoma testnet`.",
        network.validators.len(),
        network.genesis.digest(),
        root.display(),
        home.join(KEYSTORE_FILE).display(),
        rows.join("\n"),
    )
}
