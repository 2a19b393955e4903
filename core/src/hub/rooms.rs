//! The two-way room index of one namespace: room → members and
//! socket → rooms, kept consistent under one lock so a broadcast sees a
//! single coherent state.
//!
//! Every member is also in a room named by its own key (Socket.IO's room per
//! socket id). That room is implied by the member, not stored: a stored
//! one-member room cost each idle connection some 400 bytes.

use std::borrow::Borrow;
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

impl<K: Hash + Eq + Clone + Borrow<str>, V: Clone> RoomIndex<K, V> {
    /// Register a member (not yet in any room).
    pub fn insert(&mut self, key: K, value: V) {
        self.members.insert(key.clone(), value);
        self.by_member.entry(key).or_default();
    }

    /// Remove a member from the index and every room; returns the rooms it left.
    pub fn remove(&mut self, key: &K) -> Vec<String> {
        self.members.remove::<K>(key);
        let rooms = self.by_member.remove::<K>(key).unwrap_or_default();
        for room in &rooms {
            if let Some(m) = self.rooms.get_mut(room) {
                m.remove::<K>(key);
                if m.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Add a registered member to `room`; false if it was already there or is unknown.
    pub fn join(&mut self, key: &K, room: &str) -> bool {
        let (Some(value), Some(mine)) = (self.members.get::<K>(key), self.by_member.get_mut::<K>(key)) else {
            return false;
        };
        if room == key.borrow() {
            return false;
        }
        if !mine.insert(room.to_owned()) {
            return false;
        }
        self.rooms.entry(room.to_owned()).or_default().insert(key.clone(), value.clone());
        true
    }

    /// Remove a member from `room`; false if it was not there.
    pub fn leave(&mut self, key: &K, room: &str) -> bool {
        let Some(mine) = self.by_member.get_mut::<K>(key) else { return false };
        if !mine.remove(room) {
            return false;
        }
        if let Some(m) = self.rooms.get_mut(room) {
            m.remove::<K>(key);
            if m.is_empty() {
                self.rooms.remove(room);
            }
        }
        true
    }

    /// Members who joined `room` by name.
    pub fn room_len(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, HashMap::len)
    }

    pub fn members(&self) -> &HashMap<K, V> {
        &self.members
    }

    /// The member's rooms, its own first; empty for an unknown key.
    pub fn rooms_of(&self, key: &K) -> Vec<String> {
        let Some(named) = self.by_member.get::<K>(key) else { return Vec::new() };
        std::iter::once(key.borrow().to_owned()).chain(named.iter().cloned()).collect()
    }

    /// Every room with members: the named ones, then each member's own.
    pub fn room_names(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str).chain(self.members.keys().map(Borrow::borrow))
    }

    /// Rooms joined by name (own rooms aside).
    pub fn named_rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str).filter(|r| !self.members.contains_key(*r))
    }

    pub fn contains(&self, key: &K, room: &str) -> bool {
        self.by_member.get::<K>(key).is_some_and(|r| room == key.borrow() || r.contains(room))
    }

    /// The members of `room`: those who joined it by name, and the member
    /// whose own room it is.
    fn room(&self, room: &str) -> impl Iterator<Item = (&K, &V)> {
        let named = self.rooms.get(room);
        let own = self.members.get_key_value(room).filter(|(k, _)| !named.is_some_and(|m| m.contains_key::<K>(*k)));
        named.into_iter().flatten().chain(own)
    }

    /// Visit each member targeted by `rooms` (all members when empty) that is in
    /// none of the `except` rooms, exactly once.
    pub fn for_each_target(&self, rooms: &[String], except: &[String], mut f: impl FnMut(&V)) -> usize {
        // Usually `except` is the sender's own room: a handful of members,
        // compared directly rather than hashed for every recipient.
        let excluded: Vec<&K> = except.iter().flat_map(|r| self.room(r)).map(|(k, _)| k).collect();
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
            [room] => self.room(room).for_each(|(k, v)| visit(k, v)),
            many => {
                let mut seen = HashSet::new();
                for (k, v) in many.iter().flat_map(|r| self.room(r)) {
                    if seen.insert(k) {
                        visit(k, v);
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

    fn key(k: u32) -> String {
        format!("s{k}")
    }

    fn index() -> RoomIndex<String, u32> {
        let mut ix = RoomIndex::default();
        for k in 1..=4 {
            ix.insert(key(k), k * 10);
        }
        ix.join(&key(1), "a");
        ix.join(&key(2), "a");
        ix.join(&key(2), "b");
        ix.join(&key(3), "b");
        ix.join(&key(4), "x");
        ix
    }

    fn targets(ix: &RoomIndex<String, u32>, rooms: &[&str], except: &[&str]) -> Vec<u32> {
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
        // Own rooms: targeted and excluded like any other.
        assert_eq!(targets(&ix, &["s3"], &[]), vec![30]);
        assert_eq!(targets(&ix, &["a", "s3", "s1"], &[]), vec![10, 20, 30]);
        assert_eq!(targets(&ix, &["a"], &["s1"]), vec![20]);
        // Many excluded members take the hashed path.
        let mut big = RoomIndex::default();
        for k in 0..20u32 {
            big.insert(key(k), k);
            big.join(&key(k), if k < 12 { "crowd" } else { "rest" });
        }
        assert_eq!(targets(&big, &[], &["crowd"]), (12..20).collect::<Vec<_>>());
    }

    #[test]
    fn own_rooms_are_implied() {
        let mut ix = index();
        assert!(ix.contains(&key(1), "s1"));
        assert!(!ix.contains(&key(1), "s2"));
        assert!(!ix.join(&key(1), "s1"), "already in its own room");
        assert!(!ix.leave(&key(1), "s1"), "an own room is not left");
        assert_eq!(ix.rooms_of(&key(2)).first().map(String::as_str), Some("s2"));
        assert_eq!(ix.rooms_of(&key(2)).len(), 3);
        assert!(ix.room_names().any(|r| r == "s4"));
        assert_eq!(ix.named_rooms().count(), 3);
        // Joining another member's own room by name puts both in it, once each.
        assert!(ix.join(&key(2), "s1"));
        assert_eq!(targets(&ix, &["s1"], &[]), vec![10, 20]);
        assert_eq!(ix.named_rooms().count(), 3, "a member's room is not a named one");
    }

    #[test]
    fn two_way_consistency() {
        let mut ix = index();
        assert!(!ix.join(&key(1), "a"), "second join is a no-op");
        assert!(!ix.join(&key(99), "a"), "unknown member");
        assert!(ix.contains(&key(2), "b"));
        assert!(ix.leave(&key(2), "b"));
        assert!(!ix.leave(&key(2), "b"));
        assert_eq!(targets(&ix, &["b"], &[]), vec![30]);
        let mut left = ix.remove(&key(3));
        left.sort();
        assert_eq!(left, vec!["b".to_string()]);
        assert!(!ix.room_names().any(|r| r == "b"), "empty rooms are dropped");
        assert!(!ix.room_names().any(|r| r == "s3"), "a removed member's own room goes with it");
        assert_eq!(ix.named_rooms().count(), 2);
        assert!(!ix.members().contains_key(&key(3)));
    }
}
