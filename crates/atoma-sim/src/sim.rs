//! The driver: builds blocks as the validator does, applies them, crashes and restarts.

use std::path::PathBuf;

use atoma_ledger::{
    ApplyOutcome, ChainError, GenesisConfig, Ledger, LedgerError, LedgerOptions, Sequencer, Tip,
    VerifiedBlock,
};
use atoma_types::block::MAX_BLOCK_TRANSACTIONS;
use atoma_types::{Block, Digest, SignedTransaction};
use tempfile::TempDir;

use crate::SimConfig;
use crate::actors::Cast;
use crate::checks::{AppliedBlock, Auditor};
use crate::faults::{BlockFaults, TxFaults};
use crate::plan::{Planned, View, plan_block};
use crate::report::{Failure, Report};
use crate::rng::SimRng;

/// The open ledger, borrowed through its field only (so that other fields stay free), or a
/// failure while it is closed.
macro_rules! ledger {
    ($sim:ident) => {
        $sim.ledger.as_ref().ok_or_else(|| $sim.failure("the ledger is closed".into()))?
    };
}

/// The sequencer's mempool bound; far above what one simulated block admits.
const MEMPOOL_CAPACITY: usize = 10_000;

/// One run in progress.
pub(crate) struct Simulation {
    seed: u64,
    config: SimConfig,
    rng: SimRng,
    cast: Cast,
    genesis: GenesisConfig,
    chain_id: [u8; 32],
    /// Holds the data directory until the run ends.
    _dir: TempDir,
    path: PathBuf,
    /// `None` only while crashed.
    ledger: Option<Ledger>,
    sequencer: Sequencer,
    now_ms: u64,
    auditor: Auditor,
    report: Report,
    submitted: u64,
    /// Values of `submitted` after which to crash, ascending.
    crash_at: Vec<u64>,
    /// The transactions of the last applied block, for replays.
    recent: Vec<SignedTransaction>,
}

impl Simulation {
    /// The genesis, the cast and a fresh ledger in a temp dir, all drawn from `seed`.
    pub(crate) fn start(seed: u64, config: &SimConfig) -> Result<Self, Failure> {
        let fail = |message: String| Failure { seed, config: config.clone(), height: 0, message };
        let mut rng = SimRng::new(seed);
        let cast = Cast::new(&mut rng);
        let genesis = cast.genesis(&mut rng);
        let dir = tempfile::tempdir().map_err(|e| fail(format!("temp dir: {e}")))?;
        let path = dir.path().join("chain.redb");
        let options = ledger_options(&mut rng);
        let made = genesis.clone();
        let ledger =
            Ledger::open_or_create(&path, options, || Ok(made)).map_err(|e| fail(format!("open: {e}")))?;
        let chain_id = genesis.digest().0;
        if ledger.params().chain_id != chain_id {
            return Err(fail("the ledger's chain id is not the genesis digest".into()));
        }
        let mut crash_at: Vec<u64> = (0..config.crashes)
            .map(|_| rng.range(config.transactions / 5, config.transactions * 4 / 5))
            .collect();
        crash_at.sort_unstable();
        let auditor_rng = SimRng::new(rng.next_u64());
        let addresses = cast.actors.iter().map(|a| a.address);
        let auditor = Auditor::new(&genesis, addresses, auditor_rng, config.failed_digest_permille)
            .map_err(fail)?
            .with_roles(seed, cast.actors.iter().map(|a| (a.address, a.role)));
        let sequencer = new_sequencer(&cast, &genesis);
        Ok(Simulation {
            seed,
            config: config.clone(),
            now_ms: genesis.timestamp_ms,
            rng,
            cast,
            chain_id,
            genesis,
            _dir: dir,
            path,
            ledger: Some(ledger),
            sequencer,
            auditor,
            report: Report { seed, ..Report::default() },
            submitted: 0,
            crash_at,
            recent: Vec::new(),
        })
    }

    /// Runs blocks until the configured number of transactions was submitted, then checks the
    /// final state against a replay from genesis.
    pub(crate) fn run(mut self) -> Result<Report, Failure> {
        while self.submitted < self.config.transactions {
            self.step()?;
        }
        let ledger = ledger!(self);
        let result = self.auditor.check_replay(ledger);
        let tip = ledger.tip();
        let digest = ledger.state_digest();
        result.map_err(|m| self.failure(m))?;
        self.report.blocks = tip.height;
        self.report.epochs = tip.epoch;
        self.report.state_digest = digest;
        self.report.tip_digest = tip.digest;
        self.report.checks = self.auditor.checks;
        self.report.punctuality = self.auditor.punctuality;
        Ok(self.report)
    }

    fn failure(&self, message: String) -> Failure {
        let height = self.ledger.as_ref().map_or(0, |l| l.tip().height);
        Failure { seed: self.seed, config: self.config.clone(), height, message }
    }

    fn crash_due(&self) -> bool {
        self.crash_at.first().is_some_and(|at| self.submitted >= *at)
    }

    /// One block: plan, submit (with bad submissions mixed in), propose, offer corrupted
    /// variants, apply, check; sometimes redeliver; crash when due.
    fn step(&mut self) -> Result<(), Failure> {
        let lose_block = self.crash_due() && self.rng.chance(500);
        let tip_before = ledger!(self).tip();
        let (verified, planned, forced_epoch) = self.build_block(&tip_before)?;
        let block = verified.to_block();
        if lose_block {
            self.report.lost_transactions += block.transactions.len() as u64;
            return self.crash();
        }
        if self.rng.chance(80) {
            self.offer_bad_blocks(&block)?;
        }
        // Half the blocks go the way the node's own producer applies them (verified once, when
        // admitted), half the way a block from elsewhere arrives (verified again, whole).
        let own = self.rng.chance(500);
        let ledger = ledger!(self);
        let applied = if own { ledger.apply_verified(&verified) } else { ledger.apply_block(&block) };
        let effects = match applied {
            Ok(ApplyOutcome::Applied(effects)) => effects,
            other => {
                return Err(self.failure(format!("block {} not applied: {other:?}", block.header.height)));
            }
        };
        self.sequencer.settle(|sender| ledger.next_nonce(sender));
        let applied =
            AppliedBlock { block: &block, effects: &effects, planned: &planned, tip_before, forced_epoch };
        let checked = self.auditor.after_block(ledger, &applied, &mut self.report);
        checked.map_err(|m| self.failure(m))?;
        self.recent = block.transactions;
        if self.rng.chance(40) {
            self.redeliver()?;
        }
        if self.crash_due() {
            self.crash()?;
        }
        Ok(())
    }

    /// Plans the actors' calls, signs them with their next nonces and submits them through the
    /// same checks a validator applies (bad submissions interleaved), moves the clock, and has
    /// the sequencer propose the block.
    fn build_block(&mut self, tip: &Tip) -> Result<(VerifiedBlock, Vec<Planned>, bool), Failure> {
        // Actors read the applied state; the fields are borrowed apart so that the generator
        // can be drawn from while the ledger's state is read-locked.
        let Simulation { ledger, rng, cast, seed, .. } = self;
        let Some(ledger) = ledger.as_ref() else { return Err(self.failure("the ledger is closed".into())) };
        // The next block's time is drawn first: actors plan for the block their calls land in.
        let now_ms = self.now_ms + tick(rng, self.genesis.epoch_duration_ms);
        let (epoch, seed) = (tip.epoch, *seed);
        let planned = ledger.with_state(|db| plan_block(&View { db, epoch, now_ms, seed, cast }, rng));
        let bad_count = if self.rng.chance(400) { self.rng.range(1, 3) } else { 0 };
        let mut bad_at: Vec<usize> = (0..bad_count).map(|_| self.rng.index(planned.len() + 1)).collect();
        bad_at.sort_unstable();
        let mut pending: Vec<SignedTransaction> = Vec::new();
        for (position, plan) in planned.iter().enumerate() {
            while bad_at.first() == Some(&position) {
                bad_at.remove(0);
                self.submit_bad(&pending)?;
            }
            let actor = &self.cast.actors[plan.actor];
            let applied = ledger!(self).next_nonce(&actor.address);
            let nonce = self.sequencer.mempool.expected_nonce(&actor.address, applied);
            let signed = actor.key.sign_call(self.chain_id, nonce, plan.call.clone());
            if let Err(e) = self.admit(&signed.to_bytes()) {
                return Err(self.failure(format!("a valid transaction was refused: {e} ({:?})", plan.call)));
            }
            pending.push(signed);
            self.submitted += 1;
        }
        for _ in bad_at {
            self.submit_bad(&pending)?;
        }
        self.now_ms = now_ms;
        let forced_epoch = self.rng.chance(30);
        if forced_epoch {
            self.sequencer.proposer.force_next_epoch();
        }
        let block = self.sequencer.propose_verified(tip, self.now_ms);
        if block.transactions().iter().map(|t| t.signed()).ne(pending.iter()) {
            return Err(self.failure("the proposed block is not the admitted transactions in order".into()));
        }
        Ok((block, planned, forced_epoch))
    }

    /// The validator's admission path: decode, verify, check the nonce, enter the mempool.
    fn admit(&mut self, bytes: &[u8]) -> Result<(), LedgerError> {
        let tx = SignedTransaction::from_bytes(bytes)?.verify(&self.chain_id)?;
        let applied = self.ledger.as_ref().map_or(0, |l| l.next_nonce(&tx.sender()));
        self.sequencer.admit(tx, applied)
    }

    /// Submits one transaction the ledger must refuse, and checks that it was refused with the
    /// right error and left the mempool and the nonces alone.
    fn submit_bad(&mut self, pending: &[SignedTransaction]) -> Result<(), Failure> {
        let adversary = self.cast.actors[self.cast.adversary()].clone();
        let applied = ledger!(self).next_nonce(&adversary.address);
        let next_nonce = self.sequencer.mempool.expected_nonce(&adversary.address, applied);
        let faults = TxFaults {
            chain_id: self.chain_id,
            key: &adversary.key,
            next_nonce,
            recent: &self.recent,
            pending,
        };
        let bad = faults.draw(&mut self.rng);
        let mempool = self.sequencer.mempool.queue_len();
        let outcome = self.admit(&bad.bytes);
        self.auditor.checks += 1;
        match outcome {
            Err(e) if e.name() == bad.expected => {}
            other => {
                return Err(self
                    .failure(format!("{} must be refused with {}, got {other:?}", bad.kind, bad.expected)));
            }
        }
        let after = self.sequencer.mempool.expected_nonce(&adversary.address, applied);
        self.auditor.checks += 1;
        if self.sequencer.mempool.queue_len() != mempool || after != next_nonce {
            return Err(self.failure(format!("the refused {} changed the mempool or a nonce", bad.kind)));
        }
        *self.report.rejected.entry(bad.kind).or_default() += 1;
        self.submitted += 1;
        Ok(())
    }

    /// Offers corrupted variants of `block` first; each must be refused whole.
    fn offer_bad_blocks(&mut self, block: &Block) -> Result<(), Failure> {
        let ledger = ledger!(self);
        let tip = ledger.tip();
        let faults = BlockFaults { block, ledger, tip };
        let variants = faults.draw(&mut self.rng);
        if variants.is_empty() {
            return Ok(());
        }
        let digest = ledger.state_digest();
        for (kind, bad) in variants {
            // A corrupted header over good transactions also goes through the verified path.
            let verified =
                VerifiedBlock::verify(bad.clone(), ledger.params()).ok().filter(|_| self.rng.chance(500));
            let outcome = match &verified {
                Some(verified) => ledger.apply_verified(verified),
                None => ledger.apply_block(&bad),
            };
            match outcome {
                Err(ChainError::Refused(LedgerError::EInvalidBlock(_))) => {}
                other => {
                    return Err(self.failure(format!("a block with {kind} must be refused, got {other:?}")));
                }
            }
            *self.report.refused_blocks.entry(kind).or_default() += 1;
        }
        self.auditor.checks += 1;
        if ledger.tip() != tip || ledger.state_digest() != digest {
            return Err(self.failure("a refused block changed the ledger".into()));
        }
        Ok(())
    }

    /// Delivers an applied block again (the last one or an older one): a no-op.
    fn redeliver(&mut self) -> Result<(), Failure> {
        let ledger = ledger!(self);
        let tip = ledger.tip();
        if tip.height == 0 {
            return Ok(());
        }
        let height = if self.rng.chance(500) { tip.height } else { self.rng.range(1, tip.height) };
        let block = ledger.block(height).ok().flatten();
        let Some(block) = block else { return Err(self.failure(format!("block {height} is not stored"))) };
        self.auditor.checks += 1;
        match ledger.apply_block(&block) {
            Ok(ApplyOutcome::AlreadyApplied) => {}
            other => return Err(self.failure(format!("redelivered block {height}: {other:?}"))),
        }
        self.report.redelivered_blocks += 1;
        Ok(())
    }

    /// Drops the ledger and the sequencer (its mempool and any unapplied block are lost), reopens
    /// the ledger from its directory with another snapshot interval, and checks that it
    /// recovered the last committed block and state; sometimes redelivers that block.
    fn crash(&mut self) -> Result<(), Failure> {
        self.crash_at.remove(0);
        let ledger = ledger!(self);
        let (tip, digest): (Tip, Digest) = (ledger.tip(), ledger.state_digest());
        drop(self.ledger.take());
        self.sequencer = new_sequencer(&self.cast, &self.genesis);
        let options = ledger_options(&mut self.rng);
        let reopened = Ledger::open(&self.path, options).map_err(|e| self.failure(format!("reopen: {e}")))?;
        let recovered = self.auditor.check_recovered(&reopened, tip, digest);
        self.ledger = Some(reopened);
        recovered.map_err(|m| self.failure(format!("after the restart: {m}")))?;
        self.report.crashes += 1;
        if self.rng.chance(500) {
            let ledger = ledger!(self);
            let last = ledger.block(tip.height).ok().flatten();
            self.auditor.checks += 1;
            if let Some(block) = last.filter(|_| tip.height > 0)
                && !matches!(ledger.apply_block(&block), Ok(ApplyOutcome::AlreadyApplied))
            {
                return Err(
                    self.failure("the last block, delivered again after the restart, was not a no-op".into())
                );
            }
        }
        Ok(())
    }
}

/// Snapshot intervals drawn per (re)open: recovery must not depend on them.
fn ledger_options(rng: &mut SimRng) -> LedgerOptions {
    LedgerOptions { snapshot_interval: rng.range(3, 40), event_buffer: 16 }
}

fn new_sequencer(cast: &Cast, genesis: &GenesisConfig) -> Sequencer {
    Sequencer::new(
        cast.validator.clone(),
        genesis.epoch_duration_ms,
        MEMPOOL_CAPACITY,
        MAX_BLOCK_TRANSACTIONS,
    )
}

/// The time between two blocks: mostly a fraction of an epoch, sometimes a long pause.
fn tick(rng: &mut SimRng, epoch_ms: u64) -> u64 {
    match rng.below(20) {
        0..=13 => rng.range(epoch_ms / 10, epoch_ms / 4),
        14..=18 => rng.range(epoch_ms / 4, epoch_ms / 2),
        _ => rng.range(epoch_ms, 2 * epoch_ms),
    }
}
