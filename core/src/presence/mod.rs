//! Presence: who is in a room, aggregated per user. A user with three tabs
//! in a room is one member with three connections; a socket without a user
//! id is a member of its own.
//!
//! Each namespace keeps a [`Tracker`] of its local members. On one node the
//! tracker's transitions are the events; in a cluster the node hands its
//! local counts to Redis, which decides (see `cluster::presence`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::hub::namespace::USER_ROOM_PREFIX;
use crate::hub::socket::Socket;

/// One member of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The user id, or the socket id of a socket without one.
    pub user_id: String,
    /// Whether `user_id` is a socket id (the socket had no user id).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// Connections of this member in the room (on every node).
    pub connections: u64,
    /// `{"status": "online" | "away" | "busy", ...}` and whatever else was set.
    pub meta: Value,
    /// When the member's first connection entered, in ms since the Unix epoch.
    pub joined_at: u64,
    /// The member's last presence activity (enter, leave, update), same unit.
    pub last_seen: u64,
}

/// The kind of a presence event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceKind {
    /// The member's first connection entered the room.
    Join,
    /// The member's last connection left (or its node died).
    Leave,
    /// The member's metadata changed.
    Update,
}

impl PresenceKind {
    /// The Socket.IO event name.
    pub fn event(self) -> &'static str {
        match self {
            Self::Join => "presence:join",
            Self::Leave => "presence:leave",
            Self::Update => "presence:update",
        }
    }
}

/// What is announced to a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceEvent {
    pub kind: PresenceKind,
    pub room: String,
    pub member: Member,
}

impl PresenceEvent {
    /// The event's single argument: the member with its room.
    pub fn payload(&self) -> Value {
        let mut v = serde_json::to_value(&self.member).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("room".into(), Value::String(self.room.clone()));
        }
        v
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The metadata a member starts with.
pub(crate) fn default_meta() -> Value {
    json!({"status": "online"})
}

/// Check `meta` (a JSON object; `status` one of online, away, busy) and fill
/// in `status` when missing.
pub(crate) fn validate_meta(meta: Value) -> Result<Value> {
    let Value::Object(mut map) = meta else {
        return Err(Error::new(ErrorKind::InvalidArgument, "presence metadata must be a JSON object"));
    };
    match map.get("status") {
        None => {
            map.insert("status".into(), Value::String("online".into()));
        }
        Some(Value::String(s)) if matches!(s.as_str(), "online" | "away" | "busy") => {}
        Some(other) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("presence status must be \"online\", \"away\" or \"busy\", not {other}"),
            ));
        }
    }
    Ok(Value::Object(map))
}

/// The member key of a socket: its user id, else its socket id. The two
/// kinds cannot collide: keys are tagged.
pub(crate) fn member_key(socket: &Socket) -> String {
    match socket.user_id() {
        Some(u) => format!("u:{u}"),
        None => format!("s:{}", socket.id()),
    }
}

/// `(user_id, anonymous)` of a member key.
pub(crate) fn parse_key(key: &str) -> (String, bool) {
    match key.split_once(':') {
        Some(("s", sid)) => (sid.to_owned(), true),
        Some((_, user)) => (user.to_owned(), false),
        None => (key.to_owned(), false),
    }
}

#[derive(Debug, Clone)]
struct Local {
    sockets: u64,
    /// The socket that entered last (a join event skips it).
    last: String,
    meta: Value,
    joined_at: u64,
    last_seen: u64,
}

impl Local {
    fn member(&self, key: &str) -> Member {
        let (user_id, anonymous) = parse_key(key);
        Member {
            user_id,
            anonymous,
            connections: self.sockets,
            meta: self.meta.clone(),
            joined_at: self.joined_at,
            last_seen: self.last_seen,
        }
    }
}

/// The local members of one namespace's tracked rooms.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Every named room of the namespace is tracked.
    everywhere: AtomicBool,
    rooms: RwLock<HashSet<String>>,
    members: Mutex<HashMap<String, HashMap<String, Local>>>,
}

impl Tracker {
    pub fn enable_all(&self) {
        self.everywhere.store(true, Ordering::Relaxed);
    }

    pub fn enable(&self, room: &str) {
        self.rooms.write().insert(room.to_owned());
    }

    /// Whether `room` has presence (a socket's own room and user rooms never do).
    pub fn tracks(&self, socket_room: bool, room: &str) -> bool {
        if socket_room || room.starts_with(USER_ROOM_PREFIX) {
            return false;
        }
        self.everywhere.load(Ordering::Relaxed) || self.rooms.read().contains(room)
    }

    /// Connection `sid` of `key` entered `room`; the member when it is new here.
    pub fn enter(&self, room: &str, key: &str, sid: &str, meta: &Value) -> Option<Member> {
        let now = now_ms();
        let mut all = self.members.lock();
        let entry = all.entry(room.to_owned()).or_default().entry(key.to_owned()).or_insert_with(|| Local {
            sockets: 0,
            last: String::new(),
            meta: meta.clone(),
            joined_at: now,
            last_seen: now,
        });
        entry.sockets += 1;
        entry.last_seen = now;
        sid.clone_into(&mut entry.last);
        (entry.sockets == 1).then(|| entry.member(key))
    }

    /// A connection of `key` left `room`; the member when it was the last.
    pub fn exit(&self, room: &str, key: &str) -> Option<Member> {
        let mut all = self.members.lock();
        let members = all.get_mut(room)?;
        let entry = members.get_mut(key)?;
        entry.sockets -= 1;
        entry.last_seen = now_ms();
        if entry.sockets > 0 {
            return None;
        }
        let member = entry.member(key);
        members.remove(key);
        if members.is_empty() {
            all.remove(room);
        }
        Some(member)
    }

    /// Replace the metadata of `key` in `room`; the updated member.
    pub fn update(&self, room: &str, key: &str, meta: &Value) -> Option<Member> {
        let mut all = self.members.lock();
        let entry = all.get_mut(room)?.get_mut(key)?;
        entry.meta = meta.clone();
        entry.last_seen = now_ms();
        Some(entry.member(key))
    }

    /// The local members of `room`.
    pub fn members(&self, room: &str) -> Vec<Member> {
        let all = self.members.lock();
        all.get(room).map(|m| m.iter().map(|(k, l)| l.member(k)).collect()).unwrap_or_default()
    }

    /// How many local members `room` has.
    pub fn count(&self, room: &str) -> usize {
        self.members.lock().get(room).map_or(0, HashMap::len)
    }

    /// The local member `key` of `room`, and the socket of it that entered last.
    pub fn member(&self, room: &str, key: &str) -> Option<(Member, String)> {
        self.members.lock().get(room)?.get(key).map(|l| (l.member(key), l.last.clone()))
    }

    /// Every (room, key) with local connections.
    pub fn keys(&self) -> Vec<(String, String)> {
        let all = self.members.lock();
        all.iter().flat_map(|(r, m)| m.keys().map(move |k| (r.clone(), k.clone()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_connections_per_member() {
        let t = Tracker::default();
        t.enable("r");
        let meta = default_meta();
        assert!(t.enter("r", "u:alice", "s1", &meta).is_some(), "first connection: a new member");
        assert!(t.enter("r", "u:alice", "s2", &meta).is_none(), "second tab: same member");
        assert!(t.enter("r", "s:abc", "abc", &meta).is_some());
        assert_eq!(t.member("r", "u:alice").map(|(_, last)| last), Some("s2".to_owned()));
        let mut members = t.members("r");
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        assert_eq!((members.len(), t.count("r"), t.count("other")), (2, 2, 0));
        assert_eq!((members[0].user_id.as_str(), members[0].connections, members[0].anonymous), ("abc", 1, true));
        assert_eq!((members[1].user_id.as_str(), members[1].connections, members[1].anonymous), ("alice", 2, false));
        assert!(t.exit("r", "u:alice").is_none(), "one tab left, still a member");
        let gone = t.exit("r", "u:alice").expect("last connection");
        assert_eq!(gone.user_id, "alice");
        assert!(t.exit("r", "u:alice").is_none(), "unknown member");
        let updated = t.update("r", "s:abc", &json!({"status": "away"})).expect("member");
        assert_eq!(updated.meta["status"], "away");
        assert_eq!(t.keys(), vec![("r".to_owned(), "s:abc".to_owned())]);
    }

    #[test]
    fn which_rooms_are_tracked() {
        let t = Tracker::default();
        t.enable("lobby");
        assert!(t.tracks(false, "lobby") && !t.tracks(false, "other"));
        t.enable_all();
        assert!(t.tracks(false, "other"));
        assert!(!t.tracks(true, "sid-room") && !t.tracks(false, "user:bob"));
    }

    #[test]
    fn metadata_is_checked() {
        assert_eq!(validate_meta(json!({})).unwrap(), json!({"status": "online"}));
        assert_eq!(validate_meta(json!({"status": "busy", "x": 1})).unwrap()["x"], 1);
        assert_eq!(validate_meta(json!({"status": "gone"})).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(validate_meta(json!([1])).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}
