//! State shared by the [`SocketIoClient`](super::SocketIoClient) handles, the
//! connection task and handler tasks. Everything mutable sits behind one
//! short-lived lock, never held across an `.await`, so that "buffer this
//! emit" and "the connection just changed" cannot interleave and reorder
//! packets.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use futures_util::future::BoxFuture;
use http::Uri;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, broadcast, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{ConnectError, SocketIoEvent, SocketIoOptions};
use crate::client::ClientState;
use crate::client::retry::{Retry, RetryQueue};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::args::{Args, Data};
use crate::hub::handler::Reply;
use serde_json::Value;

/// Capacity of the event broadcast channel; a receiver further behind than
/// this misses events (`RecvError::Lagged`).
const EVENT_CAPACITY: usize = 1024;

pub(super) type Handler = Arc<dyn Fn(Args) -> BoxFuture<'static, Reply> + Send + Sync>;
pub(super) type AnyHandler = Arc<dyn Fn(String, Args) -> BoxFuture<'static, Reply> + Send + Sync>;

/// Where to connect: the Engine.IO WebSocket URI and the namespace.
pub(super) struct Endpoint {
    pub uri: Uri,
    pub namespace: String,
}

pub(super) struct Shared {
    pub endpoint: Endpoint,
    pub opts: SocketIoOptions,
    pub core: Mutex<Core>,
    /// Wakes the connection task when packets were queued.
    pub wake: Notify,
    pub state: watch::Sender<ClientState>,
    pub events: broadcast::Sender<SocketIoEvent>,
    pub handlers: RwLock<HashMap<String, Handler>>,
    pub any: RwLock<Option<AnyHandler>>,
    /// Ack ids of our emits; never reused, even across connections, so a
    /// late ack from an old connection cannot answer a new emit.
    pub next_id: AtomicU64,
}

impl Shared {
    pub fn new(endpoint: Endpoint, opts: SocketIoOptions) -> Self {
        let retried = RetryQueue::new(Retry { retries: opts.retries, ack_timeout: opts.ack_timeout });
        Self {
            endpoint,
            opts,
            core: Mutex::new(Core { retried, ..Core::default() }),
            wake: Notify::new(),
            state: watch::Sender::new(ClientState::Disconnected),
            events: broadcast::Sender::new(EVENT_CAPACITY),
            handlers: RwLock::default(),
            any: RwLock::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Publish `event`; having no subscriber is not an error.
    pub fn emit(&self, event: SocketIoEvent) {
        let _ = self.events.send(event);
    }

    /// Change the state and log real changes.
    pub fn set_state(&self, state: ClientState) {
        if self.state.send_if_modified(|s| std::mem::replace(s, state) != state) {
            tracing::debug!(?state, ns = %self.endpoint.namespace, "socket.io client state");
        }
    }

    /// Begin a run (go Connecting) and return its stop signal, or `None`
    /// when one is already under way.
    pub fn start(&self) -> Option<CancellationToken> {
        let mut core = self.core.lock();
        if core.run.is_some() {
            return None;
        }
        let token = CancellationToken::new();
        core.run = Some(token.clone());
        // Under the lock, so that a run ending concurrently cannot overwrite it.
        self.set_state(ClientState::Connecting);
        Some(token)
    }

    /// Ask the current run, if any, to end (`close()` or the last handle dropped).
    pub fn stop(&self) {
        if let Some(token) = &self.core.lock().run {
            token.cancel();
        }
    }

    /// The end of a run: every waiter fails, the buffer is dropped, the
    /// client goes Disconnected, ready for another `open()`, and then
    /// subscribers hear `last`. All under the lock, so that a new run cannot
    /// begin in between and see its events interleaved with these.
    pub fn finish(&self, last: Option<SocketIoEvent>) {
        let mut core = self.core.lock();
        core.stop();
        self.set_state(ClientState::Disconnected);
        if let Some(event) = last {
            self.emit(event);
        }
    }

    /// Report a failed connection attempt to event subscribers.
    pub fn connect_failed(&self, e: &Error) {
        let (message, data) = match ConnectError::of(e) {
            Some(ce) => (ce.message.clone(), ce.data.clone()),
            None => (e.message().to_owned(), None),
        };
        self.emit(SocketIoEvent::ConnectError { message, data });
    }

    /// Queue frames that only mean something on connection `epoch` (an ack
    /// to the server); dropped if that connection is gone.
    pub fn push_live(&self, epoch: u64, frames: Vec<Message>) {
        {
            let mut core = self.core.lock();
            if core.epoch != epoch || core.sid.is_none() {
                return;
            }
            core.live.extend(frames);
        }
        self.wake.notify_one();
    }
}

/// One emit's frames: the text packet and its binary attachments.
struct Outgoing {
    frames: Vec<Message>,
    ack: Option<u64>,
}

struct PendingAck {
    tx: oneshot::Sender<Args>,
    /// Whether its packet went out on the current connection (and so dies with it).
    written: bool,
}

#[derive(Default)]
pub(super) struct Core {
    /// The stop signal of the run under way; `None` while Disconnected.
    run: Option<CancellationToken>,
    /// The socket id while connected.
    pub sid: Option<String>,
    /// Incremented for every new connection.
    epoch: u64,
    /// Emits not yet written, in order.
    queue: VecDeque<Outgoing>,
    /// Frames for the current connection only (acks to the server).
    live: Vec<Message>,
    acks: HashMap<u64, PendingAck>,
    /// At-least-once emits (with `retries`; else empty), after `queue`.
    pub retried: RetryQueue<Message, Args>,
    /// Connection state recovery: the private session id the server gave,
    /// the last offset received, and whether the current connection took
    /// the previous one's session up.
    pub pid: Option<String>,
    pub offset: Option<String>,
    pub recovered: bool,
}

impl Core {
    /// Append an emit, bounded by `limit`; refused while no run is under way.
    pub fn enqueue(&mut self, frames: Vec<Message>, limit: usize) -> Result<()> {
        if self.run.is_none() {
            return Err(Error::new(ErrorKind::Closed, "the client is disconnected (call open() to connect)"));
        }
        if self.queue.len() >= limit {
            return Err(Error::new(ErrorKind::QueueFull, format!("{limit} emits already wait to be sent")));
        }
        self.queue.push_back(Outgoing { frames, ack: None });
        Ok(())
    }

    /// Append an at-least-once emit, bounded by `limit` with the rest.
    pub fn enqueue_retried(
        &mut self,
        id: u64,
        frames: Vec<Message>,
        tx: Option<oneshot::Sender<Result<Args>>>,
        limit: usize,
    ) -> Result<()> {
        if self.run.is_none() {
            return Err(Error::new(ErrorKind::Closed, "the client is disconnected (call open() to connect)"));
        }
        if self.queue.len() + self.retried.len() >= limit {
            return Err(Error::new(ErrorKind::QueueFull, format!("{limit} emits already wait to be sent")));
        }
        self.retried.push(id, frames, tx);
        Ok(())
    }

    pub fn enqueue_with_ack(&mut self, id: u64, frames: Vec<Message>, limit: usize) -> Result<oneshot::Receiver<Args>> {
        self.enqueue(frames, limit)?;
        if let Some(last) = self.queue.back_mut() {
            last.ack = Some(id);
        }
        let (tx, rx) = oneshot::channel();
        self.acks.insert(id, PendingAck { tx, written: false });
        Ok(rx)
    }

    /// A timed-out emit is withdrawn if it has not been written yet, so the
    /// server never handles what the caller was told failed.
    pub fn cancel_ack(&mut self, id: u64) {
        if self.acks.remove(&id).is_some() {
            self.queue.retain(|o| o.ack != Some(id));
        }
    }

    /// Answer emit `id`; a late or unknown ack is ignored, as socket.io-client
    /// does. True when it answered an at-least-once emit: the next may go.
    pub fn settle_ack(&mut self, id: u64, args: Args) -> bool {
        if let Some(a) = self.acks.remove(&id) {
            let _ = a.tx.send(args);
            return false;
        }
        self.retried.settle(id, Ok(args))
    }

    /// Everything waiting to be written, in order; marks emits as written.
    pub fn take_batch(&mut self) -> Vec<Message> {
        let mut batch = std::mem::take(&mut self.live);
        while let Some(out) = self.queue.pop_front() {
            if let Some(a) = out.ack.and_then(|id| self.acks.get_mut(&id)) {
                a.written = true;
            }
            batch.extend(out.frames);
        }
        if let Some(frames) = self.retried.due(self.epoch) {
            batch.extend(frames);
        }
        batch
    }

    /// The connection dropped. Acks whose packets went out on it can never
    /// come: their senders are dropped, which callers see as `Closed`. The
    /// buffer stays for the next connection.
    pub fn lost(&mut self) {
        self.sid = None;
        self.live.clear();
        self.acks.retain(|_, a| !a.written);
    }

    /// A new connection with socket id `sid` and private session id `pid`;
    /// returns its epoch.
    pub fn connected(&mut self, sid: String, pid: Option<String>) -> u64 {
        self.epoch += 1;
        self.sid = Some(sid);
        self.recovered = pid.is_some() && pid == self.pid;
        if !self.recovered {
            self.offset = None;
        }
        self.pid = pid;
        self.epoch
    }

    /// The CONNECT payload: the auth object, plus the session to recover
    /// (`pid`, `offset`) once the server gave one, as socket.io-client sends.
    pub fn connect_payload(&self, auth: Option<&Value>) -> Option<Value> {
        let Some(pid) = &self.pid else { return auth.cloned() };
        let mut payload = match auth {
            Some(Value::Object(m)) => m.clone(),
            _ => serde_json::Map::new(),
        };
        payload.insert("pid".into(), Value::from(pid.as_str()));
        if let Some(o) = &self.offset {
            payload.insert("offset".into(), Value::from(o.as_str()));
        }
        Some(Value::Object(payload))
    }

    /// With recovery on, the last argument of an event without ack is its
    /// offset when it has an offset's shape (volatile events have none):
    /// kept for the next reconnection and taken off the arguments.
    pub fn take_offset(&mut self, args: &mut Vec<Data>) {
        if self.pid.is_some()
            && let Some(Data::String(o)) = args.last()
            && o.parse::<crate::recovery::Offset>().is_ok()
            && let Some(Data::String(o)) = args.pop()
        {
            self.offset = Some(o);
        }
    }

    /// The run is over: every waiter fails with `Closed`, the buffer goes.
    fn stop(&mut self) {
        let epoch = self.epoch;
        let retried = self.retried.emptied();
        *self = Core { epoch, retried, ..Core::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(s: &str) -> Vec<Message> {
        vec![Message::text(s)]
    }

    #[test]
    fn queue_is_bounded_ordered_and_needs_a_run() {
        let mut core = Core::default();
        assert_eq!(core.enqueue(frames("a"), 2).unwrap_err().kind(), ErrorKind::Closed);
        core.run = Some(CancellationToken::new());
        core.enqueue(frames("a"), 2).unwrap();
        let _rx = core.enqueue_with_ack(7, frames("b"), 2).unwrap();
        assert_eq!(core.enqueue(frames("c"), 2).unwrap_err().kind(), ErrorKind::QueueFull);
        assert_eq!(core.take_batch(), [Message::text("a"), Message::text("b")]);
        assert!(core.take_batch().is_empty());
    }

    #[test]
    fn acks_die_with_their_connection_unless_still_queued() {
        let mut core = Core { run: Some(CancellationToken::new()), ..Core::default() };
        core.connected("s1".into(), None);
        let mut written = core.enqueue_with_ack(1, frames("1"), 10).unwrap();
        core.take_batch();
        core.lost();
        let mut queued = core.enqueue_with_ack(2, frames("2"), 10).unwrap();
        assert!(written.try_recv().is_err() && core.acks.len() == 1);
        assert_eq!(core.connected("s2".into(), None), 2);
        assert_eq!(core.take_batch(), [Message::text("2")]);
        core.settle_ack(2, Args::one(crate::hub::args::Data::from("ok")));
        core.settle_ack(99, Args::none());
        assert_eq!(queued.try_recv().unwrap().json(), serde_json::json!("ok"));
    }

    #[test]
    fn recovery_sends_pid_and_last_offset_and_takes_offsets_off_events() {
        let mut core = Core::default();
        let auth = serde_json::json!({"token": "t"});
        assert_eq!(core.connect_payload(Some(&auth)), Some(auth.clone()), "no session yet");
        core.connected("s1".into(), Some("p1".into()));
        assert!(!core.recovered);
        let mut args = vec![Data::from(serde_json::json!(1)), Data::from("not an offset")];
        core.take_offset(&mut args);
        assert_eq!(args.len(), 2, "a string that is no offset stays");
        args.push(Data::from("17-2"));
        core.take_offset(&mut args);
        assert_eq!((args.len(), core.offset.as_deref()), (2, Some("17-2")));
        assert_eq!(
            core.connect_payload(Some(&auth)),
            Some(serde_json::json!({"token": "t", "pid": "p1", "offset": "17-2"}))
        );
        core.lost();
        core.connected("s1".into(), Some("p1".into()));
        assert!(core.recovered && core.offset.is_some());
        core.connected("s2".into(), Some("p2".into()));
        assert!(!core.recovered && core.offset.is_none(), "a new session starts without an offset");
    }

    #[test]
    fn a_timed_out_emit_is_withdrawn() {
        let mut core = Core { run: Some(CancellationToken::new()), ..Core::default() };
        let _a = core.enqueue_with_ack(1, frames("1"), 10).unwrap();
        core.enqueue(frames("x"), 10).unwrap();
        core.cancel_ack(1);
        assert_eq!(core.take_batch(), [Message::text("x")]);
        core.stop();
        assert!(core.run.is_none() && core.queue.is_empty());
    }
}
