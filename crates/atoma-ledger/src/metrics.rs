//! Counters for monitoring, rendered in Prometheus' text format by [`MetricsSnapshot::to_prometheus`].

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters and gauges, updated by the ledger and the block producer.
#[derive(Debug, Default)]
pub struct Metrics {
    blocks: AtomicU64,
    height: AtomicU64,
    tx_success: AtomicU64,
    tx_failure: AtomicU64,
    tx_rejected: AtomicU64,
    events: AtomicU64,
    mempool: AtomicU64,
    last_commit_us: AtomicU64,
    last_block_us: AtomicU64,
    storage_repairs: AtomicU64,
}

/// A copy of the metrics at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MetricsSnapshot {
    /// Blocks applied since the process started.
    pub blocks_applied: u64,
    /// The height of the tip.
    pub height: u64,
    /// Executed transactions the contract accepted.
    pub transactions_succeeded: u64,
    /// Executed transactions the contract refused (their nonce is consumed).
    pub transactions_failed: u64,
    /// Transactions refused before execution (ledger errors).
    pub transactions_rejected: u64,
    /// Events written to the log.
    pub events_emitted: u64,
    /// Transactions waiting to be ordered, those held for a missing nonce included (both count
    /// toward the mempool's capacity).
    pub mempool_size: u64,
    /// The last block's redb write and commit (fsync), in microseconds.
    pub last_commit_latency_us: u64,
    /// The last block's validation, execution, digest and commit, in microseconds.
    pub last_block_latency_us: u64,
    /// Repairs made when the store was opened: snapshots passed over as damaged, index rebuilds.
    pub storage_repairs: u64,
}

impl Metrics {
    pub(crate) fn block_applied(&self, height: u64, succeeded: u64, failed: u64, events: u64) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
        self.tx_success.fetch_add(succeeded, Ordering::Relaxed);
        self.tx_failure.fetch_add(failed, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    pub(crate) fn latencies(&self, commit_us: u64, block_us: u64) {
        self.last_commit_us.store(commit_us, Ordering::Relaxed);
        self.last_block_us.store(block_us, Ordering::Relaxed);
    }

    pub(crate) fn storage_repaired(&self, repairs: u64) {
        self.storage_repairs.fetch_add(repairs, Ordering::Relaxed);
    }

    pub(crate) fn set_height(&self, height: u64) {
        self.height.store(height, Ordering::Relaxed);
    }

    pub(crate) fn rejected(&self) {
        self.tx_rejected.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_mempool(&self, size: usize) {
        self.mempool.store(u64::try_from(size).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            blocks_applied: get(&self.blocks),
            height: get(&self.height),
            transactions_succeeded: get(&self.tx_success),
            transactions_failed: get(&self.tx_failure),
            transactions_rejected: get(&self.tx_rejected),
            events_emitted: get(&self.events),
            mempool_size: get(&self.mempool),
            last_commit_latency_us: get(&self.last_commit_us),
            last_block_latency_us: get(&self.last_block_us),
            storage_repairs: get(&self.storage_repairs),
        }
    }
}

impl MetricsSnapshot {
    /// The metrics in Prometheus' text exposition format, names prefixed `atoma_`.
    pub fn to_prometheus(&self) -> String {
        let rows: [(&str, &str, &str, u64); 10] = [
            ("atoma_blocks_applied_total", "counter", "Blocks applied since start.", self.blocks_applied),
            ("atoma_block_height", "gauge", "Height of the tip.", self.height),
            (
                "atoma_transactions_succeeded_total",
                "counter",
                "Executed, accepted by the contract.",
                self.transactions_succeeded,
            ),
            (
                "atoma_transactions_failed_total",
                "counter",
                "Executed, refused by the contract.",
                self.transactions_failed,
            ),
            (
                "atoma_transactions_rejected_total",
                "counter",
                "Refused before execution.",
                self.transactions_rejected,
            ),
            ("atoma_events_emitted_total", "counter", "Events written to the log.", self.events_emitted),
            ("atoma_mempool_size", "gauge", "Transactions waiting to be ordered.", self.mempool_size),
            (
                "atoma_last_commit_latency_microseconds",
                "gauge",
                "Last block's storage commit.",
                self.last_commit_latency_us,
            ),
            (
                "atoma_last_block_latency_microseconds",
                "gauge",
                "Last block's apply, commit included.",
                self.last_block_latency_us,
            ),
            (
                "atoma_storage_repairs_total",
                "counter",
                "Damaged snapshots passed over and index rebuilds when the store was opened.",
                self.storage_repairs,
            ),
        ];
        rows.iter()
            .map(|(name, kind, help, value)| {
                format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_metric() {
        let m = Metrics::default();
        m.block_applied(3, 2, 1, 5);
        m.rejected();
        let text = m.snapshot().to_prometheus();
        assert!(text.contains("atoma_block_height 3\n"));
        assert!(text.contains("atoma_transactions_failed_total 1\n"));
        assert!(text.contains("atoma_transactions_rejected_total 1\n"));
        m.storage_repaired(2);
        assert!(m.snapshot().to_prometheus().contains("atoma_storage_repairs_total 2\n"));
        assert_eq!(text.matches("# TYPE").count(), 10);
    }
}
