//! The newcomer's walkthrough — `atoma demo` and `examples/walkthrough.sh` — against a freshly
//! started network, twice each; live events over WebSocket; and what a user sees with no node.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Network, atoma};
use serde_json::Value;

fn number(v: &Value) -> u64 {
    v.as_str().and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("not a u64 string: {v}"))
}

/// The refund, checked: the unused units at the sampled node's price (security level 0).
fn refund_of(demo: &Value) -> u64 {
    let price = number(&demo["events"][0]["parsedJson"]["price"]);
    let unused = number(&demo["units"]) - number(&demo["usedUnits"]);
    let refund = number(&demo["userRefund"]);
    assert_eq!(refund, unused * price, "{demo}");
    refund
}

#[test]
fn the_demo_ends_with_a_refund_and_events_and_runs_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "0"]);
    let first = net.json(&["demo"]);
    assert!(refund_of(&first) > 0, "{first}");
    let names: Vec<&str> = first["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str()?.rsplit("::").next())
        .collect();
    assert_eq!(names, ["StackCreatedEvent", "StackTrySettleEvent", "StackSettlementTicketClaimedEvent"]);
    let second = net.json(&["demo"]);
    assert_ne!(second["model"], first["model"]);
    assert!(refund_of(&second) > 0);

    let text = net.run(&["demo"]);
    assert!(text.status.success());
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("the user's refund was") && stdout.contains("StackSettlementTicketClaimedEvent"),
        "{stdout}"
    );
    assert_eq!(net.json(&["audit"])["holds"], true);
    net.stop();
}

#[test]
fn the_walkthrough_script_runs_twice() {
    if !common::walkthrough_can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/walkthrough.sh");
    for _ in 0..2 {
        let out = Command::new("bash")
            .arg(&script)
            .env("ATOMA", env!("CARGO_BIN_EXE_atoma"))
            .env("ATOMA_RPC", &net.url)
            .env("ATOMA_HOME", &net.home)
            .env_remove("ATOMA_AS")
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let refund = stdout.lines().find_map(|l| l.strip_prefix("user refund: ")).expect("a refund line");
        assert_ne!(refund, "0 base units", "{stdout}");
        assert!(stdout.contains("StackSettlementTicketClaimedEvent"), "{stdout}");
    }
    net.stop();
}

#[test]
fn follow_prints_events_as_they_happen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "2"]);
    let mut follower = atoma()
        .args(["--json", "--rpc", &net.url, "events", "--follow", "--type", "TomaTransferredEvent"])
        .env("ATOMA_HOME", &net.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the follower runs");
    // The follower says on stderr when its subscription is live.
    let mut stderr = BufReader::new(follower.stderr.take().expect("stderr"));
    let mut note = String::new();
    stderr.read_line(&mut note).expect("a note");
    assert!(note.contains("following events"), "{note}");
    net.json(&["transfer", "account-1", "2.5"]);
    let mut line = String::new();
    BufReader::new(follower.stdout.take().expect("stdout")).read_line(&mut line).expect("an event line");
    let event: Value = serde_json::from_str(&line).expect("one JSON document per line");
    assert_eq!(event["parsedJson"]["amount"], "2500000000");
    let _ = follower.kill();
    let _ = follower.wait();
    net.stop();
}

#[test]
fn without_a_node_the_cli_says_how_to_start_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = atoma()
        .args(["--json", "--rpc", "http://127.0.0.1:9", "status"])
        .env("ATOMA_HOME", dir.path())
        .output()
        .expect("atoma runs");
    assert!(!out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(doc["error"]["name"], "ENoNodeRunning");
    assert_eq!(doc["error"]["code"], 312_015_000);
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("atoma start")));
}

#[test]
fn a_second_network_on_a_used_port_or_home_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "0"]);
    let addr = net.url.trim_start_matches("http://").to_string();
    let other = tempfile::tempdir().expect("temp dir");
    let out = atoma()
        .args(["--json", "start", "--rpc-addr", &addr])
        .env("ATOMA_HOME", other.path())
        .stdin(Stdio::null())
        .output()
        .expect("atoma runs");
    assert!(!out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(doc["error"]["name"], "EAddressInUse");
    // The same home is locked by the running node (`chain.lock`): a second start is refused, and
    // `--fresh` deletes nothing of the running chain.
    let files = |name: &str| std::fs::read(net.home.join(name)).expect("a file of the home");
    let keys = files("keystore.json");
    for fresh in [&[][..], &["--fresh"][..]] {
        let out = atoma()
            .args(["--json", "start", "--rpc-addr", "127.0.0.1:0"])
            .args(fresh)
            .env("ATOMA_HOME", &net.home)
            .stdin(Stdio::null())
            .output()
            .expect("atoma runs");
        assert!(!out.status.success());
        let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
        assert_eq!(doc["error"]["name"], "EDataDirInUse", "{doc}");
        let message = doc["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("another `atoma` process"), "{doc}");
        assert!(message.contains(&net.home.display().to_string()) && message.contains("ATOMA_HOME"), "{doc}");
        assert!(net.home.join("chain.redb").exists(), "{fresh:?} deleted the running chain");
    }
    assert_eq!(files("keystore.json"), keys, "the keys are left alone");
    assert!(net.run(&["status"]).status.success(), "the running node still serves");
    net.stop();
}

#[test]
fn usage_errors_are_json_documents_too() {
    let out = atoma().args(["--json", "task", "create", "--role", "cooking"]).output().expect("atoma runs");
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(doc["error"]["name"], "EInvalidArgument");
    assert!(doc["error"]["message"].as_str().is_some_and(|m| m.contains("not a task role")), "{doc}");
    let help = atoma().args(["node", "settle", "--help"]).output().expect("atoma runs");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: atoma node settle"));
}

#[test]
fn block_time_epoch_length_and_fresh_are_honoured() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &["--accounts", "1", "--epoch-ms", "300", "--block-time-ms", "20"]);
    std::thread::sleep(std::time::Duration::from_millis(800));
    let chain = net.json(&["status"])["chain"].clone();
    let number = |key: &str| chain[key].as_str().and_then(|v| v.parse::<u64>().ok()).expect("a u64 string");
    assert_eq!(number("epochDurationMs"), 300);
    assert!(number("height") >= 5, "{chain}");
    assert!(number("epoch") >= 1, "{chain}");
    let chain_id = net.banner["chainId"].clone();
    net.stop();
    let fresh = Network::start(dir.path(), &["--fresh", "--accounts", "1"]);
    assert_eq!(fresh.banner["newGenesis"], true);
    assert_ne!(fresh.banner["chainId"], chain_id);
    assert_eq!(fresh.json(&["status"])["chain"]["epochDurationMs"], "60000");
    fresh.stop();
}

#[test]
fn bench_loads_the_network_and_reports_throughput_and_latency() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &[]);
    let report = net.json(&["bench", "--concurrency", "2", "--pipeline", "2", "--txs", "40"]);
    let answered = report["succeeded"].as_u64().unwrap_or(0) + report["failed"].as_u64().unwrap_or(0);
    assert_eq!(answered, 40, "{report}");
    assert_eq!(report["errors"].as_u64(), Some(0), "{report}");
    assert!(report["tps"].as_f64().is_some_and(|tps| tps > 0.0), "{report}");
    assert!(report["latencyMs"]["p99"].is_number(), "{report}");
    let human = net.run(&["bench", "--concurrency", "2", "--txs", "10", "--http"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(human.status.success(), "{text}");
    assert!(text.contains("tx/s"), "{text}");
    assert_eq!(net.json(&["audit"])["holds"], true);
    net.stop();
}
