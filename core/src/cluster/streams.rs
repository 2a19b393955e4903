//! Connection state recovery across nodes, over Redis Streams.
//!
//! With recovery on, a namespace's recoverable broadcasts go through one
//! Lua script that appends the packet to the namespace's stream and
//! publishes it, with the stream id as its offset, on the target channels,
//! atomically. Every node, the sender included, delivers such a packet when
//! it comes back over pub/sub, so all nodes deliver a namespace's packets
//! in stream order and "everything after my last offset" read from the
//! stream is exactly what a client missed, whichever node it reconnects to.
//! The stream and the namespace's channels share one hash slot, so in a
//! Redis Cluster the script runs on one shard (a recovery namespace is not
//! spread over shards).
//!
//! Sessions: each node keeps a live record of every socket in its hash
//! `node:<id>:sessions` (rooms, data, user, where its replay would start),
//! so a client whose node died can take it up on another node at once. A
//! socket that goes away for a recoverable reason parks its session under
//! `session:<pid>` for the recovery window; a survivor parks a dead node's
//! live records the same way.

use std::sync::Arc;

use bytes::Bytes;
use fred::prelude::{
    ClientLike, Expiration, HashesInterface, KeysInterface, LuaInterface, StreamsInterface, Value as RedisValue,
};

use super::presence::Dirty;
use super::{Node, Query, Selector, bus, redis_error};
use crate::error::Result;
use crate::hub::packet::Packet;
use crate::recovery::{Offset, RecoveryConfig, Resume, Session, resume_point};

/// KEYS[1] the stream; ARGV: window ms, max length, the publish command,
/// then per packet: the entry, its number of copies, and each copy's
/// channel and message. Appends and publishes every packet in turn.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minid = tostring(now - tonumber(ARGV[1]))
local i = 4
while i <= #ARGV do
  local id = redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', 'm', ARGV[i])
  local head = string.char(255) .. id .. '\n'
  local n = tonumber(ARGV[i + 1])
  for j = 1, n do
    redis.call(ARGV[3], ARGV[i + 2 * j], head .. ARGV[i + 2 * j + 1])
  end
  i = i + 2 + 2 * n
end
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return 1
";

/// A recoverable broadcast on its way to Redis: its messages, one per
/// target channel. The first one, which names every room and exception,
/// is also the stream's entry (and what this node delivers if Redis
/// refuses it).
pub(super) struct Recorded {
    pub ns: String,
    stream: String,
    copies: Vec<(String, Bytes)>,
}

impl Node {
    /// The key of `ns`'s stream, in its channels' hash slot.
    fn stream_key(&self, ns: &str) -> String {
        format!("{}:stream", self.slot_tag(ns))
    }

    /// `{prefix#ns}`: the hash tag every channel and the stream of a
    /// recovery namespace share.
    pub(super) fn slot_tag(&self, ns: &str) -> String {
        format!("{{{}#{ns}}}", self.config.prefix)
    }

    fn session_key(&self, pid: &str) -> String {
        self.key(&["session", pid])
    }

    fn live_sessions_key(&self, node: &str) -> String {
        self.key(&["node", node, "sessions"])
    }

    /// Publish a recoverable broadcast through the namespace's stream; it
    /// reaches this node's members too when it comes back, in stream order.
    /// While Redis is unreachable it is delivered here at once, without an
    /// offset (those packets cannot be recovered).
    pub fn publish_recorded(&self, ns: &str, rooms: &[String], except: &[String], packet: &Packet) {
        let copies = self.copies(ns, rooms, except, false, packet);
        if copies.is_empty() {
            return;
        }
        let recorded = Recorded { ns: ns.to_owned(), stream: self.stream_key(ns), copies };
        if !self.client.is_connected() || !self.subscriber.is_connected() {
            return self.deliver_fallback(&recorded);
        }
        if let Err(mpsc_full) = self.publish_tx.try_send(super::Outgoing::Recorded(recorded)) {
            self.count(|c| &c.cluster_errors, 1);
            tracing::warn!("cluster publish queue full; delivering locally only");
            if let super::Outgoing::Recorded(r) = mpsc_full.into_inner() {
                self.deliver_fallback(&r);
            }
        }
    }

    /// Deliver here what Redis could not take (no offset: not recoverable).
    pub(super) fn deliver_fallback(&self, r: &Recorded) {
        let Some(ns) = self.hub().and_then(|h| h.existing(&r.ns)) else { return };
        let Some((target, packet)) = r.copies.first().and_then(|(_, m)| bus::decode(m.clone())) else { return };
        crate::hub::broadcast::deliver_local(&ns, &target.rooms, &target.except, false, packet);
    }

    /// Append and publish `run` (recoverable broadcasts of one namespace,
    /// in order) in one script call.
    pub(super) async fn record_run(&self, run: &[&Recorded], config: &RecoveryConfig) -> Result<()> {
        let Some(first) = run.first() else { return Ok(()) };
        let mut args: Vec<RedisValue> = vec![
            (config.max_disconnection_duration.as_millis() as i64).into(),
            (config.max_packets.max(1) as i64).into(),
            if self.sharded { "SPUBLISH" } else { "PUBLISH" }.into(),
        ];
        for r in run {
            args.push(RedisValue::Bytes(r.copies[0].1.clone()));
            args.push((r.copies.len() as i64).into());
            for (channel, message) in &r.copies {
                args.push(channel.as_str().into());
                args.push(RedisValue::Bytes(message.clone()));
            }
        }
        self.client
            .eval::<RedisValue, _, _, _>(RECORD, first.stream.as_str(), args)
            .await
            .map(|_| ())
            .map_err(redis_error)
    }

    /// Take the session `pid` of namespace `ns`: a parked one, else the
    /// live record of a socket whose node lost it without noticing yet, or
    /// died (that node is told to drop the socket, in case it is alive).
    pub async fn take_session(
        self: &Arc<Self>,
        ns: &str,
        pid: &str,
        offset: Option<&str>,
    ) -> Option<(Session, Resume)> {
        let c = &self.client;
        let parked: Option<String> = c.getdel(self.session_key(pid)).await.ok().flatten();
        let session = match parked {
            Some(text) => serde_json::from_str::<Session>(&text).ok(),
            None => self.take_live(ns, pid).await,
        }?;
        let from = resume_point(offset, &session)?;
        let at = match from {
            Resume::After(o) | Resume::From(o) => o,
        };
        if at != Offset::default() {
            // Still in the stream: nothing after it was trimmed.
            let id = at.to_string();
            let found: RedisValue = c.xrange(self.stream_key(ns), id.as_str(), id.as_str(), Some(1)).await.ok()?;
            if !matches!(&found, RedisValue::Array(a) if !a.is_empty()) {
                tracing::debug!(%pid, offset = %at, "recovery offset no longer in the stream; new session");
                return None;
            }
        }
        Some((session, from))
    }

    async fn take_live(self: &Arc<Self>, ns: &str, pid: &str) -> Option<Session> {
        let c = &self.client;
        for node in self.nodes().await.ok()? {
            let key = self.live_sessions_key(&node);
            let Ok(Some(text)) = c.hget::<Option<String>, _, _>(&key, pid).await else { continue };
            let _: Result<i64> = c.hdel(&key, pid).await.map_err(redis_error);
            let session: Session = serde_json::from_str(&text).ok()?;
            self.drop_elsewhere(ns, &session.sid);
            return Some(session);
        }
        None
    }

    /// Make whichever node still holds socket `sid` drop it.
    fn drop_elsewhere(self: &Arc<Self>, ns: &str, sid: &str) {
        if let Some(socket) = self.hub().and_then(|h| h.existing(ns)).and_then(|n| n.socket(sid)) {
            socket.disconnect();
        }
        let node = self.clone();
        let sel = Selector { ns: ns.to_owned(), rooms: vec![sid.to_owned()], except: Vec::new() };
        tokio::spawn(async move {
            let _ = node.ask_with_timeout(Query::Disconnect { sel, close: false }).await;
        });
    }

    /// What `session`'s socket missed in `ns` since `from`, in stream order.
    pub async fn missed(
        &self,
        ns: &str,
        session: &Session,
        from: Resume,
        config: &RecoveryConfig,
    ) -> Vec<(Offset, Packet)> {
        let start = match from {
            Resume::After(o) if o == Offset::default() => "-".to_owned(),
            Resume::After(o) => format!("({o}"),
            Resume::From(o) => o.to_string(),
        };
        let count = Some(config.max_packets.max(1) as u64);
        let entries: RedisValue = match self.client.xrange(self.stream_key(ns), start.as_str(), "+", count).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "reading missed packets failed");
                return Vec::new();
            }
        };
        let RedisValue::Array(entries) = entries else { return Vec::new() };
        let mut out = Vec::new();
        for entry in entries {
            let RedisValue::Array(mut parts) = entry else { continue };
            if parts.len() != 2 {
                continue;
            }
            let (fields, id) = (parts.pop(), parts.pop());
            let Some(offset) = id.and_then(|i| i.as_string()).and_then(|i| i.parse::<Offset>().ok()) else { continue };
            let Some(RedisValue::Array(fields)) = fields else { continue };
            let Some(bytes) = fields.get(1).and_then(|v| v.as_bytes()) else { continue };
            let Some((target, packet)) = bus::decode(Bytes::copy_from_slice(bytes)) else { continue };
            if session.targeted_by(&target.rooms, &target.except) {
                out.push((offset, packet));
            }
        }
        out
    }

    /// Park the session of a socket that went away for its client.
    pub fn park(&self, session: Session, config: &RecoveryConfig) {
        let key = self.session_key(&session.pid);
        let text = serde_json::to_string(&session).unwrap_or_default();
        let px = Expiration::PX(config.max_disconnection_duration.as_millis() as i64);
        let client = self.client.clone();
        self.tasks.spawn(async move {
            if let Err(e) = client.set::<(), _, _>(key, text, Some(px), None, false).await {
                tracing::warn!(error = %e, "parking a session in Redis failed; it cannot be recovered");
            }
        });
    }

    /// Write (or, once the socket is gone, remove) the live record of a socket.
    pub(super) async fn apply_session(&self, ns: &str, sid: &str, pid: &str) -> Result<()> {
        let key = self.live_sessions_key(&self.id);
        let live = self
            .hub()
            .and_then(|h| h.existing(ns))
            .and_then(|n| n.socket(sid).filter(|s| s.connected()).map(|s| (n, s)));
        match live.and_then(|(n, s)| n.live_session(&s)) {
            Some(session) => {
                let text = serde_json::to_string(&session).unwrap_or_default();
                self.client.hset::<(), _, _>(&key, (pid, text)).await.map_err(redis_error)
            }
            None => self.client.hdel::<(), _, _>(&key, pid).await.map_err(redis_error),
        }
    }

    /// Park every live session of the dead `node`.
    pub(super) async fn park_live_sessions(&self, node: &str, window_ms: i64) -> Result<()> {
        let c = &self.client;
        let key = self.live_sessions_key(node);
        let live: std::collections::HashMap<String, String> = c.hgetall(&key).await.map_err(redis_error)?;
        for (pid, text) in live {
            c.set::<(), _, _>(self.session_key(&pid), text, Some(Expiration::PX(window_ms)), None, false)
                .await
                .map_err(redis_error)?;
        }
        let _: i64 = c.del(key).await.map_err(redis_error)?;
        Ok(())
    }

    /// A socket's live record changed (connected, joined, left, first packet).
    pub fn session_dirty(&self, ns: &str, sid: &str, pid: &str) {
        self.dirty(Dirty::Session { ns: ns.to_owned(), sid: sid.to_owned(), pid: pid.to_owned() });
    }
}

/// A message published by [`RECORD`]: the stream id it got, and the bus message.
pub(super) fn split_recorded(raw: &[u8]) -> Option<(Offset, &[u8])> {
    let rest = raw.strip_prefix(&[255u8])?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let offset = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    Some((offset, &rest[nl + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_messages_carry_their_stream_id() {
        let mut raw = vec![255u8];
        raw.extend_from_slice(b"1700000000000-3\n\0\0\0\x02{}");
        let (offset, body) = split_recorded(&raw).expect("recorded");
        assert_eq!(offset, Offset { ms: 1_700_000_000_000, seq: 3 });
        assert_eq!(body, b"\0\0\0\x02{}");
        assert!(split_recorded(b"\0\0\0\x02{}").is_none(), "a plain bus message");
    }
}
