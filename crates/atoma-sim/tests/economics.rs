//! The economic experiment against the formulas of docs/PROTOCOL.md §16: the contract pays each
//! strategy what the formulas say, and under the protocol's defaults every way of cheating
//! loses money on small stacks (where it starts to pay is in the docs, from the
//! `atoma-economics` binary).

use atoma_sim::economics::{EconConfig, Outcome, Strategy, Tally, expected, play};

fn outcomes(econ: &EconConfig, seeds: u64) -> Vec<Outcome> {
    (0..seeds).map(|seed| play(seed, econ).unwrap_or_else(|e| panic!("seed {seed}: {e}"))).collect()
}

/// Mean and standard error of the per-seed values.
fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn per_seed(outcomes: &[Outcome], strategy: Strategy, of: fn(&Tally) -> Option<f64>) -> Vec<f64> {
    outcomes.iter().filter_map(|o| o.tallies.get(&strategy).and_then(of)).collect()
}

#[test]
fn the_contract_pays_each_strategy_what_the_formulas_say() {
    for stack_toma in [10, 1_000] {
        let mut econ = EconConfig::for_stack_of(stack_toma);
        // Cross-validate one settlement in five, so that a few seeds see many of them.
        econ.config.cross_validation_probability_permille = 200;
        econ.stacks = 4_000;
        let outcomes = outcomes(&econ, 12);
        for strategy in Strategy::ALL {
            let (served, request) = expected(&econ, strategy);
            for (what, of, formula) in [
                ("per stack served", Tally::per_stack as fn(&Tally) -> Option<f64>, served),
                ("per request to attest", Tally::per_request as fn(&Tally) -> Option<f64>, request),
            ] {
                let (mean, error) = mean_and_error(&per_seed(&outcomes, strategy, of));
                let tolerance = 4.0 * error + 1e-3 * formula.abs() + 1e-6;
                assert!(
                    (mean - formula).abs() <= tolerance,
                    "{} at {stack_toma} TOMA, {what}: the contract paid {mean:.3} ± {error:.3}, the formula \
                     says {formula:.3}",
                    strategy.name()
                );
            }
        }
    }
}

#[test]
fn under_the_defaults_cheating_loses_on_small_stacks_and_nobody_honest_is_slashed() {
    let mut econ = EconConfig::for_stack_of(10);
    econ.stacks = 4_000;
    let outcomes = outcomes(&econ, 4);
    let pooled = |strategy: Strategy| {
        let mut total = Tally::default();
        for t in outcomes.iter().filter_map(|o| o.tallies.get(&strategy)) {
            total.served += t.served;
            total.served_profit += t.served_profit;
            total.requests += t.requests;
            total.request_profit += t.request_profit;
            total.slashed += t.slashed;
        }
        total
    };
    let honest = pooled(Strategy::Honest);
    assert_eq!(honest.slashed, 0, "an honest node was slashed");
    let honest_stack = honest.per_stack().expect("honest nodes served");
    for cheat in [Strategy::Overclaims, Strategy::FakesOutputs, Strategy::Colludes] {
        let per_stack = pooled(cheat).per_stack().expect("the cheat served");
        assert!(
            per_stack < honest_stack,
            "{} made {per_stack:.3} a stack, honest {honest_stack:.3}",
            cheat.name()
        );
    }
    let never = pooled(Strategy::NeverAttests).per_request().expect("the no-show was asked");
    let attester = honest.per_request().expect("honest nodes were asked");
    assert!(never < attester, "never attesting made {never:.3} a request, attesting {attester:.3}");
    let griefs: u64 = outcomes.iter().map(|o| o.griefs).sum();
    let overpaid: i128 = outcomes.iter().map(|o| o.grief_overpaid).sum();
    assert!(
        griefs > 0 && overpaid == 0,
        "{griefs} contests of right claims changed what the owner paid by {overpaid}"
    );
}
