//! Read-only views of the state, for the ledger, RPC and tests.

use crate::config::Config;
use crate::enums::DeviceType;
use crate::hash::blake2b256;
use crate::ids::{Address, EchelonId, NodeSmallId, ObjectId, StackSmallId, TaskSmallId};
use crate::state::{
    AtomaDb, Badge, ClosedStack, Globals, Model, Node, SettlementTicket, Stack, StackClosure, Subscription,
    Task,
};

impl AtomaDb {
    /// Counters, treasuries and configuration.
    pub fn globals(&self) -> &Globals {
        self.globals.get()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.globals.get().config
    }

    /// An account's balance in base units.
    pub fn balance(&self, address: &Address) -> u64 {
        self.balances.get(address).copied().unwrap_or(0)
    }

    /// Every non-zero balance, in address order.
    pub fn balances(&self) -> impl Iterator<Item = (&Address, &u64)> {
        self.balances.iter()
    }

    /// A node.
    pub fn node(&self, id: NodeSmallId) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// A task.
    pub fn task(&self, id: TaskSmallId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// Tasks with id ≥ `from`, in id order.
    pub fn tasks_from(&self, from: TaskSmallId) -> impl Iterator<Item = &Task> {
        self.tasks.range(from..).map(|(_, t)| t)
    }

    /// A task's subscribers and their offers, in node order.
    pub fn subscribers(&self, task: TaskSmallId) -> impl Iterator<Item = (NodeSmallId, &Subscription)> {
        self.subscriptions
            .range((task, NodeSmallId(0))..=(task, NodeSmallId(u64::MAX)))
            .map(|((_, n), s)| (*n, s))
    }

    /// The tasks a node is subscribed to, in task order.
    pub fn node_subscriptions(&self, node: NodeSmallId) -> impl Iterator<Item = TaskSmallId> + '_ {
        self.node_tasks.range((node, TaskSmallId(0))..=(node, TaskSmallId(u64::MAX))).map(|((_, t), _)| *t)
    }

    /// One subscription.
    pub fn subscription(&self, task: TaskSmallId, node: NodeSmallId) -> Option<&Subscription> {
        self.subscriptions.get(&(task, node))
    }

    /// An open stack.
    pub fn stack(&self, id: StackSmallId) -> Option<&Stack> {
        self.stacks.get(&id)
    }

    /// Every open stack, in id order.
    pub fn stacks(&self) -> impl Iterator<Item = &Stack> {
        self.stacks.values()
    }

    /// How a closed stack closed.
    pub fn stack_closure(&self, id: StackSmallId) -> Option<StackClosure> {
        self.closed_stacks.get(&id).map(|c| c.closure)
    }

    /// What is kept of a closed stack.
    pub fn closed_stack(&self, id: StackSmallId) -> Option<&ClosedStack> {
        self.closed_stacks.get(&id)
    }

    /// An open stack's settlement ticket.
    pub fn settlement_ticket(&self, id: StackSmallId) -> Option<&SettlementTicket> {
        self.stacks.get(&id).and_then(|s| s.ticket.as_deref())
    }

    /// A model.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.get(&name.to_string())
    }

    /// Every model, in name order.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.values()
    }

    /// The nodes serving a model in an echelon.
    pub fn echelon_nodes(&self, model: &str, echelon: EchelonId) -> Vec<NodeSmallId> {
        let name = model.to_string();
        self.model_nodes
            .range((name.clone(), echelon, NodeSmallId(0))..=(name, echelon, NodeSmallId(u64::MAX)))
            .map(|((_, _, n), _)| *n)
            .collect()
    }

    /// The `(model, echelon)` pairs a node serves.
    pub fn node_models(&self, node: NodeSmallId) -> Vec<(String, EchelonId)> {
        self.node_model_keys(node).into_iter().map(|(_, model, echelon)| (model, echelon)).collect()
    }

    /// A badge.
    pub fn badge(&self, id: ObjectId) -> Option<&Badge> {
        self.badges.get(&id)
    }

    /// The badges an address owns, in id order.
    pub fn owned_badges(&self, owner: &Address) -> Vec<(ObjectId, Badge)> {
        self.owned
            .range((*owner, ObjectId([0; 32]))..=(*owner, ObjectId([0xff; 32])))
            .filter_map(|((_, id), _)| self.badges.get(id).map(|b| (*id, b.clone())))
            .collect()
    }

    /// The URL where a node's agent serves users, if its owner set one.
    pub fn node_endpoint(&self, id: NodeSmallId) -> Option<&str> {
        self.node_endpoints.get(&id).map(String::as_str)
    }

    /// The trusted attestation roots.
    pub fn attestation_roots(&self) -> impl Iterator<Item = (&DeviceType, &[u8; 32])> {
        self.attestation_roots.iter()
    }

    /// The canonical encoding of the whole state: equal bytes mean equal states.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Every type in the state is a plain struct, enum or ordered map, which BCS always
        // encodes; a failure here would be a bug in the state's types.
        bcs::to_bytes(self).expect("the state is always BCS-encodable")
    }

    /// blake2b-256 of [`AtomaDb::canonical_bytes`].
    pub fn state_digest(&self) -> [u8; 32] {
        blake2b256(&[&self.canonical_bytes()])
    }

    /// Rebuilds a state from [`AtomaDb::canonical_bytes`], indexes included.
    ///
    /// # Errors
    /// The BCS error when the bytes are not a state.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<AtomaDb, bcs::Error> {
        let mut db: AtomaDb = bcs::from_bytes(bytes)?;
        db.rebuild_indexes();
        Ok(db)
    }
}
