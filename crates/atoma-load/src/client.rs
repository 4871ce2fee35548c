//! One load client: its keys ("lanes", each with its own nonce sequence), a plan that says what
//! each lane sends next, and the loop that keeps `pipeline` transactions in flight per lane.
//!
//! A lane signs nonces n, n+1, … without waiting for answers. If one of its transactions ends
//! without being executed, the later ones can never be ordered (they would leave a gap), so the
//! lane stops sending, lets what is in flight finish, and asks the node for its next nonce.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use atoma_api::rpc::TransactionResult;
use atoma_contract::{Address, Call, NodeSmallId, StackSmallId, TaskSmallId};
use atoma_types::Keypair;
use tokio::task::JoinSet;

use crate::histogram::Histogram;
use crate::report::{Answered, CallCounts};
use crate::submit::{Answer, Shared, Submitter};

/// Compute units of each stack the mix buys, and how many of them its node settles.
pub(crate) const STACK_UNITS: u64 = 100;
pub(crate) const SETTLED_UNITS: u64 = 50;
/// Stacks per `ClaimFunds` in the mix, at most.
const CLAIM_BATCH: usize = 16;
/// Settles between two claims at most, while something is claimable.
const SETTLES_PER_CLAIM: usize = 4;

/// What each lane sends next.
pub(crate) trait Plan: Send {
    /// The next call for `lane`, or `None` when it has nothing to send now.
    fn next(&mut self, lane: usize) -> Option<Call>;
    /// The chain executed `call` (sent by `lane`) with `result`.
    fn answered(&mut self, lane: usize, call: &Call, result: &TransactionResult);
    /// `call` (sent by `lane`) was never executed.
    fn refused(&mut self, _lane: usize, _call: &Call) {}
}

/// A key and its nonces.
pub(crate) struct Lane {
    pub(crate) key: Keypair,
    pub(crate) nonce: u64,
    in_flight: usize,
    /// A transaction of this lane was not executed: resynchronize the nonce once idle.
    broken: bool,
}

impl Lane {
    pub(crate) fn new(key: Keypair, nonce: u64) -> Self {
        Lane { key, nonce, in_flight: 0, broken: false }
    }
}

/// What one client measured.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) latency: Histogram,
    pub(crate) calls: BTreeMap<&'static str, CallCounts>,
    pub(crate) results: Vec<Answered>,
    pub(crate) last_answer: Option<Instant>,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        for (name, c) in other.calls {
            let mine = self.calls.entry(name).or_default();
            mine.sent += c.sent;
            mine.succeeded += c.succeeded;
            mine.failed += c.failed;
        }
        self.results.extend(other.results);
        self.last_answer = self.last_answer.max(other.last_answer);
    }
}

pub(crate) fn call_name(call: &Call) -> &'static str {
    match call {
        Call::TransferToma { .. } => "TransferToma",
        Call::AcquireNewStack { .. } => "AcquireNewStack",
        Call::TrySettleStack { .. } => "TrySettleStack",
        Call::ClaimFunds { .. } => "ClaimFunds",
        Call::RegisterNode { .. } => "RegisterNode",
        Call::CreateTask { .. } => "CreateTask",
        Call::SubscribeNodeToTask { .. } => "SubscribeNodeToTask",
        _ => "other",
    }
}

/// What a finished transaction reports back to the loop.
struct Done {
    lane: usize,
    call: Call,
    nonce: u64,
    sent_at: Instant,
    answer: Answer,
}

/// Runs one client until the run's tickets are gone and its transactions are answered.
pub(crate) async fn drive(
    submitter: Submitter,
    shared: Arc<Shared>,
    chain_id: [u8; 32],
    mut lanes: Vec<Lane>,
    mut plan: Box<dyn Plan>,
    pipeline: usize,
    record_results: bool,
) -> Tally {
    let mut tally = Tally::default();
    let mut in_flight: JoinSet<Done> = JoinSet::new();
    let mut out_of_tickets = false;
    loop {
        for (index, lane) in lanes.iter_mut().enumerate() {
            while !out_of_tickets && !lane.broken && lane.in_flight < pipeline {
                let Some(call) = plan.next(index) else { break };
                if !shared.take_ticket() {
                    out_of_tickets = true;
                    break;
                }
                tally.calls.entry(call_name(&call)).or_default().sent += 1;
                let signed = lane.key.sign_call(chain_id, lane.nonce, call.clone());
                let (nonce, submitter, sent_at) = (lane.nonce, submitter.clone(), Instant::now());
                lane.nonce += 1;
                lane.in_flight += 1;
                in_flight.spawn(async move {
                    let answer = submitter.submit(&signed).await;
                    Done { lane: index, call, nonce, sent_at, answer }
                });
            }
        }
        let Some(joined) = in_flight.join_next().await else {
            // Nothing in flight and nothing was sent: out of tickets, or no lane has work.
            if !resync(&submitter, &mut lanes).await {
                break;
            }
            continue;
        };
        let Ok(done) = joined else { continue };
        lanes[done.lane].in_flight -= 1;
        tally.last_answer = Some(Instant::now());
        match done.answer {
            Answer::Executed(result) => {
                shared.executed(&result);
                tally.latency.record(done.sent_at.elapsed());
                let counts = tally.calls.entry(call_name(&done.call)).or_default();
                if result.error.is_none() {
                    counts.succeeded += 1;
                } else {
                    counts.failed += 1;
                }
                if record_results {
                    tally.results.push(Answered {
                        digest: result.digest,
                        sender: result.sender,
                        nonce: done.nonce,
                        call: call_name(&done.call),
                        block_height: result.block_height,
                        error: result.error.as_ref().map(|e| e.name.clone()),
                    });
                }
                plan.answered(done.lane, &done.call, &result);
            }
            Answer::Refused(name) => {
                shared.error(&name);
                lanes[done.lane].broken = true;
                plan.refused(done.lane, &done.call);
            }
        }
        if out_of_tickets && in_flight.is_empty() {
            break;
        }
        resync(&submitter, &mut lanes).await;
    }
    tally
}

/// Asks the node for the next nonce of every broken lane with nothing in flight; `true` if any
/// lane was repaired.
async fn resync(submitter: &Submitter, lanes: &mut [Lane]) -> bool {
    let mut repaired = false;
    for lane in lanes.iter_mut().filter(|l| l.broken && l.in_flight == 0) {
        if let Ok(nonce) = submitter.conn.get_nonce(&lane.key.address()).await {
            lane.nonce = nonce;
            lane.broken = false;
            repaired = true;
        }
    }
    repaired
}

/// Transfers of one base unit to the next client's account.
pub(crate) struct Transfers {
    pub(crate) recipient: Address,
}

impl Plan for Transfers {
    fn next(&mut self, _lane: usize) -> Option<Call> {
        Some(Call::TransferToma { recipient: self.recipient, amount: 1 })
    }

    fn answered(&mut self, _lane: usize, _call: &Call, _result: &TransactionResult) {}
}

/// The user lane.
const USER: usize = 0;
/// The node lane.
const NODE: usize = 1;

/// A market client: lane 0 is the user that buys stacks, lane 1 the node that settles and claims
/// them.
pub(crate) struct Mix {
    pub(crate) node: NodeSmallId,
    pub(crate) task: TaskSmallId,
    pub(crate) pipeline: usize,
    /// Bought, not settled yet.
    to_settle: VecDeque<StackSmallId>,
    /// Settled, with the epoch and the block time of their settlement; claimable once the
    /// epoch has passed and the settlement timeout has too (the dispute window's floor).
    settled: VecDeque<(StackSmallId, u64, u64)>,
    /// The stacks' settlement timeout (the task names no model: the global one).
    settlement_timeout_ms: u64,
    /// Buys not answered yet.
    buying: usize,
    /// Settles sent since the last claim.
    settles_since_claim: usize,
    /// The newest epoch an answer named.
    epoch: u64,
    /// The newest block time an answer named.
    now_ms: u64,
}

impl Mix {
    pub(crate) fn new(
        node: NodeSmallId,
        task: TaskSmallId,
        pipeline: usize,
        settlement_timeout_ms: u64,
    ) -> Self {
        Mix {
            node,
            task,
            pipeline,
            to_settle: VecDeque::new(),
            settled: VecDeque::new(),
            buying: 0,
            settles_since_claim: 0,
            epoch: 0,
            now_ms: 0,
            settlement_timeout_ms,
        }
    }

    fn claimable(&self) -> usize {
        self.settled
            .iter()
            .take_while(|(_, epoch, at)| {
                *epoch < self.epoch && at.saturating_add(self.settlement_timeout_ms) <= self.now_ms
            })
            .count()
    }
}

impl Plan for Mix {
    fn next(&mut self, lane: usize) -> Option<Call> {
        if lane == USER {
            // Do not buy far ahead of what the node can settle.
            if self.buying + self.to_settle.len() >= 4 * self.pipeline {
                return None;
            }
            self.buying += 1;
            return Some(Call::AcquireNewStack {
                task: self.task,
                num_compute_units: STACK_UNITS,
                max_price_per_compute_unit: 1,
            });
        }
        let claimable = self.claimable();
        let claim_now = claimable >= CLAIM_BATCH
            || self.to_settle.is_empty()
            || self.settles_since_claim >= SETTLES_PER_CLAIM;
        if claimable > 0 && claim_now {
            self.settles_since_claim = 0;
            let stacks = self.settled.drain(..claimable.min(CLAIM_BATCH)).map(|(s, _, _)| s).collect();
            return Some(Call::ClaimFunds { node: self.node, stacks });
        }
        let stack = self.to_settle.pop_front()?;
        self.settles_since_claim += 1;
        Some(Call::TrySettleStack {
            node: self.node,
            stack,
            num_claimed_compute_units: SETTLED_UNITS,
            committed_stack_proof: vec![1; 32],
            stack_merkle_leaf: vec![2; 32],
            tee_signature: None,
        })
    }

    fn answered(&mut self, lane: usize, call: &Call, result: &TransactionResult) {
        self.epoch = self.epoch.max(result.epoch);
        self.now_ms = self.now_ms.max(result.timestamp_ms);
        match call {
            Call::AcquireNewStack { .. } => {
                self.buying -= 1;
                if let Some(stack) = created_stack(result) {
                    self.to_settle.push_back(stack);
                }
            }
            Call::TrySettleStack { stack, .. } if result.error.is_none() => {
                self.settled.push_back((*stack, result.epoch, result.timestamp_ms));
            }
            // Claimed too early (a longer dispute delay than one epoch): try again later.
            Call::ClaimFunds { stacks, .. }
                if result.error.as_ref().is_some_and(|e| e.name == "EStackDisputePeriodIsNotOver") =>
            {
                self.settled.extend(stacks.iter().map(|s| (*s, result.epoch, result.timestamp_ms)));
            }
            _ => debug_assert!(lane == NODE || lane == USER),
        }
    }

    fn refused(&mut self, _lane: usize, call: &Call) {
        if matches!(call, Call::AcquireNewStack { .. }) {
            self.buying -= 1;
        }
    }
}

/// The id in `parsedJson.<field>.inner` of the result's first `<event>`.
pub(crate) fn event_id(result: &TransactionResult, event: &str, field: &str) -> Option<u64> {
    let suffix = format!("::{event}");
    result
        .events
        .iter()
        .find(|e| e.event_type.ends_with(&suffix))
        .and_then(|e| e.parsed_json[field]["inner"].as_str())
        .and_then(|s| s.parse().ok())
}

fn created_stack(result: &TransactionResult) -> Option<StackSmallId> {
    event_id(result, "StackCreatedEvent", "small_id").map(StackSmallId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_buys_settles_then_claims_after_the_epoch() {
        let mut mix = Mix::new(NodeSmallId(1), TaskSmallId(1), 1, 1_000);
        assert!(matches!(mix.next(USER), Some(Call::AcquireNewStack { .. })));
        assert_eq!(mix.next(NODE), None, "nothing bought yet");
        mix.to_settle.push_back(StackSmallId(7));
        mix.buying -= 1;
        let Some(settle @ Call::TrySettleStack { stack: StackSmallId(7), .. }) = mix.next(NODE) else {
            panic!("a settle")
        };
        mix.settled.push_back((StackSmallId(7), 0, 5_000));
        assert_eq!(mix.next(NODE), None, "not claimable in the same epoch");
        mix.epoch = 1;
        mix.now_ms = 5_999;
        assert_eq!(mix.next(NODE), None, "not claimable within the settlement timeout");
        mix.now_ms = 6_000;
        assert_eq!(
            mix.next(NODE),
            Some(Call::ClaimFunds { node: NodeSmallId(1), stacks: vec![StackSmallId(7)] })
        );
        drop(settle);
        // The user does not run far ahead of the node.
        mix.to_settle.extend((0..4).map(StackSmallId));
        assert_eq!(mix.next(USER), None);
    }
}
