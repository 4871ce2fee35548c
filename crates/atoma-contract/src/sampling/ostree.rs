//! Order-statistics set of `(price, node)` keys backing uniform node sampling.
//!
//! Implemented as an arena-allocated AVL tree augmented with subtree sizes. AVL
//! balance is a deterministic structural invariant (height < 1.45·log2(n + 2)),
//! so, unlike a treap or skip list, it cannot be degraded by users who choose
//! their keys adversarially: every operation is O(log n) in the worst case.
//! Nodes live in one `Vec` addressed by `u32` indices (32 bytes per node), freed
//! slots are recycled through an intrusive free list, and all traversals are
//! iterative with a fixed-size path stack: no recursion, and updates and queries
//! never allocate (only `iter` keeps a small O(log n) stack).

use core::cmp::Ordering;
use core::fmt;

/// Sentinel index meaning "no node"; never a valid arena index.
const NIL: u32 = u32::MAX;
/// Maximum number of arena slots, keeping every valid index strictly below `NIL`.
const MAX_NODES: usize = NIL as usize;
/// Path stack capacity. An AVL tree with fewer than 2^32 nodes has height <= 46.
const MAX_DEPTH: usize = 64;

/// A set element: `(price, node)`, ordered lexicographically.
type Key = (u64, u64);

/// One arena slot. While a slot is free, `left` links to the next free slot.
#[derive(Clone, Copy, Debug)]
struct Node {
    key: Key,
    left: u32,
    right: u32,
    /// Number of keys in the subtree rooted here.
    size: u32,
    /// Height of the subtree rooted here (a leaf has height 1).
    height: u8,
}

/// Root-to-node path recorded during a descent: `(node, went_left)` per step.
struct Path {
    steps: [(u32, bool); MAX_DEPTH],
    len: usize,
}

impl Path {
    fn new() -> Self {
        Self { steps: [(NIL, false); MAX_DEPTH], len: 0 }
    }

    fn push(&mut self, node: u32, went_left: bool) {
        debug_assert!(self.len < MAX_DEPTH, "AVL height bound exceeded");
        if let Some(step) = self.steps.get_mut(self.len) {
            *step = (node, went_left);
            self.len += 1;
        }
    }

    fn pop(&mut self) -> Option<(u32, bool)> {
        self.len = self.len.checked_sub(1)?;
        self.steps.get(self.len).copied()
    }
}

/// An ordered set of `(price, node)` keys supporting rank queries.
///
/// Keys are ordered by price first, then by node id. Besides insertion,
/// removal and membership, the set answers "how many keys have
/// `price <= cap`" ([`count_at_most`](Self::count_at_most)) and "which key
/// has rank `i`" ([`select`](Self::select)), all in worst-case O(log n).
#[derive(Clone)]
pub struct OrderStatTree {
    nodes: Vec<Node>,
    root: u32,
    free_head: u32,
}

impl Default for OrderStatTree {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for OrderStatTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderStatTree").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl OrderStatTree {
    /// Creates an empty set without allocating.
    #[must_use]
    pub fn new() -> Self {
        Self { nodes: Vec::new(), root: NIL, free_head: NIL }
    }

    /// Number of keys in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.size(self.root) as usize
    }

    /// Whether the set holds no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.root == NIL
    }

    /// Inserts `(price, node)`. Returns `false`, leaving the set unchanged,
    /// if the key is already present (or, unreachably in practice, if the
    /// set already holds `u32::MAX - 1` keys).
    pub fn insert(&mut self, price: u64, node: u64) -> bool {
        let key = (price, node);
        let mut path = Path::new();
        let mut cur = self.root;
        while let Some(cur_key) = self.key(cur) {
            let went_left = match key.cmp(&cur_key) {
                Ordering::Equal => return false,
                Ordering::Less => true,
                Ordering::Greater => false,
            };
            path.push(cur, went_left);
            cur = self.child(cur, went_left);
        }
        let Some(fresh) = self.alloc(key) else {
            return false;
        };
        self.retrace(path, fresh);
        true
    }

    /// Removes `(price, node)`. Returns `false`, leaving the set unchanged,
    /// if the key is absent.
    pub fn remove(&mut self, price: u64, node: u64) -> bool {
        let key = (price, node);
        let mut path = Path::new();
        let mut cur = self.root;
        loop {
            let Some(cur_key) = self.key(cur) else {
                return false;
            };
            let went_left = match key.cmp(&cur_key) {
                Ordering::Equal => break,
                Ordering::Less => true,
                Ordering::Greater => false,
            };
            path.push(cur, went_left);
            cur = self.child(cur, went_left);
        }
        let replacement = self.unlink(cur, &mut path);
        self.retrace(path, replacement);
        true
    }

    /// Whether `(price, node)` is in the set.
    #[must_use]
    pub fn contains(&self, price: u64, node: u64) -> bool {
        let key = (price, node);
        let mut cur = self.root;
        while let Some(cur_key) = self.key(cur) {
            cur = match key.cmp(&cur_key) {
                Ordering::Equal => return true,
                Ordering::Less => self.left(cur),
                Ordering::Greater => self.right(cur),
            };
        }
        false
    }

    /// Number of keys whose price is `<= price_cap`.
    ///
    /// These keys are exactly the ranks `0..count_at_most(cap)`, so a uniform
    /// index below the result fed to [`select`](Self::select) samples
    /// uniformly among them.
    #[must_use]
    pub fn count_at_most(&self, price_cap: u64) -> usize {
        let mut count = 0usize;
        let mut cur = self.root;
        while let Some((price, _)) = self.key(cur) {
            if price <= price_cap {
                count += self.size(self.left(cur)) as usize + 1;
                cur = self.right(cur);
            } else {
                cur = self.left(cur);
            }
        }
        count
    }

    /// The `index`-th smallest key (0-based), or `None` if `index >= len()`.
    #[must_use]
    pub fn select(&self, index: usize) -> Option<(u64, u64)> {
        let mut remaining = index;
        let mut cur = self.root;
        loop {
            let key = self.key(cur)?;
            let left_size = self.size(self.left(cur)) as usize;
            match remaining.cmp(&left_size) {
                Ordering::Less => cur = self.left(cur),
                Ordering::Equal => return Some(key),
                Ordering::Greater => {
                    remaining -= left_size + 1;
                    cur = self.right(cur);
                }
            }
        }
    }

    /// All keys in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        InOrder::new(self)
    }

    /// Approximate heap memory held by the set, in bytes (including spare
    /// capacity and freed slots awaiting reuse).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity().saturating_mul(core::mem::size_of::<Node>())
    }

    // ----- structural edits -------------------------------------------------

    /// Detaches `target` from the tree. Returns the subtree that must replace
    /// the node that was unlinked, as a child of the last step of `path`.
    ///
    /// A node with two children keeps its slot: it receives its in-order
    /// successor's key and the successor (which has no left child) is unlinked
    /// instead, extending `path` down to it.
    fn unlink(&mut self, target: u32, path: &mut Path) -> u32 {
        let (left, right) = (self.left(target), self.right(target));
        if left == NIL || right == NIL {
            self.release(target);
            return if left == NIL { right } else { left };
        }
        path.push(target, false);
        let mut successor = right;
        loop {
            let next = self.left(successor);
            if next == NIL {
                break;
            }
            path.push(successor, true);
            successor = next;
        }
        if let Some(key) = self.key(successor)
            && let Some(slot) = self.nodes.get_mut(target as usize)
        {
            slot.key = key;
        }
        let replacement = self.right(successor);
        self.release(successor);
        replacement
    }

    /// Walks `path` bottom-up, hanging `child` under each step and restoring
    /// sizes, heights and AVL balance; the final subtree becomes the root.
    fn retrace(&mut self, mut path: Path, mut child: u32) {
        while let Some((parent, went_left)) = path.pop() {
            self.set_child(parent, went_left, child);
            child = self.rebalance(parent);
        }
        self.root = child;
    }

    /// Recomputes `i`'s metadata and rotates if its children's heights differ
    /// by two. Returns the root of the (possibly rotated) subtree.
    fn rebalance(&mut self, i: u32) -> u32 {
        self.refresh(i);
        let balance = self.balance(i);
        if balance > 1 {
            let left = self.left(i);
            if self.balance(left) < 0 {
                let new_left = self.rotate_left(left);
                self.set_child(i, true, new_left);
            }
            self.rotate_right(i)
        } else if balance < -1 {
            let right = self.right(i);
            if self.balance(right) > 0 {
                let new_right = self.rotate_right(right);
                self.set_child(i, false, new_right);
            }
            self.rotate_left(i)
        } else {
            i
        }
    }

    /// Rotates `top` right, returning the new subtree root.
    fn rotate_right(&mut self, top: u32) -> u32 {
        let pivot = self.left(top);
        if pivot == NIL {
            return top;
        }
        self.set_child(top, true, self.right(pivot));
        self.set_child(pivot, false, top);
        self.refresh(top);
        self.refresh(pivot);
        pivot
    }

    /// Rotates `top` left, returning the new subtree root.
    fn rotate_left(&mut self, top: u32) -> u32 {
        let pivot = self.right(top);
        if pivot == NIL {
            return top;
        }
        self.set_child(top, false, self.left(pivot));
        self.set_child(pivot, true, top);
        self.refresh(top);
        self.refresh(pivot);
        pivot
    }

    // ----- arena ------------------------------------------------------------

    /// Takes a slot (recycled if possible) holding `key` as a leaf.
    fn alloc(&mut self, key: Key) -> Option<u32> {
        let leaf = Node { key, left: NIL, right: NIL, size: 1, height: 1 };
        if self.free_head != NIL {
            let index = self.free_head;
            let slot = self.nodes.get_mut(index as usize)?;
            self.free_head = slot.left;
            *slot = leaf;
            return Some(index);
        }
        if self.nodes.len() >= MAX_NODES {
            return None;
        }
        let index = u32::try_from(self.nodes.len()).ok()?;
        self.nodes.push(leaf);
        Some(index)
    }

    /// Returns slot `i` to the free list.
    fn release(&mut self, i: u32) {
        let next_free = self.free_head;
        if let Some(slot) = self.nodes.get_mut(i as usize) {
            slot.left = next_free;
            slot.right = NIL;
            slot.size = 0;
            slot.height = 0;
            self.free_head = i;
        }
    }

    // ----- node accessors (NIL reads as an empty subtree) -------------------

    fn key(&self, i: u32) -> Option<Key> {
        self.nodes.get(i as usize).map(|n| n.key)
    }

    fn left(&self, i: u32) -> u32 {
        self.nodes.get(i as usize).map_or(NIL, |n| n.left)
    }

    fn right(&self, i: u32) -> u32 {
        self.nodes.get(i as usize).map_or(NIL, |n| n.right)
    }

    fn child(&self, i: u32, left: bool) -> u32 {
        if left { self.left(i) } else { self.right(i) }
    }

    fn size(&self, i: u32) -> u32 {
        self.nodes.get(i as usize).map_or(0, |n| n.size)
    }

    fn subtree_height(&self, i: u32) -> u8 {
        self.nodes.get(i as usize).map_or(0, |n| n.height)
    }

    /// Left height minus right height.
    fn balance(&self, i: u32) -> i16 {
        i16::from(self.subtree_height(self.left(i))) - i16::from(self.subtree_height(self.right(i)))
    }

    fn set_child(&mut self, i: u32, left: bool, child: u32) {
        if let Some(slot) = self.nodes.get_mut(i as usize) {
            if left {
                slot.left = child;
            } else {
                slot.right = child;
            }
        }
    }

    /// Recomputes `i`'s size and height from its children.
    fn refresh(&mut self, i: u32) {
        let (left, right) = (self.left(i), self.right(i));
        let size = self.size(left).saturating_add(self.size(right)) + 1;
        let height = self.subtree_height(left).max(self.subtree_height(right)).saturating_add(1);
        if let Some(slot) = self.nodes.get_mut(i as usize) {
            slot.size = size;
            slot.height = height;
        }
    }

    /// Height of the whole tree (0 when empty).
    #[cfg(test)]
    fn height(&self) -> usize {
        usize::from(self.subtree_height(self.root))
    }
}

/// In-order iterator holding the left spine of the unvisited part.
struct InOrder<'a> {
    tree: &'a OrderStatTree,
    stack: Vec<u32>,
    remaining: usize,
}

impl<'a> InOrder<'a> {
    fn new(tree: &'a OrderStatTree) -> Self {
        let capacity = usize::from(tree.subtree_height(tree.root));
        let mut iter = Self { tree, stack: Vec::with_capacity(capacity), remaining: tree.len() };
        iter.push_left_spine(tree.root);
        iter
    }

    fn push_left_spine(&mut self, mut cur: u32) {
        while cur != NIL {
            self.stack.push(cur);
            cur = self.tree.left(cur);
        }
    }
}

impl Iterator for InOrder<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        let top = self.stack.pop()?;
        self.push_left_spine(self.tree.right(top));
        self.remaining = self.remaining.saturating_sub(1);
        self.tree.key(top)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for InOrder<'_> {}

impl core::iter::FusedIterator for InOrder<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Deterministic splitmix64 generator.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    /// Verifies ordering, sizes, heights, AVL balance and slot accounting.
    fn check_invariants(tree: &OrderStatTree) {
        let keys: Vec<Key> = tree.iter().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys not ascending");
        assert_eq!(keys.len(), tree.len());
        let mut reachable = 0usize;
        let mut stack = vec![tree.root];
        while let Some(i) = stack.pop() {
            if i == NIL {
                continue;
            }
            reachable += 1;
            let (l, r) = (tree.left(i), tree.right(i));
            let node = tree.nodes[i as usize];
            assert_eq!(node.size, tree.size(l) + tree.size(r) + 1, "size");
            let child_height = tree.subtree_height(l).max(tree.subtree_height(r));
            assert_eq!(node.height, child_height + 1, "height");
            assert!(tree.balance(i).abs() <= 1, "AVL balance");
            stack.extend([l, r]);
        }
        let mut free = 0usize;
        let mut cur = tree.free_head;
        while cur != NIL {
            free += 1;
            cur = tree.nodes[cur as usize].left;
        }
        assert_eq!(reachable, tree.len());
        assert_eq!(reachable + free, tree.nodes.len(), "leaked slots");
    }

    /// Compares every query against the reference model.
    fn check_against(tree: &OrderStatTree, model: &BTreeSet<Key>, rng: &mut SplitMix) {
        check_invariants(tree);
        assert_eq!(tree.len(), model.len());
        assert_eq!(tree.is_empty(), model.is_empty());
        assert!(tree.iter().eq(model.iter().copied()), "iteration order");
        assert_eq!(tree.iter().size_hint(), (model.len(), Some(model.len())));
        for (index, key) in model.iter().enumerate() {
            assert_eq!(tree.select(index), Some(*key), "select({index})");
        }
        assert_eq!(tree.select(model.len()), None);
        assert_eq!(tree.select(usize::MAX), None);
        let mut caps = vec![0, 1, 2, 7, u64::MAX - 1, u64::MAX];
        caps.extend((0..4).map(|_| rng.below(12)));
        caps.extend(model.iter().take(3).map(|k| k.0));
        for cap in caps {
            let expected = model.iter().filter(|k| k.0 <= cap).count();
            assert_eq!(tree.count_at_most(cap), expected, "count_at_most({cap})");
        }
        for _ in 0..16 {
            let key = random_key(rng);
            assert_eq!(tree.contains(key.0, key.1), model.contains(&key));
        }
        for key in model.iter().take(4) {
            assert!(tree.contains(key.0, key.1));
        }
    }

    /// Keys drawn from a small space (many duplicates and equal prices),
    /// including the extremes 0 and `u64::MAX`.
    fn random_key(rng: &mut SplitMix) -> Key {
        let price = match rng.below(10) {
            0 => 0,
            1 => u64::MAX,
            2 => u64::MAX - 1,
            _ => rng.below(10),
        };
        let node = match rng.below(8) {
            0 => u64::MAX,
            _ => rng.below(24),
        };
        (price, node)
    }

    #[test]
    fn random_operations_match_btreeset() {
        for seed in 0..12u64 {
            let mut rng = SplitMix(seed);
            let mut tree = OrderStatTree::new();
            let mut model = BTreeSet::new();
            for step in 0..3_000 {
                let key = random_key(&mut rng);
                // Bias the insert/remove mix so the size drifts up and down.
                let insert_bias = if (step / 500) % 2 == 0 { 7 } else { 3 };
                if rng.below(10) < insert_bias {
                    assert_eq!(tree.insert(key.0, key.1), model.insert(key));
                } else {
                    assert_eq!(tree.remove(key.0, key.1), model.remove(&key));
                }
                if step % 150 == 0 {
                    check_against(&tree, &model, &mut rng);
                }
            }
            check_against(&tree, &model, &mut rng);
        }
    }

    #[test]
    fn wide_keys_match_btreeset() {
        let mut rng = SplitMix(99);
        let mut tree = OrderStatTree::new();
        let mut model = BTreeSet::new();
        for round in 0..6 {
            for _ in 0..1_500 {
                let key = (rng.next(), rng.next());
                assert_eq!(tree.insert(key.0, key.1), model.insert(key));
            }
            let victims: Vec<Key> = model.iter().copied().step_by(2 + round).collect();
            for key in victims {
                assert!(tree.remove(key.0, key.1));
                assert!(model.remove(&key));
                assert!(!tree.remove(key.0, key.1));
            }
            check_against(&tree, &model, &mut rng);
            let caps = (0..8).map(|_| rng.next());
            for cap in caps {
                let expected = model.range(..=(cap, u64::MAX)).count();
                assert_eq!(tree.count_at_most(cap), expected);
            }
        }
    }

    #[test]
    fn empty_tree_queries() {
        let mut tree = OrderStatTree::default();
        assert!(tree.is_empty());
        assert_eq!(tree.len(), 0);
        assert_eq!(tree.select(0), None);
        assert_eq!(tree.count_at_most(u64::MAX), 0);
        assert!(!tree.contains(0, 0));
        assert!(!tree.remove(0, 0));
        assert_eq!(tree.iter().count(), 0);
        assert_eq!(tree.height(), 0);
        assert_eq!(format!("{tree:?}"), "OrderStatTree { len: 0, .. }");
    }

    #[test]
    fn duplicates_and_equal_prices() {
        let mut tree = OrderStatTree::new();
        for node in (0..50).rev() {
            assert!(tree.insert(5, node));
            assert!(!tree.insert(5, node));
        }
        assert!(tree.insert(0, 9));
        assert!(tree.insert(u64::MAX, 0));
        assert_eq!(tree.len(), 52);
        assert_eq!(tree.count_at_most(4), 1);
        assert_eq!(tree.count_at_most(5), 51);
        assert_eq!(tree.count_at_most(u64::MAX - 1), 51);
        assert_eq!(tree.count_at_most(u64::MAX), 52);
        assert_eq!(tree.select(0), Some((0, 9)));
        assert_eq!(tree.select(1), Some((5, 0)));
        assert_eq!(tree.select(50), Some((5, 49)));
        assert_eq!(tree.select(51), Some((u64::MAX, 0)));
        assert_eq!(tree.select(52), None);
        check_invariants(&tree);
    }

    /// AVL guarantee: height < 1.4405 * log2(n + 2). Checked with integers as
    /// `100 * height <= 145 * (floor(log2 n) + 1) + 200`.
    fn assert_height_bounded(tree: &OrderStatTree) {
        let n = tree.len().max(1);
        let bound = (145 * (n.ilog2() as usize + 1) + 200) / 100;
        assert!(tree.height() <= bound, "height {} > {bound}", tree.height());
    }

    #[test]
    fn ascending_inserts_stay_balanced() {
        let mut tree = OrderStatTree::new();
        for key in 1..=100_000u64 {
            assert!(tree.insert(key, key));
        }
        assert_eq!(tree.len(), 100_000);
        assert_height_bounded(&tree);
        assert_eq!(tree.select(0), Some((1, 1)));
        assert_eq!(tree.select(99_999), Some((100_000, 100_000)));
        assert_eq!(tree.count_at_most(50_000), 50_000);
        // Removing from one end must keep the tree balanced too.
        for key in 1..=50_000u64 {
            assert!(tree.remove(key, key));
        }
        assert_height_bounded(&tree);
        check_invariants(&tree);
    }

    #[test]
    fn descending_same_price_inserts_stay_balanced() {
        let mut tree = OrderStatTree::new();
        for node in (0..20_000u64).rev() {
            assert!(tree.insert(7, node));
        }
        assert_height_bounded(&tree);
        check_invariants(&tree);
    }

    #[test]
    fn freed_slots_are_reused() {
        let mut tree = OrderStatTree::new();
        for key in 0..1_000u64 {
            tree.insert(key % 13, key);
        }
        let slots = tree.nodes.len();
        let bytes = tree.heap_bytes();
        for key in 0..1_000u64 {
            assert!(tree.remove(key % 13, key));
        }
        assert!(tree.is_empty());
        for key in 0..1_000u64 {
            tree.insert(key, key % 13);
        }
        assert_eq!(tree.nodes.len(), slots);
        assert_eq!(tree.heap_bytes(), bytes);
        check_invariants(&tree);
    }

    #[test]
    fn clone_is_independent() {
        let mut tree = OrderStatTree::new();
        for key in 0..10u64 {
            tree.insert(key, 0);
        }
        let snapshot = tree.clone();
        tree.remove(3, 0);
        assert!(snapshot.contains(3, 0));
        assert_eq!(snapshot.len(), 10);
        assert_eq!(tree.len(), 9);
        check_invariants(&tree);
        check_invariants(&snapshot);
    }
}
