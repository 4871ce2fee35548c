//! The CI counterpart of the `contract_calls` fuzz target (fuzz/README.md): *arbitrary* `Call`
//! values — absurd numbers, vectors and strings up to the transaction size limit, ids that do
//! not exist, raw BCS — from a few senders against a small live market, unlike
//! `properties.rs`, whose actions are well formed.
//!
//! After every call: no `EInternalPanic`, supply conserved, a dry run answers what the execution
//! answers and changes nothing, and a failed call leaves the state digest unchanged. At the end,
//! replaying the same calls from the same start gives the same digest.

use std::sync::OnceLock;

use atoma_contract::call::{AdminOp, Call, EchelonParams, Parameter};
use atoma_contract::commitment::settlement_commitment;
use atoma_contract::hash::blake2b256;
use atoma_contract::state::BadgeKind;
use atoma_contract::tee::build_evidence;
use atoma_contract::{
    Address, AtomaDb, Config, ContractError, EchelonId, Genesis, NodeSmallId, ObjectId, StackSmallId, TOMA,
    TaskSmallId, TxContext,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

const MODEL: &str = "llama";
const DEVICE_TYPE: u16 = 300;
/// Senders 0 (admin) to 8; 9 is a stranger; [`OWNER`] is whoever owns what the call names.
const SENDERS: u8 = 10;
const OWNER: u8 = 10;
/// A signed transaction is at most 128 KiB (the ledger's `MAX_TRANSACTION_SIZE`); leave room
/// for the chain id, sender, nonce, signature and length prefixes.
const MAX_CALL_SIZE: usize = 128 * 1024 - 256;

fn sender(i: u8) -> Address {
    Address(blake2b256(&[b"fuzz-sender", &[i]]))
}

/// The market every case starts from, built once: see [`build_market`].
struct Market {
    db: AtomaDb,
    manager_badge: ObjectId,
}

fn market() -> &'static Market {
    static MARKET: OnceLock<Market> = OnceLock::new();
    MARKET.get_or_init(build_market)
}

/// Epoch, time and digests of the calls of one case.
struct Clock {
    epoch: u64,
    time_ms: u64,
    counter: u64,
}

impl Clock {
    fn next(&mut self, sender: Address) -> TxContext {
        self.counter += 1;
        self.time_ms += 10;
        let digest = blake2b256(&[b"fuzz-tx", &self.counter.to_le_bytes()]);
        TxContext {
            sender,
            epoch: self.epoch,
            timestamp_ms: self.time_ms,
            tx_digest: digest,
            random_seed: blake2b256(&[b"fuzz-seed", &digest]),
        }
    }
}

/// Funded senders (7 and 8 hold almost `u64::MAX / 2` each, so transfers between them can
/// overflow), a model with an echelon and an oracle (node 5), nodes 1–4 with an enclave key
/// subscribed to tasks 1–4 (security levels 0, 1, 2 and 0 on the model), one stack bought on
/// each task, cross-validation always on with two attesters.
fn build_market() -> Market {
    let mut allocations: Vec<(Address, u64)> = (0..9).map(|i| (sender(i), 1_000_000 * TOMA)).collect();
    allocations[7].1 = u64::MAX / 2 - 1;
    allocations[8].1 = u64::MAX / 2 - 1;
    let genesis =
        Genesis { admin: sender(0), allocations, config: Config::default(), genesis_digest: [42; 32] };
    let (mut db, _) = AtomaDb::genesis(&genesis).expect("genesis");
    let manager_badge = db
        .owned_badges(&sender(0))
        .into_iter()
        .find(|(_, b)| b.kind == BadgeKind::Manager)
        .map(|(id, _)| id)
        .expect("manager badge");
    let mut clock = Clock { epoch: 0, time_ms: 1_000, counter: 0 };
    let mut ok = |who: u8, call: Call| {
        let ctx = clock.next(sender(who));
        db.execute(&ctx, &call).unwrap_or_else(|e| panic!("setup {call:?}: {e}"));
    };
    let admin = |op| Call::Admin { manager_badge, op };
    let params = EchelonParams {
        input_fee_per_token: 1,
        output_fee_per_token: 2,
        relative_performance: 100,
        settlement_timeout_ms: 30_000,
    };
    ok(0, admin(AdminOp::AddModel { name: MODEL.into(), modality: 0 }));
    ok(0, admin(AdminOp::AddModelEchelon { model_name: MODEL.into(), echelon: EchelonId(1), params }));
    let root = SigningKey::from_bytes(&[1; 32]);
    let device = SigningKey::from_bytes(&[2; 32]);
    ok(
        0,
        admin(AdminOp::AddAttestationRoot {
            device_type: DEVICE_TYPE,
            public_key: root.verifying_key().to_bytes(),
        }),
    );
    for owner in 1..=5u8 {
        let node = NodeSmallId(u64::from(owner));
        ok(owner, Call::RegisterNode { collateral: 1_000 * TOMA, supported_optimizations: 0b1_1111 });
        ok(owner, Call::AddNodeToModel { node, model_name: MODEL.into(), echelon: EchelonId(1) });
        let public_key = SigningKey::from_bytes(&[10 + owner; 32]).verifying_key().to_bytes();
        let evidence = build_evidence(&root, &device, &public_key, node, 0);
        ok(
            owner,
            Call::CommitNodePublicKey {
                node,
                device_type: DEVICE_TYPE,
                key_rotation_counter: 0,
                public_key,
                evidence,
            },
        );
    }
    ok(
        0,
        admin(AdminOp::AddModelEchelonOracleNode {
            model_name: MODEL.into(),
            echelon: EchelonId(1),
            node: NodeSmallId(5),
        }),
    );
    for (level, model) in [(0, false), (1, false), (2, true), (0, true)] {
        let call = Call::CreateTask {
            role: 0,
            model_name: model.then(|| MODEL.to_string()),
            security_level: level,
            minimum_reputation_score: None,
            required_optimizations: 0,
        };
        ok(6, call);
    }
    for node in 1..=4u8 {
        for task in 1..=4 {
            let call = Call::SubscribeNodeToTask {
                node: NodeSmallId(u64::from(node)),
                task: TaskSmallId(task),
                price_per_compute_unit: u64::from(node),
                max_num_compute_units: 1_000,
            };
            ok(node, call);
        }
    }
    ok(
        0,
        admin(AdminOp::SetParameter {
            parameter: Parameter::CrossValidationProbabilityPermille,
            value: 1000,
        }),
    );
    ok(0, admin(AdminOp::SetParameter { parameter: Parameter::CrossValidationExtraNodesCount, value: 2 }));
    for task in 1..=4 {
        ok(
            6,
            Call::AcquireNewStack {
                task: TaskSmallId(task),
                num_compute_units: 100,
                max_price_per_compute_unit: 10,
            },
        );
    }
    assert!(db.audit().holds());
    Market { db, manager_badge }
}

/// Mostly ids that exist (1–5), sometimes 0, just past the last, or absurd ones.
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![12 => 1u64..6, 3 => 0u64..10, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::MAX / 2),
        0u64..2_000,
        (1u64..1_000_000).prop_map(|t| t * TOMA),
        any::<u64>(),
    ]
}

/// Mostly 32 bytes (the honest proof, zeros, anything), sometimes any length up to the limit.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(settlement_commitment(&[(b"q".to_vec(), b"a".to_vec())], 2).expect("small").0.to_vec()),
        3 => prop::collection::vec(any::<u8>(), 32),
        2 => prop::collection::vec(any::<u8>(), 0..100),
        1 => (0usize..MAX_CALL_SIZE).prop_map(|n| vec![0xab; n]),
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(MODEL.to_string()),
        1 => Just(String::new()),
        2 => ".{0,24}",
        1 => (0usize..MAX_CALL_SIZE).prop_map(|n| "m".repeat(n)),
    ]
}

/// Mostly valid URLs, sometimes just past the length limit, a wrong scheme or anything.
fn endpoint() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "https?://[a-z0-9.:/-]{1,40}",
        1 => Just(format!("http://{}", "e".repeat(250))),
        1 => Just(String::new()),
        2 => ".{0,24}",
        1 => (0usize..MAX_CALL_SIZE).prop_map(|n| format!("https://{}", "e".repeat(n))),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    prop_oneof![4 => (0..SENDERS).prop_map(sender), 1 => any::<[u8; 32]>().prop_map(Address)]
}

fn node() -> impl Strategy<Value = NodeSmallId> {
    id().prop_map(NodeSmallId)
}

fn task() -> impl Strategy<Value = TaskSmallId> {
    id().prop_map(TaskSmallId)
}

fn stack() -> impl Strategy<Value = StackSmallId> {
    id().prop_map(StackSmallId)
}

fn echelon() -> impl Strategy<Value = EchelonId> {
    prop_oneof![0u64..3, any::<u64>()].prop_map(EchelonId)
}

fn echelon_params() -> impl Strategy<Value = EchelonParams> {
    (amount(), amount(), amount(), amount()).prop_map(|(i, o, r, t)| EchelonParams {
        input_fee_per_token: i,
        output_fee_per_token: o,
        relative_performance: r,
        settlement_timeout_ms: t,
    })
}

fn admin_op() -> impl Strategy<Value = AdminOp> {
    prop_oneof![
        (name(), any::<u16>()).prop_map(|(name, modality)| AdminOp::AddModel { name, modality }),
        name().prop_map(|name| AdminOp::RemoveModel { name }),
        name().prop_map(|name| AdminOp::DisableModel { name }),
        name().prop_map(|name| AdminOp::EnableModel { name }),
        (name(), echelon(), echelon_params()).prop_map(|(model_name, echelon, params)| {
            AdminOp::AddModelEchelon { model_name, echelon, params }
        }),
        (name(), echelon(), echelon_params()).prop_map(|(model_name, echelon, params)| {
            AdminOp::UpdateModelEchelon { model_name, echelon, params }
        }),
        (name(), echelon())
            .prop_map(|(model_name, echelon)| AdminOp::RemoveModelEchelon { model_name, echelon }),
        (name(), echelon(), node()).prop_map(|(model_name, echelon, node)| {
            AdminOp::AddModelEchelonOracleNode { model_name, echelon, node }
        }),
        (name(), echelon(), node()).prop_map(|(model_name, echelon, node)| {
            AdminOp::RemoveModelEchelonOracleNode { model_name, echelon, node }
        }),
        (prop::sample::select(Parameter::ALL), prop_oneof![0u64..1002, amount()])
            .prop_map(|(parameter, value)| AdminOp::SetParameter { parameter, value }),
        Just(AdminOp::DisableRegistration),
        Just(AdminOp::EnableRegistration),
        node().prop_map(|node| AdminOp::PermanentlyDisableNode { node }),
        task().prop_map(|task| AdminOp::DeprecateTask { task }),
        task().prop_map(|task| AdminOp::RemoveDeprecatedTask { task }),
        Just(AdminOp::NewNetworkKeyRotation),
        (any::<u16>(), any::<[u8; 32]>())
            .prop_map(|(device_type, public_key)| AdminOp::AddAttestationRoot { device_type, public_key }),
        any::<u16>().prop_map(|device_type| AdminOp::RemoveAttestationRoot { device_type }),
        (amount(), address())
            .prop_map(|(amount, recipient)| AdminOp::WithdrawFeeTreasury { amount, recipient }),
        (amount(), address())
            .prop_map(|(amount, recipient)| AdminOp::WithdrawCommunalTreasury { amount, recipient }),
        address().prop_map(|recipient| AdminOp::CreateManagerBadge { recipient }),
    ]
}

/// Any call: every variant, any field values.
fn any_call() -> impl Strategy<Value = Call> {
    let stacks = prop_oneof![
        4 => prop::collection::vec(stack(), 0..6),
        1 => (0usize..MAX_CALL_SIZE / 8).prop_map(|n| vec![StackSmallId(1); n]),
    ];
    let nodes_and_money = prop_oneof![
        (address(), amount()).prop_map(|(recipient, amount)| Call::TransferToma { recipient, amount }),
        (any::<[u8; 32]>(), address())
            .prop_map(|(badge, recipient)| Call::TransferBadge { badge: ObjectId(badge), recipient }),
        (amount(), any::<u8>()).prop_map(|(collateral, supported_optimizations)| Call::RegisterNode {
            collateral,
            supported_optimizations
        }),
        (node(), amount()).prop_map(|(node, amount)| Call::AddNodeCollateral { node, amount }),
        (node(), task(), amount(), amount()).prop_map(|(node, task, p, m)| Call::SubscribeNodeToTask {
            node,
            task,
            price_per_compute_unit: p,
            max_num_compute_units: m
        }),
        (node(), task(), amount(), amount()).prop_map(|(node, task, p, m)| Call::UpdateNodeSubscription {
            node,
            task,
            price_per_compute_unit: p,
            max_num_compute_units: m
        }),
        (node(), task()).prop_map(|(node, task)| Call::UnsubscribeNodeFromTask { node, task }),
        (node(), name(), echelon()).prop_map(|(node, model_name, echelon)| Call::AddNodeToModel {
            node,
            model_name,
            echelon
        }),
        (node(), name(), echelon()).prop_map(|(node, model_name, echelon)| Call::RemoveNodeFromModel {
            node,
            model_name,
            echelon
        }),
        (node(), any::<u8>())
            .prop_map(|(node, opts)| Call::SetNodeOptimizations { node, supported_optimizations: opts }),
        node().prop_map(|node| Call::PermanentlyDisableNode { node }),
        node().prop_map(|node| Call::DestroyDisabledNode { node }),
        node().prop_map(|node| Call::WithdrawFees { node }),
        (node(), endpoint()).prop_map(|(node, url)| Call::SetNodeEndpoint { node, url }),
        (node(), any::<u16>(), prop_oneof![Just(0u64), any::<u64>()], any::<[u8; 32]>(), bytes()).prop_map(
            |(node, device_type, key_rotation_counter, public_key, evidence)| Call::CommitNodePublicKey {
                node,
                device_type,
                key_rotation_counter,
                public_key,
                evidence,
            }
        ),
    ];
    let tasks_and_stacks = prop_oneof![
        (
            prop_oneof![0u16..10, any::<u16>()],
            proptest::option::of(name()),
            prop_oneof![0u16..4, any::<u16>()],
            any::<Option<u16>>(),
            any::<u8>()
        )
            .prop_map(|(role, model_name, level, min_rep, opts)| Call::CreateTask {
                role,
                model_name,
                security_level: level,
                minimum_reputation_score: min_rep,
                required_optimizations: opts,
            }),
        task().prop_map(|task| Call::DeprecateTask { task }),
        task().prop_map(|task| Call::RemoveDeprecatedTask { task }),
        (task(), amount(), amount()).prop_map(|(task, n, cap)| Call::AcquireNewStack {
            task,
            num_compute_units: n,
            max_price_per_compute_unit: cap
        }),
        stack().prop_map(|stack| Call::ReclaimExpiredStack { stack }),
        (node(), stack(), amount(), bytes(), bytes(), proptest::option::of(bytes())).prop_map(
            |(node, stack, units, proof, leaf, tee)| Call::TrySettleStack {
                node,
                stack,
                num_claimed_compute_units: units,
                committed_stack_proof: proof,
                stack_merkle_leaf: leaf,
                tee_signature: tee,
            }
        ),
        (node(), stack(), bytes(), bytes()).prop_map(|(node, stack, proof, leaf)| {
            Call::SubmitStackSettlementAttestation {
                node,
                stack,
                committed_stack_proof: proof,
                stack_merkle_leaf: leaf,
            }
        }),
        (node(), stack(), bytes()).prop_map(|(node, stack, c)| Call::StartAttestationDispute {
            node,
            stack,
            attestation_commitment: c
        }),
        (stack(), amount())
            .prop_map(|(stack, counted_units)| Call::ContestClaimedUnits { stack, counted_units }),
        (node(), stack(), bytes(), amount()).prop_map(|(oracle_node, stack, proof, units)| {
            Call::ResolveStackDispute {
                oracle_node,
                stack,
                correct_committed_stack_proof: proof,
                correct_units: units,
            }
        }),
        (node(), stacks).prop_map(|(node, stacks)| Call::ClaimFunds { node, stacks }),
        stack().prop_map(|stack| Call::ExpireDispute { stack }),
    ];
    let admin = (prop_oneof![9 => Just(None), 1 => any::<[u8; 32]>().prop_map(Some)], admin_op())
        .prop_map(|(badge, op)| (badge, op));
    prop_oneof![
        3 => nodes_and_money,
        4 => tasks_and_stacks,
        2 => admin.prop_map(|(badge, op)| Call::Admin {
            // `None` stands for the admin's real badge, filled in when the call runs.
            manager_badge: ObjectId(badge.unwrap_or([0; 32])),
            op,
        }),
        // Raw BCS after a valid variant tag: whatever decodes as a call (else a harmless one).
        1 => (0u8..28, prop::collection::vec(any::<u8>(), 0..80)).prop_map(|(tag, rest)| {
            let bytes = [&[tag][..], &rest].concat();
            bcs::from_bytes::<Call>(&bytes).unwrap_or(Call::ExpireDispute { stack: StackSmallId(0) })
        }),
    ]
    .prop_filter("over the transaction size limit", |call| {
        bcs::to_bytes(call).is_ok_and(|b| b.len() <= MAX_CALL_SIZE)
    })
}

#[derive(Clone, Debug)]
enum Op {
    Call { sender: u8, call: Call },
    Epochs(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (prop_oneof![1 => 0..SENDERS, 2 => Just(OWNER)], any_call()).prop_map(|(sender, call)| Op::Call { sender, call }),
        1 => (0u64..4).prop_map(Op::Epochs),
    ]
}

/// Who owns what the call names (the admin for admin calls); anybody for other calls.
fn owner(db: &AtomaDb, call: &Call) -> Address {
    let node = |n: &NodeSmallId| db.node(*n).and_then(|n| db.badge(n.badge_id)).map(|b| b.owner);
    let stack = |s: &StackSmallId| db.stack(*s).and_then(|s| db.badge(s.badge_id)).map(|b| b.owner);
    let task = |t: &TaskSmallId| db.task(*t).and_then(|t| db.badge(t.badge_id)).map(|b| b.owner);
    let found = match call {
        Call::AddNodeCollateral { node: n, .. }
        | Call::SubscribeNodeToTask { node: n, .. }
        | Call::UpdateNodeSubscription { node: n, .. }
        | Call::UnsubscribeNodeFromTask { node: n, .. }
        | Call::AddNodeToModel { node: n, .. }
        | Call::RemoveNodeFromModel { node: n, .. }
        | Call::SetNodeOptimizations { node: n, .. }
        | Call::SetNodeEndpoint { node: n, .. }
        | Call::PermanentlyDisableNode { node: n }
        | Call::DestroyDisabledNode { node: n }
        | Call::WithdrawFees { node: n }
        | Call::TrySettleStack { node: n, .. }
        | Call::SubmitStackSettlementAttestation { node: n, .. }
        | Call::StartAttestationDispute { node: n, .. }
        | Call::ClaimFunds { node: n, .. }
        | Call::CommitNodePublicKey { node: n, .. }
        | Call::ResolveStackDispute { oracle_node: n, .. } => node(n),
        Call::DeprecateTask { task: t } | Call::RemoveDeprecatedTask { task: t } => task(t),
        Call::ReclaimExpiredStack { stack: s } | Call::ContestClaimedUnits { stack: s, .. } => stack(s),
        Call::Admin { .. } => Some(sender(0)),
        _ => None,
    };
    found.unwrap_or_else(|| sender(6))
}

/// Runs the ops from the market, checking every call; returns the calls made.
fn run(ops: &[Op]) -> Vec<(TxContext, Call)> {
    let m = market();
    let mut db = m.db.clone();
    let mut clock = Clock { epoch: 1, time_ms: 100_000, counter: 1_000 };
    let mut log = Vec::new();
    for op in ops {
        let (sender_index, mut call) = match op {
            Op::Epochs(n) => {
                clock.epoch += n;
                clock.time_ms += n * 60_000;
                continue;
            }
            Op::Call { sender, call } => (*sender, call.clone()),
        };
        if let Call::Admin { manager_badge, .. } = &mut call
            && *manager_badge == ObjectId([0; 32])
        {
            *manager_badge = m.manager_badge;
        }
        let who = if sender_index == OWNER { owner(&db, &call) } else { sender(sender_index) };
        let ctx = clock.next(who);
        let before = db.state_digest();
        let dry = db.dry_run(&ctx, &call);
        assert_eq!(db.state_digest(), before, "a dry run changed the state: {call:?}");
        let result = db.execute(&ctx, &call);
        assert_eq!(dry, result, "dry run and execution disagree on {call:?}");
        match &result {
            Err(ContractError::EInternalPanic) => panic!("the contract panicked on {call:?}"),
            Err(_) => assert_eq!(db.state_digest(), before, "a failed call changed the state: {call:?}"),
            Ok(_) => {}
        }
        let audit = db.audit();
        assert!(audit.holds(), "supply not conserved after {call:?}: {audit:?}");
        if std::env::var("ATOMA_PRINT_COVERAGE").is_ok() {
            let name = format!("{call:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or("").to_string();
            let outcome = result.as_ref().map_or_else(|e| e.name(), |_| "ok");
            eprintln!("outcome {name} {outcome}");
        }
        log.push((ctx, call));
    }
    let mut replay = m.db.clone();
    for (ctx, call) in &log {
        let _ = replay.execute(ctx, call);
    }
    assert_eq!(replay.state_digest(), db.state_digest(), "a replay ended in another state");
    log
}

proptest! {
    // A few seconds in a debug build; PROPTEST_CASES=5000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_calls_keep_every_invariant(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}
