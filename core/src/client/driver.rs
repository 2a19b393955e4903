//! The connection task: one per client. It owns the WebSocket, reads and
//! dispatches server frames, writes what the handles queued, and reconnects
//! with backoff when the connection is lost.

use std::borrow::Cow;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::header::AUTHORIZATION;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::shared::{Session, Shared};
use super::ws::{CLOSE_GRACE, Sink, Ws, handshake_error, ws_error};
use super::{ClientEvent, ClientState};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::handler::Reply;
use crate::protocol::native::{ClientMessage, ServerMessage, encode_client};
use crate::transport::close_code;

/// An open connection whose `connected` frame has arrived.
pub(super) struct Conn {
    ws: Ws,
    session: Session,
}

impl Conn {
    /// Make this the client's current connection (`id()` changes now).
    pub fn activate(self, shared: &Shared) -> Active {
        let mut core = shared.core.lock();
        core.epoch += 1;
        core.session = Some(self.session);
        Active { ws: self.ws, epoch: core.epoch, rejoin: core.active_rooms() }
    }
}

/// The current connection, with the rooms it must rejoin before anything else.
pub(super) struct Active {
    ws: Ws,
    epoch: u64,
    rejoin: Vec<String>,
}

/// Why `serve` returned.
enum Ended {
    /// `close()` was called or the last handle dropped.
    Closing,
    /// Do not reconnect: the server closed normally or refused our credentials.
    Stop(&'static str, Error),
    /// Unexpected loss: reconnect if the policy allows.
    Lost(Error),
}

/// Open a WebSocket and wait for the server's `connected` frame.
pub(super) async fn open(shared: &Shared) -> Result<Conn> {
    let uri = resume_uri(shared)?;
    let mut request = (&uri).into_client_request().map_err(ws_error)?;
    if let Some(auth) = &shared.auth {
        request.headers_mut().insert(AUTHORIZATION, auth.clone());
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, None, true).await.map_err(handshake_error)?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return match ServerMessage::decode(&text) {
                    Ok(ServerMessage::Connected { client_id, user_id, resume, recovered }) => {
                        let mut core = shared.core.lock();
                        if !recovered {
                            core.resume.offset = None;
                        }
                        core.resume.token = resume.map(Cow::into_owned);
                        drop(core);
                        Ok(Conn {
                            ws,
                            session: Session {
                                client_id: client_id.into_owned(),
                                user_id: user_id.map(|u| u.into_owned()),
                                recovered,
                            },
                        })
                    }
                    _ => Err(Error::new(ErrorKind::Protocol, "the server's first frame was not `connected`")),
                };
            }
            Some(Ok(Message::Close(frame))) => return Err(close_error(frame)),
            Some(Ok(Message::Binary(_))) => return Err(Error::new(ErrorKind::Protocol, "unexpected binary frame")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ws_error(e)),
            None => return Err(Error::closed()),
        }
    }
}

/// The server's URL, with the recovery token and last offset once the
/// server gave one (`?resume=…&offset=…`).
fn resume_uri(shared: &Shared) -> Result<http::Uri> {
    let core = shared.core.lock();
    let Some(token) = &core.resume.token else { return Ok(shared.uri.clone()) };
    let mut query = form_urlencoded::Serializer::new(shared.uri.query().map(str::to_owned).unwrap_or_default());
    query.append_pair("resume", token);
    if let Some(o) = &core.resume.offset {
        query.append_pair("offset", o);
    }
    let path = format!("{}?{}", shared.uri.path(), query.finish());
    let mut parts = shared.uri.clone().into_parts();
    parts.path_and_query = Some(path.parse().map_err(|_| Error::new(ErrorKind::InvalidArgument, "bad URL"))?);
    http::Uri::from_parts(parts).map_err(|_| Error::new(ErrorKind::InvalidArgument, "bad URL"))
}

/// Serve connections until the client stops for good.
pub(super) async fn run(shared: Arc<Shared>, mut conn: Active) {
    loop {
        let lost = match serve(&shared, conn).await {
            Ended::Closing => return shared.finish(None),
            Ended::Stop(code, e) => return shared.finish(Some((code, e))),
            Ended::Lost(e) => e,
        };
        tracing::debug!(error = %lost, "connection lost");
        shared.core.lock().lost();
        match reconnect(&shared, lost).await {
            Ok(c) => conn = c.activate(&shared),
            Err(why) => return shared.finish(why),
        }
    }
}

/// Sleep the backoff, try again, until connected, out of attempts, refused
/// credentials, or closed (`Err(None)`).
async fn reconnect(shared: &Shared, mut last: Error) -> Result<Conn, Option<(&'static str, Error)>> {
    let policy = &shared.opts.reconnect;
    if !policy.enabled {
        return Err(Some(("connection_closed", last)));
    }
    shared.set_state(ClientState::Reconnecting);
    let mut attempt = 0u32;
    loop {
        if policy.max_attempts.is_some_and(|max| attempt >= max) {
            let e =
                Error::new(last.kind(), format!("gave up after {attempt} reconnection attempts: {}", last.message()));
            return Err(Some(("reconnect_failed", e)));
        }
        let delay = policy.delay(attempt);
        attempt += 1;
        let try_once = async {
            tokio::time::sleep(delay).await;
            tokio::time::timeout(shared.opts.connect_timeout, open(shared)).await
        };
        let outcome = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return Err(None),
            r = try_once => r,
        };
        match outcome {
            Ok(Ok(conn)) => return Ok(conn),
            Ok(Err(e)) if e.kind() == ErrorKind::Unauthorized => return Err(Some(("unauthorized", e))),
            Ok(Err(e)) => last = e,
            Err(_) => last = Error::timeout("connect"),
        }
        tracing::debug!(attempt, error = %last, "reconnection attempt failed");
    }
}

/// Run one connection: rejoin, replay the queue, then read and write until it ends.
async fn serve(shared: &Arc<Shared>, conn: Active) -> Ended {
    let Active { ws, epoch, rejoin } = conn;
    let (mut sink, mut stream) = ws.split();
    // Rooms first, then the queue: the server handles one connection's joins
    // and messages in order, so queued messages land in the rejoined rooms.
    let resumed = async {
        for room in rejoin {
            sink.feed(text(&ClientMessage::Join { room })).await?;
        }
        write_queued(shared, &mut sink).await
    };
    if let Err(e) = resumed.await {
        return Ended::Lost(ws_error(e));
    }
    shared.set_state(ClientState::Connected);
    loop {
        let retry_at = shared.core.lock().retried.deadline();
        tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => {
                // Best effort: what was queued before close() still goes out.
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    let _ = write_queued(shared, &mut sink).await;
                    let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    if sink.send(Message::Close(Some(close))).await.is_ok() {
                        // Wait for the server's close frame (the handshake's end).
                        while let Some(Ok(_)) = stream.next().await {}
                    }
                })
                .await;
                return Ended::Closing;
            }
            () = shared.wake.notified() => {
                if let Err(e) = write_queued(shared, &mut sink).await {
                    return Ended::Lost(ws_error(e));
                }
            }
            () = super::retry::sleep_until(retry_at) => {
                shared.core.lock().retried.expire();
                if let Err(e) = write_queued(shared, &mut sink).await {
                    return Ended::Lost(ws_error(e));
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => on_frame(shared, &t, epoch),
                Some(Ok(Message::Close(frame))) => {
                    // Flush tungstenite's close reply.
                    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                    let code = frame.as_ref().map(|f| u16::from(f.code));
                    let e = close_error(frame);
                    return match code {
                        Some(close_code::AUTH_FAILED) => Ended::Stop("unauthorized", e),
                        // Any other normal close from the server is deliberate
                        // (a kick): reconnecting would undo it.
                        Some(close_code::NORMAL) => Ended::Stop("connection_closed", e),
                        _ => Ended::Lost(e),
                    };
                }
                Some(Ok(Message::Binary(_))) => tracing::debug!("ignoring a binary frame"),
                // tungstenite answers pings itself while we keep reading.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Lost(ws_error(e)),
                None => return Ended::Lost(Error::new(ErrorKind::Closed, "connection closed without a close frame")),
            }
        }
    }
}

/// Write everything queued, then flush once.
async fn write_queued(shared: &Shared, sink: &mut Sink) -> Result<(), tungstenite::Error> {
    let batch = shared.core.lock().take_batch();
    if batch.is_empty() {
        return Ok(());
    }
    for msg in &batch {
        sink.feed(text(msg)).await?;
    }
    sink.flush().await
}

fn text(msg: &ClientMessage) -> Message {
    Message::text(encode_client(msg))
}

/// Dispatch one server frame received on connection `epoch`.
fn on_frame(shared: &Arc<Shared>, text: &str, epoch: u64) {
    let msg = match ServerMessage::decode(text) {
        Ok(m) => m,
        Err(e) => {
            // Unknown types are allowed by the protocol, for future extensions.
            tracing::debug!(error = %e, "ignoring an unrecognised frame");
            return;
        }
    };
    match msg {
        ServerMessage::Joined { room } => shared.core.lock().joined(&room),
        ServerMessage::Left { room } => shared.core.lock().left(&room),
        ServerMessage::Message { room, from, user_id, payload, offset } => {
            remember_offset(shared, offset);
            shared.emit(ClientEvent::Message {
                room: room.into_owned(),
                from: from.into_owned(),
                user_id: user_id.map(|u| u.into_owned()),
                payload: payload.into_owned(),
            })
        }
        ServerMessage::UserJoined { room, client_id, user_id, member } => shared.emit(ClientEvent::UserJoined {
            room: room.into_owned(),
            client_id: client_id.map(|c| c.into_owned()),
            user_id: user_id.map(|u| u.into_owned()),
            member: member.map(|m| m.into_owned()),
        }),
        ServerMessage::UserLeft { room, client_id, user_id, member } => shared.emit(ClientEvent::UserLeft {
            room: room.into_owned(),
            client_id: client_id.map(|c| c.into_owned()),
            user_id: user_id.map(|u| u.into_owned()),
            member: member.map(|m| m.into_owned()),
        }),
        ServerMessage::Presence { room, member } => {
            shared.emit(ClientEvent::Presence { room: room.into_owned(), member: member.into_owned() })
        }
        ServerMessage::Event { event, data, id, offset } => {
            remember_offset(shared, offset);
            let handler = shared.handlers.read().get(event.as_ref()).cloned();
            match handler {
                // A task, so that a handler may itself await the server.
                Some(h) => {
                    let (shared, data) = (shared.clone(), data.into_owned());
                    tokio::spawn(async move {
                        let reply = h(data).await;
                        if let Some(id) = id {
                            shared.push_live(epoch, ClientMessage::Ack { id, data: ack_data(&event, reply) });
                        }
                    });
                }
                None => {
                    if id.is_some() {
                        tracing::debug!(%event, "server wants an ack but no handler is registered; it will time out");
                    }
                    shared.emit(ClientEvent::Event { event: event.into_owned(), data: data.into_owned() });
                }
            }
        }
        ServerMessage::Ack { id, data } => {
            if shared.core.lock().settle_ack(id, Ok(data.into_owned())) {
                shared.wake.notify_one(); // the next at-least-once event may go
            }
        }
        ServerMessage::Error { code, message, id, room } => {
            let told = {
                let mut core = shared.core.lock();
                match (id, room.as_deref(), code.as_ref()) {
                    (Some(id), _, _) => {
                        let told = core.settle_ack(id, Err(Error::new(error_kind(&code), message.as_ref())));
                        if told {
                            shared.wake.notify_one(); // the next at-least-once event may go
                        }
                        told
                    }
                    (None, Some(room), "join_refused") => core.join_refused(room, &message),
                    (None, Some(room), "invalid_message") => core.room_invalid(room, &message),
                    _ => false,
                }
            };
            // Errors nobody awaits (rejoin refused, not_in_room, rate_limited…) go to the event stream.
            if !told {
                shared.emit(ClientEvent::Error {
                    code: code.into_owned(),
                    message: message.into_owned(),
                    room: room.map(|r| r.into_owned()),
                });
            }
        }
        ServerMessage::Pong { data } => {
            if let Some(id) = data.as_deref().and_then(Value::as_u64) {
                shared.core.lock().pong(id);
            }
        }
        ServerMessage::Connected { .. } => tracing::debug!("ignoring a second `connected` frame"),
    }
}

/// The protocol has no way to send an error back, so a failed handler is
/// logged and acked with `null`: the server's caller gets an answer now
/// rather than a timeout.
fn ack_data(event: &str, reply: Reply) -> Value {
    match reply {
        Reply::Data(v) => v.json(),
        Reply::None => Value::Null,
        Reply::Error(e) => {
            tracing::warn!(%event, error = %e, "event handler failed; acking with null");
            Value::Null
        }
        Reply::Unhandled => Value::Null,
    }
}

/// The [`ErrorKind`] of a server `error` code.
fn error_kind(code: &str) -> ErrorKind {
    match code {
        "no_handler" => ErrorKind::NotFound,
        "internal" => ErrorKind::Internal,
        "rate_limited" => ErrorKind::RateLimited,
        "join_refused" => ErrorKind::Refused,
        _ => ErrorKind::Protocol,
    }
}

fn close_error(frame: Option<CloseFrame>) -> Error {
    match frame {
        Some(f) if u16::from(f.code) == close_code::AUTH_FAILED => {
            Error::new(ErrorKind::Unauthorized, format!("authentication failed: {}", f.reason))
        }
        Some(f) => {
            Error::new(ErrorKind::Closed, format!("server closed the connection ({}): {}", u16::from(f.code), f.reason))
        }
        None => Error::new(ErrorKind::Closed, "server closed the connection"),
    }
}

/// Keep the offset of the last recoverable packet, to resume after it.
fn remember_offset(shared: &Shared, offset: Option<Cow<'_, str>>) {
    if let Some(o) = offset {
        shared.core.lock().resume.offset = Some(o.into_owned());
    }
}
