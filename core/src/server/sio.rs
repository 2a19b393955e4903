//! The Socket.IO v5 layer of one Engine.IO session: namespace connects with
//! the connect hook, events and acks (binary included) and disconnects. Each
//! connected namespace is a hub [`Socket`] sharing the session's outbox, so
//! Socket.IO and JSON-protocol sockets meet in the same rooms.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::ServerInner;
use crate::auth::Rejection;
use crate::hub::args::{Args, Data};
use crate::hub::dispatch::{self, Outcome};
use crate::hub::handler::Reply;
use crate::hub::packet::{self, Protocol};
use crate::hub::socket::{DisconnectReason, Handshake, NewSocket, Sid, Socket};
use crate::protocol::socketio::{self, Decoder, PacketType, Progress};
use crate::transport::outbox::Outbox;

pub(crate) struct SioSession {
    server: Arc<ServerInner>,
    handshake: Arc<Handshake>,
    outbox: Arc<Outbox>,
    sockets: HashMap<String, Socket>,
    decoder: Decoder,
    /// Tells the session that the socket of a namespace was asked to close.
    on_socket_closed: Arc<dyn Fn(String) + Send + Sync>,
}

impl SioSession {
    /// A session; `on_socket_closed(namespace)` must lead the Engine.IO task
    /// to call [`Self::socket_closed`].
    pub fn new(
        server: Arc<ServerInner>,
        handshake: Arc<Handshake>,
        outbox: Arc<Outbox>,
        on_socket_closed: Arc<dyn Fn(String) + Send + Sync>,
    ) -> Self {
        // A binary packet's attachments together are held to one message's bound.
        let decoder =
            Decoder::with_limits(crate::protocol::socketio::DEFAULT_MAX_ATTACHMENTS, server.config.max_payload);
        Self { server, handshake, outbox, sockets: HashMap::new(), decoder, on_socket_closed }
    }

    /// Whether any namespace is connected.
    pub fn has_connected(&self) -> bool {
        !self.sockets.is_empty()
    }

    /// A text Engine.IO message. An error ends the whole session.
    pub async fn on_text(&mut self, text: &str) -> Result<(), DisconnectReason> {
        let progress = self.decoder.feed_text(text);
        self.on_progress(progress).await
    }

    /// A binary Engine.IO message (an attachment).
    pub async fn on_binary(&mut self, data: Bytes) -> Result<(), DisconnectReason> {
        let progress = self.decoder.feed_binary(data);
        self.on_progress(progress).await
    }

    async fn on_progress(&mut self, progress: Result<Progress, socketio::Error>) -> Result<(), DisconnectReason> {
        match progress {
            Ok(Progress::Complete { packet, attachments }) => self.on_packet(packet, attachments).await,
            Ok(Progress::NeedAttachments(_)) => Ok(()),
            Err(e) => {
                tracing::debug!(error = %e, "invalid Socket.IO packet");
                Err(DisconnectReason::ParseError)
            }
        }
    }

    async fn on_packet(
        &mut self,
        mut packet: socketio::Packet,
        attachments: Vec<Bytes>,
    ) -> Result<(), DisconnectReason> {
        let nsp = std::mem::take(&mut packet.nsp);
        let nsp = if nsp.is_empty() { "/".to_owned() } else { nsp };
        match packet.kind {
            PacketType::Connect => {
                // Boxed: the rare connect path would otherwise size every
                // idle session's future.
                Box::pin(self.connect(nsp, packet.data)).await;
                Ok(())
            }
            PacketType::Disconnect => {
                if let Some(socket) = self.sockets.remove(&nsp) {
                    self.finish(socket, DisconnectReason::ClientNamespaceDisconnect);
                }
                Ok(())
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(socket) = self.sockets.get(&nsp).cloned() else {
                    return Ok(()); // not connected to that namespace: ignored, as socket.io does
                };
                let mut items = args_of(&mut packet, attachments)?;
                let event = match items.first() {
                    Some(Data::String(s)) => s.clone(),
                    Some(Data::Number(n)) => n.to_string(),
                    _ => return Err(DisconnectReason::ParseError),
                };
                items.remove(0);
                let id = packet.id;
                dispatch::start_event(socket, event, Args::new(items), id, move |s, e, outcome| {
                    respond(s, e, outcome, id)
                })
                .await;
                Ok(())
            }
            PacketType::Ack | PacketType::BinaryAck => {
                let Some(socket) = self.sockets.get(&nsp).cloned() else { return Ok(()) };
                let id = packet.id.ok_or(DisconnectReason::ParseError)?;
                let args = Args::new(args_of(&mut packet, attachments)?);
                // A late ack (after its timeout) is dropped; an id never issued is a protocol error.
                if !socket.resolve_ack(id, args) && !socket.ack_issued(id) {
                    return Err(DisconnectReason::ParseError);
                }
                Ok(())
            }
            PacketType::ConnectError => Err(DisconnectReason::ParseError),
        }
    }

    /// A namespace CONNECT: run the connect hook with the auth payload, then
    /// create the socket, or answer CONNECT_ERROR. With connection state
    /// recovery, a client bringing `pid` (and `offset`) of a session still
    /// kept gets that socket back and what it missed.
    async fn connect(&mut self, nsp: String, auth: Option<Value>) {
        if self.sockets.contains_key(&nsp) {
            return;
        }
        let Some(ns) = self.server.hub.get(&nsp) else {
            return self.connect_error(&nsp, &Rejection::new("Invalid namespace"));
        };
        let auth = auth.unwrap_or(Value::Null);
        let resumed = match auth.get("pid").and_then(Value::as_str) {
            Some(pid) if ns.recovers() => {
                ns.take_session(pid, auth.get("offset").and_then(Value::as_str), &self.server.hub.counters).await
            }
            _ => None,
        };
        let handshake = Arc::new(Handshake { namespace: nsp.clone(), auth, ..(*self.handshake).clone() });
        let identity = ns.identify(handshake.clone(), self.server.config.handshake_timeout, resumed.as_ref()).await;
        let identity = match identity {
            Ok(i) => i,
            Err(rej) => return self.connect_error(&nsp, &rej),
        };
        let notify = self.on_socket_closed.clone();
        let name = nsp.clone();
        let socket = Socket::new(NewSocket {
            ns: ns.clone(),
            handshake,
            user_id: identity.user_id,
            data: identity.data,
            outbox: self.outbox.clone(),
            protocol: Protocol::SocketIo,
            counters: self.server.hub.counters.clone(),
            on_close: Some(Box::new(move || notify(name.clone()))),
            resumed: resumed.as_ref().map(|(s, _)| (Sid::from(s.sid.as_str()), s.pid.clone())),
            recovery: ns.recovers(),
        });
        let missed = match ns.open(&socket, resumed.as_ref()).await {
            Ok(missed) => missed,
            Err(rej) => return self.connect_error(&nsp, &rej),
        };
        let mut body = json!({"sid": socket.id().as_str()});
        if let Some(pid) = socket.pid() {
            body["pid"] = Value::from(pid);
        }
        let reply = socketio::Packet::connect(nsp.clone(), Some(body));
        let _ = socket.unhold(&packet::socketio_frames(&reply, Vec::new()), missed);
        self.sockets.insert(nsp.clone(), socket.clone());
        tracing::debug!(sid = %socket.id(), ns = %nsp, recovered = socket.recovered(), "socket.io connected");
        for h in ns.connection_handlers() {
            h(socket.clone()).await;
        }
    }

    fn connect_error(&self, nsp: &str, rej: &Rejection) {
        let mut body = json!({"message": rej.message});
        if let Some(data) = &rej.data {
            body["data"] = data.clone();
        }
        let mut p = socketio::Packet::new(PacketType::ConnectError, nsp);
        p.data = Some(body);
        let _ = self.outbox.push_all(&packet::socketio_frames(&p, Vec::new()), false);
    }

    /// A socket of this session was asked to close. Namespace-level reasons
    /// end that socket; a slow consumer ends the whole session.
    pub fn socket_closed(&mut self, nsp: &str) -> Result<(), DisconnectReason> {
        let Some(socket) = self.sockets.get(nsp) else { return Ok(()) };
        let reason = socket.close_reason().unwrap_or(DisconnectReason::ServerDisconnect);
        if reason == DisconnectReason::ForcedServerClose {
            // Every namespace is told, then the connection closes after them.
            let namespaces: Vec<String> = self.sockets.keys().cloned().collect();
            for nsp in namespaces {
                self.leave(&nsp);
            }
            return Err(reason);
        }
        if reason != DisconnectReason::ServerDisconnect {
            return Err(reason);
        }
        self.leave(nsp);
        Ok(())
    }

    /// Send `nsp`'s socket a DISCONNECT and take it out as server-disconnected.
    fn leave(&mut self, nsp: &str) {
        if let Some(socket) = self.sockets.remove(nsp) {
            let bye = socketio::Packet::disconnect(nsp);
            let _ = self.outbox.push_all(&packet::socketio_frames(&bye, Vec::new()), false);
            self.finish(socket, DisconnectReason::ServerDisconnect);
        }
    }

    /// The session ends: every socket goes with `reason`. No DISCONNECT
    /// packets: like socket.io on shutdown, the transport just closes, so
    /// clients see `transport close` and reconnect.
    pub fn close_all(&mut self, reason: DisconnectReason) {
        for (_, socket) in std::mem::take(&mut self.sockets) {
            self.finish(socket, reason);
        }
    }

    /// Take a socket out of the hub and run its disconnect handlers.
    fn finish(&self, socket: Socket, reason: DisconnectReason) {
        socket.close(reason);
        let reason = match socket.close_reason() {
            Some(DisconnectReason::ForcedServerClose) | None => reason,
            Some(own) => own,
        };
        let left = socket.0.ns.remove_parking(&socket, reason);
        self.server.hub.release_if_empty(&socket.0.ns);
        socket.release();
        tracing::debug!(sid = %socket.id(), %reason, "socket.io disconnected");
        if let Some(handlers) = socket.0.ns.clone().disconnected(socket, reason, left) {
            tokio::spawn(handlers);
        }
    }
}

/// The argument array of an EVENT/ACK with its attachments put back.
fn args_of(packet: &mut socketio::Packet, attachments: Vec<Bytes>) -> Result<Vec<Data>, DisconnectReason> {
    match packet.take_data(attachments) {
        Ok(Some(Data::Array(items))) => Ok(items),
        _ => Err(DisconnectReason::ParseError),
    }
}

/// Answer an event's outcome with an ACK when the client asked for one.
fn respond(socket: &Socket, event: String, outcome: Outcome, id: Option<u64>) {
    let Some(id) = id else { return };
    let args = match outcome {
        Outcome::Replied(Reply::Data(args)) => args,
        Outcome::Replied(Reply::None) => Args::none(),
        // Socket.IO has no error acks, and socket.io leaves events without a
        // listener unanswered: the client's ack times out.
        Outcome::NoHandler | Outcome::Replied(Reply::Unhandled) => return,
        Outcome::Refused(why) | Outcome::Replied(Reply::Error(why)) => {
            tracing::debug!(sid = %socket.id(), %event, error = %why, "event not handled");
            return;
        }
    };
    let _ = socket.push_frames(&packet::socketio_ack(socket.namespace(), id, args), false);
}
