//! The command tree, as clap definitions. Handlers live in [`crate::cmd`]; this module only says
//! what can be typed. Every doc comment here is help text, and docs/CLI.md is generated from it.
//!
//! Units: amounts of TOMA (`--amount`, `--collateral`, treasury withdrawals) take TOMA with up to
//! nine decimals (`12.5`) or base units with the suffix `base` (`1500base`); prices per compute
//! unit and fees per token are whole base units (1 TOMA = 10^9 base units).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::agent::{AgentCmd, ChatArgs};
use crate::backend::BackendArgs;
use crate::format::{parse_hex, parse_toma};
use crate::names::{parse_device, parse_modality, parse_optimizations, parse_role, parse_security};
use crate::start::{StartArgs, default_rpc_url};
use crate::testnet::{TestnetArgs, ValidatorArgs};

/// Bytes given in hex on the command line (any length: the contract names a wrong length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

fn hex_arg(text: &str) -> Result<Hex, String> {
    parse_hex(text).map(Hex)
}

/// The Atoma protocol's command line: run a local network and call every entry function.
#[derive(Parser, Debug)]
#[command(name = "atoma", version, max_term_width = 100)]
#[command(
    after_help = "Start a local network with `atoma start`, then try `atoma demo` in another terminal."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The node's JSON-RPC URL
    #[arg(
        long,
        global = true,
        env = "ATOMA_RPC",
        hide_env_values = true,
        value_name = "URL",
        default_value_t = default_rpc_url()
    )]
    pub rpc: String,
    /// Which key signs: an alias or address from the keystore [default: `admin` for admin
    /// commands, else the first account that is not a system key, e.g. account-0]
    #[arg(
        long = "as",
        global = true,
        env = "ATOMA_AS",
        hide_env_values = true,
        value_name = "ALIAS|ADDRESS"
    )]
    pub signer: Option<String>,
    /// Print exactly one JSON document on stdout (errors too: {"error": {name, code, message}})
    #[arg(long, global = true)]
    pub json: bool,
}

/// Every command.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local network: chain, JSON-RPC server (HTTP + WebSocket), faucet and test accounts
    ///
    /// The node's log (a block that could not be stored, a request that failed inside the node,
    /// with every cause) goes to stderr, filtered by ATOMA_LOG (tracing directives such as `debug`
    /// or `atoma_rpc=debug`; by default the atoma crates at `info`, the rest at `warn`).
    Start(StartArgs),
    /// Run a validator set on this machine: one `atoma validator` process per validator
    ///
    /// The first run creates the testnet under $ATOMA_HOME/testnet (or --dir): a validator set
    /// with threshold keys from a dealer, the local network's genesis, faucet and test accounts,
    /// and one directory per validator. Validator i serves JSON-RPC on 127.0.0.1:(9000 + i);
    /// every RPC method and every command works against any of them. See docs/VALIDATORS.md.
    Testnet(TestnetArgs),
    /// Run one validator of a set in the foreground, from its directory
    Validator(ValidatorArgs),
    /// Serve a deterministic OpenAI-compatible inference backend (for agents in tests and demos)
    ///
    /// The same request always gets the same answer: words drawn by a hash of the model, the
    /// input and --variant, as many as max_tokens asks; usage counts one token per word. Routes:
    /// /v1/models, /v1/chat/completions (stream or not), /v1/completions, /v1/embeddings. See
    /// docs/AGENT.md.
    Backend(BackendArgs),
    /// Run a node agent, or see what one did (docs/AGENT.md)
    #[command(subcommand)]
    Agent(AgentCmd),
    /// Ask a stack's node through its agent, as the stack's owner, and print the answer
    ///
    /// Finds the node selected for the stack and the endpoint its agent announced on chain,
    /// signs a stack token with the signer's key (the stack's owner), sends one chat completion
    /// and prints the answer and the units left.
    Chat(ChatArgs),
    /// Manage the keystore ($ATOMA_HOME/keystore.json)
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Get TOMA from the local network's faucet
    Faucet(FaucetArgs),
    /// Show an account's TOMA balance
    Balance {
        /// Alias or address [default: the signer]
        who: Option<String>,
    },
    /// Send TOMA to another account
    Transfer {
        /// Recipient: alias or address
        to: String,
        /// TOMA to send (e.g. 12.5, or 1500base for base units)
        #[arg(value_parser = parse_toma)]
        amount: u64,
    },
    /// List or give away badges (manager, node, task and stack badges)
    #[command(subcommand)]
    Badge(BadgeCmd),
    /// Show the chain: id, height, epoch, signer and protocol summary
    Status,
    /// Check conservation of TOMA: every place it can be, and whether they add up
    Audit,
    /// Show a transaction by digest: status, error and events
    Tx {
        /// The transaction digest (base58)
        digest: String,
    },
    /// Move to the next epoch (local network)
    #[command(subcommand)]
    Epoch(EpochCmd),
    /// Move the chain's clock forward (local network)
    #[command(subcommand)]
    Clock(ClockCmd),
    /// Query events, or follow them live over WebSocket
    Events(EventsArgs),
    /// Operate a node: register, subscribe, settle, attest, claim, …
    #[command(subcommand)]
    Node(NodeCmd),
    /// Create, inspect and retire tasks
    #[command(subcommand)]
    Task(TaskCmd),
    /// Buy and manage stacks of compute units
    #[command(subcommand)]
    Stack(StackCmd),
    /// Inspect models
    #[command(subcommand)]
    Model(ModelCmd),
    /// Admin functions; they need a manager badge (found automatically)
    Admin(AdminArgs),
    /// Walk through the whole protocol on a running local network
    Demo(DemoArgs),
    /// Load a running local network over RPC: transactions per second and p50/p99 latency
    Bench(BenchArgs),
    /// Generate documentation
    #[command(subcommand, hide = true)]
    Docs(DocsCmd),
}

/// `atoma keys …`
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a new key under an alias
    New {
        /// The alias (letters, digits, '-', '_', '.')
        alias: String,
    },
    /// List every key: alias, address, kind
    List,
    /// Show one key's address and public key
    Show {
        /// Alias or address
        who: String,
        /// Also print the private key (hex)
        #[arg(long)]
        private_key: bool,
    },
    /// Import an ed25519 private key (32 bytes, hex) under an alias
    Import {
        /// The alias to store it under
        alias: String,
        /// The 32-byte ed25519 secret in hex (0x optional)
        private_key: String,
    },
}

/// `atoma faucet`
#[derive(Args, Debug)]
pub struct FaucetArgs {
    /// Recipient: alias or address [default: the signer]
    #[arg(long, value_name = "ALIAS|ADDRESS")]
    pub to: Option<String>,
    /// TOMA to send [default: the node's default, 1,000 TOMA]
    #[arg(long, value_name = "TOMA", value_parser = parse_toma)]
    pub amount: Option<u64>,
}

/// `atoma badge …`
#[derive(Subcommand, Debug)]
pub enum BadgeCmd {
    /// List the badges an account owns
    List {
        /// Alias or address [default: the signer]
        who: Option<String>,
    },
    /// Give a badge to another account
    Transfer {
        /// The badge's object id (0x…)
        badge: String,
        /// Recipient: alias or address
        to: String,
    },
}

/// `atoma epoch …`
#[derive(Subcommand, Debug)]
pub enum EpochCmd {
    /// Make a block in the next epoch now
    Advance,
}

/// `atoma clock …`
#[derive(Subcommand, Debug)]
pub enum ClockCmd {
    /// Move the clock forward by MS milliseconds and make a block
    Advance {
        /// Milliseconds to move forward
        ms: u64,
    },
}

/// `atoma events`
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("filter").args(["event_type", "sender", "tx", "node", "task", "stack"])))]
pub struct EventsArgs {
    /// Only events of this type, e.g. StackCreatedEvent
    #[arg(long = "type", value_name = "NAME")]
    pub event_type: Option<String>,
    /// Only events of transactions sent by this alias or address
    #[arg(long, value_name = "ALIAS|ADDRESS")]
    pub sender: Option<String>,
    /// Only events of this transaction (base58 digest)
    #[arg(long, value_name = "DIGEST")]
    pub tx: Option<String>,
    /// Only events naming this node
    #[arg(long, value_name = "N")]
    pub node: Option<u64>,
    /// Only events naming this task
    #[arg(long, value_name = "N")]
    pub task: Option<u64>,
    /// Only events naming this stack
    #[arg(long, value_name = "N")]
    pub stack: Option<u64>,
    /// Events per page (at most 1000)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Continue after this event: DIGEST:SEQ, as printed in `next cursor`
    #[arg(long, value_name = "DIGEST:SEQ")]
    pub cursor: Option<String>,
    /// Newest first
    #[arg(long)]
    pub desc: bool,
    /// Keep running and print matching events as they happen (WebSocket); with --json, one
    /// JSON document per line
    #[arg(long, conflicts_with_all = ["cursor", "desc"])]
    pub follow: bool,
}

/// How settlement commitments are given: directly, or computed from the served requests.
#[derive(Args, Debug, Clone)]
pub struct CommitmentArgs {
    /// The committed stack proof, 32 bytes in hex
    #[arg(long, value_name = "HEX", value_parser = hex_arg, conflicts_with = "outputs")]
    pub proof: Option<Hex>,
    /// The stack Merkle leaf, 32 bytes in hex
    #[arg(long, value_name = "HEX", value_parser = hex_arg, conflicts_with = "outputs")]
    pub leaf: Option<Hex>,
    /// Compute proof and leaf from the stack's requests: a JSON array of
    /// {"input": "...", "output": "..."} (UTF-8) or {"inputHex": "..", "outputHex": ".."}
    #[arg(long, value_name = "FILE")]
    pub outputs: Option<PathBuf>,
}

/// `atoma node …`
#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Register a node, putting up collateral; the signer gets its node badge
    Register {
        /// Collateral in TOMA [default: the registration collateral, 1,000 TOMA at genesis]
        #[arg(long, value_name = "TOMA", value_parser = parse_toma)]
        collateral: Option<u64>,
        /// Supported optimizations: names joined by commas (flash-attention, prompt-caching,
        /// quantization, pruning, speculative-decoding), a bit set number, or none
        #[arg(long, value_name = "LIST", default_value = "none", value_parser = parse_optimizations)]
        optimizations: u8,
    },
    /// Add collateral to a node
    AddCollateral {
        /// The node's small id
        node: u64,
        /// TOMA to add
        #[arg(value_parser = parse_toma)]
        amount: u64,
    },
    /// Offer a task at a price per compute unit
    Subscribe(SubscriptionArgs),
    /// Change a subscription's price or maximum compute units
    UpdateSubscription(SubscriptionArgs),
    /// Stop offering a task
    Unsubscribe {
        /// The node's small id
        node: u64,
        /// The task's small id
        #[arg(long)]
        task: u64,
    },
    /// Serve a model in an echelon
    JoinModel(ModelMembershipArgs),
    /// Stop serving a model in an echelon
    LeaveModel(ModelMembershipArgs),
    /// Replace the node's supported optimizations
    SetOptimizations {
        /// The node's small id
        node: u64,
        /// Names joined by commas, a bit set number, or none
        #[arg(value_parser = parse_optimizations)]
        optimizations: u8,
    },
    /// Publish where the node's agent serves users, so that they can find it from the chain
    SetEndpoint {
        /// The node's small id
        node: u64,
        /// The agent's http:// or https:// URL, at most 256 printable ASCII bytes
        url: String,
    },
    /// Permanently disable a node (it still settles the stacks it has)
    Disable {
        /// The node's small id
        node: u64,
    },
    /// Destroy a disabled node and get its collateral and fees back
    Destroy {
        /// The node's small id
        node: u64,
    },
    /// Withdraw the node's unlocked fees
    WithdrawFees {
        /// The node's small id
        node: u64,
    },
    /// Settle a stack the node was selected for (try_settle_stack)
    Settle {
        /// The node's small id
        node: u64,
        /// The stack's small id
        stack: u64,
        /// Compute units used
        #[arg(long)]
        units: u64,
        #[command(flatten)]
        commitment: CommitmentArgs,
        /// The enclave's settlement signature (hex), for confidential compute [default: signed
        /// with the keystore's enclave-node-N key when the stack needs one]
        #[arg(long, value_name = "HEX", value_parser = hex_arg)]
        tee_signature: Option<Hex>,
    },
    /// Attest a stack the node was requested to attest (sampling consensus)
    Attest {
        /// The attesting node's small id
        node: u64,
        /// The stack's small id
        stack: u64,
        #[command(flatten)]
        commitment: CommitmentArgs,
    },
    /// Start an attestation dispute as a requested attester
    Dispute {
        /// The attesting node's small id
        node: u64,
        /// The stack's small id
        stack: u64,
        /// The attester's own committed stack proof (hex)
        #[arg(long, value_name = "HEX", value_parser = hex_arg, required_unless_present = "outputs")]
        commitment: Option<Hex>,
        /// Compute the commitment from the attester's outputs (format as for `node settle`)
        #[arg(long, value_name = "FILE", conflicts_with = "commitment")]
        outputs: Option<PathBuf>,
    },
    /// Resolve a disputed stack as an oracle of the task's model
    Resolve {
        /// The oracle node's small id
        node: u64,
        /// The stack's small id
        stack: u64,
        /// The correct number of compute units
        #[arg(long)]
        units: u64,
        /// The correct committed stack proof (hex)
        #[arg(long, value_name = "HEX", value_parser = hex_arg, required_unless_present = "outputs")]
        proof: Option<Hex>,
        /// Compute the correct proof from the outputs (format as for `node settle`)
        #[arg(long, value_name = "FILE", conflicts_with = "proof")]
        outputs: Option<PathBuf>,
    },
    /// Claim the funds of settled stacks (after their dispute window)
    Claim {
        /// The node's small id
        node: u64,
        /// The stacks' small ids
        #[arg(required = true, num_args = 1..)]
        stacks: Vec<u64>,
        /// First wait until every pending ticket's dispute window has closed: past its epoch
        /// and past its floor in time (settlement plus the settlement timeout)
        #[arg(long)]
        wait: bool,
    },
    /// Commit an enclave public key for the current key rotation (confidential compute)
    CommitKey(CommitKeyArgs),
    /// Show a node: collateral, reputation, fees, subscriptions, models
    Show {
        /// The node's small id
        node: u64,
    },
}

/// A node's offer for a task.
#[derive(Args, Debug)]
pub struct SubscriptionArgs {
    /// The node's small id
    pub node: u64,
    /// The task's small id
    #[arg(long)]
    pub task: u64,
    /// Price per compute unit, in base units
    #[arg(long, value_name = "BASE_UNITS")]
    pub price: u64,
    /// The most compute units one stack may ask of the node
    #[arg(long, value_name = "UNITS")]
    pub max_units: u64,
}

/// A node's membership in a model's echelon.
#[derive(Args, Debug)]
pub struct ModelMembershipArgs {
    /// The node's small id
    pub node: u64,
    /// The model's name
    #[arg(long)]
    pub model: String,
    /// The echelon's id
    #[arg(long)]
    pub echelon: u64,
}

/// `atoma node commit-key`
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("key_source").args(["dev_root", "public_key"]).required(true)))]
pub struct CommitKeyArgs {
    /// The node's small id
    pub node: u64,
    /// The device type: intel-cpu, amd-cpu, arm-cpu, nvidia-gpu, nvidia-nvswitch, or a number
    #[arg(long, value_parser = parse_device)]
    pub device: u16,
    /// Local network: make an enclave key (stored as enclave-node-N) and evidence signed by the
    /// development root dev-root-<device> that `atoma admin add-root --dev` stored
    #[arg(long)]
    pub dev_root: bool,
    /// The enclave public key (32 bytes, hex)
    #[arg(long, value_name = "HEX", value_parser = hex_arg, requires = "evidence")]
    pub public_key: Option<Hex>,
    /// The evidence (hex): device key ‖ root signature ‖ device signature
    #[arg(long, value_name = "HEX", value_parser = hex_arg, requires = "public_key")]
    pub evidence: Option<Hex>,
    /// The key rotation counter [default: the current one]
    #[arg(long)]
    pub rotation: Option<u64>,
}

/// `atoma task …`
#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Create a task; the signer gets its task badge
    Create {
        /// chat-completions, embeddings, vision, image-generation, text-to-speech,
        /// speech-to-text, fine-tuning, training, or a number
        #[arg(long, value_parser = parse_role)]
        role: u16,
        /// The model the task runs
        #[arg(long)]
        model: Option<String>,
        /// none, tee (confidential compute), sampling (sampling consensus), or a number
        #[arg(long, default_value = "none", value_parser = parse_security)]
        security: u16,
        /// The minimum reputation (0..=1000) a node needs
        #[arg(long, value_name = "SCORE")]
        min_reputation: Option<u16>,
        /// Required optimizations: names joined by commas, a bit set number, or none
        #[arg(long, value_name = "LIST", default_value = "none", value_parser = parse_optimizations)]
        optimizations: u8,
    },
    /// Deprecate a task: no new subscriptions or stacks
    Deprecate {
        /// The task's small id
        task: u64,
    },
    /// Remove a deprecated task once its delay has passed
    Remove {
        /// The task's small id
        task: u64,
    },
    /// Show a task
    Show {
        /// The task's small id
        task: u64,
    },
    /// List tasks, in id order
    List {
        /// Start after this task id
        #[arg(long)]
        cursor: Option<u64>,
        /// Tasks per page
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// `atoma stack …`
#[derive(Subcommand, Debug)]
pub enum StackCmd {
    /// Buy a stack of compute units; a node is sampled and the maximum cost escrowed
    Buy {
        /// The task's small id
        #[arg(long)]
        task: u64,
        /// Compute units to buy
        #[arg(long)]
        units: u64,
        /// The highest price per compute unit to pay, in base units
        #[arg(long, value_name = "BASE_UNITS")]
        max_price: u64,
    },
    /// Show a stack (open, or how it closed)
    Show {
        /// The stack's small id
        stack: u64,
    },
    /// Show a stack's settlement ticket
    Ticket {
        /// The stack's small id
        stack: u64,
    },
    /// Print a stack token: the API key an OpenAI client uses for this stack (owner)
    ///
    /// The token is signed by the stack's owner (the signer) for this stack and chain only, and
    /// expires after --valid-hours. Give it to any OpenAI SDK as its api_key, with the selected
    /// node's agent as base_url. See docs/AGENT.md §3.
    Token {
        /// The stack's small id
        stack: u64,
        /// Hours the token stays good for
        #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8_760))]
        valid_hours: u64,
    },
    /// Contest the units a node claimed (owner; while the dispute window is open)
    Contest {
        /// The stack's small id
        stack: u64,
        /// The units you counted
        #[arg(long)]
        units: u64,
    },
    /// Take back the escrow of a stack nobody settled in time (owner)
    Reclaim {
        /// The stack's small id
        stack: u64,
    },
    /// Refund a dispute no oracle resolved in time (anyone)
    ExpireDispute {
        /// The stack's small id
        stack: u64,
    },
}

/// `atoma model …`
#[derive(Subcommand, Debug)]
pub enum ModelCmd {
    /// Show a model, its echelons and oracles
    Show {
        /// The model's name
        name: String,
    },
    /// List the models (found through ModelAddedEvent)
    List,
}

/// `atoma admin …`
#[derive(Args, Debug)]
pub struct AdminArgs {
    /// The manager badge to use [default: the first one the signer owns]
    #[arg(long, value_name = "OBJECT_ID", global = true)]
    pub badge: Option<String>,
    #[command(subcommand)]
    pub cmd: AdminCmd,
}

/// Echelon parameters.
#[derive(Args, Debug)]
pub struct EchelonArgs {
    /// The model's name
    pub model: String,
    /// The echelon's id (chosen by the admin)
    pub echelon: u64,
    /// Fee per input token, in base units
    #[arg(long, value_name = "BASE_UNITS")]
    pub input_fee: u64,
    /// Fee per output token, in base units
    #[arg(long, value_name = "BASE_UNITS")]
    pub output_fee: u64,
    /// Relative performance (> 0)
    #[arg(long, default_value_t = 100)]
    pub performance: u64,
    /// Settlement timeout for stacks served in this echelon, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub timeout_ms: u64,
}

/// A model's echelon.
#[derive(Args, Debug)]
pub struct EchelonRef {
    /// The model's name
    pub model: String,
    /// The echelon's id
    pub echelon: u64,
}

/// An oracle seat.
#[derive(Args, Debug)]
pub struct OracleArgs {
    /// The model's name
    pub model: String,
    /// The echelon's id
    pub echelon: u64,
    /// The node's small id
    pub node: u64,
}

/// A treasury withdrawal.
#[derive(Args, Debug)]
pub struct WithdrawArgs {
    /// TOMA to withdraw
    #[arg(value_parser = parse_toma)]
    pub amount: u64,
    /// Recipient: alias or address [default: the signer]
    #[arg(long, value_name = "ALIAS|ADDRESS")]
    pub to: Option<String>,
}

/// `atoma admin …` subcommands: one per admin function.
#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Add a model
    AddModel {
        /// The model's name (1 to 128 bytes)
        name: String,
        /// text-to-text, text-to-image, text-to-embedding, image-to-text, text-to-speech,
        /// speech-to-text, or a number
        #[arg(long, default_value = "text-to-text", value_parser = parse_modality)]
        modality: u16,
    },
    /// Remove a model no live task names
    RemoveModel {
        /// The model's name
        name: String,
    },
    /// Enable a disabled model
    EnableModel {
        /// The model's name
        name: String,
    },
    /// Disable a model: no new tasks or stacks for it
    DisableModel {
        /// The model's name
        name: String,
    },
    /// Add an echelon to a model
    AddEchelon(EchelonArgs),
    /// Change an echelon's parameters
    UpdateEchelon(EchelonArgs),
    /// Remove an echelon
    RemoveEchelon(EchelonRef),
    /// Make a node an oracle of a model's echelon
    AddOracle(OracleArgs),
    /// Remove an oracle
    RemoveOracle(OracleArgs),
    /// Set a protocol parameter (SPEC §4); VALUE is the raw number, or TOMA with a TOMA suffix
    Set {
        /// registration_collateral, settlement_timeout_ms, permille_to_slash_node_on_timeout,
        /// permille_for_oracle_on_dispute, permille_for_honest_nodes_on_dispute,
        /// cross_validation_probability_permille, cross_validation_extra_nodes_count,
        /// cross_validation_extra_nodes_charge_permille, sampling_consensus_charge_permille,
        /// stack_dispute_settlement_delay_epochs, task_removal_delay_epochs,
        /// node_destroy_delay_epochs, stack_expiration_epochs, dispute_resolution_deadline_epochs
        param: String,
        /// The new value (e.g. 500, or 2000TOMA for registration_collateral)
        value: String,
    },
    /// Stop new node registrations
    DisableRegistration,
    /// Allow node registrations again
    EnableRegistration,
    /// Permanently disable a node
    DisableNode {
        /// The node's small id
        node: u64,
    },
    /// Deprecate a task
    DeprecateTask {
        /// The task's small id
        task: u64,
    },
    /// Remove a deprecated task
    RemoveTask {
        /// The task's small id
        task: u64,
    },
    /// Start a new enclave key rotation (nodes must commit new keys)
    RotateKeys,
    /// Trust an attestation root for a device type
    #[command(group(clap::ArgGroup::new("root_key").args(["public_key", "dev"]).required(true)))]
    AddRoot {
        /// intel-cpu, amd-cpu, arm-cpu, nvidia-gpu, nvidia-nvswitch, or a number
        #[arg(long, value_parser = parse_device)]
        device: u16,
        /// The root's ed25519 public key (32 bytes, hex)
        #[arg(long, value_name = "HEX", value_parser = hex_arg)]
        public_key: Option<Hex>,
        /// Local network: generate a development root key, store it as dev-root-<device>, and
        /// trust it
        #[arg(long)]
        dev: bool,
    },
    /// Stop trusting a device type's attestation root
    RemoveRoot {
        /// The device type
        #[arg(long, value_parser = parse_device)]
        device: u16,
    },
    /// Withdraw from the fee treasury
    WithdrawFeesTreasury(WithdrawArgs),
    /// Withdraw from the communal treasury
    WithdrawCommunalTreasury(WithdrawArgs),
    /// Create another manager badge for an account
    NewManagerBadge {
        /// Recipient: alias or address
        #[arg(long, value_name = "ALIAS|ADDRESS")]
        to: String,
    },
}

/// `atoma demo`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The model to add [default: demo-model-<height>, unique on each run]
    #[arg(long)]
    pub model: Option<String>,
}

/// `atoma bench`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Concurrent clients, each with its own funded key and connection
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Transactions each client keeps in flight (pipelined nonces)
    #[arg(long, default_value_t = 4)]
    pub pipeline: usize,
    /// Stop after this many transactions
    #[arg(long, default_value_t = 5_000, conflicts_with = "seconds")]
    pub txs: u64,
    /// Stop sending after this many seconds instead
    #[arg(long)]
    pub seconds: Option<u64>,
    /// What the clients send: `transfers` (TOMA around a ring) or `mix` (buy, settle and claim
    /// stacks in a market each client prepares)
    #[arg(long, default_value = "transfers", value_parser = ["transfers", "mix"])]
    pub workload: String,
    /// Send over HTTP instead of WebSocket
    #[arg(long)]
    pub http: bool,
}

/// `atoma docs …`
#[derive(Subcommand, Debug)]
pub enum DocsCmd {
    /// Print docs/CLI.md: every command's help text, as Markdown
    Cli,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    use atoma_contract::Parameter;
    use atoma_contract::enums::{
        DeviceType, Modality, Optimization, SecurityLevel, TaskRole, WireEnum, reputation,
    };
    use atoma_types::events::MAX_PAGE_LIMIT;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The help text of `arg` in the subcommand at `path`.
    fn help(path: &[&str], arg: &str) -> String {
        let mut command = Cli::command();
        for name in path {
            command = command.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {name}")).clone();
        }
        let arg = command.get_arguments().find(|a| a.get_id() == arg).unwrap_or_else(|| panic!("no {arg}"));
        arg.get_help().map(ToString::to_string).unwrap_or_default()
    }

    fn names<E: WireEnum>() -> String {
        E::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
    }

    /// The help text is prose for clap, so the facts it states are checked against their homes:
    /// the contract's name tables and limits, the RPC's page limit.
    #[test]
    fn help_text_states_the_facts_of_their_homes() {
        let listed = |path: &[&str], arg: &str, list: String| {
            let text = help(path, arg);
            assert!(
                text.contains(&list),
                "`{} --{arg}` help {text:?} does not list {list:?}",
                path.join(" ")
            );
        };
        listed(&["task", "create"], "role", format!("{}, or a number", names::<TaskRole>()));
        listed(&["admin", "add-model"], "modality", format!("{}, or a number", names::<Modality>()));
        listed(&["node", "commit-key"], "device", format!("{}, or a number", names::<DeviceType>()));
        listed(&["admin", "add-root"], "device", format!("{}, or a number", names::<DeviceType>()));
        listed(&["node", "register"], "optimizations", format!("({})", names::<Optimization>()));
        let security = help(&["task", "create"], "security");
        let words: Vec<&str> = security.split([' ', ',', '(', ')']).collect();
        for level in SecurityLevel::ALL {
            assert!(words.contains(&level.name()), "--security help {security:?} lacks {}", level.name());
        }
        listed(&["task", "create"], "min_reputation", format!("0..={}", reputation::MAX));
        listed(&["events"], "limit", format!("at most {MAX_PAGE_LIMIT}"));
        let parameters: Vec<&str> = Parameter::ALL.iter().map(|p| p.name()).collect();
        listed(&["admin", "set"], "param", parameters.join(", "));
    }
}
