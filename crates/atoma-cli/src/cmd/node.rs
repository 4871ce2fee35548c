//! `atoma node …`: SPEC §5.1, the node's side of §5.4, and §5.5's key commitment.

use atoma_api::{StackLookup, StackView, TicketStatusView};
use atoma_contract::commitment::{PartyCommitment, party_commitment};
use atoma_contract::enums::SecurityLevel;
use atoma_contract::tee::{build_evidence, sign_settlement};
use atoma_contract::{Call, EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::Keypair;

use crate::cli::{CommitKeyArgs, CommitmentArgs, Hex, ModelMembershipArgs, NodeCmd, SubscriptionArgs};
use crate::commitments;
use crate::context::Ctx;
use crate::error::{CliError, CliErrorKind, CliResult};
use crate::format::toma;
use crate::keys::{DEV_ROOT_PREFIX, ENCLAVE_PREFIX};
use crate::names::{device_name, optimizations_name};
use crate::output::Report;
use crate::render;

/// Runs a `node` subcommand.
///
/// # Errors
/// The named error of the failing call.
pub async fn run(ctx: &mut Ctx, cmd: NodeCmd) -> CliResult<Report> {
    match cmd {
        NodeCmd::Show { node } => {
            let rpc = ctx.rpc()?;
            Ok(render::node(&rpc.check(rpc.client().get_node(NodeSmallId(node)).await)?))
        }
        NodeCmd::Register { collateral, optimizations } => register(ctx, collateral, optimizations).await,
        NodeCmd::Settle { node, stack, units, commitment, tee_signature } => {
            settle(ctx, node, stack, units, &commitment, tee_signature).await
        }
        NodeCmd::Attest { node, stack, commitment } => attest(ctx, node, stack, &commitment).await,
        NodeCmd::Dispute { node, stack, commitment, outputs } => {
            let commitment = match (commitment, outputs) {
                (Some(Hex(bytes)), _) => bytes,
                (None, Some(path)) => {
                    attester_commitment(ctx, node, stack, &path).await?.committed_stack_proof.to_vec()
                }
                (None, None) => return Err(CliError::invalid("give --commitment HEX or --outputs FILE")),
            };
            let call = Call::StartAttestationDispute {
                node: NodeSmallId(node),
                stack: StackSmallId(stack),
                attestation_commitment: commitment,
            };
            send(ctx, call, format!("Node {node} disputed stack {stack}")).await
        }
        NodeCmd::Resolve { node, stack, units, proof, outputs } => {
            let proof = match (proof, outputs) {
                (Some(Hex(bytes)), _) => bytes,
                (None, Some(path)) => {
                    let requests = commitments::read(&path)?;
                    let k = open_stack(ctx, stack).await?.terms.cross_validation_extra_nodes_count;
                    party_commitment(&requests, 0, k)?.committed_stack_proof.to_vec()
                }
                (None, None) => return Err(CliError::invalid("give --proof HEX or --outputs FILE")),
            };
            let call = Call::ResolveStackDispute {
                oracle_node: NodeSmallId(node),
                stack: StackSmallId(stack),
                correct_committed_stack_proof: proof,
                correct_units: units,
            };
            send(ctx, call, format!("Oracle node {node} resolved stack {stack} at {units} units")).await
        }
        NodeCmd::CommitKey(args) => commit_key(ctx, args).await,
        other => simple(ctx, other).await,
    }
}

/// The calls that map one-to-one onto arguments.
async fn simple(ctx: &mut Ctx, cmd: NodeCmd) -> CliResult<Report> {
    let (call, headline) = match cmd {
        NodeCmd::AddCollateral { node, amount } => (
            Call::AddNodeCollateral { node: NodeSmallId(node), amount },
            format!("Added {} collateral to node {node}", toma(u128::from(amount))),
        ),
        NodeCmd::Subscribe(a) => subscription(a, true),
        NodeCmd::UpdateSubscription(a) => subscription(a, false),
        NodeCmd::Unsubscribe { node, task } => (
            Call::UnsubscribeNodeFromTask { node: NodeSmallId(node), task: TaskSmallId(task) },
            format!("Node {node} unsubscribed from task {task}"),
        ),
        NodeCmd::JoinModel(m) => membership(m, true),
        NodeCmd::LeaveModel(m) => membership(m, false),
        NodeCmd::SetOptimizations { node, optimizations } => (
            Call::SetNodeOptimizations { node: NodeSmallId(node), supported_optimizations: optimizations },
            format!("Node {node} now supports {}", optimizations_name(optimizations)),
        ),
        NodeCmd::SetEndpoint { node, url } => {
            let headline = format!("Node {node} serves users at {url}");
            (Call::SetNodeEndpoint { node: NodeSmallId(node), url }, headline)
        }
        NodeCmd::Disable { node } => {
            (Call::PermanentlyDisableNode { node: NodeSmallId(node) }, format!("Disabled node {node}"))
        }
        NodeCmd::Destroy { node } => {
            (Call::DestroyDisabledNode { node: NodeSmallId(node) }, format!("Destroyed node {node}"))
        }
        NodeCmd::WithdrawFees { node } => {
            (Call::WithdrawFees { node: NodeSmallId(node) }, format!("Withdrew node {node}'s unlocked fees"))
        }
        NodeCmd::Claim { node, stacks, wait } => {
            if wait {
                wait_until_claimable(ctx, &stacks).await?;
            }
            let list: Vec<String> = stacks.iter().map(ToString::to_string).collect();
            let call = Call::ClaimFunds {
                node: NodeSmallId(node),
                stacks: stacks.into_iter().map(StackSmallId).collect(),
            };
            (call, format!("Node {node} claimed stack(s) {}", list.join(", ")))
        }
        other => return Err(CliError::invalid(format!("{other:?} is handled elsewhere"))),
    };
    send(ctx, call, headline).await
}

/// Waits until the pending tickets of `stacks` can be claimed in the next block, judged by the
/// last block's epoch and the later of its timestamp and this machine's clock. Stacks that are
/// closed, unsettled or in dispute are left for the claim to name: waiting would not help.
pub(crate) async fn wait_until_claimable(ctx: &mut Ctx, stacks: &[u64]) -> CliResult<()> {
    let mut told = false;
    loop {
        let rpc = ctx.rpc()?;
        let info = rpc.check(rpc.client().get_chain_info().await)?;
        let at = info.timestamp_ms.max(unix_ms());
        let mut wait_ms = 0;
        for id in stacks {
            let StackLookup::Open(view) = rpc.check(rpc.client().get_stack(StackSmallId(*id)).await)? else {
                continue;
            };
            let Some(ticket) = view.settlement_ticket.filter(|t| t.status == TicketStatusView::Pending)
            else {
                continue;
            };
            if ticket.claimable(info.epoch, at) {
                continue;
            }
            // Past the floor, the window waits for the epoch: look again in a second (a local
            // network's epoch moves with `atoma epoch advance`).
            wait_ms = wait_ms.max(ticket.window_floor_ms.saturating_sub(at).clamp(1, 1_000));
            if !told {
                eprintln!(
                    "waiting for stack {id}'s dispute window to close (at epoch {} or at time {} ms, \
                     whichever is later; the chain is at epoch {}, time {at} ms)",
                    ticket.dispute_settled_at_epoch, ticket.window_floor_ms, info.epoch
                );
                told = true;
            }
        }
        if wait_ms == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
    }
}

/// This machine's clock, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn subscription(a: SubscriptionArgs, new: bool) -> (Call, String) {
    let (node, task) = (NodeSmallId(a.node), TaskSmallId(a.task));
    let (price_per_compute_unit, max_num_compute_units) = (a.price, a.max_units);
    let verb = if new { "subscribed to" } else { "updated its offer for" };
    let headline = format!(
        "Node {} {verb} task {} at {} base units per compute unit (at most {} units)",
        a.node, a.task, a.price, a.max_units
    );
    let call = if new {
        Call::SubscribeNodeToTask { node, task, price_per_compute_unit, max_num_compute_units }
    } else {
        Call::UpdateNodeSubscription { node, task, price_per_compute_unit, max_num_compute_units }
    };
    (call, headline)
}

fn membership(m: ModelMembershipArgs, join: bool) -> (Call, String) {
    let (node, echelon) = (NodeSmallId(m.node), EchelonId(m.echelon));
    let headline = if join {
        format!("Node {} serves {} in echelon {}", m.node, m.model, m.echelon)
    } else {
        format!("Node {} left {} echelon {}", m.node, m.model, m.echelon)
    };
    let model_name = m.model;
    let call = if join {
        Call::AddNodeToModel { node, model_name, echelon }
    } else {
        Call::RemoveNodeFromModel { node, model_name, echelon }
    };
    (call, headline)
}

/// Signs, submits and reports a call.
async fn send(ctx: &mut Ctx, call: Call, headline: String) -> CliResult<Report> {
    let (signer, result) = ctx.submit(call).await?;
    Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
}

async fn register(ctx: &mut Ctx, collateral: Option<u64>, optimizations: u8) -> CliResult<Report> {
    let collateral = match collateral {
        Some(c) => c,
        None => {
            let rpc = ctx.rpc()?;
            rpc.check(rpc.client().get_db().await)?.config.registration_collateral
        }
    };
    let (signer, result) =
        ctx.submit(Call::RegisterNode { collateral, supported_optimizations: optimizations }).await?;
    let created = render::created(&result.events);
    let node = created.get("node").and_then(|v| v.as_str()).unwrap_or("?");
    let headline = format!("Registered node {node} with {} collateral", toma(u128::from(collateral)));
    Ok(render::transaction(&headline, &signer.alias, &result, &ctx.labels()))
}

/// The open stack, or a named error.
async fn open_stack(ctx: &mut Ctx, stack: u64) -> CliResult<StackView> {
    let rpc = ctx.rpc()?;
    match rpc.check(rpc.client().get_stack(StackSmallId(stack)).await)? {
        StackLookup::Open(view) => Ok(*view),
        StackLookup::Closed(_) => Err(atoma_contract::ContractError::EStackNotFound.into()),
    }
}

/// `--proof/--leaf`, or the selected node's (party 0) commitment from `--outputs`.
fn settlement_commitment(stack: &StackView, c: &CommitmentArgs) -> CliResult<(Vec<u8>, Vec<u8>)> {
    match (&c.proof, &c.leaf, &c.outputs) {
        (Some(Hex(proof)), Some(Hex(leaf)), _) => Ok((proof.clone(), leaf.clone())),
        (_, _, Some(path)) => {
            let requests = commitments::read(path)?;
            let c = party_commitment(&requests, 0, stack.terms.cross_validation_extra_nodes_count)?;
            Ok((c.committed_stack_proof.to_vec(), c.stack_merkle_leaf.to_vec()))
        }
        _ => Err(CliError::invalid("give --proof HEX and --leaf HEX, or --outputs FILE")),
    }
}

async fn settle(
    ctx: &mut Ctx,
    node: u64,
    stack_id: u64,
    units: u64,
    commitment: &CommitmentArgs,
    tee_signature: Option<Hex>,
) -> CliResult<Report> {
    let stack = open_stack(ctx, stack_id).await?;
    let (proof, leaf) = settlement_commitment(&stack, commitment)?;
    let tee_signature = match tee_signature {
        Some(Hex(sig)) => Some(sig),
        None if stack.security_level == SecurityLevel::ConfidentialCompute.to_wire() => {
            enclave_signature(ctx, node, stack_id, units, &proof)?
        }
        None => None,
    };
    let call = Call::TrySettleStack {
        node: NodeSmallId(node),
        stack: StackSmallId(stack_id),
        num_claimed_compute_units: units,
        committed_stack_proof: proof,
        stack_merkle_leaf: leaf,
        tee_signature,
    };
    send(ctx, call, format!("Node {node} settled stack {stack_id} for {units} compute units")).await
}

/// The keystore's enclave key for `node` signs the settlement, when there is one.
fn enclave_signature(
    ctx: &mut Ctx,
    node: u64,
    stack: u64,
    units: u64,
    proof: &[u8],
) -> CliResult<Option<Vec<u8>>> {
    let Some(enclave) = ctx.keys()?.get(&format!("{ENCLAVE_PREFIX}{node}"))? else {
        return Ok(None);
    };
    let Ok(proof) = <[u8; 32]>::try_from(proof) else {
        return Ok(None);
    };
    Ok(Some(sign_settlement(enclave.signing_key(), StackSmallId(stack), units, &proof)))
}

/// The attester's commitment from its outputs: its party index is its position in the ticket's
/// requested attesters, plus one.
async fn attester_commitment(
    ctx: &mut Ctx,
    node: u64,
    stack_id: u64,
    path: &std::path::Path,
) -> CliResult<PartyCommitment> {
    let requests = commitments::read(path)?;
    let stack = open_stack(ctx, stack_id).await?;
    let ticket = stack.settlement_ticket.ok_or(atoma_contract::ContractError::ENoSettlementTicket)?;
    let position = ticket
        .requested_attestation_nodes
        .iter()
        .position(|n| n.0 == node)
        .ok_or(atoma_contract::ContractError::ENodeNotSelectedForAttestation)?;
    let party = u64::try_from(position).unwrap_or(u64::MAX).saturating_add(1);
    Ok(party_commitment(&requests, party, stack.terms.cross_validation_extra_nodes_count)?)
}

async fn attest(ctx: &mut Ctx, node: u64, stack: u64, c: &CommitmentArgs) -> CliResult<Report> {
    let (proof, leaf) = match (&c.proof, &c.leaf, &c.outputs) {
        (Some(Hex(proof)), Some(Hex(leaf)), _) => (proof.clone(), leaf.clone()),
        (_, _, Some(path)) => {
            let c = attester_commitment(ctx, node, stack, path).await?;
            (c.committed_stack_proof.to_vec(), c.stack_merkle_leaf.to_vec())
        }
        _ => return Err(CliError::invalid("give --proof HEX and --leaf HEX, or --outputs FILE")),
    };
    let call = Call::SubmitStackSettlementAttestation {
        node: NodeSmallId(node),
        stack: StackSmallId(stack),
        committed_stack_proof: proof,
        stack_merkle_leaf: leaf,
    };
    send(ctx, call, format!("Node {node} attested stack {stack}")).await
}

async fn commit_key(ctx: &mut Ctx, args: CommitKeyArgs) -> CliResult<Report> {
    let rotation = match args.rotation {
        Some(r) => r,
        None => {
            let rpc = ctx.rpc()?;
            rpc.check(rpc.client().get_db().await)?.key_rotation_counter
        }
    };
    let node = NodeSmallId(args.node);
    let headline = format!(
        "Node {} committed an enclave key ({}, rotation {rotation})",
        args.node,
        device_name(args.device)
    );
    if let (Some(Hex(public_key)), Some(Hex(evidence))) = (&args.public_key, &args.evidence) {
        let public_key = <[u8; 32]>::try_from(public_key.as_slice())
            .map_err(|_| CliError::invalid("--public-key must be 32 bytes (64 hex digits)"))?;
        let call = Call::CommitNodePublicKey {
            node,
            device_type: args.device,
            key_rotation_counter: rotation,
            public_key,
            evidence: evidence.clone(),
        };
        return send(ctx, call, headline).await;
    }
    let root_alias = format!("{DEV_ROOT_PREFIX}{}", args.device);
    let root = ctx.keys()?.get(&root_alias)?.ok_or_else(|| {
        CliError::new(
            CliErrorKind::EUnknownKey,
            format!(
                "no development root {root_alias:?} in the keystore: run `atoma admin add-root --device {} --dev` first",
                args.device
            ),
        )
    })?;
    let enclave = Keypair::generate().map_err(CliError::from)?;
    let device = Keypair::generate().map_err(CliError::from)?;
    let evidence =
        build_evidence(root.signing_key(), device.signing_key(), &enclave.public_key(), node, rotation);
    let call = Call::CommitNodePublicKey {
        node,
        device_type: args.device,
        key_rotation_counter: rotation,
        public_key: enclave.public_key(),
        evidence,
    };
    let report =
        send(ctx, call, format!("{headline}; enclave key stored as {ENCLAVE_PREFIX}{}", args.node)).await?;
    ctx.keys()?.put(&format!("{ENCLAVE_PREFIX}{}", args.node), &enclave)?;
    Ok(report)
}
