//! Engine.IO v4 server sessions at `/socket.io/`: the handshake, HTTP
//! long-polling, WebSocket, the polling→WebSocket upgrade and heartbeats.
//!
//! One task per session owns its state and the Socket.IO layer on top
//! ([`super::sio`]); transports only feed it packets through a channel and
//! drain the session's outbox. The outbox holds Engine.IO packets as frames
//! (text `4…`, `2`, binary attachments), so a broadcast encoded once is
//! written as is to a WebSocket or joined into a polling response.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::ServerInner;
use super::heartbeat::{Beat, Heartbeat};
use super::http::{Body, full, owned_headers, parse_query};
use super::inbox::Inbox;
use super::limits::{ConnectionPermit, RateLimiter, Verdict};
use super::session::{close_frame, disconnect_reason};
use super::sio::SioSession;
use crate::hub::socket::{DisconnectReason, Handshake};
use crate::metrics::Counters;
use crate::protocol::engineio::{self as eio, HttpError, OpenPacket};
use crate::transport::outbox::Outbox;
use crate::transport::websocket::{self, ReadError, Received, WsReader, WsWriter};
use crate::transport::{Frame, close_code};

/// How the session currently reaches its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Polling,
    /// A WebSocket answered `3probe`; polling answers `6` until `5` arrives.
    Upgrading,
    WebSocket,
}

/// What transports and sockets hand to the session task.
pub(crate) enum Inbound {
    Packet(eio::Packet),
    /// The transport ended (closed, failed, oversize, overlapping poll).
    Closed(DisconnectReason),
    /// The upgrade succeeded: the session reads this WebSocket from now on.
    WebSocket(WsReader),
    /// A Socket.IO socket (by namespace) was asked to close.
    SocketClosed(String),
}

/// The shared handle of one Engine.IO session.
pub(crate) struct EngineConn {
    pub sid: String,
    pub outbox: Arc<Outbox>,
    inbound: Inbox<Inbound>,
    transport: Mutex<Transport>,
    /// A long-polling GET is pending.
    polling: AtomicBool,
    /// A long-polling POST is being received or queued.
    posting: AtomicBool,
    /// Wakes a pending poll when an upgrade starts.
    upgrading: Notify,
    /// The first `Origin` the session's requests carried: a request with
    /// another one is refused, so that a page elsewhere that learnt the sid
    /// cannot read or write the stream. (Same-origin GETs carry none.)
    origin: Mutex<Option<String>>,
}

impl EngineConn {
    fn transport(&self) -> Transport {
        *self.transport.lock()
    }

    /// Whether a request with `origin` may use this session; the first
    /// origin seen becomes the session's.
    fn admits(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let mut bound = self.origin.lock();
        match bound.as_deref() {
            Some(b) => b == origin,
            None => {
                *bound = Some(origin.to_owned());
                true
            }
        }
    }
}

/// A session's one request of a kind at a time (a GET, a POST): taken for a
/// request and given back when it ends, also when hyper drops it midway.
struct Slot<'a>(&'a AtomicBool);

impl<'a> Slot<'a> {
    /// The slot, unless another request holds it: as engine.io, an overlap
    /// is a confused or hostile client and closes the session.
    fn take(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(Self(flag))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Live sessions by Engine.IO sid, for polling requests and upgrades.
#[derive(Default)]
pub(crate) struct Engines {
    map: Mutex<HashMap<String, Arc<EngineConn>>>,
}

impl Engines {
    fn get(&self, sid: &str) -> Option<Arc<EngineConn>> {
        self.map.lock().get(sid).cloned()
    }
}

/// Serve one request under the Socket.IO path.
pub(crate) async fn handle(server: Arc<ServerInner>, req: Request<Incoming>, addr: SocketAddr) -> Response<Body> {
    let query = parse_query(req.uri().query());
    let q = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let cors = Cors { origin: origin.clone().filter(|_| server.config.origin_allowed(origin.as_deref())) };
    if !server.config.origin_allowed(origin.as_deref()) {
        Counters::add(&server.hub.counters.refused_connections, 1);
        return error(&cors, HttpError::Forbidden);
    }
    if req.method() == Method::OPTIONS {
        return cors.preflight(req.headers());
    }
    let transport = match q("transport").as_deref() {
        Some("polling") => Transport::Polling,
        Some("websocket") => Transport::WebSocket,
        _ => return error(&cors, HttpError::TransportUnknown),
    };
    let is_upgrade = websocket::is_upgrade(req.headers());
    match q("sid") {
        None => {
            if q("EIO").as_deref() != Some("4") {
                return error(&cors, HttpError::UnsupportedProtocolVersion);
            }
            if req.method() != Method::GET {
                return error(&cors, HttpError::BadHandshakeMethod);
            }
            if transport == Transport::WebSocket && !is_upgrade {
                return error(&cors, HttpError::BadRequest);
            }
            let permit = match server.limiter.try_acquire(addr.ip()) {
                Ok(p) => p,
                Err(refusal) => {
                    Counters::add(&server.hub.counters.refused_connections, 1);
                    let mut res = cors.apply(full(HttpError::Forbidden.json_body_with_message(refusal.describe().1)));
                    *res.status_mut() = refusal.status();
                    return res;
                }
            };
            let handshake = Handshake {
                headers: Arc::new(owned_headers(req.headers())),
                query: query.into(),
                remote_addr: addr,
                path: req.uri().path().to_owned(),
                namespace: "/".to_owned(),
                auth: serde_json::Value::Null,
            };
            if transport == Transport::Polling {
                let (conn, session) = open(&server, handshake, permit, Transport::Polling, origin);
                server.tracker.spawn(run_session(server.clone(), conn.clone(), session, None));
                let open = open_packet(&server, &conn.sid, vec!["websocket".to_owned()]);
                return cors.text(eio::encode_payload(&[open]));
            }
            let Some(res) = websocket::switching_protocols::<Body>(req.headers()) else {
                return error(&cors, HttpError::BadRequest);
            };
            let on_upgrade = hyper::upgrade::on(req);
            let srv = server.clone();
            server.tracker.spawn(async move {
                let Ok(Ok(upgraded)) = tokio::time::timeout(srv.config.handshake_timeout, on_upgrade).await else {
                    return;
                };
                let Some((reader, writer)) =
                    websocket::accept(upgraded, srv.config.max_payload, srv.hub.counters.clone())
                else {
                    return;
                };
                let (conn, session) = open(&srv, handshake, permit, Transport::WebSocket, origin);
                let open = open_packet(&srv, &conn.sid, Vec::new());
                conn.outbox.push_control(Frame::Text(eio::encode_text(&open).into()));
                start_writer(&srv, &conn, writer);
                // The session gets a task of its own rather than living on in
                // this one, whose state (the request, the upgrade) it would carry.
                let f = run_session(srv.clone(), conn, session, Some(reader));
                srv.tracker.spawn(f);
            });
            res
        }
        Some(sid) => {
            let Some(conn) = server.engines.get(&sid) else {
                return error(&cors, HttpError::SessionIdUnknown);
            };
            if !conn.admits(origin.as_deref()) {
                let mut res = error(&cors, HttpError::Forbidden);
                *res.body_mut() = full(HttpError::Forbidden.json_body_with_message("session of another origin"));
                return res;
            }
            if transport == Transport::WebSocket {
                if !is_upgrade {
                    return error(&cors, HttpError::BadRequest);
                }
                return upgrade(server, conn, req, &cors);
            }
            if conn.transport() != Transport::Polling && conn.transport() != Transport::Upgrading {
                return error(&cors, HttpError::BadRequest);
            }
            match *req.method() {
                Method::GET => poll(&conn, &cors).await,
                Method::POST => post(&server, &conn, req, &cors).await,
                _ => error(&cors, HttpError::BadRequest),
            }
        }
    }
}

fn open_packet(server: &ServerInner, sid: &str, upgrades: Vec<String>) -> eio::Packet {
    let c = &server.config;
    eio::Packet::Open(OpenPacket {
        sid: sid.to_owned(),
        upgrades,
        ping_interval: c.ping_interval.as_millis() as u64,
        ping_timeout: c.ping_timeout.as_millis() as u64,
        max_payload: c.max_payload as u64,
    })
}

/// Register a session; the caller runs (or spawns) the returned session.
fn open(
    server: &Arc<ServerInner>,
    handshake: Handshake,
    permit: ConnectionPermit,
    transport: Transport,
    origin: Option<String>,
) -> (Arc<EngineConn>, Session) {
    let sid = crate::hub::socket::Sid::generate().as_str().to_owned();
    let cfg = &server.config;
    let conn = Arc::new(EngineConn {
        sid: sid.clone(),
        outbox: Arc::new(Outbox::new(cfg.outbound_queue_messages, cfg.outbound_queue_bytes, cfg.overflow)),
        // Posted packets not handled yet: at most one max_payload queued.
        inbound: Inbox::new(cfg.max_payload),
        transport: Mutex::new(transport),
        polling: AtomicBool::new(false),
        posting: AtomicBool::new(false),
        upgrading: Notify::new(),
        origin: Mutex::new(origin),
    });
    server.engines.map.lock().insert(sid, conn.clone());
    let weak = Arc::downgrade(&conn);
    let on_socket_closed = Arc::new(move |nsp: String| {
        if let Some(conn) = weak.upgrade() {
            conn.inbound.push(Inbound::SocketClosed(nsp));
        }
    });
    let sio = SioSession::new(server.clone(), Arc::new(handshake), conn.outbox.clone(), on_socket_closed);
    (conn, Session { sio, permit })
}

/// What a session task owns besides the shared connection.
pub(crate) struct Session {
    sio: SioSession,
    permit: ConnectionPermit,
}

/// Hand the session's outbox to a WebSocket: direct writes and a writer task.
fn start_writer(server: &ServerInner, conn: &EngineConn, writer: Arc<WsWriter>) {
    conn.outbox.attach(writer.clone());
    let f = websocket::write_loop(writer, conn.outbox.clone(), server.config.shutdown_timeout);
    server.tracker.spawn(f);
}

/// The next packet from the session's WebSocket, if it has one.
async fn next_ws(
    ws: &mut Option<WsReader>,
    conn: &EngineConn,
    counters: &Counters,
) -> Result<eio::Packet, DisconnectReason> {
    let Some(reader) = ws.as_mut() else { return std::future::pending().await };
    loop {
        return match reader.next().await {
            Ok(Received::Close(_)) | Err(ReadError::Eof) => Err(DisconnectReason::TransportClose),
            Err(ReadError::Violation(v)) => Err(disconnect_reason(v)),
            Err(_) => Err(DisconnectReason::TransportError),
            Ok(Received::Text(t)) => {
                Counters::add(&counters.bytes_in, t.len() as u64);
                eio::decode_text(&t).map_err(|_| DisconnectReason::ParseError)
            }
            Ok(Received::Binary(b)) => {
                Counters::add(&counters.bytes_in, b.len() as u64);
                Ok(eio::Packet::Binary(b))
            }
            Ok(Received::Ping(payload)) => {
                conn.outbox.push_control(Frame::Pong(payload));
                continue;
            }
            Ok(Received::Pong) => continue,
        };
    }
}

/// The session task: heartbeats, inbound packets from either transport,
/// socket closes, teardown.
async fn run_session(server: Arc<ServerInner>, conn: Arc<EngineConn>, mut session: Session, mut ws: Option<WsReader>) {
    let cfg = &server.config;
    let sio = &mut session.sio;
    let mut heartbeat = Heartbeat::new(cfg.ping_interval, cfg.ping_timeout);
    // Boxed and dropped once a namespace connects: idle sessions keep no timer for it.
    let mut connect_deadline = Some(Box::pin(sleep_until(Instant::now() + cfg.connect_timeout)));
    let mut limiter = cfg.rate_limit.as_ref().map(|l| Box::new(RateLimiter::new(l, Instant::now())));
    let reason = loop {
        tokio::select! {
            biased;
            () = server.shutdown.cancelled() => break DisconnectReason::ServerShutdown,
            () = async { connect_deadline.as_mut().expect("guarded").await }, if connect_deadline.is_some() => {
                tracing::debug!(sid = %conn.sid, "no namespace connected in time");
                break DisconnectReason::TransportClose;
            }
            beat = heartbeat.tick() => match beat {
                Beat::Ping => {
                    conn.outbox.push_control(Frame::Text("2".into()));
                }
                Beat::TimedOut => break DisconnectReason::PingTimeout,
            },
            packet = next_ws(&mut ws, &conn, &server.hub.counters) => match packet {
                Ok(packet) => {
                    if let Err(reason) = Box::pin(on_packet(&server, sio, limiter.as_deref_mut(), &mut heartbeat, packet)).await {
                        break reason;
                    }
                }
                Err(reason) => break reason,
            },
            msg = conn.inbound.recv() => match msg {
                None => break DisconnectReason::TransportClose,
                Some(Inbound::Closed(reason)) => break reason,
                Some(Inbound::WebSocket(reader)) => ws = Some(reader),
                Some(Inbound::SocketClosed(nsp)) => {
                    if let Err(reason) = sio.socket_closed(&nsp) {
                        break reason;
                    }
                }
                Some(Inbound::Packet(packet)) => {
                    if let Err(reason) = Box::pin(on_packet(&server, sio, limiter.as_deref_mut(), &mut heartbeat, packet)).await {
                        break reason;
                    }
                }
            },
        }
        if connect_deadline.is_some() && sio.has_connected() {
            connect_deadline = None;
        }
    };
    tracing::debug!(sid = %conn.sid, %reason, "engine session ended");
    sio.close_all(reason);
    let (code, text, discard) = close_frame(reason);
    conn.outbox.close(code, text, discard);
    conn.inbound.close();
    server.engines.map.lock().remove(&conn.sid);
    drop(session.permit);
}

/// One Engine.IO packet from the client. An error ends the session.
async fn on_packet(
    server: &ServerInner,
    sio: &mut SioSession,
    limiter: Option<&mut RateLimiter>,
    heartbeat: &mut Heartbeat,
    packet: eio::Packet,
) -> Result<(), DisconnectReason> {
    let counters = &server.hub.counters;
    match packet {
        eio::Packet::Pong(_) => heartbeat.pong(),
        eio::Packet::Close => return Err(DisconnectReason::TransportClose),
        eio::Packet::Message(text) => {
            Counters::add(&counters.messages_in, 1);
            // Over the rate limit a packet is dropped (Socket.IO has no error
            // channel); sustained abuse ends the session.
            match limiter.map_or(Verdict::Allow, |l| l.check(text.len(), Instant::now())) {
                Verdict::Allow => sio.on_text(&text).await?,
                Verdict::Reject => Counters::add(&counters.rate_limited, 1),
                Verdict::Close => {
                    Counters::add(&counters.rate_limited, 1);
                    return Err(DisconnectReason::RateLimited);
                }
            }
        }
        eio::Packet::Binary(data) => sio.on_binary(data).await?,
        // Pings come from clients only as upgrade probes, handled by the
        // upgrading transport; the rest carry nothing here.
        eio::Packet::Ping(_) | eio::Packet::Open(_) | eio::Packet::Upgrade | eio::Packet::Noop => {}
    }
    Ok(())
}

/// Serve a long-polling GET: wait for packets and return them as one payload.
async fn poll(conn: &Arc<EngineConn>, cors: &Cors) -> Response<Body> {
    let Some(_slot) = Slot::take(&conn.polling) else {
        return end_session(conn, cors, DisconnectReason::TransportError);
    };
    let mut frames = Vec::new();
    // Listen for an upgrade before checking for one, so none slips between.
    let upgrading = conn.upgrading.notified();
    tokio::pin!(upgrading);
    upgrading.as_mut().enable();
    let body = if conn.transport() == Transport::Upgrading {
        "6".to_owned()
    } else {
        // The session closes the outbox when it ends, so this always returns.
        tokio::select! {
            more = conn.outbox.next_batch(&mut frames) => if more.is_some() { polling_payload(&frames) } else { "1".to_owned() },
            () = upgrading => "6".to_owned(),
        }
    };
    conn.outbox.written();
    cors.text(body)
}

/// A polling request the session cannot survive: the session ends for
/// `reason` and the request gets engine.io's 400.
fn end_session(conn: &EngineConn, cors: &Cors, reason: DisconnectReason) -> Response<Body> {
    conn.inbound.push(Inbound::Closed(reason));
    error(cors, HttpError::BadRequest)
}

/// Join outbox frames into a polling payload; binary goes as `b<base64>`.
fn polling_payload(frames: &[Frame]) -> String {
    let mut out = String::new();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(eio::SEPARATOR);
        }
        match f {
            Frame::Text(t) => out.push_str(t.as_str()),
            Frame::Binary(b) => {
                out.push('b');
                base64::engine::general_purpose::STANDARD.encode_string(b, &mut out);
            }
            Frame::Close { .. } => out.push('1'),
            // WebSocket-level pings are never queued for Engine.IO sessions.
            Frame::Ping(_) | Frame::Pong(_) => out.push('6'),
        }
    }
    out
}

/// Serve a long-polling POST: the client's packets. One POST at a time,
/// and its packets wait while the session has a max_payload of earlier
/// ones to handle, so polling buffers at most about twice max_payload
/// of input per session, however fast the client posts.
async fn post(server: &ServerInner, conn: &Arc<EngineConn>, req: Request<Incoming>, cors: &Cors) -> Response<Body> {
    let Some(_slot) = Slot::take(&conn.posting) else {
        return end_session(conn, cors, DisconnectReason::TransportError);
    };
    let body = match Limited::new(req.into_body(), server.config.max_payload).collect().await {
        Ok(b) => b.to_bytes(),
        // The client let go of the request midway: engine.io's "data
        // request connection closed prematurely".
        Err(e) if !e.is::<LengthLimitError>() => return end_session(conn, cors, DisconnectReason::TransportError),
        Err(_) => {
            conn.inbound.push(Inbound::Closed(DisconnectReason::MessageTooBig));
            let mut res = cors.apply(full(HttpError::BadRequest.json_body_with_message("payload too large")));
            *res.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return res;
        }
    };
    Counters::add(&server.hub.counters.bytes_in, body.len() as u64);
    let packets = std::str::from_utf8(&body).map_err(|_| ()).and_then(|t| eio::decode_payload(t).map_err(|_| ()));
    let Ok(packets) = packets else {
        return end_session(conn, cors, DisconnectReason::ParseError);
    };
    for p in packets {
        let bytes = match &p {
            eio::Packet::Message(t) => t.len(),
            eio::Packet::Binary(b) => b.len(),
            _ => 1,
        };
        if !conn.inbound.send(Inbound::Packet(p), bytes).await {
            break;
        }
    }
    let mut res = cors.apply(full("ok"));
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    res
}

/// Upgrade a polling session: `2probe` → `3probe`, then `5`.
fn upgrade(server: Arc<ServerInner>, conn: Arc<EngineConn>, mut req: Request<Incoming>, cors: &Cors) -> Response<Body> {
    let Some(res) = websocket::switching_protocols::<Body>(req.headers()) else {
        return error(cors, HttpError::BadRequest);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = server.tracker.clone();
    tracker.spawn(async move {
        let Ok(Ok(upgraded)) = tokio::time::timeout(server.config.handshake_timeout, on_upgrade).await else {
            return;
        };
        let counters = server.hub.counters.clone();
        let Some((mut reader, writer)) = websocket::accept(upgraded, server.config.max_payload, counters) else {
            return;
        };
        let timeout = server.config.shutdown_timeout;
        let refuse = |writer: Arc<WsWriter>| async move {
            let close = Frame::Close { code: close_code::NORMAL, reason: "".into() };
            websocket::send(&writer, &[close], timeout).await;
        };
        if conn.transport() != Transport::Polling {
            // Already upgrading or upgraded: this second WebSocket is refused.
            return refuse(writer).await;
        }
        let probe = async {
            match reader.next().await {
                Ok(Received::Text(t)) if t.as_str() == "2probe" => {}
                _ => return false,
            }
            *conn.transport.lock() = Transport::Upgrading;
            conn.upgrading.notify_waiters();
            if !websocket::send(&writer, &[Frame::Text("3probe".into())], timeout).await {
                return false;
            }
            loop {
                match reader.next().await {
                    Ok(Received::Text(t)) if t.as_str() == "5" => return true,
                    // The client may send a noop or ping while it pauses polling.
                    Ok(Received::Text(t)) if t.as_str() == "6" => continue,
                    _ => return false,
                }
            }
        };
        match tokio::time::timeout(server.config.ping_timeout, probe).await {
            Ok(true) => {
                *conn.transport.lock() = Transport::WebSocket;
                // A poll still pending ends with a noop so the client lets go of it.
                conn.upgrading.notify_waiters();
                start_writer(&server, &conn, writer);
                conn.inbound.push(Inbound::WebSocket(reader));
            }
            _ => {
                {
                    let mut t = conn.transport.lock();
                    if *t == Transport::Upgrading {
                        *t = Transport::Polling;
                    }
                }
                refuse(writer).await;
            }
        }
    });
    res
}

/// CORS for polling: the request's origin is echoed when allowed, with
/// credentials, as socket.io does with `cors: { origin, credentials: true }`.
struct Cors {
    origin: Option<String>,
}

impl Cors {
    fn apply(&self, body: Body) -> Response<Body> {
        let mut res = Response::new(body);
        if let Some(o) = self.origin.as_deref().and_then(|o| HeaderValue::from_str(o).ok()) {
            let h = res.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        res
    }

    fn text(&self, body: String) -> Response<Body> {
        let mut res = self.apply(full(body));
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }

    fn preflight(&self, req: &HeaderMap) -> Response<Body> {
        let mut res = self.apply(full(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
        if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        res
    }
}

/// engine.io's JSON error body with its status.
fn error(cors: &Cors, e: HttpError) -> Response<Body> {
    let mut res = cors.apply(full(e.json_body()));
    *res.status_mut() = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_joins_text_and_base64_binary() {
        let frames =
            [Frame::Text("42[\"a\"]".into()), Frame::Binary(Bytes::from_static(&[1, 2, 3])), Frame::Text("2".into())];
        assert_eq!(polling_payload(&frames), "42[\"a\"]\u{1e}bAQID\u{1e}2");
    }
}
