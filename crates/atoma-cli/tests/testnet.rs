//! A validator set as real processes on loopback: `atoma testnet --create-only`, then one
//! `atoma validator` per directory. Transactions sent to any validator are executed by all; with
//! one validator SIGKILLed the others keep finalizing; with two the chain stops without forking;
//! restarted, they catch up and every validator holds the same blocks and an audit that holds.
//! The walkthrough script runs unchanged against a testnet.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use atoma_client::Client;
use atoma_contract::{Address, Call};
use atoma_types::{Digest, Keypair};
use common::atoma;
use serde_json::Value;

/// A testnet's validator processes, each started from its directory.
struct Testnet {
    home: PathBuf,
    dirs: Vec<PathBuf>,
    urls: Vec<String>,
    children: Vec<Option<Child>>,
}

/// `n` consecutive free loopback ports, found by binding them; never the same block twice in
/// one test process (tests run side by side).
fn free_ports(n: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + u16::try_from(std::process::id() % 20_000).unwrap_or(0),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let base = NEXT.fetch_add(n, Ordering::SeqCst);
        assert!(base < 60_000, "no free ports");
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

impl Testnet {
    fn create(home: &Path, validators: u16) -> Testnet {
        // Two blocks of ports: the first for RPC, the second for p2p.
        let rpc = free_ports(validators * 2);
        let p2p = rpc + validators;
        let root = home.join("testnet");
        let out = atoma()
            .args(["--json", "testnet", "--create-only", "--accounts", "4"])
            .args(["--validators", &validators.to_string(), "--rpc-port", &rpc.to_string()])
            .args(["--p2p-port", &p2p.to_string(), "--dir"])
            .arg(&root)
            .env("ATOMA_HOME", home)
            .output()
            .expect("atoma runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dirs: Vec<PathBuf> = (0..validators).map(|i| root.join(format!("validator-{i}"))).collect();
        let urls = (0..validators).map(|i| format!("http://127.0.0.1:{}", rpc + i)).collect();
        let children = dirs.iter().map(|_| None).collect();
        let mut net = Testnet { home: home.to_path_buf(), dirs, urls, children };
        for i in 0..net.dirs.len() {
            net.start(i);
        }
        net
    }

    /// Starts validator `i` and waits for its ready line.
    fn start(&mut self, i: usize) {
        let log = std::fs::File::create(self.dirs[i].join("test-validator.log")).expect("a log");
        let mut child = atoma()
            .args(["--json", "validator", "--dir"])
            .arg(&self.dirs[i])
            .env("ATOMA_HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("atoma validator runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).expect("a ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("validator {i} did not start: {e}: {line}"));
        assert_eq!(ready["validator"], i, "{ready}");
        self.children[i] = Some(child);
    }

    /// SIGKILL: no chance to flush anything.
    fn kill(&mut self, i: usize) {
        let mut child = self.children[i].take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    fn client(&self, i: usize) -> Client {
        Client::new(&self.urls[i]).expect("a client")
    }

    fn cli(&self, i: usize, args: &[&str]) -> Value {
        let out = atoma()
            .args(["--json", "--rpc", &self.urls[i]])
            .args(args)
            .env("ATOMA_HOME", &self.home)
            .output()
            .expect("atoma runs");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        serde_json::from_slice(&out.stdout).expect("one JSON document")
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, dir) in self.dirs.iter().enumerate() {
                let log = std::fs::read_to_string(dir.join("test-validator.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!("--- validator {i}'s log, last lines first:\n{}", tail.join("\n"));
            }
        }
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime")
}

/// Sends `count` transfers from the test accounts through the validators `via`, round robin,
/// and returns their digests (each acknowledged: executed and durable on the validator it went
/// through).
async fn transfers(net: &Testnet, via: &[usize], count: usize, nonces: &mut [u64]) -> Vec<Digest> {
    let mut digests = Vec::new();
    let chain = net.client(via[0]).get_chain_info().await.expect("chain info").chain_id.0;
    for k in 0..count {
        let account = k % nonces.len();
        let key = Keypair::test_account(account as u64);
        let client = net.client(via[k % via.len()]);
        let call = Call::TransferToma { recipient: Address([7; 32]), amount: 1 };
        let signed = key.sign_call(chain, nonces[account], call);
        let result = client.execute_transaction(&signed).await.expect("acknowledged");
        assert!(result.is_success(), "{result:?}");
        nonces[account] += 1;
        digests.push(result.digest);
    }
    digests
}

/// Waits until validator `i` hears from exactly the peers `alive` (by index), and returns what
/// `atoma status` says of the set there.
fn wait_for_peers(net: &Testnet, i: usize, alive: &[u64]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = net.cli(i, &["status"]);
        let set = &status["chain"]["consensus"];
        let peers: Vec<u64> = set["peers"]
            .as_array()
            .map(|peers| peers.iter().filter_map(|p| p["index"].as_u64()).collect())
            .unwrap_or_default();
        if peers == alive {
            return set.clone();
        }
        assert!(Instant::now() < deadline, "validator {i} hears {peers:?}, not {alive:?}: {set}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

async fn height(net: &Testnet, i: usize) -> u64 {
    net.client(i).get_chain_info().await.expect("chain info").height
}

async fn wait_for_height(net: &Testnet, validators: &[usize], target: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for &i in validators {
        while height(net, i).await < target {
            assert!(Instant::now() < deadline, "validator {i} did not reach height {target}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[test]
fn a_validator_set_survives_kills_catches_up_and_agrees() {
    let home = tempfile::tempdir().expect("a temp dir");
    let mut net = Testnet::create(home.path(), 4);
    let runtime = runtime();
    let mut nonces = vec![0u64; 4];
    runtime.block_on(async {
        transfers(&net, &[0, 1, 2, 3], 8, &mut nonces).await;
    });
    // `atoma status` shows the set as the validator asked sees it.
    let set = wait_for_peers(&net, 0, &[1, 2, 3]);
    assert_eq!((set["engine"].as_str(), set["validators"].as_u64()), (Some("simplex"), Some(4)));
    assert_eq!((set["maxFaulty"].as_u64(), set["index"].as_u64()), (Some(1), Some(0)));
    assert!(set["leader"].as_u64().is_some_and(|l| l < 4), "{set}");
    assert!(set["view"].as_str().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v > 0), "{set}");
    // Each validator hears the others on its own schedule (a heartbeat a second): wait until
    // validator 2 hears all three before reading its text.
    wait_for_peers(&net, 2, &[0, 1, 3]);
    let text = atoma().args(["--rpc", &net.urls[2], "status"]).env("ATOMA_HOME", &net.home).output();
    let text = String::from_utf8_lossy(&text.expect("atoma runs").stdout).into_owned();
    assert!(text.contains("4 (simplex, tolerates 1 faulty); this is validator 2"), "{text}");
    assert!(text.contains("peers alive:") && text.contains("3 of 3"), "{text}");
    // One of four is killed: the other three are a quorum and keep finalizing.
    net.kill(3);
    wait_for_peers(&net, 0, &[1, 2]);
    let acknowledged = runtime.block_on(transfers(&net, &[0, 1, 2], 9, &mut nonces));
    runtime.block_on(async {
        let top = height(&net, 0).await;
        wait_for_height(&net, &[0, 1, 2], top).await;
        for digest in &acknowledged {
            for i in 0..3 {
                let found = net.client(i).get_transaction(digest).await.expect("on every live validator");
                assert!(found.is_success());
            }
        }
    });
    // A second one is killed: two of four cannot finalize, and nothing forks.
    net.kill(2);
    let stalled = runtime.block_on(async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = (height(&net, 0).await, height(&net, 1).await);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = (height(&net, 0).await, height(&net, 1).await);
        assert_eq!(before, after, "no quorum, no finalization");
        after.0.min(after.1)
    });
    // Both come back, catch up, and all four hold the same blocks.
    net.start(2);
    net.start(3);
    runtime.block_on(async {
        transfers(&net, &[0, 1, 2, 3], 4, &mut nonces).await;
        let top = height(&net, 0).await;
        wait_for_height(&net, &[0, 1, 2, 3], top).await;
        for h in (1..=top).step_by(usize::try_from(top / 40 + 1).expect("small")) {
            let mut digests = Vec::new();
            for i in 0..4 {
                digests.push(net.client(i).get_block(h).await.expect("a block").digest);
            }
            assert!(digests.windows(2).all(|w| w[0] == w[1]), "block {h} differs: {digests:?}");
        }
        assert!(top > stalled);
        // With no transaction in flight, all four settle on one tip and one state.
        let mut states = Vec::new();
        for i in 0..4 {
            states.push(net.client(i).get_state_digest().await.expect("a state digest"));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while states.windows(2).any(|w| w[0] != w[1]) {
            assert!(Instant::now() < deadline, "the validators' states differ: {states:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            for (i, state) in states.iter_mut().enumerate() {
                *state = net.client(i).get_state_digest().await.expect("a state digest");
            }
        }
    });
    for i in 0..4 {
        assert_eq!(net.cli(i, &["audit"])["holds"], true, "the audit holds on validator {i}");
    }
}

#[test]
fn the_walkthrough_scripts_run_on_a_testnet() {
    if !common::walkthrough_can_run() {
        return;
    }
    let home = tempfile::tempdir().expect("a temp dir");
    let net = Testnet::create(home.path(), 4);
    // The step-by-step walkthrough, and the agents' (three agents following validator 1).
    for name in ["walkthrough.sh", "agents.sh"] {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
        let out = Command::new("bash")
            .arg(&script)
            .env("ATOMA", env!("CARGO_BIN_EXE_atoma"))
            .env("ATOMA_RPC", &net.urls[1])
            .env("ATOMA_HOME", &net.home)
            .env_remove("ATOMA_AS")
            .env_remove("ATOMA_PYTHON")
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("StackSettlementTicketClaimedEvent"), "{name}: {stdout}");
    }
    assert_eq!(net.cli(2, &["audit"])["holds"], true);
}
