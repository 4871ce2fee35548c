//! Memory per node, per subscription and per open stack at 1M of each, measured as the growth of
//! this process's resident set while the contract builds them through its entry functions.
//! Includes the sampling index and allocator overhead: what a validator actually pays.
//!
//! `cargo bench -p atoma-contract --bench memory` (set `ATOMA_MEMORY_N` for another count).

mod support;

use atoma_contract::call::Call;
use atoma_contract::event::Event;
use support::{Driver, operator, resident_bytes};

fn main() {
    let n: u64 = std::env::var("ATOMA_MEMORY_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut driver = Driver::new();
    let task = driver.create_task();
    let start = resident_bytes();

    let mut nodes = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let register = Call::RegisterNode { collateral: 1, supported_optimizations: 0 };
        match &driver.run(operator(), &register)[0] {
            Event::NodeRegisteredEvent(e) => nodes.push(e.node_small_id),
            other => panic!("{other:?}"),
        }
    }
    let after_nodes = resident_bytes();
    for (i, node) in nodes.iter().enumerate() {
        let subscribe = Call::SubscribeNodeToTask {
            node: *node,
            task,
            price_per_compute_unit: 1 + (i as u64) % 1000,
            max_num_compute_units: 1_000,
        };
        driver.run(operator(), &subscribe);
    }
    let after_subscriptions = resident_bytes();
    for _ in 0..n {
        driver.buy(task, 10, 1_000);
    }
    let after_stacks = resident_bytes();
    assert!(driver.db.audit().holds());

    let per = |from: u64, to: u64| to.saturating_sub(from) as f64 / n as f64;
    let total = after_stacks.saturating_sub(start) as f64 / (1u64 << 30) as f64;
    println!("objects: {n} nodes, {n} subscriptions, {n} open stacks");
    println!("bytes per node:         {:>7.0}", per(start, after_nodes));
    println!("bytes per subscription: {:>7.0}", per(after_nodes, after_subscriptions));
    println!("bytes per open stack:   {:>7.0}", per(after_subscriptions, after_stacks));
    println!("total growth:           {total:>7.3} GiB (target < 1 GiB)");
}
