//! Presence across nodes, kept in Redis.
//!
//! Each node owns the truth about its local connections (the namespaces'
//! trackers) and reconciles Redis towards it: a change marks a key dirty,
//! and the presence task adds the difference between the local count and
//! what it last applied. Redis's HINCRBY then decides the transitions for
//! the whole cluster: 0 → n is a join, n → 0 a leave, announced by the node
//! that saw it. The node's own contributions are also recorded under its
//! id, so when its heartbeat key expires another node subtracts them and
//! announces the leaves. Failed writes stay dirty and are retried; a node
//! that finds itself declared dead re-applies everything.
//!
//! Keys (`P` is the prefix): `P:presence:<ns>:<room>` member → connections,
//! `P:presence-meta:<ns>:<room>` member → metadata, `P:online` user →
//! connections, `P:nodes` (set of node ids), `P:alive:<node>` (TTL),
//! `P:node:<node>:{members,users,sockets}` (what to undo if it dies).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::{Expiration, HashesInterface, KeysInterface, SetOptions, SetsInterface};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Node, redis_error};
use crate::error::Result;
use crate::hub::Hub;
use crate::hub::packet::Packet;
use crate::presence::{self, Member, PresenceEvent, PresenceKind};

/// Something local changed that Redis must learn.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Dirty {
    /// Connections of a member in a room.
    Member { ns: String, room: String, key: String },
    /// A member's metadata.
    Meta { ns: String, room: String, key: String },
    /// Connections of a user (for `is_online`).
    User(String),
    /// A socket connected or went away (for the lost-socket hook).
    Socket { ns: String, sid: String },
    /// The live recovery session of a socket changed, or it went away.
    Session { ns: String, sid: String, pid: String },
}

/// A socket of a node that died, as the lost-socket hook sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostSocket {
    /// The dead node's id.
    pub node: String,
    pub namespace: String,
    pub sid: String,
    pub user_id: Option<String>,
}

pub(crate) type LostHook = Arc<dyn Fn(LostSocket) -> BoxFuture<'static, ()> + Send + Sync>;

/// What this node has written to Redis so far.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    members: HashMap<(String, String, String), i64>,
    users: HashMap<String, i64>,
}

const SEP: char = '\u{1f}';

impl Node {
    pub(super) fn key(&self, parts: &[&str]) -> String {
        let mut k = self.config.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn members_key(&self, ns: &str, room: &str) -> String {
        self.key(&["presence", ns, room])
    }

    fn meta_key(&self, ns: &str, room: &str) -> String {
        self.key(&["presence-meta", ns, room])
    }

    /// Queue a change for Redis.
    pub fn dirty(&self, d: Dirty) {
        self.presence_idle.send_replace(false);
        self.dirty.lock().insert(d);
        self.dirty_wake.notify_one();
    }

    /// Everything local is dirty (after a reconnect or being declared dead).
    pub(super) fn mark_all_dirty(&self) {
        let Some(hub) = self.hub() else { return };
        let mut all = Vec::new();
        for ns in hub.namespaces() {
            let name = ns.name().to_owned();
            for (room, key) in ns.presence_keys() {
                all.push(Dirty::Meta { ns: name.clone(), room: room.clone(), key: key.clone() });
                all.push(Dirty::Member { ns: name.clone(), room, key });
            }
            for s in ns.sockets() {
                all.push(Dirty::Socket { ns: name.clone(), sid: s.id().to_string() });
                if let Some(pid) = s.pid() {
                    all.push(Dirty::Session { ns: name.clone(), sid: s.id().to_string(), pid: pid.to_owned() });
                }
            }
        }
        all.extend(hub.user_ids().into_iter().map(Dirty::User));
        {
            let applied = self.applied.lock();
            for (ns, room, key) in applied.members.keys() {
                all.push(Dirty::Member { ns: ns.clone(), room: room.clone(), key: key.clone() });
            }
            all.extend(applied.users.keys().cloned().map(Dirty::User));
        }
        all.into_iter().for_each(|d| self.dirty(d));
    }

    /// Wait (at most 2 s) until no presence change is waiting for Redis.
    pub async fn flush_presence(&self) {
        let mut rx = self.presence_idle.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|idle| *idle)).await;
    }

    pub(super) async fn presence_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                () = self.dirty_wake.notified() => {}
                () = self.shutdown.cancelled() => return,
            }
            loop {
                let batch: Vec<Dirty> = self.dirty.lock().drain().collect();
                if batch.is_empty() {
                    if self.dirty.lock().is_empty() {
                        self.presence_idle.send_replace(true);
                    }
                    break;
                }
                let results = futures_util::future::join_all(batch.iter().map(|d| self.apply(d))).await;
                let mut failed = false;
                for (d, r) in batch.into_iter().zip(results) {
                    if let Err(e) = r {
                        failed = true;
                        tracing::debug!(error = %e, ?d, "presence change not applied; will retry");
                        self.count(|c| &c.cluster_errors, 1);
                        self.dirty.lock().insert(d);
                    }
                }
                if failed {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                        () = self.shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn apply(&self, d: &Dirty) -> Result<()> {
        let Some(hub) = self.hub() else { return Ok(()) };
        let c = &self.client;
        match d {
            Dirty::Member { ns, room, key } => {
                let local = hub.existing(ns).and_then(|n| n.presence_member(room, key));
                let want = local.as_ref().map_or(0, |(m, _)| m.connections as i64);
                let id = (ns.clone(), room.clone(), key.clone());
                let have = self.applied.lock().members.get(&id).copied().unwrap_or(0);
                let delta = want - have;
                if delta == 0 {
                    return Ok(());
                }
                let total: i64 =
                    c.hincrby(self.members_key(ns, room), key.as_str(), delta).await.map_err(redis_error)?;
                let field = format!("{ns}{SEP}{room}{SEP}{key}");
                self.add_to(&self.key(&["node", &self.id, "members"]), &field, delta).await?;
                remember(&mut self.applied.lock().members, id, want);
                let before = total - delta;
                if before <= 0 && total > 0 {
                    if let Some((mut member, by)) = local {
                        member.connections = total as u64;
                        self.write_meta(ns, room, key, &member).await?;
                        self.announce(
                            &hub,
                            ns,
                            PresenceEvent { kind: PresenceKind::Join, room: room.clone(), member },
                            Some(by),
                        );
                    }
                } else if total <= 0 && before > 0 {
                    self.remove_member(&hub, ns, room, key).await?;
                }
                Ok(())
            }
            Dirty::Meta { ns, room, key } => match hub.existing(ns).and_then(|n| n.presence_member(room, key)) {
                Some((member, _)) => self.write_meta(ns, room, key, &member).await,
                None => Ok(()),
            },
            Dirty::User(user) => {
                let want = hub.user_connections(user) as i64;
                let have = self.applied.lock().users.get(user).copied().unwrap_or(0);
                let delta = want - have;
                if delta == 0 {
                    return Ok(());
                }
                self.add_to(&self.key(&["online"]), user, delta).await?;
                self.add_to(&self.key(&["node", &self.id, "users"]), user, delta).await?;
                remember(&mut self.applied.lock().users, user.clone(), want);
                Ok(())
            }
            Dirty::Session { ns, sid, pid } => self.apply_session(ns, sid, pid).await,
            Dirty::Socket { ns, sid } => {
                let node_key = self.key(&["node", &self.id, "sockets"]);
                let field = format!("{ns}{SEP}{sid}");
                match hub.existing(ns).and_then(|n| n.socket(sid)).filter(|s| s.connected()) {
                    Some(s) => {
                        let lost = LostSocket {
                            node: self.id.clone(),
                            namespace: ns.clone(),
                            sid: sid.clone(),
                            user_id: s.user_id().map(str::to_owned),
                        };
                        let text = serde_json::to_string(&lost).unwrap_or_default();
                        c.hset::<(), _, _>(&node_key, (field, text)).await.map_err(redis_error)
                    }
                    None => c.hdel::<(), _, _>(&node_key, field).await.map_err(redis_error),
                }
            }
        }
    }

    /// Add `delta` to a counter field; a field down to zero is removed.
    async fn add_to(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        let c = &self.client;
        let total: i64 = c.hincrby(key, field, delta).await.map_err(redis_error)?;
        if total <= 0 {
            let _: i64 = c.hdel(key, field).await.map_err(redis_error)?;
        }
        Ok(total)
    }

    async fn write_meta(&self, ns: &str, room: &str, key: &str, m: &Member) -> Result<()> {
        let text = json!({"meta": m.meta, "joinedAt": m.joined_at, "lastSeen": m.last_seen}).to_string();
        self.client.hset::<(), _, _>(self.meta_key(ns, room), (key, text)).await.map_err(redis_error)
    }

    /// A member's count reached zero: drop it and tell the room.
    async fn remove_member(&self, hub: &Hub, ns: &str, room: &str, key: &str) -> Result<()> {
        let c = &self.client;
        let meta: Option<String> = c.hget(self.meta_key(ns, room), key).await.map_err(redis_error)?;
        let _: i64 = c.hdel(self.members_key(ns, room), key).await.map_err(redis_error)?;
        let _: i64 = c.hdel(self.meta_key(ns, room), key).await.map_err(redis_error)?;
        let mut member = member_of(key, 0, meta.as_deref());
        member.last_seen = presence::now_ms();
        self.announce(hub, ns, PresenceEvent { kind: PresenceKind::Leave, room: room.to_owned(), member }, None);
        Ok(())
    }

    /// Send a presence event to a room's members on every node.
    fn announce(&self, hub: &Hub, ns: &str, event: PresenceEvent, by: Option<String>) {
        let room = event.room.clone();
        let except: Vec<String> = by.iter().cloned().collect();
        let packet = Packet::Presence { event, by };
        match hub.existing(ns) {
            Some(n) => {
                let op = except.iter().fold(n.to(room), |op, sid| op.except(sid.clone()));
                op.send(packet);
            }
            None => self.publish(ns, &[room], &except, false, &packet),
        }
    }

    /// The members of a room on every node.
    pub async fn members(&self, ns: &str, room: &str) -> Result<Vec<Member>> {
        self.flush_presence().await;
        let c = &self.client;
        let counts: HashMap<String, i64> = c.hgetall(self.members_key(ns, room)).await.map_err(redis_error)?;
        let metas: HashMap<String, String> = c.hgetall(self.meta_key(ns, room)).await.map_err(redis_error)?;
        Ok(counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(key, n)| member_of(&key, n as u64, metas.get(&key).map(String::as_str)))
            .collect())
    }

    /// How many members a room has on every node.
    pub async fn member_count(&self, ns: &str, room: &str) -> Result<usize> {
        self.flush_presence().await;
        let n: i64 = self.client.hlen(self.members_key(ns, room)).await.map_err(redis_error)?;
        Ok(n as usize)
    }

    /// Which of `users` have a connection on any node.
    pub async fn online(&self, users: &[String]) -> Result<Vec<bool>> {
        self.flush_presence().await;
        let online = self.key(&["online"]);
        let lookups = users.iter().map(|u| self.client.hget::<Option<i64>, _, _>(&online, u.as_str()));
        futures_util::future::join_all(lookups)
            .await
            .into_iter()
            .map(|r| r.map(|n| n.unwrap_or(0) > 0).map_err(redis_error))
            .collect()
    }

    /// Refresh this node's heartbeat; true when the node had to be added to
    /// the node set again (it was declared dead meanwhile).
    async fn heartbeat(&self) -> Result<bool> {
        let ttl = self.config.node_ttl.as_millis() as i64;
        let now = presence::now_ms().to_string();
        let c = &self.client;
        c.set::<(), _, _>(self.key(&["alive", &self.id]), now, Some(Expiration::PX(ttl)), None, false)
            .await
            .map_err(redis_error)?;
        let added: i64 = c.sadd(self.key(&["nodes"]), self.id.as_str()).await.map_err(redis_error)?;
        Ok(added == 1)
    }

    /// Heartbeats, and cleaning up after nodes whose heartbeat expired.
    pub(super) async fn liveness_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.node_ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.shutdown.cancelled() => return,
            }
            match self.heartbeat().await {
                Ok(readded) => {
                    if readded && registered {
                        tracing::warn!(node = %self.id, "this node was declared dead; restoring its presence");
                        *self.applied.lock() = Applied::default();
                        self.mark_all_dirty();
                    }
                    registered = true;
                    self.registered.send_replace(true);
                }
                Err(e) => {
                    self.count(|c| &c.cluster_errors, 1);
                    tracing::warn!(error = %e, "cluster heartbeat failed");
                    continue;
                }
            }
            if let Err(e) = self.reap().await {
                tracing::warn!(error = %e, "checking other nodes failed");
            }
        }
    }

    /// Clean up after every node whose heartbeat expired (one survivor per
    /// dead node does it, under a lock key).
    async fn reap(&self) -> Result<()> {
        let c = &self.client;
        let nodes: Vec<String> = c.smembers(self.key(&["nodes"])).await.map_err(redis_error)?;
        for node in nodes.into_iter().filter(|n| *n != self.id) {
            let alive: i64 = c.exists(self.key(&["alive", &node])).await.map_err(redis_error)?;
            if alive > 0 {
                continue;
            }
            let lock = self.key(&["reaping", &node]);
            let ttl = Expiration::PX(self.config.node_ttl.as_millis() as i64 * 3);
            let won: Option<String> =
                c.set(lock, self.id.as_str(), Some(ttl), Some(SetOptions::NX), false).await.map_err(redis_error)?;
            if won.is_some() {
                tracing::warn!(node = %node, "node stopped answering; removing its members");
                self.clean_up_node(&node).await?;
            }
        }
        Ok(())
    }

    /// Undo what `node` contributed: its members leave (announced), its
    /// users' connections go, and (for another node) the lost-socket hooks
    /// run for each of its sockets.
    pub(super) async fn clean_up_node(&self, node: &str) -> Result<()> {
        let c = &self.client;
        let hub = self.hub();
        let members_key = self.key(&["node", node, "members"]);
        let members: HashMap<String, i64> = c.hgetall(&members_key).await.map_err(redis_error)?;
        for (field, n) in members {
            let mut parts = field.splitn(3, SEP);
            let (Some(ns), Some(room), Some(key)) = (parts.next(), parts.next(), parts.next()) else { continue };
            let total: i64 = c.hincrby(self.members_key(ns, room), key, -n).await.map_err(redis_error)?;
            if total <= 0 {
                match &hub {
                    Some(hub) => self.remove_member(hub, ns, room, key).await?,
                    None => {
                        let _: i64 = c.hdel(self.members_key(ns, room), key).await.map_err(redis_error)?;
                    }
                }
            }
        }
        let users_key = self.key(&["node", node, "users"]);
        let users: HashMap<String, i64> = c.hgetall(&users_key).await.map_err(redis_error)?;
        let online = self.key(&["online"]);
        for (user, n) in users {
            self.add_to(&online, &user, -n).await?;
        }
        let sockets_key = self.key(&["node", node, "sockets"]);
        let sockets: HashMap<String, String> = c.hgetall(&sockets_key).await.map_err(redis_error)?;
        if let Some(r) = &self.recovery {
            // Its clients may still take their sessions up on another node.
            self.park_live_sessions(node, r.max_disconnection_duration.as_millis() as i64).await?;
        }
        // One key per command: in a Redis Cluster they live in different slots.
        for key in [members_key, users_key, sockets_key, self.key(&["alive", node])] {
            let _: i64 = c.del(key).await.map_err(redis_error)?;
        }
        let _: i64 = c.srem(self.key(&["nodes"]), node).await.map_err(redis_error)?;
        if node != self.id {
            // On a task of their own: a slow hook must not hold up this
            // node's heartbeat (it would be declared dead in turn).
            let hooks = self.lost.lock().clone();
            let lost: Vec<LostSocket> = sockets.values().filter_map(|s| serde_json::from_str(s).ok()).collect();
            if !hooks.is_empty() && !lost.is_empty() {
                tokio::spawn(async move {
                    for socket in lost {
                        for hook in &hooks {
                            hook(socket.clone()).await;
                        }
                    }
                });
            }
        }
        Ok(())
    }
}

/// Record what was applied for `key` (nothing kept for zero).
fn remember<K: std::hash::Hash + Eq>(applied: &mut HashMap<K, i64>, key: K, want: i64) {
    if want == 0 {
        applied.remove(&key);
    } else {
        applied.insert(key, want);
    }
}

/// A member from its Redis fields.
fn member_of(key: &str, connections: u64, meta: Option<&str>) -> Member {
    let (user_id, anonymous) = presence::parse_key(key);
    let stored: Value = meta.and_then(|m| serde_json::from_str(m).ok()).unwrap_or(Value::Null);
    let time = |k: &str| stored.get(k).and_then(Value::as_u64).unwrap_or(0);
    Member {
        user_id,
        anonymous,
        connections,
        meta: stored.get("meta").cloned().unwrap_or_else(presence::default_meta),
        joined_at: time("joinedAt"),
        last_seen: time("lastSeen"),
    }
}
