//! A real `atoma start` process on a free loopback port with its own `$ATOMA_HOME`, and the
//! `atoma` binary run against it.

#![allow(dead_code)] // each test file uses part of this

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

/// The binary under test.
pub fn atoma() -> Command {
    Command::new(env!("CARGO_BIN_EXE_atoma"))
}

/// A running `atoma start`.
pub struct Network {
    child: Option<Child>,
    /// Kept open so the node never writes into a closed pipe.
    _stdout: Option<BufReader<ChildStdout>>,
    pub home: PathBuf,
    pub url: String,
    pub banner: Value,
}

impl Network {
    /// Starts a local network in `home` (a new genesis when there is none yet).
    pub fn start(home: &Path, extra: &[&str]) -> Network {
        Network::try_start(home, extra)
            .unwrap_or_else(|e| panic!("atoma start exited before its banner: {e}"))
    }

    /// Runs `atoma --rpc URL ARGS…` with this network's home.
    pub fn run(&self, args: &[&str]) -> Output {
        atoma()
            .arg("--rpc")
            .arg(&self.url)
            .args(args)
            .env("ATOMA_HOME", &self.home)
            .env_remove("ATOMA_AS")
            .stdin(Stdio::null())
            .output()
            .expect("atoma runs")
    }

    /// `atoma --json ARGS…`, which must succeed; its one JSON document.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "atoma {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "atoma {args:?} printed no single JSON document ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `atoma --json ARGS…`, which must fail; its `error` object.
    pub fn fails(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            !out.status.success(),
            "atoma {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error document");
        doc["error"].clone()
    }

    /// A value the transaction reported under `created`.
    pub fn created(&self, args: &[&str], key: &str) -> String {
        let doc = self.json(args);
        doc["created"][key].as_str().unwrap_or_else(|| panic!("{args:?} created no {key}: {doc}")).to_string()
    }

    /// An account's balance in base units.
    pub fn balance(&self, who: &str) -> u64 {
        self.json(&["balance", who])["balance"].as_str().and_then(|b| b.parse().ok()).expect("a balance")
    }

    /// Stops the process with SIGTERM, as Ctrl-C would, and checks it exits cleanly.
    pub fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let status =
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill runs");
        assert!(status.success());
        let exit = child.wait().expect("the node exits");
        assert!(exit.success(), "atoma start exited with {exit}");
    }
}

impl Network {
    /// Like [`Network::start`], but a node that exits instead of printing its banner (`--json`
    /// prints a `{"error": …}` document then) is an `Err` with what it printed, not a panic.
    pub fn try_start(home: &Path, extra: &[&str]) -> Result<Network, String> {
        let mut child = atoma()
            .args(["--json", "start", "--rpc-addr", "127.0.0.1:0"])
            .args(extra)
            .env("ATOMA_HOME", home)
            .env_remove("ATOMA_RPC")
            .env_remove("ATOMA_AS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("atoma start runs");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the banner");
        let banner: Option<Value> = serde_json::from_str(&line).ok();
        match banner.as_ref().and_then(|b| b["rpcUrl"].as_str()) {
            Some(url) => {
                let url = url.to_string();
                let banner = banner.expect("parsed");
                Ok(Network {
                    child: Some(child),
                    _stdout: Some(stdout),
                    home: home.to_path_buf(),
                    url,
                    banner,
                })
            }
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
                Err(format!("{}{err}", line.trim_end()))
            }
        }
    }

    /// Kills the process with SIGKILL (`Child::kill` on Unix) — a crash: no shutdown, no flush —
    /// and waits until it is gone, so that nothing holds its files open any more.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL the node");
        let exit = child.wait().expect("the killed node is reaped");
        assert!(!exit.success(), "atoma start exited cleanly instead of being killed: {exit}");
    }
}

/// Starts `atoma start` in `home` and kills it with SIGKILL after `after`, whether it is still
/// recovering, binding its port or already serving; waits until it is gone. Returns whether it
/// was still running when the signal came (not, when it had failed on its own).
pub fn start_and_kill_after(home: &Path, extra: &[&str], after: std::time::Duration) -> bool {
    let mut child = atoma()
        .args(["--json", "start", "--rpc-addr", "127.0.0.1:0"])
        .args(extra)
        .env("ATOMA_HOME", home)
        .env_remove("ATOMA_RPC")
        .env_remove("ATOMA_AS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("atoma start runs");
    std::thread::sleep(after);
    let running = child.try_wait().expect("the node's status").is_none();
    if running {
        child.kill().expect("SIGKILL the node");
    }
    child.wait().expect("the node is reaped");
    running
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The stack-selected node's operator among `(node, alias)` pairs.
pub fn operator_of<'a>(node: &str, operators: &[(&str, &'a str)]) -> &'a str {
    operators.iter().find(|(n, _)| *n == node).map(|(_, a)| *a).expect("the selected node is one of ours")
}

/// Whether `examples/walkthrough.sh` can run here (it needs bash and jq). Where CI requires it
/// (`ATOMA_REQUIRE_WALKTHROUGH`, set by .ci/run, which installs jq) a missing tool fails the
/// test; elsewhere the test says loudly that it skipped and what to install.
pub fn walkthrough_can_run() -> bool {
    let have = |tool: &str| Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if have("bash") && have("jq") {
        return true;
    }
    assert!(
        std::env::var_os("ATOMA_REQUIRE_WALKTHROUGH").is_none(),
        "examples/walkthrough.sh needs bash and jq"
    );
    eprintln!("skipped: examples/walkthrough.sh needs bash and jq (apt-get install jq)");
    false
}

/// A background `atoma --json ARGS…` (with `home` as `$ATOMA_HOME` when given) and the first
/// line it printed, its banner; killed when dropped.
pub struct Background {
    pub child: Child,
    pub banner: Value,
}

impl Background {
    pub fn start(args: &[&str], home: Option<&Path>) -> Background {
        let mut command = atoma();
        command.arg("--json").args(args).env_remove("ATOMA_AS").stdin(Stdio::null());
        if let Some(home) = home {
            command.env("ATOMA_HOME", home);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("atoma runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("a banner");
        let banner =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("atoma {args:?} printed {line:?}: {e}"));
        Background { child, banner }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
