//! The connection task: one per run of a client. It owns the WebSocket,
//! speaks Engine.IO (answers pings, watches the heartbeat) and Socket.IO
//! (dispatches events and acks), writes what the handles queued, and
//! reconnects with socket.io-client's backoff when the connection is lost.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use super::{ConnectError, DisconnectReason, SocketIoEvent, backoff};
use crate::client::ClientState;
use crate::client::ws::{CLOSE_GRACE, Sink, Ws, handshake_error, ws_error};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::args::{Args, Data};
use crate::hub::dispatch;
use crate::hub::handler::Reply;
use crate::protocol::engineio::{self as eio, Packet as EioPacket};
use crate::protocol::socketio::{self as sio, Decoder, PacketType, Progress};

/// A connection whose namespace CONNECT the server has accepted.
pub(super) struct Conn {
    ws: Ws,
    sid: String,
    /// The private session id, when the server has recovery on.
    pid: Option<String>,
    /// pingInterval + pingTimeout: the longest silence before the server counts as gone.
    heartbeat: Duration,
}

impl Conn {
    /// Make this the client's current connection: `id()` changes, the state
    /// goes Connected and subscribers hear `Connect`.
    pub fn activate(self, shared: &Shared) -> Active {
        let epoch = shared.core.lock().connected(self.sid.clone(), self.pid);
        shared.set_state(ClientState::Connected);
        shared.emit(SocketIoEvent::Connect { id: self.sid });
        Active { ws: self.ws, epoch, heartbeat: self.heartbeat }
    }
}

pub(super) struct Active {
    ws: Ws,
    epoch: u64,
    heartbeat: Duration,
}

/// Why `serve` returned.
enum Ended {
    /// `close()` was called or the last handle dropped.
    Closing,
    /// The connection ended for `reason`; reconnect if it and the policy allow.
    Lost(DisconnectReason),
}

/// Open a WebSocket, read the Engine.IO handshake, connect the namespace and
/// wait for the server's answer.
pub(super) async fn open(shared: &Shared) -> Result<Conn> {
    let mut request = (&shared.endpoint.uri).into_client_request().map_err(ws_error)?;
    request.headers_mut().extend(shared.opts.headers.clone());
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, None, true).await.map_err(handshake_error)?;
    let handshake = match ws.next().await {
        Some(Ok(Message::Text(text))) => match eio::decode_text(&text) {
            Ok(EioPacket::Open(open)) => open,
            _ => return Err(protocol("the server's first packet was not an Engine.IO open packet")),
        },
        Some(Ok(_)) => return Err(protocol("the server's first frame was not an Engine.IO open packet")),
        Some(Err(e)) => return Err(ws_error(e)),
        None => return Err(Error::closed()),
    };
    let heartbeat = Duration::from_millis(handshake.ping_interval.saturating_add(handshake.ping_timeout));
    let nsp = &shared.endpoint.namespace;
    let payload = shared.core.lock().connect_payload(shared.opts.auth.as_ref());
    let connect = sio::Packet::connect(nsp.as_str(), payload);
    ws.send(Message::text(message_text(&connect))).await.map_err(ws_error)?;
    let mut decoder = Decoder::new();
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            // Attachments of packets we do not expect before CONNECT; dropped with them.
            Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => return Err(Error::closed()),
            Some(Err(e)) => return Err(ws_error(e)),
        };
        let message = match eio::decode_text(&text) {
            Ok(EioPacket::Message(m)) => m,
            Ok(EioPacket::Ping(_)) => {
                ws.send(pong()).await.map_err(ws_error)?;
                continue;
            }
            Ok(EioPacket::Close) => return Err(Error::closed()),
            Ok(_) => continue,
            Err(e) => return Err(protocol(&format!("invalid Engine.IO packet: {e}"))),
        };
        let packet = match decoder.feed_text(&message) {
            Ok(Progress::Complete { packet, .. }) if packet.nsp == *nsp => packet,
            Ok(_) => continue,
            Err(e) => return Err(protocol(&format!("invalid Socket.IO packet: {e}"))),
        };
        match packet.kind {
            PacketType::Connect => {
                let sid = packet.data.as_ref().and_then(|d| d.get("sid")).and_then(Value::as_str);
                let Some(sid) = sid else {
                    // What a v2 server answers, per socket.io-client.
                    return Err(protocol("CONNECT without a sid: is the server Socket.IO v2?"));
                };
                let pid = packet.data.as_ref().and_then(|d| d.get("pid")).and_then(Value::as_str);
                return Ok(Conn { ws, sid: sid.to_owned(), pid: pid.map(str::to_owned), heartbeat });
            }
            PacketType::ConnectError => return Err(ConnectError::from_payload(packet.data).into_error()),
            _ => tracing::debug!(kind = ?packet.kind, "ignoring a packet before CONNECT was answered"),
        }
    }
}

/// Serve connections until the run ends for good.
pub(super) async fn run(shared: Arc<Shared>, mut conn: Active, token: CancellationToken) {
    loop {
        let reason = match serve(&shared, conn, &token).await {
            Ended::Closing => DisconnectReason::IoClientDisconnect,
            Ended::Lost(reason) => reason,
        };
        tracing::debug!(%reason, ns = %shared.endpoint.namespace, "socket.io client disconnected");
        shared.core.lock().lost();
        if !reason.reconnects() || !shared.opts.reconnect.enabled {
            return shared.finish(Some(SocketIoEvent::Disconnect { reason }));
        }
        // State first: whoever hears the event sees the client reconnecting.
        shared.set_state(ClientState::Reconnecting);
        shared.emit(SocketIoEvent::Disconnect { reason });
        match reconnect(&shared, &token).await {
            Some(c) => conn = c.activate(&shared),
            None => return shared.finish(None),
        }
    }
}

/// Sleep the backoff and try again, until connected (`Some`), refused by the
/// server, out of attempts, or stopped.
async fn reconnect(shared: &Shared, token: &CancellationToken) -> Option<Conn> {
    let policy = &shared.opts.reconnect;
    let mut attempt = 0u32;
    loop {
        if policy.max_attempts.is_some_and(|max| attempt >= max) {
            shared.emit(SocketIoEvent::ReconnectFailed);
            return None;
        }
        let delay = backoff(policy, attempt, rand::random());
        attempt = attempt.saturating_add(1);
        let try_once = async {
            tokio::time::sleep(delay).await;
            tokio::time::timeout(shared.opts.connect_timeout, open(shared))
                .await
                .unwrap_or_else(|_| Err(Error::timeout("connect")))
        };
        let outcome = tokio::select! {
            biased;
            () = token.cancelled() => return None,
            r = try_once => r,
        };
        match outcome {
            Ok(conn) => return Some(conn),
            Err(e) => {
                tracing::debug!(attempt, error = %e, "reconnection attempt failed");
                shared.connect_failed(&e);
                // A refusal is the server's answer, not a hiccup: like
                // socket.io-client, stop rather than ask again and again.
                if ConnectError::of(&e).is_some() {
                    return None;
                }
            }
        }
    }
}

/// Run one connection: write the buffer, then read and write until it ends.
async fn serve(shared: &Arc<Shared>, conn: Active, token: &CancellationToken) -> Ended {
    let Active { ws, epoch, heartbeat } = conn;
    let (mut sink, mut stream) = ws.split();
    if let Err(e) = write_queued(shared, &mut sink).await {
        return Ended::Lost(write_reason(&e));
    }
    let mut reader = Reader { shared, epoch, decoder: Decoder::new() };
    let silence = tokio::time::sleep(heartbeat);
    tokio::pin!(silence);
    loop {
        let retry_at = shared.core.lock().retried.deadline();
        tokio::select! {
            biased;
            () = token.cancelled() => {
                goodbye(shared, &mut sink, &mut stream).await;
                return Ended::Closing;
            }
            () = &mut silence => return Ended::Lost(DisconnectReason::PingTimeout),
            () = shared.wake.notified() => {
                if let Err(e) = write_queued(shared, &mut sink).await {
                    return Ended::Lost(write_reason(&e));
                }
            }
            () = crate::client::retry::sleep_until(retry_at) => {
                shared.core.lock().retried.expire();
                if let Err(e) = write_queued(shared, &mut sink).await {
                    return Ended::Lost(write_reason(&e));
                }
            }
            frame = stream.next() => {
                let step = match frame {
                    Some(Ok(Message::Text(text))) => reader.text(&text),
                    Some(Ok(Message::Binary(data))) => reader.binary(data),
                    Some(Ok(Message::Close(_))) | None => Err(DisconnectReason::TransportClose),
                    // tungstenite answers WebSocket pings itself while we keep reading.
                    Some(Ok(_)) => Ok(Step::Continue),
                    Some(Err(e)) => Err(read_reason(&e)),
                };
                match step {
                    Ok(Step::Continue) => {}
                    Ok(Step::Ping) => {
                        silence.as_mut().reset(Instant::now() + heartbeat);
                        if let Err(e) = sink.send(pong()).await {
                            return Ended::Lost(write_reason(&e));
                        }
                    }
                    Err(reason) => {
                        // Flush tungstenite's close reply, if any, so the server sees a clean end.
                        let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
                        return Ended::Lost(reason);
                    }
                }
            }
        }
    }
}

/// Best effort on `close()`: what was emitted before still goes out, then
/// the namespace is left (DISCONNECT) and the WebSocket closed.
async fn goodbye(shared: &Shared, sink: &mut Sink, stream: &mut futures_util::stream::SplitStream<Ws>) {
    let bye = Message::text(message_text(&sio::Packet::disconnect(shared.endpoint.namespace.as_str())));
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = write_queued(shared, sink).await;
        if sink.send(bye).await.is_ok() && sink.close().await.is_ok() {
            // Wait for the server's close frame (the handshake's end).
            while let Some(Ok(_)) = stream.next().await {}
        }
    })
    .await;
}

/// What the connection loop does after a frame.
enum Step {
    Continue,
    /// The server pinged: answer and restart the heartbeat timer.
    Ping,
}

/// Reads the frames of one connection.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    epoch: u64,
    decoder: Decoder,
}

impl Reader<'_> {
    fn text(&mut self, text: &str) -> Result<Step, DisconnectReason> {
        match eio::decode_text(text) {
            Ok(EioPacket::Ping(_)) => Ok(Step::Ping),
            Ok(EioPacket::Message(m)) => {
                let progress = self.decoder.feed_text(&m);
                self.progress(progress)
            }
            // A `b<base64>` binary message, which servers may send even over WebSocket.
            Ok(EioPacket::Binary(data)) => self.binary(data),
            Ok(EioPacket::Close) => Err(DisconnectReason::TransportClose),
            Ok(_) => Ok(Step::Continue),
            Err(e) => {
                tracing::debug!(error = %e, "invalid Engine.IO packet");
                Err(DisconnectReason::ParseError)
            }
        }
    }

    fn binary(&mut self, data: Bytes) -> Result<Step, DisconnectReason> {
        let progress = self.decoder.feed_binary(data);
        self.progress(progress)
    }

    fn progress(&self, progress: Result<Progress, sio::Error>) -> Result<Step, DisconnectReason> {
        match progress {
            Ok(Progress::Complete { packet, attachments }) => {
                self.packet(packet, attachments)?;
                Ok(Step::Continue)
            }
            Ok(Progress::NeedAttachments(_)) => Ok(Step::Continue),
            Err(e) => {
                tracing::debug!(error = %e, "invalid Socket.IO packet");
                Err(DisconnectReason::ParseError)
            }
        }
    }

    fn packet(&self, mut packet: sio::Packet, attachments: Vec<Bytes>) -> Result<(), DisconnectReason> {
        let shared = self.shared;
        if packet.nsp != shared.endpoint.namespace {
            return Ok(()); // another namespace's traffic, as socket.io-client ignores it
        }
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => {
                let (event, mut args) = event_of(&mut packet, attachments)?;
                if packet.id.is_none() {
                    let mut items = args.into_vec();
                    shared.core.lock().take_offset(&mut items);
                    args = Args::new(items);
                }
                dispatch(shared, event, args, packet.id, self.epoch);
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let id = packet.id.ok_or(DisconnectReason::ParseError)?;
                let args = args_of(&mut packet, attachments)?;
                if shared.core.lock().settle_ack(id, Args::new(args)) {
                    shared.wake.notify_one(); // the next at-least-once emit may go
                }
            }
            PacketType::Disconnect => return Err(DisconnectReason::IoServerDisconnect),
            PacketType::ConnectError => {
                // Only expected in answer to CONNECT; later it is still the
                // server refusing this socket, so it ends without retrying.
                let refusal = ConnectError::from_payload(packet.data);
                shared.emit(SocketIoEvent::ConnectError { message: refusal.message, data: refusal.data });
                return Err(DisconnectReason::IoServerDisconnect);
            }
            PacketType::Connect => tracing::debug!("ignoring a second CONNECT"),
        }
        Ok(())
    }
}

/// The event name and arguments of an EVENT / BINARY_EVENT.
fn event_of(packet: &mut sio::Packet, attachments: Vec<Bytes>) -> Result<(String, Args), DisconnectReason> {
    let mut items = args_of(packet, attachments)?.into_iter();
    let event = match items.next() {
        Some(Data::String(s)) => s,
        // The reference accepts numeric event names.
        Some(Data::Number(n)) => n.to_string(),
        _ => return Err(DisconnectReason::ParseError),
    };
    Ok((event, Args::new(items.collect())))
}

/// The argument array of an EVENT / ACK with its attachments put back.
fn args_of(packet: &mut sio::Packet, attachments: Vec<Bytes>) -> Result<Vec<Data>, DisconnectReason> {
    match packet.take_data(attachments) {
        Ok(Some(Data::Array(items))) => Ok(items),
        _ => Err(DisconnectReason::ParseError),
    }
}

/// Run the event's handler (or the catch-all) on its own task, so that it
/// may await the server; its reply becomes the ack when one was asked for.
/// Without any handler the event goes to the event stream.
fn dispatch(shared: &Arc<Shared>, event: String, args: Args, id: Option<u64>, epoch: u64) {
    let specific = shared.handlers.read().get(&event).cloned();
    let any = shared.any.read().clone();
    // Handlers start here, in arrival order, and may ask `wants_ack()` both
    // while starting and while running.
    let reply = match (specific, any) {
        (Some(h), _) => dispatch::start_with_wants_ack(id.is_some(), || h(args)),
        (None, Some(h)) => dispatch::start_with_wants_ack(id.is_some(), || h(event.clone(), args)),
        (None, None) => {
            if id.is_some() {
                tracing::debug!(%event, "the server wants an ack but no handler is registered");
            }
            return shared.emit(SocketIoEvent::Event { event, args });
        }
    };
    let shared = shared.clone();
    tokio::spawn(dispatch::with_wants_ack(id.is_some(), async move {
        let reply = reply.await;
        let Some(id) = id else { return };
        let args = match reply {
            Reply::Data(args) => args,
            Reply::None => Args::none(),
            // As socket.io-client: an event nobody listens to is not acked.
            Reply::Unhandled => return,
            Reply::Error(e) => {
                tracing::warn!(%event, error = %e, "event handler failed; acking without arguments");
                Args::none()
            }
        };
        let (packet, attachments) =
            sio::Packet::ack(shared.endpoint.namespace.as_str(), id, Data::Array(args.into_vec()));
        shared.push_live(epoch, frames(&packet, attachments));
    }));
}

/// The frames of event `name` with `args`: a text EVENT, or a BINARY_EVENT
/// followed by one binary frame per attachment.
pub(super) fn event_frames(nsp: &str, name: Data, args: Args, id: Option<u64>) -> Vec<Message> {
    let mut items = Vec::with_capacity(args.len() + 1);
    items.push(name);
    items.extend(args.into_vec());
    let (packet, attachments) = sio::Packet::event(nsp, Data::Array(items), id);
    frames(&packet, attachments)
}

fn frames(packet: &sio::Packet, attachments: Vec<Bytes>) -> Vec<Message> {
    let mut out = Vec::with_capacity(1 + attachments.len());
    out.push(Message::text(message_text(packet)));
    // Over WebSocket an Engine.IO binary message is the bare bytes.
    out.extend(attachments.into_iter().map(Message::Binary));
    out
}

/// An Engine.IO `message` (`4`) carrying `packet`.
fn message_text(packet: &sio::Packet) -> String {
    let mut text = String::from(eio::PacketType::Message.as_char());
    sio::encode_into(packet, &mut text);
    text
}

fn pong() -> Message {
    Message::text(eio::encode_text(&EioPacket::Pong(None)))
}

/// Write everything queued, then flush once.
async fn write_queued(shared: &Shared, sink: &mut Sink) -> Result<(), tungstenite::Error> {
    let batch = shared.core.lock().take_batch();
    if batch.is_empty() {
        return Ok(());
    }
    for frame in batch {
        sink.feed(frame).await?;
    }
    sink.flush().await
}

/// An end of the stream, with or without a closing handshake, is a close
/// (what browsers and Node's `ws` report as code 1006); anything else failed.
fn read_reason(e: &tungstenite::Error) -> DisconnectReason {
    use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
    match e {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(ResetWithoutClosingHandshake) => DisconnectReason::TransportClose,
        _ => DisconnectReason::TransportError,
    }
}

fn write_reason(e: &tungstenite::Error) -> DisconnectReason {
    tracing::debug!(error = %e, "write failed");
    read_reason(e)
}

fn protocol(message: &str) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde_json::json;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    use super::*;
    use crate::client::socketio::{SocketIoClient, SocketIoOptions};

    const WAIT: Duration = Duration::from_secs(5);

    fn open_packet(ping_interval: u64, ping_timeout: u64) -> Message {
        let open = eio::OpenPacket {
            sid: "eio".into(),
            upgrades: Vec::new(),
            ping_interval,
            ping_timeout,
            max_payload: 1_000_000,
        };
        Message::text(eio::encode_text(&EioPacket::Open(open)))
    }

    /// A scripted server end: one accepted WebSocket, with the request's URI and `x-test` header.
    struct Peer {
        ws: WebSocketStream<TcpStream>,
        uri: String,
        header: Option<String>,
    }

    impl Peer {
        // The handshake callback's error type is tungstenite's, large or not.
        #[allow(clippy::result_large_err)]
        async fn accept(listener: &TcpListener) -> Self {
            let (tcp, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
            let (mut uri, mut header) = (String::new(), None);
            let ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
                uri = req.uri().to_string();
                header = req.headers().get("x-test").and_then(|v| v.to_str().ok()).map(str::to_owned);
                Ok(resp)
            })
            .await
            .unwrap();
            Self { ws, uri, header }
        }

        async fn send(&mut self, text: &str) {
            self.ws.send(Message::text(text)).await.unwrap();
        }

        async fn next(&mut self) -> Message {
            timeout(WAIT, self.ws.next()).await.unwrap().unwrap().unwrap()
        }

        async fn text(&mut self) -> String {
            match self.next().await {
                Message::Text(t) => t.to_string(),
                other => panic!("expected text, got {other:?}"),
            }
        }

        async fn binary(&mut self) -> Bytes {
            match self.next().await {
                Message::Binary(b) => b,
                other => panic!("expected binary, got {other:?}"),
            }
        }
    }

    /// The exact frames the client writes and reads against a scripted
    /// server: handshake, CONNECT with auth, pong, binary events and acks
    /// both ways in a namespace, then a silent server (ping timeout),
    /// reconnection and a clean close.
    #[tokio::test]
    async fn wire_heartbeat_and_ping_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut peer = Peer::accept(&listener).await;
            assert_eq!(peer.uri, "/socket.io/?EIO=4&transport=websocket");
            assert_eq!(peer.header.as_deref(), Some("yes"));
            peer.ws.send(open_packet(300, 100)).await.unwrap();
            assert_eq!(peer.text().await, r#"40/chat,{"token":"t"}"#);
            peer.send(r#"40/chat,{"sid":"s1"}"#).await;
            assert_eq!(peer.text().await, r#"451-/chat,0["up",{"_placeholder":true,"num":0}]"#);
            assert_eq!(peer.binary().await, Bytes::from_static(&[1, 2]));
            // Another namespace's event is ignored; ours asks for a binary ack.
            peer.send(r#"42["elsewhere"]"#).await;
            peer.send(r#"451-/chat,7["down",{"_placeholder":true,"num":0}]"#).await;
            peer.ws.send(Message::Binary(Bytes::from_static(&[3]))).await.unwrap();
            assert_eq!(peer.text().await, r#"461-/chat,7[{"_placeholder":true,"num":0}]"#);
            assert_eq!(peer.binary().await, Bytes::from_static(&[4]));
            peer.send(r#"43/chat,0["fine"]"#).await;
            // A ping, then silence: the client must give up after 300 + 100 ms.
            peer.send("2").await;
            assert_eq!(peer.text().await, "3");
            let silent = Instant::now();
            let dropped = timeout(WAIT, async { while let Some(Ok(_)) = peer.ws.next().await {} }).await;
            assert!(dropped.is_ok(), "the client never dropped a silent server");
            let waited = silent.elapsed();
            assert!(waited >= Duration::from_millis(350), "gave up too early: {waited:?}");

            let mut peer = Peer::accept(&listener).await;
            peer.ws.send(open_packet(5000, 5000)).await.unwrap();
            assert_eq!(peer.text().await, r#"40/chat,{"token":"t"}"#);
            peer.send(r#"40/chat,{"sid":"s2"}"#).await;
            // On close(): what was emitted, then DISCONNECT.
            assert_eq!(peer.text().await, r#"42/chat,["bye"]"#);
            assert_eq!(peer.text().await, "41/chat,");
        });

        let mut opts = SocketIoOptions { auth: Some(json!({"token": "t"})), ..SocketIoOptions::default() };
        opts.reconnect.base = Duration::from_millis(10);
        opts.headers.insert("x-test", HeaderValue::from_static("yes"));
        let client = SocketIoClient::new(&format!("http://{addr}/chat"), opts).unwrap();
        client.on("down", |args: Args| async move {
            assert_eq!(args, Args::one(Data::Binary(Bytes::from_static(&[3]))));
            Args::one(Data::Binary(Bytes::from_static(&[4])))
        });
        let mut events = client.events();
        timeout(WAIT, client.open()).await.unwrap().unwrap();
        assert_eq!(client.id().as_deref(), Some("s1"));
        let reply = client.emit_with_ack("up", Args::one(Data::Binary(Bytes::from_static(&[1, 2]))), WAIT).await;
        assert_eq!(reply.unwrap(), Args::one(Data::from("fine")));

        let mut next = async || timeout(WAIT, events.recv()).await.unwrap().unwrap();
        assert_eq!(next().await, SocketIoEvent::Connect { id: "s1".into() });
        assert_eq!(next().await, SocketIoEvent::Disconnect { reason: DisconnectReason::PingTimeout });
        assert_eq!(next().await, SocketIoEvent::Connect { id: "s2".into() });
        client.emit("bye", ()).unwrap();
        timeout(WAIT, client.close()).await.unwrap();
        assert_eq!(next().await, SocketIoEvent::Disconnect { reason: DisconnectReason::IoClientDisconnect });
        timeout(WAIT, server).await.unwrap().unwrap();
    }

    #[test]
    fn packets_to_frames() {
        let frames = event_frames("/", Data::from("e"), Args::new(vec![Data::from(json!(1)), Data::Null]), None);
        assert_eq!(frames, [Message::text(r#"42["e",1,null]"#)]);
        let frames = event_frames("/a", Data::from("e"), Args::one(Data::Binary(Bytes::from_static(b"x"))), Some(3));
        assert_eq!(
            frames,
            [
                Message::text(r#"451-/a,3["e",{"_placeholder":true,"num":0}]"#),
                Message::Binary(Bytes::from_static(b"x"))
            ]
        );
        assert_eq!(pong(), Message::text("3"));
    }

    #[test]
    fn events_from_packets() {
        let mut p = sio::decode(r#"2["name",1,{"a":null}]"#).unwrap();
        let (event, args) = event_of(&mut p, Vec::new()).unwrap();
        assert_eq!((event.as_str(), args.json()), ("name", json!([1, {"a": null}])));
        let mut numeric = sio::decode("2[7]").unwrap();
        assert_eq!(event_of(&mut numeric, Vec::new()).unwrap(), ("7".to_owned(), Args::none()));
        let mut binary = sio::decode(r#"51-["b",{"_placeholder":true,"num":0}]"#).unwrap();
        let (_, args) = event_of(&mut binary, vec![Bytes::from_static(b"z")]).unwrap();
        assert_eq!(args, Args::one(Data::Binary(Bytes::from_static(b"z"))));
        let mut missing = sio::decode(r#"51-["b",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(event_of(&mut missing, Vec::new()).unwrap_err(), DisconnectReason::ParseError);
    }
}
