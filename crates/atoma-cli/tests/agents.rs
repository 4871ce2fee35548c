//! Node agents as real processes: `examples/agents.sh` (backends, agents, `atoma chat`, the
//! official `openai` Python package, settlement, attestation and claim with no command typed),
//! and an agent killed with SIGKILL mid-stack that settles exactly what it served once started
//! again.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Background, Network};
use serde_json::Value;

/// The Python with the `openai` package that `.ci/run` installs (`ATOMA_PYTHON`), when it is
/// usable. Where CI requires it (`ATOMA_REQUIRE_OPENAI`) a missing one fails the test; elsewhere
/// the test says loudly that it skipped that part and how to install it.
fn openai_python() -> Option<String> {
    let python = std::env::var("ATOMA_PYTHON").ok();
    let usable = python.as_ref().is_some_and(|p| {
        Command::new(p).args(["-c", "import openai"]).output().is_ok_and(|o| o.status.success())
    });
    if usable {
        return python;
    }
    assert!(
        std::env::var_os("ATOMA_REQUIRE_OPENAI").is_none(),
        "ATOMA_PYTHON must name a python with the openai package (.ci/run makes one)"
    );
    eprintln!(
        "skipped the openai part: set ATOMA_PYTHON to a python with the openai package \
         (python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt)"
    );
    None
}

#[test]
fn the_agents_walkthrough_closes_the_loop_with_no_command_typed() {
    if !common::walkthrough_can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agents.sh");
    let python = openai_python();
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .env("ATOMA", env!("CARGO_BIN_EXE_atoma"))
        .env("ATOMA_RPC", &net.url)
        .env("ATOMA_HOME", &net.home)
        .env_remove("ATOMA_AS")
        .env_remove("ATOMA_PYTHON")
        .stdin(Stdio::null());
    if let Some(python) = &python {
        command.env("ATOMA_PYTHON", python);
    }
    let out = command.output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "StackTrySettleEvent",
        "NewStackSettlementAttestationEvent",
        "StackSettlementTicketClaimedEvent",
        "attestations agreed      1",
        "holds: every base unit is accounted for",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    if python.is_some() {
        for expected in [
            "chat: ",
            "stream: ",
            "completion: ",
            "embedding: 8 dimensions",
            "refused: 401 invalid_stack_token",
        ] {
            assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
        }
    }
    // The script put the network's parameters back.
    let config = &net.json(&["status"])["db"]["config"];
    assert_eq!(config["cross_validation_probability_permille"], "10", "{config}");
    net.stop();
}

/// A background `atoma --json --rpc <the network> ARGS…` with the network's home.
fn background(net: &Network, args: &[&str]) -> Background {
    let mut all = vec!["--rpc", net.url.as_str()];
    all.extend_from_slice(args);
    Background::start(&all, Some(&net.home))
}

fn agent_config(net: &Network, dir: &Path, name: &str, node: &str, backend: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    let state = dir.join(name);
    let text = format!(
        "rpc = \"{}\"\nlisten = \"127.0.0.1:0\"\nstate_dir = \"{}\"\nidle_settle_secs = 3600\n\n\
         [[nodes]]\nkey = \"{name}\"\nnode = {node}\n\n[models.\"m\"]\nbackend = \"{backend}\"\n",
        net.url,
        state.display()
    );
    std::fs::write(&path, text).expect("writes the config");
    path.display().to_string()
}

/// `atoma --json` with the words of `line` (none of which holds a space).
fn run(net: &Network, line: &str) -> Value {
    net.json(&line.split_whitespace().collect::<Vec<_>>())
}

/// The small id a command created under `key`.
fn create(net: &Network, line: &str, key: &str) -> String {
    net.created(&line.split_whitespace().collect::<Vec<_>>(), key)
}

/// Waits until the stack has closed; returns the events that name it.
fn closed(net: &Network, stack: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while net.json(&["stack", "show", stack]).get("closed").is_none() {
        assert!(Instant::now() < deadline, "stack {stack} did not close");
        std::thread::sleep(Duration::from_millis(100));
    }
    events_of(net, stack)
}

fn events_of(net: &Network, stack: &str) -> Vec<Value> {
    run(net, &format!("events --stack {stack}"))["data"].as_array().cloned().unwrap_or_default()
}

fn named(events: &[Value], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.ends_with(&format!("::{name}"))))
        .cloned()
        .collect()
}

#[test]
fn an_agent_killed_mid_stack_settles_what_it_served_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = Network::start(&dir.path().join("home"), &[]);
    for key in ["kill-node-a", "kill-node-b", "kill-user"] {
        run(&net, &format!("keys new {key}"));
        run(&net, &format!("faucet --to {key} --amount 3000"));
    }
    run(&net, "admin add-model m --modality text-to-text");
    run(&net, "admin add-echelon m 1 --input-fee 1000 --output-fee 2000 --performance 100 --timeout-ms 3000");
    run(&net, "admin set cross_validation_probability_permille 1000");
    run(&net, "admin set cross_validation_extra_nodes_count 1");
    run(&net, "admin add-root --device intel-cpu --dev");
    let a = create(&net, "--as kill-node-a node register", "node");
    let b = create(&net, "--as kill-node-b node register", "node");
    run(&net, &format!("--as kill-node-a node join-model {a} --model m --echelon 1"));
    run(&net, &format!("--as kill-node-b node join-model {b} --model m --echelon 1"));
    // Node a's enclave key (enclave-node-a in the keystore) signs its confidential settlements.
    run(&net, &format!("--as kill-node-a node commit-key {a} --device intel-cpu --dev-root"));
    // One task per security level. Node a is the only one at the user's price: it is selected;
    // node b attests the sampling-consensus stack.
    let mut tasks = Vec::new();
    for security in ["none", "tee", "sampling"] {
        let task = create(
            &net,
            &format!("--as kill-user task create --role chat-completions --model m --security {security}"),
            "task",
        );
        run(
            &net,
            &format!("--as kill-node-a node subscribe {a} --task {task} --price 10000000 --max-units 100000"),
        );
        if security == "sampling" {
            run(
                &net,
                &format!(
                    "--as kill-node-b node subscribe {b} --task {task} --price 15000000 --max-units 100000"
                ),
            );
        }
        tasks.push(task);
    }

    let backend = background(&net, &["backend", "--listen", "127.0.0.1:0"]);
    let backend_url = backend.banner["baseUrl"].as_str().expect("a URL").to_string();
    let selected_config = agent_config(&net, dir.path(), "kill-node-a", &a, &backend_url);
    let attester_config = agent_config(&net, dir.path(), "kill-node-b", &b, &backend_url);
    let _attester =
        background(&net, &["agent", "run", "--config", &attester_config, "--idle-settle-secs", "1"]);
    let selected = background(&net, &["agent", "run", "--config", &selected_config]);
    let url = selected.banner["url"].as_str().expect("a URL").to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{}", selected.banner);

    let mut served = Vec::new();
    for task in &tasks {
        let stack = create(
            &net,
            &format!("--as kill-user stack buy --task {task} --units 400 --max-price 10000000"),
            "stack",
        );
        let mut units = 0;
        for (prompt, extra) in [("one two three", None), ("four five", Some("--stream"))] {
            let mut args = vec!["--as", "kill-user", "chat", "--stack", &stack, prompt, "--max-tokens", "5"];
            args.extend(extra);
            let answer = net.json(&args);
            units += answer["usage"]["total_tokens"].as_u64().unwrap_or_else(|| panic!("usage: {answer}"));
        }
        served.push((stack, units));
    }
    // Not the owner: refused before anything is sent.
    let refused = net.fails(&["--as", "kill-node-b", "chat", "--stack", &served[0].0, "hello"]);
    assert_eq!(refused["name"], "EInvalidArgument", "{refused}");

    // The operator's view before the crash.
    let status = run(&net, &format!("agent status --url {url}"));
    let stacks = status["stacks"].as_array().expect("stacks");
    assert_eq!(stacks.len(), 3, "{status}");
    for ((_, units), view) in served.iter().zip(stacks) {
        assert_eq!(
            (&view["used"], view["phase"].as_str()),
            (&Value::from(*units), Some("serving")),
            "{status}"
        );
    }

    // SIGKILL: no shutdown, no flush. Every answered request must still be on record.
    drop(selected);
    let _restarted =
        background(&net, &["agent", "run", "--config", &selected_config, "--idle-settle-secs", "1"]);
    // A stack without security stays open to its owner's contest for a dispute window (an epoch,
    // and at least the echelon's 3-second settlement timeout): once it is settled, the local
    // network's epoch is moved on, and the agent claims it when the timeout has passed too.
    let plain = &served[0].0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while named(&events_of(&net, plain), "StackTrySettleEvent").is_empty() {
        assert!(Instant::now() < deadline, "stack {plain} was not settled");
        std::thread::sleep(Duration::from_millis(100));
    }
    run(&net, "epoch advance");
    for (stack, units) in &served {
        let events = closed(&net, stack);
        assert_eq!(named(&events, "StackTrySettleEvent").len(), 1, "settled once: {events:?}");
        let claimed = named(&events, "StackSettlementTicketClaimedEvent");
        assert_eq!(claimed.len(), 1, "{events:?}");
        assert_eq!(claimed[0]["parsedJson"]["num_claimed_compute_units"], units.to_string());
    }
    assert_eq!(net.json(&["audit"])["holds"], true);
    drop(backend);
    net.stop();
}
