//! `roomcast_server`: the server, its handlers (callbacks or the event
//! queue) and what the application does with sockets and rooms.

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use roomcast::{Args, Data, Identity, Reply, Server as Core};

use crate::config::{self, roomcast_server_config};
use crate::event::{EventQueue, roomcast_event};
use crate::ffi::{
    LastError, RUNTIME, arg, args_from_json, args_to_json, block_on, bytes_arg, guard, opt_str_arg, out_arg, str_arg,
    write_new, write_out, write_string,
};
use crate::result::roomcast_result;

/// Called on a runtime thread with an event borrowed for the call: decide
/// on a CONNECT, reply to a MESSAGE that wants an ack or to a SERVER_EVENT,
/// before returning. Keep it short: the connection (or the asking node) waits for it.
pub type roomcast_event_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, event: *mut roomcast_event)>;

/// Called on a runtime thread with the ack of `roomcast_server_emit_with_ack`:
/// `result` is OK with `args_json` (a JSON array, `len` bytes, valid during
/// the call), or TIMEOUT / NOT_FOUND / CLOSED with NULL.
pub type roomcast_ack_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, result: roomcast_result, args_json: *const c_char, len: usize)>;

/// The application's pointer, handed back to its callbacks on runtime threads.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: the API documents that callbacks run on runtime threads; the
// application makes what it passes usable there.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// Where events go: the application's callbacks, or the queue.
enum Delivery {
    Callbacks(Mutex<Callbacks>),
    Queue(EventQueue),
}

/// A registered callback and the pointer handed back to it.
type Slot = Option<(unsafe extern "C" fn(*mut c_void, *mut roomcast_event), UserData)>;

#[derive(Default)]
struct Callbacks {
    connect: Slot,
    event: Slot,
    disconnect: Slot,
    node_lost: Slot,
    drained: Slot,
    /// Per event name (`roomcast_server_on_server_event`).
    server_events: HashMap<String, Slot>,
}

impl Delivery {
    /// Hand `ev` to the application: through its callback for `pick`, or the queue.
    fn deliver(&self, mut ev: roomcast_event, pick: impl Fn(&Callbacks) -> Slot) {
        match self {
            Delivery::Queue(queue) => queue.push(ev),
            Delivery::Callbacks(cbs) => {
                let Some((cb, UserData(user_data))) = pick(&cbs.lock()) else { return };
                // A panic cannot cross C frames; a callback's own crash is the application's.
                // SAFETY: the application registered `cb` for this signature.
                unsafe { cb(user_data, &mut ev) };
            }
        }
    }

    fn wants(&self, pick: impl Fn(&Callbacks) -> bool) -> bool {
        match self {
            Delivery::Queue(_) => true,
            Delivery::Callbacks(cbs) => pick(&cbs.lock()),
        }
    }
}

/// A server. Thread-safe: every function may be called from any thread,
/// including from callbacks. Made by `roomcast_server_new`, freed by
/// `roomcast_server_free` (which stops it).
pub struct roomcast_server {
    pub(crate) core: Core,
    delivery: Arc<Delivery>,
    listen: String,
    port: Mutex<Option<u16>>,
    last_error: LastError,
}

/// A server from `config` (copied; the config may be freed after). It
/// serves Socket.IO at /socket.io/ and the JSON protocol at /ws, namespace
/// "/", once started.
///
/// # Safety
/// `config` is a live config; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_new(
    config: *const roomcast_server_config,
    out: *mut *mut roomcast_server,
) -> roomcast_result {
    guard(|| {
        let c = unsafe { config::get(config) }?;
        unsafe { write_new(out, || build(c)) }
    })
}

/// The server `c` describes, its handlers installed.
fn build(c: &roomcast_server_config) -> Result<roomcast_server, roomcast_result> {
    let _runtime = RUNTIME.enter();
    let mut b = Core::builder();
    if let (Some(i), Some(t)) = (c.ping_interval, c.ping_timeout) {
        b = b.ping_interval(i).ping_timeout(t);
    }
    if let Some(bytes) = c.max_payload {
        b = b.max_payload(bytes);
    }
    if let Some((total, per_ip)) = c.max_connections {
        b = b.max_connections(total).max_connections_per_ip(per_ip);
    }
    if let Some(rate) = c.connection_rate {
        b = b.connection_rate_per_ip(rate);
    }
    if let Some((messages, bytes)) = c.outbound_queue {
        b = b.outbound_queue(messages, bytes);
    }
    b = b.overflow(c.overflow);
    if let Some(path) = &c.metrics_path {
        b = b.metrics_path(path.clone());
    }
    for origin in &c.origins {
        b = b.allowed_origin(origin.clone());
    }
    if let Some(secret) = &c.jwt_secret {
        b = b.jwt(roomcast::JwtVerifier::hs256(secret));
    }
    if let Some(redis) = config::redis(c) {
        b = b.redis(redis);
    }
    if let Some(recovery) = &c.recovery {
        b = b.connection_state_recovery(recovery.clone());
    }
    let core = b.build().map_err(|e| roomcast_result::from(e.kind()))?;
    let delivery = if c.event_queue {
        Delivery::Queue(EventQueue::new().map_err(|_| roomcast_result::ROOMCAST_RESULT_IO)?)
    } else {
        Delivery::Callbacks(Mutex::default())
    };
    let delivery = Arc::new(delivery);
    install(&core, &delivery, c.jwt_secret.is_none());
    Ok(roomcast_server {
        core,
        delivery,
        listen: c.listen.clone(),
        port: Mutex::new(None),
        last_error: LastError::default(),
    })
}

/// Register the core handlers of namespace "/" that feed `delivery`.
fn install(core: &Core, delivery: &Arc<Delivery>, decide_connects: bool) {
    let ns = core.of("/");
    if decide_connects {
        let s = delivery.clone();
        ns.auth(move |hs| {
            let s = s.clone();
            async move {
                if !s.wants(|c| c.connect.is_some()) {
                    return Ok(Identity::anonymous());
                }
                let (ev, decided) = roomcast_event::connect(hs);
                s.deliver(ev, |c| c.connect);
                decided.await.unwrap_or_else(|_| Ok(Identity::anonymous()))
            }
        });
    }
    let s = delivery.clone();
    ns.on_connection(move |socket| {
        s.deliver(roomcast_event::connected(&socket), |c| c.connect);
        async {}
    });
    let s = delivery.clone();
    ns.on_any(move |socket, event, args| {
        let wants_ack = roomcast::wants_ack();
        let (ev, replied) = roomcast_event::message(&socket, event, &args, wants_ack);
        s.deliver(ev, |c| c.event);
        async move {
            match replied {
                Some(rx) => rx.await.unwrap_or(Reply::Unhandled),
                None => Reply::None,
            }
        }
    });
    let s = delivery.clone();
    ns.on_disconnect(move |socket, reason| {
        s.deliver(roomcast_event::disconnect(&socket, reason), |c| c.disconnect);
        async {}
    });
    // Only a server in a cluster ever calls it.
    let s = delivery.clone();
    core.on_node_lost(move |lost| {
        s.deliver(roomcast_event::node_lost(&lost), |c| c.node_lost);
        async {}
    });
}

/// Run `f` on a live server; a core error is recorded as its last error.
pub(crate) unsafe fn with(
    server: *const roomcast_server,
    f: impl FnOnce(&roomcast_server) -> Result<(), roomcast_result>,
) -> roomcast_result {
    guard(|| f(unsafe { arg(server) }?))
}

pub(crate) fn core_err(server: &roomcast_server) -> impl Fn(roomcast::Error) -> roomcast_result + '_ {
    move |e| server.last_error.set(&e)
}

/// Set the callback for CONNECT and CONNECTED events (NULL: accept every
/// connection). BAD_STATE on a server with an event queue.
///
/// # Safety
/// `server` is live; `cb` has the right signature; `user_data` is usable
/// from runtime threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_connect(
    server: *const roomcast_server,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe { set_callback(server, |c| &mut c.connect, cb, user_data) }
}

/// Set the callback for MESSAGE events. BAD_STATE with an event queue.
///
/// # Safety
/// As `roomcast_server_on_connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_event(
    server: *const roomcast_server,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe { set_callback(server, |c| &mut c.event, cb, user_data) }
}

/// Set the callback for DISCONNECT events. BAD_STATE with an event queue.
///
/// # Safety
/// As `roomcast_server_on_connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_disconnect(
    server: *const roomcast_server,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe { set_callback(server, |c| &mut c.disconnect, cb, user_data) }
}

/// Set the callback for NODE_LOST events (sockets of a dead cluster node,
/// see `roomcast_server_config_set_redis`). BAD_STATE with an event queue,
/// where they come through the queue.
///
/// # Safety
/// As `roomcast_server_on_connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_node_lost(
    server: *const roomcast_server,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe { set_callback(server, |c| &mut c.node_lost, cb, user_data) }
}

/// Set the callback for DRAINED events (`roomcast_server_notify_drained`).
/// BAD_STATE with an event queue.
///
/// # Safety
/// As `roomcast_server_on_connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_drained(
    server: *const roomcast_server,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe { set_callback(server, |c| &mut c.drained, cb, user_data) }
}

/// Answer the cluster's server events named `event` (sent by another node
/// with `roomcast_server_server_emit`): `cb` gets a SERVER_EVENT (its name,
/// its arguments as a JSON array) and answers it with `roomcast_event_reply`;
/// without a reply the node answers `[]`. NULL removes the callback (the
/// node still answers, with `[]`). On a server with an event queue `cb`
/// must be NULL (else BAD_STATE): the events then come through the queue,
/// and the reply may follow later, within the asking node's request
/// timeout. Without Redis no server event ever arrives.
///
/// # Safety
/// `server` is live; `event` is NUL-terminated; `cb` has the right
/// signature; `user_data` is usable from runtime threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_on_server_event(
    server: *const roomcast_server,
    event: *const c_char,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    let event = unsafe { str_arg(event) };
    unsafe {
        with(server, |s| {
            let event = event?.to_owned();
            match &*s.delivery {
                Delivery::Callbacks(cbs) => {
                    let slot = cb.map(|cb| (cb, UserData(user_data)));
                    cbs.lock().server_events.insert(event.clone(), slot);
                }
                Delivery::Queue(_) if cb.is_some() => {
                    let why = "this server delivers events through its queue: pass a NULL callback";
                    return Err(s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_BAD_STATE, why));
                }
                Delivery::Queue(_) => {}
            }
            let delivery = s.delivery.clone();
            s.core.on_server_event(event.clone(), move |args| {
                let (ev, replied) = roomcast_event::server_event(&event, &args);
                delivery.deliver(ev, |c| c.server_events.get(&event).copied().flatten());
                async move {
                    match replied.await {
                        Ok(Reply::Data(args)) => args,
                        _ => Args::none(),
                    }
                }
            });
            Ok(())
        })
    }
}

unsafe fn set_callback(
    server: *const roomcast_server,
    slot: impl FnOnce(&mut Callbacks) -> &mut Slot,
    cb: roomcast_event_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe {
        with(server, |s| match &*s.delivery {
            Delivery::Callbacks(cbs) => {
                *slot(&mut cbs.lock()) = cb.map(|cb| (cb, UserData(user_data)));
                Ok(())
            }
            Delivery::Queue(_) => Err(s
                .last_error
                .set_text(roomcast_result::ROOMCAST_RESULT_BAD_STATE, "this server delivers events through its queue")),
        })
    }
}

/// Bind and start serving (returns once listening). BAD_STATE if running.
///
/// # Safety
/// `server` is live. From a callback it returns BAD_STATE (it waits for the runtime).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_start(server: *const roomcast_server) -> roomcast_result {
    unsafe {
        with(server, |s| {
            let mut port = s.port.lock();
            if port.is_some() {
                return Err(s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_BAD_STATE, "already started"));
            }
            let addr = block_on(s.core.listen(s.listen.as_str()))?.map_err(core_err(s))?;
            *port = Some(addr.port());
            Ok(())
        })
    }
}

/// The port it listens on (after start).
///
/// # Safety
/// `server` is live; `port` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_port(server: *const roomcast_server, port: *mut u16) -> roomcast_result {
    unsafe {
        with(server, |s| {
            let p = (*s.port.lock()).ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            write_out(port, p)
        })
    }
}

/// Close every connection and stop listening; returns when done. A
/// stopped server cannot start again (make a new one).
///
/// # Safety
/// `server` is live. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_stop(server: *const roomcast_server) -> roomcast_result {
    unsafe {
        with(server, |s| {
            block_on(s.core.shutdown())?;
            Ok(())
        })
    }
}

/// Stop (if running) and free the server (NULL is ignored). Events still
/// in its queue are freed; events taken from it stay valid until freed.
///
/// # Safety
/// `server` came from `roomcast_server_new` and is not used again; no
/// callback of it is running. From a callback it does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_free(server: *mut roomcast_server) {
    // From a callback it would wait on its own runtime: the handle stays as it is.
    if server.is_null() || tokio::runtime::Handle::try_current().is_ok() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by Box::into_raw in roomcast_server_new.
        let server = unsafe { Box::from_raw(server) };
        if !server.core.is_shut_down() {
            block_on(server.core.shutdown())?;
        }
        Ok(())
    });
}

/// The detail of the last failed call on `server` (never NULL; owned by
/// the server, valid until its next call).
///
/// # Safety
/// `server` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_last_error(server: *const roomcast_server) -> *const c_char {
    // SAFETY: NULL or live by contract.
    unsafe { server.as_ref() }.map_or(c"NULL server".as_ptr(), |s| s.last_error.as_ptr())
}

/// The fd that is readable while events wait in the queue (for epoll,
/// poll, libuv). BAD_STATE on a server with callbacks.
///
/// # Safety
/// `server` is live; `fd` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_event_fd(server: *const roomcast_server, fd: *mut i32) -> roomcast_result {
    unsafe {
        with(server, |s| match &*s.delivery {
            Delivery::Queue(q) => write_out(fd, q.fd()),
            Delivery::Callbacks(_) => Err(roomcast_result::ROOMCAST_RESULT_BAD_STATE),
        })
    }
}

/// Take the oldest waiting event into `*event` (free it with
/// `roomcast_event_free`), or NO_EVENT when none waits.
///
/// # Safety
/// `server` is live; `event` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_next_event(
    server: *const roomcast_server,
    event: *mut *mut roomcast_event,
) -> roomcast_result {
    unsafe {
        with(server, |s| match &*s.delivery {
            Delivery::Queue(q) => {
                let ev = q.pop().ok_or(roomcast_result::ROOMCAST_RESULT_NO_EVENT)?;
                write_out(event, Box::into_raw(ev))
            }
            Delivery::Callbacks(_) => Err(roomcast_result::ROOMCAST_RESULT_BAD_STATE),
        })
    }
}

fn socket(s: &roomcast_server, sid: &str) -> Result<roomcast::Socket, roomcast_result> {
    s.core
        .of("/")
        .socket(sid)
        .ok_or_else(|| s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_NOT_FOUND, &format!("no socket {sid}")))
}

/// Put socket `socket_id` in `room`.
///
/// # Safety
/// `server` is live; the strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_join(
    server: *const roomcast_server,
    socket_id: *const c_char,
    room: *const c_char,
) -> roomcast_result {
    let (sid, room) = unsafe { (str_arg(socket_id), str_arg(room)) };
    unsafe { with(server, |s| socket(s, sid?)?.join(room?).map_err(core_err(s))) }
}

/// Take socket `socket_id` out of `room`.
///
/// # Safety
/// As `roomcast_server_join`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_leave(
    server: *const roomcast_server,
    socket_id: *const c_char,
    room: *const c_char,
) -> roomcast_result {
    let (sid, room) = unsafe { (str_arg(socket_id), str_arg(room)) };
    unsafe { with(server, |s| socket(s, sid?)?.leave(room?).map_err(core_err(s))) }
}

/// Disconnect socket `socket_id`; with `close`, also close its connection
/// (Socket.IO: every namespace of it, as socket.io's `disconnect(true)`).
///
/// # Safety
/// As `roomcast_server_join`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_disconnect(
    server: *const roomcast_server,
    socket_id: *const c_char,
    close: bool,
) -> roomcast_result {
    let sid = unsafe { str_arg(socket_id) };
    unsafe {
        with(server, |s| {
            let socket = socket(s, sid?)?;
            if close {
                socket.disconnect_connection()
            } else {
                socket.disconnect()
            }
            Ok(())
        })
    }
}

/// The rooms of socket `socket_id` as a JSON array, its own room (its id)
/// first, into `*rooms_json` (free with `roomcast_string_free`). Readable
/// during its DISCONNECT event too.
///
/// # Safety
/// As `roomcast_server_join`; `rooms_json` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_rooms(
    server: *const roomcast_server,
    socket_id: *const c_char,
    rooms_json: *mut *mut c_char,
) -> roomcast_result {
    let sid = unsafe { str_arg(socket_id) };
    unsafe {
        with(server, |s| {
            let rooms = socket(s, sid?)?.rooms();
            write_string(rooms_json, serde_json::Value::from(rooms).to_string())
        })
    }
}

/// Send `event` with `args_json` (a JSON array of arguments, `len` bytes)
/// to the sockets in `room` (a socket id is a room of one; NULL: everyone)
/// but those in `except` (NULL: none; a socket id leaves out that socket,
/// as Socket.IO's `socket.to(room)` leaves out the sender). `sent`
/// (optional) gets how many sockets it was queued for.
///
/// # Safety
/// `server` is live; `room` and `except` are NULL or NUL-terminated; `event` is
/// NUL-terminated; `args_json` points to `len` bytes; `sent` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    sent: *mut usize,
) -> roomcast_result {
    unsafe { emit_json(server, (room, except), event, args_json, len, sent, false) }
}

/// As `roomcast_server_emit`, volatile: a socket whose outgoing queue is
/// full misses it (instead of the overflow policy applying), and recovery
/// never replays it.
///
/// # Safety
/// As `roomcast_server_emit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit_volatile(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    sent: *mut usize,
) -> roomcast_result {
    unsafe { emit_json(server, (room, except), event, args_json, len, sent, true) }
}

/// `roomcast_server_emit`, volatile or not.
unsafe fn emit_json(
    server: *const roomcast_server,
    (room, except): (*const c_char, *const c_char),
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    sent: *mut usize,
    volatile: bool,
) -> roomcast_result {
    let (room, except) = unsafe { (opt_str_arg(room), opt_str_arg(except)) };
    let (event, json) = unsafe { (str_arg(event), bytes_arg(args_json.cast(), len)) };
    unsafe {
        with(server, |s| {
            let args = parse_args(s, json?)?;
            let mut op = to_room(s, room?);
            if let Some(except) = except? {
                op = op.except(except);
            }
            if volatile {
                op = op.volatile();
            }
            let n = op.emit_args(event?, args);
            if !sent.is_null() {
                write_out(sent, n)?;
            }
            Ok(())
        })
    }
}

/// `*out` gets how many bytes are queued for socket `socket_id`'s
/// connection and not yet written (NOT_FOUND if there is no such socket):
/// the backpressure of a client that reads slowly.
///
/// # Safety
/// `server` is live; `socket_id` is NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_buffered_amount(
    server: *const roomcast_server,
    socket_id: *const c_char,
    out: *mut usize,
) -> roomcast_result {
    let sid = unsafe { str_arg(socket_id) };
    unsafe {
        with(server, |s| {
            let socket = socket(s, sid?)?;
            write_out(out, socket.buffered_amount())
        })
    }
}

/// Ask for one DRAINED event (its callback, or the queue) once nothing is
/// buffered for socket `socket_id` (at once if nothing is; also when the
/// socket goes away). NOT_FOUND if there is no such socket.
///
/// # Safety
/// `server` is live; `socket_id` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_notify_drained(
    server: *const roomcast_server,
    socket_id: *const c_char,
) -> roomcast_result {
    let sid = unsafe { str_arg(socket_id) };
    unsafe {
        with(server, |s| {
            let socket = socket(s, sid?)?;
            let delivery = s.delivery.clone();
            RUNTIME.spawn(async move {
                socket.drained().await;
                delivery.deliver(roomcast_event::drained(socket.id().as_str()), |c| c.drained);
            });
            Ok(())
        })
    }
}

/// Send `event` with one binary argument (`len` bytes) to `room` (NULL: everyone).
///
/// # Safety
/// As `roomcast_server_emit`, with `data` pointing to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit_binary(
    server: *const roomcast_server,
    room: *const c_char,
    event: *const c_char,
    data: *const u8,
    len: usize,
) -> roomcast_result {
    let (room, event, data) = unsafe { (opt_str_arg(room), str_arg(event), bytes_arg(data, len)) };
    unsafe {
        with(server, |s| {
            let args = Args::one(Data::Binary(bytes::Bytes::copy_from_slice(data?)));
            to_room(s, room?).emit_args(event?, args);
            Ok(())
        })
    }
}

/// Send `event` to every socket of user `user_id` (accepted with that id).
///
/// # Safety
/// As `roomcast_server_emit`; `user_id` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit_to_user(
    server: *const roomcast_server,
    user_id: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
) -> roomcast_result {
    let (user, event, json) = unsafe { (str_arg(user_id), str_arg(event), bytes_arg(args_json.cast(), len)) };
    unsafe {
        with(server, |s| {
            let args = parse_args(s, json?)?;
            s.core.to_user(user?).emit_args(event?, args);
            Ok(())
        })
    }
}

/// Send `event` to socket `socket_id` and have `cb` called (on a runtime
/// thread) with its ack, or with TIMEOUT after `timeout_ms`.
///
/// # Safety
/// As `roomcast_server_emit`; `cb` has the right signature; `user_data`
/// is usable from runtime threads until `cb` has run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit_with_ack(
    server: *const roomcast_server,
    socket_id: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    timeout_ms: u32,
    cb: roomcast_ack_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    let (sid, event, json) = unsafe { (str_arg(socket_id), str_arg(event), bytes_arg(args_json.cast(), len)) };
    unsafe {
        with(server, |s| {
            let cb = cb.ok_or(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT)?;
            let args = parse_args(s, json?)?;
            let socket = socket(s, sid?)?;
            let (event, user_data) = (event?.to_owned(), UserData(user_data));
            RUNTIME.spawn(async move {
                let user_data = user_data;
                let reply = socket.emit_args_with_ack(event, args, Duration::from_millis(timeout_ms.into())).await;
                let (result, json) = match reply {
                    Ok(args) => (roomcast_result::ROOMCAST_RESULT_OK, Some(args_to_json(&args))),
                    Err(e) => (roomcast_result::from(e.kind()), None),
                };
                call_ack(cb, user_data, result, json.as_ref());
            });
            Ok(())
        })
    }
}

/// Hand an ack (its JSON, or none on failure) to the application's callback.
pub(crate) fn call_ack(
    cb: unsafe extern "C" fn(*mut c_void, roomcast_result, *const c_char, usize),
    user_data: UserData,
    result: roomcast_result,
    json: Option<&std::ffi::CString>,
) {
    let (ptr, len) = json.map_or((std::ptr::null(), 0), |j| (j.as_ptr(), j.as_bytes().len()));
    // SAFETY: the application registered `cb` for this signature; `json`
    // lives for the call.
    unsafe { cb(user_data.0, result, ptr, len) }
}

pub(crate) fn parse_args(s: &roomcast_server, json: &[u8]) -> Result<Args, roomcast_result> {
    args_from_json(json).map_err(|why| s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT, &why))
}

pub(crate) fn to_room(s: &roomcast_server, room: Option<&str>) -> roomcast::BroadcastOperator {
    match room {
        Some(room) => s.core.to(room),
        None => s.core.broadcast(),
    }
}

/// Track presence in `room` (NULL: every named room) of namespace "/":
/// members aggregated per user id (a socket without one is a member of
/// its own), and the room told of changes (Socket.IO `presence:join`,
/// `presence:leave`, `presence:update`; JSON protocol `user_joined`,
/// `user_left`, `presence`). Rooms already joined are tracked from their
/// next join: call it before `roomcast_server_start`.
///
/// # Safety
/// `server` is live; `room` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_enable_presence(
    server: *const roomcast_server,
    room: *const c_char,
) -> roomcast_result {
    let room = unsafe { opt_str_arg(room) };
    unsafe {
        with(server, |s| {
            match room? {
                Some(room) => s.core.of("/").enable_presence_in(room),
                None => s.core.of("/").enable_presence(),
            }
            Ok(())
        })
    }
}

/// The members of `room` (on every node in a cluster) as a JSON array of
/// `{"userId", "anonymous" (only when true), "connections", "meta",
/// "joinedAt", "lastSeen"}` (times in ms since the Unix epoch), into
/// `*members_json` (free with `roomcast_string_free`). "[]" for a room
/// without presence or members.
///
/// # Safety
/// `server` is live; `room` is NUL-terminated; `members_json` is writable.
/// From a callback it returns BAD_STATE (it may wait for Redis).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_presence(
    server: *const roomcast_server,
    room: *const c_char,
    members_json: *mut *mut c_char,
) -> roomcast_result {
    let room = unsafe { str_arg(room) };
    unsafe {
        with(server, |s| {
            out_arg(members_json)?;
            let members = block_on(s.core.of("/").presence(room?))?.map_err(core_err(s))?;
            let json = serde_json::to_string(&members).map_err(|_| roomcast_result::ROOMCAST_RESULT_INTERNAL)?;
            write_string(members_json, json)
        })
    }
}

/// How many members `room` has (on every node in a cluster).
///
/// # Safety
/// As `roomcast_server_presence`; `count` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_presence_count(
    server: *const roomcast_server,
    room: *const c_char,
    count: *mut usize,
) -> roomcast_result {
    let room = unsafe { str_arg(room) };
    unsafe {
        with(server, |s| {
            out_arg(count)?;
            let n = block_on(s.core.of("/").presence_count(room?))?.map_err(core_err(s))?;
            write_out(count, n)
        })
    }
}

/// Whether user `user_id` has a connection (on any node in a cluster).
///
/// # Safety
/// `server` is live; `user_id` is NUL-terminated; `online` is writable.
/// From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_is_online(
    server: *const roomcast_server,
    user_id: *const c_char,
    online: *mut bool,
) -> roomcast_result {
    let user = unsafe { str_arg(user_id) };
    unsafe {
        with(server, |s| {
            out_arg(online)?;
            let on = block_on(s.core.is_online(user?))?.map_err(core_err(s))?;
            write_out(online, on)
        })
    }
}

/// Which of the users in `user_ids_json` (a JSON array of strings) have a
/// connection (on any node), in one call: a JSON object `{"<id>": true |
/// false}` into `*online_json` (free with `roomcast_string_free`).
///
/// # Safety
/// `server` is live; `user_ids_json` is NUL-terminated; `online_json` is
/// writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_online_users(
    server: *const roomcast_server,
    user_ids_json: *const c_char,
    online_json: *mut *mut c_char,
) -> roomcast_result {
    let ids = unsafe { str_arg(user_ids_json) };
    unsafe {
        with(server, |s| {
            out_arg(online_json)?;
            let ids: Vec<String> = serde_json::from_str(ids?).map_err(|e| {
                let why = format!("user ids must be a JSON array of strings: {e}");
                s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT, &why)
            })?;
            let online = block_on(s.core.online_users(&ids))?.map_err(core_err(s))?;
            let map: serde_json::Map<String, serde_json::Value> =
                online.into_iter().map(|(id, on)| (id, serde_json::Value::Bool(on))).collect();
            write_string(online_json, serde_json::Value::Object(map).to_string())
        })
    }
}

/// Replace the presence metadata of socket `socket_id` with `meta_json`, a
/// JSON object whose "status" is "online", "away" or "busy" (online when
/// absent); else INVALID_ARGUMENT. Its member in every room with presence
/// it is in takes it, and those rooms are told (`presence:update`).
///
/// # Safety
/// `server` is live; the strings are NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_set_presence(
    server: *const roomcast_server,
    socket_id: *const c_char,
    meta_json: *const c_char,
) -> roomcast_result {
    let (sid, meta) = unsafe { (str_arg(socket_id), str_arg(meta_json)) };
    unsafe {
        with(server, |s| {
            let meta: serde_json::Value = serde_json::from_str(meta?).map_err(|e| {
                let why = format!("presence metadata is not JSON: {e}");
                s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT, &why)
            })?;
            socket(s, sid?)?.set_presence(meta).map_err(core_err(s))
        })
    }
}

/// The presence metadata of socket `socket_id` (a JSON object, `{"status":
/// "online"}` until set), into `*meta_json` (free with `roomcast_string_free`).
///
/// # Safety
/// `server` is live; `socket_id` is NUL-terminated; `meta_json` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_presence_meta(
    server: *const roomcast_server,
    socket_id: *const c_char,
    meta_json: *mut *mut c_char,
) -> roomcast_result {
    let sid = unsafe { str_arg(socket_id) };
    unsafe {
        with(server, |s| {
            out_arg(meta_json)?;
            write_string(meta_json, socket(s, sid?)?.presence_meta().to_string())
        })
    }
}

/// This server's cluster node id, into `*node_id` (free with
/// `roomcast_string_free`); NOT_FOUND without Redis.
///
/// # Safety
/// `server` is live; `node_id` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_node_id(
    server: *const roomcast_server,
    node_id: *mut *mut c_char,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            out_arg(node_id)?;
            let id = s.core.node_id().ok_or_else(|| {
                s.last_error.set_text(roomcast_result::ROOMCAST_RESULT_NOT_FOUND, "not in a cluster (no Redis)")
            })?;
            write_string(node_id, id)
        })
    }
}

/// Counters of a server, as `roomcast_server_stats` fills them.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct roomcast_stats {
    /// Connected sockets.
    pub sockets: u64,
    /// Rooms with members, not counting each socket's own.
    pub rooms: u64,
    /// Distinct users connected.
    pub users: u64,
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
    /// Volatile messages dropped for full queues.
    pub dropped: u64,
    /// Messages received from other cluster nodes over Redis (its own
    /// publishes included); 0 without Redis.
    pub cluster_messages_in: u64,
    /// Messages published for other cluster nodes.
    pub cluster_messages_out: u64,
    /// Redis commands or publishes that failed, and messages lost in between.
    pub cluster_errors: u64,
    /// Cluster queries answered partially (a node did not answer within
    /// the request timeout).
    pub cluster_request_timeouts: u64,
    /// Connections closed because they did not read fast enough.
    pub slow_consumer_closes: u64,
    /// Inbound messages rejected by the rate limiter.
    pub rate_limited: u64,
    /// Connections refused before the upgrade (limits, origin, auth).
    pub refused_connections: u64,
    /// Open connections (WebSocket or polling sessions).
    pub connections: u64,
    /// Server emits whose ack did not come in time.
    pub ack_timeouts: u64,
    /// Reconnecting clients that got their session back (recovery).
    pub recovery_hits: u64,
    /// Reconnecting clients whose session was no longer kept.
    pub recovery_misses: u64,
    /// Repeated events of at-least-once clients answered without handing them over again.
    pub retries_deduplicated: u64,
}

/// Fill `*stats` with the server's counters now.
///
/// # Safety
/// `server` is live; `stats` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_stats(
    server: *const roomcast_server,
    stats: *mut roomcast_stats,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            let st = s.core.stats();
            write_out(
                stats,
                roomcast_stats {
                    sockets: st.sockets,
                    rooms: st.rooms,
                    users: st.users,
                    messages_in: st.messages_in,
                    bytes_in: st.bytes_in,
                    messages_out: st.messages_out,
                    bytes_out: st.bytes_out,
                    dropped: st.dropped,
                    cluster_messages_in: st.cluster_messages_in,
                    cluster_messages_out: st.cluster_messages_out,
                    cluster_errors: st.cluster_errors,
                    cluster_request_timeouts: st.cluster_request_timeouts,
                    slow_consumer_closes: st.slow_consumer_closes,
                    rate_limited: st.rate_limited,
                    refused_connections: st.refused_connections,
                    connections: st.connections,
                    ack_timeouts: st.ack_timeouts,
                    recovery_hits: st.recovery_hits,
                    recovery_misses: st.recovery_misses,
                    retries_deduplicated: st.retries_deduplicated,
                },
            )
        })
    }
}

/// The counters and gauges in the Prometheus text format (OpenMetrics),
/// as served at `roomcast_server_config_set_metrics_path`, into `*text`
/// (free with `roomcast_string_free`).
///
/// # Safety
/// `server` is live; `text` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_metrics(
    server: *const roomcast_server,
    text: *mut *mut c_char,
) -> roomcast_result {
    unsafe { with(server, |s| write_string(text, s.core.metrics())) }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString, c_void};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::ptr::{null, null_mut};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::client::*;
    use crate::config::*;
    use crate::event::*;

    const OK: roomcast_result = roomcast_result::ROOMCAST_RESULT_OK;

    struct Ptr(*mut roomcast_client);
    // SAFETY: a client handle is thread-safe (documented).
    unsafe impl Send for Ptr {}

    /// A TCP proxy to `port` whose connections `cut` shuts down at once.
    fn proxy(port: u16) -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = listener.local_addr().unwrap().port();
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let links = open.clone();
        std::thread::spawn(move || {
            for inbound in listener.incoming().map_while(std::result::Result::ok) {
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)) else { continue };
                links.lock().extend([inbound.try_clone().unwrap(), outbound.try_clone().unwrap()]);
                for (mut from, mut to) in
                    [(inbound.try_clone().unwrap(), outbound.try_clone().unwrap()), (outbound, inbound)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        (at, open)
    }

    fn cut(open: &Mutex<Vec<TcpStream>>) {
        for s in open.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// A started server on 127.0.0.1:0, configured by `configure` first; and its port.
    unsafe fn started(configure: impl FnOnce(*mut roomcast_server_config)) -> (*mut roomcast_server, u16) {
        let (mut config, mut server) = (null_mut(), null_mut());
        // SAFETY: a fresh config, freed once; a live server and a writable port.
        unsafe {
            assert_eq!(roomcast_server_config_new(&mut config), OK);
            configure(config);
            assert_eq!(roomcast_server_new(config, &mut server), OK);
            roomcast_server_config_free(config);
            assert_eq!(roomcast_server_start(server), OK);
            let mut port = 0u16;
            assert_eq!(roomcast_server_port(server, &mut port), OK);
            (server, port)
        }
    }

    /// Counts the events (and room messages) a C client gets.
    unsafe extern "C" fn count(
        user_data: *mut c_void,
        kind: *const c_char,
        _: *const c_char,
        _: *const c_char,
        _: usize,
    ) {
        // SAFETY: the test passes a live AtomicUsize; kind is NUL-terminated for the call.
        unsafe {
            if CStr::from_ptr(kind).to_bytes() == b"event" {
                (*user_data.cast::<AtomicUsize>()).fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// The next CONNECTED event of the queue: its socket id and whether it is recovered.
    unsafe fn connected(server: *mut roomcast_server) -> (String, bool) {
        // SAFETY: as the caller's.
        unsafe { next_of(server, roomcast_event_type::ROOMCAST_EVENT_CONNECTED, Duration::from_secs(10)) }
            .expect("no CONNECTED event")
    }

    /// The next event of type `kind` within `wait` (others are skipped): its
    /// socket id and whether it is recovered.
    unsafe fn next_of(
        server: *mut roomcast_server,
        kind: roomcast_event_type,
        wait: Duration,
    ) -> Option<(String, bool)> {
        let deadline = Instant::now() + wait;
        loop {
            if Instant::now() > deadline {
                return None;
            }
            let mut ev = null_mut();
            // SAFETY: a live server, a writable out-pointer, the event freed once.
            unsafe {
                if roomcast_server_next_event(server, &mut ev) != OK {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                let got = roomcast_event_get_type(ev);
                let (mut sid, mut recovered) = (null(), false);
                assert_eq!(roomcast_event_get_socket(ev, &mut sid, null_mut()), OK);
                assert_eq!(roomcast_event_is_recovered(ev, &mut recovered), OK);
                let sid = CStr::from_ptr(sid).to_str().unwrap().to_owned();
                roomcast_event_free(ev);
                if got == kind as u32 {
                    return Some((sid, recovered));
                }
                assert!(!recovered, "only CONNECTED events are recovered");
            }
        }
    }

    /// A JSON-protocol WebSocket to `port` that reads its handshake answer and nothing more.
    fn stalled_client(port: u16) -> TcpStream {
        use std::io::{Read, Write};
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        tcp
    }

    /// Metrics through the C API: the configured path serves the Prometheus
    /// text over HTTP, the same as `roomcast_server_metrics`.
    #[test]
    fn the_metrics_path_serves_prometheus_text() {
        use std::io::{Read, Write};
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers.
        unsafe {
            let (server, port) = started(|config| {
                assert_eq!(roomcast_server_config_set_metrics_path(config, c"/metrics".as_ptr()), OK);
            });
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut response = String::new();
            tcp.read_to_string(&mut response).unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            let body = response.split("\r\n\r\n").nth(1).unwrap();
            let mut text = null_mut();
            assert_eq!(roomcast_server_metrics(server, &mut text), OK);
            let direct = CStr::from_ptr(text).to_str().unwrap().to_owned();
            crate::ffi::roomcast_string_free(text);
            // A plain HTTP request is no connection of the protocols.
            assert!(body.lines().any(|l| l == "roomcast_connections 0"), "{body}");
            assert_eq!(
                direct.lines().filter(|l| l.starts_with("# HELP")).count(),
                body.lines().filter(|l| l.starts_with("# HELP")).count()
            );
            roomcast_server_free(server);
        }
    }

    /// Records the result and data of a C client's ack.
    unsafe extern "C" fn note_ack(user_data: *mut c_void, result: roomcast_result, json: *const c_char, len: usize) {
        // SAFETY: the test passes a live Mutex; `json` holds `len` bytes for the call when not NULL.
        unsafe {
            let data = (!json.is_null())
                .then(|| String::from_utf8_lossy(std::slice::from_raw_parts(json.cast::<u8>(), len)).into_owned());
            *(*user_data.cast::<Mutex<Option<(roomcast_result, Option<String>)>>>()).lock() = Some((result, data));
        }
    }

    /// At-least-once events through the C API: the C client with retries
    /// loses its connection while the server handles an event; it sends
    /// the event again on the next connection, and the server answers with
    /// the first run's outcome instead of handing the event over again.
    #[test]
    fn a_c_client_with_retries_has_its_event_handled_once_across_a_cut() {
        let acked: Mutex<Option<(roomcast_result, Option<String>)>> = Mutex::new(None);
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers; `acked` outlives the client.
        unsafe {
            let (server, port) = started(|config| {
                assert_eq!(roomcast_server_config_set_event_queue(config, true), OK);
            });
            let (via, open) = proxy(port);
            let url = CString::new(format!("ws://127.0.0.1:{via}/ws")).unwrap();
            let mut client = null_mut();
            assert_eq!(roomcast_client_new(url.as_ptr(), null(), &mut client), OK);
            assert_eq!(roomcast_client_set_reconnect(client, true, 20, 50, 0), OK);
            let bad = roomcast_client_set_retries(client, 5, 0);
            assert_eq!(bad, roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT);
            assert_eq!(roomcast_client_set_retries(client, 20, 150), OK);
            let c = Ptr(client);
            let connecting = std::thread::spawn(move || {
                let c = c;
                roomcast_client_connect(c.0)
            });
            connected(server);
            assert_eq!(connecting.join().unwrap(), OK);
            let user_data = (&raw const acked).cast_mut().cast();
            let sent =
                roomcast_client_emit_with_ack(client, c"slow".as_ptr(), c"7".as_ptr(), 1, Some(note_ack), user_data);
            assert_eq!(sent, OK);
            // Hold the MESSAGE unanswered, cut the connection, let the client retry meanwhile.
            let deadline = Instant::now() + Duration::from_secs(10);
            let held = loop {
                assert!(Instant::now() < deadline, "no MESSAGE event");
                let mut ev = null_mut();
                if roomcast_server_next_event(server, &mut ev) != OK {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                if roomcast_event_get_type(ev) == roomcast_event_type::ROOMCAST_EVENT_MESSAGE as u32 {
                    break ev;
                }
                roomcast_event_free(ev);
            };
            cut(&open);
            std::thread::sleep(Duration::from_millis(400));
            assert_eq!(roomcast_event_reply(held, c"[70]".as_ptr(), 4), OK, "to the connection that is gone");
            roomcast_event_free(held);
            let mut messages = 0;
            while acked.lock().is_none() {
                assert!(Instant::now() < deadline, "the retried event was not acked");
                let mut ev = null_mut();
                if roomcast_server_next_event(server, &mut ev) == OK {
                    messages +=
                        usize::from(roomcast_event_get_type(ev) == roomcast_event_type::ROOMCAST_EVENT_MESSAGE as u32);
                    roomcast_event_free(ev);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(*acked.lock(), Some((OK, Some("70".to_owned()))), "the first run's answer");
            assert_eq!(messages, 0, "the repeats were not handed over again");
            assert_eq!(roomcast_client_close(client), OK);
            roomcast_client_free(client);
            roomcast_server_free(server);
        }
    }

    /// Backpressure through the C API: a client that does not read shows in
    /// `roomcast_server_buffered_amount`; with the DROP policy it stays
    /// connected; `roomcast_server_notify_drained` gives one DRAINED event
    /// once it has read everything.
    #[test]
    fn a_stalled_client_shows_backpressure_and_drains() {
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers.
        unsafe {
            let (mut config, mut server) = (null_mut(), null_mut());
            assert_eq!(roomcast_server_config_new(&mut config), OK);
            assert_eq!(roomcast_server_config_set_outbound_queue(config, 64, 256 * 1024), OK);
            assert_eq!(
                roomcast_server_config_set_overflow(config, 9),
                roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT
            );
            assert_eq!(
                roomcast_server_config_set_overflow(config, roomcast_overflow::ROOMCAST_OVERFLOW_DROP as u32),
                OK
            );
            assert_eq!(roomcast_server_config_set_event_queue(config, true), OK);
            assert_eq!(roomcast_server_new(config, &mut server), OK);
            roomcast_server_config_free(config);
            assert_eq!(roomcast_server_start(server), OK);
            let mut port = 0u16;
            assert_eq!(roomcast_server_port(server, &mut port), OK);
            // Its CONNECT waits in the queue for `connected` to take it.
            let tcp = std::thread::spawn(move || stalled_client(port));
            let (sid, _) = connected(server);
            let tcp = tcp.join().unwrap();
            let csid = CString::new(sid.clone()).unwrap();
            let mut amount = usize::MAX;
            assert_eq!(roomcast_server_buffered_amount(server, csid.as_ptr(), &mut amount), OK);
            assert_eq!(amount, 0);
            let drained = roomcast_event_type::ROOMCAST_EVENT_DRAINED;
            assert_eq!(roomcast_server_notify_drained(server, csid.as_ptr()), OK);
            assert_eq!(next_of(server, drained, Duration::from_secs(10)).unwrap().0, sid, "nothing buffered: at once");

            let args = CString::new(format!("[{{\"blob\":\"{}\"}}]", "x".repeat(32 * 1024))).unwrap();
            let len = args.as_bytes().len();
            for _ in 0..400 {
                assert_eq!(
                    roomcast_server_emit(
                        server,
                        csid.as_ptr(),
                        null(),
                        c"msg".as_ptr(),
                        args.as_ptr(),
                        len,
                        null_mut()
                    ),
                    OK
                );
            }
            let mut sent = 0;
            let volatile = roomcast_server_emit_volatile(
                server,
                csid.as_ptr(),
                null(),
                c"tick".as_ptr(),
                c"[1]".as_ptr(),
                3,
                &mut sent,
            );
            assert_eq!((volatile, sent), (OK, 1));
            assert_eq!(roomcast_server_buffered_amount(server, csid.as_ptr(), &mut amount), OK, "still connected");
            assert!(amount > 128 * 1024, "near the bound: {amount}");
            assert_eq!(roomcast_server_notify_drained(server, csid.as_ptr()), OK);
            assert_eq!(next_of(server, drained, Duration::from_millis(100)), None, "not while it does not read");
            let reader = std::thread::spawn(move || {
                let _ = std::io::copy(&mut &tcp, &mut std::io::sink());
            });
            assert_eq!(next_of(server, drained, Duration::from_secs(10)).unwrap().0, sid);
            assert_eq!(roomcast_server_buffered_amount(server, csid.as_ptr(), &mut amount), OK);
            assert_eq!(amount, 0);
            let missing = roomcast_server_buffered_amount(server, c"nobody".as_ptr(), &mut amount);
            assert_eq!(missing, roomcast_result::ROOMCAST_RESULT_NOT_FOUND);
            assert_eq!(roomcast_server_notify_drained(server, c"nobody".as_ptr()), missing);
            roomcast_server_free(server);
            reader.join().unwrap();
        }
    }

    /// Connection state recovery through the C API: the C client's
    /// connection is cut, it resumes by itself, the server's CONNECTED
    /// event says recovered (same socket), and the missed events arrive.
    #[test]
    fn a_cut_c_client_resumes_its_session_and_gets_the_missed_events() {
        let got = AtomicUsize::new(0);
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers; `got` outlives the client.
        unsafe {
            let (server, port) = started(|config| {
                assert_eq!(roomcast_server_config_set_recovery(config, 30_000, true, 0), OK);
                assert_eq!(roomcast_server_config_set_event_queue(config, true), OK);
            });
            let (via, open) = proxy(port);

            let url = CString::new(format!("ws://127.0.0.1:{via}/ws")).unwrap();
            let mut client = null_mut();
            assert_eq!(roomcast_client_new(url.as_ptr(), null(), &mut client), OK);
            assert_eq!(roomcast_client_set_reconnect(client, true, 50, 100, 0), OK);
            assert_eq!(roomcast_client_on_event(client, Some(count), (&raw const got).cast_mut().cast()), OK);
            // The CONNECT event waits in the queue for `connected` to take it.
            let c = Ptr(client);
            let connecting = std::thread::spawn(move || {
                let c = c;
                roomcast_client_connect(c.0)
            });
            let (sid, recovered) = connected(server);
            assert_eq!(connecting.join().unwrap(), OK);
            assert!(!recovered);
            let mut back = false;
            assert_eq!(roomcast_client_recovered(client, &mut back), OK);
            assert!(!back);
            assert_eq!(roomcast_client_join(client, c"r".as_ptr()), OK);

            cut(&open);
            let (mut n, mut emitted) = (0usize, 0usize);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut emit = |n: &mut usize| {
                emitted += 1;
                roomcast_server_emit(server, c"r".as_ptr(), null(), c"tick".as_ptr(), c"[1]".as_ptr(), 3, n)
            };
            // Emitting until the server noticed the cut (the room is empty),
            // then three more while the client is away.
            loop {
                assert_eq!(emit(&mut n), OK);
                if n == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "the server did not notice the cut");
                std::thread::sleep(Duration::from_millis(10));
            }
            for _ in 0..3 {
                assert_eq!(emit(&mut n), OK);
            }
            assert_eq!(connected(server), (sid, true), "the same socket, recovered");
            while got.load(Ordering::SeqCst) < emitted {
                assert!(Instant::now() < deadline, "the missed events did not arrive");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(got.load(Ordering::SeqCst), emitted, "each event exactly once");
            assert_eq!(roomcast_client_recovered(client, &mut back), OK);
            assert!(back);
            assert_eq!(roomcast_client_close(client), OK);
            roomcast_client_free(client);
            roomcast_server_free(server);
        }
    }
}
