//! State shared by the [`Client`](super::Client) handles and the connection
//! task. Everything mutable sits behind one short-lived lock, never held
//! across an `.await`, so that "queue this frame" and "the connection just
//! changed" cannot interleave and reorder frames.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::future::BoxFuture;
use http::{HeaderValue, Uri};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::retry::{Retry, RetryQueue};
use super::{ClientEvent, ClientOptions, ClientState};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::handler::Reply;
use crate::protocol::native::ClientMessage;

/// Capacity of the [`ClientEvent`] broadcast channel; a receiver further
/// behind than this misses events (`RecvError::Lagged`).
const EVENT_CAPACITY: usize = 1024;

pub(super) type Handler = Arc<dyn Fn(Value) -> BoxFuture<'static, Reply> + Send + Sync>;

/// Answers one caller waiting for the server.
pub(super) type Waiter<T> = oneshot::Sender<Result<T>>;

pub(super) struct Shared {
    pub uri: Uri,
    /// `Authorization: Bearer <token>`, when a token was given.
    pub auth: Option<HeaderValue>,
    pub opts: ClientOptions,
    pub core: Mutex<Core>,
    /// Wakes the connection task when frames were queued.
    pub wake: Notify,
    pub state: watch::Sender<ClientState>,
    pub events: broadcast::Sender<ClientEvent>,
    pub handlers: RwLock<HashMap<String, Handler>>,
    /// Ids of client events and pings; never reused, even across connections.
    pub next_id: AtomicU64,
    /// Cancelled by `close()` or when the last `Client` handle is dropped.
    pub shutdown: CancellationToken,
}

impl Shared {
    pub fn new(uri: Uri, auth: Option<HeaderValue>, opts: ClientOptions) -> Self {
        let retried = RetryQueue::new(Retry { retries: opts.retries, ack_timeout: opts.ack_timeout });
        Self {
            uri,
            auth,
            opts,
            core: Mutex::new(Core { retried, ..Core::default() }),
            wake: Notify::new(),
            state: watch::Sender::new(ClientState::Connecting),
            events: broadcast::Sender::new(EVENT_CAPACITY),
            handlers: RwLock::default(),
            next_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        }
    }

    /// Publish `event`; having no subscriber is not an error.
    pub fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event);
    }

    /// Change the state, and tell event subscribers only when it really changed.
    pub fn set_state(&self, state: ClientState) {
        if self.state.send_if_modified(|s| std::mem::replace(s, state) != state) {
            tracing::debug!(?state, "client state");
            self.emit(ClientEvent::State(state));
        }
    }

    /// Queue a frame that is only meaningful on connection `epoch` (an ack or
    /// a ping); dropped if that connection is gone.
    pub fn push_live(&self, epoch: u64, msg: ClientMessage) {
        {
            let mut core = self.core.lock();
            if core.epoch != epoch || core.session.is_none() {
                return;
            }
            core.live.push(msg);
        }
        self.wake.notify_one();
    }

    /// The end: report why (unless `close()` was called), fail every waiter, go Disconnected.
    pub fn finish(&self, why: Option<(&'static str, Error)>) {
        if let Some((code, e)) = why {
            tracing::debug!(code, error = %e, "client stopped");
            self.emit(ClientEvent::Error { code: code.to_owned(), message: e.message().to_owned(), room: None });
        }
        self.core.lock().close_all();
        self.set_state(ClientState::Disconnected);
    }
}

/// The current connection, as announced by the server's `connected` frame.
pub(super) struct Session {
    pub client_id: String,
    pub user_id: Option<String>,
    /// The server took up the previous connection's session.
    pub recovered: bool,
}

/// Connection state recovery: the token the server gave and the last
/// offset received, sent back when reconnecting.
#[derive(Default)]
pub(super) struct Resume {
    pub token: Option<String>,
    pub offset: Option<String>,
}

struct PendingAck {
    tx: Waiter<Value>,
    /// Whether its frame went out on the current connection (and so dies with it).
    written: bool,
}

#[derive(Default)]
pub(super) struct Core {
    /// `Some` while a connection is up.
    pub session: Option<Session>,
    /// Incremented for every new connection.
    pub epoch: u64,
    /// Set for good once the client is Disconnected.
    closed: bool,
    /// What `rooms()` reports: joined or being joined, in join order.
    pub rooms: Vec<String>,
    /// Rooms whose `join` was written (and no `leave` since): rejoined first
    /// after a reconnection, before the queue is replayed.
    active: Vec<String>,
    /// Frames not yet written; replayed in order on the next connection.
    queue: VecDeque<ClientMessage>,
    /// Frames for the current connection only (acks to the server, pings).
    live: Vec<ClientMessage>,
    joins: HashMap<String, Vec<Waiter<()>>>,
    leaves: HashMap<String, Vec<Waiter<()>>>,
    acks: HashMap<u64, PendingAck>,
    pings: HashMap<u64, Waiter<()>>,
    /// At-least-once events (with `retries`; else empty), after `queue`.
    pub retried: RetryQueue<ClientMessage, Value>,
    pub resume: Resume,
}

impl Core {
    /// Append a message or event to the replay queue, bounded by `limit`.
    pub fn enqueue(&mut self, msg: ClientMessage, limit: usize) -> Result<()> {
        if self.closed {
            return Err(Error::closed());
        }
        if self.queue.len() >= limit {
            return Err(Error::new(ErrorKind::QueueFull, format!("{limit} frames already wait to be sent")));
        }
        self.queue.push_back(msg);
        Ok(())
    }

    pub fn join(&mut self, room: &str, limit: usize) -> Result<oneshot::Receiver<Result<()>>> {
        self.enqueue(ClientMessage::Join { room: room.to_owned() }, limit)?;
        if !self.rooms.iter().any(|r| r == room) {
            self.rooms.push(room.to_owned());
        }
        let (tx, rx) = oneshot::channel();
        self.joins.entry(room.to_owned()).or_default().push(tx);
        Ok(rx)
    }

    /// `None` when offline: a leave cannot be refused, and it is replayed in
    /// order, so there is nothing to wait for.
    pub fn leave(&mut self, room: &str, limit: usize) -> Result<Option<oneshot::Receiver<Result<()>>>> {
        self.enqueue(ClientMessage::Leave { room: room.to_owned() }, limit)?;
        self.rooms.retain(|r| r != room);
        if self.session.is_none() {
            return Ok(None);
        }
        let (tx, rx) = oneshot::channel();
        self.leaves.entry(room.to_owned()).or_default().push(tx);
        Ok(Some(rx))
    }

    /// Append an at-least-once event, bounded by `limit` with the rest.
    pub fn enqueue_retried(
        &mut self,
        id: u64,
        msg: ClientMessage,
        tx: Option<Waiter<Value>>,
        limit: usize,
    ) -> Result<()> {
        if self.closed {
            return Err(Error::closed());
        }
        if self.queue.len() + self.retried.len() >= limit {
            return Err(Error::new(ErrorKind::QueueFull, format!("{limit} frames already wait to be sent")));
        }
        self.retried.push(id, vec![msg], tx);
        Ok(())
    }

    pub fn emit_with_ack(
        &mut self,
        id: u64,
        event: String,
        data: Value,
        limit: usize,
    ) -> Result<oneshot::Receiver<Result<Value>>> {
        self.enqueue(ClientMessage::Event { event, data, id: Some(id) }, limit)?;
        let (tx, rx) = oneshot::channel();
        self.acks.insert(id, PendingAck { tx, written: false });
        Ok(rx)
    }

    pub fn ping(&mut self, id: u64) -> Result<oneshot::Receiver<Result<()>>> {
        if self.session.is_none() {
            return Err(Error::new(ErrorKind::Closed, "not connected"));
        }
        self.live.push(ClientMessage::Ping { data: Some(Value::from(id)) });
        let (tx, rx) = oneshot::channel();
        self.pings.insert(id, tx);
        Ok(rx)
    }

    /// A timed-out event is withdrawn if it has not been written yet, so the
    /// server never runs what the caller was told failed.
    pub fn cancel_ack(&mut self, id: u64) {
        if self.acks.remove(&id).is_some() {
            self.queue.retain(|m| !matches!(m, ClientMessage::Event { id: Some(i), .. } if *i == id));
        }
    }

    pub fn cancel_ping(&mut self, id: u64) {
        self.pings.remove(&id);
    }

    /// Forget the waiters of `room` that gave up (timed out).
    pub fn prune(&mut self, room: &str) {
        for map in [&mut self.joins, &mut self.leaves] {
            if let Some(ws) = map.get_mut(room) {
                ws.retain(|w| !w.is_closed());
                if ws.is_empty() {
                    map.remove(room);
                }
            }
        }
    }

    /// The rooms to rejoin on a new connection.
    pub fn active_rooms(&self) -> Vec<String> {
        self.active.clone()
    }

    /// Everything waiting to be written; updates what is considered sent.
    pub fn take_batch(&mut self) -> Vec<ClientMessage> {
        let mut batch = std::mem::take(&mut self.live);
        batch.reserve(self.queue.len());
        while let Some(msg) = self.queue.pop_front() {
            match &msg {
                ClientMessage::Join { room } if !self.active.contains(room) => self.active.push(room.clone()),
                ClientMessage::Leave { room } => self.active.retain(|r| r != room),
                ClientMessage::Event { id: Some(id), .. } => {
                    if let Some(a) = self.acks.get_mut(id) {
                        a.written = true;
                    }
                }
                _ => {}
            }
            batch.push(msg);
        }
        if let Some(frames) = self.retried.due(self.epoch) {
            batch.extend(frames);
        }
        batch
    }

    /// The connection dropped. Acks and pings whose frames went out on it can
    /// never be answered: their senders are dropped, which the callers see as
    /// `Closed`. Frames still queued stay queued for the next connection.
    pub fn lost(&mut self) {
        self.session = None;
        self.live.clear();
        self.pings.clear();
        self.acks.retain(|_, a| !a.written);
        // A written leave took effect or died with the connection: either way
        // the next connection is not in that room.
        let queued: HashSet<&str> = self
            .queue
            .iter()
            .filter_map(|m| match m {
                ClientMessage::Leave { room } => Some(room.as_str()),
                _ => None,
            })
            .collect();
        self.leaves.retain(|room, ws| {
            if queued.contains(room.as_str()) {
                return true;
            }
            for w in ws.drain(..) {
                let _ = w.send(Ok(()));
            }
            false
        });
    }

    /// Stop for good: every waiter fails with `Closed` (its sender is dropped).
    fn close_all(&mut self) {
        let epoch = self.epoch;
        *self = Core { closed: true, epoch, ..Core::default() };
    }

    pub fn joined(&mut self, room: &str) {
        for w in self.joins.remove(room).unwrap_or_default() {
            let _ = w.send(Ok(()));
        }
    }

    pub fn left(&mut self, room: &str) {
        for w in self.leaves.remove(room).unwrap_or_default() {
            let _ = w.send(Ok(()));
        }
    }

    /// The server refused `room`: it is forgotten. Returns whether a caller was told.
    pub fn join_refused(&mut self, room: &str, message: &str) -> bool {
        self.rooms.retain(|r| r != room);
        self.active.retain(|r| r != room);
        let mut told = false;
        for w in self.joins.remove(room).unwrap_or_default() {
            told |= w.send(Err(Error::new(ErrorKind::Refused, message))).is_ok();
        }
        told
    }

    /// A `join`/`leave` of `room` was malformed (e.g. leaving a reserved room).
    pub fn room_invalid(&mut self, room: &str, message: &str) -> bool {
        let mut told = false;
        for map in [&mut self.joins, &mut self.leaves] {
            for w in map.remove(room).unwrap_or_default() {
                told |= w.send(Err(Error::new(ErrorKind::InvalidArgument, message))).is_ok();
            }
        }
        told
    }

    /// Answer `emit_with_ack` call `id` (or the at-least-once event that is
    /// out); returns whether it was still waiting.
    pub fn settle_ack(&mut self, id: u64, result: Result<Value>) -> bool {
        match self.acks.remove(&id) {
            Some(a) => a.tx.send(result).is_ok(),
            None => self.retried.settle(id, result),
        }
    }

    pub fn pong(&mut self, id: u64) {
        if let Some(w) = self.pings.remove(&id) {
            let _ = w.send(Ok(()));
        }
    }
}
