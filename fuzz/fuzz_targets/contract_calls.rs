//! Arbitrary call sequences against a small live market (`atoma_fuzz::market`).
//!
//! After every call: no `EInternalPanic` (a panic anywhere aborts the fuzzer anyway), supply is
//! conserved, a dry run gives the same answer as the execution and changes nothing, and a failed
//! call leaves the state digest unchanged. At the end, replaying the same calls from the same
//! start gives the same digest.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Unstructured;
use atoma_contract::ContractError;
use atoma_fuzz::calls::{Step, step};
use atoma_fuzz::market::Market;
use libfuzzer_sys::fuzz_target;

/// At most this many steps per input, so that one input stays fast.
const MAX_STEPS: usize = 64;

/// `ATOMA_FUZZ_STATS=1` prints each call's variant and outcome to stderr, so that replaying a
/// corpus (`-runs=0`) shows how deep the fuzzer got.
fn print_stats() -> bool {
    static STATS: OnceLock<bool> = OnceLock::new();
    *STATS.get_or_init(|| std::env::var_os("ATOMA_FUZZ_STATS").is_some())
}

fn market() -> &'static Market {
    static MARKET: OnceLock<Market> = OnceLock::new();
    MARKET.get_or_init(Market::build)
}

fuzz_target!(|data: &[u8]| {
    let start = market();
    let mut m = start.clone();
    let mut u = Unstructured::new(data);
    let mut log = Vec::new();
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(next) = step(&mut u, &m.db, m.manager_badge) else { break };
        let (sender, call) = match next {
            Step::Epochs(n) => {
                m.clock.advance(n);
                continue;
            }
            Step::Call { sender, call } => (sender, call),
        };
        let ctx = m.clock.next(sender);
        let before = m.db.state_digest();
        let dry = m.db.dry_run(&ctx, &call);
        assert_eq!(m.db.state_digest(), before, "a dry run changed the state: {call:?}");
        let result = m.db.execute(&ctx, &call);
        assert_eq!(dry, result, "dry run and execution disagree on {call:?}");
        match &result {
            Err(ContractError::EInternalPanic) => panic!("the contract panicked on {call:?}"),
            Err(_) => assert_eq!(m.db.state_digest(), before, "a failed call changed the state: {call:?}"),
            Ok(_) => {}
        }
        let audit = m.db.audit();
        assert!(audit.holds(), "supply not conserved after {call:?}: {audit:?}");
        if print_stats() {
            let name = format!("{call:?}");
            let name = name.split([' ', '{', '(']).next().unwrap_or("");
            eprintln!("outcome {name} {}", result.as_ref().map_or_else(|e| e.name(), |_| "ok"));
        }
        log.push((ctx, call));
    }
    let mut replay = start.db.clone();
    for (ctx, call) in &log {
        let _ = replay.execute(ctx, call);
    }
    assert_eq!(replay.state_digest(), m.db.state_digest(), "a replay ended in another state");
});
