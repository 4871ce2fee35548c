//! The reference sampler: a plain scan of every subscriber, as the deployed contract does.
//!
//! It is linear in the number of subscribers and kept only so that tests and benchmarks can
//! check the index against it: both must see the same eligible set and give the same
//! distribution.

use rand_core::Rng;

use super::{Want, statically_eligible, uniform_below};
use crate::ids::{NodeSmallId, TaskSmallId};
use crate::state::{AtomaDb, Task};

impl AtomaDb {
    /// Every node eligible for `want`, in node order, found by scanning all subscribers.
    pub fn linear_eligible(&self, task: &Task, want: &Want<'_>) -> Vec<NodeSmallId> {
        let id = task.small_id;
        self.subscriptions
            .range((id, NodeSmallId(0))..=(id, NodeSmallId(u64::MAX)))
            .map(|((_, node), _)| *node)
            .filter(|node| self.nodes.get(node).is_some_and(|n| statically_eligible(n, task)))
            .filter(|node| self.accepts_draw(task, *node, want))
            .collect()
    }

    /// Draws one eligible node uniformly by scanning all subscribers.
    pub fn linear_sample<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        task: &Task,
        want: &Want<'_>,
    ) -> Option<NodeSmallId> {
        let eligible = self.linear_eligible(task, want);
        if eligible.is_empty() {
            return None;
        }
        eligible.get(uniform_below(rng, eligible.len() as u64) as usize).copied()
    }

    /// The node ids the index holds for a task with price ≤ `price_cap`, in node order.
    pub fn indexed_candidates(&self, task: TaskSmallId, price_cap: Option<u64>) -> Vec<NodeSmallId> {
        let Some(pool) = self.sampling.pool(task) else {
            return Vec::new();
        };
        let prefix = price_cap.map_or(pool.len(), |cap| pool.count_at_most(cap));
        let mut nodes: Vec<NodeSmallId> =
            pool.iter().take(prefix).map(|(_, node)| NodeSmallId(node)).collect();
        nodes.sort();
        nodes
    }
}
