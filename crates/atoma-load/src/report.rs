//! What a run measured: [`Report`], its text table and its JSON form.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use atoma_contract::Address;
use atoma_types::Digest;
use serde_json::{Value, json};

use crate::conn::Transport;
use crate::histogram::Histogram;

/// A transaction the chain answered (kept when `record_results` is set).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Answered {
    /// Its digest.
    pub digest: Digest,
    /// Who signed it.
    pub sender: Address,
    /// Its nonce.
    pub nonce: u64,
    /// The entry function, such as `TransferToma`.
    pub call: &'static str,
    /// The block that holds it.
    pub block_height: u64,
    /// The contract's error when it refused the call (`None`: success).
    pub error: Option<String>,
}

/// Counts for one entry function.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CallCounts {
    /// Sent at least once.
    pub sent: u64,
    /// Executed and applied.
    pub succeeded: u64,
    /// Executed and refused by the contract.
    pub failed: u64,
}

/// What a run measured. Latencies run from the first send of a transaction to its durable
/// result (the answer comes after its block's commit), retries included.
#[derive(Clone, Debug)]
pub struct Report {
    /// The node.
    pub rpc_url: String,
    /// HTTP or WebSocket.
    pub transport: Transport,
    /// `"transfers"` or `"mix"`.
    pub workload: &'static str,
    /// Clients.
    pub concurrency: usize,
    /// Transactions in flight per key.
    pub pipeline: usize,
    /// Funding accounts and preparing the market (not part of `elapsed`).
    pub setup: Duration,
    /// From the first load transaction sent to the last one answered.
    pub elapsed: Duration,
    /// Transactions sent at least once.
    pub sent: u64,
    /// Executed and applied.
    pub succeeded: u64,
    /// Executed and refused by the contract (on the chain; nonce consumed).
    pub failed: u64,
    /// Never executed (given up after a final error or after `retry_for` of busy answers).
    pub errors: u64,
    /// Busy and not-yet answers that were retried.
    pub retries: u64,
    /// Blocks the chain made while the load ran.
    pub blocks: u64,
    /// Acknowledgement latency of executed transactions.
    pub latency: Histogram,
    /// Per entry function.
    pub calls: BTreeMap<&'static str, CallCounts>,
    /// The contract's errors of executed, refused transactions, by name.
    pub failures_by_name: BTreeMap<String, u64>,
    /// Final errors by name (`ENonceUsed`, `timeout`, `HTTP 503`, …).
    pub errors_by_name: BTreeMap<String, u64>,
    /// Retried answers by name (`EMempoolFull`, `ENonceFuture`, `HTTP 429`, `timeout`, …).
    pub retries_by_name: BTreeMap<String, u64>,
    /// Every executed transaction, when `record_results` was set.
    pub results: Vec<Answered>,
}

impl Report {
    /// Executed transactions (succeeded or failed).
    pub fn executed(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Executed transactions per second.
    pub fn tps(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.executed() as f64 / secs } else { 0.0 }
    }

    /// The summary as an aligned text table.
    pub fn table(&self) -> String {
        let h = &self.latency;
        let mut rows: Vec<(&str, String)> = vec![
            ("workload", format!("{} over {}, {}", self.workload, self.transport, self.rpc_url)),
            ("clients", format!("{} × pipeline {}", self.concurrency, self.pipeline)),
            ("elapsed", format!("{} (setup {})", secs(self.elapsed), secs(self.setup))),
            ("sent", self.sent.to_string()),
            ("succeeded", self.succeeded.to_string()),
            ("failed (contract)", format!("{}{}", self.failed, names(&self.failures_by_name))),
            ("errors", format!("{}{}", self.errors, names(&self.errors_by_name))),
            ("retried answers", format!("{}{}", self.retries, names(&self.retries_by_name))),
            ("throughput", format!("{:.0} tx/s", self.tps())),
            ("blocks", blocks(self.blocks, self.executed())),
            (
                "latency",
                format!(
                    "p50 {}  p95 {}  p99 {}  max {}  (mean {})",
                    ms(h.quantile(0.50)),
                    ms(h.quantile(0.95)),
                    ms(h.quantile(0.99)),
                    ms(h.max()),
                    ms(h.mean())
                ),
            ),
        ];
        for (call, c) in &self.calls {
            rows.push((
                "",
                format!("{call}: {} sent, {} succeeded, {} failed", c.sent, c.succeeded, c.failed),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{key:<width$}  {value}");
        }
        out
    }

    /// The report as one JSON document (durations in milliseconds).
    pub fn to_json(&self) -> Value {
        let h = &self.latency;
        let calls: serde_json::Map<String, Value> = self
            .calls
            .iter()
            .map(|(k, c)| {
                (k.to_string(), json!({"sent": c.sent, "succeeded": c.succeeded, "failed": c.failed}))
            })
            .collect();
        json!({
            "rpcUrl": self.rpc_url,
            "transport": self.transport.name(),
            "workload": self.workload,
            "concurrency": self.concurrency,
            "pipeline": self.pipeline,
            "setupMs": millis(self.setup),
            "elapsedMs": millis(self.elapsed),
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "errors": self.errors,
            "retries": self.retries,
            "blocks": self.blocks,
            "tps": self.tps(),
            "latencyMs": {
                "p50": millis(h.quantile(0.50)),
                "p95": millis(h.quantile(0.95)),
                "p99": millis(h.quantile(0.99)),
                "max": millis(h.max()),
                "mean": millis(h.mean()),
            },
            "calls": calls,
            "failuresByName": self.failures_by_name,
            "errorsByName": self.errors_by_name,
            "retriesByName": self.retries_by_name,
        })
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn blocks(blocks: u64, executed: u64) -> String {
    if blocks == 0 {
        return "0".into();
    }
    format!("{blocks} ({:.1} tx/block)", executed as f64 / blocks as f64)
}

/// ` (EMempoolFull 3, HTTP 429 1)`, or nothing.
fn names(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts.iter().map(|(name, n)| format!("{name} {n}")).collect();
    format!(" ({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_every_figure() {
        let mut latency = Histogram::default();
        latency.record(Duration::from_millis(4));
        latency.record(Duration::from_millis(8));
        let report = Report {
            rpc_url: "http://127.0.0.1:9000".into(),
            transport: Transport::WebSocket,
            workload: "transfers",
            concurrency: 2,
            pipeline: 4,
            setup: Duration::from_millis(300),
            elapsed: Duration::from_secs(2),
            sent: 3,
            succeeded: 2,
            failed: 0,
            errors: 1,
            retries: 2,
            blocks: 1,
            latency,
            calls: BTreeMap::from([("TransferToma", CallCounts { sent: 3, succeeded: 2, failed: 0 })]),
            failures_by_name: BTreeMap::new(),
            errors_by_name: BTreeMap::from([("timeout".into(), 1)]),
            retries_by_name: BTreeMap::from([("EMempoolFull".into(), 2)]),
            results: Vec::new(),
        };
        let table = report.table();
        for want in [
            "transfers over ws",
            "2 × pipeline 4",
            "errors             1 (timeout 1)",
            "2 (EMempoolFull 2)",
            "1 tx/s",
            "p50 4.0 ms",
            "max 8.0 ms",
            "TransferToma: 3 sent, 2 succeeded, 0 failed",
        ] {
            assert!(table.contains(want), "{want:?} missing from\n{table}");
        }
        let json = report.to_json();
        assert_eq!(json["latencyMs"]["max"], json!(8.0));
        assert_eq!(json["retriesByName"]["EMempoolFull"], json!(2));
    }
}
