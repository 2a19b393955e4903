//! Protocol-neutral packets the hub fans out, encoded lazily once per wire
//! protocol: a broadcast to ten thousand sockets serializes at most once for
//! each protocol present among them.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;

use super::args::{Args, Data};
use super::socket::Sid;
use crate::presence::{PresenceEvent, PresenceKind};
use crate::protocol::native::ServerMessage;
use crate::protocol::socketio;
use crate::recovery::Offset;
use crate::transport::Frame;

/// The wire protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The plain JSON protocol at `/ws`.
    Json,
    /// Socket.IO v5 over Engine.IO v4: frames are Engine.IO packets.
    SocketIo,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Packet {
    /// An application event, with an ack id when a reply is expected.
    Event { event: String, args: Args, id: Option<u64> },
    /// A room message relayed from a JSON-protocol client.
    Message { room: String, from: Sid, user_id: Option<String>, payload: Value },
    /// Another socket entered a room (JSON protocol only).
    UserJoined { room: String, sid: Sid, user_id: Option<String> },
    /// Another socket left a room (JSON protocol only).
    UserLeft { room: String, sid: Sid, user_id: Option<String> },
    /// A member of a room with presence joined, left or changed its
    /// metadata; `by` is the socket that caused it, when known.
    Presence { event: PresenceEvent, by: Option<String> },
}

impl Packet {
    /// Whether connection state recovery keeps this packet and gives it an
    /// offset: application events without ack, and room messages.
    /// Presence and join notices are state, queried again after a reconnect.
    pub(crate) fn recoverable(&self) -> bool {
        matches!(self, Packet::Event { id: None, .. } | Packet::Message { .. })
    }

    /// The frames of this packet for `protocol` in namespace `nsp`, with its
    /// recovery offset; empty when the protocol has no representation for it.
    fn encode(&self, protocol: Protocol, nsp: &str, offset: Option<Offset>) -> Vec<Frame> {
        let offset = offset.map(|o| o.to_string());
        match protocol {
            Protocol::Json => vec![self.to_json(offset.as_deref()).encode().into()],
            Protocol::SocketIo => self.to_socketio(nsp, offset),
        }
    }

    fn to_json<'a>(&'a self, offset: Option<&'a str>) -> ServerMessage<'a> {
        fn opt(u: &Option<String>) -> Option<Cow<'_, str>> {
            u.as_deref().map(Cow::Borrowed)
        }
        match self {
            Packet::Event { event, args, id } => ServerMessage::Event {
                event: event.into(),
                data: Cow::Owned(args.json()),
                id: *id,
                offset: offset.map(Cow::Borrowed),
            },
            Packet::Message { room, from, user_id, payload } => ServerMessage::Message {
                room: room.into(),
                from: from.as_str().into(),
                user_id: opt(user_id),
                payload: Cow::Borrowed(payload),
                offset: offset.map(Cow::Borrowed),
            },
            Packet::UserJoined { room, sid, user_id } => ServerMessage::UserJoined {
                room: room.into(),
                client_id: Some(sid.as_str().into()),
                user_id: opt(user_id),
                member: None,
            },
            Packet::UserLeft { room, sid, user_id } => ServerMessage::UserLeft {
                room: room.into(),
                client_id: Some(sid.as_str().into()),
                user_id: opt(user_id),
                member: None,
            },
            Packet::Presence { event, by } => {
                let (room, member) = (event.room.as_str().into(), Some(Cow::Owned(event.payload())));
                let client_id = by.as_deref().map(Cow::Borrowed);
                let user_id = (!event.member.anonymous).then_some(Cow::Borrowed(event.member.user_id.as_str()));
                match event.kind {
                    PresenceKind::Join => ServerMessage::UserJoined { room, client_id, user_id, member },
                    PresenceKind::Leave => ServerMessage::UserLeft { room, client_id, user_id, member },
                    PresenceKind::Update => ServerMessage::Presence { room, member: Cow::Owned(event.payload()) },
                }
            }
        }
    }

    /// Socket.IO carries the offset as the event's last argument
    /// (socket.io-client keeps the last string argument as its offset).
    fn to_socketio(&self, nsp: &str, offset: Option<String>) -> Vec<Frame> {
        let with_offset = |args: &[Data]| -> Vec<Data> {
            let mut all = args.to_vec();
            all.extend(offset.clone().map(Data::String));
            all
        };
        match self {
            Packet::Event { event, args, id } if offset.is_some() => {
                socketio_event(nsp, event, &with_offset(args.as_slice()), *id)
            }
            Packet::Event { event, args, id } => socketio_event(nsp, event, args.as_slice(), *id),
            // A JSON client's room message reaches Socket.IO clients as a
            // `message` event with one object argument.
            Packet::Message { room, from, user_id, payload } => {
                let arg =
                    serde_json::json!({"room": room, "from": from.as_str(), "userId": user_id, "payload": payload});
                socketio_event(nsp, "message", &with_offset(&[Data::from(arg)]), None)
            }
            Packet::Presence { event, .. } => {
                socketio_event(nsp, event.kind.event(), &[Data::from(event.payload())], None)
            }
            Packet::UserJoined { .. } | Packet::UserLeft { .. } => Vec::new(),
        }
    }
}

/// `4` + a Socket.IO EVENT (or BINARY_EVENT followed by its attachments).
pub(crate) fn socketio_event(nsp: &str, event: &str, args: &[Data], id: Option<u64>) -> Vec<Frame> {
    let mut list = Vec::with_capacity(args.len() + 1);
    list.push(Data::String(event.to_owned()));
    list.extend(args.iter().cloned());
    let (packet, attachments) = socketio::Packet::event(nsp, Data::Array(list), id);
    socketio_frames(&packet, attachments)
}

/// `4` + a Socket.IO ACK (or BINARY_ACK followed by its attachments).
pub(crate) fn socketio_ack(nsp: &str, id: u64, args: Args) -> Vec<Frame> {
    let (packet, attachments) = socketio::Packet::ack(nsp, id, Data::Array(args.into_vec()));
    socketio_frames(&packet, attachments)
}

pub(crate) fn socketio_frames(packet: &socketio::Packet, attachments: Vec<bytes::Bytes>) -> Vec<Frame> {
    let mut text = String::from("4");
    socketio::encode_into(packet, &mut text);
    let mut frames = Vec::with_capacity(1 + attachments.len());
    frames.push(Frame::Text(text.into()));
    frames.extend(attachments.into_iter().map(Frame::Binary));
    frames
}

/// A packet with its per-protocol encodings, computed on first use.
#[derive(Debug)]
pub(crate) struct Encoded<'a> {
    packet: Packet,
    nsp: &'a str,
    offset: Option<Offset>,
    json: OnceLock<Vec<Frame>>,
    socketio: OnceLock<Vec<Frame>>,
}

impl<'a> Encoded<'a> {
    pub fn new(packet: Packet, nsp: &'a str) -> Self {
        Self::with_offset(packet, nsp, None)
    }

    /// A recoverable packet with the offset recovery gave it.
    pub fn with_offset(packet: Packet, nsp: &'a str, offset: Option<Offset>) -> Self {
        Self { packet, nsp, offset, json: OnceLock::new(), socketio: OnceLock::new() }
    }

    /// The frames for `protocol`, shared by every recipient (refcounted payloads).
    pub fn frames(&self, protocol: Protocol) -> &[Frame] {
        let cell = match protocol {
            Protocol::Json => &self.json,
            Protocol::SocketIo => &self.socketio,
        };
        cell.get_or_init(|| self.packet.encode(protocol, self.nsp, self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_once_and_shares_the_buffer() {
        let e = Encoded::new(
            Packet::Event { event: "e".into(), args: Args::one(serde_json::json!({"a": 1})), id: None },
            "/",
        );
        let (Frame::Text(a), Frame::Text(b)) = (&e.frames(Protocol::Json)[0], &e.frames(Protocol::Json)[0]) else {
            panic!("text frames expected");
        };
        assert_eq!(a.as_str(), r#"{"type":"event","event":"e","data":{"a":1}}"#);
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "same allocation, not re-encoded");
        let Frame::Text(sio) = &e.frames(Protocol::SocketIo)[0] else { panic!("text") };
        assert_eq!(sio.as_str(), r#"42["e",{"a":1}]"#);
    }

    #[test]
    fn socketio_binary_and_namespace() {
        let args = Args::new(vec![Data::Binary(bytes::Bytes::from_static(b"\x01\x02"))]);
        let frames = socketio_event("/chat", "file", args.as_slice(), Some(3));
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::Text(r#"451-/chat,3["file",{"_placeholder":true,"num":0}]"#.into()));
        assert_eq!(frames[1], Frame::Binary(bytes::Bytes::from_static(b"\x01\x02")));
        let joined = Packet::UserJoined { room: "r".into(), sid: Sid::generate(), user_id: None };
        assert!(Encoded::new(joined, "/").frames(Protocol::SocketIo).is_empty());
    }

    #[test]
    fn the_offset_is_the_last_socketio_argument_and_a_json_field() {
        let packet = Packet::Event { event: "e".into(), args: Args::one(serde_json::json!(1)), id: None };
        let e = Encoded::with_offset(packet, "/", Some(Offset { ms: 7, seq: 2 }));
        assert_eq!(e.frames(Protocol::SocketIo)[0], Frame::Text(r#"42["e",1,"7-2"]"#.into()));
        assert_eq!(
            e.frames(Protocol::Json)[0],
            Frame::Text(r#"{"type":"event","event":"e","data":1,"offset":"7-2"}"#.into())
        );
    }
}
