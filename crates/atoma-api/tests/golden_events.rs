//! Golden files pin the JSON of every event (SPEC §10): changing one is a decision, not an
//! accident. `UPDATE_GOLDEN=1 cargo test -p atoma-api --test golden_events` rewrites them; review
//! the diff before committing it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use atoma_api::EventEnvelope;
use atoma_contract::event::*;
use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TOMA, TaskSmallId};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden").join("events")
}

/// A digest that looks like one: blake2b-256 of a label.
fn digest(label: &str) -> [u8; 32] {
    blake2b256(&[label.as_bytes()])
}

fn object(label: &str) -> ObjectId {
    ObjectId(digest(label))
}

fn address(label: &str) -> Address {
    Address::from_ed25519_public_key(&digest(label))
}

fn node(n: u64) -> NodeSmallId {
    NodeSmallId(n)
}

/// One representative event of every kind, with a distinct number in every field.
fn samples() -> Vec<Event> {
    vec![
        PublishedEvent { db: object("db"), manager_badge: object("manager badge") }.into(),
        NodeRegisteredEvent { badge_id: object("node badge"), node_small_id: node(7) }.into(),
        NodeCollateralAddedEvent { node_small_id: node(7), amount: 250 * TOMA, collateral: 1_250 * TOMA }
            .into(),
        NodeSubscribedToModelEvent {
            node_small_id: node(8),
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            echelon_id: EchelonId(2),
        }
        .into(),
        NodeUnsubscribedFromModelEvent {
            node_small_id: node(9),
            model_name: "mistralai/Mistral-7B-v0.3".into(),
            echelon_id: EchelonId(3),
        }
        .into(),
        NodeSubscribedToTaskEvent {
            task_small_id: TaskSmallId(4),
            node_small_id: node(7),
            price_per_compute_unit: 1500,
            max_num_compute_units: 2_000_000,
        }
        .into(),
        NodeUpdateSubscriptionEvent {
            task_small_id: TaskSmallId(5),
            node_small_id: node(10),
            price_per_compute_unit: 1250,
            max_num_compute_units: 3_500_000,
        }
        .into(),
        NodeUnsubscribedFromTaskEvent { task_small_id: TaskSmallId(6), node_small_id: node(11) }.into(),
        NodeOptimizationsUpdatedEvent { node_small_id: node(12), supported_optimizations: 0b1_0011 }.into(),
        NodeDisabledEvent { node_small_id: node(13), epoch: 42 }.into(),
        NodeDestroyedEvent {
            node_small_id: node(14),
            collateral_returned: 900 * TOMA,
            fees_returned: 31_337,
        }
        .into(),
        NodeFeesWithdrawnEvent { node_small_id: node(15), amount: 77_000_001 }.into(),
        NodeSlashedEvent {
            node_small_id: node(16),
            reason: "timeout".into(),
            amount: 100 * TOMA,
            remaining_collateral: 900 * TOMA,
            reputation: 90,
        }
        .into(),
        NodePublicKeyCommittmentEvent {
            epoch: 43,
            key_rotation_counter: 5,
            node_id: node(17),
            device_type: 300,
            public_key: digest("enclave key").to_vec(),
        }
        .into(),
        TaskRegisteredEvent { task_id: object("task"), task_small_id: TaskSmallId(18) }.into(),
        TaskDeprecationEvent {
            task_id: object("deprecated task"),
            task_small_id: TaskSmallId(19),
            epoch: 44,
        }
        .into(),
        TaskRemoveEvent {
            task_id: object("removed task"),
            task_small_id: TaskSmallId(20),
            removed_at_epoch: 46,
        }
        .into(),
        StackCreatedEvent {
            stack_id: object("stack"),
            small_id: StackSmallId(21),
            selected_node: node(7),
            num_compute_units: 1_000_000,
            price: 1500,
            owner: address("stack owner"),
            task_small_id: TaskSmallId(4),
        }
        .into(),
        StackExpiredEvent {
            stack_small_id: StackSmallId(22),
            selected_node_id: node(23),
            refund_amount: 1_800_000_000,
        }
        .into(),
        StackTrySettleEvent {
            stack_small_id: StackSmallId(24),
            selected_node_id: node(25),
            requested_attestation_nodes: vec![node(26), node(27)],
            committed_stack_proof: digest("committed stack proof"),
            stack_merkle_leaf: digest("leaf 0"),
            num_claimed_compute_units: 812_345,
        }
        .into(),
        StackSettlementTicketEvent {
            stack_small_id: StackSmallId(28),
            selected_node_id: node(29),
            num_claimed_compute_units: 654_321,
            requested_attestation_nodes: vec![node(30)],
            dispute_settled_at_epoch: 47,
            committed_stack_proof: digest("settled proof"),
        }
        .into(),
        StackSettlementTicketClaimedEvent {
            stack_small_id: StackSmallId(31),
            selected_node_id: node(32),
            attestation_nodes: vec![node(33), node(34), node(35)],
            num_claimed_compute_units: 543_210,
            user_refund_amount: 684_185_000,
        }
        .into(),
        NewStackSettlementAttestationEvent {
            stack_small_id: StackSmallId(36),
            attestation_node_id: node(37),
            committed_stack_proof: digest("attested proof"),
            stack_merkle_leaf: digest("leaf 1"),
        }
        .into(),
        StackAttestationDisputeEvent {
            stack_small_id: StackSmallId(38),
            attestation_commitment: digest("attester's commitment"),
            attestation_node_id: node(39),
            original_node_id: node(40),
            original_commitment: digest("original commitment"),
        }
        .into(),
        StackUnitsContestedEvent {
            stack_small_id: StackSmallId(41),
            claimed_units: 90_000,
            counted_units: 61_234,
        }
        .into(),
        StackDisputeResolvedEvent {
            stack_small_id: StackSmallId(42),
            oracle_node_id: node(43),
            correct_committed_stack_proof: digest("oracle's proof"),
            correct_units: 70_707,
            selected_node_was_right: false,
            slashed_nodes: vec![node(44)],
            slashed_amount: 1_000 * TOMA,
            oracle_reward: 100 * TOMA,
            honest_nodes: vec![],
            honest_reward_each: 0,
            user_refund_amount: 106_060_500,
        }
        .into(),
        StackDisputeExpiredEvent { stack_small_id: StackSmallId(45), refund_amount: 2_222_222_222 }.into(),
        NewKeyRotationEvent { epoch: 48, key_rotation_counter: 6 }.into(),
        TomaTransferredEvent { sender: address("alice"), recipient: address("bob"), amount: 12 * TOMA + 345 }
            .into(),
        BadgeTransferredEvent {
            badge_id: object("transferred badge"),
            from: address("carol"),
            to: address("dave"),
        }
        .into(),
        ModelAddedEvent { model_name: "openai/whisper-large-v3".into(), modality: 5 }.into(),
        ModelRemovedEvent { model_name: "stabilityai/sdxl-turbo".into() }.into(),
        ModelStatusChangedEvent { model_name: "Qwen/Qwen2.5-72B-Instruct".into(), enabled: true }.into(),
        EchelonAddedEvent {
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            echelon_id: EchelonId(1),
            input_fee_per_token: 3,
            output_fee_per_token: 9,
            relative_performance: 100,
            settlement_timeout_ms: 60_000,
        }
        .into(),
        EchelonUpdatedEvent {
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            echelon_id: EchelonId(4),
            input_fee_per_token: 5,
            output_fee_per_token: 11,
            relative_performance: 250,
            settlement_timeout_ms: 45_000,
        }
        .into(),
        EchelonRemovedEvent { model_name: "mistralai/Mistral-7B-v0.3".into(), echelon_id: EchelonId(6) }
            .into(),
        OracleAddedEvent {
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            echelon_id: EchelonId(7),
            node_small_id: node(46),
        }
        .into(),
        OracleRemovedEvent {
            model_name: "meta-llama/Llama-3.1-8B-Instruct".into(),
            echelon_id: EchelonId(8),
            node_small_id: node(47),
        }
        .into(),
        ParameterUpdatedEvent { parameter: "stack_expiration_epochs".into(), old_value: 7, new_value: 14 }
            .into(),
        RegistrationStatusChangedEvent { enabled: false }.into(),
        AttestationRootAddedEvent { device_type: 100, public_key: digest("AMD root key").to_vec() }.into(),
        AttestationRootRemovedEvent { device_type: 10_000 }.into(),
        TreasuryWithdrawnEvent {
            treasury: "communal".into(),
            amount: 33 * TOMA,
            recipient: address("treasurer"),
        }
        .into(),
        ManagerBadgeCreatedEvent { badge_id: object("second manager badge"), recipient: address("erin") }
            .into(),
        NodeEndpointSetEvent { node_small_id: node(48), url: "https://node-48.example:8443/v1".into() }
            .into(),
    ]
}

/// The envelope of the `seq`-th sample: every sample sits in one made-up transaction.
fn render(seq: usize, event: &Event) -> String {
    let envelope = EventEnvelope::new(
        ObjectId::derive(&digest("golden genesis"), 0),
        digest("golden transaction"),
        seq as u64,
        address("golden sender"),
        1_722_470_400_000 + seq as u64,
        event,
    );
    let mut text = serde_json::to_string_pretty(&envelope).expect("an envelope always serializes");
    text.push('\n');
    text
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

#[test]
fn events_match_golden_files() {
    let update = updating();
    let dir = golden_dir();
    if update {
        remove_stale_files(&dir);
    }
    let mut mismatched = Vec::new();
    for (seq, event) in samples().iter().enumerate() {
        let path = dir.join(format!("{}.json", event.name()));
        let text = render(seq, event);
        if update {
            std::fs::create_dir_all(&dir).expect("create the golden directory");
            std::fs::write(&path, &text).expect("write a golden file");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(expected) if expected == text => {}
            Ok(expected) => {
                mismatched.push(format!("{}:\n--- expected\n{expected}--- got\n{text}", event.name()))
            }
            Err(e) => mismatched.push(format!("{}: cannot read {}: {e}", event.name(), path.display())),
        }
    }
    assert!(
        mismatched.is_empty(),
        "event JSON differs from the golden files (UPDATE_GOLDEN=1 rewrites them):\n{}",
        mismatched.join("\n")
    );
}

/// Deletes golden files of event kinds that no longer exist (say, after a rename).
fn remove_stale_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let known = name.strip_suffix(".json").is_some_and(|stem| Event::NAMES.contains(&stem));
        if !known {
            std::fs::remove_file(entry.path()).expect("remove a stale golden file");
        }
    }
}

#[test]
fn every_event_kind_has_one_sample_and_one_golden_file() {
    let names: BTreeSet<&str> = Event::NAMES.iter().copied().collect();
    assert_eq!(names.len(), Event::NAMES.len(), "duplicate event names");

    let samples = samples();
    let sampled: BTreeSet<&str> = samples.iter().map(Event::name).collect();
    assert_eq!(sampled.len(), samples.len(), "an event kind is sampled twice");
    assert_eq!(sampled, names, "every event kind needs exactly one sample in golden_events.rs");

    if updating() {
        // The other test is rewriting the directory right now; the next plain run checks it.
        return;
    }

    let files: BTreeSet<String> = std::fs::read_dir(golden_dir())
        .expect("the golden directory exists")
        .map(|entry| entry.expect("a readable directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = names.iter().map(|n| format!("{n}.json")).collect();
    assert_eq!(files, expected, "golden files and Event::NAMES differ");
}

#[test]
fn golden_files_parse_back_to_the_same_envelope() {
    for (seq, event) in samples().iter().enumerate() {
        let text = render(seq, event);
        let parsed: EventEnvelope = serde_json::from_str(&text).expect("an envelope parses");
        assert_eq!(parsed.event_name(), event.name());
        assert_eq!(parsed.id.event_seq, seq as u64);
        let again = serde_json::to_string_pretty(&parsed).expect("serializes") + "\n";
        assert_eq!(again, text, "{} does not round-trip", event.name());
    }
}
