//! The whole protocol through the real `atoma` binary against a real `atoma start` (real RPC
//! server on a loopback port, real redb in a temp dir), asserting on `--json` output, then a
//! restart on the same home.

mod common;

use common::{Network, operator_of};
use serde_json::Value;

const REQUESTS: &str =
    r#"[{"input": "2+2?", "output": "4"}, {"input": "capital of France?", "output": "Paris"}]"#;

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x["inner"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn event_names(doc: &Value) -> Vec<String> {
    doc["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["type"].as_str()?.rsplit("::").next().map(String::from)).collect())
        .unwrap_or_default()
}

/// Registers nodes for account-1..=3, all serving `llama` echelon 1; node 3 is its oracle.
fn setup_nodes(net: &Network) -> [String; 3] {
    net.json(&["admin", "add-model", "llama", "--modality", "text-to-text"]);
    net.json(&["admin", "add-echelon", "llama", "1", "--input-fee", "10", "--output-fee", "20"]);
    let nodes = ["account-1", "account-2", "account-3"].map(|who| {
        let node = net.created(&["--as", who, "node", "register"], "node");
        net.json(&["--as", who, "node", "join-model", &node, "--model", "llama", "--echelon", "1"]);
        node
    });
    net.json(&["admin", "add-oracle", "llama", "1", &nodes[2]]);
    nodes
}

#[test]
fn a_full_lifecycle_through_the_cli_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "5"]);
    assert_eq!(net.banner["newGenesis"], true);
    let outputs = dir.path().join("served.json");
    std::fs::write(&outputs, REQUESTS).expect("write outputs");
    let outputs = outputs.to_str().expect("utf-8 path");

    let nodes = setup_nodes(&net);
    let ops = [(nodes[0].as_str(), "account-1"), (nodes[1].as_str(), "account-2")];
    sampling_consensus_settles_with_an_attester(&net, &ops, outputs);
    a_contest_is_resolved_by_the_oracle(&net, &ops, &nodes[2]);
    confidential_compute_settles_with_the_enclave_key(&net, &nodes[0], outputs);
    failures_are_named(&net, &nodes[0]);
    assert_eq!(net.json(&["audit"])["holds"], true);

    let claims = net.json(&["events", "--type", "StackSettlementTicketClaimedEvent"]);
    assert_eq!(claims["data"].as_array().map(Vec::len), Some(3));
    let balances: Vec<u64> = (0..5).map(|i| net.balance(&format!("account-{i}"))).collect();
    let chain_id = net.banner["chainId"].clone();
    net.stop();

    let again = Network::start(dir.path(), &[]);
    assert_eq!(again.banner["newGenesis"], false);
    assert_eq!(again.banner["chainId"], chain_id);
    let after: Vec<u64> = (0..5).map(|i| again.balance(&format!("account-{i}"))).collect();
    assert_eq!(after, balances);
    let claims_after = again.json(&["events", "--type", "StackSettlementTicketClaimedEvent"]);
    assert_eq!(claims_after["data"], claims["data"]);
    assert_eq!(again.json(&["audit"])["holds"], true);
    again.stop();
}

/// Every settlement is cross-validated; both parties commit from the same outputs file.
fn sampling_consensus_settles_with_an_attester(net: &Network, ops: &[(&str, &str)], outputs: &str) {
    net.json(&["admin", "set", "cross_validation_probability_permille", "1000"]);
    let task = net.created(
        &["task", "create", "--role", "chat-completions", "--model", "llama", "--security", "sampling"],
        "task",
    );
    for (node, who) in ops {
        net.json(&[
            "--as",
            who,
            "node",
            "subscribe",
            node,
            "--task",
            &task,
            "--price",
            "100",
            "--max-units",
            "1000",
        ]);
    }
    let bought = net.json(&["stack", "buy", "--task", &task, "--units", "500", "--max-price", "1000"]);
    let stack = bought["created"]["stack"].as_str().expect("stack").to_string();
    let selected = bought["created"]["selectedNode"].as_str().expect("node").to_string();
    let other = ops.iter().map(|(n, _)| *n).find(|n| *n != selected).expect("two nodes");

    let settled = net.json(&[
        "--as",
        operator_of(&selected, ops),
        "node",
        "settle",
        &selected,
        &stack,
        "--units",
        "300",
        "--outputs",
        outputs,
    ]);
    assert_eq!(event_names(&settled), ["StackTrySettleEvent"]);
    let ticket = net.json(&["stack", "ticket", &stack]);
    assert_eq!(strs(&ticket["requestedAttestationNodes"]), [other]);
    assert_eq!(ticket["status"], "Pending");

    let attested =
        net.json(&["--as", operator_of(other, ops), "node", "attest", other, &stack, "--outputs", outputs]);
    assert_eq!(event_names(&attested), ["NewStackSettlementAttestationEvent", "StackSettlementTicketEvent"]);
    assert_eq!(net.json(&["stack", "ticket", &stack])["status"], "Confirmed");

    let before = net.balance("account-0");
    let claimed = net.json(&["--as", operator_of(&selected, ops), "node", "claim", &selected, &stack]);
    // escrow 50,000 + 10,000 + 600; paid 30,000 + 6,000 + 360 for 300 units (SPEC §7).
    assert_eq!(claimed["created"]["userRefund"], "24240");
    assert_eq!(net.balance("account-0"), before + 24_240);
    assert_eq!(net.json(&["stack", "show", &stack])["closed"], "Claimed");
}

/// The owner contests the claimed units; the oracle settles the stack at the owner's count.
fn a_contest_is_resolved_by_the_oracle(net: &Network, ops: &[(&str, &str)], oracle: &str) {
    let task = net.created(&["task", "create", "--role", "embeddings", "--model", "llama"], "task");
    for (node, who) in ops {
        net.json(&[
            "--as",
            who,
            "node",
            "subscribe",
            node,
            "--task",
            &task,
            "--price",
            "100",
            "--max-units",
            "1000",
        ]);
    }
    let bought = net.json(&["stack", "buy", "--task", &task, "--units", "100", "--max-price", "1000"]);
    let stack = bought["created"]["stack"].as_str().expect("stack").to_string();
    let selected = bought["created"]["selectedNode"].as_str().expect("node").to_string();
    let proof = "11".repeat(32);
    let leaf = format!("0x{}", "22".repeat(32));
    net.json(&[
        "--as",
        operator_of(&selected, ops),
        "node",
        "settle",
        &selected,
        &stack,
        "--units",
        "80",
        "--proof",
        &proof,
        "--leaf",
        &leaf,
    ]);
    let contested = net.json(&["stack", "contest", &stack, "--units", "50"]);
    assert_eq!(event_names(&contested), ["StackUnitsContestedEvent"]);
    assert_eq!(net.json(&["stack", "ticket", &stack])["status"], "InDispute");
    let resolved = net.json(&[
        "--as",
        "account-3",
        "node",
        "resolve",
        oracle,
        &stack,
        "--units",
        "50",
        "--proof",
        &proof,
    ]);
    assert!(event_names(&resolved).contains(&"StackDisputeResolvedEvent".to_string()));
    net.json(&["epoch", "advance"]);
    let claimed = net.json(&["--as", operator_of(&selected, ops), "node", "claim", &selected, &stack]);
    assert_eq!(claimed["created"]["userRefund"], "5000");
}

/// A development root vouches for node 1's enclave key; settling signs with it automatically.
fn confidential_compute_settles_with_the_enclave_key(net: &Network, node: &str, outputs: &str) {
    net.json(&["admin", "add-root", "--device", "nvidia-gpu", "--dev"]);
    net.json(&["--as", "account-1", "node", "commit-key", node, "--device", "nvidia-gpu", "--dev-root"]);
    let keys = net.json(&["keys", "list"]);
    let aliases: Vec<&str> =
        keys["keys"].as_array().expect("keys").iter().filter_map(|k| k["alias"].as_str()).collect();
    assert!(aliases.contains(&"dev-root-300") && aliases.contains(&format!("enclave-node-{node}").as_str()));
    assert!(net.json(&["node", "show", node])["teeKey"].is_object());

    let task = net.created(&["task", "create", "--role", "vision", "--security", "tee"], "task");
    net.json(&[
        "--as",
        "account-1",
        "node",
        "subscribe",
        node,
        "--task",
        &task,
        "--price",
        "7",
        "--max-units",
        "100",
    ]);
    let stack = net.created(&["stack", "buy", "--task", &task, "--units", "10", "--max-price", "7"], "stack");
    let settled = net.json(&[
        "--as",
        "account-1",
        "node",
        "settle",
        node,
        &stack,
        "--units",
        "10",
        "--outputs",
        outputs,
    ]);
    assert_eq!(event_names(&settled), ["StackTrySettleEvent", "StackSettlementTicketEvent"]);
    let claimed = net.json(&["--as", "account-1", "node", "claim", node, &stack]);
    assert_eq!(claimed["created"]["userRefund"], "0");
}

fn failures_are_named(net: &Network, node: &str) {
    let e = net.fails(&["task", "show", "99"]);
    assert_eq!((e["name"].as_str(), e["code"].as_u64()), (Some("ETaskNotFound"), Some(312_012_017)));
    assert_eq!(e["message"], "no task has this id");

    let human = net.run(&["task", "show", "99"]);
    assert!(!human.status.success());
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(stderr.contains("ETaskNotFound (312012017): no task has this id"), "{stderr}");

    // Executed and refused by the contract: account-4 does not own the node's badge.
    let e = net.fails(&["--as", "account-4", "node", "withdraw-fees", node]);
    assert_eq!((e["name"].as_str(), e["code"].as_u64()), (Some("ENotAuthorized"), Some(312_012_002)));
    let e = net.fails(&["--as", "account-4", "admin", "rotate-keys"]);
    assert_eq!(e["name"], "ENoManagerBadge");
    let e = net.fails(&["--as", "nobody", "balance"]);
    assert_eq!(e["name"], "EUnknownKey");
    let e = net.fails(&["node", "settle", node, "1", "--units", "1"]);
    assert_eq!(e["name"], "EStackNotFound");
}
