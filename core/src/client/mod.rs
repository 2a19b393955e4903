//! A client for roomcast's plain JSON protocol (`ws://HOST/ws`, specified in
//! `docs/protocol-json.md`), with reconnection, rejoin and an offline queue.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> roomcast::Result<()> {
//! # let server = roomcast::Server::builder().build()?;
//! # server.on("get_time", |_, _| async { serde_json::json!(1_795_000_000) });
//! # let addr = server.listen("127.0.0.1:0").await?;
//! # let url = format!("ws://{addr}/ws");
//! use roomcast::client::{Client, ClientEvent, ClientOptions};
//! let client = Client::connect(&url, ClientOptions::default()).await?; // "ws://host:port/ws"
//! let mut events = client.events();
//! client.join("lobby").await?;
//! let time = client.emit_with_ack("get_time", serde_json::Value::Null).await?;
//! # let other = Client::connect(&url, ClientOptions::default()).await?;
//! # other.join("lobby").await?;
//! # other.send("lobby", serde_json::json!({"text": "hi"}))?;
//! # let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
//! while let Ok(event) = events.recv().await {
//!     if let ClientEvent::Message { from, payload, .. } = event {
//!         println!("{from}: {payload} (server time {time})");
//! #       return payload;
//!     }
//! }
//! # serde_json::Value::Null
//! # }).await;
//! # assert_eq!(got.expect("the message within 10 s")["text"], "hi");
//! # server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! One background task per client owns the WebSocket. Every outgoing
//! `join`, `leave`, `message` and `event` goes through one ordered queue that
//! the task writes out while connected; while the client is offline the same
//! queue holds them (bounded by [`ClientOptions::offline_queue`]) until a new
//! connection has rejoined the client's rooms. The server handles one
//! connection's frames in order, so nothing is reordered by a reconnection.
//!
//! Delivery across a lost connection: a frame still queued is sent on the
//! next connection; a frame already written may or may not have reached the
//! server and is not re-sent (re-sending could run an event twice). An
//! [`Client::emit_with_ack`] whose frame was written when the connection
//! dropped therefore fails with [`ErrorKind::Closed`]. With
//! [`ClientOptions::retries`] events are at least once instead: sent again
//! until answered, and run once by the server.

mod driver;
mod retry;
mod shared;
pub mod socketio;
mod ws;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderValue, Uri};
use serde_json::Value;
use tokio::sync::{broadcast, oneshot, watch};

use self::shared::Shared;
use crate::error::{Error, ErrorKind, Result};
use crate::hub::handler::IntoReply;
use crate::protocol::native::ClientMessage;

/// When and how often to reconnect after an unexpected loss.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Reconnect at all (default `true`).
    pub enabled: bool,
    /// Delay before the first attempt (default 500 ms); doubles per attempt.
    pub base: Duration,
    /// Upper bound of the delay (default 10 s).
    pub max: Duration,
    /// Attempts before giving up and going Disconnected; `None` retries forever (default).
    pub max_attempts: Option<u32>,
    /// Each delay is scaled by a random factor in `[1 - jitter, 1]` (default 0.5),
    /// so that clients dropped together do not all come back at the same instant.
    pub jitter: f64,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
            max_attempts: None,
            jitter: 0.5,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt `attempt` (0-based): `min(max, base * 2^attempt)`, jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        let capped = self.base.saturating_mul(factor).min(self.max);
        let jitter = if self.jitter.is_finite() { self.jitter.clamp(0.0, 1.0) } else { 0.0 };
        let scale = 1.0 - jitter * rand::random::<f64>();
        Duration::try_from_secs_f64(capped.as_secs_f64() * scale).unwrap_or(capped)
    }
}

/// How a [`Client`] connects and behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// Credential (a JWT or an opaque token), sent as `Authorization: Bearer`
    /// rather than `?token=` so it stays out of proxy and access logs; the
    /// server accepts either.
    pub token: Option<String>,
    /// Namespace to connect to, e.g. `/chat` (sent as `?namespace=`); default `/`.
    pub namespace: Option<String>,
    /// Reconnection after an unexpected loss.
    pub reconnect: ReconnectPolicy,
    /// Most frames waiting to be written (default 1000, at least 1). While
    /// offline this is the offline queue; while connected it only fills if
    /// the network is slower than the sender. Beyond it, sends fail with
    /// [`ErrorKind::QueueFull`] instead of growing memory without bound.
    pub offline_queue: usize,
    /// How long `join`, `leave`, `emit_with_ack` and `ping` wait for the
    /// server, time offline included (default 10 s).
    pub ack_timeout: Duration,
    /// Time allowed for each connection attempt, up to the `connected` frame (default 10 s).
    pub connect_timeout: Duration,
    /// At-least-once events (default 0: off). Above 0, `emit` and
    /// `emit_with_ack` ask for an ack and go out one at a time, in order;
    /// one not answered within `ack_timeout` is sent again, up to `retries`
    /// more times, and one whose connection dropped is sent again on the
    /// next. The client sends a random key with its handshake, so the server
    /// runs each event once however often it arrives. Room messages
    /// (`send`) stay at most once: the protocol does not confirm them.
    pub retries: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            token: None,
            namespace: None,
            reconnect: ReconnectPolicy::default(),
            offline_queue: 1000,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            retries: 0,
        }
    }
}

impl ClientOptions {
    fn validate(&self) -> Result<()> {
        let config = |msg: &str| Err(Error::new(ErrorKind::Config, msg));
        let r = &self.reconnect;
        if !(0.0..=1.0).contains(&r.jitter) {
            return config("reconnect jitter must be within 0..=1");
        }
        if r.enabled && r.base.is_zero() {
            return config("reconnect base delay must be positive");
        }
        if self.offline_queue == 0 {
            return config("offline_queue must be at least 1");
        }
        if self.ack_timeout.is_zero() || self.connect_timeout.is_zero() {
            return config("timeouts must be positive");
        }
        Ok(())
    }
}

/// Where the client's connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// The first connection is being opened.
    Connecting,
    /// Connected; remembered rooms have been rejoined and the queue flushed to the socket.
    Connected,
    /// The connection was lost; waiting for the backoff or trying again.
    Reconnecting,
    /// Stopped for good: `close()`, refused credentials, a normal close by
    /// the server (a kick; not its heartbeat timeout), or reconnection given up.
    Disconnected,
}

/// What the server sends that no handler consumed, and state changes.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// Another member relayed a message to one of our rooms.
    Message { room: String, from: String, user_id: Option<String>, payload: Value },
    /// Another socket joined one of our rooms; in a room with presence, a
    /// member's first connection did (`member` set; `client_id` absent when
    /// another node reported it).
    UserJoined { room: String, client_id: Option<String>, user_id: Option<String>, member: Option<Value> },
    /// Another socket left one of our rooms (or disconnected); in a room
    /// with presence, a member's last connection did (or its node died).
    UserLeft { room: String, client_id: Option<String>, user_id: Option<String>, member: Option<Value> },
    /// A member's presence metadata changed in one of our rooms.
    Presence { room: String, member: Value },
    /// A server event with no handler registered through [`Client::on`].
    Event { event: String, data: Value },
    /// A server `error` frame nobody was waiting for (e.g. `not_in_room`, a
    /// rejoin refused after reconnecting), or why the client stopped:
    /// `unauthorized`, `connection_closed` (closed by the server, or lost
    /// with reconnection disabled), `reconnect_failed`.
    Error { code: String, message: String, room: Option<String> },
    /// The state changed.
    State(ClientState),
}

/// A JSON-protocol client. Cheap to clone; clones share one connection.
/// Dropping the last clone closes it (as [`Client::close`] does, without
/// waiting), except that handlers registered with [`Client::on`] that
/// capture a clone keep it alive: call `close()` then.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

/// Owned by the `Client` clones only (the task holds `Shared`), so its drop
/// means the last handle is gone.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("uri", &self.shared().uri)
            .field("id", &self.id())
            .field("state", &self.state())
            .finish()
    }
}

impl Client {
    /// Connect to `url` (e.g. `ws://127.0.0.1:3000/ws`) and resolve once the
    /// server has sent `connected`. A failure here is returned, not retried:
    /// `Unauthorized` (HTTP 401 or close 4001), `NotFound` (unknown
    /// namespace), `Io` (e.g. connection refused), `Timeout`. From then on a
    /// background task keeps the connection alive.
    pub async fn connect(url: &str, opts: ClientOptions) -> Result<Client> {
        opts.validate()?;
        let uri = with_query(url, &opts)?;
        let auth =
            opts.token.as_ref().map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose().map_err(|_| {
                Error::new(ErrorKind::InvalidArgument, "token contains characters not allowed in a header")
            })?;
        let shared = Arc::new(Shared::new(uri, auth, opts));
        let conn = tokio::time::timeout(shared.opts.connect_timeout, driver::open(&shared))
            .await
            .map_err(|_| Error::timeout("connect"))??;
        // The first connection has no rooms or queue to restore: it is up now.
        let conn = conn.activate(&shared);
        shared.set_state(ClientState::Connected);
        tokio::spawn(driver::run(shared.clone(), conn));
        Ok(Client { handle: Arc::new(Handle { shared }) })
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    fn limit(&self) -> usize {
        self.shared().opts.offline_queue
    }

    fn wake(&self) {
        self.shared().wake.notify_one();
    }

    /// The current connection's id; new after every reconnection, `None` while offline.
    pub fn id(&self) -> Option<String> {
        self.shared().core.lock().session.as_ref().map(|s| s.client_id.clone())
    }

    /// Whether the current connection took up the previous one's session
    /// (the server has connection state recovery on and the client came
    /// back within its window): same id and rooms, and the missed room
    /// messages and events were delivered before any new one.
    pub fn recovered(&self) -> bool {
        self.shared().core.lock().session.as_ref().is_some_and(|s| s.recovered)
    }

    /// The user id the server authenticated this connection as, `None` if anonymous or offline.
    pub fn user_id(&self) -> Option<String> {
        self.shared().core.lock().session.as_ref().and_then(|s| s.user_id.clone())
    }

    /// The current state.
    pub fn state(&self) -> ClientState {
        *self.shared().state.borrow()
    }

    /// Watch the state (latest value only; [`Client::events`] has every change).
    pub fn watch_state(&self) -> watch::Receiver<ClientState> {
        self.shared().state.subscribe()
    }

    /// Everything the server sends that no handler consumed, plus state
    /// changes, from now on. A receiver that falls more than 1024 events
    /// behind skips the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.shared().events.subscribe()
    }

    /// Handle server event `event` (replacing an earlier handler). When the
    /// server asked for an ack, the return value is sent back as the ack.
    /// Handlers run as tasks, so they may await the server themselves.
    pub fn on<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        let handler: shared::Handler = Arc::new(move |data| {
            let fut = f(data);
            Box::pin(async move { fut.await.into_reply() })
        });
        self.shared().handlers.write().insert(event.into(), handler);
    }

    /// Join `room` and wait for the server to confirm; `Refused` if its join
    /// hook says no. The room is remembered and rejoined after every
    /// reconnection. Offline, the join waits for the next connection (within
    /// `ack_timeout`); after a timeout the room stays remembered — call
    /// [`Client::leave`] to give it up.
    pub async fn join(&self, room: &str) -> Result<()> {
        check_name("room", room)?;
        let rx = self.shared().core.lock().join(room, self.limit())?;
        self.wake();
        let result = self.wait(rx, "join").await;
        if result.is_err() {
            self.shared().core.lock().prune(room);
        }
        result
    }

    /// Leave `room` and forget it. Connected, waits for the server's
    /// confirmation; offline, returns at once (a leave cannot be refused, and
    /// it is replayed in order before anything queued after it).
    pub async fn leave(&self, room: &str) -> Result<()> {
        check_name("room", room)?;
        let rx = self.shared().core.lock().leave(room, self.limit())?;
        self.wake();
        let Some(rx) = rx else { return Ok(()) };
        let result = self.wait(rx, "leave").await;
        if result.is_err() {
            self.shared().core.lock().prune(room);
        }
        result
    }

    /// The rooms this client is in or is joining (its own id room excluded).
    pub fn rooms(&self) -> Vec<String> {
        self.shared().core.lock().rooms.clone()
    }

    /// Relay `payload` to the other members of `room`. Queued while offline;
    /// `QueueFull` when the queue is full, `Closed` once Disconnected. A
    /// `not_in_room` refusal arrives as a [`ClientEvent::Error`].
    pub fn send(&self, room: &str, payload: Value) -> Result<()> {
        check_name("room", room)?;
        self.shared().core.lock().enqueue(ClientMessage::Message { room: room.to_owned(), payload }, self.limit())?;
        self.wake();
        Ok(())
    }

    /// Send server event `event` without waiting for an answer; queued like
    /// [`Client::send`]. With [`ClientOptions::retries`], at least once (a
    /// failure after the last try is only logged).
    pub fn emit(&self, event: &str, data: Value) -> Result<()> {
        check_name("event", event)?;
        let shared = self.shared();
        if shared.opts.retries > 0 {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let msg = ClientMessage::Event { event: event.to_owned(), data, id: Some(id) };
            shared.core.lock().enqueue_retried(id, msg, None, self.limit())?;
        } else {
            shared
                .core
                .lock()
                .enqueue(ClientMessage::Event { event: event.to_owned(), data, id: None }, self.limit())?;
        }
        self.wake();
        Ok(())
    }

    /// Send server event `event` and wait for the handler's return value.
    /// Queued while offline. Fails with `NotFound` (no handler), `Internal`
    /// (the handler failed), `Timeout` after `ack_timeout` (a still-queued
    /// event is then withdrawn), or `Closed` if the connection dropped after
    /// the event was written (it may or may not have run).
    ///
    /// With [`ClientOptions::retries`], the event is sent again (same id)
    /// each time `ack_timeout` passes without an answer and when the
    /// connection drops, and fails with `Timeout` after the last try; time
    /// offline does not use up tries.
    pub async fn emit_with_ack(&self, event: &str, data: Value) -> Result<Value> {
        check_name("event", event)?;
        let id = self.shared().next_id.fetch_add(1, Ordering::Relaxed);
        if self.shared().opts.retries > 0 {
            let (tx, rx) = oneshot::channel();
            let msg = ClientMessage::Event { event: event.to_owned(), data, id: Some(id) };
            self.shared().core.lock().enqueue_retried(id, msg, Some(tx), self.limit())?;
            self.wake();
            return rx.await.unwrap_or_else(|_| Err(Error::new(ErrorKind::Closed, "client closed before the ack")));
        }
        let rx = self.shared().core.lock().emit_with_ack(id, event.to_owned(), data, self.limit())?;
        self.wake();
        let result = self.wait(rx, "ack").await;
        if result.is_err() {
            self.shared().core.lock().cancel_ack(id);
        }
        result
    }

    /// Round trip of an application-level `ping`. `Closed` while offline.
    pub async fn ping(&self) -> Result<Duration> {
        let id = self.shared().next_id.fetch_add(1, Ordering::Relaxed);
        let rx = self.shared().core.lock().ping(id)?;
        let start = tokio::time::Instant::now();
        self.wake();
        let result = self.wait(rx, "ping").await;
        if result.is_err() {
            self.shared().core.lock().cancel_ping(id);
        }
        result.map(|()| start.elapsed())
    }

    /// Write what is queued, close the connection normally, stop
    /// reconnecting and wait until the client is Disconnected. Pending calls
    /// fail with `Closed`.
    pub async fn close(&self) {
        self.shared().shutdown.cancel();
        let mut state = self.watch_state();
        // The task owns the transition; the sender lives as long as `self`.
        let _ = state.wait_for(|s| *s == ClientState::Disconnected).await;
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<Result<T>>, what: &str) -> Result<T> {
        match tokio::time::timeout(self.shared().opts.ack_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => {
                Err(Error::new(ErrorKind::Closed, format!("connection closed before the {what} was answered")))
            }
            Err(_) => Err(Error::timeout(what)),
        }
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::new(ErrorKind::InvalidArgument, format!("{what} name must not be empty")));
    }
    Ok(())
}

/// `url` with `namespace` (and an at-least-once client's key) added to its query.
fn with_query(url: &str, opts: &ClientOptions) -> Result<Uri> {
    let mut url = url.to_owned();
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    if let Some(ns) = &opts.namespace {
        pairs.append_pair("namespace", ns);
    }
    if opts.retries > 0 {
        pairs.append_pair(crate::protocol::CLIENT_KEY, &retry::client_key());
    }
    let query = pairs.finish();
    if !query.is_empty() {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&query);
    }
    url.parse::<Uri>()
        .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("bad URL {url:?}: {e}")).with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max() {
        let p = ReconnectPolicy {
            jitter: 0.0,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            ..Default::default()
        };
        let delays: Vec<_> = (0..6).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = ReconnectPolicy { jitter: 0.5, base: Duration::from_millis(1000), ..Default::default() };
        for _ in 0..200 {
            let d = p.delay(0);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000), "{d:?}");
        }
        let huge = ReconnectPolicy { base: Duration::MAX, max: Duration::MAX, jitter: f64::NAN, ..Default::default() };
        assert_eq!(huge.delay(3), Duration::MAX);
    }

    #[test]
    fn options_are_checked() {
        let bad = |f: fn(&mut ClientOptions)| {
            let mut o = ClientOptions::default();
            f(&mut o);
            o.validate().map_err(|e| e.kind())
        };
        assert_eq!(bad(|_| {}), Ok(()));
        assert_eq!(bad(|o| o.reconnect.jitter = 1.5), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.reconnect.jitter = f64::NAN), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.reconnect.base = Duration::ZERO), Err(ErrorKind::Config));
        assert_eq!(bad(|o| o.offline_queue = 0), Err(ErrorKind::Config));
    }

    #[test]
    fn namespace_goes_into_the_query() {
        let opts = ClientOptions { namespace: Some("/chat".into()), ..Default::default() };
        assert_eq!(with_query("ws://h/ws", &opts).unwrap().to_string(), "ws://h/ws?namespace=%2Fchat");
        assert_eq!(with_query("ws://h/ws?x=1", &opts).unwrap().to_string(), "ws://h/ws?x=1&namespace=%2Fchat");
        assert_eq!(with_query("not a url", &ClientOptions::default()).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}
