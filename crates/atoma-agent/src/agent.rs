//! The running agent: its shared state, start-up, the chain lookups it caches, and the one path
//! every transaction it sends takes (docs/AGENT.md §6, "never twice").

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atoma_api::rpc::{ExecutionStatus, TransactionResult};
use atoma_api::{StackLookup, StackView};
use atoma_client::{Client, ClientError};
use atoma_contract::{Address, Call, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::{Keypair, SignedTransaction};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::AgentConfig;
use crate::follow::FollowError;
use crate::records::{Phase, Purpose, Sent, put_stack_in, stack_in};
use crate::store::{AgentStore, StoreError};

/// How long a stack owner read from the chain is trusted before it is read again (a stack's
/// badge can change hands).
pub const OWNER_TTL: Duration = Duration::from_secs(10);

/// The keys of one node the agent operates.
pub struct NodeKeys {
    /// The node's small id.
    pub node: u64,
    /// The key that owns the node's badge: it signs the node's transactions.
    pub owner: Keypair,
    /// The node's enclave key, which signs confidential-compute settlements, when it has one.
    pub enclave: Option<Keypair>,
}

/// Why the agent stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The chain could not be asked at start.
    #[error("the chain at {url}: {source}")]
    Chain {
        /// The RPC URL.
        url: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// A configured node has no key, or its badge is not owned by the key given for it.
    #[error("node {node}: {problem}")]
    Node {
        /// The node.
        node: u64,
        /// What is wrong.
        problem: String,
    },
    /// The API's address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Following the chain failed for good.
    #[error(transparent)]
    Follow(#[from] FollowError),
    /// A task of the agent ended unexpectedly.
    #[error("the agent's {0} stopped")]
    Stopped(&'static str),
}

/// The current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What every part of the agent shares.
pub struct Shared {
    /// The configuration.
    pub config: AgentConfig,
    /// The chain's id.
    pub chain_id: [u8; 32],
    /// The URL users and other agents are told: the configured one, or `http://<bound address>`.
    pub public_url: String,
    /// The nodes operated, by small id.
    pub nodes: BTreeMap<u64, NodeKeys>,
    /// The durable state.
    pub store: AgentStore,
    /// The chain.
    pub client: Client,
    /// Calls to backends and to other agents.
    pub http: reqwest::Client,
    /// Units reserved by requests in flight, by stack.
    pub reserved: std::sync::Mutex<HashMap<u64, u64>>,
    owners: std::sync::Mutex<HashMap<u64, (Option<Address>, Instant)>>,
    task_models: std::sync::Mutex<HashMap<u64, Option<String>>>,
    open_stacks: std::sync::Mutex<HashMap<u64, StackView>>,
    /// Held while a transaction is signed, recorded, sent and answered: one at a time, so the
    /// chain's nonce is always the next one.
    sending: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Whether `node` is one of ours.
    pub fn ours(&self, node: u64) -> bool {
        self.nodes.contains_key(&node)
    }

    /// The model a task names, read from the chain once.
    ///
    /// # Errors
    /// The chain's error.
    pub async fn task_model(&self, task: u64) -> Result<Option<String>, ClientError> {
        if let Some(model) = lock(&self.task_models).get(&task) {
            return Ok(model.clone());
        }
        let view = self.client.get_task(TaskSmallId(task)).await?;
        lock(&self.task_models).insert(task, view.model_name.clone());
        Ok(view.model_name)
    }

    /// A stack's current owner on the chain, read again after [`OWNER_TTL`].
    ///
    /// # Errors
    /// The chain's error.
    pub async fn stack_owner(&self, stack: u64, refresh: bool) -> Result<Option<Address>, ClientError> {
        if let Some((owner, at)) = lock(&self.owners).get(&stack)
            && !refresh
            && at.elapsed() < OWNER_TTL
        {
            return Ok(*owner);
        }
        let owner = match self.client.get_stack(StackSmallId(stack)).await? {
            StackLookup::Open(view) => view.owner,
            StackLookup::Closed(_) => None,
        };
        lock(&self.owners).insert(stack, (owner, Instant::now()));
        Ok(owner)
    }

    /// An open stack's view as bought (its terms do not change), read from the chain once;
    /// `None` when the stack has closed.
    ///
    /// # Errors
    /// The chain's error.
    pub async fn stack_terms(&self, stack: u64) -> Result<Option<StackView>, ClientError> {
        if let Some(view) = lock(&self.open_stacks).get(&stack) {
            return Ok(Some(view.clone()));
        }
        match self.client.get_stack(StackSmallId(stack)).await? {
            StackLookup::Open(view) => {
                lock(&self.open_stacks).insert(stack, (*view).clone());
                Ok(Some(*view))
            }
            StackLookup::Closed(_) => Ok(None),
        }
    }

    /// Forgets what is cached of a stack that closed.
    pub fn forget_stack(&self, stack: u64) {
        lock(&self.open_stacks).remove(&stack);
        lock(&self.owners).remove(&stack);
    }

    /// Sends `call` signed by `node`'s owner: the transaction is recorded before it is sent
    /// and forgotten with its outcome applied once the chain answers; anything recorded earlier
    /// whose outcome is unknown is settled first.
    ///
    /// # Errors
    /// The chain's error; the transaction then stays recorded and is looked up (and sent again
    /// if the chain never saw it) before the next one.
    pub async fn send(
        &self,
        node: u64,
        call: Call,
        purpose: Purpose,
    ) -> Result<TransactionResult, ClientError> {
        let _turn = self.sending.lock().await;
        self.settle_sent().await?;
        let Some(keys) = self.nodes.get(&node) else {
            return Err(ClientError::Decode {
                method: "send".into(),
                reason: format!("node {node} is not operated here"),
            });
        };
        let nonce = self.client.get_nonce(&keys.owner.address()).await?;
        let signed = keys.owner.sign_call(self.chain_id, nonce, call);
        let digest = signed.digest().0;
        self.store
            .put_sent(&digest, &Sent { purpose: purpose.clone(), tx: signed.to_bytes() })
            .map_err(|e| store_failure(&e))?;
        let result = self.client.execute_transaction(&signed).await?;
        self.apply(&digest, &purpose, &result).map_err(|e| store_failure(&e))?;
        Ok(result)
    }

    /// Settles every recorded transaction (as [`Shared::send`] does first), so that the records
    /// say what the chain did before the worker decides what to send.
    ///
    /// # Errors
    /// The chain's error, for the first one that cannot be settled now.
    pub async fn settle_recorded(&self) -> Result<(), ClientError> {
        let _turn = self.sending.lock().await;
        self.settle_sent().await
    }

    /// Finds out what became of every recorded transaction: looked up by digest, sent again
    /// unchanged when the chain does not have it (its nonce makes a second copy impossible).
    ///
    /// # Errors
    /// The chain's error, for the first one that cannot be settled now.
    async fn settle_sent(&self) -> Result<(), ClientError> {
        let pending = self.store.sent().map_err(|e| store_failure(&e))?;
        for (digest, sent) in pending {
            let result = match self.client.get_transaction(&atoma_types::Digest(digest)).await {
                Ok(result) => Some(result),
                Err(e) if e.name() == Some("ETransactionNotFound") => {
                    let signed = SignedTransaction::from_bytes(&sent.tx)
                        .map_err(|e| ClientError::Decode { method: "sent".into(), reason: e.to_string() })?;
                    match self.client.execute_transaction(&signed).await {
                        Ok(result) => Some(result),
                        // Its nonce went to another transaction: it can never land.
                        Err(e) if matches!(e.name(), Some("ENonceUsed" | "EWrongChainId")) => None,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            match result {
                Some(result) => self.apply(&digest, &sent.purpose, &result),
                None => {
                    tracing::warn!(purpose = ?sent.purpose, "a recorded transaction can no longer land; dropped");
                    self.store.write(|txn| AgentStore::remove_sent_in(txn, &digest))
                }
            }
            .map_err(|e| store_failure(&e))?;
        }
        Ok(())
    }

    /// Forgets a sent transaction and applies what its outcome means for the records.
    fn apply(
        &self,
        digest: &[u8; 32],
        purpose: &Purpose,
        result: &TransactionResult,
    ) -> Result<(), StoreError> {
        let ok = result.status == ExecutionStatus::Success;
        let error = result.error.as_ref().map_or_else(String::new, |e| e.name.clone());
        if ok {
            tracing::info!(?purpose, digest = %result.digest, "transaction applied");
        } else {
            tracing::warn!(?purpose, %error, digest = %result.digest, "transaction refused");
        }
        self.store.write(|txn| {
            AgentStore::remove_sent_in(txn, digest)?;
            match purpose {
                Purpose::Settle { stack } => {
                    if let Some(mut record) = stack_in(txn, *stack)? {
                        if ok {
                            record.phase = Phase::Settled;
                        } else if error != "EStackInSettlementDispute" {
                            // A ticket exists already unless the stack closed or the settlement is
                            // refused for good; either way there is nothing left to do.
                            record.phase = Phase::Closed;
                            record.outcome = Some(format!("settlement refused: {error}"));
                        } else {
                            record.phase = Phase::Settled;
                        }
                        put_stack_in(txn, *stack, &record)?;
                    }
                    if ok {
                        crate::records::count_in(txn, "settlements", 1)?;
                    }
                }
                Purpose::Claim { stacks, .. } => {
                    if ok {
                        crate::records::count_in(txn, "claims", 1)?;
                        for stack in stacks {
                            if let Some(mut record) = stack_in(txn, *stack)? {
                                record.phase = Phase::Closed;
                                record.outcome = Some("claimed".into());
                                put_stack_in(txn, *stack, &record)?;
                            }
                        }
                    }
                }
                Purpose::Attest { .. } | Purpose::Resolve { .. } | Purpose::Endpoint { .. } => {}
            }
            Ok(())
        })
    }
}

fn store_failure(error: &StoreError) -> ClientError {
    ClientError::Decode { method: "the agent's store".into(), reason: error.to_string() }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running agent.
pub struct RunningAgent {
    /// Where its API listens.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), AgentError>>)>,
}

impl RunningAgent {
    /// The API's base URL (`http://address`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The shared state, for tests and the status view.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs until a task of the agent fails or `stop` resolves, then stops everything (as
    /// [`RunningAgent::shutdown`] does).
    ///
    /// # Errors
    /// The first task's failure.
    pub async fn run_until(mut self, stop: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
        let (names, mut handles): (Vec<&'static str>, Vec<_>) = self.tasks.drain(..).unzip();
        let first = futures_first(&mut handles);
        let outcome = tokio::select! {
            (index, result) = first => match result {
                Ok(Ok(())) => Err(AgentError::Stopped(names[index])),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(AgentError::Stopped(names[index])),
            },
            () = stop => Ok(()),
        };
        self.tasks = names.into_iter().zip(handles).collect();
        self.shutdown().await;
        outcome
    }

    /// Stops the agent: the API stops taking requests and finishes the ones in flight, the
    /// follower and the worker stop between two steps, and the store is closed when this
    /// returns (so the same state directory can be opened again at once). A task that does not
    /// stop within [`SHUTDOWN_WAIT`] is aborted.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for (name, mut handle) in self.tasks.drain(..) {
            if tokio::time::timeout(SHUTDOWN_WAIT, &mut handle).await.is_err() {
                tracing::warn!(task = name, "did not stop in time; aborted");
                handle.abort();
            }
        }
        // Connections that were open when the API stopped drop their share a moment later.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        while Arc::strong_count(&self.shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How long [`RunningAgent::shutdown`] waits for each part of the agent.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The first of `handles` to finish, with its index.
async fn futures_first(
    handles: &mut [JoinHandle<Result<(), AgentError>>],
) -> (usize, Result<Result<(), AgentError>, tokio::task::JoinError>) {
    std::future::poll_fn(|cx| {
        for (index, handle) in handles.iter_mut().enumerate() {
            if let std::task::Poll::Ready(result) = std::pin::Pin::new(handle).poll(cx) {
                return std::task::Poll::Ready((index, result));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

use std::future::Future as _;

/// Starts an agent: opens its store, checks its nodes against the chain, announces its
/// endpoint where the chain holds another, and starts the API, the follower and the worker.
///
/// # Errors
/// [`AgentError`] naming what is wrong; nothing is left running.
pub async fn start(config: AgentConfig, keys: Vec<NodeKeys>) -> Result<RunningAgent, AgentError> {
    let chain_error = |source| AgentError::Chain { url: config.rpc.clone(), source };
    std::fs::create_dir_all(&config.state_dir)
        .map_err(|e| StoreError::Storage { what: "directory cannot be created", source: Box::new(e) })?;
    let store = AgentStore::open(&config.state_dir.join("agent.redb"))?;
    store.create_records()?;
    let client = Client::new(&config.rpc).map_err(chain_error)?;
    let info = client.get_chain_info().await.map_err(chain_error)?;
    let mut nodes = BTreeMap::new();
    for key in keys {
        nodes.insert(key.node, key);
    }
    for node in &config.nodes {
        let Some(keys) = nodes.get(&node.node) else {
            return Err(AgentError::Node { node: node.node, problem: "no key was given for it".into() });
        };
        let view = client.get_node(NodeSmallId(node.node)).await.map_err(chain_error)?;
        if view.owner != Some(keys.owner.address()) {
            return Err(AgentError::Node {
                node: node.node,
                problem: format!(
                    "its badge is not owned by {} (the key `{}`)",
                    keys.owner.address(),
                    node.key
                ),
            });
        }
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Listen { address: config.listen, source })?;
    let address =
        listener.local_addr().map_err(|source| AgentError::Listen { address: config.listen, source })?;
    let public_url = config.public_url.clone().unwrap_or_else(|| format!("http://{address}"));
    let shared = Arc::new(Shared {
        chain_id: info.chain_id.0,
        public_url,
        nodes,
        store,
        client,
        http: reqwest::Client::new(),
        reserved: std::sync::Mutex::new(HashMap::new()),
        owners: std::sync::Mutex::new(HashMap::new()),
        task_models: std::sync::Mutex::new(HashMap::new()),
        open_stacks: std::sync::Mutex::new(HashMap::new()),
        sending: tokio::sync::Mutex::new(()),
        config,
    });
    crate::work::announce(&shared).await;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let app = crate::serve::router(Arc::clone(&shared));
    let mut api_stop = stopped.clone();
    tasks.push((
        "API",
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = api_stop.wait_for(|s| *s).await;
                })
                .await
                .map_err(|_| AgentError::Stopped("API"))
        }),
    ));
    let follower = Arc::clone(&shared);
    let mut follow_stop = stopped.clone();
    tasks.push((
        "follower",
        tokio::spawn(async move {
            let mut handler = crate::work::EventHandler { shared: Arc::clone(&follower) };
            crate::follow::follow(
                &follower.client,
                &atoma_types::EventFilter::All,
                &follower.store,
                &mut handler,
                async move {
                    let _ = follow_stop.wait_for(|s| *s).await;
                },
            )
            .await?;
            Ok(())
        }),
    ));
    let worker = Arc::clone(&shared);
    let worker_stop = stopped;
    tasks.push(("worker", tokio::spawn(async move { crate::work::run(worker, worker_stop).await })));
    Ok(RunningAgent { address, shared, stop, tasks })
}
