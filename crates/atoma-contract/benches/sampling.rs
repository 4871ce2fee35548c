//! Sampling one node for a stack: the index against the linear scan the deployed contract does,
//! at 1k, 10k, 100k and 1M subscribers. Prints the indexed/linear ratio of this run at the end.
//!
//! `cargo bench -p atoma-contract --bench sampling` (add `-- --quick` for a faster, rougher run).

mod support;

use std::time::Duration;

use atoma_contract::sampling::Want;
use criterion::{BenchmarkId, Criterion};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::Driver;

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];

fn main() {
    let mut criterion = Criterion::default().configure_from_args().warm_up_time(Duration::from_millis(500));
    let mut group = criterion.benchmark_group("sample_node_for_stack");
    let mut driver = Driver::new();
    let task = driver.create_task();
    let mut have = 0;
    for size in SIZES {
        driver.add_nodes(task, size - have);
        have = size;
        let t = driver.db.task(task).expect("task").clone();
        // Half the subscribers are under the cap; all have capacity for the stack.
        let want = Want { units: 10, price_cap: Some(500), exclude: &[] };
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        group.sample_size(if size >= 100_000 { 10 } else { 50 });
        group.bench_with_input(BenchmarkId::new("indexed", size), &size, |b, _| {
            b.iter(|| driver.db.sample_eligible(&mut rng, &t, &want).expect("eligible"))
        });
        group.bench_with_input(BenchmarkId::new("linear", size), &size, |b, _| {
            b.iter(|| driver.db.linear_sample(&mut rng, &t, &want).expect("eligible"))
        });
    }
    group.finish();
    criterion.final_summary();
    print_ratios();
}

/// Reads criterion's estimates of this run and prints the speed-up of the index.
fn print_ratios() {
    println!("\nsubscribers | indexed (mean) | linear (mean) | linear / indexed");
    println!("----------- | -------------- | ------------- | ----------------");
    for size in SIZES {
        let indexed = support::mean_ns("sample_node_for_stack", "indexed", Some(size));
        let linear = support::mean_ns("sample_node_for_stack", "linear", Some(size));
        if let (Some(i), Some(l)) = (indexed, linear) {
            println!("{size:>11} | {:>14} | {:>13} | {:>15.0}x", show(i), show(l), l / i);
        }
    }
}

fn show(ns: f64) -> String {
    match ns {
        ns if ns < 1_000.0 => format!("{ns:.0} ns"),
        ns if ns < 1_000_000.0 => format!("{:.2} µs", ns / 1_000.0),
        ns => format!("{:.2} ms", ns / 1_000_000.0),
    }
}
