//! The hub: namespaces, their sockets and rooms, and the broadcast operator.
//! Protocol-neutral: JSON-protocol and (later) Socket.IO sockets share it.

pub mod args;
pub mod broadcast;
mod dedupe;
pub mod dispatch;
pub mod handler;
pub mod namespace;
pub(crate) mod packet;
mod rooms;
pub mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::auth::AuthHook;
use crate::cluster::Node;
use crate::metrics::{Counters, Stats};
use handler::JoinHook;
use namespace::{Namespace, Users};

/// Decides which names a dynamic namespace serves.
#[derive(Clone)]
pub(crate) enum NamespaceMatcher {
    /// `*` matches any run of characters other than `/`.
    Glob(String),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl NamespaceMatcher {
    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Glob(pattern) => glob(pattern.as_bytes(), name.as_bytes()),
            Self::Predicate(f) => f(name),
        }
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (s.first().is_some_and(|&c| c != b'/') && glob(p, &s[1..])),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Owner of every namespace.
pub(crate) struct Hub {
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    dynamic: RwLock<Vec<(NamespaceMatcher, Arc<Namespace>)>>,
    users: Arc<Users>,
    pub counters: Arc<Counters>,
    default_auth: Option<AuthHook>,
    default_join: Option<JoinHook>,
    pub cluster: Option<Arc<Node>>,
    recovery: Option<crate::recovery::RecoveryConfig>,
}

impl Hub {
    pub fn new(
        default_auth: Option<AuthHook>,
        default_join: Option<JoinHook>,
        cluster: Option<Arc<Node>>,
        recovery: Option<crate::recovery::RecoveryConfig>,
    ) -> Arc<Self> {
        let hub = Arc::new(Self {
            namespaces: RwLock::default(),
            dynamic: RwLock::default(),
            users: Arc::default(),
            counters: Arc::default(),
            default_auth,
            default_join,
            cluster,
            recovery,
        });
        if let Some(node) = &hub.cluster {
            node.attach(Arc::downgrade(&hub), hub.counters.clone());
        }
        hub.of("/");
        hub
    }

    /// A namespace (`dynamic`: a dynamic namespace's parent) with the
    /// server's default hooks; in a cluster, the node subscribes to its
    /// channel (a dynamic parent's broadcasts reach its children on every
    /// node through it).
    fn new_namespace(&self, name: String, dynamic: bool) -> Arc<Namespace> {
        if let Some(node) = &self.cluster {
            node.namespace_opened(&name);
        }
        Arc::new(Namespace::new(
            name,
            self.users.clone(),
            self.cluster.clone(),
            dynamic,
            self.default_auth.clone(),
            self.default_join.clone(),
            self.recovery.clone(),
        ))
    }

    /// The dynamic namespace registered as `label`.
    pub fn dynamic_parent(&self, label: &str) -> Option<Arc<Namespace>> {
        self.dynamic.read().iter().find(|(_, p)| p.name() == label).map(|(_, p)| p.clone())
    }

    /// The namespace `name` if it exists (never creates one).
    pub fn existing(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.read().get(name).cloned()
    }

    /// Users with a connection on this node.
    pub fn user_ids(&self) -> Vec<String> {
        self.users.lock().keys().cloned().collect()
    }

    /// This node's connections of `user` (sockets, all namespaces).
    pub fn user_connections(&self, user: &str) -> usize {
        self.users.lock().get(user).copied().unwrap_or(0)
    }

    /// The namespace `name`, created on first use with the server's default hooks.
    pub fn of(&self, name: &str) -> Arc<Namespace> {
        let name = normalize(name);
        if let Some(ns) = self.namespaces.read().get(&name) {
            return ns.clone();
        }
        self.namespaces.write().entry(name.clone()).or_insert_with(|| self.new_namespace(name, false)).clone()
    }

    /// A dynamic namespace: a parent whose handlers and hooks serve every
    /// name `matcher` accepts; each such name gets its own child namespace
    /// on first connection.
    pub fn dynamic(&self, label: String, matcher: NamespaceMatcher) -> Arc<Namespace> {
        let parent = self.new_namespace(label, true);
        self.dynamic.write().push((matcher, parent.clone()));
        parent
    }

    /// The namespace clients may connect to by `name`: an existing one, or a
    /// new child of the first dynamic namespace that accepts the name.
    /// Unknown names give `None` and the connection is refused.
    pub fn get(&self, name: &str) -> Option<Arc<Namespace>> {
        let name = normalize(name);
        if let Some(ns) = self.namespaces.read().get(&name) {
            return Some(ns.clone());
        }
        let parent = self.dynamic.read().iter().find(|(m, _)| m.matches(&name)).map(|(_, p)| p.clone())?;
        let mut map = self.namespaces.write();
        Some(
            map.entry(name.clone())
                .or_insert_with(|| {
                    if let Some(node) = &self.cluster {
                        node.namespace_opened(&name);
                    }
                    Namespace::child(name, &parent)
                })
                .clone(),
        )
    }

    /// Forget a child of a dynamic namespace once its last socket is gone,
    /// so clients cannot grow the server by inventing names.
    pub fn release_if_empty(&self, ns: &Arc<Namespace>) {
        let Some(parent) = ns.parent() else { return };
        let mut map = self.namespaces.write();
        if ns.is_empty() && map.get(ns.name()).is_some_and(|n| Arc::ptr_eq(n, ns)) {
            map.remove(ns.name());
            parent.forget_child(ns);
        }
    }

    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.read().values().cloned().collect()
    }

    /// The counters now, with `connections` open.
    pub fn stats(&self, connections: u64) -> Stats {
        let namespaces = self.namespaces();
        let sockets = namespaces.iter().map(|n| n.len() as u64).sum();
        let rooms = namespaces.iter().map(|n| n.named_room_count() as u64).sum();
        let users = self.users.lock().len() as u64;
        self.counters.snapshot(sockets, rooms, users, connections)
    }

    /// The Prometheus exposition of the counters and of each namespace's gauges.
    pub fn metrics(&self, connections: u64, runtime_tasks: Option<u64>) -> String {
        let gauges = self
            .namespaces()
            .iter()
            .map(|n| crate::metrics::NamespaceGauges {
                name: n.name().to_owned(),
                sockets: n.len() as u64,
                rooms: n.named_room_count() as u64,
                presence_members: n.presence_keys().len() as u64,
                recovery_sessions: n.parked_sessions() as u64,
            })
            .collect();
        crate::metrics::render(&self.counters, self.stats(connections), gauges, runtime_tasks)
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') { name.to_owned() } else { format!("/{name}") }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matching() {
        assert!(glob(b"/team-*", b"/team-42"));
        assert!(glob(b"/team-*", b"/team-"));
        assert!(!glob(b"/team-*", b"/team-4/x"));
        assert!(glob(b"/*/chat", b"/acme/chat"));
        assert!(!glob(b"/team-*", b"/teams"));
    }
}
