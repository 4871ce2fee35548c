//! `atoma start`'s limit flags: out-of-range values are refused by name before anything starts,
//! a combination the server refuses is refused by name too, and in-range values start a node.

mod common;

use common::*;
use serde_json::Value;

/// `atoma --json start ARGS…` in a fresh home that must fail; its error document and status.
fn refused(args: &[&str]) -> (Value, Option<i32>) {
    let home = tempfile::tempdir().expect("temp dir");
    let output = atoma()
        .args(["--json", "start", "--rpc-addr", "127.0.0.1:0"])
        .args(args)
        .env("ATOMA_HOME", home.path())
        .output()
        .expect("atoma runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let doc: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("{args:?}: {text}"));
    (doc["error"].clone(), output.status.code())
}

#[test]
fn out_of_range_limits_are_refused_by_name() {
    for args in [
        &["--nonce-hold-ms", "60001"][..],
        &["--rpc-max-connections", "0"],
        &["--rpc-max-connections-per-address", "0"],
        &["--rpc-max-subscriptions-per-connection", "0"],
        &["--rpc-max-subscriptions-per-address", "0"],
        &["--rpc-ws-send-buffer-bytes", "0"],
        &["--rpc-max-request-body-bytes", "0"],
        &["--rpc-max-response-body-bytes", "0"],
        &["--rpc-max-batch-len", "0"],
        &["--rpc-first-request-timeout-ms", "0"],
        &["--rpc-request-body-timeout-ms", "86400001"],
        &["--rpc-ws-idle-timeout-ms", "0"],
    ] {
        let (error, status) = refused(args);
        assert_eq!(error["name"], "EInvalidArgument", "{args:?}: {error}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains(args[0])), "{args:?}: {error}");
        assert_eq!(status, Some(2), "{args:?}: a usage error");
    }
    // Each flag in range, but together out of range: the server refuses them when it starts.
    let (error, status) = refused(&["--rpc-max-buffered-body-bytes", "1024"]);
    assert_eq!(error["name"], "EInvalidArgument", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("buffered body budget")), "{error}");
    assert_eq!(status, Some(1));
}

#[test]
fn in_range_limits_start_a_node() {
    let home = tempfile::tempdir().expect("temp dir");
    let args = [
        "--nonce-hold-ms",
        "0",
        "--rpc-max-connections-per-address",
        "4",
        "--rpc-ws-send-buffer-bytes",
        "65536",
        "--rpc-ws-idle-timeout-ms",
        "5000",
    ];
    let net = Network::start(home.path(), &args);
    let status = net.run(&["--json", "status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}
