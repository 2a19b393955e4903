//! Protocol-neutral packets the hub fans out, encoded lazily once per wire
//! protocol: a broadcast to ten thousand sockets serializes at most once for
//! each protocol present among them.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;

use super::socket::Sid;
use crate::protocol::native::ServerMessage;
use crate::transport::Frame;

/// The wire protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// The plain JSON protocol at `/ws`.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Packet {
    /// An application event, with an ack id when a reply is expected.
    Event { event: String, data: Value, id: Option<u64> },
    /// A room message relayed from a client.
    Message { room: String, from: Sid, user_id: Option<String>, payload: Value },
    /// Another socket entered a room.
    UserJoined { room: String, sid: Sid, user_id: Option<String> },
    /// Another socket left a room.
    UserLeft { room: String, sid: Sid, user_id: Option<String> },
}

impl Packet {
    fn encode(&self, protocol: Protocol) -> Frame {
        match protocol {
            Protocol::Json => self.to_json().encode().into(),
        }
    }

    fn to_json(&self) -> ServerMessage<'_> {
        fn opt(u: &Option<String>) -> Option<Cow<'_, str>> {
            u.as_deref().map(Cow::Borrowed)
        }
        match self {
            Packet::Event { event, data, id } => {
                ServerMessage::Event { event: event.into(), data: Cow::Borrowed(data), id: *id }
            }
            Packet::Message { room, from, user_id, payload } => ServerMessage::Message {
                room: room.into(),
                from: from.as_str().into(),
                user_id: opt(user_id),
                payload: Cow::Borrowed(payload),
            },
            Packet::UserJoined { room, sid, user_id } => {
                ServerMessage::UserJoined { room: room.into(), client_id: sid.as_str().into(), user_id: opt(user_id) }
            }
            Packet::UserLeft { room, sid, user_id } => {
                ServerMessage::UserLeft { room: room.into(), client_id: sid.as_str().into(), user_id: opt(user_id) }
            }
        }
    }
}

/// A packet with its per-protocol encodings, computed on first use.
#[derive(Debug)]
pub(crate) struct Encoded {
    packet: Packet,
    json: OnceLock<Frame>,
}

impl Encoded {
    pub fn new(packet: Packet) -> Self {
        Self { packet, json: OnceLock::new() }
    }

    /// The frame for `protocol`: a refcounted clone of the one encoding.
    pub fn frame(&self, protocol: Protocol) -> Frame {
        let cell = match protocol {
            Protocol::Json => &self.json,
        };
        cell.get_or_init(|| self.packet.encode(protocol)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_once_and_shares_the_buffer() {
        let e = Encoded::new(Packet::Event { event: "e".into(), data: serde_json::json!({"a": 1}), id: None });
        let (Frame::Text(a), Frame::Text(b)) = (e.frame(Protocol::Json), e.frame(Protocol::Json)) else {
            panic!("text frames expected");
        };
        assert_eq!(a.as_str(), r#"{"type":"event","event":"e","data":{"a":1}}"#);
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr(), "same allocation, not re-encoded");
    }
}
