//! `atoma agent` (run a node agent, show what it did) and `atoma chat` (talk to a stack's node
//! through its agent, as a stack owner): docs/AGENT.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atoma_agent::NodeKeys;
use atoma_agent::config::AgentConfig;
use atoma_agent::token::StackToken;
use atoma_api::StackLookup;
use atoma_contract::{NodeSmallId, StackSmallId};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::keys::ENCLAVE_PREFIX;
use crate::output::{Output, Report};

/// `atoma agent` subcommands.
#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Run the node agent in the foreground: serve the stacks sampled to its nodes through an
    /// OpenAI-compatible API, and settle, attest, resolve disputes and claim on their behalf
    ///
    /// The configuration file is TOML (docs/AGENT.md §2); the nodes' keys come from the
    /// keystore by the aliases it names, and a node's enclave key (enclave-node-N) signs its
    /// confidential-compute settlements. The log goes to stderr, filtered by ATOMA_LOG.
    Run(AgentRunArgs),
    /// Show what an agent has done: its stacks, units served, settlements, attestations,
    /// disputes, claims and the transactions it is waiting on
    Status {
        /// The agent's URL
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        url: String,
    },
}

/// `atoma agent run` options: the file, and flags that override its fields.
#[derive(Args, Debug, Clone)]
pub struct AgentRunArgs {
    /// The agent's configuration file (TOML)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where the OpenAI-compatible API listens [default: the file's `listen`]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// The URL users are told, announced on chain [default: the file's `public_url`, else
    /// http://<the address bound>]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Where the agent keeps its state [default: the file's `state_dir`]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Settle a stack idle this long [default: the file's `idle_settle_secs`]
    #[arg(long, value_name = "SECONDS")]
    pub idle_settle_secs: Option<u64>,
}

/// `atoma chat` options.
#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// The stack to use (the signer must own it)
    #[arg(long, value_name = "N")]
    pub stack: u64,
    /// What to ask
    pub prompt: String,
    /// Ask for a stream of server-sent events and print the pieces as they come
    #[arg(long)]
    pub stream: bool,
    /// The most output tokens to ask for
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_tokens: u64,
}

fn agent_error(message: impl Into<String>) -> CliError {
    CliError::new(CliErrorKind::EAgent, message)
}

/// Runs `atoma agent run` until Ctrl-C or SIGTERM, or until the agent fails.
///
/// # Errors
/// `EFile` for a configuration that cannot be read or is refused, `EUnknownKey` for a node key
/// the keystore lacks, `EAgent` when the agent cannot start or stops.
pub async fn run(ctx: &mut Ctx, args: AgentRunArgs, out: &Output) -> CliResult<()> {
    crate::start::install_log();
    let mut config =
        AgentConfig::load(&args.config).map_err(|e| CliError::new(CliErrorKind::EFile, e.to_string()))?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = args.public_url {
        config.public_url = Some(url);
    }
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    if let Some(secs) = args.idle_settle_secs {
        config.idle_settle_secs = secs;
    }
    // The flags go through the same checks as the file.
    config.check().map_err(|e| CliError::invalid(e.to_string()))?;
    let mut keys = Vec::new();
    for node in &config.nodes {
        let owner = ctx.keys()?.find(&node.key)?.key;
        let enclave = ctx.keys()?.get(&format!("{ENCLAVE_PREFIX}{}", node.node))?;
        keys.push(NodeKeys { node: node.node, owner, enclave });
    }
    let nodes: Vec<u64> = config.nodes.iter().map(|n| n.node).collect();
    let models: Vec<String> = config.models.keys().cloned().collect();
    let agent = atoma_agent::start(config, keys).await.map_err(|e| agent_error(e.to_string()))?;
    let url = agent.shared().public_url.clone();
    out.stream(
        &json!({"url": url, "listen": agent.address.to_string(), "nodes": nodes, "models": models}),
        &format!(
            "agent for node(s) {} serving {} on {url} (OpenAI base URL {url}/v1); status: atoma agent status --url {url}",
            nodes.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            models.join(", ")
        ),
    );
    agent.run_until(crate::start::wait_for_shutdown()).await.map_err(|e| agent_error(e.to_string()))
}

/// `atoma agent status`.
///
/// # Errors
/// `EAgent` when nothing answers at the URL or the answer is not a status.
pub async fn status(url: &str) -> CliResult<Report> {
    let target = format!("{}/atoma/v1/status", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&target)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| agent_error(format!("no agent answers at {url}: {e}")))?;
    let status: Value = response.json().await.map_err(|e| agent_error(format!("{target}: {e}")))?;
    let mut text = format!(
        "agent at {} for node(s) {}\n",
        status["publicUrl"].as_str().unwrap_or(url),
        status["nodes"]
            .as_array()
            .map(|n| n.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    );
    let empty = serde_json::Map::new();
    let counters = status["counters"].as_object().unwrap_or(&empty);
    for (name, value) in counters {
        text.push_str(&format!("  {:<24} {value}\n", name.replace('_', " ")));
    }
    text.push_str(&format!(
        "  {:<24} {}\n  {:<24} {}\n  {:<24} {}\n",
        "attestations waiting",
        status["attestationJobs"],
        "disputes waiting",
        status["disputeJobs"],
        "transactions unanswered",
        status["pendingTransactions"].as_array().map_or(0, Vec::len)
    ));
    let stacks = status["stacks"].as_array().cloned().unwrap_or_default();
    if stacks.is_empty() {
        text.push_str("no stacks yet");
    } else {
        text.push_str(&format!(
            "{:>7} {:>5} {:>9} {:>10} {:>8}  outcome\n",
            "stack", "node", "phase", "used/units", "requests"
        ));
        for s in &stacks {
            let field = |name: &str| match &s[name] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            text.push_str(&format!(
                "{:>7} {:>5} {:>9} {:>10} {:>8}  {}\n",
                field("stack"),
                field("node"),
                field("phase"),
                format!("{}/{}", field("used"), field("units")),
                field("requests"),
                field("outcome")
            ));
        }
    }
    Ok(Report::new(status, text.trim_end().to_string()))
}

/// `atoma chat`: finds the stack's node and its agent on chain, authorizes with a fresh stack
/// token signed by the signer, asks, and prints the answer and the units left.
///
/// # Errors
/// `EInvalidArgument` when the stack is closed or the signer does not own it; `EAgent` when the
/// node announced no endpoint or its agent refuses the request (with the agent's error code).
pub async fn chat(ctx: &mut Ctx, args: ChatArgs) -> CliResult<Report> {
    let signer = ctx.signer()?;
    let rpc = ctx.rpc()?;
    let view = match rpc.check(rpc.client().get_stack(StackSmallId(args.stack)).await)? {
        StackLookup::Open(view) => view,
        StackLookup::Closed(_) => return Err(CliError::invalid(format!("stack {} is closed", args.stack))),
    };
    if view.owner != Some(signer.key.address()) {
        return Err(CliError::invalid(format!(
            "stack {} is not owned by the signer {} (choose the owner with --as)",
            args.stack, signer.alias
        )));
    }
    let task = rpc.check(rpc.client().get_task(view.task_small_id).await)?;
    let node = rpc.check(rpc.client().get_node(NodeSmallId(view.selected_node.0)).await)?;
    let Some(endpoint) = node.endpoint else {
        return Err(agent_error(format!(
            "node {} announced no endpoint: its agent is not running (docs/AGENT.md)",
            view.selected_node.0
        )));
    };
    let chain_id = rpc.check(rpc.client().get_chain_info().await)?.chain_id.0;
    let not_after_ms = atoma_agent::agent::now_ms().saturating_add(600_000);
    let token = StackToken { chain_id, stack: args.stack, owner: signer.key.address(), not_after_ms }
        .sign(&signer.key);
    let model = task.model_name.unwrap_or_default();
    let body = json!({"model": model, "messages": [{"role": "user", "content": args.prompt}],
                      "max_tokens": args.max_tokens, "stream": args.stream,
                      "stream_options": if args.stream { json!({"include_usage": true}) } else { Value::Null }});
    let url = format!("{}/v1/chat/completions", endpoint.trim_end_matches('/'));
    let mut response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| {
            agent_error(format!("node {}'s agent at {endpoint} does not answer: {e}", view.selected_node.0))
        })?;
    let left = response.headers().get("x-atoma-units-left").and_then(|v| v.to_str().ok()).map(str::to_string);
    if !response.status().is_success() {
        let status = response.status();
        let error: Value = response.json().await.unwrap_or(Value::Null);
        return Err(agent_error(format!(
            "the agent refused ({status} {}): {}",
            error["error"]["code"].as_str().unwrap_or("?"),
            error["error"]["message"].as_str().unwrap_or("")
        )));
    }
    let (answer, usage) = if args.stream {
        let mut text = String::new();
        let mut usage = Value::Null;
        let mut buffer = String::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| agent_error(format!("the stream broke: {e}")))?
        {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let Some(data) = event.trim().strip_prefix("data: ") else { continue };
                if data == "[DONE]" {
                    continue;
                }
                let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                if let Some(piece) = value.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                    text.push_str(piece);
                }
                if !value["usage"].is_null() {
                    usage = value["usage"].clone();
                }
            }
        }
        (text, usage)
    } else {
        let value: Value = response.json().await.map_err(|e| agent_error(format!("{url}: {e}")))?;
        (
            value
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            value["usage"].clone(),
        )
    };
    let left = left.unwrap_or_else(|| "?".into());
    let json = json!({"stack": args.stack, "node": view.selected_node.0, "answer": answer, "usage": usage, "unitsLeft": left});
    let text = format!(
        "{answer}\n\n(stack {}, node {}: {} units used, {left} left)",
        args.stack, view.selected_node.0, usage["total_tokens"]
    );
    Ok(Report::new(json, text))
}
