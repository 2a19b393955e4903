//! Server-wide counters and the [`Stats`] snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Monotonic counters shared by every connection. Writers add per batch, not
/// per frame, to keep atomics off the per-recipient path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub rate_limited: AtomicU64,
    pub refused_connections: AtomicU64,
    pub cluster_messages_in: AtomicU64,
    pub cluster_messages_out: AtomicU64,
    pub cluster_errors: AtomicU64,
    pub cluster_request_timeouts: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A point-in-time view of the server, from `Server::stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    /// Connected sockets, all namespaces.
    pub sockets: u64,
    /// Rooms with at least one member, not counting each socket's own room.
    pub rooms: u64,
    /// Distinct authenticated users connected.
    pub users: u64,
    /// Messages received from clients.
    pub messages_in: u64,
    /// Bytes received from clients (message payloads).
    pub bytes_in: u64,
    /// Frames written to clients.
    pub messages_out: u64,
    /// Bytes written to clients (frame payloads).
    pub bytes_out: u64,
    /// Volatile frames dropped because a queue was full.
    pub dropped: u64,
    /// Connections closed because they did not read fast enough.
    pub slow_consumer_closes: u64,
    /// Inbound messages rejected by the rate limiter.
    pub rate_limited: u64,
    /// Connections refused before the upgrade (limits, origin, auth).
    pub refused_connections: u64,
    /// Messages received from other nodes over Redis (every channel this
    /// node is subscribed to, its own publishes included).
    pub cluster_messages_in: u64,
    /// Messages published for other nodes.
    pub cluster_messages_out: u64,
    /// Redis commands or publishes that failed, and messages lost in between.
    pub cluster_errors: u64,
    /// Cluster queries answered partially (a node did not answer in time).
    pub cluster_request_timeouts: u64,
}

impl Counters {
    pub fn snapshot(&self, sockets: u64, rooms: u64, users: u64) -> Stats {
        Stats {
            sockets,
            rooms,
            users,
            messages_in: self.messages_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            slow_consumer_closes: self.slow_consumer_closes.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
            refused_connections: self.refused_connections.load(Relaxed),
            cluster_messages_in: self.cluster_messages_in.load(Relaxed),
            cluster_messages_out: self.cluster_messages_out.load(Relaxed),
            cluster_errors: self.cluster_errors.load(Relaxed),
            cluster_request_timeouts: self.cluster_request_timeouts.load(Relaxed),
        }
    }
}
