//! A validator set in Commonware's deterministic runtime and simulated network: every honest
//! validator executes the same blocks and reaches the same state (safety), the chain keeps
//! finalizing with up to `f` validators faulty and every valid transaction submitted is executed
//! (liveness), and no proposer knows the seed its block executes with.
//!
//! `ATOMA_VALIDATOR_SEEDS=n` runs each scenario over `n` runtime seeds (default 2).

use std::time::Duration;

use atoma_contract::hash::blake2b256;
use atoma_contract::{Address, Call};
use atoma_types::{Digest, TxStatus};
use atoma_validator::simulation::{SimConfig, SimNetwork};
use commonware_codec::Encode;
use commonware_consensus::marshal::Identifier;
use commonware_consensus::types::{Height, View};
use commonware_p2p::simulated::Link;
use commonware_runtime::{Runner as _, deterministic};
use commonware_utils::probability;

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

/// Sends `count` transfers, round robin over the running validators and the test accounts, and
/// checks each was executed; `nonces` tracks the accounts' next nonces.
async fn traffic(sim: &SimNetwork, count: usize, nonces: &mut [u64]) {
    let running: Vec<usize> = (0..sim.len()).filter(|i| sim.validator(*i).is_some()).collect();
    traffic_via(sim, &running, count, nonces).await;
}

/// [`traffic`] through the validators `running` only.
async fn traffic_via(sim: &SimNetwork, running: &[usize], count: usize, nonces: &mut [u64]) {
    let chain = sim.genesis.digest().0;
    for k in 0..count {
        let account = k % nonces.len();
        let key = &sim.keys.accounts[account];
        let signed = key.sign_call(chain, nonces[account], transfer(account as u8));
        let outcome = sim.submit(running[k % running.len()], signed).await.expect("executed");
        assert_eq!(outcome.status, TxStatus::Success);
        nonces[account] += 1;
    }
}

fn tip(sim: &SimNetwork, i: usize) -> u64 {
    sim.validator(i).expect("running").shared.ledger.tip().height
}

#[test]
fn seven_validators_on_lossy_links_survive_two_crashes() {
    for seed in 0..seeds() {
        runner(100 + seed).start(|context| async move {
            let dir = tempfile::tempdir().expect("a temp dir");
            let mut config = SimConfig::new(7);
            config.link = Link {
                latency: Duration::from_millis(20),
                jitter: Duration::from_millis(15),
                success_rate: probability!(0.95),
            };
            let mut sim = SimNetwork::start(&context, config, dir.path().to_path_buf()).await;
            let mut nonces = vec![0u64; 4];
            traffic(&sim, 6, &mut nonces).await;
            // f = 2: two validators stop uncleanly, the other five keep finalizing.
            sim.crash(5);
            sim.crash(6);
            traffic(&sim, 6, &mut nonces).await;
            let height = tip(&sim, 0) + 3;
            assert!(sim.wait_for_height(&context, height, Duration::from_secs(120)).await);
            sim.restart(&context, 5).await;
            sim.restart(&context, 6).await;
            assert!(
                sim.wait_for_height(&context, height + 3, Duration::from_secs(120)).await,
                "they catch up"
            );
            assert_agree(&sim, height);
        });
    }
}

#[test]
fn a_partition_heals_and_the_cut_off_validator_agrees() {
    for seed in 0..seeds() {
        runner(200 + seed).start(|context| async move {
            let dir = tempfile::tempdir().expect("a temp dir");
            let sim = SimNetwork::start(&context, SimConfig::new(4), dir.path().to_path_buf()).await;
            let mut nonces = vec![0u64; 4];
            traffic(&sim, 4, &mut nonces).await;
            sim.isolate(1).await;
            let cut_at = tip(&sim, 1);
            // Clients of the cut-off validator would wait for the partition to heal; these use
            // the others.
            traffic_via(&sim, &[0, 2, 3], 8, &mut nonces).await;
            let height = tip(&sim, 0);
            assert!(tip(&sim, 1) <= cut_at + 2, "cut off, it cannot follow");
            sim.heal(1).await;
            assert!(
                sim.wait_for_height(&context, height + 2, Duration::from_secs(120)).await,
                "it catches up"
            );
            assert_agree(&sim, height);
        });
    }
}

#[test]
fn a_silent_validator_does_not_stop_the_chain() {
    for seed in 0..seeds() {
        runner(300 + seed).start(|context| async move {
            let dir = tempfile::tempdir().expect("a temp dir");
            let mut sim = SimNetwork::start(&context, SimConfig::new(4), dir.path().to_path_buf()).await;
            // Validator 3 falls silent for good: it never votes and never proposes when it leads.
            sim.crash(3);
            let mut nonces = vec![0u64; 4];
            traffic(&sim, 12, &mut nonces).await;
            let height = tip(&sim, 0);
            assert!(sim.wait_for_height(&context, height + 2, Duration::from_secs(120)).await);
            assert_agree(&sim, height);
        });
    }
}

#[test]
fn no_proposer_knows_the_seed_its_block_executes_with() {
    runner(400).start(|context| async move {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sim = SimNetwork::start(&context, SimConfig::new(4), dir.path().to_path_buf()).await;
        let mut nonces = vec![0u64; 4];
        traffic(&sim, 8, &mut nonces).await;
        assert!(sim.wait_for_height(&context, 12, Duration::from_secs(60)).await);
        let v = sim.validator(0).expect("running");
        let mut checked = 0;
        for i in 0..sim.len() {
            for proposal in sim.validator(i).expect("running").shared.proposals() {
                // Only blocks that were finalized: the one executed at that height has this view.
                let Some(block) = v.marshal.get_block(Identifier::Height(Height::new(proposal.height))).await
                else {
                    continue;
                };
                if block.inner().view.get() != proposal.view || proposal.height > v.shared.ledger.tip().height
                {
                    continue;
                }
                // The block executes with the seed of the view after its own, which no one had
                // when it was proposed: its proposer had seen seeds of earlier views only.
                let seed_view = proposal.view + 1;
                assert!(proposal.newest_seed_view.is_none_or(|seen| seen < seed_view), "{proposal:?}");
                let seed = v.shared.seeds.get(View::new(seed_view)).expect("the seed is known by now");
                let header = v.shared.ledger.header(proposal.height).expect("readable").expect("executed");
                assert_eq!(header.random_seed, blake2b256(&[b"atoma-vrf-seed", &seed.encode()]));
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} finalized proposals checked");
    });
}
