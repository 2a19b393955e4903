//! What a node publishes for the others: a broadcast with its targeting,
//! encoded once per publish. Layout: a u32 (big-endian) header length, the
//! JSON header, then each binary attachment as a u32 length and its bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hub::args::{Args, Data};
use crate::hub::packet::Packet;
use crate::hub::socket::Sid;
use crate::presence::PresenceEvent;

/// Who gets a broadcast on the receiving node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Target {
    /// The node that sent it (it delivered locally already).
    pub origin: String,
    pub ns: String,
    /// Every room of the broadcast; empty for the whole namespace.
    pub rooms: Vec<String>,
    /// The room (of `rooms`) whose channel carried this copy: it reaches
    /// that room's members who are in none of the rooms before it, so a
    /// socket in several target rooms gets the message once.
    pub index: usize,
    pub except: Vec<String>,
    pub volatile: bool,
    /// `ns` is a dynamic namespace's label: the one copy goes to every
    /// child of it on the receiving node, for all of `rooms`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic: bool,
}

impl Target {
    /// The local delivery on a receiving node: (rooms, except).
    pub fn local(&self) -> (Vec<String>, Vec<String>) {
        if self.dynamic {
            return (self.rooms.clone(), self.except.clone());
        }
        let Some(room) = self.rooms.get(self.index) else { return (Vec::new(), self.except.clone()) };
        let mut except = self.except.clone();
        except.extend(self.rooms[..self.index].iter().cloned());
        (vec![room.clone()], except)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Wire {
    /// `args` is the argument array with binary parts as Socket.IO placeholders.
    Event {
        event: String,
        args: Value,
    },
    Message {
        room: String,
        from: String,
        user_id: Option<String>,
        payload: Value,
    },
    UserJoined {
        room: String,
        sid: String,
        user_id: Option<String>,
    },
    UserLeft {
        room: String,
        sid: String,
        user_id: Option<String>,
    },
    Presence {
        event: PresenceEvent,
        by: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    target: Target,
    packet: Wire,
}

/// Encode a broadcast; `None` for packets that do not travel (events
/// expecting acks: their replies cannot come back this way).
pub(crate) fn encode(target: Target, packet: &Packet) -> Option<Bytes> {
    let mut attachments = Vec::new();
    let packet = match packet {
        Packet::Event { id: Some(_), .. } => return None,
        Packet::Event { event, args, id: None } => {
            let (value, bins) = Data::Array(args.as_slice().to_vec()).deconstruct();
            attachments = bins;
            Wire::Event { event: event.clone(), args: value }
        }
        Packet::Message { room, from, user_id, payload } => Wire::Message {
            room: room.clone(),
            from: from.to_string(),
            user_id: user_id.clone(),
            payload: payload.clone(),
        },
        Packet::UserJoined { room, sid, user_id } => {
            Wire::UserJoined { room: room.clone(), sid: sid.to_string(), user_id: user_id.clone() }
        }
        Packet::UserLeft { room, sid, user_id } => {
            Wire::UserLeft { room: room.clone(), sid: sid.to_string(), user_id: user_id.clone() }
        }
        Packet::Presence { event, by } => Wire::Presence { event: event.clone(), by: by.clone() },
    };
    let header = serde_json::to_vec(&Header { target, packet }).ok()?;
    let size = 4 + header.len() + attachments.iter().map(|a| 4 + a.len()).sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_u32(header.len() as u32);
    out.put_slice(&header);
    for a in attachments {
        out.put_u32(a.len() as u32);
        out.put_slice(&a);
    }
    Some(out.freeze())
}

/// Decode what [`encode`] made; `None` for anything else.
pub(crate) fn decode(mut buf: Bytes) -> Option<(Target, Packet)> {
    let take = |buf: &mut Bytes| -> Option<Bytes> {
        if buf.remaining() < 4 {
            return None;
        }
        let len = buf.get_u32() as usize;
        (buf.remaining() >= len).then(|| buf.split_to(len))
    };
    let header = take(&mut buf)?;
    let Header { target, packet } = serde_json::from_slice(&header).ok()?;
    let mut attachments = Vec::new();
    while buf.has_remaining() {
        attachments.push(take(&mut buf)?);
    }
    let packet = match packet {
        Wire::Event { event, args } => match Data::reconstruct(args, attachments).ok()? {
            Data::Array(items) => Packet::Event { event, args: Args::new(items), id: None },
            _ => return None,
        },
        Wire::Message { room, from, user_id, payload } => {
            Packet::Message { room, from: Sid::from(from.as_str()), user_id, payload }
        }
        Wire::UserJoined { room, sid, user_id } => Packet::UserJoined { room, sid: Sid::from(sid.as_str()), user_id },
        Wire::UserLeft { room, sid, user_id } => Packet::UserLeft { room, sid: Sid::from(sid.as_str()), user_id },
        Wire::Presence { event, by } => Packet::Presence { event, by },
    };
    Some((target, packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(rooms: &[&str], index: usize) -> Target {
        Target {
            origin: "n1".into(),
            ns: "/chat".into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            index,
            except: vec!["sid1".into()],
            volatile: true,
            dynamic: false,
        }
    }

    #[test]
    fn round_trip_with_binary() {
        let args =
            Args::new(vec![Data::from(serde_json::json!({"a": 1})), Data::Binary(Bytes::from_static(b"\0\x01"))]);
        let packet = Packet::Event { event: "e".into(), args, id: None };
        let bytes = encode(target(&["a"], 0), &packet).expect("encodes");
        assert_eq!(decode(bytes), Some((target(&["a"], 0), packet)));
        assert_eq!(decode(Bytes::from_static(b"\0\0\0\x09not json!")), None);
        assert_eq!(decode(Bytes::from_static(b"\0\0")), None);
        let with_ack = Packet::Event { event: "e".into(), args: Args::none(), id: Some(1) };
        assert!(encode(target(&[], 0), &with_ack).is_none(), "acks do not cross nodes");
    }

    #[test]
    fn each_copy_reaches_members_not_in_an_earlier_room() {
        let t = target(&["a", "b", "c"], 2);
        assert_eq!(t.local(), (vec!["c".to_owned()], vec!["sid1".to_owned(), "a".to_owned(), "b".to_owned()]));
        assert_eq!(target(&[], 0).local(), (vec![], vec!["sid1".to_owned()]));
    }
}
