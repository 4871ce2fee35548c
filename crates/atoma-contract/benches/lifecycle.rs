//! The contract alone: full stack lifecycles (buy → settle → claim) in a market of 10k nodes
//! with 100k stacks already open. Prints lifecycles per second at the end.
//!
//! `cargo bench -p atoma-contract --bench lifecycle`

mod support;

use std::time::Duration;

use atoma_contract::call::Call;
use criterion::Criterion;
use support::{Driver, operator};

const NODES: u64 = 10_000;
const OPEN_STACKS: u64 = 100_000;

fn main() {
    let mut driver = Driver::new();
    let task = driver.create_task();
    driver.add_nodes(task, NODES);
    for _ in 0..OPEN_STACKS {
        driver.buy(task, 10, 1_000);
    }
    assert_eq!(driver.db.stacks().count() as u64, OPEN_STACKS);

    let mut criterion = Criterion::default().configure_from_args().warm_up_time(Duration::from_secs(1));
    let mut group = criterion.benchmark_group("lifecycle");
    group.bench_function("buy_settle_claim", |b| {
        b.iter(|| {
            let (stack, node) = driver.buy(task, 10, 1_000);
            let settle = Call::TrySettleStack {
                node,
                stack,
                num_claimed_compute_units: 7,
                committed_stack_proof: vec![1; 32],
                stack_merkle_leaf: vec![2; 32],
                tee_signature: None,
            };
            driver.run(operator(), &settle);
            driver.epoch += 1;
            driver.run(operator(), &Call::ClaimFunds { node, stacks: vec![stack] });
        })
    });
    group.finish();
    criterion.final_summary();
    assert!(driver.db.audit().holds());
    if let Some(ns) = support::mean_ns("lifecycle", "buy_settle_claim", None) {
        println!(
            "\n{NODES} nodes, {OPEN_STACKS} open stacks: {:.1} µs per lifecycle, {:.0} lifecycles/s ({:.0} calls/s)",
            ns / 1_000.0,
            1e9 / ns,
            3.0 * 1e9 / ns
        );
    }
}
