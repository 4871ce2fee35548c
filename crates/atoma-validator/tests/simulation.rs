//! A validator set in Commonware's deterministic runtime and simulated network: every honest
//! validator executes the same blocks and reaches the same state (safety), the chain keeps
//! finalizing with up to `f` validators faulty and every valid transaction submitted is executed
//! (liveness), and no proposer knows the seed its block executes with.
//!
//! `ATOMA_VALIDATOR_SEEDS=n` runs each scenario over `n` runtime seeds (default 2).

use std::time::Duration;

use atoma_contract::{Address, Call};
use atoma_types::{Digest, TxStatus};
use atoma_validator::simulation::{SimConfig, SimNetwork};
use commonware_runtime::{Runner as _, deterministic};

fn seeds() -> u64 {
    std::env::var("ATOMA_VALIDATOR_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2)
}

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new().with_seed(seed).with_timeout(Some(Duration::from_secs(600))),
    )
}

fn transfer(to: u8) -> Call {
    Call::TransferToma { recipient: Address([to; 32]), amount: 1 }
}

/// Every running validator holds the same block at every height up to `height`, and the same
/// state; returns the common state digest.
fn assert_agree(sim: &SimNetwork, height: u64) -> Digest {
    let running: Vec<_> = (0..sim.len()).filter_map(|i| sim.validator(i)).collect();
    assert!(!running.is_empty());
    for h in 1..=height {
        let digests: Vec<Digest> = running
            .iter()
            .map(|v| v.shared.ledger.header(h).expect("readable").expect("executed").digest())
            .collect();
        assert!(digests.windows(2).all(|w| w[0] == w[1]), "block {h} differs: {digests:?}");
    }
    let states: Vec<Digest> = running
        .iter()
        .filter(|v| v.shared.ledger.tip().height == running[0].shared.ledger.tip().height)
        .map(|v| v.shared.ledger.state_digest())
        .collect();
    assert!(states.windows(2).all(|w| w[0] == w[1]), "states differ: {states:?}");
    for v in &running {
        assert!(v.shared.ledger.with_state(|db| db.audit().holds()), "the audit holds");
        assert!(v.shared.halted().is_none() && !v.shared.diverged());
    }
    states[0]
}

#[test]
fn four_validators_agree_and_execute_what_any_of_them_was_sent() {
    for seed in 0..seeds() {
        runner(seed).start(|context| async move {
            let dir = tempfile::tempdir().expect("a temp dir");
            let sim = SimNetwork::start(&context, SimConfig::new(4), dir.path().to_path_buf()).await;
            assert!(sim.wait_for_height(&context, 3, Duration::from_secs(60)).await, "the chain finalizes");
            let chain = sim.genesis.digest().0;
            // Each test account sends through another validator; every one is executed.
            for (k, key) in sim.keys.accounts.iter().enumerate().take(4) {
                let outcome = sim.submit(k % sim.len(), key.sign_call(chain, 0, transfer(k as u8))).await;
                let outcome = outcome.expect("executed");
                assert_eq!(outcome.status, TxStatus::Success);
            }
            let height = sim.validator(0).expect("running").shared.ledger.tip().height;
            assert!(sim.wait_for_height(&context, height + 2, Duration::from_secs(60)).await);
            assert_agree(&sim, height);
        });
    }
}
