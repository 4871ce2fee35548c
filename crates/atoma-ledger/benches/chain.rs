//! The ledger end to end, against this machine's limits measured in the same run:
//!
//! - `chain/pipelined`: signed transfers per second through admission (decoding, batched
//!   signature checks on every core), ordering, execution and durable commit — 1,000 senders
//!   pipelining nonces through `ChainHandle::enqueue_batch`, every outcome awaited — as a fraction
//!   of batched ed25519 verification on one thread (`ed25519/verify_batch/1024`), next to the
//!   fsync rate (`disk/fsync`);
//! - `chain/submit_concurrent`: the same transfers through `ChainHandle::submit` from 1,000
//!   concurrent clients, each awaiting its acknowledgement before sending its next (the RPC
//!   server's path: the chain's verifier thread batches whatever is waiting);
//! - `chain/submit_idle`: one `submit` at a time on an idle chain; p50 and p99 in fsyncs; then the
//!   same while another thread runs dry runs back to back (a flood of public dry-run traffic),
//!   as a ratio to the quiet figures of the same run — dry runs never take the state's lock, so
//!   what is left is the CPU they take from the block's own work;
//! - `chain/recover`: reopening a chain whose blocks all lie past its last snapshot; transactions
//!   replayed per second.
//!
//! `cargo bench -p atoma-ledger --bench chain` (set `ATOMA_BENCH_DIR` to put the chains on
//! another filesystem than the temp dir's).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use atoma_contract::{Address, Call};
use atoma_ledger::{Chain, ChainConfig, ChainHandle, ChainTask, Ledger, LedgerOptions, PendingTransaction};
use atoma_types::{Keypair, SignedTransaction};
use criterion::{Criterion, SamplingMode, Throughput};
use support::{
    REFERENCE_BATCH, bench_dir, bench_ed25519, bench_fsync, ed25519_rates, fsync_ns, mean_ns, rate,
};
use support::{show_ns, show_rate, slow};

/// Senders (the most test accounts a local network funds).
const SENDERS: u64 = 1000;
/// Nonces each sender pipelines per measured iteration.
const ROUNDS: u64 = 8;
/// Transactions per measured iteration.
const PER_ITERATION: u64 = SENDERS * ROUNDS;
/// Transactions handed to `enqueue_batch` at once.
const ENQUEUE_CHUNK: usize = 1000;
/// Submissions timed one at a time for the latency percentiles.
const LATENCY_SAMPLES: usize = 300;
/// Transactions in the chain that `chain/recover` reopens.
const RECOVERY_TXS: u64 = SENDERS * 128;

fn main() {
    let dir = bench_dir();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut criterion = Criterion::default().configure_from_args();

    let mut group = criterion.benchmark_group("ed25519");
    bench_ed25519(&mut group, &[REFERENCE_BATCH]);
    group.finish();
    let mut group = criterion.benchmark_group("disk");
    bench_fsync(&mut group, dir.path());
    group.finish();

    let mut group = criterion.benchmark_group("chain");
    let (handle, task) = open_chain(&dir.path().join("pipelined"), LedgerOptions::default());
    let mut load = Load::new(&handle);
    let mut blocks = (0u64, 0u64);
    let mut cpu = (0.0f64, 0u64);
    slow(&mut group, 10, 20);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(PER_ITERATION));
    group.bench_function("pipelined", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let txs = load.next_round(&handle);
                let height = handle.node().chain_info().height;
                let cpu_before = support::cpu_seconds("self");
                total += pipelined(&runtime, &handle, txs);
                cpu.0 += support::cpu_seconds("self") - cpu_before;
                cpu.1 += PER_ITERATION;
                blocks.0 += handle.node().chain_info().height - height;
                blocks.1 += PER_ITERATION;
            }
            total
        })
    });

    group.bench_function("submit_concurrent", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let txs = load.next_round(&handle);
                total += concurrent(&runtime, &handle, txs);
            }
            total
        })
    });

    let mut latencies = Vec::new();
    group.throughput(Throughput::Elements(1));
    slow(&mut group, 20, 5);
    group.bench_function("submit_idle", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let elapsed = submit_one(&runtime, &handle, &mut load);
                latencies.push(elapsed);
                total += elapsed;
            }
            total
        })
    });
    // Percentiles need their own samples, taken the same way; with each, the block's apply and
    // redb commit times as the ledger's metrics report them, to show where the time goes.
    let mut applies = Vec::with_capacity(LATENCY_SAMPLES);
    let mut commits = Vec::with_capacity(LATENCY_SAMPLES);
    let written_before = support::storage_bytes_written();
    latencies = (0..LATENCY_SAMPLES)
        .map(|_| {
            let elapsed = submit_one(&runtime, &handle, &mut load);
            let metrics = handle.ledger().metrics().snapshot();
            applies.push(Duration::from_micros(metrics.last_block_latency_us));
            commits.push(Duration::from_micros(metrics.last_commit_latency_us));
            elapsed
        })
        .collect();
    let idle_block_bytes = (support::storage_bytes_written() - written_before) / LATENCY_SAMPLES as u64;
    let flooded = under_dry_run_flood(&runtime, &handle, &mut load);
    stop(handle, task);

    let recovery = recovery_chain(&runtime, &dir.path().join("recovery"));
    group.throughput(Throughput::Elements(RECOVERY_TXS));
    slow(&mut group, 10, 10);
    group.bench_function("recover", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let ledger = Ledger::open(&recovery, recovery_options()).expect("reopen");
                total += started.elapsed();
                assert!(ledger.tip().height >= RECOVERY_TXS / ENQUEUE_CHUNK as u64);
            }
            total
        })
    });
    group.finish();
    criterion.final_summary();
    support::print_machine(dir.path());
    print_summary(blocks, &mut latencies, [&mut applies, &mut commits], idle_block_bytes);
    print_flood(&latencies, flooded);
    print_cpu(cpu);
}

fn open_chain(dir: &Path, ledger: LedgerOptions) -> (ChainHandle, ChainTask) {
    let mut config = ChainConfig::local(dir);
    config.genesis.accounts = SENDERS;
    config.mempool_capacity = 4 * PER_ITERATION as usize;
    config.ledger = ledger;
    Chain::open(config).expect("chain")
}

fn stop(handle: ChainHandle, task: ChainTask) {
    handle.shutdown();
    drop(handle);
    task.join().expect("join");
}

/// The senders and their next nonces.
struct Load {
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
}

impl Load {
    fn new(handle: &ChainHandle) -> Self {
        let keys: Vec<Keypair> = (0..SENDERS).map(Keypair::test_account).collect();
        let nonces = keys.iter().map(|k| handle.next_nonce(&k.address())).collect();
        Load { keys, nonces }
    }

    /// `ROUNDS` transfers from every sender, round-robin, signed on every core (not timed).
    fn next_round(&mut self, handle: &ChainHandle) -> Vec<SignedTransaction> {
        let chain = handle.node().chain_info().chain_id.0;
        let jobs: Vec<(usize, u64)> =
            (0..ROUNDS).flat_map(|r| (0..self.keys.len()).map(move |i| (i, r))).collect();
        let keys = &self.keys;
        let nonces = &self.nonces;
        let sign = |jobs: &[(usize, u64)]| -> Vec<SignedTransaction> {
            jobs.iter()
                .map(|&(i, r)| {
                    let to = keys[(i + 1) % keys.len()].address();
                    keys[i].sign_call(chain, nonces[i] + r, transfer(to))
                })
                .collect()
        };
        let (first, second) = jobs.split_at(jobs.len() / 2);
        let txs = std::thread::scope(|s| {
            let other = s.spawn(|| sign(second));
            let mut txs = sign(first);
            txs.extend(other.join().expect("signer"));
            txs
        });
        for nonce in &mut self.nonces {
            *nonce += ROUNDS;
        }
        txs
    }

    /// One transfer from the first sender.
    fn one(&mut self, handle: &ChainHandle) -> SignedTransaction {
        let chain = handle.node().chain_info().chain_id.0;
        self.nonces[0] += 1;
        self.keys[0].sign_call(chain, self.nonces[0] - 1, transfer(Address([1; 32])))
    }
}

fn transfer(to: Address) -> Call {
    Call::TransferToma { recipient: to, amount: 1 }
}

/// Enqueues `txs` in chunks and waits for every outcome; the time from the first enqueue to the
/// last acknowledgement.
fn pipelined(
    runtime: &tokio::runtime::Runtime,
    handle: &ChainHandle,
    txs: Vec<SignedTransaction>,
) -> Duration {
    let started = Instant::now();
    let mut pending: Vec<PendingTransaction> = Vec::with_capacity(txs.len());
    let mut txs = txs.into_iter();
    loop {
        let chunk: Vec<SignedTransaction> = txs.by_ref().take(ENQUEUE_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        for result in handle.enqueue_batch(chunk) {
            pending.push(result.expect("admitted"));
        }
    }
    runtime.block_on(async {
        for p in pending {
            assert!(p.outcome().await.expect("committed").status.is_success());
        }
    });
    started.elapsed()
}

/// Submits `txs` (round-robin over the senders) from one task per sender, each awaiting its
/// acknowledgement before its next; the time until the last acknowledgement.
fn concurrent(
    runtime: &tokio::runtime::Runtime,
    handle: &ChainHandle,
    txs: Vec<SignedTransaction>,
) -> Duration {
    let mut per_sender: Vec<Vec<SignedTransaction>> = (0..SENDERS).map(|_| Vec::new()).collect();
    for (i, tx) in txs.into_iter().enumerate() {
        per_sender[i % SENDERS as usize].push(tx);
    }
    let started = Instant::now();
    runtime.block_on(async {
        let clients: Vec<_> = per_sender
            .into_iter()
            .map(|txs| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    for tx in txs {
                        assert!(handle.submit(tx).await.expect("committed").status.is_success());
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.expect("client");
        }
    });
    started.elapsed()
}

/// One `submit` on an idle chain, timed.
fn submit_one(runtime: &tokio::runtime::Runtime, handle: &ChainHandle, load: &mut Load) -> Duration {
    let tx = load.one(handle);
    let started = Instant::now();
    runtime.block_on(handle.submit(tx)).expect("committed");
    started.elapsed()
}

/// Idle submit latencies (`LATENCY_SAMPLES`, sorted) while another thread runs dry runs back to
/// back, and the dry runs per second it reached.
fn under_dry_run_flood(
    runtime: &tokio::runtime::Runtime,
    handle: &ChainHandle,
    load: &mut Load,
) -> (Vec<Duration>, f64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let flood = {
        let (ledger, stop, count) = (Arc::clone(handle.ledger()), Arc::clone(&stop), Arc::clone(&count));
        // Any well-signed transaction will do; its nonce is not checked by a dry run.
        let chain = handle.node().chain_info().chain_id.0;
        let tx = Keypair::test_account(SENDERS - 1).sign_call(chain, 0, transfer(Address([2; 32])));
        std::thread::spawn(move || {
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                ledger.dry_run(tx.clone()).expect("dry run");
                count.fetch_add(1, Ordering::Relaxed);
            }
            count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
        })
    };
    let mut latencies: Vec<Duration> =
        (0..LATENCY_SAMPLES).map(|_| submit_one(runtime, handle, load)).collect();
    stop.store(true, Ordering::Relaxed);
    let per_second = flood.join().expect("flood");
    latencies.sort();
    (latencies, per_second)
}

fn print_flood(quiet: &[Duration], (flooded, dry_runs_per_second): (Vec<Duration>, f64)) {
    for p in [50, 99] {
        if let (Some(q), Some(f)) = (percentile(quiet, p), percentile(&flooded, p)) {
            println!(
                "idle submit latency p{p} under dry runs | {:>12} | quiet {:>20} | {:.2}x",
                show_ns(f.as_nanos() as f64),
                show_ns(q.as_nanos() as f64),
                f.as_secs_f64() / q.as_secs_f64()
            );
        }
    }
    println!(
        "  dry runs per second meanwhile        | {:>12} |                            |",
        show_rate(dry_runs_per_second)
    );
}

/// A snapshot at genesis only, so reopening replays every block.
fn recovery_options() -> LedgerOptions {
    LedgerOptions { snapshot_interval: u64::MAX, ..LedgerOptions::default() }
}

/// A closed chain of [`RECOVERY_TXS`] transfers in blocks of [`ENQUEUE_CHUNK`], none of them
/// covered by a snapshot; returns its database file.
fn recovery_chain(runtime: &tokio::runtime::Runtime, dir: &Path) -> std::path::PathBuf {
    let (handle, task) = open_chain(dir, recovery_options());
    let mut load = Load::new(&handle);
    let mut txs = Vec::new();
    while (txs.len() as u64) < RECOVERY_TXS {
        txs.extend(load.next_round(&handle));
    }
    // One enqueue_batch and one block at a time: full blocks.
    for chunk in txs.chunks(ENQUEUE_CHUNK) {
        let pending: Vec<PendingTransaction> =
            handle.enqueue_batch(chunk.to_vec()).into_iter().map(|r| r.expect("admitted")).collect();
        runtime.block_on(async {
            for p in pending {
                p.outcome().await.expect("committed");
            }
        });
    }
    stop(handle, task);
    dir.join(atoma_ledger::chain::CHAIN_DB_FILE)
}

fn print_summary(
    blocks: (u64, u64),
    latencies: &mut [Duration],
    parts: [&mut [Duration]; 2],
    idle_block_bytes: u64,
) {
    let (Some((single, batched)), Some(fsync)) = (ed25519_rates(REFERENCE_BATCH), fsync_ns()) else { return };
    let fsync_rate = rate(1, fsync);
    println!(
        "\nreferences (this run): verify_strict {} · verify_batch({REFERENCE_BATCH}) {} on one thread · fsync {} ({})",
        show_rate(single),
        show_rate(batched),
        show_ns(fsync),
        show_rate(fsync_rate)
    );
    println!("\nwhat                                   | value        | reference                  | ratio");
    println!("-------------------------------------- | ------------ | -------------------------- | -----");
    if let Some(ns) = mean_ns("chain", "pipelined", None) {
        let tps = rate(PER_ITERATION as usize, ns);
        println!(
            "end to end, durable (enqueue_batch)    | {:>12} | batched verify {:>11} | {:.2}",
            show_rate(tps),
            show_rate(batched),
            tps / batched
        );
        if let Some(cores) = support::ed25519_cores_rate(REFERENCE_BATCH) {
            println!(
                "  … against batched verify, all cores  | {:>12} | all cores {:>16} | {:.2}",
                show_rate(tps),
                show_rate(cores),
                tps / cores
            );
        }
        let (count, txs) = blocks;
        if count > 0 {
            let per_block = txs as f64 / count as f64;
            println!(
                "  blocks (= fsyncs) per second         | {:>12} | fsync rate {:>15} | {:.2}",
                show_rate(tps / per_block),
                show_rate(fsync_rate),
                tps / per_block / fsync_rate
            );
            println!(
                "  transactions per block               | {:>12.0} |                            |",
                per_block
            );
        }
    }
    if let Some(ns) = mean_ns("chain", "submit_concurrent", None) {
        let tps = rate(PER_ITERATION as usize, ns);
        println!(
            "end to end, durable (1,000 submitters) | {:>12} | batched verify {:>11} | {:.2}",
            show_rate(tps),
            show_rate(batched),
            tps / batched
        );
    }
    latencies.sort();
    if let (Some(p50), Some(p99)) = (percentile(latencies, 50), percentile(latencies, 99)) {
        for (name, value) in [("p50", p50), ("p99", p99)] {
            let ns = value.as_nanos() as f64;
            println!(
                "idle submit latency {name}                | {:>12} | fsync {:>20} | {:.1} fsyncs",
                show_ns(ns),
                show_ns(fsync),
                ns / fsync
            );
        }
    }
    let [applies, commits] = parts;
    applies.sort();
    commits.sort();
    let parts = [("block apply+commit", percentile(applies, 50)), ("redb commit", percentile(commits, 50))];
    for (name, p50) in parts {
        if let Some(p50) = p50 {
            let ns = p50.as_nanos() as f64;
            println!(
                "  of which {name:<18} p50 | {:>12} | fsync {:>20} | {:.1} fsyncs",
                show_ns(ns),
                show_ns(fsync),
                ns / fsync
            );
        }
    }
    if idle_block_bytes > 0 {
        println!(
            "  bytes written per idle block         | {:>12} | fsync writes {:>13} | {:.1}x",
            idle_block_bytes,
            support::FSYNC_BLOCK,
            idle_block_bytes as f64 / support::FSYNC_BLOCK as f64
        );
    }
    if let Some(ns) = mean_ns("chain", "recover", None) {
        let tps = rate(RECOVERY_TXS as usize, ns);
        println!(
            "recovery replay                        | {:>12} | target {:>19} | {:.2}",
            show_rate(tps),
            show_rate(200_000.0),
            tps / 200_000.0
        );
    }
}

/// The end-to-end figure in CPU time, which other work on the machine does not change: CPU
/// seconds of the whole process (admission, verification, the producer, commits) per pipelined
/// transaction, against one thread's CPU time per batched signature.
fn print_cpu((seconds, transactions): (f64, u64)) {
    if transactions == 0 {
        return;
    }
    let per_tx = seconds / transactions as f64 * 1e9;
    let per_signature = support::batch_cpu_per_signature(REFERENCE_BATCH) * 1e9;
    println!(
        "CPU per transaction, end to end        | {:>12} | batched verify {:>11} | {:.2}",
        show_ns(per_tx),
        show_ns(per_signature),
        per_signature / per_tx
    );
    println!("(CPU ratio = the throughput ratio with both on the same, otherwise idle, single core)");
}

fn percentile(sorted: &[Duration], p: usize) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    sorted.get((last * p).div_ceil(100)).copied()
}
