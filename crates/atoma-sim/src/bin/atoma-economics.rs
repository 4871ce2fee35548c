//! `atoma-economics`: what each node strategy earns per stack under the protocol's defaults,
//! played on the real contract over many seeds, beside the formulas of docs/PROTOCOL.md §16.
//! Each row: stacks the strategy's nodes served and their mean profit per stack (± the standard
//! deviation of the per-seed means), requests to attest they got and the profit per request,
//! and how often they were slashed. Profits are in TOMA, net of the off-chain cost of the work.
//!
//! ```text
//! cargo run --release -p atoma-sim --bin atoma-economics -- --seeds 20 --stacks 4000
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use atoma_contract::TOMA;
use atoma_sim::economics::{EconConfig, Outcome, Strategy, expected, play, toma};
use clap::Parser;

/// Plays seeds `0..seeds` of the economic experiment at each stack size.
#[derive(Parser, Debug)]
#[command(name = "atoma-economics", version)]
struct Args {
    /// Seeds per stack size.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Stacks bought per seed.
    #[arg(long, default_value_t = 4_000)]
    stacks: u64,
    /// The base price of the units a stack really uses, in TOMA, one experiment per value.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    stack_toma: Vec<u64>,
    /// Cross-validation probability in permille (default: the protocol's).
    #[arg(long)]
    probability: Option<u64>,
}

fn main() {
    let args = Args::parse();
    for stack_toma in &args.stack_toma {
        let mut econ = EconConfig::for_stack_of(*stack_toma);
        econ.stacks = args.stacks;
        if let Some(p) = args.probability {
            econ.config.cross_validation_probability_permille = p;
        }
        let outcomes = run(&econ, args.seeds);
        print(&econ, *stack_toma, &outcomes);
    }
}

fn run(econ: &EconConfig, seeds: u64) -> Vec<Outcome> {
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= seeds {
                        break;
                    }
                    let outcome = play(seed, econ).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((seed, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|(seed, _)| *seed);
    results.into_iter().map(|(_, o)| o).collect()
}

/// Mean and standard deviation of the values.
fn spread(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn print(econ: &EconConfig, stack_toma: u64, outcomes: &[Outcome]) {
    let c = &econ.config;
    println!(
        "\nstacks whose used units cost {stack_toma} TOMA at the node's price; {} seeds × {} stacks; \
         cross-validation {}‰ with k = {}, collateral {} TOMA, timeout slash {}‰, serving costs {}‰ \
         of the price, owners contest a wrong count {}‰ of the time",
        outcomes.len(),
        econ.stacks,
        c.cross_validation_probability_permille,
        c.cross_validation_extra_nodes_count,
        c.registration_collateral / TOMA,
        c.permille_to_slash_node_on_timeout,
        econ.cost_permille,
        econ.contest_permille
    );
    println!(
        "{:<30} {:>8} {:>22} {:>10} {:>8} {:>22} {:>10} {:>7}",
        "strategy",
        "served",
        "profit per stack",
        "formula",
        "asked",
        "profit per request",
        "formula",
        "caught"
    );
    for strategy in Strategy::ALL {
        let tallies: Vec<_> = outcomes.iter().filter_map(|o| o.tallies.get(&strategy)).collect();
        let served: Vec<f64> = tallies.iter().filter_map(|t| t.per_stack()).collect();
        let requests: Vec<f64> = tallies.iter().filter_map(|t| t.per_request()).collect();
        let caught: u64 = tallies.iter().map(|t| t.slashed).sum();
        let served_n: u64 = tallies.iter().map(|t| t.served).sum();
        let asked_n: u64 = tallies.iter().map(|t| t.requests).sum();
        let (s_mean, s_sd) = spread(&served);
        let (r_mean, r_sd) = spread(&requests);
        let (s_formula, r_formula) = expected(econ, strategy);
        println!(
            "{:<30} {served_n:>8} {:>22} {:>10.3} {asked_n:>8} {:>22} {:>10.3} {caught:>7}",
            strategy.name(),
            format!("{s_mean:.3} ± {s_sd:.3}"),
            s_formula,
            format!("{r_mean:.3} ± {r_sd:.3}"),
            r_formula,
        );
    }
    let griefs: u64 = outcomes.iter().map(|o| o.griefs).sum();
    let overpaid: i128 = outcomes.iter().map(|o| o.grief_overpaid).sum();
    let node: i128 = outcomes.iter().map(|o| o.griefed_node_profit).sum();
    let per = |x: i128| if griefs == 0 { 0.0 } else { toma(x) / griefs as f64 };
    println!(
        "owners who contest right claims: {griefs} contests; the owner paid {:.3} TOMA more per contest, \
         the contested honest node made {:.3} TOMA per contested stack",
        per(overpaid),
        per(node)
    );
}
