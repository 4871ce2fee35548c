//! The auditor's checks can fail: fed a block whose reported effects were tampered with, or an
//! expectation the outcome does not meet, it reports the difference.

use atoma_contract::event::Event;
use atoma_contract::{Call, ContractError, TOMA};
use atoma_ledger::{ApplyOutcome, BlockEffects, Ledger, LedgerOptions, Sequencer};
use atoma_sim::actors::Cast;
use atoma_sim::checks::{AppliedBlock, Auditor};
use atoma_sim::plan::{Expect, Planned};
use atoma_sim::report::Report;
use atoma_sim::rng::SimRng;
use atoma_types::TxStatus;

struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    cast: Cast,
    genesis: atoma_ledger::GenesisConfig,
    block: atoma_types::Block,
    effects: BlockEffects,
    planned: Vec<Planned>,
    tip_before: atoma_ledger::Tip,
}

/// A ledger with one applied block: actor 1 sends TOMA to actor 2.
fn fixture() -> Fixture {
    let mut rng = SimRng::new(1);
    let cast = Cast::new(&mut rng);
    let genesis = cast.genesis(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let made = genesis.clone();
    let ledger =
        Ledger::open_or_create(&dir.path().join("chain.redb"), LedgerOptions::default(), || Ok(made))
            .unwrap();
    let mut sequencer = Sequencer::new(cast.validator.clone(), genesis.epoch_duration_ms, 100, 100);
    let call = Call::TransferToma { recipient: cast.actors[2].address, amount: TOMA };
    let signed = cast.actors[1].key.sign_call(genesis.digest().0, 0, call.clone());
    sequencer.admit(signed.verify(&genesis.digest().0).unwrap(), 0).unwrap();
    let tip_before = ledger.tip();
    let block = sequencer.propose(&tip_before, genesis.timestamp_ms + 1);
    let ApplyOutcome::Applied(effects) = ledger.apply_block(&block).unwrap() else { panic!("not applied") };
    let planned = vec![Planned { actor: 1, call, expect: Expect::Anything }];
    Fixture { _dir: dir, ledger, cast, genesis, block, effects, planned, tip_before }
}

impl Fixture {
    fn audit(&self, effects: &BlockEffects, planned: &[Planned], forced_epoch: bool) -> Result<(), String> {
        let addresses = self.cast.actors.iter().map(|a| a.address);
        let mut auditor = Auditor::new(&self.genesis, addresses, SimRng::new(2), 1000).unwrap();
        let block =
            AppliedBlock { block: &self.block, effects, planned, tip_before: self.tip_before, forced_epoch };
        auditor.after_block(&self.ledger, &block, &mut Report::default())
    }
}

#[test]
fn the_true_effects_pass() {
    let f = fixture();
    assert_eq!(f.audit(&f.effects, &f.planned, false), Ok(()));
}

#[test]
fn a_tampered_status_is_caught() {
    let f = fixture();
    let mut effects = f.effects.clone();
    effects.outcomes[0].status = TxStatus::Failure(ContractError::ENotAuthorized);
    assert!(f.audit(&effects, &f.planned, false).unwrap_err().contains("shadow success"));
}

#[test]
fn a_tampered_event_is_caught() {
    let f = fixture();
    let mut effects = f.effects.clone();
    let Event::TomaTransferredEvent(e) = &mut effects.outcomes[0].events[0].event else {
        panic!("a transfer")
    };
    e.amount += 1;
    assert!(f.audit(&effects, &f.planned, false).unwrap_err().contains("events differ"));
}

#[test]
fn an_unmet_expectation_is_caught() {
    let f = fixture();
    let mut planned = f.planned.clone();
    planned[0].expect = Expect::Failure;
    assert!(f.audit(&f.effects, &planned, false).unwrap_err().contains("expected Failure"));
}

#[test]
fn an_epoch_that_should_have_moved_is_caught() {
    let f = fixture();
    assert!(f.audit(&f.effects, &f.planned, true).unwrap_err().contains("expected 1"));
}
