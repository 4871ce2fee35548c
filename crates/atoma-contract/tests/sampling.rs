//! Sampling (SPEC §8): exactly uniform over the eligible set, for the index and the linear
//! reference, including the exact fallback and unique sampling with too few nodes.

mod common;

use std::collections::BTreeMap;

use atoma_contract::call::{AdminOp, Call};
use atoma_contract::sampling::Want;
use atoma_contract::{NodeSmallId, TaskSmallId};
use common::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// χ² critical value for 19 degrees of freedom at p = 0.001.
const CHI2_19_P001: f64 = 43.82;

/// A task with `eligible` nodes at price 5 / 100 units, plus one node of each ineligible kind:
/// too expensive, too small, disabled, slashed to zero collateral. Returns the eligible ids.
fn market(w: &mut World, eligible: u8) -> (TaskSmallId, Vec<NodeSmallId>) {
    let task = w.create_task(addr(2), 0, None);
    let mut good = Vec::new();
    for i in 0..eligible {
        let owner = addr(i % 40);
        let node = w.register_node(owner);
        w.subscribe(owner, node, task, 5, 100);
        good.push(node);
    }
    let expensive = w.register_node(addr(1));
    w.subscribe(addr(1), expensive, task, 50, 100);
    let small = w.register_node(addr(1));
    w.subscribe(addr(1), small, task, 5, 10);
    let disabled = w.register_node(addr(1));
    w.subscribe(addr(1), disabled, task, 5, 100);
    w.ok(addr(1), Call::PermanentlyDisableNode { node: disabled });
    // Slash a node to zero by letting every stack it is selected for expire with a 100% penalty.
    w.admin_ok(AdminOp::SetParameter {
        parameter: atoma_contract::Parameter::PermilleToSlashNodeOnTimeout,
        value: 1000,
    });
    let broke_task = w.create_task(addr(2), 0, None);
    let broke = w.register_node(addr(1));
    w.subscribe(addr(1), broke, broke_task, 5, 100);
    w.subscribe(addr(1), broke, task, 5, 100);
    let (stack, _) = w.buy(addr(3), broke_task, 1, 5);
    w.advance_epochs(7);
    w.ok(addr(3), Call::ReclaimExpiredStack { stack });
    assert_eq!(w.db.node(broke).unwrap().collateral, 0);
    (task, good)
}

fn chi_square(counts: &BTreeMap<NodeSmallId, u64>, expected_each: f64) -> f64 {
    counts.values().map(|&c| (c as f64 - expected_each).powi(2) / expected_each).sum()
}

fn draw_many(
    w: &World,
    task: TaskSmallId,
    want: &Want<'_>,
    draws: u64,
    linear: bool,
) -> BTreeMap<NodeSmallId, u64> {
    let task = w.db.task(task).unwrap();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut counts = BTreeMap::new();
    for _ in 0..draws {
        let node = if linear {
            w.db.linear_sample(&mut rng, task, want)
        } else {
            w.db.sample_eligible(&mut rng, task, want)
        };
        *counts.entry(node.expect("someone is eligible")).or_insert(0) += 1;
    }
    counts
}

#[test]
fn indexed_and_linear_sampling_are_uniform_over_the_same_eligible_set() {
    let mut w = World::new();
    let (task, good) = market(&mut w, 20);
    let want = Want { units: 50, price_cap: Some(10), exclude: &[] };
    let t = w.db.task(task).unwrap();
    assert_eq!(w.db.linear_eligible(t, &want), good);

    let draws = 40_000;
    for linear in [false, true] {
        let counts = draw_many(&w, task, &want, draws, linear);
        assert_eq!(counts.keys().copied().collect::<Vec<_>>(), good, "only eligible nodes are drawn");
        let chi2 = chi_square(&counts, draws as f64 / 20.0);
        assert!(chi2 < CHI2_19_P001, "linear={linear}: χ² = {chi2:.1} over 19 degrees of freedom");
    }
}

#[test]
fn the_exact_fallback_stays_uniform_when_most_draws_are_rejected() {
    let mut w = World::new();
    let task = w.create_task(addr(2), 0, None);
    // 200 cheap nodes that cannot serve 50 units, and 3 that can, all in the price prefix.
    for i in 0..200u32 {
        let owner = addr((i % 40) as u8);
        let node = w.register_node(owner);
        w.subscribe(owner, node, task, 5, 10);
    }
    let mut able = Vec::new();
    for _ in 0..3 {
        let node = w.register_node(addr(5));
        w.subscribe(addr(5), node, task, 5, 100);
        able.push(node);
    }
    let want = Want { units: 50, price_cap: Some(5), exclude: &[] };
    let draws = 6_000;
    let counts = draw_many(&w, task, &want, draws, false);
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), able);
    let chi2 = chi_square(&counts, draws as f64 / 3.0);
    // χ² critical value for 2 degrees of freedom at p = 0.001.
    assert!(chi2 < 13.82, "χ² = {chi2:.1}");
}

#[test]
fn unique_sampling_returns_everyone_when_too_few_are_eligible_and_terminates() {
    let mut w = World::new();
    let (task, good) = market(&mut w, 4);
    let t = w.db.task(task).unwrap();
    let exclude = [good[0]];
    let want = Want { units: 50, price_cap: None, exclude: &exclude };
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut picked = w.db.sample_unique(&mut rng, t, &want, 10);
    picked.sort();
    // Attesters ignore the price cap, so the expensive node joins the three others.
    let expensive = NodeSmallId(good[3].0 + 1);
    assert_eq!(picked, vec![good[1], good[2], good[3], expensive]);
    assert!(w.db.sample_unique(&mut rng, t, &want, 0).is_empty());
}

#[test]
fn every_pair_of_attesters_is_equally_likely() {
    let mut w = World::new();
    let (task, good) = market(&mut w, 5);
    let t = w.db.task(task).unwrap();
    let want = Want { units: 50, price_cap: Some(5), exclude: &[] };
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut counts: BTreeMap<(NodeSmallId, NodeSmallId), u64> = BTreeMap::new();
    let draws = 20_000u64;
    for _ in 0..draws {
        let mut pair = w.db.sample_unique(&mut rng, t, &want, 2);
        assert_eq!(pair.len(), 2);
        assert_ne!(pair[0], pair[1]);
        pair.sort();
        *counts.entry((pair[0], pair[1])).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 10, "C(5, 2) pairs, all from {good:?}");
    let expected = draws as f64 / 10.0;
    let chi2: f64 = counts.values().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
    // χ² critical value for 9 degrees of freedom at p = 0.001.
    assert!(chi2 < 27.88, "χ² = {chi2:.1}");
}
