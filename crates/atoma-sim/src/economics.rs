//! Economic security, measured: what each node strategy earns per stack under a configuration,
//! played on the real contract.
//!
//! A pool of nodes serves one sampling-consensus task at one price; users buy stacks one after
//! another, and each stack is played to its end — settlement, attestations, the owner's
//! contest, the oracle, the claim — before the next is bought, so every change in a party's
//! wealth during a stack belongs to that stack. A node's *wealth* is its operator's balance plus
//! the node's collateral and fees; its *profit* on a stack is the change in wealth less what its
//! work cost off-chain: serving or re-running a stack costs `cost_permille` of the stack's base
//! price for the units really used (the chain pays for that work; the operator pays the GPU).
//! Collateral lost to a slash is topped up before the next stack (the top-up moves money from
//! the operator's balance to the node and changes no wealth), so every stack meets the same
//! stake.
//!
//! The strategies ([`Strategy`]) and the expected profit per stack each should make by the
//! formulas of docs/PROTOCOL.md §16 ([`expected`]) are compared with what the contract paid
//! ([`play`]); the `atoma-economics` binary prints them over many seeds.

use std::collections::{BTreeMap, BTreeSet};

use atoma_contract::call::{AdminOp, Call, EchelonParams};
use atoma_contract::commitment::{settlement_commitment, stack_merkle_leaf};
use atoma_contract::event::{Event, PublishedEvent};
use atoma_contract::hash::blake2b256;
use atoma_contract::state::TicketStatus;
use atoma_contract::{
    Address, AtomaDb, Config, EchelonId, Genesis, NodeSmallId, ObjectId, TOMA, TaskSmallId, TxContext,
};

use crate::rng::SimRng;

/// How a node behaves.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Strategy {
    /// Serves, settles and attests truthfully.
    Honest,
    /// Serves truthfully but claims `overclaim_permille` more units than it served (at most the
    /// stack's units); attests truthfully.
    Overclaims,
    /// Returns made-up outputs without running the model (no cost) and commits to them;
    /// attests truthfully.
    FakesOutputs,
    /// Serves and settles truthfully but never attests (no cost).
    NeverAttests,
    /// One of a pair: fakes outputs as the selected node, and as an attester agrees with its
    /// partner's fakes (and attests others truthfully).
    Colludes,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 5] = [
        Strategy::Honest,
        Strategy::Overclaims,
        Strategy::FakesOutputs,
        Strategy::NeverAttests,
        Strategy::Colludes,
    ];

    /// The strategy's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Honest => "honest",
            Strategy::Overclaims => "claims more units than served",
            Strategy::FakesOutputs => "wrong outputs",
            Strategy::NeverAttests => "never attests",
            Strategy::Colludes => "colluding pair",
        }
    }
}

/// One experiment's setting.
#[derive(Clone, Debug)]
pub struct EconConfig {
    /// The protocol's parameters.
    pub config: Config,
    /// The nodes of the pool and their strategies; `Colludes` nodes pair up in order.
    pub pool: Vec<Strategy>,
    /// Stacks bought per seed.
    pub stacks: u64,
    /// Units per stack (`N`).
    pub units: u64,
    /// Price per compute unit, in base units.
    pub price: u64,
    /// What serving or re-running a stack's used units costs, in permille of their base price.
    pub cost_permille: u64,
    /// How much more than it served an over-claimer claims, in permille.
    pub overclaim_permille: u64,
    /// How often a stack's owner counts the units and contests a claim that differs, in
    /// permille.
    pub contest_permille: u64,
    /// How often an owner contests a claim that is right (a griefer), in permille.
    pub grief_permille: u64,
}

impl EconConfig {
    /// The protocol's defaults, a pool of ten (five honest, one of each cheat, a colluding
    /// pair), stacks of 10,000 units at `price` base units each, serving at half the price, an
    /// over-claim of 20%, owners who contest a wrong count half the time and grief one time in
    /// twenty.
    pub fn defaults(price: u64) -> Self {
        let mut pool = vec![Strategy::Honest; 5];
        pool.extend([Strategy::Overclaims, Strategy::FakesOutputs, Strategy::NeverAttests]);
        pool.extend([Strategy::Colludes; 2]);
        EconConfig {
            config: Config::default(),
            pool,
            stacks: 4_000,
            units: 10_000,
            price,
            cost_permille: 500,
            overclaim_permille: 200,
            contest_permille: 500,
            grief_permille: 50,
        }
    }

    /// [`EconConfig::defaults`] at the price that makes the units a stack really uses cost
    /// `toma` TOMA.
    pub fn for_stack_of(toma: u64) -> Self {
        let units = EconConfig::defaults(1).units;
        let used = (units as f64 * USED_FRACTION) as u64;
        EconConfig::defaults((toma.saturating_mul(TOMA) / used.max(1)).max(1))
    }

    /// The base price of `units`, in base units.
    pub fn base(&self, units: u64) -> u64 {
        self.price.saturating_mul(units)
    }
}

/// What one strategy made over one run, in base units (signed: a cheat may lose).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Stacks its nodes were selected for.
    pub served: u64,
    /// Profit on those, in total.
    pub served_profit: i128,
    /// Requests to attest its nodes received.
    pub requests: u64,
    /// Profit on those, in total.
    pub request_profit: i128,
    /// Times its nodes were caught: slashed for a dispute, or on timeout.
    pub slashed: u64,
}

impl Tally {
    /// Mean profit per stack served, in TOMA.
    pub fn per_stack(&self) -> Option<f64> {
        (self.served > 0).then(|| toma(self.served_profit) / self.served as f64)
    }

    /// Mean profit per request to attest, in TOMA.
    pub fn per_request(&self) -> Option<f64> {
        (self.requests > 0).then(|| toma(self.request_profit) / self.requests as f64)
    }
}

/// What one run gave: each strategy's tally, and what contests of right claims did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Per strategy.
    pub tallies: BTreeMap<Strategy, Tally>,
    /// Honest nodes' right claims an owner contested (a griefer).
    pub griefs: u64,
    /// What griefers paid for those stacks beyond the claim's base price, in total: the oracle
    /// upholds the claim, so a griefer pays exactly what it would have.
    pub grief_overpaid: i128,
    /// The contested honest nodes' profit on those stacks, in total.
    pub griefed_node_profit: i128,
    /// Stacks that were cross-validated.
    pub cross_validated: u64,
}

/// Amounts in base units as TOMA.
pub fn toma(amount: i128) -> f64 {
    amount as f64 / TOMA as f64
}

/// The expected profit per stack served and per request to attest of each strategy, by the
/// formulas of docs/PROTOCOL.md §16, for a pool like `econ.pool` with one attester per
/// cross-validation (`k = 1`), drawn uniformly from the other nodes of the pool.
pub fn expected(econ: &EconConfig, strategy: Strategy) -> (f64, f64) {
    let c = &econ.config;
    let permille = |x: u64| x as f64 / 1000.0;
    let p = permille(c.cross_validation_probability_permille);
    let used = econ.units as f64 * USED_FRACTION;
    let in_toma = |units: f64| econ.price as f64 * units / TOMA as f64;
    let b = in_toma(used);
    let claimed = (used * (1.0 + permille(econ.overclaim_permille))).min(econ.units as f64);
    let kappa = permille(econ.cost_permille);
    let stake = c.registration_collateral as f64 / TOMA as f64;
    let timeout = (stake * permille(c.permille_to_slash_node_on_timeout)).ceil();
    let fee = |units: f64| in_toma(units) * permille(c.cross_validation_extra_nodes_charge_permille);
    let reward = stake * permille(c.permille_for_honest_nodes_on_dispute);
    let (q, g) = (permille(econ.contest_permille), permille(econ.grief_permille));
    let others = (econ.pool.len() - 1) as f64;
    let share = |s: Strategy| econ.pool.iter().filter(|x| **x == s).count() as f64 / others;
    let no_show = share(Strategy::NeverAttests);
    let fakes = |s: Strategy| matches!(s, Strategy::FakesOutputs | Strategy::Colludes);
    // Selected, a faker is caught when its attester checks, or when the ticket stays pending
    // (no attester, or one that never comes) and its owner contests anyway: the oracle then
    // judges the proof too. A colluder's partner vouches instead.
    let caught = |partner: f64| p * (1.0 - no_show - partner + no_show * g) + (1.0 - p) * g;
    let served = match strategy {
        Strategy::Honest | Strategy::NeverAttests => (1.0 - kappa) * b,
        Strategy::Overclaims => {
            // Confirmed by a checking attester, the claim can no longer be contested.
            let contested = q * ((1.0 - p) + p * no_show);
            (1.0 - kappa) * b + (1.0 - contested) * (in_toma(claimed) - b) - contested * timeout
        }
        Strategy::FakesOutputs => b - caught(0.0) * (b + stake),
        Strategy::Colludes => b - caught(1.0 / others) * (b + stake),
    };
    // Asked to attest, the selected node is any other node of the pool, equally likely.
    let checked = |selected: Strategy, own: f64| match selected {
        Strategy::Overclaims => fee(claimed) - own,
        s if fakes(s) => reward - own,
        _ => fee(used) - own,
    };
    let mut request = 0.0;
    let mut seen = false;
    for selected in &econ.pool {
        // The requested node itself is not a candidate: skip one node of its own strategy.
        if *selected == strategy && !seen {
            seen = true;
            continue;
        }
        let value = match strategy {
            Strategy::NeverAttests => -timeout,
            Strategy::Colludes if *selected == Strategy::Colludes => fee(used),
            _ => checked(*selected, kappa * b),
        };
        request += value / others;
    }
    (served, request)
}

/// The fraction of a stack's units its owner really used, for every stack (the formulas use
/// it too).
pub const USED_FRACTION: f64 = 0.5;

/// One run of `seed`.
///
/// # Errors
/// A call the play needs was refused (a bug in the play or the contract).
pub fn play(seed: u64, econ: &EconConfig) -> Result<Outcome, String> {
    let mut game = Game::new(seed, econ)?;
    let mut outcome = Outcome::default();
    for round in 0..econ.stacks {
        game.stack(round, &mut outcome)?;
    }
    Ok(outcome)
}

struct Game<'a> {
    econ: &'a EconConfig,
    db: AtomaDb,
    rng: SimRng,
    seed: u64,
    epoch: u64,
    time_ms: u64,
    counter: u64,
    oracle: (Address, NodeSmallId),
    task: TaskSmallId,
    user: Address,
    /// Each pool node: its operator, id and strategy.
    nodes: Vec<(Address, NodeSmallId, Strategy)>,
    /// Colluding partners, both ways.
    partners: BTreeMap<NodeSmallId, NodeSmallId>,
    /// Nodes slashed during the current stack.
    slashed: BTreeSet<NodeSmallId>,
}

fn who(name: &str, i: usize) -> Address {
    Address::from_ed25519_public_key(&blake2b256(&[b"atoma-economics", name.as_bytes(), &i.to_le_bytes()]))
}

impl<'a> Game<'a> {
    fn new(seed: u64, econ: &'a EconConfig) -> Result<Self, String> {
        let admin = who("admin", 0);
        let user = who("user", 0);
        let plenty = u64::MAX / 64;
        let mut allocations = vec![(admin, 1_000 * TOMA), (user, plenty), (who("oracle", 0), 10_000 * TOMA)];
        allocations.extend((0..econ.pool.len()).map(|i| (who("node", i), plenty / 64)));
        let genesis = Genesis {
            admin,
            allocations,
            config: econ.config.clone(),
            genesis_digest: blake2b256(&[b"atoma-economics", &seed.to_le_bytes()]),
        };
        let (db, events) = AtomaDb::genesis(&genesis).map_err(|e| format!("genesis: {e}"))?;
        let Some(Event::PublishedEvent(PublishedEvent { manager_badge, .. })) = events.first() else {
            return Err("genesis published no manager badge".into());
        };
        let badge = *manager_badge;
        let mut game = Game {
            econ,
            db,
            rng: SimRng::new(seed),
            seed,
            epoch: 0,
            time_ms: 1_000_000,
            counter: 0,
            oracle: (who("oracle", 0), NodeSmallId(0)),
            task: TaskSmallId(0),
            user,
            nodes: Vec::new(),
            partners: BTreeMap::new(),
            slashed: BTreeSet::new(),
        };
        game.setup(admin, badge)?;
        Ok(game)
    }

    fn call(&mut self, sender: Address, call: Call) -> Result<Vec<Event>, String> {
        self.counter += 1;
        self.time_ms += 10;
        let digest = blake2b256(&[b"tx", &self.seed.to_le_bytes(), &self.counter.to_le_bytes()]);
        let ctx = TxContext {
            sender,
            epoch: self.epoch,
            timestamp_ms: self.time_ms,
            tx_digest: digest,
            random_seed: blake2b256(&[b"seed", &digest]),
        };
        let events = self.db.execute(&ctx, &call).map_err(|e| format!("{call:?}: {e}"))?;
        for event in &events {
            if let Event::NodeSlashedEvent(e) = event {
                self.slashed.insert(e.node_small_id);
            }
        }
        Ok(events)
    }

    fn setup(&mut self, admin: Address, badge: ObjectId) -> Result<(), String> {
        let model = "m".to_string();
        let echelon = EchelonId(1);
        let admin_op = |op| Call::Admin { manager_badge: badge, op };
        self.call(admin, admin_op(AdminOp::AddModel { name: model.clone(), modality: 0 }))?;
        let params = EchelonParams {
            input_fee_per_token: 1,
            output_fee_per_token: 1,
            relative_performance: 100,
            settlement_timeout_ms: self.econ.config.settlement_timeout_ms,
        };
        self.call(admin, admin_op(AdminOp::AddModelEchelon { model_name: model.clone(), echelon, params }))?;
        let collateral = self.econ.config.registration_collateral;
        let register = Call::RegisterNode { collateral, supported_optimizations: 0 };
        let oracle = self.oracle.0;
        let id = registered(&self.call(oracle, register.clone())?)?;
        self.call(oracle, Call::AddNodeToModel { node: id, model_name: model.clone(), echelon })?;
        self.call(
            admin,
            admin_op(AdminOp::AddModelEchelonOracleNode { model_name: model.clone(), echelon, node: id }),
        )?;
        self.oracle.1 = id;
        let task = Call::CreateTask {
            role: 0,
            model_name: Some(model.clone()),
            security_level: 2,
            minimum_reputation_score: None,
            required_optimizations: 0,
        };
        let events = self.call(self.user, task)?;
        self.task = events
            .iter()
            .find_map(|e| match e {
                Event::TaskRegisteredEvent(t) => Some(t.task_small_id),
                _ => None,
            })
            .ok_or("no task")?;
        let mut waiting = None;
        for (i, strategy) in self.econ.pool.iter().enumerate() {
            let operator = who("node", i);
            let node = registered(&self.call(operator, register.clone())?)?;
            self.call(operator, Call::AddNodeToModel { node, model_name: model.clone(), echelon })?;
            let subscribe = Call::SubscribeNodeToTask {
                node,
                task: self.task,
                price_per_compute_unit: self.econ.price,
                max_num_compute_units: self.econ.units,
            };
            self.call(operator, subscribe)?;
            if *strategy == Strategy::Colludes {
                match waiting.take() {
                    Some(partner) => {
                        self.partners.insert(node, partner);
                        self.partners.insert(partner, node);
                    }
                    None => waiting = Some(node),
                }
            }
            self.nodes.push((operator, node, *strategy));
        }
        Ok(())
    }

    fn wealth(&self, operator: Address, node: NodeSmallId) -> i128 {
        let n = self.db.node(node);
        let held = n.map_or(0, |n| {
            u128::from(n.collateral) + u128::from(n.fees.locked) + u128::from(n.fees.unlocked)
        });
        i128::try_from(held + u128::from(self.db.balance(&operator))).unwrap_or(i128::MAX)
    }

    fn strategy(&self, node: NodeSmallId) -> Option<(Address, Strategy)> {
        self.nodes.iter().find(|(_, n, _)| *n == node).map(|(a, _, s)| (*a, *s))
    }

    /// One stack, bought, served, settled, checked, contested, resolved and claimed.
    fn stack(&mut self, round: u64, outcome: &mut Outcome) -> Result<(), String> {
        self.top_up()?;
        self.slashed.clear();
        let econ = self.econ;
        let before: Vec<i128> = self.nodes.iter().map(|(a, n, _)| self.wealth(*a, *n)).collect();
        let user_before = i128::from(self.db.balance(&self.user));
        let buy = Call::AcquireNewStack {
            task: self.task,
            num_compute_units: econ.units,
            max_price_per_compute_unit: econ.price,
        };
        let (stack, selected) = self
            .call(self.user, buy)?
            .iter()
            .find_map(|e| match e {
                Event::StackCreatedEvent(c) => Some((c.small_id, c.selected_node)),
                _ => None,
            })
            .ok_or("no stack")?;
        let (operator, strategy) = self.strategy(selected).ok_or("an unknown node was selected")?;
        let used = (econ.units as f64 * USED_FRACTION) as u64;
        let k = econ.config.cross_validation_extra_nodes_count;
        let truth = requests(self.seed, round, false);
        let fake = requests(self.seed, round, true);
        let fakes = matches!(strategy, Strategy::FakesOutputs | Strategy::Colludes);
        let served = if fakes { &fake } else { &truth };
        let (proof, leaf) = settlement_commitment(served, k).map_err(|e| e.to_string())?;
        let claimed = match strategy {
            Strategy::Overclaims => {
                (used + used.saturating_mul(econ.overclaim_permille) / 1000).min(econ.units)
            }
            _ => used,
        };
        let mut cost: BTreeMap<NodeSmallId, u64> = BTreeMap::new();
        if !fakes {
            cost.insert(selected, econ.base(used) * econ.cost_permille / 1000);
        }
        let settle = Call::TrySettleStack {
            node: selected,
            stack,
            num_claimed_compute_units: claimed,
            committed_stack_proof: proof.to_vec(),
            stack_merkle_leaf: leaf.to_vec(),
            tee_signature: None,
        };
        self.call(operator, settle)?;
        let attesters = self.db.settlement_ticket(stack).map(|t| t.requested_attestation_nodes.clone());
        let attesters = attesters.unwrap_or_default();
        if !attesters.is_empty() {
            outcome.cross_validated += 1;
        }
        for (position, attester) in attesters.iter().enumerate() {
            let Some((who, role)) = self.strategy(*attester) else { continue };
            let party = position as u64 + 1;
            let vouches = role == Strategy::Colludes && self.partners.get(attester) == Some(&selected);
            let (attestation, its_leaf) = if vouches {
                (proof, stack_merkle_leaf(party, &fake).map_err(|e| e.to_string())?)
            } else if role == Strategy::NeverAttests {
                continue;
            } else {
                *cost.entry(*attester).or_default() += econ.base(used) * econ.cost_permille / 1000;
                let (honest, _) = settlement_commitment(&truth, k).map_err(|e| e.to_string())?;
                (honest, stack_merkle_leaf(party, &truth).map_err(|e| e.to_string())?)
            };
            let attest = Call::SubmitStackSettlementAttestation {
                node: *attester,
                stack,
                committed_stack_proof: attestation.to_vec(),
                stack_merkle_leaf: its_leaf.to_vec(),
            };
            self.call(who, attest)?;
        }
        let pending = self.db.settlement_ticket(stack).is_some_and(|t| t.status == TicketStatus::Pending);
        let grief = pending && claimed == used && self.rng.chance(econ.grief_permille);
        let honest_grief = grief && strategy == Strategy::Honest;
        if pending && claimed != used && self.rng.chance(econ.contest_permille) {
            self.call(self.user, Call::ContestClaimedUnits { stack, counted_units: used })?;
        } else if grief {
            self.call(self.user, Call::ContestClaimedUnits { stack, counted_units: used / 2 })?;
        }
        // The window closes: the next epoch, past the settlement timeout.
        self.epoch += econ.config.stack_dispute_settlement_delay_epochs;
        self.time_ms += econ.config.settlement_timeout_ms + 1;
        let disputed = self
            .db
            .settlement_ticket(stack)
            .is_some_and(|t| matches!(t.status, TicketStatus::InDispute { .. }));
        if disputed {
            let (honest, _) = settlement_commitment(&truth, k).map_err(|e| e.to_string())?;
            let resolve = Call::ResolveStackDispute {
                oracle_node: self.oracle.1,
                stack,
                correct_committed_stack_proof: honest.to_vec(),
                correct_units: used,
            };
            self.call(self.oracle.0, resolve)?;
        }
        if self.db.stack(stack).is_some() {
            self.call(operator, Call::ClaimFunds { node: selected, stacks: vec![stack] })?;
        }
        for (index, (who, node, role)) in self.nodes.clone().into_iter().enumerate() {
            let spent = i128::from(cost.get(&node).copied().unwrap_or(0));
            let profit = self.wealth(who, node) - before[index] - spent;
            let tally = outcome.tallies.entry(role).or_default();
            if node == selected {
                tally.served += 1;
                tally.served_profit += profit;
            } else if attesters.contains(&node) {
                tally.requests += 1;
                tally.request_profit += profit;
            } else if profit != 0 {
                return Err(format!("node {node}, no party to stack {stack}, changed wealth by {profit}"));
            }
            if self.slashed.contains(&node) {
                tally.slashed += 1;
            }
            if honest_grief && node == selected {
                outcome.griefed_node_profit += profit;
            }
        }
        if honest_grief {
            outcome.griefs += 1;
            let paid = user_before - i128::from(self.db.balance(&self.user));
            outcome.grief_overpaid += paid - i128::from(econ.base(used)) - surcharges(econ, used, 0);
        }
        Ok(())
    }

    /// Every pool node back at the registration collateral.
    fn top_up(&mut self) -> Result<(), String> {
        let stake = self.econ.config.registration_collateral;
        for (operator, node, _) in self.nodes.clone() {
            let held = self.db.node(node).map_or(stake, |n| n.collateral);
            if held < stake {
                self.call(operator, Call::AddNodeCollateral { node, amount: stake - held })?;
            }
        }
        Ok(())
    }
}

/// What a sampling-consensus stack settled at `used` units pays beyond its base price: the
/// surcharge and each attester's fee (SPEC §7.2).
fn surcharges(econ: &EconConfig, used: u64, attesters: usize) -> i128 {
    let base = u128::from(econ.base(used));
    let c = &econ.config;
    let surcharge = (base * u128::from(c.sampling_consensus_charge_permille)).div_ceil(1000);
    let fee = base * u128::from(c.cross_validation_extra_nodes_charge_permille) / 1000;
    i128::try_from(surcharge + fee * attesters as u128).unwrap_or(i128::MAX)
}

fn registered(events: &[Event]) -> Result<NodeSmallId, String> {
    events
        .iter()
        .find_map(|e| match e {
            Event::NodeRegisteredEvent(r) => Some(r.node_small_id),
            _ => None,
        })
        .ok_or_else(|| "no node registered".into())
}

/// The requests of stack `round`: what the model really answered, or made-up answers.
fn requests(seed: u64, round: u64, fake: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let root = blake2b256(&[b"atoma-economics-stack", &seed.to_le_bytes(), &round.to_le_bytes()]);
    let output = if fake { blake2b256(&[&root, b"made up"]) } else { blake2b256(&[&root, b"output"]) };
    vec![(root.to_vec(), output.to_vec())]
}
