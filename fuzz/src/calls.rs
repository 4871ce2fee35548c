//! Turning fuzzer bytes into calls: any `Call` variant with any field values, but with a bias
//! towards ids that exist, senders that own what they name, proofs that agree and signatures
//! that verify, so that the fuzzer gets past the first checks and into settlement and disputes.
//! A step can also be a raw BCS-decoded `Call` (absurd lengths and values included) or a move of
//! the clock.

use arbitrary::{Result, Unstructured};
use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::tee::{build_evidence, sign_settlement};
use atoma_contract::{Address, AtomaDb, EchelonId, NodeSmallId, ObjectId, StackSmallId, TOMA, TaskSmallId};

use crate::market::{
    DEVICE_TYPE, MODEL, SENDERS, device_key, enclave_key, honest_leaf, honest_proof, root_key, sender,
};

/// One thing to do to the market.
#[derive(Clone, Debug)]
pub enum Step {
    /// Execute `call` from `sender`.
    Call {
        /// Who signs.
        sender: Address,
        /// What is called.
        call: Call,
    },
    /// Move the clock this many epochs on (0 moves time within the epoch).
    Epochs(u64),
}

/// The next step, drawn from `u`, aimed at the state `db`.
pub fn step(u: &mut Unstructured<'_>, db: &AtomaDb, manager_badge: ObjectId) -> Result<Step> {
    match u.int_in_range(0u8..=19)? {
        0 => Ok(Step::Epochs(u.int_in_range(0..=3)?)),
        1 => {
            // Raw BCS: whatever decodes as a call, however absurd.
            let len = u.arbitrary_len::<u8>()?;
            let bytes = u.bytes(len)?;
            match bcs::from_bytes::<Call>(bytes) {
                Ok(call) => Ok(Step::Call { sender: any_sender(u)?, call }),
                Err(_) => Ok(Step::Epochs(0)),
            }
        }
        _ => {
            let g = Gen { db, manager_badge };
            let (sender, call) = g.call(u)?;
            Ok(Step::Call { sender, call })
        }
    }
}

/// One of the market's senders, or a stranger.
pub fn any_sender(u: &mut Unstructured<'_>) -> Result<Address> {
    let i = u.int_in_range(0..=SENDERS)?;
    if i == SENDERS { Ok(Address(u.arbitrary()?)) } else { Ok(sender(i)) }
}

struct Gen<'a> {
    db: &'a AtomaDb,
    manager_badge: ObjectId,
}

impl Gen<'_> {
    fn call(&self, u: &mut Unstructured<'_>) -> Result<(Address, Call)> {
        let variant = u.int_in_range(0u8..=28)?;
        let node = self.node(u)?;
        let stack = self.stack(u)?;
        let task = self.task(u)?;
        let call = match variant {
            0 => Call::TransferToma { recipient: any_sender(u)?, amount: amount(u)? },
            1 => {
                let who = any_sender(u)?;
                let owned = self.db.owned_badges(&who);
                let badge = if owned.is_empty() || u.ratio(1, 8)? {
                    ObjectId(u.arbitrary()?)
                } else {
                    owned[u.choose_index(owned.len())?].0
                };
                return Ok((who, Call::TransferBadge { badge, recipient: any_sender(u)? }));
            }
            2 => Call::RegisterNode { collateral: amount(u)?, supported_optimizations: u.arbitrary()? },
            3 => Call::AddNodeCollateral { node, amount: amount(u)? },
            4 => Call::SubscribeNodeToTask {
                node,
                task,
                price_per_compute_unit: amount(u)?,
                max_num_compute_units: amount(u)?,
            },
            5 => Call::UpdateNodeSubscription {
                node,
                task,
                price_per_compute_unit: amount(u)?,
                max_num_compute_units: amount(u)?,
            },
            6 => Call::UnsubscribeNodeFromTask { node, task },
            7 => Call::AddNodeToModel { node, model_name: model_name(u)?, echelon: echelon(u)? },
            8 => Call::RemoveNodeFromModel { node, model_name: model_name(u)?, echelon: echelon(u)? },
            9 => Call::SetNodeOptimizations { node, supported_optimizations: u.arbitrary()? },
            10 => Call::PermanentlyDisableNode { node },
            11 => Call::DestroyDisabledNode { node },
            12 => Call::WithdrawFees { node },
            13 => Call::CreateTask {
                role: small_u16(u)?,
                model_name: if u.arbitrary()? { Some(model_name(u)?) } else { None },
                security_level: small_u16(u)?,
                minimum_reputation_score: u.arbitrary()?,
                required_optimizations: u.arbitrary()?,
            },
            14 => Call::DeprecateTask { task },
            15 => Call::RemoveDeprecatedTask { task },
            16 => Call::AcquireNewStack {
                task,
                num_compute_units: amount(u)?,
                max_price_per_compute_unit: amount(u)?,
            },
            17 => Call::ReclaimExpiredStack { stack },
            18 => self.settle(u, stack)?,
            19 => Call::SubmitStackSettlementAttestation {
                node: self.attester(u, stack)?,
                stack,
                committed_stack_proof: self.proof(u, stack)?,
                stack_merkle_leaf: leaf(u)?,
            },
            20 => Call::StartAttestationDispute {
                node: self.attester(u, stack)?,
                stack,
                attestation_commitment: self.proof(u, stack)?,
            },
            21 => Call::ContestClaimedUnits { stack, counted_units: amount(u)? },
            22 => Call::ResolveStackDispute {
                oracle_node: if u.ratio(3, 4)? { NodeSmallId(5) } else { node },
                stack,
                correct_committed_stack_proof: self.proof(u, stack)?,
                correct_units: amount(u)?,
            },
            23 => {
                let selected = self.db.stack(stack).map(|s| s.selected_node);
                let node = match selected {
                    Some(n) if u.ratio(3, 4)? => n,
                    _ => node,
                };
                let mut stacks = vec![stack];
                let extra = u.int_in_range(0..=3)?;
                for _ in 0..extra {
                    stacks.push(self.stack(u)?);
                }
                if u.ratio(1, 32)? {
                    // Far past the 256-stack bound.
                    stacks = vec![stack; u.int_in_range(0..=20_000)?];
                }
                Call::ClaimFunds { node, stacks }
            }
            24 => Call::ExpireDispute { stack },
            25 => self.commit_key(u, node)?,
            26 => Call::SetNodeEndpoint { node, url: endpoint(u)? },
            _ => Call::Admin { manager_badge: self.badge(u)?, op: self.admin_op(u, node, task)? },
        };
        let sender = self.sender_for(u, &call)?;
        Ok((sender, call))
    }

    /// Mostly whoever may make the call, sometimes anybody.
    fn sender_for(&self, u: &mut Unstructured<'_>, call: &Call) -> Result<Address> {
        if u.ratio(1, 6)? {
            return any_sender(u);
        }
        let owner_of_node =
            |n: NodeSmallId| self.db.node(n).and_then(|n| self.db.badge(n.badge_id)).map(|b| b.owner);
        let owner_of_stack =
            |s: StackSmallId| self.db.stack(s).and_then(|s| self.db.badge(s.badge_id)).map(|b| b.owner);
        let owner_of_task =
            |t: TaskSmallId| self.db.task(t).and_then(|t| self.db.badge(t.badge_id)).map(|b| b.owner);
        let owner = match call {
            Call::AddNodeCollateral { node, .. }
            | Call::SubscribeNodeToTask { node, .. }
            | Call::UpdateNodeSubscription { node, .. }
            | Call::UnsubscribeNodeFromTask { node, .. }
            | Call::AddNodeToModel { node, .. }
            | Call::RemoveNodeFromModel { node, .. }
            | Call::SetNodeOptimizations { node, .. }
            | Call::SetNodeEndpoint { node, .. }
            | Call::PermanentlyDisableNode { node }
            | Call::DestroyDisabledNode { node }
            | Call::WithdrawFees { node }
            | Call::TrySettleStack { node, .. }
            | Call::SubmitStackSettlementAttestation { node, .. }
            | Call::StartAttestationDispute { node, .. }
            | Call::ClaimFunds { node, .. }
            | Call::CommitNodePublicKey { node, .. } => owner_of_node(*node),
            Call::ResolveStackDispute { oracle_node, .. } => owner_of_node(*oracle_node),
            Call::DeprecateTask { task } | Call::RemoveDeprecatedTask { task } => owner_of_task(*task),
            Call::ReclaimExpiredStack { stack } | Call::ContestClaimedUnits { stack, .. } => {
                owner_of_stack(*stack)
            }
            Call::Admin { .. } => Some(sender(0)),
            _ => None,
        };
        match owner {
            Some(owner) => Ok(owner),
            None => any_sender(u),
        }
    }

    fn node(&self, u: &mut Unstructured<'_>) -> Result<NodeSmallId> {
        small_id(u, self.db.globals().next_node_small_id).map(NodeSmallId)
    }

    fn task(&self, u: &mut Unstructured<'_>) -> Result<TaskSmallId> {
        small_id(u, self.db.globals().next_task_small_id).map(TaskSmallId)
    }

    /// Mostly an open stack.
    fn stack(&self, u: &mut Unstructured<'_>) -> Result<StackSmallId> {
        let open: Vec<StackSmallId> = self.db.stacks().map(|s| s.small_id).collect();
        if !open.is_empty() && u.ratio(3, 4)? {
            return Ok(open[u.choose_index(open.len())?]);
        }
        small_id(u, self.db.globals().next_stack_small_id).map(StackSmallId)
    }

    /// Mostly an attester the stack's ticket asked for.
    fn attester(&self, u: &mut Unstructured<'_>, stack: StackSmallId) -> Result<NodeSmallId> {
        let requested = self.db.settlement_ticket(stack).map(|t| t.requested_attestation_nodes.clone());
        match requested {
            Some(nodes) if !nodes.is_empty() && u.ratio(7, 8)? => Ok(nodes[u.choose_index(nodes.len())?]),
            _ => self.node(u),
        }
    }

    fn badge(&self, u: &mut Unstructured<'_>) -> Result<ObjectId> {
        if u.ratio(15, 16)? { Ok(self.manager_badge) } else { Ok(ObjectId(u.arbitrary()?)) }
    }

    /// The honest proof for the stack's attester count, the ticket's own proof, or anything.
    fn proof(&self, u: &mut Unstructured<'_>, stack: StackSmallId) -> Result<Vec<u8>> {
        let k = self.db.stack(stack).map_or(2, |s| s.terms.cross_validation_extra_nodes_count);
        Ok(match u.int_in_range(0u8..=5)? {
            0..=2 => honest_proof(k).to_vec(),
            3 => self.db.settlement_ticket(stack).map_or([0; 32], |t| t.committed_stack_proof).to_vec(),
            _ => bytes(u)?,
        })
    }

    fn settle(&self, u: &mut Unstructured<'_>, stack: StackSmallId) -> Result<Call> {
        let found = self.db.stack(stack);
        let node = match found {
            Some(s) if u.ratio(7, 8)? => s.selected_node,
            _ => self.node(u)?,
        };
        let units = match found {
            Some(s) if u.ratio(3, 4)? => u.int_in_range(0..=s.num_compute_units)?,
            _ => amount(u)?,
        };
        let proof = self.proof(u, stack)?;
        let tee_signature = match u.int_in_range(0u8..=3)? {
            0 => None,
            1 => Some(bytes(u)?),
            _ => {
                let proof32: [u8; 32] = proof.as_slice().try_into().unwrap_or([0; 32]);
                Some(sign_settlement(&enclave_key(node), stack, units, &proof32))
            }
        };
        Ok(Call::TrySettleStack {
            node,
            stack,
            num_claimed_compute_units: units,
            committed_stack_proof: proof,
            stack_merkle_leaf: leaf(u)?,
            tee_signature,
        })
    }

    fn commit_key(&self, u: &mut Unstructured<'_>, node: NodeSmallId) -> Result<Call> {
        let rotation = self.db.globals().key_rotation_counter;
        let rotation = if u.ratio(7, 8)? { rotation } else { u.arbitrary()? };
        let public_key =
            if u.ratio(7, 8)? { enclave_key(node).verifying_key().to_bytes() } else { u.arbitrary()? };
        let evidence = if u.ratio(3, 4)? {
            build_evidence(&root_key(), &device_key(), &public_key, node, rotation)
        } else {
            bytes(u)?
        };
        let device_type = if u.ratio(7, 8)? { DEVICE_TYPE } else { u.arbitrary()? };
        Ok(Call::CommitNodePublicKey {
            node,
            device_type,
            key_rotation_counter: rotation,
            public_key,
            evidence,
        })
    }

    fn admin_op(&self, u: &mut Unstructured<'_>, node: NodeSmallId, task: TaskSmallId) -> Result<AdminOp> {
        Ok(match u.int_in_range(0u8..=20)? {
            0 => AdminOp::AddModel { name: model_name(u)?, modality: small_u16(u)? },
            1 => AdminOp::RemoveModel { name: model_name(u)? },
            2 => AdminOp::DisableModel { name: model_name(u)? },
            3 => AdminOp::EnableModel { name: model_name(u)? },
            4 => AdminOp::AddModelEchelon {
                model_name: model_name(u)?,
                echelon: echelon(u)?,
                params: params(u)?,
            },
            5 => AdminOp::UpdateModelEchelon {
                model_name: model_name(u)?,
                echelon: echelon(u)?,
                params: params(u)?,
            },
            6 => AdminOp::RemoveModelEchelon { model_name: model_name(u)?, echelon: echelon(u)? },
            7 => {
                AdminOp::AddModelEchelonOracleNode { model_name: model_name(u)?, echelon: echelon(u)?, node }
            }
            8 => AdminOp::RemoveModelEchelonOracleNode {
                model_name: model_name(u)?,
                echelon: echelon(u)?,
                node,
            },
            9 | 10 => AdminOp::SetParameter {
                parameter: Parameter::ALL[u.choose_index(Parameter::ALL.len())?],
                value: if u.arbitrary()? { u.int_in_range(0..=1001)? } else { amount(u)? },
            },
            11 => AdminOp::DisableRegistration,
            12 => AdminOp::EnableRegistration,
            13 => AdminOp::PermanentlyDisableNode { node },
            14 => AdminOp::DeprecateTask { task },
            15 => AdminOp::RemoveDeprecatedTask { task },
            16 => AdminOp::NewNetworkKeyRotation,
            17 => AdminOp::AddAttestationRoot { device_type: small_u16(u)?, public_key: u.arbitrary()? },
            18 => AdminOp::RemoveAttestationRoot { device_type: small_u16(u)? },
            19 => {
                let amount = amount(u)?;
                let recipient = any_sender(u)?;
                if u.arbitrary()? {
                    AdminOp::WithdrawFeeTreasury { amount, recipient }
                } else {
                    AdminOp::WithdrawCommunalTreasury { amount, recipient }
                }
            }
            _ => AdminOp::CreateManagerBadge { recipient: any_sender(u)? },
        })
    }
}

/// A small id: mostly one that exists or just past the last, sometimes 0 or `u64::MAX`.
fn small_id(u: &mut Unstructured<'_>, next: u64) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => 0,
        1 => u64::MAX,
        2 => u.arbitrary()?,
        _ => u.int_in_range(1..=next)?,
    })
}

/// An amount: edge values, small numbers, whole TOMA, or anything.
pub fn amount(u: &mut Unstructured<'_>) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=11)? {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => u64::MAX / 2,
        5 => 1_000 * TOMA,
        6 => u.int_in_range(1..=1_000_000)? * TOMA,
        7 | 8 => u.int_in_range(0..=2_000)?,
        _ => u.arbitrary()?,
    })
}

fn small_u16(u: &mut Unstructured<'_>) -> Result<u16> {
    if u.ratio(3, 4)? { u.int_in_range(0..=10) } else { u.arbitrary() }
}

fn echelon(u: &mut Unstructured<'_>) -> Result<EchelonId> {
    Ok(EchelonId(if u.ratio(3, 4)? { u.int_in_range(0..=3)? } else { u.arbitrary()? }))
}

fn params(u: &mut Unstructured<'_>) -> Result<EchelonParams> {
    Ok(EchelonParams {
        input_fee_per_token: amount(u)?,
        output_fee_per_token: amount(u)?,
        relative_performance: amount(u)?,
        settlement_timeout_ms: amount(u)?,
    })
}

/// The market's model, another short name, the empty name, a long one, or any string.
pub fn model_name(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=7)? {
        0..=3 => MODEL.to_string(),
        4 => "other".to_string(),
        5 => String::new(),
        6 => "m".repeat(u.int_in_range(0..=70_000)?),
        _ => u.arbitrary()?,
    })
}

/// A node endpoint: mostly a valid URL, sometimes one byte too long, a wrong scheme or anything.
fn endpoint(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0u8..=5)? {
        0..=2 => format!("http://node-{}.example:{}", u.int_in_range(0u8..=9)?, u.arbitrary::<u16>()?),
        3 => format!("https://{}", "e".repeat(u.int_in_range(0..=300)?)),
        4 => format!("ftp://{}", u.arbitrary::<String>()?),
        _ => u.arbitrary()?,
    })
}

/// A leaf: an honest party's, zeros, or anything.
fn leaf(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0u8..=4)? {
        0..=2 => honest_leaf(u.int_in_range(0..=3)?).to_vec(),
        3 => vec![0; 32],
        _ => bytes(u)?,
    })
}

/// Bytes of any length, sometimes far longer than any field allows.
pub fn bytes(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if u.ratio(1, 16)? {
        return Ok(vec![0xab; u.int_in_range(0..=120_000)?]);
    }
    u.arbitrary()
}
