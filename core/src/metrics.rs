//! Server-wide counters, the [`Stats`] snapshot built from them, and their
//! Prometheus exposition (`/metrics`, see [`render`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Monotonic counters shared by every connection. Writers add per batch, not
/// per frame, to keep atomics off the per-recipient path.
#[derive(Debug)]
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
    pub ack_timeouts: AtomicU64,
    pub recovery_hits: AtomicU64,
    pub recovery_misses: AtomicU64,
    pub retries_deduplicated: AtomicU64,
    /// Seconds each publish to Redis (a pipeline or a script call) took.
    pub publish_seconds: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        let z = || AtomicU64::new(0);
        Self {
            messages_in: z(),
            bytes_in: z(),
            messages_out: z(),
            bytes_out: z(),
            dropped: z(),
            slow_consumer_closes: z(),
            rate_limited: z(),
            refused_connections: z(),
            cluster_messages_in: z(),
            cluster_messages_out: z(),
            cluster_errors: z(),
            cluster_request_timeouts: z(),
            ack_timeouts: z(),
            recovery_hits: z(),
            recovery_misses: z(),
            retries_deduplicated: z(),
            // 50 µs to about 1.6 s.
            publish_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        }
    }
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// A reconnecting client asked for its session: whether it got it.
    pub fn recovery(&self, hit: bool) {
        Self::add(if hit { &self.recovery_hits } else { &self.recovery_misses }, 1);
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
    /// Open connections (WebSocket or polling sessions, any protocol).
    pub connections: u64,
    /// Server emits whose ack did not come in time.
    pub ack_timeouts: u64,
    /// Reconnecting clients that got their session back (connection state recovery).
    pub recovery_hits: u64,
    /// Reconnecting clients that asked for a session no longer kept: a new one.
    pub recovery_misses: u64,
    /// Repeats of at-least-once clients' events answered without running the handler.
    pub retries_deduplicated: u64,
}

impl Counters {
    pub fn snapshot(&self, sockets: u64, rooms: u64, users: u64, connections: u64) -> Stats {
        Stats {
            sockets,
            rooms,
            users,
            connections,
            ack_timeouts: self.ack_timeouts.load(Relaxed),
            recovery_hits: self.recovery_hits.load(Relaxed),
            recovery_misses: self.recovery_misses.load(Relaxed),
            retries_deduplicated: self.retries_deduplicated.load(Relaxed),
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

/// One namespace's gauges at a scrape.
#[derive(Debug)]
pub(crate) struct NamespaceGauges {
    pub name: String,
    pub sockets: u64,
    pub rooms: u64,
    pub presence_members: u64,
    pub recovery_sessions: u64,
}

/// The values of one scrape: the stats, and the gauges per namespace.
#[derive(Debug)]
struct Scrape {
    stats: Stats,
    namespaces: Vec<NamespaceGauges>,
    runtime_tasks: Option<u64>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = &self.stats;
        let counters: [(&str, &str, u64); 16] = [
            ("messages_received", "Messages received from clients", s.messages_in),
            ("received_bytes", "Bytes received from clients (message payloads)", s.bytes_in),
            ("messages_sent", "Frames written to clients", s.messages_out),
            ("sent_bytes", "Bytes written to clients (frame payloads)", s.bytes_out),
            ("dropped", "Frames dropped because a connection's outbound queue was full", s.dropped),
            (
                "slow_consumer_closes",
                "Connections closed because they did not read fast enough",
                s.slow_consumer_closes,
            ),
            ("rate_limited", "Inbound messages rejected by the rate limiter", s.rate_limited),
            (
                "refused_connections",
                "Connections refused before the upgrade (limits, origin, auth)",
                s.refused_connections,
            ),
            ("ack_timeouts", "Server emits whose ack did not come in time", s.ack_timeouts),
            ("recovery_hits", "Reconnecting clients that got their session back", s.recovery_hits),
            ("recovery_misses", "Reconnecting clients whose session was no longer kept", s.recovery_misses),
            (
                "retries_deduplicated",
                "Repeated events of at-least-once clients answered without running the handler",
                s.retries_deduplicated,
            ),
            ("cluster_messages_received", "Messages received from Redis", s.cluster_messages_in),
            ("cluster_messages_published", "Messages published to Redis", s.cluster_messages_out),
            (
                "cluster_errors",
                "Redis commands or publishes that failed, and messages lost in between",
                s.cluster_errors,
            ),
            (
                "cluster_request_timeouts",
                "Cluster queries answered partially (a node did not answer in time)",
                s.cluster_request_timeouts,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let gauges = [
            ("connections", "Open connections (WebSocket or polling sessions)", s.connections),
            ("users", "Distinct authenticated users connected", s.users),
        ];
        let tasks = self.runtime_tasks.map(|n| {
            ("runtime_tasks", "Tasks alive on the tokio runtime the server listens on (with the application's own)", n)
        });
        for (name, help, value) in gauges.into_iter().chain(tasks) {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        type Gauge = (&'static str, &'static str, fn(&NamespaceGauges) -> u64);
        let per_namespace: [Gauge; 4] = [
            ("sockets", "Connected sockets", |n| n.sockets),
            ("rooms", "Rooms with at least one member (not counting each socket's own room)", |n| n.rooms),
            ("presence_members", "Presence memberships tracked on this node (member and room pairs)", |n| {
                n.presence_members
            }),
            (
                "recovery_sessions",
                "Sessions of disconnected sockets kept on this node for their clients to recover (single node)",
                |n| n.recovery_sessions,
            ),
        ];
        for (name, help, value) in per_namespace {
            let kind = ConstGauge::new(0i64).metric_type();
            let mut family = encoder.encode_descriptor(name, help, None, kind)?;
            for ns in &self.namespaces {
                let gauge = ConstGauge::new(value(ns) as i64);
                gauge.encode(family.encode_family(&[("namespace", ns.name.as_str())])?)?;
            }
        }
        Ok(())
    }
}

/// The Prometheus (OpenMetrics text) exposition of `stats`, the gauges of
/// `namespaces` and the Redis publish latency histogram, every name
/// prefixed `roomcast_`.
pub(crate) fn render(
    counters: &Counters,
    stats: Stats,
    namespaces: Vec<NamespaceGauges>,
    runtime_tasks: Option<u64>,
) -> String {
    let mut registry = Registry::with_prefix("roomcast");
    registry.register(
        "redis_publish_seconds",
        "Time a publish to Redis (a pipeline or a script call) took",
        counters.publish_seconds.clone(),
    );
    registry.register_collector(Box::new(Scrape { stats, namespaces, runtime_tasks }));
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
