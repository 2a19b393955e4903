//! Server settings with the defaults of the embedded server.

use std::time::Duration;

/// Per-connection token bucket on inbound messages and bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained messages per second.
    pub messages_per_sec: f64,
    /// Messages allowed in one burst.
    pub message_burst: f64,
    /// Sustained inbound bytes per second.
    pub bytes_per_sec: f64,
    /// Bytes allowed in one burst.
    pub byte_burst: f64,
    /// Rejected messages in a row after which the connection is closed (1008).
    pub max_violations: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            messages_per_sec: 100.0,
            message_burst: 200.0,
            bytes_per_sec: 1_000_000.0,
            byte_burst: 2_000_000.0,
            max_violations: 50,
        }
    }
}

/// A token bucket on new connections from one IP address: `per_sec`
/// sustained, `burst` at once. Refused ones get HTTP 429 before any upgrade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionRate {
    /// New connections per second, sustained.
    pub per_sec: f64,
    /// New connections allowed at once.
    pub burst: u32,
}

impl ConnectionRate {
    /// `per_sec` with a burst of twice that (at least 1): a page that opens
    /// a few sockets at once, or reconnects, is not refused.
    pub fn new(per_sec: f64) -> Self {
        // Saturating float-to-int cast: NaN or negative rates are refused by the builder.
        let burst = ((per_sec * 2.0).ceil() as u32).max(1);
        Self { per_sec, burst }
    }

    /// Replace the burst.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }
}

/// How a connection refused by the auth hook is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthRejection {
    /// HTTP 401 before the upgrade (the WebSocket never opens).
    #[default]
    Http401,
    /// Upgrade, then close with 4001 "Authentication failed": browsers can
    /// read a close code and reason but not an HTTP error body.
    CloseFrame,
}

/// Everything the server can be tuned with. Built by [`crate::ServerBuilder`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interval between heartbeat pings.
    pub ping_interval: Duration,
    /// How long a ping may stay unanswered before the socket is closed.
    pub ping_timeout: Duration,
    /// Largest inbound message in bytes (bigger ones close with 1009).
    pub max_payload: usize,
    /// Frames the outbound queue of one connection may hold.
    pub outbound_queue_messages: usize,
    /// Bytes the outbound queue of one connection may hold.
    pub outbound_queue_bytes: usize,
    /// What a full outbound queue does with a frame that is not volatile.
    pub overflow: crate::transport::Overflow,
    /// Inbound rate limit, `None` for unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Maximum concurrent connections, `None` for unlimited.
    pub max_connections: Option<usize>,
    /// Maximum concurrent connections from one IP address.
    pub max_connections_per_ip: Option<usize>,
    /// Rate of new connections from one IP address, `None` for unlimited.
    pub connection_rate_per_ip: Option<ConnectionRate>,
    /// Allowed `Origin` values; empty allows every origin.
    pub allowed_origins: Vec<String>,
    /// Time a client has to send its HTTP request and complete the upgrade.
    pub handshake_timeout: Duration,
    /// How long a graceful shutdown waits for writers to drain.
    pub shutdown_timeout: Duration,
    /// How a refused connection is told.
    pub auth_rejection: AuthRejection,
    /// Default timeout of `emit_with_ack`.
    pub ack_timeout: Duration,
    /// Path of the Socket.IO / Engine.IO endpoint.
    pub socketio_path: String,
    /// Time a Socket.IO client has to connect to a namespace after the
    /// Engine.IO handshake.
    pub connect_timeout: Duration,
    /// Join a cluster over Redis (`None`: a single node, all in memory).
    pub redis: Option<crate::cluster::RedisConfig>,
    /// Connection state recovery (`None`: off, socket.io's default).
    pub recovery: Option<crate::recovery::RecoveryConfig>,
    /// Where the Prometheus metrics are served (`None`: nowhere).
    pub metrics_path: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            outbound_queue_messages: 4096,
            outbound_queue_bytes: 8 * 1024 * 1024,
            overflow: crate::transport::Overflow::Close,
            rate_limit: None,
            max_connections: None,
            max_connections_per_ip: None,
            connection_rate_per_ip: None,
            allowed_origins: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            auth_rejection: AuthRejection::Http401,
            ack_timeout: Duration::from_secs(10),
            socketio_path: "/socket.io/".to_owned(),
            connect_timeout: Duration::from_secs(45),
            redis: None,
            recovery: None,
            metrics_path: None,
        }
    }
}

impl ServerConfig {
    /// Whether `origin` may connect. Requests without an `Origin` header
    /// (non-browser clients) are always allowed.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => {
                self.allowed_origins.is_empty()
                    || self.allowed_origins.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut c = ServerConfig::default();
        assert!(c.origin_allowed(Some("http://evil")));
        c.allowed_origins = vec!["http://good".into()];
        assert!(c.origin_allowed(Some("http://good")));
        assert!(c.origin_allowed(Some("HTTP://GOOD")));
        assert!(!c.origin_allowed(Some("http://evil")));
        assert!(c.origin_allowed(None));
    }
}
