//! ed25519 verification on this machine: one `verify_strict` at a time, and
//! `ed25519_dalek::verify_batch` at 64, 256 and 1024 signatures, on one thread, and 1024 split
//! over every core. Prints the rates
//! and the batch/single speed-up measured in this run.
//!
//! `cargo bench -p atoma-ledger --bench verify`

mod support;

use criterion::Criterion;
use support::{BATCH_SIZES, bench_ed25519, ed25519_rates, show_rate};

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("ed25519");
    bench_ed25519(&mut group, &BATCH_SIZES);
    group.finish();
    criterion.final_summary();
    print_summary();
}

fn print_summary() {
    support::print_machine(&support::bench_root());
    println!("\nverification              | signatures/s | vs verify_strict");
    println!("------------------------- | ------------ | ----------------");
    let Some((single, _)) = ed25519_rates(BATCH_SIZES[0]) else { return };
    println!("{:<25} | {:>12} | {:>15.2}x", "verify_strict", show_rate(single), 1.0);
    for n in BATCH_SIZES {
        if let Some((_, batched)) = ed25519_rates(n) {
            let name = format!("verify_batch({n})");
            println!("{name:<25} | {:>12} | {:>15.2}x", show_rate(batched), batched / single);
        }
    }
    let largest = BATCH_SIZES[BATCH_SIZES.len() - 1];
    if let Some(cores) = support::ed25519_cores_rate(largest) {
        let name = format!("verify_batch({largest}), all cores");
        println!("{name:<25} | {:>12} | {:>15.2}x", show_rate(cores), cores / single);
    }
}
