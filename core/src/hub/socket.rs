//! One client session in one namespace, as the application sees it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::broadcast::BroadcastOperator;
use super::handler::{self, AnyHandler, DisconnectHandler, EventHandler, IntoReply, Middleware};
use super::namespace::Namespace;
use super::packet::{Encoded, Packet, Protocol};
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Counters;
use crate::recovery::Offset;
use crate::transport::Frame;
use crate::transport::outbox::{Outbox, Pushed};

/// A socket id: 128 random bits from the OS-seeded CSPRNG, URL-safe base64.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct Sid(Arc<str>);

impl PartialEq for Sid {
    fn eq(&self, other: &Self) -> bool {
        // Ids are shared, not copied, so the pointer usually decides.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl std::hash::Hash for Sid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Like `str`'s hash, so lookups by `&str` (via `Borrow`) agree.
        self.0.hash(state);
    }
}

impl Sid {
    pub(crate) fn generate() -> Self {
        let bytes: [u8; 16] = rand::random();
        Sid(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` looks like a socket id (22 URL-safe base64 characters).
    pub(crate) fn is_shaped(name: &str) -> bool {
        name.len() == 22 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

#[cfg(test)]
mod tests {
    use super::Sid;

    #[test]
    fn generated_ids_are_recognised() {
        assert!(Sid::is_shaped(Sid::generate().as_str()));
        assert!(!Sid::is_shaped("lobby") && !Sid::is_shaped("user:0123456789abcdefghij"));
    }

    /// Ids (Engine.IO sids, socket ids, recovery pids) are 128 random bits:
    /// no two alike, no counter or clock in them, every bit a coin toss.
    #[test]
    fn generated_ids_are_unguessable() {
        use base64::Engine as _;
        const N: usize = 20_000;
        let ids: Vec<Vec<u8>> = (0..N)
            .map(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(Sid::generate().as_str()).unwrap())
            .collect();
        assert!(ids.iter().all(|id| id.len() == 16), "128 bits each");
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), N);
        // Each of the 128 bits is set in about half the ids: 10,000 ± 71
        // (one standard deviation); 9,000..11,000 is fourteen of them.
        for bit in 0..128 {
            let ones = ids.iter().filter(|id| id[bit / 8] & (1 << (bit % 8)) != 0).count();
            assert!((9_000..11_000).contains(&ones), "bit {bit} set in {ones} of {N}");
        }
        // Consecutive ids share no more bits than chance (64 of 128 on average).
        let same: u32 = ids.windows(2).map(|w| (0..16).map(|i| (!(w[0][i] ^ w[1][i])).count_ones()).sum::<u32>()).sum();
        let mean = f64::from(same) / (N - 1) as f64;
        assert!((63.0..65.0).contains(&mean), "consecutive ids share {mean:.2} bits on average");
    }
}

impl From<&str> for Sid {
    /// An id received from elsewhere (another node).
    fn from(id: &str) -> Self {
        Sid(id.into())
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.0)
    }
}

impl std::borrow::Borrow<str> for Sid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// What the client sent when it connected.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// HTTP request headers (shared by every namespace socket of a connection).
    pub headers: Arc<HeaderMap>,
    /// Query parameters in request order (shared by every namespace socket
    /// of a connection).
    pub query: Arc<[(String, String)]>,
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// The request path.
    pub path: String,
    /// The namespace the client asked for.
    pub namespace: String,
    /// The Socket.IO CONNECT auth payload (`null` for the JSON protocol).
    pub auth: Value,
}

impl Handshake {
    /// First query parameter named `key`.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The credential: `Authorization: Bearer …`, else the Socket.IO auth
    /// payload's `token`, else `?token=`.
    pub fn token(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .or_else(|| self.auth.get("token").and_then(Value::as_str))
            .or_else(|| self.query_param("token"))
            .filter(|t| !t.is_empty())
    }
}

/// Why a socket went away, as the disconnect handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client closed the connection.
    TransportClose,
    /// The client left the namespace (Socket.IO DISCONNECT).
    ClientNamespaceDisconnect,
    /// The client sent a packet that could not be parsed.
    ParseError,
    /// The connection failed (reset, protocol violation).
    TransportError,
    /// The client did not answer a heartbeat in time.
    PingTimeout,
    /// The application disconnected the socket.
    ServerDisconnect,
    /// The server is shutting down.
    ServerShutdown,
    /// The client did not read fast enough; its queue overflowed.
    SlowConsumer,
    /// The client kept exceeding its rate limit.
    RateLimited,
    /// The client sent a message over the size limit.
    MessageTooBig,
    /// The application closed the whole connection (Socket.IO:
    /// `disconnect(true)`); its sockets see [`Self::ServerDisconnect`].
    ForcedServerClose,
}

impl DisconnectReason {
    /// The reason string (Socket.IO's wording where it has one).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ParseError => "parse error",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ServerDisconnect => "server namespace disconnect",
            Self::ServerShutdown => "server shutting down",
            Self::SlowConsumer => "slow consumer",
            Self::RateLimited => "rate limit exceeded",
            Self::MessageTooBig => "message too big",
            Self::ForcedServerClose => "forced server close",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) struct SocketInner {
    sid: Sid,
    pub(crate) ns: Arc<Namespace>,
    handshake: Arc<Handshake>,
    /// Set at most once: by the auth hook, or by a connect hook.
    user_id: OnceLock<String>,
    data: Mutex<Value>,
    /// Presence metadata (`None`: the default, status online).
    presence: Mutex<Option<Value>>,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    handlers: RwLock<HashMap<String, EventHandler>>,
    disconnect_handlers: Mutex<Vec<DisconnectHandler>>,
    any_handler: RwLock<Option<AnyHandler>>,
    middlewares: RwLock<Vec<Middleware>>,
    acks: Mutex<HashMap<u64, oneshot::Sender<Args>>>,
    closed: CancellationToken,
    close_reason: Mutex<Option<DisconnectReason>>,
    pub(crate) counters: Arc<Counters>,
    on_close: Option<Box<dyn Fn() + Send + Sync>>,
    /// While connect hooks run: frames sent to the socket wait here (with
    /// their volatile flag) until the connect answer has gone out.
    holding: AtomicBool,
    held: Mutex<Option<Vec<Held>>>,
    extensions: Mutex<http::Extensions>,
    /// With connection state recovery: the private session id the client
    /// reconnects with (never shown to other clients).
    pid: Option<String>,
    /// This socket took up a disconnected one's session.
    recovered: bool,
    /// The first recoverable packet queued to this socket: where its
    /// replay starts when the client reports no offset.
    first_offset: OnceLock<Offset>,
    /// The namespace's newest offset when this socket was created.
    connect_mark: Offset,
}

/// Frames sent while connect hooks run, whether they were volatile, and
/// their recovery offset.
type Held = (Vec<Frame>, bool, Option<Offset>);

/// A connected client in one namespace. Cheap to clone; all clones are the
/// same socket.
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").field("id", &self.0.sid).field("user_id", &self.0.user_id).finish()
    }
}

pub(crate) struct NewSocket {
    pub ns: Arc<Namespace>,
    pub handshake: Arc<Handshake>,
    pub user_id: Option<String>,
    pub data: Value,
    pub outbox: Arc<Outbox>,
    pub protocol: Protocol,
    pub counters: Arc<Counters>,
    /// Called once when the socket is asked to close, for sessions that
    /// multiplex sockets and do not wait on each one.
    pub on_close: Option<Box<dyn Fn() + Send + Sync>>,
    /// The session this socket takes up (its id and private id), if any.
    pub resumed: Option<(Sid, String)>,
    /// Whether the namespace keeps sessions (a new socket gets a private id).
    pub recovery: bool,
}

impl Socket {
    pub(crate) fn new(n: NewSocket) -> Self {
        let recovered = n.resumed.is_some();
        let (sid, pid) = match n.resumed {
            Some((sid, pid)) => (sid, Some(pid)),
            None => (Sid::generate(), n.recovery.then(crate::recovery::new_pid)),
        };
        let connect_mark = n.ns.recovery_mark().unwrap_or_default();
        Socket(Arc::new(SocketInner {
            connect_mark,
            sid,
            ns: n.ns,
            handshake: n.handshake,
            user_id: n.user_id.map(OnceLock::from).unwrap_or_default(),
            data: Mutex::new(n.data),
            presence: Mutex::new(None),
            outbox: n.outbox,
            protocol: n.protocol,
            handlers: RwLock::default(),
            disconnect_handlers: Mutex::default(),
            any_handler: RwLock::default(),
            middlewares: RwLock::default(),
            acks: Mutex::default(),
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
            counters: n.counters,
            on_close: n.on_close,
            holding: AtomicBool::new(false),
            held: Mutex::new(None),
            extensions: Mutex::new(http::Extensions::new()),
            pid,
            recovered,
            first_offset: OnceLock::new(),
        }))
    }

    /// Whether this socket is a disconnected one's session taken up again
    /// by its reconnecting client (socket.io's `socket.recovered`): same
    /// id, rooms and data, and the missed packets were replayed to it.
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// Whether this socket skipped the auth and connect hooks: it is
    /// recovered and the server's recovery config skips them
    /// (socket.io's `skipMiddlewares`).
    pub fn skips_middlewares(&self) -> bool {
        self.0.recovered && self.0.ns.skips_middlewares()
    }

    pub(crate) fn pid(&self) -> Option<&str> {
        self.0.pid.as_deref()
    }

    pub(crate) fn first_offset(&self) -> Option<Offset> {
        self.0.first_offset.get().copied()
    }

    pub(crate) fn connect_mark(&self) -> Offset {
        self.0.connect_mark
    }

    /// The unguessable socket id (also the name of the socket's own room).
    pub fn id(&self) -> &Sid {
        &self.0.sid
    }

    /// The authenticated user, if the auth or a connect hook named one.
    pub fn user_id(&self) -> Option<&str> {
        self.0.user_id.get().map(String::as_str)
    }

    /// Name the user this socket belongs to, from a connect hook (Python's
    /// `connect` handler, socket.io's `use`), before it joins rooms: it
    /// enters the room `user:<id>`, counts for `is_online`, and is one
    /// member with the user's other sockets in presence.
    pub fn set_user_id(&self, user_id: impl Into<String>) -> Result<()> {
        let user_id = user_id.into();
        if user_id.is_empty() {
            return Err(Error::new(ErrorKind::InvalidArgument, "user id must not be empty"));
        }
        if !self.0.holding.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::InvalidArgument, "a user id can only be set while connect hooks run"));
        }
        if self.0.user_id.set(user_id.clone()).is_err() {
            return Err(Error::new(ErrorKind::InvalidArgument, "the socket already has a user id"));
        }
        self.0.ns.set_user(self, &user_id)
    }

    /// The presence metadata set on this socket, if any.
    pub(crate) fn presence_set(&self) -> Option<Value> {
        self.0.presence.lock().clone()
    }

    /// Presence metadata: `{"status": "online" | "away" | "busy", ...}`.
    pub fn presence_meta(&self) -> Value {
        self.0.presence.lock().clone().unwrap_or_else(crate::presence::default_meta)
    }

    /// Replace this socket's presence metadata (a JSON object; `status`
    /// online, away or busy, online when absent). Its member in every room
    /// with presence it is in takes it, and those rooms get `presence:update`.
    pub fn set_presence(&self, meta: Value) -> Result<()> {
        let meta = crate::presence::validate_meta(meta)?;
        *self.0.presence.lock() = Some(meta.clone());
        self.0.ns.presence_changed(self, &meta);
        Ok(())
    }

    /// The connection request.
    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        self.0.ns.name()
    }

    /// Application data attached to the socket (initially what the auth hook returned).
    pub fn data(&self) -> Value {
        self.0.data.lock().clone()
    }

    /// Replace the application data.
    pub fn set_data(&self, data: Value) {
        *self.0.data.lock() = data;
    }

    /// A value of type `T` the application attached to this socket (one per
    /// type; bindings keep their language's session objects here). Gone with
    /// the socket.
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.extensions.lock().get::<T>().cloned()
    }

    /// Attach `value`, replacing the previous value of its type.
    pub fn set_extension<T: Clone + Send + Sync + 'static>(&self, value: T) {
        self.0.extensions.lock().insert(value);
    }

    /// Handle `event` from this socket; overrides a namespace handler of the same name.
    /// The handler's return value is the ack reply.
    pub fn on<F, Fut, R>(&self, event: impl Into<String>, f: F)
    where
        F: Fn(Socket, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        self.0.handlers.write().insert(event.into(), handler::event_handler(f));
    }

    /// Called once when this socket disconnects, with the reason.
    pub fn on_disconnect<F, Fut>(&self, f: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.0.disconnect_handlers.lock().push(handler::disconnect_handler(f));
    }

    /// Handle every event of this socket that has no specific handler
    /// (before the namespace's handlers are consulted).
    pub fn on_any<F, Fut, R>(&self, f: F)
    where
        F: Fn(Socket, String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoReply,
    {
        *self.0.any_handler.write() = Some(handler::any_handler(f));
    }

    /// Run `f` on every incoming event before its handler, in registration
    /// order (socket.io's `socket.use`): it may rewrite the arguments, or
    /// refuse the event with a message, which the handler then never sees.
    pub fn use_middleware<F, Fut, E>(&self, f: F)
    where
        F: Fn(Socket, String, Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Args, E>> + Send + 'static,
        E: fmt::Display,
    {
        self.0.middlewares.write().push(handler::middleware(f));
    }

    pub(crate) fn handler(&self, event: &str) -> Option<EventHandler> {
        self.0.handlers.read().get(event).cloned()
    }

    pub(crate) fn any_handler(&self) -> Option<AnyHandler> {
        self.0.any_handler.read().clone()
    }

    pub(crate) fn middlewares(&self) -> Vec<Middleware> {
        self.0.middlewares.read().clone()
    }

    pub(crate) fn take_disconnect_handlers(&self) -> Vec<DisconnectHandler> {
        std::mem::take(&mut *self.0.disconnect_handlers.lock())
    }

    /// Send `event` with one JSON argument to this socket.
    pub fn emit(&self, event: impl Into<String>, data: impl Serialize) -> Result<()> {
        self.emit_args(event, Args::one(to_value(data)?))
    }

    /// Send `event` with any arguments (several, binary) to this socket.
    pub fn emit_args(&self, event: impl Into<String>, args: impl Into<Args>) -> Result<()> {
        self.send(Packet::Event { event: event.into(), args: args.into(), id: None }, false)
    }

    /// Send `event` with one JSON argument and wait for the client's ack, at most `timeout`.
    pub async fn emit_with_ack(
        &self,
        event: impl Into<String>,
        data: impl Serialize,
        timeout: Duration,
    ) -> Result<Args> {
        self.emit_args_with_ack(event, Args::one(to_value(data)?), timeout).await
    }

    /// Send `event` with any arguments and wait for the client's ack, at most `timeout`.
    pub async fn emit_args_with_ack(
        &self,
        event: impl Into<String>,
        args: impl Into<Args>,
        timeout: Duration,
    ) -> Result<Args> {
        let id = self.0.ns.next_ack_id();
        let rx = self.expect_ack(id);
        if let Err(e) = self.send(Packet::Event { event: event.into(), args: args.into(), id: Some(id) }, false) {
            self.forget_ack(id);
            return Err(e);
        }
        self.wait_ack(id, rx, timeout).await
    }

    /// Register interest in the ack `id` before the event goes out.
    pub(crate) fn expect_ack(&self, id: u64) -> oneshot::Receiver<Args> {
        let (tx, rx) = oneshot::channel();
        self.0.acks.lock().insert(id, tx);
        rx
    }

    pub(crate) fn forget_ack(&self, id: u64) {
        self.0.acks.lock().remove(&id);
    }

    pub(crate) async fn wait_ack(&self, id: u64, rx: oneshot::Receiver<Args>, timeout: Duration) -> Result<Args> {
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(Error::closed()),
            Err(_) => {
                self.forget_ack(id);
                Counters::add(&self.0.counters.ack_timeouts, 1);
                Err(Error::timeout("ack"))
            }
        }
    }

    /// Deliver the client's reply to `emit_with_ack`. Returns false for an
    /// unknown or late id.
    pub(crate) fn resolve_ack(&self, id: u64, args: Args) -> bool {
        match self.0.acks.lock().remove(&id) {
            Some(tx) => {
                let _ = tx.send(args);
                true
            }
            None => false,
        }
    }

    /// Whether `id` was ever handed out in this namespace.
    pub(crate) fn ack_issued(&self, id: u64) -> bool {
        self.0.ns.ack_issued(id)
    }

    /// Add this socket to `room` (no join hook: the application decides).
    pub fn join(&self, room: impl Into<String>) -> Result<()> {
        self.0.ns.join(self, room.into())
    }

    /// Remove this socket from `room`.
    pub fn leave(&self, room: &str) -> Result<()> {
        self.0.ns.leave(self, room)
    }

    /// The rooms this socket is in, its own room included.
    pub fn rooms(&self) -> Vec<String> {
        self.0.ns.rooms_of(&self.0.sid)
    }

    /// Broadcast to `room`, excluding this socket.
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// Broadcast to the whole namespace, excluding this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.0.ns.clone()).except(self.0.sid.as_str())
    }

    /// Disconnect from the server side (Socket.IO: leave this namespace only).
    pub fn disconnect(&self) {
        self.close(DisconnectReason::ServerDisconnect);
    }

    /// Disconnect every namespace of this socket's connection, then close
    /// the connection (socket.io's `disconnect(true)`). A JSON-protocol
    /// socket is its connection: the same as [`Socket::disconnect`].
    pub fn disconnect_connection(&self) {
        self.close(match self.0.protocol {
            Protocol::Json => DisconnectReason::ServerDisconnect,
            Protocol::SocketIo => DisconnectReason::ForcedServerClose,
        });
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        !self.0.closed.is_cancelled()
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.0.protocol
    }

    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.0.outbox
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.0.counters
    }

    /// Resolves when the socket is asked to close.
    pub(crate) fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.0.closed.cancelled()
    }

    pub(crate) fn close_reason(&self) -> Option<DisconnectReason> {
        *self.0.close_reason.lock()
    }

    /// Ask the owning session to end this socket: record why (the first
    /// reason wins) and wake the session, which closes what the protocol needs.
    /// Returns whether this call ended it (false if it was ending already).
    pub(crate) fn close(&self, reason: DisconnectReason) -> bool {
        {
            let mut r = self.0.close_reason.lock();
            if r.is_some() {
                return false;
            }
            *r = Some(reason);
        }
        self.0.closed.cancel();
        if let Some(hook) = &self.0.on_close {
            hook();
        }
        true
    }

    /// Bytes queued for this socket's connection and not yet written to it
    /// (like a WebSocket's `bufferedAmount`): what a client that reads
    /// slowly has left to take. When it reaches the outbound queue's bound,
    /// the overflow policy applies ([`crate::Overflow`]). A connection's
    /// sockets (one per namespace) share it. 0 once the socket is gone.
    pub fn buffered_amount(&self) -> usize {
        if self.connected() { self.0.outbox.buffered() } else { 0 }
    }

    /// Wait until nothing is buffered for this socket's connection (at once
    /// if nothing is), or the socket is gone: the drain notification of a
    /// sender that paces itself by [`Socket::buffered_amount`].
    pub async fn drained(&self) {
        tokio::select! {
            () = self.0.outbox.drained() => {}
            () = self.0.closed.cancelled() => {}
        }
    }

    /// Encode `packet` for this socket's protocol and queue it; with
    /// connection state recovery, a recoverable packet takes its place in
    /// the namespace's order (as a broadcast to this socket's room).
    pub(crate) fn send(&self, packet: Packet, volatile: bool) -> Result<()> {
        if !volatile && packet.recoverable() && self.0.ns.recovers() {
            if !self.connected() {
                return Err(Error::closed());
            }
            BroadcastOperator::new(self.0.ns.clone()).to(self.0.sid.as_str()).send(packet);
            return if self.connected() { Ok(()) } else { Err(Error::closed()) };
        }
        self.push_frames(Encoded::new(packet, self.namespace()).frames(self.0.protocol), volatile)
    }

    /// Queue a frame for the writer. Overflow closes a slow consumer.
    pub(crate) fn push(&self, frame: Frame, volatile: bool) -> Result<()> {
        self.push_frames(std::slice::from_ref(&frame), volatile)
    }

    /// Send frames that belong together to this socket alone: written at
    /// once when its WebSocket is idle, else queued. Overflow closes a slow
    /// consumer.
    pub(crate) fn push_frames(&self, frames: &[Frame], volatile: bool) -> Result<()> {
        self.offer(frames, volatile, true, None)
    }

    /// Queue frames of a broadcast for this socket's writer, which batches
    /// what a burst of broadcasts queued into one write.
    pub(crate) fn queue_frames(&self, frames: &[Frame], volatile: bool) -> Result<()> {
        self.offer(frames, volatile, false, None)
    }

    /// Queue the frames of a recoverable packet at `offset`.
    pub(crate) fn queue_recorded(&self, frames: &[Frame], offset: Offset) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        if self.0.first_offset.set(offset).is_ok() {
            self.0.ns.session_changed(self);
        }
        self.offer(frames, false, false, Some(offset))
    }

    fn offer(&self, frames: &[Frame], volatile: bool, now: bool, offset: Option<Offset>) -> Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        if self.0.holding.load(Ordering::Acquire)
            && let Some(held) = self.0.held.lock().as_mut()
        {
            held.push((frames.to_vec(), volatile, offset));
            return Ok(());
        }
        let pushed =
            if now { self.0.outbox.push_now(frames, volatile) } else { self.0.outbox.push_all(frames, volatile) };
        match pushed {
            Pushed::Queued => Ok(()),
            Pushed::Dropped => {
                Counters::add(&self.0.counters.dropped, 1);
                Ok(())
            }
            Pushed::Overflow => {
                if self.close(DisconnectReason::SlowConsumer) {
                    Counters::add(&self.0.counters.slow_consumer_closes, 1);
                    tracing::debug!(sid = %self.0.sid, "outbound queue full, closing slow consumer");
                }
                Err(Error::new(ErrorKind::QueueFull, "outbound queue full; socket closed"))
            }
            Pushed::Closed => Err(Error::closed()),
        }
    }

    /// Hold what is sent to this socket until [`Socket::unhold`]: its connect
    /// hooks run before the client knows it is connected.
    pub(crate) fn hold(&self) {
        self.0.held.lock().get_or_insert_with(Vec::new);
        self.0.holding.store(true, Ordering::Release);
    }

    /// Send `first` (the connect answer), then `missed` (a recovered
    /// socket's replay, in order), then what was held that is newer than
    /// the replay, and stop holding.
    pub(crate) fn unhold(&self, first: &[Frame], missed: Vec<(Offset, Vec<Frame>)>) -> Result<()> {
        // Under the lock: a frame offered meanwhile waits, then goes after these.
        let mut held = self.0.held.lock();
        let frames = held.take().unwrap_or_default();
        self.0.holding.store(false, Ordering::Release);
        self.push_frames(first, false)?;
        let replayed = missed.last().map(|(o, _)| *o);
        for (offset, group) in missed {
            self.queue_recorded(&group, offset)?;
        }
        frames.into_iter().try_for_each(|(group, volatile, offset)| match offset {
            Some(o) if replayed.is_some_and(|r| o <= r) => Ok(()), // already in the replay
            Some(o) => self.queue_recorded(&group, o),
            None => self.queue_frames(&group, volatile),
        })
    }

    /// Fail pending acks (their senders are dropped) and drop handlers, which
    /// may hold clones of this socket, once it is gone.
    pub(crate) fn release(&self) {
        self.0.acks.lock().clear();
        self.0.handlers.write().clear();
        self.0.any_handler.write().take();
        self.0.middlewares.write().clear();
    }
}

pub(crate) fn to_value(data: impl Serialize) -> Result<Value> {
    serde_json::to_value(data).map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("data is not JSON: {e}")))
}
