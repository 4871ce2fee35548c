//! Node sampling (SPEC §8): uniform over the eligible set, without scanning every subscriber.
//!
//! Eligibility has two parts. The *static* part depends only on the node and the task —
//! collateral > 0, not disabled, reputation ≥ the task's minimum, supports the task's
//! optimizations — and decides membership in a per-task [`OrderStatTree`] keyed by
//! `(price, node)`. The index is refreshed at commit for every node and subscription a call
//! touched, so slashed, disabled or under-reputed nodes leave it at once (the seed's lazy
//! swap-remove, done eagerly). The *per-draw* part — price ≤ the user's cap, max units ≥ the
//! stack's units, a current TEE key for confidential tasks, not already chosen — is handled by
//! counting the price prefix and drawing uniformly inside it, then rejecting draws that fail the
//! rest. After [`MAX_REJECTIONS`] failed draws an exact scan of the prefix takes over. Each
//! accepted draw is uniform over the eligible set, so the mixture is exactly uniform too.
//!
//! [`linear`] keeps the plain scan of every subscriber as the reference the tests compare with.

pub mod linear;
mod ostree;

use std::collections::BTreeMap;

use rand_core::Rng;

pub use ostree::OrderStatTree;

use crate::enums::SecurityLevel;
use crate::ids::{NodeSmallId, TaskSmallId};
use crate::state::{AtomaDb, Node, Task};

/// Draws from the price prefix before falling back to an exact scan.
pub const MAX_REJECTIONS: usize = 64;

/// A uniformly random integer in `0..n` without modulo bias. `n` must be positive.
pub fn uniform_below<R: Rng + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n > 0);
    let n = n.max(1);
    // Values below `threshold` would make some results more likely; 2^64 - threshold is a
    // multiple of n. Each draw is accepted with probability > 1/2.
    let threshold = n.wrapping_neg() % n;
    loop {
        let x = rng.next_u64();
        if x >= threshold {
            return x % n;
        }
    }
}

/// The per-task indexes of statically eligible subscribers. Derived state: never serialized,
/// rebuilt by [`AtomaDb::rebuild_indexes`].
#[derive(Clone, Debug, Default)]
pub struct SamplingIndex {
    pools: BTreeMap<TaskSmallId, OrderStatTree>,
    /// The price each indexed subscription is filed under.
    indexed_price: BTreeMap<(TaskSmallId, NodeSmallId), u64>,
}

impl SamplingIndex {
    /// The pool of a task, if any node is indexed for it.
    pub fn pool(&self, task: TaskSmallId) -> Option<&OrderStatTree> {
        self.pools.get(&task)
    }

    /// Files `(task, node)` under `price`, or removes it when `price` is `None`.
    fn set(&mut self, task: TaskSmallId, node: NodeSmallId, price: Option<u64>) {
        let current = self.indexed_price.get(&(task, node)).copied();
        if current == price {
            return;
        }
        if let Some(old) = current {
            self.indexed_price.remove(&(task, node));
            if let Some(pool) = self.pools.get_mut(&task) {
                pool.remove(old, node.0);
                if pool.is_empty() {
                    self.pools.remove(&task);
                }
            }
        }
        if let Some(new) = price {
            self.indexed_price.insert((task, node), new);
            self.pools.entry(task).or_default().insert(new, node.0);
        }
    }

    /// Approximate heap bytes, for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        let trees: usize = self.pools.values().map(OrderStatTree::heap_bytes).sum();
        // A BTreeMap entry costs roughly its key and value plus a share of node overhead.
        trees + self.indexed_price.len() * 40
    }
}

/// Whether a node meets the part of eligibility that depends only on the node and the task.
pub fn statically_eligible(node: &Node, task: &Task) -> bool {
    node.collateral > 0
        && !node.is_disabled()
        && node.reputation >= task.minimum_reputation_score.unwrap_or(0)
        && node.optimizations.supports_all(task.required_optimizations)
}

/// What a draw must satisfy besides static eligibility.
#[derive(Clone, Copy, Debug)]
pub struct Want<'a> {
    /// The stack's compute units: the node's max units must be at least this.
    pub units: u64,
    /// The user's price cap; `None` for attesters, who earn the attestation fee instead.
    pub price_cap: Option<u64>,
    /// Nodes that must not be drawn (the selected node, attesters already chosen).
    pub exclude: &'a [NodeSmallId],
}

impl AtomaDb {
    /// Whether `node` passes the per-draw conditions of `want` for `task`.
    pub(crate) fn accepts_draw(&self, task: &Task, node_id: NodeSmallId, want: &Want<'_>) -> bool {
        if want.exclude.contains(&node_id) {
            return false;
        }
        let Some(sub) = self.subscriptions.get(&(task.small_id, node_id)) else {
            return false;
        };
        if sub.max_num_compute_units < want.units
            || want.price_cap.is_some_and(|cap| sub.price_per_compute_unit > cap)
        {
            return false;
        }
        task.security_level != SecurityLevel::ConfidentialCompute || self.has_current_tee_key(node_id)
    }

    /// Whether the node holds an enclave key for the current rotation.
    pub(crate) fn has_current_tee_key(&self, node_id: NodeSmallId) -> bool {
        let rotation = self.globals.get().key_rotation_counter;
        self.nodes
            .get(&node_id)
            .and_then(|n| n.tee_key.as_ref())
            .is_some_and(|k| k.key_rotation_counter == rotation)
    }

    /// Draws one eligible node uniformly, or `None` when no node is eligible.
    pub fn sample_eligible<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        task: &Task,
        want: &Want<'_>,
    ) -> Option<NodeSmallId> {
        let pool = self.sampling.pool(task.small_id)?;
        let prefix = match want.price_cap {
            Some(cap) => pool.count_at_most(cap),
            None => pool.len(),
        };
        if prefix == 0 {
            return None;
        }
        for _ in 0..MAX_REJECTIONS {
            let index = uniform_below(rng, prefix as u64) as usize;
            let (_, node) = pool.select(index)?;
            if self.accepts_draw(task, NodeSmallId(node), want) {
                return Some(NodeSmallId(node));
            }
        }
        let eligible: Vec<NodeSmallId> = pool
            .iter()
            .take(prefix)
            .map(|(_, node)| NodeSmallId(node))
            .filter(|node| self.accepts_draw(task, *node, want))
            .collect();
        pick(rng, &eligible)
    }

    /// Draws up to `count` distinct eligible nodes, none of them in `want.exclude`; all of them
    /// when fewer are eligible. Always terminates: at most `count` draws, each bounded.
    pub fn sample_unique<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        task: &Task,
        want: &Want<'_>,
        count: usize,
    ) -> Vec<NodeSmallId> {
        let mut excluded = want.exclude.to_vec();
        let mut chosen = Vec::with_capacity(count);
        while chosen.len() < count {
            let round = Want { exclude: &excluded, ..*want };
            let Some(node) = self.sample_eligible(rng, task, &round) else {
                break;
            };
            excluded.push(node);
            chosen.push(node);
        }
        chosen
    }

    /// Re-files one subscription in the index according to the current state.
    pub(crate) fn refresh_index_entry(&mut self, task_id: TaskSmallId, node_id: NodeSmallId) {
        let price = match (
            self.tasks.get(&task_id),
            self.nodes.get(&node_id),
            self.subscriptions.get(&(task_id, node_id)),
        ) {
            (Some(task), Some(node), Some(sub)) if statically_eligible(node, task) => {
                Some(sub.price_per_compute_unit)
            }
            _ => None,
        };
        self.sampling.set(task_id, node_id, price);
    }

    /// Re-files every subscription of a node.
    pub(crate) fn refresh_index_for_node(&mut self, node_id: NodeSmallId) {
        let tasks: Vec<TaskSmallId> = self
            .node_tasks
            .range((node_id, TaskSmallId(0))..=(node_id, TaskSmallId(u64::MAX)))
            .map(|((_, task), _)| *task)
            .collect();
        for task in tasks {
            self.refresh_index_entry(task, node_id);
        }
    }

    /// Rebuilds the whole index from the tables, e.g. after loading a snapshot.
    pub fn rebuild_indexes(&mut self) {
        self.sampling = SamplingIndex::default();
        let pairs: Vec<(TaskSmallId, NodeSmallId)> = self.subscriptions.iter().map(|(k, _)| *k).collect();
        for (task, node) in pairs {
            self.refresh_index_entry(task, node);
        }
    }

    /// The sampling index, for tests and benchmarks.
    pub fn sampling_index(&self) -> &SamplingIndex {
        &self.sampling
    }
}

/// A uniformly random element of `items`.
fn pick<R: Rng + ?Sized, T: Copy>(rng: &mut R, items: &[T]) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    items.get(uniform_below(rng, items.len() as u64) as usize).copied()
}
