//! `roomcast_event`: what the server tells the application (a connection
//! to decide on, an event, a disconnect, a dead cluster node's socket, an
//! event from another cluster node), through a callback or the queue.

use std::collections::VecDeque;
use std::ffi::{CString, c_char};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use roomcast::{Args, Data, Handshake, Identity, Rejection, Reply};
use tokio::sync::oneshot;

use crate::ffi::{arg, args_from_json, bytes_arg, c_string, guard, opt_str_arg, str_arg, write_out};
use crate::result::roomcast_result;

/// What an event is about.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum roomcast_event_type {
    /// A client asks to connect: accept it (with a user id) or refuse it.
    /// Its data is the client's auth payload; it has no socket id yet.
    ROOMCAST_EVENT_CONNECT = 1,
    /// A socket is connected (after its CONNECT was accepted).
    ROOMCAST_EVENT_CONNECTED = 2,
    /// A socket sent an event: its name, its arguments as a JSON array;
    /// reply if it wants an ack.
    ROOMCAST_EVENT_MESSAGE = 3,
    /// A socket went away; its name is the reason.
    ROOMCAST_EVENT_DISCONNECT = 4,
    /// A socket of a dead cluster node (Redis): its socket and user ids,
    /// its name the dead node's id, its data `{"node", "namespace", "sid",
    /// "userId"}`. Once per socket, on the node that cleaned up after it.
    ROOMCAST_EVENT_NODE_LOST = 5,
    /// An event from another cluster node (`roomcast_server_server_emit`
    /// there, `roomcast_server_on_server_event` here): its name, its
    /// arguments as a JSON array, no socket. `roomcast_event_reply` answers
    /// it (without a reply the node answers with no arguments, `[]`).
    ROOMCAST_EVENT_SERVER_EVENT = 6,
    /// Nothing is buffered for a socket any more (asked for with
    /// `roomcast_server_notify_drained`): its socket id; also sent when the
    /// socket went away meanwhile.
    ROOMCAST_EVENT_DRAINED = 7,
}

/// One event. Borrowed inside a callback (do not free), owned from
/// `roomcast_server_next_event` (free with `roomcast_event_free`).
/// Strings it hands out live as long as the event.
pub struct roomcast_event {
    kind: roomcast_event_type,
    socket_id: CString,
    user_id: CString,
    name: CString,
    data: CString,
    binaries: Vec<Bytes>,
    decision: Mutex<Option<oneshot::Sender<Result<Identity, Rejection>>>>,
    reply: Mutex<Option<oneshot::Sender<Reply>>>,
    /// The connection's request (CONNECT), for its headers and query.
    handshake: Option<Arc<Handshake>>,
    /// CONNECTED: the socket took up a disconnected one's session.
    recovered: bool,
    /// Strings handed out on request, kept as long as the event.
    lent: Mutex<Vec<CString>>,
}

impl roomcast_event {
    fn new(kind: roomcast_event_type) -> Self {
        Self {
            kind,
            socket_id: CString::default(),
            user_id: CString::default(),
            name: CString::default(),
            data: CString::default(),
            binaries: Vec::new(),
            decision: Mutex::new(None),
            reply: Mutex::new(None),
            handshake: None,
            recovered: false,
            lent: Mutex::new(Vec::new()),
        }
    }

    /// Keep `s` with the event and lend it out.
    fn lend(&self, s: &str) -> *const c_char {
        let s = c_string(s);
        let ptr = s.as_ptr();
        self.lent.lock().push(s);
        ptr
    }

    /// A connection to decide on; the receiver gets the decision (dropped
    /// undecided: accepted anonymously).
    pub(crate) fn connect(handshake: Arc<Handshake>) -> (Self, oneshot::Receiver<Result<Identity, Rejection>>) {
        let (tx, rx) = oneshot::channel();
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_CONNECT);
        ev.data = c_string(handshake.auth.to_string());
        ev.handshake = Some(handshake);
        *ev.decision.get_mut() = Some(tx);
        (ev, rx)
    }

    pub(crate) fn connected(socket: &roomcast::Socket) -> Self {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_CONNECTED);
        ev.socket_id = c_string(socket.id().as_str());
        ev.user_id = c_string(socket.user_id().unwrap_or_default());
        ev.recovered = socket.recovered();
        ev
    }

    /// An event; with `wants_ack`, the receiver gets the reply (dropped
    /// unanswered: no ack is sent).
    pub(crate) fn message(
        socket: &roomcast::Socket,
        event: String,
        args: &Args,
        wants_ack: bool,
    ) -> (Self, Option<oneshot::Receiver<Reply>>) {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_MESSAGE);
        ev.socket_id = c_string(socket.id().as_str());
        ev.user_id = c_string(socket.user_id().unwrap_or_default());
        ev.name = c_string(event);
        ev.data = crate::ffi::args_to_json(args);
        args.as_slice().iter().for_each(|d| collect_binaries(d, &mut ev.binaries));
        let rx = wants_ack.then(|| {
            let (tx, rx) = oneshot::channel();
            *ev.reply.get_mut() = Some(tx);
            rx
        });
        (ev, rx)
    }

    /// An event from another node; the receiver gets the reply (dropped
    /// unanswered: an empty reply).
    pub(crate) fn server_event(event: &str, args: &Args) -> (Self, oneshot::Receiver<Reply>) {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_SERVER_EVENT);
        ev.name = c_string(event);
        ev.data = crate::ffi::args_to_json(args);
        args.as_slice().iter().for_each(|d| collect_binaries(d, &mut ev.binaries));
        let (tx, rx) = oneshot::channel();
        *ev.reply.get_mut() = Some(tx);
        (ev, rx)
    }

    pub(crate) fn disconnect(socket: &roomcast::Socket, reason: roomcast::DisconnectReason) -> Self {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_DISCONNECT);
        ev.socket_id = c_string(socket.id().as_str());
        ev.user_id = c_string(socket.user_id().unwrap_or_default());
        ev.name = c_string(reason.as_str());
        ev
    }

    pub(crate) fn drained(sid: &str) -> Self {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_DRAINED);
        ev.socket_id = c_string(sid);
        ev
    }

    pub(crate) fn node_lost(lost: &roomcast::LostSocket) -> Self {
        let mut ev = Self::new(roomcast_event_type::ROOMCAST_EVENT_NODE_LOST);
        ev.socket_id = c_string(lost.sid.as_str());
        ev.user_id = c_string(lost.user_id.as_deref().unwrap_or_default());
        ev.name = c_string(lost.node.as_str());
        ev.data = c_string(serde_json::to_string(lost).unwrap_or_default());
        ev
    }
}

fn collect_binaries(d: &Data, out: &mut Vec<Bytes>) {
    match d {
        Data::Binary(b) => out.push(b.clone()),
        Data::Array(items) => items.iter().for_each(|x| collect_binaries(x, out)),
        Data::Object(map) => map.values().for_each(|x| collect_binaries(x, out)),
        _ => {}
    }
}

/// Events waiting for the application, and the socket that is readable
/// while any wait (for epoll, poll, libuv…).
pub(crate) struct EventQueue {
    events: Mutex<VecDeque<Box<roomcast_event>>>,
    readable: UnixStream,
    wake: UnixStream,
}

impl EventQueue {
    pub(crate) fn new() -> std::io::Result<Self> {
        let (readable, wake) = UnixStream::pair()?;
        readable.set_nonblocking(true)?;
        wake.set_nonblocking(true)?;
        Ok(Self { events: Mutex::new(VecDeque::new()), readable, wake })
    }

    pub(crate) fn fd(&self) -> i32 {
        self.readable.as_raw_fd()
    }

    pub(crate) fn push(&self, ev: roomcast_event) {
        let mut events = self.events.lock();
        events.push_back(Box::new(ev));
        if events.len() == 1 {
            let _ = (&self.wake).write(&[1]);
        }
    }

    /// The oldest event; the fd stops being readable once none is left.
    pub(crate) fn pop(&self) -> Option<Box<roomcast_event>> {
        let mut events = self.events.lock();
        let ev = events.pop_front();
        if events.is_empty() {
            let mut sink = [0u8; 64];
            while matches!((&self.readable).read(&mut sink), Ok(n) if n > 0) {}
        }
        ev
    }
}

/// Run `f` on a live event.
unsafe fn with(
    ev: *const roomcast_event,
    f: impl FnOnce(&roomcast_event) -> Result<(), roomcast_result>,
) -> roomcast_result {
    guard(|| f(unsafe { arg(ev) }?))
}

/// The event's type (0 for NULL).
///
/// # Safety
/// `ev` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_type(ev: *const roomcast_event) -> std::ffi::c_uint {
    // SAFETY: NULL or live by contract.
    unsafe { ev.as_ref() }.map_or(0, |e| e.kind as std::ffi::c_uint)
}

/// The socket id ("" for CONNECT and SERVER_EVENT) and its user id ("" if
/// anonymous).
/// Owned by the event.
///
/// # Safety
/// `ev` is a live event; the out-pointers are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_socket(
    ev: *const roomcast_event,
    socket_id: *mut *const c_char,
    user_id: *mut *const c_char,
) -> roomcast_result {
    unsafe {
        with(ev, |e| {
            write_out(socket_id, e.socket_id.as_ptr())?;
            if !user_id.is_null() {
                write_out(user_id, e.user_id.as_ptr())?;
            }
            Ok(())
        })
    }
}

/// Whether a CONNECTED socket took up a disconnected one's session
/// (connection state recovery: same socket id, rooms and user, its missed
/// events replayed); false for every other event.
///
/// # Safety
/// `ev` is a live event; `recovered` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_is_recovered(
    ev: *const roomcast_event,
    recovered: *mut bool,
) -> roomcast_result {
    unsafe { with(ev, |e| write_out(recovered, e.recovered)) }
}

/// The event's name (MESSAGE, SERVER_EVENT), the disconnect reason
/// (DISCONNECT) or the dead node's id (NODE_LOST); "" otherwise.
///
/// # Safety
/// `ev` is a live event; `name` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_name(
    ev: *const roomcast_event,
    name: *mut *const c_char,
) -> roomcast_result {
    unsafe { with(ev, |e| write_out(name, e.name.as_ptr())) }
}

/// The event's JSON: the arguments as an array (MESSAGE, SERVER_EVENT;
/// binary values appear as `{"$binary": "<base64>"}`), the auth payload
/// (CONNECT), the lost socket (NODE_LOST: `{"node", "namespace", "sid",
/// "userId"}`), or "" otherwise. NUL-terminated; `len` (optional) gets its length.
///
/// # Safety
/// `ev` is a live event; `json` is writable; `len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_data(
    ev: *const roomcast_event,
    json: *mut *const c_char,
    len: *mut usize,
) -> roomcast_result {
    unsafe {
        with(ev, |e| {
            write_out(json, e.data.as_ptr())?;
            if !len.is_null() {
                write_out(len, e.data.as_bytes().len())?;
            }
            Ok(())
        })
    }
}

/// Query parameter `key` of a CONNECT's request (e.g. a token), owned by
/// the event; NOT_FOUND if absent, BAD_STATE for other event types.
///
/// # Safety
/// `ev` is a live event; `key` is NUL-terminated; `value` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_query(
    ev: *const roomcast_event,
    key: *const c_char,
    value: *mut *const c_char,
) -> roomcast_result {
    let key = unsafe { str_arg(key) };
    unsafe {
        with(ev, |e| {
            let hs = e.handshake.as_ref().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            let found = hs.query_param(key?).ok_or(roomcast_result::ROOMCAST_RESULT_NOT_FOUND)?;
            write_out(value, e.lend(found))
        })
    }
}

/// Header `name` (case-insensitive) of a CONNECT's request, owned by the
/// event; NOT_FOUND if absent, BAD_STATE for other event types.
///
/// # Safety
/// As `roomcast_event_get_query`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_header(
    ev: *const roomcast_event,
    name: *const c_char,
    value: *mut *const c_char,
) -> roomcast_result {
    let name = unsafe { str_arg(name) };
    unsafe {
        with(ev, |e| {
            let hs = e.handshake.as_ref().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            let found = hs.header(&name?.to_ascii_lowercase()).ok_or(roomcast_result::ROOMCAST_RESULT_NOT_FOUND)?;
            write_out(value, e.lend(found))
        })
    }
}

/// How many binary values the event's arguments hold, in order.
///
/// # Safety
/// `ev` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_binary_count(ev: *const roomcast_event) -> usize {
    // SAFETY: NULL or live by contract.
    unsafe { ev.as_ref() }.map_or(0, |e| e.binaries.len())
}

/// Binary value `index` of the arguments (bytes owned by the event).
///
/// # Safety
/// `ev` is a live event; `data` and `len` are writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_get_binary(
    ev: *const roomcast_event,
    index: usize,
    data: *mut *const u8,
    len: *mut usize,
) -> roomcast_result {
    unsafe {
        with(ev, |e| {
            let b = e.binaries.get(index).ok_or(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT)?;
            write_out(data, b.as_ptr())?;
            write_out(len, b.len())
        })
    }
}

/// Whether the client waits for an ack of this MESSAGE (always true for a
/// SERVER_EVENT not answered yet).
///
/// # Safety
/// `ev` is NULL or a live event.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_wants_ack(ev: *const roomcast_event) -> bool {
    // SAFETY: NULL or live by contract.
    unsafe { ev.as_ref() }.is_some_and(|e| e.reply.lock().is_some())
}

/// Accept a CONNECT, as user `user_id` (NULL: anonymous). The socket joins
/// the room "user:<id>". Without a decision the connection is accepted
/// anonymously when the event is done with.
///
/// # Safety
/// `ev` is a live event; `user_id` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_accept(ev: *const roomcast_event, user_id: *const c_char) -> roomcast_result {
    let user_id = unsafe { opt_str_arg(user_id) };
    unsafe {
        with(ev, |e| {
            let identity = Identity { user_id: user_id?.map(str::to_owned), data: serde_json::Value::Null };
            let decision = e.decision.lock().take().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            let _ = decision.send(Ok(identity));
            Ok(())
        })
    }
}

/// Refuse a CONNECT with `message` (the client's connect_error).
///
/// # Safety
/// `ev` is a live event; `message` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_refuse(ev: *const roomcast_event, message: *const c_char) -> roomcast_result {
    let message = unsafe { str_arg(message) };
    unsafe {
        with(ev, |e| {
            let message = message?;
            let decision = e.decision.lock().take().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            let _ = decision.send(Err(Rejection::new(message)));
            Ok(())
        })
    }
}

/// Ack a MESSAGE that wants one, or answer a SERVER_EVENT, with `args_json`
/// (a JSON array of arguments, `len` bytes). Without a reply no ack is
/// sent (a SERVER_EVENT is answered with `[]`). BAD_STATE for other
/// events or a second reply.
///
/// # Safety
/// `ev` is a live event; `args_json` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_reply(
    ev: *const roomcast_event,
    args_json: *const c_char,
    len: usize,
) -> roomcast_result {
    let json = unsafe { bytes_arg(args_json.cast(), len) };
    unsafe {
        with(ev, |e| {
            let args = args_from_json(json?).map_err(|_| roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT)?;
            let reply = e.reply.lock().take().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            let _ = reply.send(Reply::Data(args));
            Ok(())
        })
    }
}

/// Free an event taken from the queue (NULL is ignored). Pending decisions
/// and replies take their defaults (accept; no ack).
///
/// # Safety
/// `ev` came from `roomcast_server_next_event` and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_event_free(ev: *mut roomcast_event) {
    if !ev.is_null() {
        // SAFETY: made by Box::into_raw in roomcast_server_next_event.
        drop(unsafe { Box::from_raw(ev) });
    }
}
