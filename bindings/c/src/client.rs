//! `roomcast_client`: roomcast's JSON-protocol client (rooms, events, acks,
//! reconnection with an offline queue) for C programs.

use std::ffi::{CString, c_char, c_void};
use std::time::Duration;

use parking_lot::Mutex;
use roomcast::client::{Client as Core, ClientEvent, ClientOptions, ClientState};
use serde_json::Value;

use crate::ffi::{
    LastError, RUNTIME, arg, block_on, bytes_arg, c_string, guard, opt_str_arg, str_arg, write_new, write_out,
    write_string,
};
use crate::result::roomcast_result;
use crate::server::{UserData, roomcast_ack_callback};

/// Called on a runtime thread for what the server sends: `kind` is
/// "event" (`name` the event, `json` its data), "message" (`name` the room,
/// `json` `{"from", "userId", "payload"}`), "user_joined" / "user_left"
/// (`name` the room, `json` `{"clientId", "userId", "member"}`; in a room
/// with presence `member` is the member, else null), "presence" (`name`
/// the room, `json` the member whose metadata changed), "error" (`name` the
/// code, `json` `{"message", "room"}`) or "state" (`name` connecting,
/// connected, reconnecting or disconnected). The strings live for the call.
pub type roomcast_client_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        kind: *const c_char,
        name: *const c_char,
        json: *const c_char,
        len: usize,
    ),
>;

type ClientFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char, usize);

/// A JSON-protocol client. Thread-safe. Made by `roomcast_client_new`,
/// connected by `roomcast_client_connect`, freed by `roomcast_client_free`.
pub struct roomcast_client {
    url: String,
    options: Mutex<ClientOptions>,
    callback: Mutex<Option<(ClientFn, UserData)>>,
    core: Mutex<Option<Core>>,
    last_error: LastError,
}

/// A client of `url` (ws://host:port/ws, or http://… for the same),
/// presenting `token` (NULL: none) as its credential. Not connected yet.
///
/// # Safety
/// `url` is NUL-terminated; `token` is NULL or NUL-terminated; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_new(
    url: *const c_char,
    token: *const c_char,
    out: *mut *mut roomcast_client,
) -> roomcast_result {
    let (url, token) = unsafe { (str_arg(url), opt_str_arg(token)) };
    guard(|| {
        let (url, token) = (url?.to_owned(), token?.map(str::to_owned));
        unsafe {
            write_new(out, || {
                Ok(roomcast_client {
                    url,
                    options: Mutex::new(ClientOptions { token, ..ClientOptions::default() }),
                    callback: Mutex::new(None),
                    core: Mutex::new(None),
                    last_error: LastError::default(),
                })
            })
        }
    })
}

unsafe fn with(
    client: *const roomcast_client,
    f: impl FnOnce(&roomcast_client) -> Result<(), roomcast_result>,
) -> roomcast_result {
    guard(|| f(unsafe { arg(client) }?))
}

/// Reconnection after a lost connection: `enabled`, the first delay and
/// the cap in milliseconds, and the attempts before giving up (0: forever).
/// Before `roomcast_client_connect`.
///
/// # Safety
/// `client` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_set_reconnect(
    client: *const roomcast_client,
    enabled: bool,
    delay_ms: u32,
    delay_max_ms: u32,
    max_attempts: u32,
) -> roomcast_result {
    unsafe {
        with(client, |c| {
            let mut o = c.options.lock();
            o.reconnect.enabled = enabled;
            o.reconnect.base = Duration::from_millis(delay_ms.into());
            o.reconnect.max = Duration::from_millis(delay_max_ms.into());
            o.reconnect.max_attempts = (max_attempts > 0).then_some(max_attempts);
            Ok(())
        })
    }
}

/// At-least-once events: with `retries` above 0, `roomcast_client_emit`
/// and `roomcast_client_emit_with_ack` ask for an answer and go out one at
/// a time, in order; one not answered within `ack_timeout_ms` is sent
/// again, up to `retries` more times, and one whose connection dropped is
/// sent again on the next. The server runs each such event once however
/// often it arrives. `ack_timeout_ms` (above 0) also bounds every other
/// wait for the server (joins, acks, pings). Before `roomcast_client_connect`.
///
/// # Safety
/// `client` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_set_retries(
    client: *const roomcast_client,
    retries: u32,
    ack_timeout_ms: u32,
) -> roomcast_result {
    unsafe {
        with(client, |c| {
            if ack_timeout_ms == 0 {
                return Err(c
                    .last_error
                    .set_text(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT, "ack_timeout_ms must be above 0"));
            }
            let mut o = c.options.lock();
            o.retries = retries;
            o.ack_timeout = Duration::from_millis(ack_timeout_ms.into());
            Ok(())
        })
    }
}

/// Set the callback for what the server sends (see `roomcast_client_callback`).
/// Before `roomcast_client_connect`.
///
/// # Safety
/// `client` is live; `user_data` is usable from runtime threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_on_event(
    client: *const roomcast_client,
    cb: roomcast_client_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    unsafe {
        with(client, |c| {
            *c.callback.lock() = cb.map(|cb| (cb, UserData(user_data)));
            Ok(())
        })
    }
}

/// Connect; returns once connected, or with the failure (UNAUTHORIZED,
/// REFUSED, IO, TIMEOUT; details in `roomcast_client_last_error`).
///
/// # Safety
/// `client` is live. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_connect(client: *const roomcast_client) -> roomcast_result {
    unsafe {
        with(client, |c| {
            let opts = c.options.lock().clone();
            let core = block_on(Core::connect(&c.url, opts))?.map_err(|e| c.last_error.set(&e))?;
            if let Some((cb, user_data)) = *c.callback.lock() {
                let mut events = core.events();
                RUNTIME.spawn(async move {
                    let user_data = user_data;
                    while let Ok(ev) = events.recv().await {
                        let (kind, name, json) = describe(ev);
                        let (kind, name, json) = (c_string(kind), c_string(name), c_string(json.to_string()));
                        call(cb, user_data, &kind, &name, &json);
                    }
                });
            }
            *c.core.lock() = Some(core);
            Ok(())
        })
    }
}

fn describe(ev: ClientEvent) -> (&'static str, String, Value) {
    match ev {
        ClientEvent::Event { event, data } => ("event", event, data),
        ClientEvent::Message { room, from, user_id, payload } => {
            ("message", room, serde_json::json!({"from": from, "userId": user_id, "payload": payload}))
        }
        ClientEvent::UserJoined { room, client_id, user_id, member } => {
            ("user_joined", room, serde_json::json!({"clientId": client_id, "userId": user_id, "member": member}))
        }
        ClientEvent::UserLeft { room, client_id, user_id, member } => {
            ("user_left", room, serde_json::json!({"clientId": client_id, "userId": user_id, "member": member}))
        }
        ClientEvent::Presence { room, member } => ("presence", room, member),
        ClientEvent::Error { code, message, room } => {
            ("error", code, serde_json::json!({"message": message, "room": room}))
        }
        ClientEvent::State(state) => ("state", state_name(state).to_owned(), Value::Null),
    }
}

fn state_name(state: ClientState) -> &'static str {
    match state {
        ClientState::Connecting => "connecting",
        ClientState::Connected => "connected",
        ClientState::Reconnecting => "reconnecting",
        _ => "disconnected",
    }
}

fn call(cb: ClientFn, user_data: UserData, kind: &CString, name: &CString, json: &CString) {
    // SAFETY: the application registered `cb` for this signature; the
    // strings live for the call.
    unsafe { cb(user_data.0, kind.as_ptr(), name.as_ptr(), json.as_ptr(), json.as_bytes().len()) }
}

fn connected(c: &roomcast_client) -> Result<Core, roomcast_result> {
    c.core.lock().clone().ok_or_else(|| {
        c.last_error.set_text(roomcast_result::ROOMCAST_RESULT_BAD_STATE, "not connected: call roomcast_client_connect")
    })
}

fn parse(c: &roomcast_client, json: &[u8]) -> Result<Value, roomcast_result> {
    serde_json::from_slice(json).map_err(|e| {
        c.last_error.set_text(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT, &format!("not JSON: {e}"))
    })
}

/// Join `room`; returns once the server confirmed (or refused it). Rooms
/// are rejoined after a reconnection.
///
/// # Safety
/// `client` is live; `room` is NUL-terminated. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_join(client: *const roomcast_client, room: *const c_char) -> roomcast_result {
    let room = unsafe { str_arg(room) };
    unsafe {
        with(client, |c| {
            let (core, room) = (connected(c)?, room?);
            block_on(core.join(room))?.map_err(|e| c.last_error.set(&e))
        })
    }
}

/// Leave `room`; returns once the server confirmed.
///
/// # Safety
/// As `roomcast_client_join`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_leave(client: *const roomcast_client, room: *const c_char) -> roomcast_result {
    let room = unsafe { str_arg(room) };
    unsafe {
        with(client, |c| {
            let (core, room) = (connected(c)?, room?);
            block_on(core.leave(room))?.map_err(|e| c.last_error.set(&e))
        })
    }
}

/// Relay `json` (a JSON value, `len` bytes) to the other members of `room`.
///
/// # Safety
/// `client` is live; `room` is NUL-terminated; `json` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_send(
    client: *const roomcast_client,
    room: *const c_char,
    json: *const c_char,
    len: usize,
) -> roomcast_result {
    let (room, json) = unsafe { (str_arg(room), bytes_arg(json.cast(), len)) };
    unsafe {
        with(client, |c| {
            let (core, payload) = (connected(c)?, parse(c, json?)?);
            core.send(room?, payload).map_err(|e| c.last_error.set(&e))
        })
    }
}

/// Send event `event` with data `json` (a JSON value, `len` bytes) to the
/// server's handlers (queued while reconnecting).
///
/// # Safety
/// `client` is live; `event` is NUL-terminated; `json` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_emit(
    client: *const roomcast_client,
    event: *const c_char,
    json: *const c_char,
    len: usize,
) -> roomcast_result {
    let (event, json) = unsafe { (str_arg(event), bytes_arg(json.cast(), len)) };
    unsafe {
        with(client, |c| {
            let (core, data) = (connected(c)?, parse(c, json?)?);
            core.emit(event?, data).map_err(|e| c.last_error.set(&e))
        })
    }
}

/// Send `event` and have `cb` called (on a runtime thread) with the
/// server's ack: OK with its data as JSON, or TIMEOUT (after the ack
/// timeout, 10 s unless `roomcast_client_set_retries` says otherwise; with
/// retries, after the last try) / the server's error.
///
/// # Safety
/// As `roomcast_client_emit`; `user_data` is usable from runtime threads until `cb` ran.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_emit_with_ack(
    client: *const roomcast_client,
    event: *const c_char,
    json: *const c_char,
    len: usize,
    cb: roomcast_ack_callback,
    user_data: *mut c_void,
) -> roomcast_result {
    let (event, json) = unsafe { (str_arg(event), bytes_arg(json.cast(), len)) };
    unsafe {
        with(client, |c| {
            let cb = cb.ok_or(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT)?;
            let (core, data, event) = (connected(c)?, parse(c, json?)?, event?.to_owned());
            let user_data = UserData(user_data);
            RUNTIME.spawn(async move {
                let user_data = user_data;
                let (result, reply) = match core.emit_with_ack(&event, data).await {
                    Ok(v) => (roomcast_result::ROOMCAST_RESULT_OK, Some(c_string(v.to_string()))),
                    Err(e) => (roomcast_result::from(e.kind()), None),
                };
                crate::server::call_ack(cb, user_data, result, reply.as_ref());
            });
            Ok(())
        })
    }
}

/// This client's id while connected, into `*id` (free with `roomcast_string_free`).
///
/// # Safety
/// `client` is live; `id` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_id(client: *const roomcast_client, id: *mut *mut c_char) -> roomcast_result {
    unsafe {
        with(client, |c| {
            let known = connected(c)?.id().ok_or(roomcast_result::ROOMCAST_RESULT_BAD_STATE)?;
            write_string(id, known)
        })
    }
}

/// Whether the current connection took up the previous one's session (the
/// server has connection state recovery on: the client resumed with its
/// token and last offset, and got the messages it missed).
///
/// # Safety
/// `client` is live; `recovered` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_recovered(
    client: *const roomcast_client,
    recovered: *mut bool,
) -> roomcast_result {
    unsafe { with(client, |c| write_out(recovered, connected(c)?.recovered())) }
}

/// Close the connection (no reconnection); returns once closed.
///
/// # Safety
/// `client` is live. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_close(client: *const roomcast_client) -> roomcast_result {
    unsafe {
        with(client, |c| {
            if let Some(core) = c.core.lock().take() {
                block_on(core.close())?;
            }
            Ok(())
        })
    }
}

/// The detail of the last failed call on `client` (never NULL; owned by
/// the client, valid until its next call).
///
/// # Safety
/// `client` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_last_error(client: *const roomcast_client) -> *const c_char {
    // SAFETY: NULL or live by contract.
    unsafe { client.as_ref() }.map_or(c"NULL client".as_ptr(), |c| c.last_error.as_ptr())
}

/// Close (if connected) and free the client (NULL is ignored).
///
/// # Safety
/// `client` came from `roomcast_client_new` and is not used again. From a callback it does nothing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_client_free(client: *mut roomcast_client) {
    // From a callback it would wait on its own runtime: the handle stays as it is.
    if client.is_null() || tokio::runtime::Handle::try_current().is_ok() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by Box::into_raw in roomcast_client_new.
        let client = unsafe { Box::from_raw(client) };
        if let Some(core) = client.core.lock().take() {
            block_on(core.close())?;
        }
        Ok(())
    });
}
