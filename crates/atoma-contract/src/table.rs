//! Journaled maps: how a failed call changes nothing.
//!
//! Every write to a [`Table`] or [`Cell`] records the value it replaced. When a call succeeds
//! the journal is dropped ([`Journal::commit`]); when it fails — or panics — the journal is
//! played backwards ([`Journal::rollback`]) and the state is exactly what it was before the call.
//! Entry functions can therefore check and mutate in any order and return early with `?`.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A deterministic map whose writes can be undone until the next commit.
#[derive(Clone, Debug)]
pub struct Table<K, V> {
    map: BTreeMap<K, V>,
    undo: Vec<(K, Option<V>)>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table { map: BTreeMap::new(), undo: Vec::new() }
    }
}

impl<K: Ord + Clone, V: Clone> Table<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// A mutable reference to the value under `key`; its old value is journaled.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let old = self.map.get(key)?.clone();
        self.undo.push((key.clone(), Some(old)));
        self.map.get_mut(key)
    }

    /// Inserts `value` under `key`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.map.insert(key.clone(), value);
        self.undo.push((key, old.clone()));
        old
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.map.remove(key)?;
        self.undo.push((key.clone(), Some(old.clone())));
        Some(old)
    }

    /// Entries in key order.
    pub fn iter(&self) -> std::collections::btree_map::Iter<'_, K, V> {
        self.map.iter()
    }

    /// Entries whose keys fall in `range`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> std::collections::btree_map::Range<'_, K, V> {
        self.map.range(range)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Values in key order.
    pub fn values(&self) -> std::collections::btree_map::Values<'_, K, V> {
        self.map.values()
    }

    /// Writes since the last commit, oldest first: each key with the value it replaced.
    pub fn journal(&self) -> impl Iterator<Item = (&K, Option<&V>)> {
        self.undo.iter().map(|(k, v)| (k, v.as_ref()))
    }

    /// Keys written since the last commit or rollback, possibly repeated.
    pub fn dirty_keys(&self) -> impl Iterator<Item = &K> {
        self.undo.iter().map(|(k, _)| k)
    }
}

/// A key that is a small sequential number, so that a vector can index by it.
pub trait DenseKey: Copy + Ord {
    /// The slot of the key.
    fn to_index(self) -> u64;
    /// The key of a slot.
    fn from_index(index: u64) -> Self;
}

/// The highest slot a [`Slab`] accepts: ids come from counters, so this is never reached by
/// calls; it bounds what a corrupted snapshot could make the slab allocate.
pub const MAX_SLAB_INDEX: u64 = 1 << 32;

/// A journaled map over sequential ids (node and stack small ids), stored as a vector of boxed
/// values: 8 bytes per id plus the value, instead of a B-tree's half-empty nodes. Same contract as
/// [`Table`]: writes are undone by [`Journal::rollback`].
#[derive(Clone, Debug)]
pub struct Slab<K, V> {
    slots: Vec<Option<Box<V>>>,
    len: usize,
    undo: Vec<(K, Option<Box<V>>)>,
}

impl<K, V> Default for Slab<K, V> {
    fn default() -> Self {
        Slab { slots: Vec::new(), len: 0, undo: Vec::new() }
    }
}

impl<K: DenseKey, V: Clone> Slab<K, V> {
    fn slot(key: K) -> Option<usize> {
        let index = key.to_index();
        if index > MAX_SLAB_INDEX { None } else { usize::try_from(index).ok() }
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.slots.get(Self::slot(*key)?)?.as_deref()
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// A mutable reference to the value under `key`; its old value is journaled.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = self.slots.get_mut(Self::slot(*key)?)?.as_mut()?;
        self.undo.push((*key, Some(slot.clone())));
        Some(slot)
    }

    /// Puts `value` under `key` without journaling; returns the value it replaced.
    fn put(&mut self, key: K, value: Option<Box<V>>) -> Option<Box<V>> {
        let Some(index) = Self::slot(key) else {
            debug_assert!(false, "slab index beyond MAX_SLAB_INDEX");
            return None;
        };
        if index >= self.slots.len() {
            // Removing what was never there changes nothing.
            value.as_ref()?;
            self.slots.resize_with(index + 1, || None);
        }
        let old = std::mem::replace(&mut self.slots[index], value);
        self.len = self.len + usize::from(self.slots[index].is_some()) - usize::from(old.is_some());
        old
    }

    /// Inserts `value` under `key`, returning the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.put(key, Some(Box::new(value)));
        self.undo.push((key, old.clone()));
        old.map(|b| *b)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let old = self.put(*key, None)?;
        self.undo.push((*key, Some(old.clone())));
        Some(*old)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.slots.iter().enumerate().filter_map(|(i, v)| Some((K::from_index(i as u64), v.as_deref()?)))
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots.iter().filter_map(|v| v.as_deref())
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slab is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes since the last commit, oldest first: each key with the value it replaced.
    pub fn journal(&self) -> impl Iterator<Item = (&K, Option<&V>)> {
        self.undo.iter().map(|(k, v)| (k, v.as_deref()))
    }
}

impl<K: DenseKey, V: Clone> Journal for Slab<K, V> {
    fn commit(&mut self) {
        self.undo.clear();
    }

    fn rollback(&mut self) {
        while let Some((key, old)) = self.undo.pop() {
            self.put(key, old);
        }
    }
}

// Serialized as a map of the present entries: the same bytes as a `BTreeMap<K, V>`.
impl<K: DenseKey + Serialize, V: Clone + Serialize> Serialize for Slab<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, K: DenseKey + Deserialize<'de>, V: Clone + Deserialize<'de>> Deserialize<'de> for Slab<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<K, V>::deserialize(deserializer)?;
        let mut slab = Slab::default();
        for (key, value) in map {
            if key.to_index() > MAX_SLAB_INDEX {
                return Err(serde::de::Error::custom("slab index out of range"));
            }
            slab.put(key, Some(Box::new(value)));
        }
        Ok(slab)
    }
}

/// A single journaled value.
#[derive(Clone, Debug, Default)]
pub struct Cell<T> {
    value: T,
    saved: Option<T>,
}

impl<T: Clone> Cell<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Cell { value, saved: None }
    }

    /// The value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The value for writing; the first write since the last commit saves the old value.
    pub fn get_mut(&mut self) -> &mut T {
        if self.saved.is_none() {
            self.saved = Some(self.value.clone());
        }
        &mut self.value
    }
}

/// Something whose writes since the last commit can be kept or undone.
pub trait Journal {
    /// Keeps every write since the last commit.
    fn commit(&mut self);
    /// Undoes every write since the last commit, newest first.
    fn rollback(&mut self);
}

impl<K: Ord + Clone, V: Clone> Journal for Table<K, V> {
    fn commit(&mut self) {
        self.undo.clear();
    }

    fn rollback(&mut self) {
        while let Some((key, old)) = self.undo.pop() {
            match old {
                Some(value) => self.map.insert(key, value),
                None => self.map.remove(&key),
            };
        }
    }
}

impl<T: Clone> Journal for Cell<T> {
    fn commit(&mut self) {
        self.saved = None;
    }

    fn rollback(&mut self) {
        if let Some(saved) = self.saved.take() {
            self.value = saved;
        }
    }
}

// Only the committed contents are part of the state: the journal is never serialized.
impl<K: Serialize, V: Serialize> Serialize for Table<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(serializer)
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for Table<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Table { map: BTreeMap::deserialize(deserializer)?, undo: Vec::new() })
    }
}

impl<T: Serialize> Serialize for Cell<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Cell<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Cell { value: T::deserialize(deserializer)?, saved: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_restores_every_kind_of_write() {
        let mut t: Table<u32, String> = Table::default();
        t.insert(1, "a".into());
        t.insert(2, "b".into());
        t.commit();
        t.insert(3, "c".into());
        t.remove(&1);
        *t.get_mut(&2).unwrap() = "changed".into();
        t.insert(2, "again".into());
        t.rollback();
        let all: Vec<_> = t.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(all, vec![(1, "a".to_string()), (2, "b".to_string())]);
    }

    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Id(u64);
    impl DenseKey for Id {
        fn to_index(self) -> u64 {
            self.0
        }
        fn from_index(index: u64) -> Self {
            Id(index)
        }
    }

    #[test]
    fn slab_rollback_restores_every_kind_of_write() {
        let mut t: Slab<Id, String> = Slab::default();
        t.insert(Id(1), "a".into());
        t.insert(Id(3), "b".into());
        t.commit();
        t.insert(Id(7), "c".into());
        t.remove(&Id(1));
        *t.get_mut(&Id(3)).unwrap() = "changed".into();
        assert_eq!(t.len(), 2);
        t.rollback();
        let all: Vec<_> = t.iter().map(|(k, v)| (k, v.clone())).collect();
        assert_eq!(all, vec![(Id(1), "a".to_string()), (Id(3), "b".to_string())]);
        assert_eq!(t.len(), 2);
        assert!(t.get(&Id(u64::MAX)).is_none());
        assert!(t.remove(&Id(100)).is_none());
    }

    #[test]
    fn cell_rollback_keeps_first_saved_value() {
        let mut c = Cell::new(1u64);
        *c.get_mut() = 2;
        *c.get_mut() = 3;
        c.rollback();
        assert_eq!(*c.get(), 1);
        *c.get_mut() = 4;
        c.commit();
        c.rollback();
        assert_eq!(*c.get(), 4);
    }
}
