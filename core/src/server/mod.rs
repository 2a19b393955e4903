//! The embeddable server: builder, listener, application API, shutdown.

mod engine;
mod heartbeat;
mod http;
mod inbox;
mod limits;
mod session;
mod sio;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::http::WS_PATH;
use crate::auth::{AuthHook, Identity, JwtVerifier, Rejection};
use crate::config::{AuthRejection, ConnectionRate, RateLimit, ServerConfig};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::Hub;
use crate::hub::args::Args;
use crate::hub::broadcast::BroadcastOperator;
use crate::hub::handler::{self, IntoReply, JoinHook};
use crate::hub::namespace::Namespace;
use crate::hub::socket::{DisconnectReason, Handshake, Socket};
use crate::metrics::Stats;
use limits::ConnectionLimiter;

pub(crate) struct ServerInner {
    pub hub: Arc<Hub>,
    pub config: ServerConfig,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub limiter: Arc<ConnectionLimiter>,
    pub static_dir: Option<PathBuf>,
    pub engines: engine::Engines,
    /// The runtime `serve` ran on, for its task count in the metrics.
    pub runtime: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl ServerInner {
    /// The Prometheus exposition, with the connections open now.
    pub fn metrics(&self) -> String {
        let tasks = self.runtime.get().map(|h| h.metrics().num_alive_tasks() as u64);
        self.hub.metrics(self.limiter.live() as u64, tasks)
    }
}

/// A roomcast server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Server {
    /// Start configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Bind `addr` and serve on it (port 0 picks a free port). Returns the
    /// bound address. In a cluster, it first waits (at most the Redis
    /// connect timeout) for Redis, so the first clients reach every node.
    pub async fn listen(&self, addr: impl ToSocketAddrs) -> Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        if let Some(node) = &self.inner.hub.cluster {
            node.start();
            node.ready().await;
        }
        self.serve(listener)
    }

    /// Serve on an already bound listener, in the background (in a cluster,
    /// connecting to Redis meanwhile).
    pub fn serve(&self, listener: TcpListener) -> Result<SocketAddr> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::new(ErrorKind::Closed, "server is shut down"));
        }
        if let Some(node) = &self.inner.hub.cluster {
            node.start();
        }
        let addr = listener.local_addr()?;
        let _ = self.inner.runtime.set(tokio::runtime::Handle::current());
        tracing::info!(%addr, "listening");
        self.inner.tracker.spawn(http::accept_loop(listener, self.inner.clone()));
        Ok(addr)
    }

    /// The namespace `name` (created if needed, with the server's default hooks).
    pub fn of(&self, name: &str) -> Arc<Namespace> {
        self.inner.hub.of(name)
    }

    /// A dynamic namespace serving every name matching `pattern`, where `*`
    /// matches any run of characters other than `/` (e.g. `/team-*`). Its
    /// handlers and hooks apply to each matching namespace, created on first
    /// connection; its broadcasts reach all of them.
    pub fn dynamic_namespace(&self, pattern: &str) -> Arc<Namespace> {
        self.inner.hub.dynamic(pattern.to_owned(), crate::hub::NamespaceMatcher::Glob(pattern.to_owned()))
    }

    /// A dynamic namespace serving every name `accept` returns true for.
    pub fn dynamic_namespace_fn(&self, accept: impl Fn(&str) -> bool + Send + Sync + 'static) -> Arc<Namespace> {
        self.inner.hub.dynamic("<dynamic>".to_owned(), crate::hub::NamespaceMatcher::Predicate(Arc::new(accept)))
    }

    fn root(&self) -> Arc<Namespace> {
        self.inner.hub.of("/")
    }

    /// Register a connection handler on the default namespace.
    pub fn on_connection<F, Fut>(&self, f: F)
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.root().on_connection(f);
    }

    /// Register an event handler on the default namespace.
    pub fn on<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Socket, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.root().on(event, f);
    }

    /// Register a disconnect handler on the default namespace.
    pub fn on_disconnect<F, Fut>(&self, f: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.root().on_disconnect(f);
    }

    /// Broadcast to every socket of the default namespace (add `to`,
    /// `except`, `volatile` as needed).
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.root())
    }

    /// Broadcast to `room` in the default namespace.
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.root().to(room)
    }

    /// Broadcast to every socket of user `user_id` in the default namespace.
    pub fn to_user(&self, user_id: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.root()).to_user(user_id)
    }

    /// Send to every socket of the default namespace.
    pub fn emit(&self, event: impl Into<String>, data: impl Serialize) -> Result<usize> {
        self.root().emit(event, data)
    }

    /// A socket of the default namespace by id.
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        self.root().socket(sid)
    }

    /// Counters and gauges across all namespaces.
    pub fn stats(&self) -> Stats {
        self.inner.hub.stats(self.inner.limiter.live() as u64)
    }

    /// The counters and gauges in the Prometheus text format (OpenMetrics),
    /// as served at [`ServerBuilder::metrics_path`].
    pub fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// Whether `user_id` has a connection (on any node in a cluster).
    pub async fn is_online(&self, user_id: &str) -> Result<bool> {
        Ok(self.online_users(&[user_id.to_owned()]).await?.first().is_some_and(|(_, on)| *on))
    }

    /// Each of `user_ids` with whether it has a connection (on any node),
    /// in one call.
    pub async fn online_users(&self, user_ids: &[String]) -> Result<Vec<(String, bool)>> {
        let online = match &self.inner.hub.cluster {
            Some(node) => node.online(user_ids).await?,
            None => user_ids.iter().map(|u| self.inner.hub.user_connections(u) > 0).collect(),
        };
        Ok(user_ids.iter().cloned().zip(online).collect())
    }

    /// Call `f` for every socket of a cluster node that died (its heartbeat
    /// expired), once, on the node that cleans up after it. Never called
    /// without Redis.
    pub fn on_node_lost<F, Fut>(&self, f: F)
    where
        F: Fn(crate::cluster::LostSocket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if let Some(node) = &self.inner.hub.cluster {
            node.on_lost(Arc::new(move |lost| Box::pin(f(lost))));
        }
    }

    /// The ids of the cluster's nodes registered in Redis (this one
    /// included), sorted; without Redis, none.
    pub async fn nodes(&self) -> Result<Vec<String>> {
        let mut nodes = match &self.inner.hub.cluster {
            Some(node) => node.nodes().await?,
            None => Vec::new(),
        };
        nodes.sort();
        Ok(nodes)
    }

    /// Handle `event` sent by another node with [`Server::server_emit`];
    /// the return value is the ack.
    pub fn on_server_event<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: Into<Args>,
    {
        if let Some(node) = &self.inner.hub.cluster {
            let f = Arc::new(f);
            node.on_server_event(
                event.into(),
                Arc::new(move |args| {
                    let f = f.clone();
                    Box::pin(async move { f(args).await.into() })
                }),
            );
        }
    }

    /// Send `event` to every other node's [`Server::on_server_event`]
    /// handler (socket.io's `serverSideEmit`) and collect their replies
    /// (node id, ack) within the request timeout; nodes without a reply in
    /// time are listed as missing. Without Redis: no node, nothing sent.
    pub async fn server_emit(
        &self,
        event: impl Into<String>,
        args: impl Into<Args>,
    ) -> Result<crate::cluster::Partial<Vec<(String, Args)>>> {
        let Some(node) = &self.inner.hub.cluster else { return Ok(crate::cluster::Partial::complete(Vec::new())) };
        let query = crate::cluster::Query::ServerEvent {
            event: event.into(),
            args: crate::cluster::requests_wire(&args.into()),
        };
        let answers = node.ask_with_timeout(query).await?;
        let value = answers
            .value
            .into_iter()
            .filter_map(|(n, body)| match body {
                serde_json::Value::Array(items) => Some((n, crate::cluster::from_wire(items))),
                _ => None,
            })
            .collect();
        Ok(crate::cluster::Partial { value, missing: answers.missing })
    }

    /// This server's cluster node id (`None` without Redis).
    pub fn node_id(&self) -> Option<&str> {
        self.inner.hub.cluster.as_deref().map(|n| n.id())
    }

    /// Stop accepting, close every socket with 1001 and wait (at most the
    /// configured shutdown timeout) for their queued frames to be written.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let deadline = self.inner.config.shutdown_timeout + Duration::from_millis(500);
        if tokio::time::timeout(deadline, self.inner.tracker.wait()).await.is_err() {
            tracing::warn!("shutdown deadline passed with connections still open");
        }
        if let Some(node) = &self.inner.hub.cluster {
            node.stop().await;
        }
    }

    /// Whether `shutdown` was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }
}

/// Configures a [`Server`].
#[derive(Default)]
pub struct ServerBuilder {
    config: ServerConfig,
    auth: Option<AuthHook>,
    join: Option<JoinHook>,
    static_dir: Option<PathBuf>,
}

impl ServerBuilder {
    /// Replace the whole configuration.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Heartbeat interval (default 25 s).
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.ping_interval = d;
        self
    }

    /// Time allowed for a pong (default 20 s).
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.ping_timeout = d;
        self
    }

    /// Largest inbound message in bytes (default 1 000 000).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// Outbound queue bounds per connection.
    pub fn outbound_queue(mut self, frames: usize, bytes: usize) -> Self {
        self.config.outbound_queue_messages = frames;
        self.config.outbound_queue_bytes = bytes;
        self
    }

    /// Serve the Prometheus metrics ([`Server::metrics`]) at `path` (e.g.
    /// `/metrics`; off by default). Anyone who reaches the port can read them.
    pub fn metrics_path(mut self, path: impl Into<String>) -> Self {
        self.config.metrics_path = Some(path.into());
        self
    }

    /// What a full outbound queue does with a frame that is not volatile:
    /// close the slow consumer (the default) or drop the frame.
    pub fn overflow(mut self, policy: crate::transport::Overflow) -> Self {
        self.config.overflow = policy;
        self
    }

    /// Per-connection inbound rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.config.rate_limit = Some(limit);
        self
    }

    /// Maximum concurrent connections.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = Some(n);
        self
    }

    /// Maximum concurrent connections from one IP address.
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.config.max_connections_per_ip = Some(n);
        self
    }

    /// Limit how fast one IP address may open connections (a WebSocket, or
    /// an Engine.IO handshake; polls of an open session do not count).
    pub fn connection_rate_per_ip(mut self, rate: ConnectionRate) -> Self {
        self.config.connection_rate_per_ip = Some(rate);
        self
    }

    /// Allow this `Origin` (call repeatedly; none allows all).
    pub fn allowed_origin(mut self, origin: impl Into<String>) -> Self {
        self.config.allowed_origins.push(origin.into());
        self
    }

    /// Time a client has to complete its HTTP request and upgrade.
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.config.handshake_timeout = d;
        self
    }

    /// How long shutdown waits for queued frames to drain.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.config.shutdown_timeout = d;
        self
    }

    /// How refused connections are told (HTTP 401 or close 4001).
    pub fn auth_rejection(mut self, mode: AuthRejection) -> Self {
        self.config.auth_rejection = mode;
        self
    }

    /// Path of the Socket.IO endpoint (default `/socket.io/`).
    pub fn socketio_path(mut self, path: impl Into<String>) -> Self {
        self.config.socketio_path = path.into();
        self
    }

    /// Time a Socket.IO client has to connect a namespace (default 45 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Connect hook for every namespace: accept with an [`Identity`] or refuse.
    pub fn auth<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Identity, Rejection>> + Send + 'static,
    {
        self.auth = Some(crate::auth::auth_hook(f));
        self
    }

    /// Require a valid JWT (`?token=` or `Authorization: Bearer`); `sub` is the user id.
    pub fn jwt(mut self, verifier: JwtVerifier) -> Self {
        self.auth = Some(verifier.into_hook());
        self
    }

    /// Join hook for every namespace: refuse a client's `join` with a message.
    pub fn on_join<F, Fut, E>(mut self, f: F) -> Self
    where
        F: Fn(Socket, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.join = Some(handler::join_hook(f));
        self
    }

    /// Join a cluster over Redis: broadcasts, presence and `is_online`
    /// span every server configured with the same Redis and prefix.
    pub fn redis(mut self, config: crate::cluster::RedisConfig) -> Self {
        self.config.redis = Some(config);
        self
    }

    /// Turn on connection state recovery: a client that loses its
    /// connection and comes back within the window gets its socket (id,
    /// rooms, data) back and every packet it missed, in order (socket.io's
    /// `connectionStateRecovery`). Recoverable packets carry an offset: the
    /// last argument of Socket.IO events, an `offset` field in the JSON
    /// protocol. In a cluster, across nodes (Redis Streams).
    pub fn connection_state_recovery(mut self, config: crate::recovery::RecoveryConfig) -> Self {
        self.config.recovery = Some(config);
        self
    }

    /// Serve files from `dir` instead of the built-in landing page.
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }

    /// Check the configuration and create the server (it does not listen yet).
    pub fn build(self) -> Result<Server> {
        let c = &self.config;
        if c.ping_interval.is_zero() || c.ping_timeout.is_zero() {
            return Err(Error::new(ErrorKind::Config, "ping interval and timeout must be positive"));
        }
        if !c.socketio_path.starts_with('/') || c.socketio_path == crate::server::WS_PATH {
            return Err(Error::new(ErrorKind::Config, "the Socket.IO path must start with / and differ from /ws"));
        }
        if c.max_payload == 0 || c.outbound_queue_messages == 0 || c.outbound_queue_bytes == 0 {
            return Err(Error::new(ErrorKind::Config, "payload and queue limits must be positive"));
        }
        if let Some(r) = &c.rate_limit
            && (r.messages_per_sec <= 0.0 || r.message_burst < 1.0 || r.bytes_per_sec <= 0.0 || r.byte_burst < 1.0)
        {
            return Err(Error::new(ErrorKind::Config, "rate limits must be positive (bursts at least 1)"));
        }
        if let Some(r) = &c.connection_rate_per_ip
            && !(r.per_sec.is_finite() && r.per_sec > 0.0 && r.burst >= 1)
        {
            return Err(Error::new(ErrorKind::Config, "the connection rate must be positive (burst at least 1)"));
        }
        if let Some(r) = &c.recovery
            && (r.max_disconnection_duration.is_zero() || r.max_packets == 0)
        {
            return Err(Error::new(ErrorKind::Config, "the recovery window and packet limit must be positive"));
        }
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            return Err(Error::new(ErrorKind::Config, format!("static directory {} does not exist", dir.display())));
        }
        let cluster = match &c.redis {
            Some(r) if r.node_ttl < Duration::from_millis(300) => {
                return Err(Error::new(ErrorKind::Config, "the node TTL must be at least 300 ms"));
            }
            Some(r) => Some(crate::cluster::Node::new(r.clone(), c.recovery.clone())?),
            None => None,
        };
        let limiter = ConnectionLimiter::new(c.max_connections, c.max_connections_per_ip, c.connection_rate_per_ip);
        Ok(Server {
            inner: Arc::new(ServerInner {
                hub: Hub::new(self.auth, self.join, cluster, self.config.recovery.clone()),
                config: self.config,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                limiter,
                static_dir: self.static_dir,
                engines: engine::Engines::default(),
                runtime: std::sync::OnceLock::new(),
            }),
        })
    }
}
