//! The per-connection state machine of the JSON protocol: setup, the read
//! loop with heartbeats and limits, message dispatch, and teardown.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::ServerInner;
use super::heartbeat::{Beat, Heartbeat};
use super::limits::{ConnectionPermit, RateLimiter, Verdict};
use crate::auth::Identity;
use crate::hub::args::{self, Args};
use crate::hub::dispatch::{self, Outcome};
use crate::hub::handler::Reply;
use crate::hub::namespace::Namespace;
use crate::hub::packet::{Packet, Protocol};
use crate::hub::socket::{DisconnectReason, Handshake, NewSocket, Sid, Socket};
use crate::metrics::Counters;
use crate::protocol::native::{self, ClientMessage, ErrorCode, ServerMessage};
use crate::recovery::{Resume, Session};
use crate::transport::outbox::Outbox;
use crate::transport::websocket::{ReadError, Received, Violation, WsReader, WsWriter, write_loop};
use crate::transport::{Frame, close_code};

/// Everything a new session needs besides the stream.
pub(crate) struct Accepted {
    pub server: Arc<ServerInner>,
    pub ns: Arc<Namespace>,
    pub handshake: Arc<Handshake>,
    pub identity: Identity,
    pub permit: ConnectionPermit,
    /// The recovery session this connection takes up, if any.
    pub resumed: Option<(Session, Resume)>,
}

/// Run one JSON-protocol connection to its end.
pub(crate) async fn run(a: Accepted, mut reader: WsReader, wire: Arc<WsWriter>) {
    let cfg = &a.server.config;
    let counters = a.server.hub.counters.clone();
    let outbox = Arc::new(Outbox::new(cfg.outbound_queue_messages, cfg.outbound_queue_bytes, cfg.overflow));
    outbox.attach(wire.clone());
    let writer = tokio::spawn(write_loop(wire, outbox.clone(), cfg.shutdown_timeout));
    let socket = Socket::new(NewSocket {
        ns: a.ns.clone(),
        handshake: a.handshake,
        user_id: a.identity.user_id,
        data: a.identity.data,
        outbox,
        protocol: Protocol::Json,
        counters,
        on_close: None,
        resumed: a.resumed.as_ref().map(|(s, _)| (Sid::from(s.sid.as_str()), s.pid.clone())),
        recovery: a.ns.recovers(),
    });
    let missed = a.ns.open(&socket, a.resumed.as_ref()).await;
    if let Err(rej) = missed {
        tracing::debug!(sid = %socket.id(), reason = %rej.message, "connection refused by a connect hook");
        socket.outbox().close(close_code::REFUSED, rej.message, true);
        a.server.hub.release_if_empty(&a.ns);
        if tokio::time::timeout(cfg.shutdown_timeout, writer).await.is_err() {
            tracing::debug!("refused connection: close frame not written in time");
        }
        return;
    }
    tracing::debug!(sid = %socket.id(), ns = a.ns.name(), user = ?socket.user_id(), "connected");
    let connected = ServerMessage::Connected {
        client_id: socket.id().as_str().into(),
        user_id: socket.user_id().map(Cow::Borrowed),
        resume: socket.pid().map(Cow::Borrowed),
        recovered: socket.recovered(),
    };
    let _ = socket.unhold(&[connected.encode().into()], missed.unwrap_or_default());
    for h in a.ns.connection_handlers() {
        h(socket.clone()).await;
    }

    let reason = read_loop(&a.server, &socket, &mut reader).await;

    socket.close(reason);
    let (code, text, discard) = close_frame(reason);
    socket.outbox().close(code, text, discard);
    let left = a.ns.remove_parking(&socket, reason);
    a.server.hub.release_if_empty(&a.ns);
    socket.release();
    tracing::debug!(sid = %socket.id(), %reason, "disconnected");
    if let Some(handlers) = a.ns.disconnected(socket.clone(), reason, left) {
        handlers.await;
    }
    drop(reader);
    let mut writer = writer;
    if tokio::time::timeout(cfg.shutdown_timeout, &mut writer).await.is_err() {
        writer.abort();
    }
    drop(a.permit);
}

async fn read_loop(server: &ServerInner, socket: &Socket, reader: &mut WsReader) -> DisconnectReason {
    let cfg = &server.config;
    let mut heartbeat = Heartbeat::new(cfg.ping_interval, cfg.ping_timeout);
    let mut limiter = cfg.rate_limit.as_ref().map(|l| RateLimiter::new(l, Instant::now()));
    loop {
        tokio::select! {
            biased;
            () = socket.closed() => return socket.close_reason().unwrap_or(DisconnectReason::ServerDisconnect),
            () = server.shutdown.cancelled() => {
                return DisconnectReason::ServerShutdown;
            }
            beat = heartbeat.tick() => match beat {
                Beat::Ping => {
                    socket.outbox().push_control(Frame::Ping(bytes::Bytes::new()));
                }
                Beat::TimedOut => return DisconnectReason::PingTimeout,
            },
            msg = reader.next() => match msg {
                Ok(Received::Close(_)) | Err(ReadError::Eof) => return DisconnectReason::TransportClose,
                Err(ReadError::Violation(v)) => {
                    tracing::debug!(sid = %socket.id(), error = %v, "websocket protocol violation");
                    return disconnect_reason(v);
                }
                Err(e) => {
                    tracing::debug!(sid = %socket.id(), error = %e, "transport error");
                    return DisconnectReason::TransportError;
                }
                Ok(Received::Pong) => heartbeat.pong(),
                Ok(Received::Ping(payload)) => {
                    socket.outbox().push_control(Frame::Pong(payload));
                }
                Ok(Received::Text(text)) => match admit(socket, limiter.as_mut(), text.len()) {
                    Ok(true) => dispatch(socket, &text).await,
                    Ok(false) => {}
                    Err(reason) => return reason,
                },
                Ok(Received::Binary(data)) => match admit(socket, limiter.as_mut(), data.len()) {
                    Ok(true) => error(socket, ErrorCode::InvalidMessage, "binary frames are not supported; send JSON text", None, None),
                    Ok(false) => {}
                    Err(reason) => return reason,
                },
            }
        }
    }
}

/// Why a connection whose client broke the WebSocket protocol ends.
pub(super) fn disconnect_reason(v: Violation) -> DisconnectReason {
    match v {
        Violation::TooBig => DisconnectReason::MessageTooBig,
        Violation::InvalidUtf8 | Violation::Protocol(_) => DisconnectReason::ParseError,
    }
}

/// Count an inbound message and apply the rate limit: whether to handle it
/// (a rejected one is answered with an error), or the reason to close.
fn admit(socket: &Socket, limiter: Option<&mut RateLimiter>, len: usize) -> Result<bool, DisconnectReason> {
    let counters = socket.counters();
    Counters::add(&counters.messages_in, 1);
    Counters::add(&counters.bytes_in, len as u64);
    match limiter.map_or(Verdict::Allow, |l| l.check(len, Instant::now())) {
        Verdict::Allow => Ok(true),
        Verdict::Reject => {
            Counters::add(&counters.rate_limited, 1);
            error(socket, ErrorCode::RateLimited, "rate limit exceeded; message dropped", None, None);
            Ok(false)
        }
        Verdict::Close => {
            Counters::add(&counters.rate_limited, 1);
            Err(DisconnectReason::RateLimited)
        }
    }
}

/// Handle one decoded client message. Joins, leaves and relays complete
/// before the next frame is read, so a client's `join` then `message` is
/// ordered; event handlers start in arrival order and continue on their own
/// task once they wait (for an ack, say).
async fn dispatch(socket: &Socket, text: &str) {
    let msg = match native::decode_client(text) {
        Ok(m) => m,
        Err(e) => return error(socket, e.code, &e.message, e.id, None),
    };
    let ns = &socket.0.ns;
    match msg {
        ClientMessage::Join { room } => {
            if !ns.contains(socket.id(), &room) {
                if ns.is_reserved(&room) {
                    return error(socket, ErrorCode::JoinRefused, "reserved room", None, Some(&room));
                }
                if let Some(hook) = ns.join_hook()
                    && let Err(why) = hook(socket.clone(), room.clone()).await
                {
                    return error(socket, ErrorCode::JoinRefused, &why, None, Some(&room));
                }
                if let Err(e) = ns.join(socket, room.clone()) {
                    return error(socket, ErrorCode::InvalidMessage, e.message(), None, Some(&room));
                }
                // `joined` promises the room's broadcasts from every node.
                ns.subscriptions_settled().await;
            }
            reply(socket, &ServerMessage::Joined { room: room.into() });
        }
        ClientMessage::Leave { room } => {
            if room == socket.id().as_str() || room.starts_with(crate::hub::namespace::USER_ROOM_PREFIX) {
                return error(socket, ErrorCode::InvalidMessage, "cannot leave a reserved room", None, Some(&room));
            }
            let _ = ns.leave(socket, &room);
            reply(socket, &ServerMessage::Left { room: room.into() });
        }
        ClientMessage::Message { room, payload } => {
            if !ns.contains(socket.id(), &room) {
                return error(socket, ErrorCode::NotInRoom, "join the room before sending to it", None, Some(&room));
            }
            let packet = Packet::Message {
                room: room.clone(),
                from: socket.id().clone(),
                user_id: socket.user_id().map(str::to_owned),
                payload,
            };
            socket.to(room).send(packet);
        }
        ClientMessage::Event { event, data, id } => {
            let args = Args::one(args::from_json(data));
            dispatch::start_event(socket.clone(), event, args, id, move |socket, event, outcome| match (outcome, id) {
                (Outcome::NoHandler | Outcome::Replied(Reply::Unhandled), id) => {
                    error(socket, ErrorCode::NoHandler, &format!("no handler for event `{event}`"), id, None)
                }
                (Outcome::Refused(why), id) => error(socket, ErrorCode::Refused, &why, id, None),
                (Outcome::Replied(Reply::Error(e)), id) => error(socket, ErrorCode::Internal, &e, id, None),
                (Outcome::Replied(Reply::Data(v)), Some(id)) => {
                    reply(socket, &ServerMessage::Ack { id, data: Cow::Owned(v.json()) })
                }
                (Outcome::Replied(Reply::None), Some(id)) => {
                    reply(socket, &ServerMessage::Ack { id, data: Cow::Owned(Value::Null) })
                }
                (Outcome::Replied(_), None) => {}
            })
            .await;
        }
        ClientMessage::Ack { id, data } => {
            socket.resolve_ack(id, Args::one(args::from_json(data)));
        }
        ClientMessage::Ping { data } => reply(socket, &ServerMessage::Pong { data: data.map(Cow::Owned) }),
    }
}

/// The close frame that tells the client why, and whether frames still
/// queued are dropped (the peer is not reading them) or written first.
pub(super) fn close_frame(reason: DisconnectReason) -> (u16, &'static str, bool) {
    match reason {
        DisconnectReason::PingTimeout => (close_code::PING_TIMEOUT, "ping timeout", true),
        DisconnectReason::SlowConsumer => (close_code::SLOW_CONSUMER, "slow consumer: outbound queue full", true),
        DisconnectReason::RateLimited => (close_code::POLICY, "rate limit exceeded", true),
        DisconnectReason::MessageTooBig => (close_code::TOO_BIG, "message too big", true),
        DisconnectReason::ParseError => (close_code::PROTOCOL, "protocol error", true),
        DisconnectReason::ServerShutdown => (close_code::GOING_AWAY, "server shutting down", false),
        DisconnectReason::ServerDisconnect => (close_code::NORMAL, "server namespace disconnect", false),
        DisconnectReason::ForcedServerClose => (close_code::NORMAL, "forced server close", false),
        _ => (close_code::NORMAL, "", false),
    }
}

fn reply(socket: &Socket, msg: &ServerMessage<'_>) {
    // A full queue closes the socket inside `push`; nothing more to do here.
    let _ = socket.push(msg.encode().into(), false);
}

fn error(socket: &Socket, code: ErrorCode, message: &str, id: Option<u64>, room: Option<&str>) {
    reply(
        socket,
        &ServerMessage::Error {
            code: code.as_str().into(),
            message: message.into(),
            id,
            room: room.map(Cow::Borrowed),
        },
    );
}
