//! Cluster queries of a `roomcast_server`: the sockets, rooms and nodes of
//! every server on the same Redis, acts on remote sockets, broadcasts with
//! acks collected on every node, and events between servers. Each waits
//! for the other nodes' answers (at most the request timeout): a node that
//! does not answer in time is named in the answer's "missing" list rather
//! than failing the call. Without Redis they answer for this server alone,
//! always complete.

use std::ffi::c_char;
use std::time::Duration;

use roomcast::{BroadcastOperator, Partial};
use serde_json::{Value, json};

use crate::ffi::{args_to_value, block_on, bytes_arg, opt_str_arg, out_arg, str_arg, write_out, write_string};
use crate::result::roomcast_result;
use crate::server::{core_err, parse_args, roomcast_server, to_room, with};

/// The sockets in `room` (NULL: every socket) not in `except` (NULL: none).
fn select(s: &roomcast_server, room: Option<&str>, except: Option<&str>) -> BroadcastOperator {
    let op = to_room(s, room);
    match except {
        Some(except) => op.except(except),
        None => op,
    }
}

/// A partial answer as JSON: `{"value": ..., "missing": [node ids]}`, in that order.
fn partial_json(value: Value, missing: Vec<String>) -> String {
    format!(r#"{{"value":{value},"missing":{}}}"#, Value::from(missing))
}

/// A count through `count`, the nodes that did not answer through
/// `missing_json` (optional).
///
/// # Safety
/// `count` is writable; `missing_json` is NULL or writable.
unsafe fn write_count(
    answer: Partial<usize>,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> Result<(), roomcast_result> {
    unsafe { write_out(count, answer.value) }?;
    if !missing_json.is_null() {
        unsafe { write_string(missing_json, Value::from(answer.missing).to_string()) }?;
    }
    Ok(())
}

/// The sockets in `room` (NULL: every socket) except those in `except`
/// (NULL: none), on every node, into `*sockets_json` (free with
/// `roomcast_string_free`): `{"value": [socket, ...], "missing": [node id,
/// ...]}`, each socket `{"id", "node" (null without Redis), "namespace",
/// "userId" (or null), "rooms" (its own room first), "data", "handshake":
/// {"headers": {name: value}, "query": [[key, value], ...], "address",
/// "path", "auth"}}`. "missing" lists the nodes that did not answer within
/// the request timeout (their sockets are absent); empty when complete.
///
/// # Safety
/// `server` is live; `room` and `except` are NULL or NUL-terminated;
/// `sockets_json` is writable. From a callback it returns BAD_STATE (it
/// waits for the other nodes).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_fetch_sockets(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    sockets_json: *mut *mut c_char,
) -> roomcast_result {
    let (room, except) = unsafe { (opt_str_arg(room), opt_str_arg(except)) };
    unsafe {
        with(server, |s| {
            out_arg(sockets_json)?;
            let op = select(s, room?, except?);
            let found = block_on(op.fetch_sockets())?.map_err(core_err(s))?;
            let sockets = serde_json::to_value(&found.value).map_err(|_| roomcast_result::ROOMCAST_RESULT_INTERNAL)?;
            write_string(sockets_json, partial_json(sockets, found.missing))
        })
    }
}

/// Make the sockets in `room` (NULL: every socket) except those in
/// `except` (NULL: none), on every node, join `join_room`. `*count` gets
/// how many did; `*missing_json` (optional, NULL: not wanted; free with
/// `roomcast_string_free`) the JSON array of the nodes that did not answer
/// in time ("[]" when complete).
///
/// # Safety
/// `server` is live; `room` and `except` are NULL or NUL-terminated;
/// `join_room` is NUL-terminated; `count` is writable; `missing_json` is
/// NULL or writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_sockets_join(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    join_room: *const c_char,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe { sockets_move(server, room, except, join_room, true, count, missing_json) }
}

/// Make the selected sockets on every node leave `leave_room`; as
/// `roomcast_server_sockets_join`.
///
/// # Safety
/// As `roomcast_server_sockets_join`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_sockets_leave(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    leave_room: *const c_char,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe { sockets_move(server, room, except, leave_room, false, count, missing_json) }
}

/// `roomcast_server_sockets_join` (`join`) or `_leave`.
///
/// # Safety
/// As `roomcast_server_sockets_join`.
unsafe fn sockets_move(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    target: *const c_char,
    join: bool,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> roomcast_result {
    let (room, except, target) = unsafe { (opt_str_arg(room), opt_str_arg(except), str_arg(target)) };
    unsafe {
        with(server, |s| {
            out_arg(count)?;
            let (op, target) = (select(s, room?, except?), target?);
            let moved = if join { block_on(op.sockets_join(target)) } else { block_on(op.sockets_leave(target)) };
            write_count(moved?.map_err(core_err(s))?, count, missing_json)
        })
    }
}

/// Disconnect the selected sockets on every node (`close`: their whole
/// connections, as socket.io's `disconnectSockets(true)`); `*count` gets
/// how many, `*missing_json` (optional) as `roomcast_server_sockets_join`.
///
/// # Safety
/// As `roomcast_server_sockets_join`, without a room to join.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_disconnect_sockets(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    close: bool,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> roomcast_result {
    let (room, except) = unsafe { (opt_str_arg(room), opt_str_arg(except)) };
    unsafe {
        with(server, |s| {
            out_arg(count)?;
            let op = select(s, room?, except?);
            let answer = block_on(op.disconnect_sockets(close))?.map_err(core_err(s))?;
            write_count(answer, count, missing_json)
        })
    }
}

/// The rooms joined by name (not the sockets' own rooms) on every node,
/// sorted, into `*rooms_json` (free with `roomcast_string_free`):
/// `{"value": ["room", ...], "missing": [node id, ...]}`.
///
/// # Safety
/// `server` is live; `rooms_json` is writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_rooms_everywhere(
    server: *const roomcast_server,
    rooms_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            out_arg(rooms_json)?;
            let rooms = block_on(s.core.of("/").rooms_everywhere())?.map_err(core_err(s))?;
            write_string(rooms_json, partial_json(Value::from(rooms.value), rooms.missing))
        })
    }
}

/// The rooms joined by name on this server only, sorted, as a JSON array
/// into `*rooms_json` (free with `roomcast_string_free`). It does not wait:
/// callable from callbacks.
///
/// # Safety
/// `server` is live; `rooms_json` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_named_rooms(
    server: *const roomcast_server,
    rooms_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            out_arg(rooms_json)?;
            let mut rooms = s.core.of("/").named_rooms();
            rooms.sort();
            write_string(rooms_json, Value::from(rooms).to_string())
        })
    }
}

/// How many sockets are connected on every node: `*count`, and
/// `*missing_json` (optional) as `roomcast_server_sockets_join`.
///
/// # Safety
/// `server` is live; `count` is writable; `missing_json` is NULL or
/// writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_socket_count_everywhere(
    server: *const roomcast_server,
    count: *mut usize,
    missing_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            out_arg(count)?;
            let answer = block_on(s.core.of("/").len_everywhere())?.map_err(core_err(s))?;
            write_count(answer, count, missing_json)
        })
    }
}

/// The ids of the cluster's nodes registered in Redis (this one included),
/// sorted, as a JSON array into `*nodes_json` (free with
/// `roomcast_string_free`); "[]" without Redis.
///
/// # Safety
/// `server` is live; `nodes_json` is writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_nodes(
    server: *const roomcast_server,
    nodes_json: *mut *mut c_char,
) -> roomcast_result {
    unsafe {
        with(server, |s| {
            out_arg(nodes_json)?;
            let nodes = block_on(s.core.nodes())?.map_err(core_err(s))?;
            write_string(nodes_json, Value::from(nodes).to_string())
        })
    }
}

/// Send `event` with `args_json` (a JSON array of arguments, `len` bytes)
/// to the selected sockets on every node (`room`, `except` as
/// `roomcast_server_fetch_sockets`) and wait for each one's ack, at most
/// `timeout_ms` (the call itself waits up to `timeout_ms` plus the request
/// timeout). `*replies_json` (free with `roomcast_string_free`) gets
/// `{"value": [{"sid", "reply": [args...]} or {"sid", "error":
/// "ERR_TIMEOUT" | "ERR_CLOSED" | ...}, ...], "missing": [node id, ...]}`.
///
/// # Safety
/// `server` is live; `room` and `except` are NULL or NUL-terminated;
/// `event` is NUL-terminated; `args_json` points to `len` bytes;
/// `replies_json` is writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_emit_with_ack_everywhere(
    server: *const roomcast_server,
    room: *const c_char,
    except: *const c_char,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    timeout_ms: u32,
    replies_json: *mut *mut c_char,
) -> roomcast_result {
    let (room, except) = unsafe { (opt_str_arg(room), opt_str_arg(except)) };
    let (event, json) = unsafe { (str_arg(event), bytes_arg(args_json.cast(), len)) };
    unsafe {
        with(server, |s| {
            out_arg(replies_json)?;
            let (op, event, args) = (select(s, room?, except?), event?, parse_args(s, json?)?);
            let timeout = Duration::from_millis(timeout_ms.into());
            let acks = block_on(op.emit_with_ack_everywhere(event, args, timeout))?.map_err(core_err(s))?;
            let replies: Vec<Value> = acks
                .value
                .into_iter()
                .map(|ack| match ack.reply {
                    Ok(args) => json!({ "sid": ack.sid, "reply": args }),
                    Err(code) => json!({ "sid": ack.sid, "error": code }),
                })
                .collect();
            write_string(replies_json, partial_json(Value::from(replies), acks.missing))
        })
    }
}

/// Send `event` with `args_json` (a JSON array of arguments, `len` bytes)
/// to every other node's `roomcast_server_on_server_event` callback
/// (socket.io's `serverSideEmit` with acks) and wait for their replies, at
/// most the request timeout. `*replies_json` (free with
/// `roomcast_string_free`) gets `{"value": [{"node": id, "reply": [args...]},
/// ...], "missing": [node id, ...]}`; a node without a handler for `event`
/// answers nothing (it is neither in "value" nor "missing"). Without Redis:
/// `{"value": [], "missing": []}`, nothing sent.
///
/// # Safety
/// `server` is live; `event` is NUL-terminated; `args_json` points to `len`
/// bytes; `replies_json` is writable. From a callback it returns BAD_STATE.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_server_emit(
    server: *const roomcast_server,
    event: *const c_char,
    args_json: *const c_char,
    len: usize,
    replies_json: *mut *mut c_char,
) -> roomcast_result {
    let (event, json) = unsafe { (str_arg(event), bytes_arg(args_json.cast(), len)) };
    unsafe {
        with(server, |s| {
            out_arg(replies_json)?;
            let (event, args) = (event?, parse_args(s, json?)?);
            let answers = block_on(s.core.server_emit(event, args))?.map_err(core_err(s))?;
            let replies: Vec<Value> = answers
                .value
                .iter()
                .map(|(node, args)| json!({ "node": node, "reply": args_to_value(args) }))
                .collect();
            write_string(replies_json, partial_json(Value::from(replies), answers.missing))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::ptr::{null, null_mut};
    use std::time::Instant;

    use super::*;
    use crate::config::*;
    use crate::event::*;
    use crate::ffi::roomcast_string_free;
    use crate::server::*;

    const OK: roomcast_result = roomcast_result::ROOMCAST_RESULT_OK;

    /// A redis-server of the test's own on a free port, killed when dropped.
    struct Redis(Child, u16);

    impl Redis {
        fn start() -> Redis {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (make deps-redis)");
            let redis = Redis(child, port);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !redis.ping() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            redis
        }

        fn ping(&self) -> bool {
            let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.1)) else { return false };
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let mut buf = [0u8; 7];
            s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A started server in the cluster on `url` (with an event queue or callbacks).
    unsafe fn node(url: &CStr, queue: bool) -> *mut roomcast_server {
        let (mut config, mut server) = (null_mut(), null_mut());
        unsafe {
            assert_eq!(roomcast_server_config_new(&mut config), OK);
            assert_eq!(roomcast_server_config_set_redis(config, url.as_ptr(), c"c-test".as_ptr(), 1000), OK);
            assert_eq!(roomcast_server_config_set_redis_request_timeout(config, 2000), OK);
            assert_eq!(roomcast_server_config_set_event_queue(config, queue), OK);
            assert_eq!(roomcast_server_new(config, &mut server), OK);
            roomcast_server_config_free(config);
            assert_eq!(roomcast_server_start(server), OK);
        }
        server
    }

    /// Take `*out` as a Rust string and free it.
    unsafe fn take(out: *mut c_char) -> String {
        let s = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_owned();
        unsafe { roomcast_string_free(out) };
        s
    }

    #[derive(Clone, Copy)]
    struct Ptr(*mut roomcast_server);
    // SAFETY: a server handle is thread-safe (documented).
    unsafe impl Send for Ptr {}

    /// Server events through an event queue: taken on another thread and
    /// answered there (or freed unanswered: `[]`); the node list.
    #[test]
    fn server_events_reach_an_event_queue_and_its_replies_come_back() {
        let redis = Redis::start();
        let url = CString::new(format!("redis://127.0.0.1:{}", redis.1)).unwrap();
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers.
        unsafe {
            let (asker, queued) = (node(&url, false), node(&url, true));
            assert_eq!(roomcast_server_on_server_event(queued, c"hello".as_ptr(), None, null_mut()), OK);
            assert_eq!(roomcast_server_on_server_event(queued, c"ignored".as_ptr(), None, null_mut()), OK);
            let (mut out, mut queued_id) = (null_mut(), null_mut());
            assert_eq!(roomcast_server_node_id(queued, &mut queued_id), OK);
            let queued_id = take(queued_id);

            // The queue's owner: answers "hello" with its arguments and a word, frees "ignored" unanswered.
            let owner = Ptr(queued);
            let answering = std::thread::spawn(move || {
                let owner = owner;
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut seen = Vec::new();
                while seen.len() < 2 && Instant::now() < deadline {
                    let mut ev = null_mut();
                    if roomcast_server_next_event(owner.0, &mut ev) != OK {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    assert_eq!(roomcast_event_get_type(ev), roomcast_event_type::ROOMCAST_EVENT_SERVER_EVENT as u32);
                    assert!(roomcast_event_wants_ack(ev));
                    let (mut name, mut data, mut sid) = (null(), null(), null());
                    assert_eq!(roomcast_event_get_name(ev, &mut name), OK);
                    assert_eq!(roomcast_event_get_data(ev, &mut data, null_mut()), OK);
                    assert_eq!(roomcast_event_get_socket(ev, &mut sid, null_mut()), OK);
                    let (name, data) = (CStr::from_ptr(name).to_str().unwrap(), CStr::from_ptr(data).to_str().unwrap());
                    assert_eq!(CStr::from_ptr(sid).to_bytes(), b"");
                    if name == "hello" {
                        let reply = format!("[{data}, \"hi\"]");
                        assert_eq!(roomcast_event_reply(ev, reply.as_ptr().cast(), reply.len()), OK);
                        let again = roomcast_event_reply(ev, reply.as_ptr().cast(), reply.len());
                        assert_eq!(again, roomcast_result::ROOMCAST_RESULT_BAD_STATE);
                    }
                    seen.push(name.to_owned());
                    roomcast_event_free(ev);
                }
                seen
            });

            let args = r#"[{"n":1}]"#;
            let emit = |event: &CStr, out: &mut *mut c_char| {
                roomcast_server_server_emit(asker, event.as_ptr(), args.as_ptr().cast(), args.len(), out)
            };
            assert_eq!(emit(c"hello", &mut out), OK);
            let expected = format!(r#"{{"value":[{{"node":"{queued_id}","reply":[[{{"n":1}}],"hi"]}}],"missing":[]}}"#);
            assert_eq!(take(out), expected);
            assert_eq!(emit(c"ignored", &mut out), OK);
            assert_eq!(take(out), format!(r#"{{"value":[{{"node":"{queued_id}","reply":[]}}],"missing":[]}}"#));
            // No node handles it: no reply, nobody missing.
            assert_eq!(emit(c"unknown", &mut out), OK);
            assert_eq!(take(out), r#"{"value":[],"missing":[]}"#);
            assert_eq!(answering.join().unwrap(), ["hello", "ignored"]);

            assert_eq!(roomcast_server_nodes(asker, &mut out), OK);
            let nodes: Vec<String> = serde_json::from_str(&take(out)).unwrap();
            assert_eq!(nodes.len(), 2);
            assert!(nodes.contains(&queued_id));
            let mut stats = roomcast_stats::default();
            assert_eq!(roomcast_server_stats(asker, &mut stats), OK);
            assert_eq!(stats.cluster_request_timeouts, 0);
            roomcast_server_free(queued);
            roomcast_server_free(asker);
        }
    }

    /// Counts the "event" callbacks a C client gets.
    unsafe extern "C" fn count_events(
        user_data: *mut std::ffi::c_void,
        kind: *const c_char,
        _name: *const c_char,
        _json: *const c_char,
        _len: usize,
    ) {
        // SAFETY: the test passes a live AtomicUsize; kind is NUL-terminated for the call.
        unsafe {
            if CStr::from_ptr(kind).to_bytes() == b"event" {
                (*user_data.cast::<std::sync::atomic::AtomicUsize>()).fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    fn cluster_in(server: *mut roomcast_server) -> u64 {
        let mut stats = roomcast_stats::default();
        // SAFETY: a live server and a writable struct.
        assert_eq!(unsafe { roomcast_server_stats(server, &mut stats) }, OK);
        stats.cluster_messages_in
    }

    /// Interest-based routing seen through the C API's stats: a node
    /// receives a room's broadcasts from Redis only while it hosts a member.
    #[test]
    fn a_node_receives_a_rooms_broadcasts_only_while_it_hosts_a_member() {
        use crate::client::*;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let redis = Redis::start();
        let url = CString::new(format!("redis://127.0.0.1:{}", redis.1)).unwrap();
        let got = AtomicUsize::new(0);
        // SAFETY: live handles, NUL-terminated strings, writable out-pointers; `got` outlives the client.
        unsafe {
            let (a, b) = (node(&url, false), node(&url, false));
            let mut port = 0u16;
            assert_eq!(roomcast_server_port(b, &mut port), OK);
            let ws = CString::new(format!("ws://127.0.0.1:{port}/ws")).unwrap();
            let mut client = null_mut();
            assert_eq!(roomcast_client_new(ws.as_ptr(), null(), &mut client), OK);
            let user_data = (&raw const got).cast_mut().cast();
            assert_eq!(roomcast_client_on_event(client, Some(count_events), user_data), OK);
            assert_eq!(roomcast_client_connect(client), OK);
            std::thread::sleep(Duration::from_millis(200));

            let before = cluster_in(b);
            let mut sent = 0usize;
            let tick = |sent: &mut usize| {
                roomcast_server_emit(a, c"quiet".as_ptr(), null(), c"tick".as_ptr(), c"[1]".as_ptr(), 3, sent)
            };
            for _ in 0..10 {
                assert_eq!(tick(&mut sent), OK);
            }
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(cluster_in(b), before, "b hosts no member of the room: none of its traffic");

            assert_eq!(roomcast_client_join(client, c"quiet".as_ptr()), OK); // subscribed before it returns
            let joined = cluster_in(b);
            assert_eq!(tick(&mut sent), OK);
            let deadline = Instant::now() + Duration::from_secs(5);
            while got.load(Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "the broadcast did not cross");
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(cluster_in(b), joined + 1);
            assert_eq!(roomcast_client_close(client), OK);
            roomcast_client_free(client);
            roomcast_server_free(b);
            roomcast_server_free(a);
        }
    }
}
