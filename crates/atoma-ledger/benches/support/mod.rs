//! What the ledger benchmarks share: criterion's estimates of this run, the machine they ran on,
//! the reference measurements (ed25519 verification, fsync) and signed test transactions.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use atoma_contract::{Address, Call};
use atoma_types::{Keypair, SignedTransaction, Transaction};
use criterion::{BenchmarkGroup, BenchmarkId, Throughput, measurement::WallTime};
use ed25519_dalek::{Signature, VerifyingKey};

/// Batch sizes of the batched-verification reference.
pub const BATCH_SIZES: [usize; 3] = [64, 256, 1024];
/// The batch size whose rate is the end-to-end reference (a full block).
pub const REFERENCE_BATCH: usize = 1024;
/// Bytes written before each fsync: one page.
pub const FSYNC_BLOCK: usize = 4096;

/// The mean time of one iteration of a criterion benchmark in nanoseconds, read from this run's
/// `target/criterion/<group>/<id>[/<param>]/new/estimates.json`.
pub fn mean_ns(group: &str, id: &str, param: Option<usize>) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").to_string());
    let path = match param {
        Some(p) => format!("{dir}/criterion/{group}/{id}/{p}/new/estimates.json"),
        None => format!("{dir}/criterion/{group}/{id}/new/estimates.json"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

/// Events per second when one iteration of `per_iteration` events takes `ns`.
pub fn rate(per_iteration: usize, ns: f64) -> f64 {
    per_iteration as f64 * 1e9 / ns
}

/// A duration in the unit that suits it.
pub fn show_ns(ns: f64) -> String {
    match ns {
        ns if ns < 1_000.0 => format!("{ns:.0} ns"),
        ns if ns < 1_000_000.0 => format!("{:.1} µs", ns / 1_000.0),
        ns => format!("{:.2} ms", ns / 1_000_000.0),
    }
}

/// A rate with thousands separated.
pub fn show_rate(per_second: f64) -> String {
    let n = per_second.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

/// Where the benchmarks write: `$ATOMA_BENCH_DIR`, else the system's temp dir. Point it at the
/// chain's data directory to measure that filesystem.
pub fn bench_root() -> PathBuf {
    std::env::var_os("ATOMA_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

/// A fresh directory under [`bench_root`], removed on drop.
pub fn bench_dir() -> tempfile::TempDir {
    let root = bench_root();
    std::fs::create_dir_all(&root).expect("bench dir");
    tempfile::tempdir_in(root).expect("temp dir")
}

/// Prints the machine the numbers belong to: cores, CPU model, the filesystem written to.
pub fn print_machine(dir: &Path) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_string(), |m| m.trim().to_string());
    println!("machine: {cpus} cores, CPU {model}; writing to {} ({})", dir.display(), filesystem(dir));
}

/// The mount (device and type) that holds `path`, from /proc/mounts: the longest matching
/// mount point.
fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (device, point, kind) = (fields.first()?, fields.get(1)?, fields.get(2)?);
            path.starts_with(point).then(|| (point.len(), format!("{kind} on {device}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or("unknown filesystem".to_string(), |(_, fs)| fs)
}

/// One signed transfer per key, nonce 0, for an arbitrary chain id.
pub fn signed_transfers(count: usize) -> Vec<SignedTransaction> {
    (0..count as u64)
        .map(|i| {
            let call = Call::TransferToma { recipient: Address([7; 32]), amount: 1 };
            Keypair::test_account(1_000_000 + i).sign_call([5; 32], 0, call)
        })
        .collect()
}

/// The ed25519 triples behind signed transactions: the signed message, the signature, the key.
pub struct Triples {
    pub messages: Vec<[u8; 32]>,
    pub signatures: Vec<Signature>,
    pub keys: Vec<VerifyingKey>,
}

impl Triples {
    pub fn of(txs: &[SignedTransaction]) -> Self {
        let mut t = Triples { messages: Vec::new(), signatures: Vec::new(), keys: Vec::new() };
        for tx in txs {
            t.messages.push(Transaction::signing_message(&tx.tx_bytes));
            let signature: [u8; 64] = tx.signature[1..65].try_into().expect("signature");
            t.signatures.push(Signature::from_bytes(&signature));
            let key: [u8; 32] = tx.signature[65..].try_into().expect("key");
            t.keys.push(VerifyingKey::from_bytes(&key).expect("key"));
        }
        t
    }

    /// `verify_batch` over the first `n`.
    pub fn verify_batch(&self, n: usize) -> bool {
        self.verify_range(0, n)
    }

    /// `verify_batch` over `start..end`.
    pub fn verify_range(&self, start: usize, end: usize) -> bool {
        let messages: Vec<&[u8]> = self.messages[start..end].iter().map(|m| &m[..]).collect();
        ed25519_dalek::verify_batch(&messages, &self.signatures[start..end], &self.keys[start..end]).is_ok()
    }
}

/// The reference group `ed25519`: one `verify_strict`, and `verify_batch` at `sizes` on one
/// thread; and `verify_batch_cores` at the largest size, split evenly over every core.
pub fn bench_ed25519(group: &mut BenchmarkGroup<'_, WallTime>, sizes: &[usize]) {
    let max = sizes.iter().copied().max().unwrap_or(1);
    let triples = Triples::of(&signed_transfers(max));
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_strict", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % max;
            let ok = triples.keys[i].verify_strict(&triples.messages[i], &triples.signatures[i]).is_ok();
            assert!(ok);
        })
    });
    for &n in sizes {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("verify_batch", n), &n, |b, &n| {
            b.iter(|| assert!(triples.verify_batch(n)))
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    group.throughput(Throughput::Elements(max as u64));
    group.bench_with_input(BenchmarkId::new("verify_batch_cores", max), &max, |b, &n| {
        b.iter(|| {
            let share = n.div_ceil(cores);
            std::thread::scope(|s| {
                let parts: Vec<_> = (0..n)
                    .step_by(share)
                    .map(|start| {
                        let triples = &triples;
                        s.spawn(move || triples.verify_range(start, (start + share).min(n)))
                    })
                    .collect();
                assert!(parts.into_iter().all(|p| p.join().expect("verifier")));
            })
        })
    });
}

/// Single-signature and batched verification rates of this run: `(single, batched at n)`.
pub fn ed25519_rates(n: usize) -> Option<(f64, f64)> {
    let single = mean_ns("ed25519", "verify_strict", None)?;
    let batch = mean_ns("ed25519", "verify_batch", Some(n))?;
    Some((rate(1, single), rate(n, batch)))
}

/// Batched verification of `n` signatures split over every core, per second, in this run.
pub fn ed25519_cores_rate(n: usize) -> Option<f64> {
    Some(rate(n, mean_ns("ed25519", "verify_batch_cores", Some(n))?))
}

/// A preallocated file in which [`Fsync::write_and_sync`] overwrites one page and syncs it.
pub struct Fsync {
    file: File,
    page: u64,
}

impl Fsync {
    const PAGES: u64 = 256;

    pub fn new(dir: &Path) -> Self {
        let mut file = File::create(dir.join("fsync.bin")).expect("fsync file");
        file.write_all(&vec![0u8; FSYNC_BLOCK * Self::PAGES as usize]).expect("prefill");
        file.sync_all().expect("sync");
        Fsync { file, page: 0 }
    }

    /// Writes [`FSYNC_BLOCK`] bytes over the next page and waits for `sync_data`.
    pub fn write_and_sync(&mut self) {
        self.page = (self.page + 1) % Self::PAGES;
        let offset = self.page * FSYNC_BLOCK as u64;
        self.file.seek(SeekFrom::Start(offset)).expect("seek");
        self.file.write_all(&[self.page as u8; FSYNC_BLOCK]).expect("write");
        self.file.sync_data().expect("sync_data");
    }
}

/// The reference benchmark `disk/fsync` in `dir`.
pub fn bench_fsync(group: &mut BenchmarkGroup<'_, WallTime>, dir: &Path) {
    let mut fsync = Fsync::new(dir);
    group.throughput(Throughput::Elements(1));
    group.bench_function("fsync", |b| b.iter(|| fsync.write_and_sync()));
}

/// This run's fsync time in nanoseconds.
pub fn fsync_ns() -> Option<f64> {
    mean_ns("disk", "fsync", None)
}

/// Settings for groups whose iterations take milliseconds.
pub fn slow(group: &mut BenchmarkGroup<'_, WallTime>, samples: usize, seconds: u64) {
    group.sample_size(samples);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(seconds));
}

/// Bytes this process has caused to be written to storage so far (`write_bytes` of
/// `/proc/self/io`: what reached the block layer, page cache write-back included); 0 where the
/// kernel does not report it.
pub fn storage_bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds used so far (user + system) by this process (`"self"`) or this thread
/// (`"thread-self"`), from `/proc/<which>/stat`; Linux counts them in ticks of 1/100 s.
pub fn cpu_seconds(which: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{which}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th.
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<f64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

/// CPU time per signature of `verify_batch` over `n`, on this thread, over enough rounds for the
/// tick count to be precise.
pub fn batch_cpu_per_signature(n: usize) -> f64 {
    let triples = Triples::of(&signed_transfers(n));
    let started = cpu_seconds("thread-self");
    let mut rounds = 0;
    while cpu_seconds("thread-self") - started < 1.0 {
        assert!(triples.verify_batch(n));
        rounds += 1;
    }
    (cpu_seconds("thread-self") - started) / (rounds * n) as f64
}
