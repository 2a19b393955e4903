//! The two-way room index of one namespace: room → members and
//! socket → rooms, kept consistent under one lock so a broadcast sees a
//! single coherent state.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Generic over the member handle so the index is testable on its own.
#[derive(Debug)]
pub(crate) struct RoomIndex<K, V> {
    members: HashMap<K, V>,
    rooms: HashMap<String, HashMap<K, V>>,
    by_member: HashMap<K, HashSet<String>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Default for RoomIndex<K, V> {
    fn default() -> Self {
        Self { members: HashMap::new(), rooms: HashMap::new(), by_member: HashMap::new() }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> RoomIndex<K, V> {
    /// Register a member (not yet in any room).
    pub fn insert(&mut self, key: K, value: V) {
        self.members.insert(key.clone(), value);
        self.by_member.entry(key).or_default();
    }

    /// Remove a member from the index and every room; returns the rooms it left.
    pub fn remove(&mut self, key: &K) -> Vec<String> {
        self.members.remove(key);
        let rooms = self.by_member.remove(key).unwrap_or_default();
        for room in &rooms {
            if let Some(m) = self.rooms.get_mut(room) {
                m.remove(key);
                if m.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Add a registered member to `room`; false if it was already there or is unknown.
    pub fn join(&mut self, key: &K, room: &str) -> bool {
        let (Some(value), Some(mine)) = (self.members.get(key), self.by_member.get_mut(key)) else {
            return false;
        };
        if !mine.insert(room.to_owned()) {
            return false;
        }
        self.rooms.entry(room.to_owned()).or_default().insert(key.clone(), value.clone());
        true
    }

    /// Remove a member from `room`; false if it was not there.
    pub fn leave(&mut self, key: &K, room: &str) -> bool {
        let Some(mine) = self.by_member.get_mut(key) else { return false };
        if !mine.remove(room) {
            return false;
        }
        if let Some(m) = self.rooms.get_mut(room) {
            m.remove(key);
            if m.is_empty() {
                self.rooms.remove(room);
            }
        }
        true
    }

    pub fn members(&self) -> &HashMap<K, V> {
        &self.members
    }

    pub fn rooms_of(&self, key: &K) -> Option<&HashSet<String>> {
        self.by_member.get(key)
    }

    pub fn room_names(&self) -> impl Iterator<Item = &String> {
        self.rooms.keys()
    }

    pub fn contains(&self, key: &K, room: &str) -> bool {
        self.by_member.get(key).is_some_and(|r| r.contains(room))
    }

    /// Visit each member targeted by `rooms` (all members when empty) that is in
    /// none of the `except` rooms, exactly once.
    pub fn for_each_target(&self, rooms: &[String], except: &[String], mut f: impl FnMut(&V)) -> usize {
        // Usually `except` is the sender's own room: a handful of members,
        // compared directly rather than hashed for every recipient.
        let excluded: Vec<&K> = except.iter().filter_map(|r| self.rooms.get(r)).flat_map(HashMap::keys).collect();
        let excluded_set: Option<HashSet<&K>> = (excluded.len() > 8).then(|| excluded.iter().copied().collect());
        let is_excluded = |k: &K| match &excluded_set {
            Some(set) => set.contains(k),
            None => excluded.contains(&k),
        };
        let mut count = 0;
        let mut visit = |k: &K, v: &V| {
            if !is_excluded(k) {
                f(v);
                count += 1;
            }
        };
        match rooms {
            [] => self.members.iter().for_each(|(k, v)| visit(k, v)),
            [room] => {
                if let Some(m) = self.rooms.get(room) {
                    m.iter().for_each(|(k, v)| visit(k, v));
                }
            }
            many => {
                let mut seen = HashSet::new();
                for m in many.iter().filter_map(|r| self.rooms.get(r)) {
                    for (k, v) in m {
                        if seen.insert(k) {
                            visit(k, v);
                        }
                    }
                }
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> RoomIndex<u32, u32> {
        let mut ix = RoomIndex::default();
        for k in 1..=4 {
            ix.insert(k, k * 10);
        }
        ix.join(&1, "a");
        ix.join(&2, "a");
        ix.join(&2, "b");
        ix.join(&3, "b");
        ix.join(&4, "x");
        ix
    }

    fn targets(ix: &RoomIndex<u32, u32>, rooms: &[&str], except: &[&str]) -> Vec<u32> {
        let s = |v: &[&str]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        let mut out = Vec::new();
        let n = ix.for_each_target(&s(rooms), &s(except), |v| out.push(*v));
        assert_eq!(n, out.len());
        out.sort();
        out
    }

    #[test]
    fn targeting() {
        let ix = index();
        assert_eq!(targets(&ix, &[], &[]), vec![10, 20, 30, 40]);
        assert_eq!(targets(&ix, &["a"], &[]), vec![10, 20]);
        assert_eq!(targets(&ix, &["a", "b"], &[]), vec![10, 20, 30], "union without duplicates");
        assert_eq!(targets(&ix, &["a", "b"], &["b"]), vec![10]);
        assert_eq!(targets(&ix, &[], &["a"]), vec![30, 40]);
        assert_eq!(targets(&ix, &["nope"], &[]), Vec::<u32>::new());
        // Many excluded members take the hashed path.
        let mut big = RoomIndex::default();
        for k in 0..20u32 {
            big.insert(k, k);
            big.join(&k, if k < 12 { "crowd" } else { "rest" });
        }
        assert_eq!(targets(&big, &[], &["crowd"]), (12..20).collect::<Vec<_>>());
    }

    #[test]
    fn two_way_consistency() {
        let mut ix = index();
        assert!(!ix.join(&1, "a"), "second join is a no-op");
        assert!(!ix.join(&99, "a"), "unknown member");
        assert!(ix.contains(&2, "b"));
        assert!(ix.leave(&2, "b"));
        assert!(!ix.leave(&2, "b"));
        assert_eq!(targets(&ix, &["b"], &[]), vec![30]);
        let mut left = ix.remove(&3);
        left.sort();
        assert_eq!(left, vec!["b".to_string()]);
        assert!(!ix.room_names().any(|r| r == "b"), "empty rooms are dropped");
        assert_eq!(ix.room_names().count(), 2);
        assert!(!ix.members().contains_key(&3));
    }
}
