//! `atoma demo`: the protocol end to end on a running local network, narrated.
//!
//! The admin adds a model with an echelon; two operators register nodes, serve the model and
//! subscribe to a task a user created; one node becomes the model's oracle; the user buys a
//! stack, the sampled node settles it with a commitment computed from its (made-up) outputs, the
//! epoch advances past the dispute window, the node claims, and the user gets the unused part of
//! the escrow back. The demo's own keys (`demo-node-a`, `demo-node-b`, `demo-user`) are created
//! on first use and funded from the faucet; each run adds a model named after the chain's height,
//! so the demo can run any number of times on the same network.

use atoma_api::rpc::TransactionResult;
use atoma_api::{EventEnvelope, StackLookup};
use atoma_contract::commitment::party_commitment;
use atoma_contract::enums::{Modality, Optimizations, SecurityLevel, TaskRole};
use atoma_contract::{AdminOp, Call, EchelonId, EchelonParams, NodeSmallId, StackSmallId, TOMA, TaskSmallId};
use atoma_types::{EventFilter, Keypair};
use serde_json::{Value, json};

use crate::cli::DemoArgs;
use crate::commitments;
use crate::context::Ctx;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::format::toma;
use crate::keys::Named;
use crate::output::Report;
use crate::render;

/// Compute units the user buys.
const UNITS: u64 = 10_000;
/// Compute units the node serves and claims.
const USED_UNITS: u64 = 6_400;
/// The user's price cap, in base units per compute unit.
const MAX_PRICE: u64 = 20_000_000;
/// The two nodes' prices, in base units per compute unit.
const PRICES: [u64; 2] = [10_000_000, 15_000_000];
/// The echelon every demo node serves.
const ECHELON: u64 = 1;
/// The echelon's settlement timeout, and so the dispute window's floor in time.
const SETTLEMENT_TIMEOUT_MS: u64 = 3_000;

/// The requests the selected node pretends to have served.
fn served_requests() -> commitments::Requests {
    vec![
        (b"What is the Atoma protocol?".to_vec(), b"A marketplace for AI compute.".to_vec()),
        (b"Who checks the work?".to_vec(), b"Sampled attesters, TEEs, or nobody.".to_vec()),
    ]
}

/// Runs the walkthrough and prints its summary.
///
/// # Errors
/// The named error of the first call that fails.
pub async fn run(ctx: &mut Ctx, args: DemoArgs) -> CliResult<()> {
    let mut demo = Demo { steps: Vec::new() };
    let report = demo.run(ctx, args).await?;
    ctx.out.report(&report);
    Ok(())
}

/// The steps done so far, for the summary.
struct Demo {
    steps: Vec<Value>,
}

/// The demo's actors.
struct Cast {
    operators: [Named; 2],
    user: Named,
}

impl Demo {
    /// Prints a step (as a note: the summary is the command's one document) and records it.
    fn step(&mut self, ctx: &Ctx, text: String, result: Option<&TransactionResult>) {
        let n = self.steps.len() + 1;
        if !ctx.out.is_json() {
            ctx.out.note(&format!("{n:>2}. {text}"));
        }
        let digest = result.map(|r| r.digest.to_string());
        self.steps.push(json!({"step": n, "what": text, "digest": digest}));
    }

    async fn run(&mut self, ctx: &mut Ctx, args: DemoArgs) -> CliResult<Report> {
        let rpc = ctx.rpc()?;
        let info = rpc.check(rpc.client().get_chain_info().await)?;
        if !info.local_network {
            return Err(CliError::new(
                CliErrorKind::EDemo,
                "the demo needs a local network (it uses the faucet)",
            ));
        }
        let model = args.model.unwrap_or_else(|| format!("demo-model-{}", info.height));
        let cast = self.cast(ctx).await?;
        self.add_model(ctx, &model).await?;
        let nodes = self.register_nodes(ctx, &cast, &model).await?;
        let task = self.create_task(ctx, &cast, &model, &nodes).await?;
        let before = balance(ctx, &cast.user).await?;
        let (stack, selected) = self.buy(ctx, &cast, task).await?;
        let operator = &cast.operators[nodes.iter().position(|n| *n == selected).unwrap_or(0)];
        self.settle(ctx, operator, selected, stack).await?;
        let refund = self.claim(ctx, operator, selected, stack).await?;
        let after = balance(ctx, &cast.user).await?;
        let events = stack_events(ctx, stack).await?;
        let labels = ctx.labels();
        Ok(self
            .summary(Summary { model, nodes, task, stack, selected, refund, before, after, events }, &labels))
    }

    /// The demo's keys, created and funded from the faucet when needed.
    async fn cast(&mut self, ctx: &mut Ctx) -> CliResult<Cast> {
        let a = self.actor(ctx, "demo-node-a", 3_000).await?;
        let b = self.actor(ctx, "demo-node-b", 3_000).await?;
        let user = self.actor(ctx, "demo-user", 10_000).await?;
        Ok(Cast { operators: [a, b], user })
    }

    async fn actor(&mut self, ctx: &mut Ctx, alias: &str, toma_wanted: u64) -> CliResult<Named> {
        let key = match ctx.keys()?.get(alias)? {
            Some(key) => key,
            None => {
                let key = Keypair::generate().map_err(CliError::from)?;
                ctx.keys()?.put(alias, &key)?;
                key
            }
        };
        let wanted = toma_wanted * TOMA;
        let have = ctx.rpc()?.check(ctx.rpc()?.client().get_balance(&key.address()).await)?;
        if have < wanted {
            let result = ctx.rpc()?.faucet(&key.address(), Some(wanted - have)).await?;
            self.step(
                ctx,
                format!("Faucet: topped {alias} up to {}", toma(u128::from(wanted))),
                Some(&result),
            );
        }
        Ok(Named { alias: alias.to_string(), key })
    }

    async fn add_model(&mut self, ctx: &mut Ctx, model: &str) -> CliResult<()> {
        let modality = Modality::TextToText;
        let op = AdminOp::AddModel { name: model.into(), modality: modality.to_wire() };
        let (_, r) = ctx.submit_admin(None, op).await?;
        self.step(ctx, format!("Admin added model {model} ({})", modality.name()), Some(&r));
        let params = EchelonParams {
            input_fee_per_token: 1_000,
            output_fee_per_token: 2_000,
            relative_performance: 100,
            settlement_timeout_ms: SETTLEMENT_TIMEOUT_MS,
        };
        let op = AdminOp::AddModelEchelon { model_name: model.into(), echelon: EchelonId(ECHELON), params };
        let (_, r) = ctx.submit_admin(None, op).await?;
        self.step(ctx, format!("Admin added echelon {ECHELON} to {model}"), Some(&r));
        Ok(())
    }

    /// Registers both nodes, has them serve the model, and makes the second one its oracle.
    async fn register_nodes(
        &mut self,
        ctx: &mut Ctx,
        cast: &Cast,
        model: &str,
    ) -> CliResult<Vec<NodeSmallId>> {
        let rpc = ctx.rpc()?;
        let collateral = rpc.check(rpc.client().get_db().await)?.config.registration_collateral;
        let mut nodes = Vec::new();
        for operator in &cast.operators {
            let call =
                Call::RegisterNode { collateral, supported_optimizations: Optimizations::default().bits() };
            let r = submit_as(ctx, operator, call).await?;
            let node = created_id(&r, "node")?;
            self.step(
                ctx,
                format!(
                    "{} registered node {node} with {} collateral",
                    operator.alias,
                    toma(u128::from(collateral))
                ),
                Some(&r),
            );
            let call = Call::AddNodeToModel {
                node: NodeSmallId(node),
                model_name: model.into(),
                echelon: EchelonId(ECHELON),
            };
            let r = submit_as(ctx, operator, call).await?;
            self.step(ctx, format!("Node {node} serves {model} in echelon {ECHELON}"), Some(&r));
            nodes.push(NodeSmallId(node));
        }
        let oracle = nodes.last().copied().unwrap_or(NodeSmallId(0));
        let op = AdminOp::AddModelEchelonOracleNode {
            model_name: model.into(),
            echelon: EchelonId(ECHELON),
            node: oracle,
        };
        let (_, r) = ctx.submit_admin(None, op).await?;
        self.step(ctx, format!("Admin made node {oracle} an oracle of {model}"), Some(&r));
        Ok(nodes)
    }

    async fn create_task(
        &mut self,
        ctx: &mut Ctx,
        cast: &Cast,
        model: &str,
        nodes: &[NodeSmallId],
    ) -> CliResult<u64> {
        let call = Call::CreateTask {
            role: TaskRole::ChatCompletions.to_wire(),
            model_name: Some(model.into()),
            security_level: SecurityLevel::NoSecurity.to_wire(),
            minimum_reputation_score: None,
            required_optimizations: Optimizations::default().bits(),
        };
        let r = submit_as(ctx, &cast.user, call).await?;
        let task = created_id(&r, "task")?;
        self.step(
            ctx,
            format!("{} created task {task}: chat completions on {model}, no security", cast.user.alias),
            Some(&r),
        );
        for ((node, operator), price) in nodes.iter().zip(&cast.operators).zip(PRICES) {
            let call = Call::SubscribeNodeToTask {
                node: *node,
                task: TaskSmallId(task),
                price_per_compute_unit: price,
                max_num_compute_units: 100_000,
            };
            let r = submit_as(ctx, operator, call).await?;
            let each = toma(u128::from(price));
            self.step(ctx, format!("Node {node} offers task {task} at {each} per compute unit"), Some(&r));
        }
        Ok(task)
    }

    async fn buy(&mut self, ctx: &mut Ctx, cast: &Cast, task: u64) -> CliResult<(u64, NodeSmallId)> {
        let call = Call::AcquireNewStack {
            task: TaskSmallId(task),
            num_compute_units: UNITS,
            max_price_per_compute_unit: MAX_PRICE,
        };
        let r = submit_as(ctx, &cast.user, call).await?;
        let stack = created_id(&r, "stack")?;
        let selected = NodeSmallId(created_id(&r, "selectedNode")?);
        let escrow = match ctx.rpc()?.check(ctx.rpc()?.client().get_stack(StackSmallId(stack)).await)? {
            StackLookup::Open(s) => s.escrow,
            StackLookup::Closed(_) => 0,
        };
        let text = format!(
            "{} bought stack {stack}: {UNITS} compute units; node {selected} was sampled; {} escrowed",
            cast.user.alias,
            toma(u128::from(escrow))
        );
        self.step(ctx, text, Some(&r));
        Ok((stack, selected))
    }

    async fn settle(
        &mut self,
        ctx: &mut Ctx,
        operator: &Named,
        node: NodeSmallId,
        stack: u64,
    ) -> CliResult<()> {
        let k = match ctx.rpc()?.check(ctx.rpc()?.client().get_stack(StackSmallId(stack)).await)? {
            StackLookup::Open(s) => s.terms.cross_validation_extra_nodes_count,
            StackLookup::Closed(_) => {
                return Err(CliError::new(CliErrorKind::EDemo, "the stack closed early"));
            }
        };
        let commitment = party_commitment(&served_requests(), 0, k)?;
        let call = Call::TrySettleStack {
            node,
            stack: StackSmallId(stack),
            num_claimed_compute_units: USED_UNITS,
            committed_stack_proof: commitment.committed_stack_proof.to_vec(),
            stack_merkle_leaf: commitment.stack_merkle_leaf.to_vec(),
            tee_signature: None,
        };
        let r = submit_as(ctx, operator, call).await?;
        self.step(
            ctx,
            format!("Node {node} settled stack {stack}: used {USED_UNITS} of {UNITS} units"),
            Some(&r),
        );
        let block = ctx.rpc()?.check(ctx.rpc()?.client().advance_epoch().await)?;
        let step = format!(
            "Advanced to epoch {}: the dispute window closes once the settlement timeout ({} s) has \
             passed too",
            block.epoch,
            SETTLEMENT_TIMEOUT_MS / 1_000
        );
        self.step(ctx, step, None);
        Ok(())
    }

    async fn claim(
        &mut self,
        ctx: &mut Ctx,
        operator: &Named,
        node: NodeSmallId,
        stack: u64,
    ) -> CliResult<u64> {
        crate::cmd::node::wait_until_claimable(ctx, &[stack]).await?;
        let call = Call::ClaimFunds { node, stacks: vec![StackSmallId(stack)] };
        let r = submit_as(ctx, operator, call).await?;
        let refund = created_id(&r, "userRefund")?;
        self.step(
            ctx,
            format!("Node {node} claimed stack {stack}; the user was refunded {}", toma(u128::from(refund))),
            Some(&r),
        );
        Ok(refund)
    }

    fn summary(&self, s: Summary, labels: &render::Labels) -> Report {
        let events: Vec<Value> = s.events.iter().map(render::to_json).collect();
        let json = json!({
            "model": s.model,
            "nodes": s.nodes.iter().map(|n| n.0.to_string()).collect::<Vec<_>>(),
            "task": s.task.to_string(),
            "stack": s.stack.to_string(),
            "selectedNode": s.selected.0.to_string(),
            "units": UNITS.to_string(),
            "usedUnits": USED_UNITS.to_string(),
            "userRefund": s.refund.to_string(),
            "userBalanceBefore": s.before.to_string(),
            "userBalanceAfter": s.after.to_string(),
            "steps": self.steps,
            "events": events,
        });
        let spent = s.before.saturating_sub(s.after);
        let text = format!(
            "\nThe user bought {UNITS} compute units, node {} served {USED_UNITS} and was paid for them;\n\
             the user's refund was {} and the stack cost {} in all.\n\n\
             Events of stack {}:\n{}\n\n\
             See them again with `atoma events --stack {}`.",
            s.selected,
            toma(u128::from(s.refund)),
            toma(u128::from(spent)),
            s.stack,
            render::events_table(&s.events, labels),
            s.stack
        );
        Report::new(json, text)
    }
}

/// What the summary reports.
struct Summary {
    model: String,
    nodes: Vec<NodeSmallId>,
    task: u64,
    stack: u64,
    selected: NodeSmallId,
    refund: u64,
    before: u64,
    after: u64,
    events: Vec<EventEnvelope>,
}

async fn submit_as(ctx: &mut Ctx, who: &Named, call: Call) -> CliResult<TransactionResult> {
    ctx.rpc()?.submit(&who.key, call).await
}

async fn balance(ctx: &mut Ctx, who: &Named) -> CliResult<u64> {
    let rpc = ctx.rpc()?;
    rpc.check(rpc.client().get_balance(&who.key.address()).await)
}

/// An id the transaction created, read from its events.
fn created_id(result: &TransactionResult, key: &str) -> CliResult<u64> {
    render::created(&result.events).get(key).and_then(Value::as_str).and_then(|v| v.parse().ok()).ok_or_else(
        || CliError::new(CliErrorKind::EDemo, format!("transaction {} reported no {key}", result.digest)),
    )
}

async fn stack_events(ctx: &mut Ctx, stack: u64) -> CliResult<Vec<EventEnvelope>> {
    let rpc = ctx.rpc()?;
    let filter = EventFilter::Stack(StackSmallId(stack));
    Ok(rpc.check(rpc.client().query_events(&filter, None, Some(100), false).await)?.data)
}
