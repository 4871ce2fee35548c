//! The whole protocol through the real `atoma` binary against a real `atoma start` (real RPC
//! server on a loopback port, real redb in a temp dir), asserting on `--json` output, then a
//! restart on the same home.

mod common;

use atoma_agent::token::StackToken;
use atoma_types::{Digest, Keypair};
use common::{Network, operator_of};
use serde_json::{Value, json};

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

    // The owner's API key for the stack: signed by the owner, for this stack and chain only.
    let issued = net.json(&["stack", "token", &stack, "--valid-hours", "2"]);
    let chain: Digest =
        net.json(&["status"])["chain"]["chainId"].as_str().expect("chain id").parse().expect("a digest");
    let now_ms = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_millis(),
    )
    .expect("ms");
    let token =
        StackToken::parse(issued["token"].as_str().expect("token"), &chain.0, now_ms).expect("a valid token");
    assert_eq!(token.stack.to_string(), stack);
    assert_eq!(token.owner, Keypair::test_account(0).address());
    assert!(token.not_after_ms > now_ms + 3_500_000 && token.not_after_ms <= now_ms + 7_300_000);
    assert_eq!(issued["selectedNode"].to_string(), selected);
    let refused = net.fails(&["--as", "account-1", "stack", "token", &stack]);
    assert_eq!(refused["name"], "EInvalidArgument", "{refused}");

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
    let shown = net.json(&["stack", "show", &stack]);
    assert_eq!(shown["closed"], "Claimed");
    // What the claim paid, kept after the stack closed.
    assert_eq!(
        (&shown["claimedUnits"], &shown["paidUnits"], &shown["refund"]),
        (&json!("300"), &json!("300"), &json!("24240"))
    );
    assert_eq!(
        (&shown["paidToNode"], &shown["paidToAttesters"], &shown["surcharge"]),
        (&json!("30000"), &json!("360"), &json!("6000"))
    );
    let human = net.run(&["stack", "show", &stack]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.lines().any(|l| l.starts_with("refund") && l.ends_with("0.00002424 TOMA")), "{text}");
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
    // The refused transaction is on chain, and the error says where.
    let digest = e["digest"].as_str().expect("the failed transaction's digest");
    let stored = net.json(&["tx", digest]);
    assert_eq!(
        (stored["status"].as_str(), stored["error"]["name"].as_str()),
        (Some("failure"), Some("ENotAuthorized"))
    );
    let human = net.run(&["--as", "account-4", "node", "withdraw-fees", node]);
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(stderr.contains("the failed transaction is stored: atoma tx "), "{stderr}");
    // A refusal before anything is sent names no transaction.
    assert!(net.fails(&["task", "show", "99"]).get("digest").is_none());
    let e = net.fails(&["--as", "account-4", "admin", "rotate-keys"]);
    assert_eq!(e["name"], "ENoManagerBadge");
    let e = net.fails(&["--as", "nobody", "balance"]);
    assert_eq!(e["name"], "EUnknownKey");
    let e = net.fails(&["node", "settle", node, "1", "--units", "1"]);
    assert_eq!(e["name"], "EStackNotFound");
}

#[test]
fn every_other_command_reaches_its_entry_function() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "5"]);
    let nodes = setup_nodes(&net);
    node_upkeep(&net, &nodes[0]);
    model_admin(&net);
    for (param, value) in [
        ("stack_expiration_epochs", "1"),
        ("dispute_resolution_deadline_epochs", "1"),
        ("cross_validation_probability_permille", "1000"),
    ] {
        let doc = net.json(&["admin", "set", param, value]);
        assert_eq!(event_names(&doc), ["ParameterUpdatedEvent"]);
    }
    let ops = [(nodes[0].as_str(), "account-1"), (nodes[1].as_str(), "account-2")];
    disputes_expire_and_stacks_are_reclaimed(&net, &ops);
    tasks_retire(&net);
    nodes_retire(&net, &nodes);
    treasury_badges_and_keys(&net);
    accounts_and_time(&net);
    assert_eq!(net.json(&["audit"])["holds"], true);
    net.stop();
}

fn node_upkeep(net: &Network, node: &str) {
    let one = |args: &[&str], event: &str| assert_eq!(event_names(&net.json(args)), [event], "{args:?}");
    one(&["--as", "account-1", "node", "add-collateral", node, "10"], "NodeCollateralAddedEvent");
    one(
        &["--as", "account-1", "node", "set-optimizations", node, "flash-attention,quantization"],
        "NodeOptimizationsUpdatedEvent",
    );
    assert_eq!(net.json(&["node", "show", node])["supportedOptimizations"], 5);
    assert_eq!(net.json(&["node", "show", node])["endpoint"], Value::Null);
    let url = "https://node-1.example:8443/v1";
    let doc = net.json(&["--as", "account-1", "node", "set-endpoint", node, url]);
    assert_eq!(event_names(&doc), ["NodeEndpointSetEvent"]);
    assert_eq!(doc["events"][0]["parsedJson"]["url"], url);
    assert_eq!(net.json(&["node", "show", node])["endpoint"], url);
    let human = net.run(&["node", "show", node]);
    let shown = String::from_utf8_lossy(&human.stdout);
    assert!(shown.lines().any(|l| l.starts_with("endpoint") && l.ends_with(url)), "{shown}");
    let e = net.fails(&["--as", "account-1", "node", "set-endpoint", node, "ftp://node-1.example"]);
    assert_eq!((e["name"].as_str(), e["code"].as_u64()), (Some("EInvalidEndpoint"), Some(312_012_133)));
    let e = net.fails(&["--as", "account-2", "node", "set-endpoint", node, url]);
    assert_eq!(e["name"], "ENotAuthorized");
    one(
        &["admin", "add-echelon", "llama", "2", "--input-fee", "1", "--output-fee", "1"],
        "EchelonAddedEvent",
    );
    one(
        &["admin", "update-echelon", "llama", "2", "--input-fee", "3", "--output-fee", "4"],
        "EchelonUpdatedEvent",
    );
    one(
        &["--as", "account-1", "node", "join-model", node, "--model", "llama", "--echelon", "2"],
        "NodeSubscribedToModelEvent",
    );
    one(
        &["--as", "account-1", "node", "leave-model", node, "--model", "llama", "--echelon", "2"],
        "NodeUnsubscribedFromModelEvent",
    );
    one(&["admin", "remove-echelon", "llama", "2"], "EchelonRemovedEvent");
    one(&["admin", "add-oracle", "llama", "1", node], "OracleAddedEvent");
    one(&["admin", "remove-oracle", "llama", "1", node], "OracleRemovedEvent");
    let e = net.fails(&["--as", "account-3", "node", "withdraw-fees", "3"]);
    assert_eq!(e["name"], "ENoFeesToWithdraw");
}

fn model_admin(net: &Network) {
    let one = |args: &[&str], event: &str| assert_eq!(event_names(&net.json(args)), [event], "{args:?}");
    one(&["admin", "add-model", "scratch", "--modality", "text-to-image"], "ModelAddedEvent");
    one(&["admin", "disable-model", "scratch"], "ModelStatusChangedEvent");
    assert_eq!(net.json(&["model", "show", "scratch"])["enabled"], false);
    one(&["admin", "enable-model", "scratch"], "ModelStatusChangedEvent");
    let listed = net.json(&["model", "list"]);
    assert_eq!(listed["count"], 2);
    one(&["admin", "remove-model", "scratch"], "ModelRemovedEvent");
    assert_eq!(net.json(&["model", "list"])["count"], 1);
    assert_eq!(net.fails(&["model", "show", "scratch"])["name"], "EModelNotFound");
    one(&["admin", "disable-registration"], "RegistrationStatusChangedEvent");
    assert_eq!(net.fails(&["--as", "account-4", "node", "register"])["name"], "ENodeRegDisabled");
    one(&["admin", "enable-registration"], "RegistrationStatusChangedEvent");
}

/// An attester disputes one stack and no oracle comes; another stack is never settled.
fn disputes_expire_and_stacks_are_reclaimed(net: &Network, ops: &[(&str, &str)]) {
    let task = net.created(&["task", "create", "--role", "0", "--model", "llama", "--security", "2"], "task");
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
            "50",
        ]);
        let doc = net.json(&[
            "--as",
            who,
            "node",
            "update-subscription",
            node,
            "--task",
            &task,
            "--price",
            "90",
            "--max-units",
            "50",
        ]);
        assert_eq!(event_names(&doc), ["NodeUpdateSubscriptionEvent"]);
    }
    let disputed = net.json(&["stack", "buy", "--task", &task, "--units", "10", "--max-price", "100"]);
    let (stack, selected) = (
        disputed["created"]["stack"].as_str().expect("stack"),
        disputed["created"]["selectedNode"].as_str().expect("node"),
    );
    let idle =
        net.created(&["stack", "buy", "--task", &task, "--units", "10", "--max-price", "100"], "stack");
    let proof = "ab".repeat(32);
    net.json(&[
        "--as",
        operator_of(selected, ops),
        "node",
        "settle",
        selected,
        stack,
        "--units",
        "5",
        "--proof",
        &proof,
        "--leaf",
        &proof,
    ]);
    let attester = ops.iter().map(|(n, _)| *n).find(|n| n != &selected).expect("two nodes");
    let other = "cd".repeat(32);
    let doc = net.json(&[
        "--as",
        operator_of(attester, ops),
        "node",
        "dispute",
        attester,
        stack,
        "--commitment",
        &other,
    ]);
    assert_eq!(event_names(&doc), ["StackAttestationDisputeEvent"]);
    assert_eq!(net.fails(&["stack", "expire-dispute", stack])["name"], "ENotEnoughEpochsPassed");
    net.json(&["epoch", "advance"]);
    let doc = net.json(&["--as", "account-4", "stack", "expire-dispute", stack]);
    assert_eq!(event_names(&doc), ["StackDisputeExpiredEvent"]);
    let doc = net.json(&["stack", "reclaim", &idle]);
    assert!(event_names(&doc).contains(&"StackExpiredEvent".to_string()), "{doc}");
    for (node, who) in ops {
        let doc = net.json(&["--as", who, "node", "unsubscribe", node, "--task", &task]);
        assert_eq!(event_names(&doc), ["NodeUnsubscribedFromTaskEvent"]);
    }
}

fn tasks_retire(net: &Network) {
    let mine = net.created(&["task", "create", "--role", "embeddings"], "task");
    let admins = net.created(&["task", "create", "--role", "training", "--min-reputation", "50"], "task");
    assert_eq!(event_names(&net.json(&["task", "deprecate", &mine])), ["TaskDeprecationEvent"]);
    assert_eq!(event_names(&net.json(&["admin", "deprecate-task", &admins])), ["TaskDeprecationEvent"]);
    let listed = net.json(&["task", "list", "--limit", "2"]);
    assert_eq!(listed["hasNextPage"], true);
    net.json(&["epoch", "advance"]);
    assert_eq!(event_names(&net.json(&["task", "remove", &mine])), ["TaskRemoveEvent"]);
    assert_eq!(event_names(&net.json(&["admin", "remove-task", &admins])), ["TaskRemoveEvent"]);
    assert_eq!(net.fails(&["task", "show", &mine])["name"], "ETaskNotFound");
}

fn nodes_retire(net: &Network, nodes: &[String; 3]) {
    assert_eq!(
        event_names(&net.json(&["--as", "account-2", "node", "disable", &nodes[1]])),
        ["NodeDisabledEvent"]
    );
    assert_eq!(event_names(&net.json(&["admin", "disable-node", &nodes[2]])), ["NodeDisabledEvent"]);
    assert_eq!(
        net.fails(&["--as", "account-2", "node", "destroy", &nodes[1]])["name"],
        "ENodeMustWaitBeforeDestroy"
    );
    net.json(&["epoch", "advance"]);
    net.json(&["epoch", "advance"]);
    let before = net.balance("account-2");
    let doc = net.json(&["--as", "account-2", "node", "destroy", &nodes[1]]);
    assert_eq!(event_names(&doc), ["NodeDestroyedEvent"]);
    assert!(net.balance("account-2") > before);
}

fn treasury_badges_and_keys(net: &Network) {
    let communal = net.json(&["status"])["db"]["communalTreasury"].as_str().expect("treasury").to_string();
    assert_ne!(communal, "0", "a reclaimed stack slashed its node");
    let doc =
        net.json(&["admin", "withdraw-communal-treasury", &format!("{communal}base"), "--to", "account-4"]);
    assert_eq!(event_names(&doc), ["TreasuryWithdrawnEvent"]);
    assert_eq!(net.fails(&["admin", "withdraw-fees-treasury", "1"])["name"], "EInsufficientTreasury");
    assert_eq!(event_names(&net.json(&["admin", "rotate-keys"])), ["NewKeyRotationEvent"]);
    let root = net.json(&["keys", "show", "account-0"])["publicKey"].as_str().expect("a key").to_string();
    assert_eq!(
        event_names(&net.json(&["admin", "add-root", "--device", "amd-cpu", "--public-key", &root])),
        ["AttestationRootAddedEvent"]
    );
    assert_eq!(
        event_names(&net.json(&["admin", "remove-root", "--device", "100"])),
        ["AttestationRootRemovedEvent"]
    );

    let badge = net.created(&["admin", "new-manager-badge", "--to", "account-4"], "badge");
    let listed = net.json(&["badge", "list", "account-4"]);
    assert_eq!(listed["badges"][0]["kind"], "AtomaManagerBadge");
    assert_eq!(
        event_names(&net.json(&["--as", "account-4", "admin", "rotate-keys"])),
        ["NewKeyRotationEvent"]
    );
    let doc = net.json(&["--as", "account-4", "badge", "transfer", &badge, "account-0"]);
    assert_eq!(event_names(&doc), ["BadgeTransferredEvent"]);
    assert_eq!(net.fails(&["--as", "account-4", "admin", "rotate-keys"])["name"], "ENoManagerBadge");

    let made = net.json(&["keys", "new", "mine"]);
    assert_eq!(net.fails(&["keys", "new", "mine"])["name"], "EKeystore");
    let secret = "07".repeat(32);
    let imported = net.json(&["keys", "import", "imported", &secret]);
    let shown = net.json(&["keys", "show", "imported", "--private-key"]);
    assert_eq!(shown["privateKey"], secret.as_str());
    assert_eq!(shown["address"], imported["address"]);
    assert_eq!(net.json(&["keys", "show", made["address"].as_str().expect("address")])["alias"], "mine");
}

fn accounts_and_time(net: &Network) {
    let before = net.balance("imported");
    let sent = net.json(&["transfer", "imported", "1,000.5"]);
    assert_eq!(net.balance("imported"), before + 1_000_500_000_000);
    let digest = sent["digest"].as_str().expect("digest");
    let tx = net.json(&["tx", digest]);
    assert_eq!(
        (tx["status"].as_str(), tx["transaction"]["call"].as_str()),
        (Some("success"), Some("TransferToma"))
    );
    let faucet = net.json(&["faucet", "--to", "imported"]);
    assert_eq!(faucet["events"][0]["parsedJson"]["amount"], "1000000000000");
    let epoch = net.json(&["status"])["chain"]["epoch"].as_str().expect("epoch").parse::<u64>().expect("u64");
    let block = net.json(&["clock", "advance", "120000"]);
    assert!(block["epoch"].as_str().expect("epoch").parse::<u64>().expect("u64") > epoch);
    let page = net.json(&["events", "--sender", "imported", "--limit", "5"]);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(0));
    let page = net.json(&["events", "--tx", digest]);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let first = net.json(&["events", "--limit", "1"]);
    let cursor = format!(
        "{}:{}",
        first["nextCursor"]["txDigest"].as_str().expect("digest"),
        first["nextCursor"]["eventSeq"].as_str().expect("seq")
    );
    let next = net.json(&["events", "--limit", "1", "--cursor", &cursor]);
    assert_ne!(next["data"][0]["id"], first["data"][0]["id"]);
}
