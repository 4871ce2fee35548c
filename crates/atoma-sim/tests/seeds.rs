//! The simulator in CI: a fixed set of seeds must keep every invariant and, together, reach the
//! paths that matter (claims, resolved and expired disputes, reclaimed stacks, slashes, refused
//! parameters, crashes and restarts, refused transactions and blocks).
//!
//! `ATOMA_SIM_SEEDS` and `ATOMA_SIM_TXS` run it longer, e.g.
//! `ATOMA_SIM_SEEDS=64 ATOMA_SIM_TXS=5000 cargo test --release -p atoma-sim`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use atoma_sim::{Report, SimConfig, run};

/// Seeds in the default set.
const SEEDS: u64 = 8;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `seeds` seeds from 0 on two threads; panics with the failure (seed and command) if any
/// seed breaks an invariant.
fn run_seeds(seeds: u64, config: &SimConfig) -> Vec<Report> {
    let next = AtomicU64::new(0);
    let reports = Mutex::new(Vec::new());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= seeds {
                        break;
                    }
                    match run(seed, config) {
                        Ok(report) => reports.lock().unwrap().push(report),
                        Err(failure) => failures.lock().unwrap().push(failure.to_string()),
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut reports = reports.into_inner().unwrap();
    reports.sort_by_key(|r| r.seed);
    reports
}

#[test]
fn fixed_seeds_keep_every_invariant_and_reach_the_interesting_paths() {
    let seeds = env("ATOMA_SIM_SEEDS", SEEDS);
    let default = SimConfig::default();
    let config = SimConfig { transactions: env("ATOMA_SIM_TXS", default.transactions), ..default };
    let reports = run_seeds(seeds, &config);
    let mut total = Report::default();
    for report in &reports {
        assert_eq!(report.crashes, u64::from(config.crashes), "seed {}: every crash survived", report.seed);
        assert!(report.checks > 0 && report.blocks > 0, "seed {} did nothing", report.seed);
        total.merge(report);
    }
    eprintln!("{} seeds × {} transactions:\n{}", seeds, config.transactions, total.details());
    if seeds < SEEDS {
        return;
    }
    let refused_parameters = total.count("Admin::SetParameter", "EInvalidParameter")
        + total.count("Admin::SetParameter", "ETotalPermilleMustBeLessThan1000");
    for (what, n) in [
        ("a claim", total.event("StackSettlementTicketClaimedEvent")),
        ("a resolved dispute", total.event("StackDisputeResolvedEvent")),
        ("an expired dispute", total.event("StackDisputeExpiredEvent")),
        ("a reclaimed expired stack", total.event("StackExpiredEvent")),
        ("an attestation", total.event("NewStackSettlementAttestationEvent")),
        ("an attestation dispute", total.event("StackAttestationDisputeEvent")),
        ("a contest of units", total.event("StackUnitsContestedEvent")),
        ("a slash", total.event("NodeSlashedEvent")),
        ("a key rotation", total.event("NewKeyRotationEvent")),
        ("a node endpoint", total.event("NodeEndpointSetEvent")),
        ("a refused endpoint", total.count("SetNodeEndpoint", "EInvalidEndpoint")),
        ("a refused invalid parameter", refused_parameters),
        ("a crash and restart", total.crashes),
        ("a refused transaction", total.rejected_total()),
        ("a refused block", total.refused_blocks_total()),
        ("a redelivered block", total.redelivered_blocks),
        ("an honest attestation past the epoch rule", total.punctuality.kept_open_by_floor),
    ] {
        assert!(n > 0, "the fixed seeds never reached {what}:\n{}", total.details());
    }
}

#[test]
fn a_seed_always_gives_the_same_run() {
    let config = SimConfig { transactions: 500, crashes: 1, ..SimConfig::default() };
    let first = run(11, &config).unwrap_or_else(|f| panic!("{f}"));
    let again = run(11, &config).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(first, again, "same seed, same blocks, same state");
    let other = run(12, &config).unwrap_or_else(|f| panic!("{f}"));
    assert_ne!(first.tip_digest, other.tip_digest);
    assert_ne!(first.state_digest, other.state_digest);
}
