//! What a run does: [`LoadConfig`] and its parts.

use std::time::Duration;

use atoma_contract::TOMA;
use atoma_types::Keypair;

use crate::conn::Transport;

/// How long one transaction keeps retrying busy answers before it counts as an error.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(60);
/// How long one request may take (a submission waits for its block).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// What the faucet gives each generated account.
pub const DEFAULT_FUNDING: u64 = 2_000 * TOMA;
/// How many transactions one key keeps in flight.
pub const DEFAULT_PIPELINE: usize = 4;

/// When the run ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stop {
    /// After this many transactions were sent and answered (setup not counted).
    Transactions(u64),
    /// No new transaction is sent after this long; those in flight are still awaited.
    Duration(Duration),
}

/// What the clients send.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Workload {
    /// `TransferToma` of one base unit to the next client's account (a ring), so the load
    /// accounts' total never changes.
    Transfers,
    /// A market: each client registers a node, creates a task (no model, no security) and
    /// subscribes its node to it; then its user buys stacks, its node settles each and claims
    /// the settled ones once their epoch has passed (batches of up to 16).
    Mix {
        /// On a local network, call `atoma_advanceEpoch` this often so that claims come due;
        /// `None` leaves epochs to the clock (one minute on a local network). A node under
        /// sustained load refuses these today (`EMempoolFull`, docs/RELIABILITY.md "Under
        /// load"); claims then wait for an epoch that passes.
        advance_epoch_every: Option<Duration>,
    },
}

impl Workload {
    /// A mix whose epochs advance every second.
    pub fn mix() -> Self {
        Workload::Mix { advance_epoch_every: Some(Duration::from_secs(1)) }
    }

    /// `"transfers"` or `"mix"`.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Transfers => "transfers",
            Workload::Mix { .. } => "mix",
        }
    }

    /// Keys each client signs with: its user, and for the mix its node operator too.
    pub fn keys_per_client(&self) -> usize {
        match self {
            Workload::Transfers => 1,
            Workload::Mix { .. } => 2,
        }
    }
}

/// Where the clients' keys come from.
#[derive(Clone)]
pub enum Accounts {
    /// New random keys, each funded with `amount` base units by `atoma_faucet` (local network).
    Faucet {
        /// Base units per key.
        amount: u64,
    },
    /// The local network's fixed test accounts `first`, `first + 1`, … (`Keypair::test_account`;
    /// `atoma start --accounts N` funds N of them).
    TestAccounts {
        /// The first index used.
        first: u64,
    },
    /// These keys, funded by the caller; at least `concurrency × keys_per_client`.
    Keys(Vec<Keypair>),
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::Faucet { amount: DEFAULT_FUNDING }
    }
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Accounts::Faucet { amount } => f.debug_struct("Faucet").field("amount", amount).finish(),
            Accounts::TestAccounts { first } => f.debug_struct("TestAccounts").field("first", first).finish(),
            Accounts::Keys(keys) => write!(f, "Keys({} keys)", keys.len()),
        }
    }
}

/// Everything a run needs. [`LoadConfig::new`] gives the defaults for a URL.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The node: `http://127.0.0.1:9000` (the WebSocket URL is derived).
    pub rpc_url: String,
    /// HTTP or WebSocket.
    pub transport: Transport,
    /// Concurrent clients; each has its own key(s) and connection.
    pub concurrency: usize,
    /// Transactions each key keeps in flight (nonces n, n+1, … sent before n is answered).
    pub pipeline: usize,
    /// When to stop.
    pub stop: Stop,
    /// What to send.
    pub workload: Workload,
    /// Whose keys sign.
    pub accounts: Accounts,
    /// How long one transaction retries busy answers (`EMempoolFull`, HTTP 429) and
    /// `ENonceFuture` before it counts as an error.
    pub retry_for: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How often the progress callback is called.
    pub progress_interval: Duration,
    /// Keep every answered transaction (digest, sender, status) in [`crate::Report::results`],
    /// for checking them against the chain afterwards.
    pub record_results: bool,
}

impl LoadConfig {
    /// 8 clients over WebSocket, a pipeline of 4, 1,000 transfers, accounts from the faucet.
    pub fn new(rpc_url: impl Into<String>) -> Self {
        LoadConfig {
            rpc_url: rpc_url.into(),
            transport: Transport::WebSocket,
            concurrency: 8,
            pipeline: DEFAULT_PIPELINE,
            stop: Stop::Transactions(1_000),
            workload: Workload::Transfers,
            accounts: Accounts::default(),
            retry_for: DEFAULT_RETRY_FOR,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            progress_interval: Duration::from_millis(250),
            record_results: false,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 || self.pipeline == 0 {
            return Err("concurrency and pipeline must be at least 1".into());
        }
        if self.stop == Stop::Transactions(0) || self.stop == Stop::Duration(Duration::ZERO) {
            return Err("nothing to do: the run stops at once".into());
        }
        if self.progress_interval.is_zero() {
            return Err("the progress interval must be above zero".into());
        }
        let needed = self.concurrency * self.workload.keys_per_client();
        match &self.accounts {
            Accounts::Keys(keys) if keys.len() < needed => {
                Err(format!("{needed} keys needed ({} given)", keys.len()))
            }
            Accounts::Faucet { amount: 0 } => Err("the faucet amount must be above zero".into()),
            _ => Ok(()),
        }
    }
}
