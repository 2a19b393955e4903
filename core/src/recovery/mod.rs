//! Connection state recovery (socket.io's `connectionStateRecovery`): with
//! it on, every recoverable packet (an event without ack, a room message,
//! not volatile) gets an offset, which goes to the client with it, and is
//! kept for the recovery window. A socket that loses its connection for a
//! recoverable reason leaves a session behind (id, rooms, data, user). A
//! client reconnecting with the session's private id and its last offset
//! within the window gets its socket back and every packet it missed, in
//! order, before any new one.
//!
//! One namespace has one order: offsets are assigned, and recipients
//! queued, under the buffer's lock, so every socket receives a namespace's
//! recoverable packets in offset order and "everything after my last
//! offset" is exactly what it missed. In a cluster the order is the Redis
//! stream's (see `cluster::streams`).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hub::packet::Packet;

/// How long and how much a server keeps for reconnecting clients.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryConfig {
    /// How long after a disconnection the client may still recover
    /// (socket.io's `maxDisconnectionDuration`, default 2 minutes). Packets
    /// are kept this long.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the auth and connect hooks (it
    /// passed them when it first connected; default true, as socket.io).
    pub skip_middlewares: bool,
    /// Packets kept per namespace at most (default 10 000); a client whose
    /// offset is older than the oldest kept packet gets a new session.
    pub max_packets: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self { max_disconnection_duration: Duration::from_secs(120), skip_middlewares: true, max_packets: 10_000 }
    }
}

/// The position of a packet in its namespace's order: milliseconds and a
/// sequence number within them, written `ms-seq` like a Redis stream id
/// (which it is in a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    pub ms: u64,
    pub seq: u64,
}

impl Offset {
    /// The offset after `self` at time `now_ms` (strictly greater).
    fn next(self, now_ms: u64) -> Self {
        if now_ms > self.ms { Offset { ms: now_ms, seq: 0 } } else { Offset { ms: self.ms, seq: self.seq + 1 } }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Offset {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (ms, seq) = s.split_once('-').ok_or(())?;
        Ok(Offset { ms: ms.parse().map_err(|_| ())?, seq: seq.parse().map_err(|_| ())? })
    }
}

impl Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|()| serde::de::Error::custom("bad offset"))
    }
}

/// Where a recovered socket's replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// After this offset: the client's last one.
    After(Offset),
    /// At this offset: the first packet queued to a socket whose client
    /// reports none (it received none of them).
    From(Offset),
}

impl Resume {
    fn wants(self, offset: Offset) -> bool {
        match self {
            Resume::After(o) => offset > o,
            Resume::From(o) => offset >= o,
        }
    }
}

/// What a disconnected socket leaves behind for its client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub pid: String,
    pub sid: String,
    /// Named rooms (not the socket's own room or its user's room).
    pub rooms: Vec<String>,
    pub data: Value,
    pub user_id: Option<String>,
    pub presence: Option<Value>,
    /// Where the replay starts when the client reports no offset: the first
    /// recoverable packet queued to the socket, else the last offset of the
    /// namespace when it went away.
    pub start: Resume,
}

impl Session {
    /// Whether a broadcast to `rooms` except `except` reached this socket
    /// (socket.io's rule: in one of the rooms, or all, and in none excepted).
    pub fn targeted_by(&self, rooms: &[String], except: &[String]) -> bool {
        let user = self.user_id.as_ref().map(|u| format!("{}{u}", crate::hub::namespace::USER_ROOM_PREFIX));
        let mine = |r: &String| *r == self.sid || self.rooms.contains(r) || user.as_ref() == Some(r);
        (rooms.is_empty() || rooms.iter().any(mine)) && !except.iter().any(mine)
    }
}

/// Where the replay of a reconnecting client starts: after its offset when
/// it sent one, else the session's own start.
pub(crate) fn resume_point(client: Option<&str>, session: &Session) -> Option<Resume> {
    match client {
        Some(o) => o.parse().ok().map(Resume::After),
        None => Some(session.start),
    }
}

struct Kept {
    offset: Offset,
    at: Instant,
    rooms: Vec<String>,
    except: Vec<String>,
    packet: Packet,
}

struct Parked {
    session: Session,
    at: Instant,
}

#[derive(Default)]
struct State {
    last: Offset,
    /// The newest offset dropped from `packets`: a client behind it missed
    /// something that is gone.
    trimmed: Option<Offset>,
    packets: VecDeque<Kept>,
    sessions: HashMap<String, Parked>,
}

/// One namespace's recovery state on a single node: its order, the packets
/// of the window and the sessions waiting for their clients.
pub(crate) struct Buffer {
    config: RecoveryConfig,
    /// In a cluster the packets and sessions live in Redis; only the order
    /// seen here is tracked.
    local: bool,
    state: Mutex<State>,
}

impl Buffer {
    pub fn new(config: RecoveryConfig, local: bool) -> Self {
        Self { config, local, state: Mutex::default() }
    }

    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Whether this node keeps the packets and sessions itself (no cluster).
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Single node: give a recoverable packet the next offset, keep a copy
    /// of it, and hand it to `deliver` while the order is held, so no other
    /// packet of the namespace reaches any socket in between.
    pub fn record<R>(
        &self,
        rooms: &[String],
        except: &[String],
        packet: Packet,
        deliver: impl FnOnce(Offset, Packet) -> R,
    ) -> R {
        let mut st = self.state.lock();
        let now = Instant::now();
        let offset = st.last.next(crate::presence::now_ms());
        st.last = offset;
        st.packets.push_back(Kept {
            offset,
            at: now,
            rooms: rooms.to_vec(),
            except: except.to_vec(),
            packet: packet.clone(),
        });
        self.trim(&mut st, now);
        deliver(offset, packet)
    }

    /// Hand a packet the cluster already ordered to `deliver`, in order.
    pub fn ordered<R>(&self, offset: Offset, deliver: impl FnOnce() -> R) -> R {
        let mut st = self.state.lock();
        if offset > st.last {
            st.last = offset;
        }
        deliver()
    }

    /// The newest offset of the namespace.
    pub fn last(&self) -> Offset {
        self.state.lock().last
    }

    fn trim(&self, st: &mut State, now: Instant) {
        let window = self.config.max_disconnection_duration;
        while let Some(front) = st.packets.front() {
            if now.duration_since(front.at) <= window && st.packets.len() <= self.config.max_packets.max(1) {
                break;
            }
            st.trimmed = Some(front.offset);
            st.packets.pop_front();
        }
        st.sessions.retain(|_, p| now.duration_since(p.at) <= window);
    }

    /// Sessions kept for their clients (single node only). Those past the
    /// window are dropped first: expiry is otherwise lazy (on the next
    /// record, park or take), so a metrics scrape also frees what an idle
    /// namespace would keep.
    pub fn parked(&self) -> usize {
        let mut st = self.state.lock();
        self.trim(&mut st, Instant::now());
        st.sessions.len()
    }

    /// Keep `session` for its client (single node only).
    pub fn park(&self, session: Session) {
        let mut st = self.state.lock();
        self.trim(&mut st, Instant::now());
        st.sessions.insert(session.pid.clone(), Parked { session, at: Instant::now() });
    }

    /// Take the session `pid` and where its replay starts after `offset`
    /// (the client's last offset; `None`: it received none). `None` when
    /// there is no such session within the window, or when packets after
    /// the offset are gone (the client gets a new session).
    pub fn take(&self, pid: &str, offset: Option<&str>) -> Option<(Session, Resume)> {
        let mut st = self.state.lock();
        self.trim(&mut st, Instant::now());
        let session = st.sessions.remove(pid)?.session;
        let from = resume_point(offset, &session)?;
        let behind = match (from, st.trimmed) {
            (_, None) => false,
            (Resume::After(o), Some(t)) => o < t,
            (Resume::From(o), Some(t)) => o <= t,
        };
        let beyond = matches!(from, Resume::After(o) if o > st.last);
        (!behind && !beyond).then_some((session, from))
    }

    /// The kept packets since `from` that reached `session`'s rooms, in order.
    pub fn missed(&self, session: &Session, from: Resume) -> Vec<(Offset, Packet)> {
        let st = self.state.lock();
        st.packets
            .iter()
            .filter(|k| from.wants(k.offset) && session.targeted_by(&k.rooms, &k.except))
            .map(|k| (k.offset, k.packet.clone()))
            .collect()
    }
}

/// Why a socket went away, and whether its client may recover the session
/// (socket.io's recoverable reasons, plus a slow consumer: it reconnects
/// and gets what overflowed).
pub(crate) fn recoverable(reason: crate::hub::socket::DisconnectReason) -> bool {
    use crate::hub::socket::DisconnectReason as R;
    matches!(
        reason,
        R::TransportClose
            | R::TransportError
            | R::PingTimeout
            | R::ServerShutdown
            | R::ForcedServerClose
            | R::SlowConsumer
    )
}

/// A new private session id: 128 random bits, URL-safe base64.
pub(crate) fn new_pid() -> String {
    crate::hub::socket::Sid::generate().as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::args::Args;

    fn event(n: u64) -> Packet {
        Packet::Event { event: "e".into(), args: Args::one(serde_json::json!(n)), id: None }
    }

    fn session(pid: &str, rooms: &[&str], start: Resume) -> Session {
        Session {
            pid: pid.into(),
            sid: "sid".into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            data: Value::Null,
            user_id: Some("u".into()),
            presence: None,
            start,
        }
    }

    fn r(rooms: &[&str]) -> Vec<String> {
        rooms.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn offsets_order_and_round_trip() {
        let a = Offset { ms: 5, seq: 0 };
        assert_eq!(a.next(5), Offset { ms: 5, seq: 1 });
        assert_eq!(a.next(4), Offset { ms: 5, seq: 1 }, "a clock going back keeps the order");
        assert_eq!(a.next(9), Offset { ms: 9, seq: 0 });
        assert_eq!("17-3".parse::<Offset>(), Ok(Offset { ms: 17, seq: 3 }));
        assert!("17".parse::<Offset>().is_err() && "x-1".parse::<Offset>().is_err());
        assert_eq!(Offset { ms: 17, seq: 3 }.to_string(), "17-3");
    }

    #[test]
    fn restores_exactly_what_the_rooms_missed_in_order() {
        let b = Buffer::new(RecoveryConfig::default(), true);
        let first = b.record(&r(&["a"]), &[], event(1), |o, _| o);
        b.record(&r(&["b"]), &[], event(2), |o, _| o);
        b.record(&[], &r(&["sid"]), event(3), |o, _| o); // all but this socket
        b.record(&[], &[], event(4), |o, _| o);
        b.record(&r(&["user:u"]), &[], event(5), |o, _| o);
        b.record(&r(&["sid"]), &[], event(6), |o, _| o);
        b.park(session("p", &["a"], Resume::After(b.last())));
        let (session, from) = b.take("p", Some(&first.to_string())).expect("restored");
        let got: Vec<_> = b.missed(&session, from).into_iter().map(|(_, p)| p).collect();
        assert_eq!(got, vec![event(4), event(5), event(6)]);
        assert!(b.take("p", Some(&first.to_string())).is_none(), "a session is restored once");
    }

    #[test]
    fn no_offset_replays_from_the_sessions_start() {
        let b = Buffer::new(RecoveryConfig::default(), true);
        let o1 = b.record(&[], &[], event(1), |o, _| o);
        b.record(&[], &[], event(2), |o, _| o);
        b.park(session("p", &[], Resume::From(o1)));
        let (session, from) = b.take("p", None).expect("restored");
        assert_eq!(b.missed(&session, from).len(), 2);
    }

    #[test]
    fn trimmed_packets_or_unknown_offsets_give_a_new_session() {
        let cfg = RecoveryConfig { max_packets: 2, ..RecoveryConfig::default() };
        let b = Buffer::new(cfg, true);
        let o1 = b.record(&[], &[], event(1), |o, _| o);
        let o2 = b.record(&[], &[], event(2), |o, _| o);
        b.record(&[], &[], event(3), |o, _| o);
        b.record(&[], &[], event(4), |o, _| o);
        b.park(session("p", &[], Resume::After(o1)));
        assert!(b.take("p", Some(&o1.to_string())).is_none(), "packet 2 is gone");
        b.park(session("p", &[], Resume::After(o1)));
        assert!(b.take("p", Some(&o2.to_string())).is_some());
        b.park(session("p", &[], Resume::After(o1)));
        assert!(b.take("p", Some("999999999999999-0")).is_none(), "an offset from the future");
        b.park(session("p", &[], Resume::After(o1)));
        assert!(b.take("p", Some("garbage")).is_none());
        assert!(b.take("nope", None).is_none());
    }

    #[test]
    fn sessions_expire_with_the_window() {
        let cfg = RecoveryConfig { max_disconnection_duration: Duration::from_millis(30), ..RecoveryConfig::default() };
        let b = Buffer::new(cfg, true);
        b.park(session("p", &[], Resume::After(Offset::default())));
        assert!(b.take("p", None).is_some());
        b.park(session("p", &[], Resume::After(Offset::default())));
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.take("p", None).is_none());
    }
}
