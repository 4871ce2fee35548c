//! `atoma-sim`: runs many seeds of the simulator and prints a summary table.
//!
//! ```text
//! cargo run --release -p atoma-sim -- --seeds 100 --start 0 --txs 5000
//! ```
//!
//! Seeds run in parallel, one per thread. A failed seed prints its failure and the command that
//! reproduces it, and the exit status is 1.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atoma_sim::report::reproduce_command;
use atoma_sim::{Report, SimConfig};
use clap::Parser;

/// Runs seeds `start..start+seeds` of the Atoma simulator.
#[derive(Parser, Debug)]
#[command(name = "atoma-sim", version)]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 8, env = "ATOMA_SIM_SEEDS")]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Transactions per seed (valid and invalid together).
    #[arg(long, default_value_t = SimConfig::default().transactions, env = "ATOMA_SIM_TXS")]
    txs: u64,
    /// Crash-and-restart cycles per seed.
    #[arg(long, default_value_t = SimConfig::default().crashes)]
    crashes: u32,
    /// Threads (default: the machine's parallelism).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print the per-kind tables of the totals.
    #[arg(long)]
    details: bool,
}

type Outcome = Result<(Report, Duration), String>;

fn main() {
    let args = Args::parse();
    let config = SimConfig { transactions: args.txs, crashes: args.crashes, ..SimConfig::default() };
    let jobs =
        args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let started = Instant::now();
    let next = AtomicU64::new(args.start);
    let end = args.start.saturating_add(args.seeds);
    let results: Mutex<Vec<(u64, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= end {
                        break;
                    }
                    let outcome = run_one(seed, &config);
                    // Progress on stderr as seeds finish; the table on stdout comes at the end.
                    match &outcome {
                        Ok((report, took)) => eprintln!("{report} ({} ms)", took.as_millis()),
                        Err(message) => eprintln!("{message}"),
                    }
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((seed, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(seed, _)| *seed);
    let failed = print_summary(&results, started.elapsed(), args.details);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// One seed, with panics turned into failures that name the seed.
fn run_one(seed: u64, config: &SimConfig) -> Outcome {
    let started = Instant::now();
    match catch_unwind(AssertUnwindSafe(|| atoma_sim::run(seed, config))) {
        Ok(Ok(report)) => Ok((report, started.elapsed())),
        Ok(Err(failure)) => Err(failure.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            Err(format!("seed {seed} panicked: {what}\nreproduce with: {}", reproduce_command(seed, config)))
        }
    }
}

/// Prints one row per seed and the totals; returns the number of failed seeds.
fn print_summary(results: &[(u64, Outcome)], elapsed: Duration, details: bool) -> usize {
    println!(
        "{:>6} {:>7} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8}  state digest",
        "seed", "blocks", "epochs", "executed", "ok", "refused", "badblk", "crashes", "checks", "ms"
    );
    let mut total = Report::default();
    let mut failed = 0;
    for (seed, outcome) in results {
        match outcome {
            Ok((report, took)) => {
                println!(
                    "{seed:>6} {:>7} {:>6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8}  {}",
                    report.blocks,
                    report.epochs,
                    report.executed(),
                    report.succeeded(),
                    report.rejected_total(),
                    report.refused_blocks_total(),
                    report.crashes,
                    report.checks,
                    took.as_millis(),
                    report.state_digest
                );
                total.merge(report);
            }
            Err(_) => {
                failed += 1;
                println!("{seed:>6} FAILED");
            }
        }
    }
    println!(
        "total: {} seeds ({failed} failed), {} blocks, {} executed ({} ok), {} refused, {} bad blocks, {} crashes survived, {} checks, {:.1} s",
        results.len(),
        total.blocks,
        total.executed(),
        total.succeeded(),
        total.rejected_total(),
        total.refused_blocks_total(),
        total.crashes,
        total.checks,
        elapsed.as_secs_f64()
    );
    let p = total.punctuality;
    println!(
        "honest attesters: {} attestations taken, {} of them past the epoch rule (kept open by the window's floor in time), {} slashed on timeout (each after a chain pause longer than its deadline)",
        p.honest_attestations, p.kept_open_by_floor, p.honest_slashed_after_pause
    );
    if details {
        print!("{}", total.details());
    }
    if failed > 0 {
        println!("failed seeds:");
        for (_, outcome) in results {
            if let Err(message) = outcome {
                println!("{message}");
            }
        }
    }
    failed
}
