//! A Socket.IO v5 client (Engine.IO v4 over WebSocket) that talks to any
//! Socket.IO 3/4 server, roomcast's included, the way `socket.io-client` does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> roomcast::Result<()> {
//! # let server = roomcast::Server::builder().build()?;
//! # server.of("/admin").on("echo", |_, args| async move { args });
//! # let addr = server.listen("127.0.0.1:0").await?;
//! # let url = format!("http://{addr}/admin");
//! use std::time::Duration;
//! use roomcast::client::socketio::{SocketIoClient, SocketIoOptions};
//! use roomcast::{Args, Data};
//! let opts = SocketIoOptions { auth: Some(serde_json::json!({"token": "secret"})), ..Default::default() };
//! let client = SocketIoClient::new(&url, opts)?; // "http://host:port/admin"
//! // Handlers registered before `open` see the events the server sends on connection.
//! client.on("question", |args: Args| async move { Args::one(Data::from(format!("answer to {args}"))) });
//! client.open().await?;
//! client.emit("chat", Args::new(vec![Data::from("hi"), Data::from(vec![1u8, 2, 3])]))?;
//! let reply = client.emit_with_ack("echo", Args::one(Data::from("ping")), Duration::from_secs(5)).await?;
//! # assert_eq!(reply.to_string(), Args::one(Data::from("ping")).to_string());
//! # server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! One client is one socket in one namespace (the URL's path), like
//! `io("http://host/admin")`. A background task owns the WebSocket: it
//! answers the server's pings, detects a silent server (no ping within
//! pingInterval + pingTimeout), dispatches events and acks, and reconnects
//! with socket.io-client's backoff. Emits go through one ordered queue that
//! the task writes while connected and that buffers them (bounded) while
//! the connection is down, so they reach the server in order after a
//! reconnection.
//!
//! Delivery across a lost connection follows socket.io-client: an emit still
//! queued is sent on the next connection; one already written is not re-sent,
//! so a [`SocketIoClient::emit_with_ack`] whose packet was written when the
//! connection dropped fails with [`ErrorKind::Closed`]. With
//! [`SocketIoOptions::retries`] emits are at least once instead: sent again
//! until acked, and handled once by a roomcast server.
//!
//! Only the WebSocket transport is implemented (no HTTP long-polling, hence
//! no upgrade), and plain `ws://` only: the crate is built without TLS.

mod driver;
mod shared;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderMap, Uri};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use self::shared::{Endpoint, Shared};
use super::{ClientState, ReconnectPolicy, retry};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::args::{Args, Data};
use crate::hub::handler::IntoReply;
use crate::protocol::CLIENT_KEY;
use crate::protocol::socketio::{self as sio, RESERVED_EVENTS};

/// How a [`SocketIoClient`] connects and behaves; the defaults are
/// socket.io-client's.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketIoOptions {
    /// Path of the Engine.IO endpoint (socket.io-client's `path`, default `/socket.io/`).
    pub path: String,
    /// The CONNECT payload (socket.io-client's `auth`), a JSON object sent on
    /// every connection and reconnection; the server sees it as `handshake.auth`.
    pub auth: Option<Value>,
    /// Extra query parameters of the handshake request (socket.io-client's
    /// `query`), after those of the URL itself.
    pub query: Vec<(String, String)>,
    /// Extra headers of the WebSocket handshake (socket.io-client's `extraHeaders`).
    pub headers: HeaderMap,
    /// Reconnection after an unexpected loss. Defaults to socket.io-client's
    /// `reconnectionDelay` 1 s, `reconnectionDelayMax` 5 s,
    /// `randomizationFactor` 0.5 and unlimited attempts, and applies its
    /// formula (see [`backoff`]) rather than [`ReconnectPolicy::delay`]: the
    /// jitter moves a delay either way, before the cap.
    pub reconnect: ReconnectPolicy,
    /// Most emits waiting to be written (default 1000, at least 1). While
    /// disconnected this is the offline buffer; beyond it, emits fail with
    /// [`ErrorKind::QueueFull`] rather than grow memory without bound.
    pub offline_queue: usize,
    /// Time allowed for each connection attempt, up to the server's answer to
    /// CONNECT (socket.io-client's `timeout`, default 20 s).
    pub connect_timeout: Duration,
    /// At-least-once emits (socket.io-client's `retries`, default 0: off).
    /// Above 0, every emit asks for an ack and goes out one at a time, in
    /// order; one not acked within `ack_timeout` is sent again, up to
    /// `retries` more times, and one whose connection dropped is sent again
    /// on the next. The client sends a random key with its handshake, so a
    /// roomcast server runs each event once however often it arrives.
    pub retries: u32,
    /// How long each try of an at-least-once emit waits for its ack
    /// (socket.io-client's `ackTimeout`, default 10 s; used with `retries`).
    pub ack_timeout: Duration,
}

impl Default for SocketIoOptions {
    fn default() -> Self {
        Self {
            path: "/socket.io/".to_owned(),
            auth: None,
            query: Vec::new(),
            headers: HeaderMap::new(),
            reconnect: ReconnectPolicy {
                enabled: true,
                base: Duration::from_millis(1000),
                max: Duration::from_millis(5000),
                max_attempts: None,
                jitter: 0.5,
            },
            offline_queue: 1000,
            connect_timeout: Duration::from_secs(20),
            retries: 0,
            ack_timeout: Duration::from_secs(10),
        }
    }
}

impl SocketIoOptions {
    fn validate(&self) -> Result<()> {
        let config = |msg: &str| Err(Error::new(ErrorKind::Config, msg));
        let r = &self.reconnect;
        if !(0.0..=1.0).contains(&r.jitter) {
            return config("reconnect jitter (randomization factor) must be within 0..=1");
        }
        if r.enabled && r.base.is_zero() {
            return config("reconnect base delay must be positive");
        }
        if self.offline_queue == 0 {
            return config("offline_queue must be at least 1");
        }
        if self.connect_timeout.is_zero() || self.ack_timeout.is_zero() {
            return config("connect_timeout and ack_timeout must be positive");
        }
        if self.auth.as_ref().is_some_and(|a| !a.is_object()) {
            return config("auth must be a JSON object");
        }
        Ok(())
    }
}

/// socket.io-client's reconnection delay before attempt `attempt` (0-based):
/// `base * 2^attempt`, moved by up to `jitter` of itself either way
/// (`rand` in `[0, 1]` picks where: 0 is the shortest, 1 the longest), then
/// capped at `max`.
pub fn backoff(policy: &ReconnectPolicy, attempt: u32, rand: f64) -> Duration {
    let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
    let ms = policy.base.as_secs_f64() * 2f64.powi(exp);
    let jitter = if policy.jitter.is_finite() { policy.jitter.clamp(0.0, 1.0) } else { 0.0 };
    let spread = jitter * (2.0 * rand.clamp(0.0, 1.0) - 1.0);
    // Past Duration's range (or an infinite exponential) is simply the cap.
    Duration::try_from_secs_f64(ms * (1.0 + spread)).map_or(policy.max, |d| d.min(policy.max))
}

/// Why a connection ended, with socket.io-client's reason strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The server disconnected the socket (a DISCONNECT packet). Not retried:
    /// the server meant it; call [`SocketIoClient::open`] to come back.
    IoServerDisconnect,
    /// [`SocketIoClient::close`] was called, or the last handle dropped.
    IoClientDisconnect,
    /// No ping from the server within pingInterval + pingTimeout.
    PingTimeout,
    /// The connection was closed, by the server or the network.
    TransportClose,
    /// The connection failed with an error.
    TransportError,
    /// The server sent a packet that could not be decoded.
    ParseError,
}

impl DisconnectReason {
    /// The reason string, word for word as socket.io-client reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IoServerDisconnect => "io server disconnect",
            Self::IoClientDisconnect => "io client disconnect",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
        }
    }

    /// Whether the client reconnects after this (when its policy allows).
    pub fn reconnects(self) -> bool {
        !matches!(self, Self::IoServerDisconnect | Self::IoClientDisconnect)
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The server's refusal of a namespace connection (its CONNECT_ERROR),
/// attached as the source of the [`Error`] that `open` or `connect` return.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// The server's message, e.g. `"Invalid namespace"` or a middleware's error message.
    pub message: String,
    /// The `data` the server attached (socket.io's `err.data`), if any.
    pub data: Option<Value>,
}

impl ConnectError {
    /// The refusal behind `error`, when `error` is one.
    pub fn of(error: &Error) -> Option<&ConnectError> {
        std::error::Error::source(error)?.downcast_ref()
    }

    /// Read a CONNECT_ERROR payload: `{"message":…,"data":…}`, or a bare
    /// string from older servers.
    fn from_payload(payload: Option<Value>) -> Self {
        match payload {
            Some(Value::Object(mut obj)) => Self {
                message: match obj.remove("message") {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                },
                data: obj.remove("data"),
            },
            Some(Value::String(message)) => Self { message, data: None },
            _ => Self { message: String::new(), data: None },
        }
    }

    /// As an [`Error`]: `NotFound` for the namespace socket.io reports as
    /// `Invalid namespace`, `Refused` for anything else (a middleware said no).
    fn into_error(self) -> Error {
        let kind = if self.message == "Invalid namespace" { ErrorKind::NotFound } else { ErrorKind::Refused };
        Error::new(kind, self.message.clone()).with_source(self)
    }
}

/// Connection changes and the server events no handler took.
#[derive(Clone, Debug, PartialEq)]
pub enum SocketIoEvent {
    /// Connected to the namespace (first time, or again after a
    /// reconnection); `id` is the new socket id.
    Connect { id: String },
    /// The connection ended; [`DisconnectReason::reconnects`] tells whether
    /// the client tries again.
    Disconnect { reason: DisconnectReason },
    /// A connection attempt failed: the server refused the namespace (with
    /// its `data`, and the client stops), or it could not be reached (`data`
    /// is `None`, and reconnection goes on).
    ConnectError { message: String, data: Option<Value> },
    /// Reconnection gave up after [`ReconnectPolicy::max_attempts`].
    ReconnectFailed,
    /// A server event with no handler of its own and no [`SocketIoClient::on_any`].
    Event { event: String, args: Args },
}

/// A Socket.IO client socket. Cheap to clone; clones share one connection.
/// Dropping the last clone closes it (as [`SocketIoClient::close`] does,
/// without waiting), except that handlers that capture a clone keep it
/// alive: call `close()` then.
#[derive(Clone)]
pub struct SocketIoClient {
    handle: Arc<Handle>,
}

/// Owned by the client clones only (tasks hold `Shared`), so its drop means
/// the last handle is gone.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl std::fmt::Debug for SocketIoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoClient")
            .field("uri", &self.shared().endpoint.uri)
            .field("namespace", &self.namespace())
            .field("id", &self.id())
            .field("state", &self.state())
            .finish()
    }
}

impl SocketIoClient {
    /// A client for `url` (e.g. `http://127.0.0.1:3000/admin`; `http`,
    /// `ws`; the path is the namespace), not connected yet: register
    /// handlers and subscribe to [`SocketIoClient::events`], then
    /// [`SocketIoClient::open`]. Fails on a malformed URL or inconsistent options.
    pub fn new(url: &str, opts: SocketIoOptions) -> Result<SocketIoClient> {
        opts.validate()?;
        let mut query = opts.query.clone();
        if opts.retries > 0 {
            query.push((CLIENT_KEY.to_owned(), retry::client_key()));
        }
        let endpoint = endpoint(url, &opts.path, &query)?;
        Ok(SocketIoClient { handle: Arc::new(Handle { shared: Arc::new(Shared::new(endpoint, opts)) }) })
    }

    /// [`SocketIoClient::new`] then [`SocketIoClient::open`]. Events the
    /// server sends right on connection may arrive before handlers
    /// registered afterwards; use `new` + `open` when that matters.
    pub async fn connect(url: &str, opts: SocketIoOptions) -> Result<SocketIoClient> {
        let client = Self::new(url, opts)?;
        client.open().await?;
        Ok(client)
    }

    /// Connect, and resolve once the server has accepted the namespace.
    /// A failure here is returned, not retried: `Refused` or `NotFound`
    /// when the server answers CONNECT_ERROR (see [`ConnectError::of`]),
    /// `Io`, `Timeout`, `Protocol`. From then on a background task keeps the
    /// connection alive. Also brings a Disconnected client back (after a
    /// kick, `close()` or reconnection given up); does nothing while the
    /// client is already connected, connecting or reconnecting.
    ///
    /// The run starts when `open()` is called, not when the future is first
    /// polled: emits made right after are buffered for this connection.
    pub fn open(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let shared = self.handle.shared.clone();
        let started = shared.start().map(|token| (token, PendingOpen { shared: shared.clone(), armed: true }));
        async move {
            let Some((token, mut pending)) = started else { return Ok(()) };
            let attempt = tokio::select! {
                biased;
                () = token.cancelled() => Err(Error::closed()),
                r = tokio::time::timeout(shared.opts.connect_timeout, driver::open(&shared)) => {
                    r.unwrap_or_else(|_| Err(Error::timeout("connect")))
                }
            };
            pending.armed = false;
            match attempt {
                Ok(conn) => {
                    let active = conn.activate(&shared);
                    tokio::spawn(driver::run(shared.clone(), active, token));
                    Ok(())
                }
                Err(e) => {
                    shared.connect_failed(&e);
                    shared.finish(None);
                    Err(e)
                }
            }
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The namespace this client connects to, e.g. `/` or `/admin`.
    pub fn namespace(&self) -> &str {
        &self.shared().endpoint.namespace
    }

    /// The socket id the server gave; new after every reconnection, `None`
    /// while not connected.
    pub fn id(&self) -> Option<String> {
        self.shared().core.lock().sid.clone()
    }

    /// Whether the current connection took up the previous one's session
    /// (socket.io-client's `socket.recovered`): the server has connection
    /// state recovery on, and replayed what this client missed while away.
    /// roomcast's client takes each event's offset off its arguments.
    pub fn recovered(&self) -> bool {
        self.shared().core.lock().recovered
    }

    /// The current state; Disconnected before `open`.
    pub fn state(&self) -> ClientState {
        *self.shared().state.borrow()
    }

    /// Watch the state (latest value only; [`SocketIoClient::events`] has every connect and disconnect).
    pub fn watch_state(&self) -> watch::Receiver<ClientState> {
        self.shared().state.subscribe()
    }

    /// Connection events and unhandled server events, from now on. A
    /// receiver more than 1024 events behind skips the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<SocketIoEvent> {
        self.shared().events.subscribe()
    }

    /// Handle server event `event` (replacing an earlier handler). When the
    /// server asked for an ack, the return value is sent back as the ack's
    /// arguments (`()` or `None`: none; a failure is logged and acked
    /// without arguments, as Socket.IO has no error acks). Handlers run as
    /// tasks, so they may await the server themselves, and so may finish in
    /// any order.
    pub fn on<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        let handler: shared::Handler = Arc::new(move |args| {
            let fut = f(args);
            Box::pin(async move { fut.await.into_reply() })
        });
        self.shared().handlers.write().insert(event.into(), handler);
    }

    /// Handle every server event that has no handler of its own, like the
    /// server side's `on_any`; its return value is the ack as for [`SocketIoClient::on`].
    pub fn on_any<F, Fut, R>(&self, f: F)
    where
        F: Fn(String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        let handler: shared::AnyHandler = Arc::new(move |event, args| {
            let fut = f(event, args);
            Box::pin(async move { fut.await.into_reply() })
        });
        *self.shared().any.write() = Some(handler);
    }

    /// Send event `event` with `args` (binary values travel as attachments).
    /// Buffered while the connection is down; `QueueFull` when the buffer is
    /// full, `Closed` while Disconnected, `InvalidArgument` for a name
    /// socket.io reserves (`connect`, `disconnect`, …).
    ///
    /// With [`SocketIoOptions::retries`], the emit is at least once: it asks
    /// for an ack and is sent again until one comes (a failure after the
    /// last try is only logged; use `emit_with_ack` to learn of it).
    pub fn emit(&self, event: &str, args: impl Into<Args>) -> Result<()> {
        let shared = self.shared();
        let name = event_name(event)?;
        if shared.opts.retries > 0 {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let frames = driver::event_frames(self.namespace(), name, args.into(), Some(id));
            shared.core.lock().enqueue_retried(id, frames, None, shared.opts.offline_queue)?;
        } else {
            let frames = driver::event_frames(self.namespace(), name, args.into(), None);
            shared.core.lock().enqueue(frames, shared.opts.offline_queue)?;
        }
        shared.wake.notify_one();
        Ok(())
    }

    /// Send event `event` and wait at most `timeout` for the server's ack
    /// (time disconnected included). `Timeout` withdraws a still-buffered
    /// event, so the server never sees what the caller was told failed;
    /// `Closed` if the connection dropped after the event was written (the
    /// server may or may not have handled it), or on `close()`.
    ///
    /// With [`SocketIoOptions::retries`], the event is sent again (same ack
    /// id) each time `ack_timeout` passes without an ack and when the
    /// connection drops; it fails with `Timeout` after the last try, or when
    /// `timeout` (the whole wait) ends first, which withdraws it.
    pub async fn emit_with_ack(&self, event: &str, args: impl Into<Args>, timeout: Duration) -> Result<Args> {
        let shared = self.shared();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let frames = driver::event_frames(self.namespace(), event_name(event)?, args.into(), Some(id));
        if shared.opts.retries > 0 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            shared.core.lock().enqueue_retried(id, frames, Some(tx), shared.opts.offline_queue)?;
            shared.wake.notify_one();
            let result = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(outcome)) => return outcome,
                Ok(Err(_)) => Err(Error::new(ErrorKind::Closed, format!("client closed before the ack of {event:?}"))),
                Err(_) => Err(Error::timeout("ack")),
            };
            shared.core.lock().retried.cancel(id);
            return result;
        }
        let rx = shared.core.lock().enqueue_with_ack(id, frames, shared.opts.offline_queue)?;
        shared.wake.notify_one();
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => return Ok(args),
            Ok(Err(_)) => Err(Error::new(ErrorKind::Closed, format!("connection closed before the ack of {event:?}"))),
            Err(_) => Err(Error::timeout("ack")),
        };
        shared.core.lock().cancel_ack(id);
        result
    }

    /// Write what is buffered, leave the namespace (DISCONNECT), close the
    /// connection, stop reconnecting and wait until the client is
    /// Disconnected. Pending acks fail with `Closed`. [`SocketIoClient::open`]
    /// connects again. A socket.io server ignores events that arrive together
    /// with the DISCONNECT: await an ack for what must reach it.
    pub async fn close(&self) {
        self.shared().stop();
        let mut state = self.watch_state();
        // The task owns the transition; the sender lives as long as `self`.
        let _ = state.wait_for(|s| *s == ClientState::Disconnected).await;
        // `finish` emits the last event under the lock after the state
        // change: once we get the lock, subscribers can receive it.
        drop(self.shared().core.lock());
    }
}

/// Ends the run when an `open()` future is dropped before the connection is
/// up (even unpolled), so that the client does not stay Connecting with no
/// task behind it.
struct PendingOpen {
    shared: Arc<Shared>,
    armed: bool,
}

impl Drop for PendingOpen {
    fn drop(&mut self) {
        if self.armed {
            self.shared.finish(None);
        }
    }
}

/// `event` as the first element of an EVENT's array, unless reserved.
fn event_name(event: &str) -> Result<Data> {
    if RESERVED_EVENTS.contains(&event) {
        return Err(Error::new(ErrorKind::InvalidArgument, format!("{event:?} is a reserved event name")));
    }
    Ok(Data::from(event))
}

/// The WebSocket URI and namespace of a socket.io-client style URL: the
/// path names the namespace, `path` the Engine.IO endpoint, and the URL's
/// query goes along with `query` and the Engine.IO parameters.
fn endpoint(url: &str, path: &str, query: &[(String, String)]) -> Result<Endpoint> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidArgument, format!("bad Socket.IO URL {url:?}: {why}"));
    let parsed: Uri = url.parse().map_err(|e: http::uri::InvalidUri| bad(&e.to_string()).with_source(e))?;
    let scheme = match parsed.scheme_str() {
        Some("http" | "ws") => "ws",
        Some("https" | "wss") => "wss",
        _ => return Err(bad("the scheme must be http, https, ws or wss")),
    };
    let authority = parsed.authority().ok_or_else(|| bad("no host"))?;
    let namespace = match parsed.path() {
        "" => "/",
        p => p,
    };
    sio::Packet::connect(namespace, None).validate().map_err(|e| bad(&e.to_string()))?;
    let path = match path.trim_matches('/') {
        "" => "/".to_owned(),
        p => format!("/{p}/"),
    };
    let mut q = parsed.query().map(|q| format!("{q}&")).unwrap_or_default();
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    pairs.extend_pairs(query);
    pairs.append_pair("EIO", "4").append_pair("transport", "websocket");
    q.push_str(&pairs.finish());
    let uri =
        format!("{scheme}://{authority}{path}?{q}").parse::<Uri>().map_err(|e| bad(&e.to_string()).with_source(e))?;
    Ok(Endpoint { uri, namespace: namespace.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_follows_socket_io() {
        let p = SocketIoOptions::default().reconnect;
        // rand 0 is the low end, 1 the high end, 0.5 the exponential itself.
        let at = |attempt, r| backoff(&p, attempt, r).as_millis();
        assert_eq!([at(0, 0.0), at(0, 0.5), at(0, 1.0)], [500, 1000, 1500]);
        assert_eq!([at(1, 0.0), at(1, 0.5), at(1, 1.0)], [1000, 2000, 3000]);
        // The cap applies after the jitter.
        assert_eq!([at(2, 0.0), at(2, 0.5), at(2, 1.0)], [2000, 4000, 5000]);
        assert_eq!([at(3, 0.0), at(3, 1.0)], [4000, 5000]);
        assert_eq!([at(60, 0.3), at(u32::MAX, 0.0), at(u32::MAX, 1.0)], [5000, 5000, 5000]);
        for _ in 0..200 {
            let d = backoff(&p, 0, rand::random());
            assert!(d >= ms(500) && d <= ms(1500), "{d:?}");
        }
        let exact = ReconnectPolicy { jitter: 0.0, base: ms(100), max: ms(1000), ..p };
        let delays: Vec<_> = (0..6).map(|a| backoff(&exact, a, 0.9).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn options_are_checked() {
        let bad = |f: fn(&mut SocketIoOptions)| {
            let mut o = SocketIoOptions::default();
            f(&mut o);
            o.validate().map_err(|e| e.kind())
        };
        assert_eq!(bad(|_| {}), Ok(()));
        assert_eq!(bad(|o| o.auth = Some(json!({"token": "x"}))), Ok(()));
        assert_eq!(bad(|o| o.auth = Some(json!("token"))), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.reconnect.jitter = 1.5), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.reconnect.jitter = f64::NAN), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.reconnect.base = Duration::ZERO), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.offline_queue = 0), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.connect_timeout = Duration::ZERO), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.ack_timeout = Duration::ZERO), Err(ErrorKind::Config));
    }

    #[test]
    fn url_gives_endpoint_and_namespace() {
        let ep = |url: &str, path: &str| endpoint(url, path, &[]).map(|e| (e.uri.to_string(), e.namespace));
        let plain = "ws://h:3000/socket.io/?EIO=4&transport=websocket".to_owned();
        assert_eq!(ep("http://h:3000", "/socket.io/").unwrap(), (plain.clone(), "/".to_owned()));
        assert_eq!(ep("ws://h:3000/", "/socket.io").unwrap(), (plain, "/".to_owned()));
        assert_eq!(
            ep("https://h/admin?x=1", "custom").unwrap(),
            ("wss://h/custom/?x=1&EIO=4&transport=websocket".to_owned(), "/admin".to_owned())
        );
        assert_eq!(ep("http://h/a", "/").unwrap().0, "ws://h/?EIO=4&transport=websocket");
        let with_query = endpoint("http://h/", "/socket.io/", &[("k".into(), "a b&c".into())]).unwrap();
        assert_eq!(with_query.uri.to_string(), "ws://h/socket.io/?k=a+b%26c&EIO=4&transport=websocket");
        for bad in ["ftp://h/", "/admin", "http://h/a,b", "not a url"] {
            assert_eq!(ep(bad, "/socket.io/").unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn connect_errors_carry_message_and_data() {
        let e =
            ConnectError::from_payload(Some(json!({"message": "not authorized", "data": {"code": 42}}))).into_error();
        assert_eq!((e.kind(), e.message()), (ErrorKind::Refused, "not authorized"));
        let ce = ConnectError::of(&e).unwrap();
        assert_eq!(ce.data, Some(json!({"code": 42})));
        let e = ConnectError::from_payload(Some(json!({"message": "Invalid namespace"}))).into_error();
        assert_eq!((e.kind(), ConnectError::of(&e).unwrap().data.clone()), (ErrorKind::NotFound, None));
        let legacy = ConnectError::from_payload(Some(json!("nope")));
        assert_eq!(legacy, ConnectError { message: "nope".into(), data: None });
        assert_eq!(ConnectError::of(&Error::closed()), None);
    }

    #[test]
    fn reasons_are_socket_io_strings() {
        use DisconnectReason::*;
        let all = [IoServerDisconnect, IoClientDisconnect, PingTimeout, TransportClose, TransportError, ParseError];
        let strings: Vec<_> = all.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            strings,
            [
                "io server disconnect",
                "io client disconnect",
                "ping timeout",
                "transport close",
                "transport error",
                "parse error"
            ]
        );
        let retried: Vec<_> = all.iter().map(|r| r.reconnects()).collect();
        assert_eq!(retried, [false, false, true, true, true, true]);
    }

    #[test]
    fn reserved_names_are_refused() {
        assert_eq!(event_name("disconnect").unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(event_name("chat").unwrap(), Data::from("chat"));
    }
}
