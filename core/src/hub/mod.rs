//! The hub: namespaces, their sockets and rooms, and the broadcast operator.
//! Protocol-neutral: JSON-protocol and (later) Socket.IO sockets share it.

pub mod args;
pub mod broadcast;
pub mod handler;
pub mod namespace;
pub(crate) mod packet;
mod rooms;
pub mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::auth::AuthHook;
use crate::metrics::{Counters, Stats};
use handler::JoinHook;
use namespace::{Namespace, Users};

/// Owner of every namespace.
pub(crate) struct Hub {
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    users: Arc<Users>,
    pub counters: Arc<Counters>,
    default_auth: Option<AuthHook>,
    default_join: Option<JoinHook>,
}

impl Hub {
    pub fn new(default_auth: Option<AuthHook>, default_join: Option<JoinHook>) -> Self {
        let hub = Self {
            namespaces: RwLock::default(),
            users: Arc::default(),
            counters: Arc::default(),
            default_auth,
            default_join,
        };
        hub.of("/");
        hub
    }

    /// The namespace `name`, created on first use with the server's default hooks.
    pub fn of(&self, name: &str) -> Arc<Namespace> {
        let name = normalize(name);
        if let Some(ns) = self.namespaces.read().get(&name) {
            return ns.clone();
        }
        self.namespaces
            .write()
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Namespace::new(name, self.users.clone(), self.default_auth.clone(), self.default_join.clone()))
            })
            .clone()
    }

    /// An existing namespace (connections to unknown namespaces are refused).
    pub fn get(&self, name: &str) -> Option<Arc<Namespace>> {
        self.namespaces.read().get(&normalize(name)).cloned()
    }

    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces.read().values().cloned().collect()
    }

    pub fn stats(&self) -> Stats {
        let namespaces = self.namespaces();
        let sockets = namespaces.iter().map(|n| n.len() as u64).sum();
        let rooms = namespaces.iter().map(|n| n.named_room_count() as u64).sum();
        let users = self.users.lock().len() as u64;
        self.counters.snapshot(sockets, rooms, users)
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') { name.to_owned() } else { format!("/{name}") }
}
