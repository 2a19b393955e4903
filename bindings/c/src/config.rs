//! `roomcast_server_config`: settings gathered before a server is made.

use std::ffi::c_char;
use std::time::Duration;

use crate::ffi::{arg, guard, opt_str_arg, str_arg, write_new};
use crate::result::roomcast_result;

/// Server settings. Made by `roomcast_server_config_new`, freed by
/// `roomcast_server_config_free`; not thread-safe (configure, then build).
pub struct roomcast_server_config {
    pub(crate) listen: String,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) ping_timeout: Option<Duration>,
    pub(crate) max_payload: Option<usize>,
    pub(crate) max_connections: Option<(usize, usize)>,
    pub(crate) connection_rate: Option<roomcast::ConnectionRate>,
    pub(crate) outbound_queue: Option<(usize, usize)>,
    pub(crate) overflow: roomcast::Overflow,
    pub(crate) metrics_path: Option<String>,
    pub(crate) origins: Vec<String>,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) event_queue: bool,
    pub(crate) redis: Option<roomcast::RedisConfig>,
    pub(crate) redis_request_timeout: Option<Duration>,
    pub(crate) recovery: Option<roomcast::RecoveryConfig>,
}

/// A config with the defaults: listen on 127.0.0.1:0 (a free port), ping
/// every 25 s with a 20 s timeout, 1 MB messages, any origin, no JWT,
/// callbacks (no event queue). `*out` receives it.
///
/// # Safety
/// `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_new(out: *mut *mut roomcast_server_config) -> roomcast_result {
    guard(|| unsafe {
        write_new(out, || {
            Ok(roomcast_server_config {
                listen: "127.0.0.1:0".to_owned(),
                ping_interval: None,
                ping_timeout: None,
                max_payload: None,
                max_connections: None,
                connection_rate: None,
                outbound_queue: None,
                overflow: roomcast::Overflow::Close,
                metrics_path: None,
                origins: Vec::new(),
                jwt_secret: None,
                event_queue: false,
                redis: None,
                redis_request_timeout: None,
                recovery: None,
            })
        })
    })
}

/// Free a config (NULL is ignored). Servers made from it keep their copy.
///
/// # Safety
/// `config` came from `roomcast_server_config_new` and is not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_free(config: *mut roomcast_server_config) {
    if !config.is_null() {
        // SAFETY: made by Box::into_raw in roomcast_server_config_new.
        drop(unsafe { Box::from_raw(config) });
    }
}

/// Run `f` on the config behind `config`.
unsafe fn with(
    config: *mut roomcast_server_config,
    f: impl FnOnce(&mut roomcast_server_config) -> Result<(), roomcast_result>,
) -> roomcast_result {
    guard(|| {
        // SAFETY: a live config, not shared across threads (documented).
        let config = unsafe { config.as_mut() }.ok_or(roomcast_result::ROOMCAST_RESULT_NULL_ARGUMENT)?;
        f(config)
    })
}

/// Listen on `addr`, "host:port" (port 0 picks a free one; see
/// `roomcast_server_port`).
///
/// # Safety
/// `config` is live; `addr` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_listen(
    config: *mut roomcast_server_config,
    addr: *const c_char,
) -> roomcast_result {
    let addr = unsafe { str_arg(addr) };
    unsafe {
        with(config, |c| {
            c.listen = addr?.to_owned();
            Ok(())
        })
    }
}

/// Ping interval and timeout in milliseconds (both above 0).
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_ping(
    config: *mut roomcast_server_config,
    interval_ms: u32,
    timeout_ms: u32,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            if interval_ms == 0 || timeout_ms == 0 {
                return Err(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT);
            }
            c.ping_interval = Some(Duration::from_millis(interval_ms.into()));
            c.ping_timeout = Some(Duration::from_millis(timeout_ms.into()));
            Ok(())
        })
    }
}

/// The largest message a client may send, in bytes.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_max_payload(
    config: *mut roomcast_server_config,
    bytes: usize,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            c.max_payload = Some(bytes);
            Ok(())
        })
    }
}

/// At most `total` connections at once, and `per_ip` from one address
/// (both above 0); beyond them new connections are refused with 503.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_max_connections(
    config: *mut roomcast_server_config,
    total: usize,
    per_ip: usize,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            if total == 0 || per_ip == 0 {
                return Err(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT);
            }
            c.max_connections = Some((total, per_ip));
            Ok(())
        })
    }
}

/// At most `per_sec` new connections per second from one address, and
/// `burst` at once (0: twice `per_sec`); beyond them new connections are
/// refused with 429. An Engine.IO handshake or a WebSocket counts, polls of
/// an open session do not. `roomcast_server_new` refuses a rate that is not
/// positive with `ROOMCAST_RESULT_CONFIG`.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_connection_rate(
    config: *mut roomcast_server_config,
    per_sec: f64,
    burst: u32,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            let rate = roomcast::ConnectionRate::new(per_sec);
            c.connection_rate = Some(if burst == 0 { rate } else { rate.burst(burst) });
            Ok(())
        })
    }
}

/// Each connection's outgoing queue: at most `messages` frames and `bytes`
/// bytes waiting (both above 0). When a client reads too slowly to keep
/// under them, volatile emits are dropped and the overflow policy decides
/// for the rest (`roomcast_server_config_set_overflow`).
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_outbound_queue(
    config: *mut roomcast_server_config,
    messages: usize,
    bytes: usize,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            if messages == 0 || bytes == 0 {
                return Err(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT);
            }
            c.outbound_queue = Some((messages, bytes));
            Ok(())
        })
    }
}

/// What a full outgoing queue does with an emit that is not volatile.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum roomcast_overflow {
    /// Disconnect the slow client (the default): it reconnects and, with
    /// recovery, gets what it missed.
    ROOMCAST_OVERFLOW_CLOSE = 0,
    /// Drop the emit and keep the client (it misses the emit).
    ROOMCAST_OVERFLOW_DROP = 1,
}

/// Choose what a full outgoing queue does (`overflow` is a
/// `roomcast_overflow`; INVALID_ARGUMENT for another value).
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_overflow(
    config: *mut roomcast_server_config,
    overflow: u32,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            c.overflow = match overflow {
                x if x == roomcast_overflow::ROOMCAST_OVERFLOW_CLOSE as u32 => roomcast::Overflow::Close,
                x if x == roomcast_overflow::ROOMCAST_OVERFLOW_DROP as u32 => roomcast::Overflow::Drop,
                _ => return Err(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT),
            };
            Ok(())
        })
    }
}

/// Serve Prometheus metrics at `path` (e.g. "/metrics"; NULL: not at all,
/// the default): connections, sockets, rooms and presence members per
/// namespace, messages and bytes, drops, ack timeouts, recovery hits and
/// misses, Redis publish latency and errors, cluster request timeouts.
///
/// # Safety
/// `config` is live; `path` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_metrics_path(
    config: *mut roomcast_server_config,
    path: *const c_char,
) -> roomcast_result {
    let path = unsafe { opt_str_arg(path) };
    unsafe {
        with(config, |c| {
            c.metrics_path = path?.map(str::to_owned);
            Ok(())
        })
    }
}

/// Allow browser pages of `origin` (e.g. "https://app.example"); once one
/// is added, other origins are refused. Call once per origin.
///
/// # Safety
/// `config` is live; `origin` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_add_allowed_origin(
    config: *mut roomcast_server_config,
    origin: *const c_char,
) -> roomcast_result {
    let origin = unsafe { str_arg(origin) };
    unsafe {
        with(config, |c| {
            c.origins.push(origin?.to_owned());
            Ok(())
        })
    }
}

/// Verify clients' HS256 JWTs (`auth.token` or the `token` query
/// parameter) with `secret`: the token's `sub` becomes the user id.
///
/// # Safety
/// `config` is live; `secret` is a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_jwt_secret(
    config: *mut roomcast_server_config,
    secret: *const c_char,
) -> roomcast_result {
    let secret = unsafe { str_arg(secret) };
    unsafe {
        with(config, |c| {
            c.jwt_secret = Some(secret?.to_owned());
            Ok(())
        })
    }
}

/// Deliver connects, events and disconnects through an event queue
/// (`roomcast_server_event_fd` / `roomcast_server_next_event`) instead of
/// callbacks.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_event_queue(
    config: *mut roomcast_server_config,
    enabled: bool,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            c.event_queue = enabled;
            Ok(())
        })
    }
}

/// Join a cluster over Redis at `url` (`redis://host:port`, `rediss://`,
/// `redis-cluster://`, `redis-sentinel://`): broadcasts, rooms, presence and
/// `roomcast_server_is_online` then span every server on the same Redis
/// and `prefix` (NULL: "roomcast"). A node whose heartbeat is older than
/// `node_ttl_ms` (0: 10 000; at least 300) is dead: another node removes
/// its members and calls its node-lost callback. The URL and TTL are
/// checked by `roomcast_server_new` (CONFIG); `roomcast_server_start` waits
/// (at most 5 s) for Redis before serving. Cluster queries wait for the
/// other nodes at most the request timeout
/// (`roomcast_server_config_set_redis_request_timeout`, default 5 s).
///
/// # Safety
/// `config` is live; `url` is NUL-terminated; `prefix` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_redis(
    config: *mut roomcast_server_config,
    url: *const c_char,
    prefix: *const c_char,
    node_ttl_ms: u32,
) -> roomcast_result {
    let (url, prefix) = unsafe { (str_arg(url), opt_str_arg(prefix)) };
    unsafe {
        with(config, |c| {
            let mut redis = roomcast::RedisConfig::new(url?);
            if let Some(prefix) = prefix? {
                redis.prefix = prefix.to_owned();
            }
            if node_ttl_ms > 0 {
                redis.node_ttl = Duration::from_millis(node_ttl_ms.into());
            }
            c.redis = Some(redis);
            Ok(())
        })
    }
}

/// How long a cluster query (`roomcast_server_fetch_sockets`,
/// `roomcast_server_server_emit`, …) waits for the other nodes' answers,
/// in milliseconds (above 0; default 5000). A node that does not answer in
/// time is listed as missing in the answer. Applies with
/// `roomcast_server_config_set_redis`, before or after it.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_redis_request_timeout(
    config: *mut roomcast_server_config,
    timeout_ms: u32,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            if timeout_ms == 0 {
                return Err(roomcast_result::ROOMCAST_RESULT_INVALID_ARGUMENT);
            }
            c.redis_request_timeout = Some(Duration::from_millis(timeout_ms.into()));
            Ok(())
        })
    }
}

/// Turn on connection state recovery (socket.io's): a client that loses
/// its connection and comes back within `max_disconnection_ms` (0: 120 000)
/// gets its socket id, rooms and user back and every event it missed, in
/// order; its CONNECTED event says it is recovered
/// (`roomcast_event_is_recovered`). With `skip_connect`, such a client is
/// not shown as a CONNECT first (it was accepted when it first connected).
/// At most `max_packets` events (0: 10 000) are kept per namespace; a client
/// further behind gets a new session. Recoverable events carry their offset
/// as their last Socket.IO argument (an `offset` field for JSON clients).
/// With Redis, across nodes.
///
/// # Safety
/// `config` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn roomcast_server_config_set_recovery(
    config: *mut roomcast_server_config,
    max_disconnection_ms: u32,
    skip_connect: bool,
    max_packets: u32,
) -> roomcast_result {
    unsafe {
        with(config, |c| {
            let d = roomcast::RecoveryConfig::default();
            c.recovery = Some(roomcast::RecoveryConfig {
                max_disconnection_duration: match max_disconnection_ms {
                    0 => d.max_disconnection_duration,
                    ms => Duration::from_millis(ms.into()),
                },
                skip_middlewares: skip_connect,
                max_packets: match max_packets {
                    0 => d.max_packets,
                    n => n as usize,
                },
            });
            Ok(())
        })
    }
}

/// The Redis settings with every Redis option applied, if any.
pub(crate) fn redis(c: &roomcast_server_config) -> Option<roomcast::RedisConfig> {
    let mut redis = c.redis.clone()?;
    if let Some(timeout) = c.redis_request_timeout {
        redis.request_timeout = timeout;
    }
    Some(redis)
}

/// Read access for the server constructor.
pub(crate) unsafe fn get<'a>(
    config: *const roomcast_server_config,
) -> Result<&'a roomcast_server_config, roomcast_result> {
    unsafe { arg(config) }
}
