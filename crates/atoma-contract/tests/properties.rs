//! Property tests: random sequences of calls from many actors, valid and invalid, with the
//! invariants of SPEC §7.4 and §8 checked after every call (the auditor of STYLE.md).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

static ERRORS: Mutex<BTreeMap<(String, &'static str), u64>> = Mutex::new(BTreeMap::new());
static SEEN: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

use atoma_contract::call::{AdminOp, Call, Parameter};
use atoma_contract::event::Event;
use atoma_contract::sampling::{Want, statically_eligible};
use atoma_contract::tee::{build_evidence, sign_settlement};
use atoma_contract::{AtomaDb, EchelonId, NodeSmallId, StackSmallId, TaskSmallId};
use common::*;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const ACTORS: u8 = 8;

#[derive(Clone, Debug)]
enum Action {
    Register { actor: u8, extra: u64, opts: u8 },
    AddCollateral { node: u8, amount: u64 },
    CreateTask { actor: u8, level: u16, model: bool, min_rep: Option<u16>, opts: u8 },
    Subscribe { node: u8, task: u8, price: u64, units: u64 },
    Update { node: u8, task: u8, price: u64, units: u64 },
    Unsubscribe { node: u8, task: u8 },
    JoinModel { node: u8 },
    CommitKey { node: u8, valid: bool },
    Buy { actor: u8, task: u8, units: u64, cap: u64 },
    Settle { stack: u8, units: u64, honest: bool },
    Attest { stack: u8, which: u8, honest: bool },
    Dispute { stack: u8, which: u8 },
    Contest { stack: u8, units: u64 },
    Resolve { stack: u8, node_right: bool, units: u64 },
    Claim { stack: u8, wrong_node: bool },
    Expire { stack: u8 },
    Reclaim { stack: u8 },
    Disable { node: u8, by_admin: bool },
    Destroy { node: u8 },
    Withdraw { node: u8 },
    Deprecate { task: u8 },
    RemoveTask { task: u8 },
    SetParam { param: u8, value: u64 },
    Rotate,
    Transfer { from: u8, to: u8, amount: u64 },
    Epoch { n: u64 },
}

fn action() -> impl Strategy<Value = Action> {
    let small = 0u8..12;
    prop_oneof![
        4 => (0..ACTORS, 0u64..3, 0u8..32).prop_map(|(actor, extra, opts)| Action::Register { actor, extra, opts }),
        1 => (small.clone(), 0u64..5).prop_map(|(node, amount)| Action::AddCollateral { node, amount }),
        1 => (0..ACTORS, 0u16..4, any::<bool>(), prop::option::of(0u16..150), 0u8..4)
            .prop_map(|(actor, level, model, min_rep, opts)| Action::CreateTask { actor, level, model, min_rep, opts }),
        6 => (small.clone(), small.clone(), 0u64..20, 0u64..200)
            .prop_map(|(node, task, price, units)| Action::Subscribe { node, task, price, units }),
        1 => (small.clone(), small.clone(), 0u64..20, 0u64..200)
            .prop_map(|(node, task, price, units)| Action::Update { node, task, price, units }),
        1 => (small.clone(), small.clone()).prop_map(|(node, task)| Action::Unsubscribe { node, task }),
        3 => small.clone().prop_map(|node| Action::JoinModel { node }),
        2 => (small.clone(), any::<bool>()).prop_map(|(node, valid)| Action::CommitKey { node, valid }),
        8 => (0..ACTORS, small.clone(), 0u64..120, 0u64..10)
            .prop_map(|(actor, task, units, cap)| Action::Buy { actor, task, units, cap }),
        8 => (small.clone(), 0u64..130, prop::bool::weighted(0.8)).prop_map(|(stack, units, honest)| Action::Settle { stack, units, honest }),
        6 => (small.clone(), 0u8..3, prop::bool::weighted(0.8)).prop_map(|(stack, which, honest)| Action::Attest { stack, which, honest }),
        1 => (small.clone(), 0u8..3).prop_map(|(stack, which)| Action::Dispute { stack, which }),
        2 => (small.clone(), 0u64..130).prop_map(|(stack, units)| Action::Contest { stack, units }),
        2 => (small.clone(), any::<bool>(), 0u64..130).prop_map(|(stack, node_right, units)| Action::Resolve { stack, node_right, units }),
        6 => (small.clone(), prop::bool::weighted(0.1)).prop_map(|(stack, wrong_node)| Action::Claim { stack, wrong_node }),
        1 => small.clone().prop_map(|stack| Action::Expire { stack }),
        1 => small.clone().prop_map(|stack| Action::Reclaim { stack }),
        1 => (small.clone(), prop::bool::weighted(0.3)).prop_map(|(node, by_admin)| Action::Disable { node, by_admin }),
        1 => small.clone().prop_map(|node| Action::Destroy { node }),
        1 => small.clone().prop_map(|node| Action::Withdraw { node }),
        1 => (0u8..40).prop_map(|task| Action::Deprecate { task }),
        1 => small.clone().prop_map(|task| Action::RemoveTask { task }),
        2 => (0u8..14, 0u64..1200).prop_map(|(param, value)| Action::SetParam { param, value }),
        1 => Just(Action::Rotate),
        1 => (0..ACTORS, 0..ACTORS, 0u64..1000).prop_map(|(from, to, amount)| Action::Transfer { from, to, amount }),
        3 => (1u64..4).prop_map(|n| Action::Epoch { n }),
    ]
}

fn actor(i: u8) -> atoma_contract::Address {
    addr(1 + i % ACTORS)
}

fn enclave_key(node: NodeSmallId) -> SigningKey {
    let mut seed = [5u8; 32];
    seed[..8].copy_from_slice(&node.0.to_le_bytes());
    SigningKey::from_bytes(&seed)
}

/// Pick the `i`-th element, or an id that does not exist.
fn pick<T: Copy>(items: &[T], i: u8, missing: T) -> T {
    if items.is_empty() { missing } else { items[usize::from(i) % items.len()] }
}

struct Run {
    w: World,
    root: SigningKey,
    device: SigningKey,
    nodes: Vec<NodeSmallId>,
    tasks: Vec<TaskSmallId>,
    stacks: Vec<StackSmallId>,
    paid_out: BTreeSet<StackSmallId>,
}

impl Run {
    fn new() -> Self {
        let mut w = World::new();
        w.add_model(MODEL);
        let root = SigningKey::from_bytes(&[1; 32]);
        w.admin_ok(AdminOp::AddAttestationRoot {
            device_type: 300,
            public_key: root.verifying_key().to_bytes(),
        });
        let device = SigningKey::from_bytes(&[2; 32]);
        Run { w, root, device, nodes: vec![], tasks: vec![], stacks: vec![], paid_out: BTreeSet::new() }
    }

    /// A live market to start from: six nodes serving the model with every optimization and an
    /// enclave key, and an oracle (node 1) that serves no task; one task per security level plus a model-bound task
    /// with no security; every node subscribed to every task at prices 1..=6; attestation on.
    fn open_market(&mut self) {
        let oracle = self.w.register_model_node(addr(40));
        assert_eq!(oracle, NodeSmallId(1), "Resolve actions use node 1 as the oracle");
        self.w.admin_ok(AdminOp::AddModelEchelonOracleNode {
            model_name: MODEL.into(),
            echelon: EchelonId(1),
            node: oracle,
        });
        for i in 0..6u8 {
            let node = self.w.register_model_node(actor(i));
            self.w.ok(actor(i), Call::SetNodeOptimizations { node, supported_optimizations: 0b1_1111 });
            self.nodes.push(node);
            let (sender, call) = self.to_call(&Action::CommitKey { node: i, valid: true });
            self.w.ok(sender, call);
        }
        for (level, model) in [(0, false), (1, false), (2, true), (0, true)] {
            let (sender, call) =
                self.to_call(&Action::CreateTask { actor: 7, level, model, min_rep: None, opts: 0 });
            let events = self.w.ok(sender, call);
            events.iter().for_each(|e| self.observe(e));
        }
        for (n, node) in self.nodes.clone().into_iter().enumerate() {
            for task in self.tasks.clone() {
                let price = 1 + n as u64;
                self.w.subscribe(self.owner(node), node, task, price, 100);
            }
        }
        self.w.admin_ok(AdminOp::SetParameter {
            parameter: Parameter::CrossValidationProbabilityPermille,
            value: 500,
        });
        self.w.admin_ok(AdminOp::SetParameter {
            parameter: Parameter::CrossValidationExtraNodesCount,
            value: 2,
        });
    }

    fn owner(&self, node: NodeSmallId) -> atoma_contract::Address {
        self.w.db.node(node).and_then(|n| self.w.db.badge(n.badge_id)).map_or(addr(1), |b| b.owner)
    }

    fn stack_owner(&self, stack: StackSmallId) -> atoma_contract::Address {
        self.w.db.stack(stack).and_then(|s| self.w.db.badge(s.badge_id)).map_or(addr(1), |b| b.owner)
    }

    fn node(&self, i: u8) -> NodeSmallId {
        pick(&self.nodes, i, NodeSmallId(999))
    }

    fn task(&self, i: u8) -> TaskSmallId {
        pick(&self.tasks, i, TaskSmallId(999))
    }

    fn stack(&self, i: u8) -> StackSmallId {
        pick(&self.stacks, i, StackSmallId(999))
    }

    /// Mostly an open stack that passes `filter`; sometimes (i ≥ 10) any stack ever bought, so
    /// that calls on closed stacks are tried too.
    fn stack_where(&self, i: u8, filter: impl Fn(&atoma_contract::state::Stack) -> bool) -> StackSmallId {
        let open: Vec<StackSmallId> = self.w.db.stacks().filter(|s| filter(s)).map(|s| s.small_id).collect();
        if i >= 10 || open.is_empty() { self.stack(i) } else { pick(&open, i, StackSmallId(999)) }
    }

    fn settled(&self, i: u8) -> StackSmallId {
        self.stack_where(i, |s| s.ticket.is_some())
    }

    fn attested(&self, i: u8) -> StackSmallId {
        self.stack_where(i, |s| s.ticket.as_ref().is_some_and(|t| !t.requested_attestation_nodes.is_empty()))
    }

    fn attester(&self, stack: StackSmallId, which: u8) -> NodeSmallId {
        let requested = self.w.db.settlement_ticket(stack).map(|t| t.requested_attestation_nodes.clone());
        pick(&requested.unwrap_or_default(), which, self.node(which))
    }

    /// The sender and call an action maps to in the current state.
    fn to_call(&self, action: &Action) -> (atoma_contract::Address, Call) {
        let admin = |op| (self.w.admin, Call::Admin { manager_badge: self.w.manager_badge, op });
        match *action {
            Action::Register { actor: a, extra, opts } => (
                actor(a),
                Call::RegisterNode {
                    collateral: COLLATERAL * (1 + extra) - extra,
                    supported_optimizations: opts,
                },
            ),
            Action::AddCollateral { node, amount } => {
                let node = self.node(node);
                (self.owner(node), Call::AddNodeCollateral { node, amount: amount * 1_000_000 })
            }
            Action::CreateTask { actor: a, level, model, min_rep, opts } => (
                actor(a),
                Call::CreateTask {
                    role: u16::from(a % 9),
                    model_name: model.then(|| MODEL.to_string()),
                    security_level: level,
                    minimum_reputation_score: min_rep,
                    required_optimizations: opts,
                },
            ),
            Action::Subscribe { node, task, price, units } => {
                let node = self.node(node);
                let call = Call::SubscribeNodeToTask {
                    node,
                    task: self.task(task),
                    price_per_compute_unit: price,
                    max_num_compute_units: units,
                };
                (self.owner(node), call)
            }
            Action::Update { node, task, price, units } => {
                let node = self.node(node);
                let call = Call::UpdateNodeSubscription {
                    node,
                    task: self.task(task),
                    price_per_compute_unit: price,
                    max_num_compute_units: units,
                };
                (self.owner(node), call)
            }
            Action::Unsubscribe { node, task } => {
                let node = self.node(node);
                (self.owner(node), Call::UnsubscribeNodeFromTask { node, task: self.task(task) })
            }
            Action::JoinModel { node } => {
                let node = self.node(node);
                (
                    self.owner(node),
                    Call::AddNodeToModel { node, model_name: MODEL.into(), echelon: EchelonId(1) },
                )
            }
            Action::CommitKey { node, valid } => {
                let node = self.node(node);
                let rotation = self.w.db.globals().key_rotation_counter;
                let public_key = enclave_key(node).verifying_key().to_bytes();
                let signer = if valid { &self.root } else { &self.device };
                let evidence = build_evidence(signer, &self.device, &public_key, node, rotation);
                let call = Call::CommitNodePublicKey {
                    node,
                    device_type: 300,
                    key_rotation_counter: rotation,
                    public_key,
                    evidence,
                };
                (self.owner(node), call)
            }
            Action::Buy { actor: a, task, units, cap } => (
                actor(a),
                Call::AcquireNewStack {
                    task: self.task(task),
                    num_compute_units: units,
                    max_price_per_compute_unit: cap,
                },
            ),
            Action::Settle { stack, units, honest } => {
                self.settle(self.stack_where(stack, |s| s.ticket.is_none()), units, honest)
            }
            Action::Attest { stack, which, honest } => {
                let stack = self.attested(stack);
                let node = self.attester(stack, which);
                let k = self.w.db.stack(stack).map_or(1, |s| s.terms.cross_validation_extra_nodes_count);
                let (proof, _) = honest_commitment(k);
                let proof = if honest { proof } else { [0xee; 32] };
                let position = 1 + u64::from(which) % 3;
                let call = Call::SubmitStackSettlementAttestation {
                    node,
                    stack,
                    committed_stack_proof: proof.to_vec(),
                    stack_merkle_leaf: honest_leaf(position).to_vec(),
                };
                (self.owner(node), call)
            }
            Action::Dispute { stack, which } => {
                let stack = self.attested(stack);
                let node = self.attester(stack, which);
                (
                    self.owner(node),
                    Call::StartAttestationDispute { node, stack, attestation_commitment: vec![0xdd; 32] },
                )
            }
            Action::Contest { stack, units } => {
                let stack = self.settled(stack);
                (self.stack_owner(stack), Call::ContestClaimedUnits { stack, counted_units: units })
            }
            Action::Resolve { stack, node_right, units } => {
                let stack = self.stack_where(stack, |s| {
                    s.ticket.as_ref().is_some_and(|t| {
                        matches!(t.status, atoma_contract::state::TicketStatus::InDispute { .. })
                    })
                });
                let proof = match self.w.db.settlement_ticket(stack) {
                    Some(t) if node_right => t.committed_stack_proof,
                    _ => [0xdd; 32],
                };
                let oracle = NodeSmallId(1);
                let call = Call::ResolveStackDispute {
                    oracle_node: oracle,
                    stack,
                    correct_committed_stack_proof: proof.to_vec(),
                    correct_units: units,
                };
                (self.owner(oracle), call)
            }
            Action::Claim { stack, wrong_node } => {
                let stack = self.settled(stack);
                let selected = self.w.db.stack(stack).map_or(NodeSmallId(1), |s| s.selected_node);
                let node = if wrong_node { NodeSmallId(selected.0 + 1) } else { selected };
                (self.owner(node), Call::ClaimFunds { node, stacks: vec![stack] })
            }
            Action::Expire { stack } => (addr(40), Call::ExpireDispute { stack: self.settled(stack) }),
            Action::Reclaim { stack } => {
                let stack = self.stack(stack);
                (self.stack_owner(stack), Call::ReclaimExpiredStack { stack })
            }
            Action::Disable { node, by_admin } => {
                let node = self.node(node);
                if by_admin {
                    admin(AdminOp::PermanentlyDisableNode { node })
                } else {
                    (self.owner(node), Call::PermanentlyDisableNode { node })
                }
            }
            Action::Destroy { node } => {
                let node = self.node(node);
                (self.owner(node), Call::DestroyDisabledNode { node })
            }
            Action::Withdraw { node } => {
                let node = self.node(node);
                (self.owner(node), Call::WithdrawFees { node })
            }
            Action::Deprecate { task } => admin(AdminOp::DeprecateTask { task: self.task(task) }),
            Action::RemoveTask { task } => admin(AdminOp::RemoveDeprecatedTask { task: self.task(task) }),
            Action::SetParam { param, value } => {
                let parameter = Parameter::ALL[usize::from(param) % Parameter::ALL.len()];
                let value = match parameter {
                    Parameter::RegistrationCollateral => value * 1_000_000,
                    Parameter::CrossValidationExtraNodesCount => value % 4,
                    Parameter::CrossValidationProbabilityPermille => {
                        [0, 500, 1000, value][usize::try_from(value % 4).unwrap_or(0)]
                    }
                    _ if value > 1000 => value % 10,
                    _ => value,
                };
                admin(AdminOp::SetParameter { parameter, value })
            }
            Action::Rotate => admin(AdminOp::NewNetworkKeyRotation),
            Action::Transfer { from, to, amount } => {
                (actor(from), Call::TransferToma { recipient: actor(to), amount: amount * 1_000_000_000 })
            }
            Action::Epoch { .. } => unreachable!("epochs are not calls"),
        }
    }

    fn settle(&self, stack: StackSmallId, units: u64, honest: bool) -> (atoma_contract::Address, Call) {
        let Some(s) = self.w.db.stack(stack) else {
            return (addr(40), self.w.settle_call(NodeSmallId(1), stack, units, [1; 32], [1; 32]));
        };
        let units = if units < 120 { units % (s.num_compute_units + 1) } else { units };
        let (proof, leaf) = honest_commitment(s.terms.cross_validation_extra_nodes_count);
        let (proof, leaf) = if honest { (proof, leaf) } else { ([0xbb; 32], [0xcc; 32]) };
        let mut call = self.w.settle_call(s.selected_node, stack, units, proof, leaf);
        if s.security_level == atoma_contract::enums::SecurityLevel::ConfidentialCompute
            && let Call::TrySettleStack { tee_signature, .. } = &mut call
        {
            let key = if honest { enclave_key(s.selected_node) } else { enclave_key(NodeSmallId(0)) };
            *tee_signature = Some(sign_settlement(&key, stack, units, &proof));
        }
        (self.owner(s.selected_node), call)
    }

    fn step(&mut self, action: &Action) {
        if let Action::Epoch { n } = action {
            self.w.advance_epochs(*n);
            return;
        }
        let (sender, call) = self.to_call(action);
        let result = self.w.call(sender, call);
        if let Err(e) = &result {
            let kind = format!("{action:?}");
            let kind = kind.split([' ', '{']).next().unwrap_or("").to_string();
            *ERRORS.lock().unwrap().entry((kind, e.name())).or_default() += 1;
        }
        if let Ok(events) = result {
            for event in &events {
                *SEEN.lock().unwrap().entry(event.name()).or_default() += 1;
                self.observe(event);
            }
        }
        check_invariants(&self.w.db);
    }

    /// Checks what each event says against the history so far.
    fn observe(&mut self, event: &Event) {
        let db = &self.w.db;
        match event {
            Event::NodeRegisteredEvent(e) => {
                assert!(!self.nodes.contains(&e.node_small_id), "node id reused");
                self.nodes.push(e.node_small_id);
            }
            Event::TaskRegisteredEvent(e) => {
                assert!(!self.tasks.contains(&e.task_small_id), "task id reused");
                self.tasks.push(e.task_small_id);
            }
            Event::StackCreatedEvent(e) => {
                assert!(!self.stacks.contains(&e.small_id), "stack id reused");
                self.stacks.push(e.small_id);
                let node = db.node(e.selected_node).expect("selected node exists");
                assert!(!node.is_disabled() && node.collateral > 0, "ineligible node selected");
            }
            Event::StackTrySettleEvent(e) => {
                let unique: BTreeSet<_> = e.requested_attestation_nodes.iter().collect();
                assert_eq!(unique.len(), e.requested_attestation_nodes.len(), "attesters repeat");
                assert!(
                    !e.requested_attestation_nodes.contains(&e.selected_node_id),
                    "selected node attests"
                );
                for attester in &e.requested_attestation_nodes {
                    let n = db.node(*attester).expect("attester exists");
                    assert!(!n.is_disabled() && n.collateral > 0, "ineligible attester");
                }
            }
            Event::StackSettlementTicketClaimedEvent(e) => self.paid(e.stack_small_id),
            Event::StackExpiredEvent(e) => self.paid(e.stack_small_id),
            Event::StackDisputeExpiredEvent(e) => self.paid(e.stack_small_id),
            Event::StackDisputeResolvedEvent(e) if !e.selected_node_was_right => self.paid(e.stack_small_id),
            _ => {}
        }
    }

    fn paid(&mut self, stack: StackSmallId) {
        assert!(self.paid_out.insert(stack), "stack {stack} paid out twice");
        assert!(self.w.db.stack(stack).is_none(), "a paid-out stack is still open");
    }
}

/// State invariants that must hold after every call.
fn check_invariants(db: &AtomaDb) {
    for stack in db.stacks() {
        if let Some(ticket) = &stack.ticket {
            let unique: BTreeSet<_> = ticket.requested_attestation_nodes.iter().collect();
            assert_eq!(unique.len(), ticket.requested_attestation_nodes.len());
            assert!(!unique.contains(&stack.selected_node));
            assert_eq!(ticket.attestations.len(), ticket.requested_attestation_nodes.len());
        }
    }
    // The index holds exactly the statically eligible subscribers of every task.
    for task in db.tasks_from(TaskSmallId(0)) {
        let mut expected: Vec<NodeSmallId> = db
            .subscribers(task.small_id)
            .filter(|(node, _)| db.node(*node).is_some_and(|n| statically_eligible(n, task)))
            .map(|(node, _)| node)
            .collect();
        expected.sort();
        assert_eq!(
            db.indexed_candidates(task.small_id, None),
            expected,
            "index out of date for task {}",
            task.small_id
        );
        let want = Want { units: 50, price_cap: Some(10), exclude: &[] };
        let linear = db.linear_eligible(task, &want);
        let rotation = db.globals().key_rotation_counter;
        let confidential = task.security_level == atoma_contract::enums::SecurityLevel::ConfidentialCompute;
        let indexed: Vec<NodeSmallId> = db
            .indexed_candidates(task.small_id, Some(10))
            .into_iter()
            .filter(|n| db.subscription(task.small_id, *n).is_some_and(|s| s.max_num_compute_units >= 50))
            .filter(|n| {
                !confidential
                    || db
                        .node(*n)
                        .and_then(|n| n.tee_key.as_ref())
                        .is_some_and(|k| k.key_rotation_counter == rotation)
            })
            .collect();
        assert_eq!(indexed, linear);
    }
    // Open work counts agree with the open stacks.
    for node in db.nodes() {
        let expected = db
            .stacks()
            .map(|s| {
                let selected = u64::from(s.selected_node == node.small_id);
                let attesting = s.ticket.as_ref().map_or(0, |t| {
                    t.requested_attestation_nodes.iter().filter(|n| **n == node.small_id).count() as u64
                });
                selected + attesting
            })
            .sum::<u64>();
        assert_eq!(node.open_work, expected, "open work of node {}", node.small_id);
    }
}

proptest! {
    // 96 sequences in CI; PROPTEST_CASES=5000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_call_sequences_keep_every_invariant(actions in prop::collection::vec(action(), 1..120)) {
        let mut run = Run::new();
        run.open_market();
        for action in &actions {
            run.step(action);
        }
        // Replaying the same calls from the same genesis gives the same state.
        prop_assert_eq!(run.w.replay(), run.w.db.state_digest());
        if std::env::var("ATOMA_PRINT_COVERAGE").is_ok() {
            eprintln!("{:?}", SEEN.lock().unwrap());
            eprintln!("{:?}", ERRORS.lock().unwrap());
        }
        // A snapshot round trip gives the same state and the same index.
        let copy = AtomaDb::from_canonical_bytes(&run.w.db.canonical_bytes()).expect("decodes");
        prop_assert_eq!(copy.state_digest(), run.w.db.state_digest());
        for task in run.w.db.tasks_from(TaskSmallId(0)) {
            prop_assert_eq!(copy.indexed_candidates(task.small_id, None), run.w.db.indexed_candidates(task.small_id, None));
        }
    }
}
