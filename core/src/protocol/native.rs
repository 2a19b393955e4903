//! The plain JSON protocol spoken at `/ws` (specified in `docs/protocol-json.md`).
//!
//! Decoding of client messages is lenient about the shapes used by common
//! hand-rolled `ws` servers (`{"type":"join","payload":"room"}`), strict about
//! types, and never panics: every failure is a [`DecodeError`] carrying the
//! error code the server sends back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Enter a room.
    Join { room: String },
    /// Leave a room.
    Leave { room: String },
    /// Relay `payload` to the other members of `room`.
    Message { room: String, payload: Value },
    /// An application event, acknowledged when `id` is set.
    Event { event: String, data: Value, id: Option<u64> },
    /// The reply to a server event that carried `id`.
    Ack { id: u64, data: Value },
    /// Application-level ping, answered by `pong` echoing `data`.
    Ping { data: Option<Value> },
}

/// Error codes of `{"type":"error"}` messages. The connection stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidJson,
    InvalidMessage,
    UnknownType,
    NotInRoom,
    JoinRefused,
    NoHandler,
    /// An event middleware refused the event.
    Refused,
    RateLimited,
    Internal,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::NotInRoom => "not_in_room",
            Self::JoinRefused => "join_refused",
            Self::NoHandler => "no_handler",
            Self::Refused => "refused",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
        }
    }
}

/// Why a client frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub code: ErrorCode,
    pub message: String,
    /// The ack id of the offending message, when it had a valid one.
    pub id: Option<u64>,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), id: None }
    }
}

/// Decode one text frame from a client.
pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(ErrorCode::InvalidJson, format!("invalid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(DecodeError::new(ErrorCode::InvalidJson, "a message must be a JSON object"));
    };
    let kind = match obj.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(DecodeError::new(ErrorCode::InvalidMessage, "field `type` must be a string")),
        None => return Err(DecodeError::new(ErrorCode::InvalidMessage, "missing field `type`")),
    };
    let id = optional_id(&obj)?;
    let with_id = |mut e: DecodeError| {
        e.id = id;
        e
    };
    match kind.as_str() {
        "join" => {
            let room = room_of(&mut obj)?;
            if room.len() > super::MAX_NAME_BYTES {
                return Err(DecodeError::new(ErrorCode::InvalidMessage, "`room` longer than 256 bytes"));
            }
            Ok(ClientMessage::Join { room })
        }
        "leave" => Ok(ClientMessage::Leave { room: room_of(&mut obj)? }),
        "message" => {
            let room = required_str(&obj, "room")?;
            let payload = obj.remove("payload").or_else(|| obj.remove("data")).unwrap_or(Value::Null);
            Ok(ClientMessage::Message { room, payload })
        }
        "event" => {
            let event = required_str(&obj, "event").map_err(with_id)?;
            if event.len() > super::MAX_NAME_BYTES {
                return Err(with_id(DecodeError::new(ErrorCode::InvalidMessage, "`event` longer than 256 bytes")));
            }
            let data = obj.remove("data").unwrap_or(Value::Null);
            Ok(ClientMessage::Event { event, data, id })
        }
        "ack" => {
            let id = id.ok_or_else(|| DecodeError::new(ErrorCode::InvalidMessage, "`ack` needs a numeric `id`"))?;
            Ok(ClientMessage::Ack { id, data: obj.remove("data").unwrap_or(Value::Null) })
        }
        "ping" => Ok(ClientMessage::Ping { data: obj.remove("data") }),
        other => Err(with_id(DecodeError::new(
            ErrorCode::UnknownType,
            format!("unknown message type `{}`", truncate(other, 64)),
        ))),
    }
}

fn optional_id(obj: &Map<String, Value>) -> Result<Option<u64>, DecodeError> {
    match obj.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| DecodeError::new(ErrorCode::InvalidMessage, "`id` must be a non-negative integer")),
        Some(_) => Err(DecodeError::new(ErrorCode::InvalidMessage, "`id` must be a non-negative integer")),
    }
}

fn required_str(obj: &Map<String, Value>, field: &str) -> Result<String, DecodeError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => {
            Err(DecodeError::new(ErrorCode::InvalidMessage, format!("`{field}` must not be empty")))
        }
        Some(_) => Err(DecodeError::new(ErrorCode::InvalidMessage, format!("`{field}` must be a string"))),
        None => Err(DecodeError::new(ErrorCode::InvalidMessage, format!("missing field `{field}`"))),
    }
}

/// `room`, or `payload` as a string, or `payload.room`.
fn room_of(obj: &mut Map<String, Value>) -> Result<String, DecodeError> {
    if obj.contains_key("room") {
        return required_str(obj, "room");
    }
    match obj.get("payload") {
        Some(Value::String(_)) => required_str(obj, "payload"),
        Some(Value::Object(p)) => required_str(p, "room"),
        _ => Err(DecodeError::new(ErrorCode::InvalidMessage, "missing field `room`")),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Encode a client message in the canonical shape (used by the Rust client).
pub fn encode_client(msg: &ClientMessage) -> String {
    let v = match msg {
        ClientMessage::Join { room } => serde_json::json!({"type": "join", "room": room}),
        ClientMessage::Leave { room } => serde_json::json!({"type": "leave", "room": room}),
        ClientMessage::Message { room, payload } => {
            serde_json::json!({"type": "message", "room": room, "payload": payload})
        }
        ClientMessage::Event { event, data, id: Some(id) } => {
            serde_json::json!({"type": "event", "event": event, "data": data, "id": id})
        }
        ClientMessage::Event { event, data, id: None } => {
            serde_json::json!({"type": "event", "event": event, "data": data})
        }
        ClientMessage::Ack { id, data } => serde_json::json!({"type": "ack", "id": id, "data": data}),
        ClientMessage::Ping { data: Some(data) } => serde_json::json!({"type": "ping", "data": data}),
        ClientMessage::Ping { data: None } => serde_json::json!({"type": "ping"}),
    };
    v.to_string()
}

/// A message from the server to a client. Borrowing so that a broadcast is
/// serialized straight from the data it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    #[serde(rename_all = "camelCase")]
    Connected {
        client_id: Cow<'a, str>,
        user_id: Option<Cow<'a, str>>,
        /// With connection state recovery: the token to reconnect with
        /// (`?resume=<token>&offset=<last offset>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Cow<'a, str>>,
        /// Whether this connection took up a previous one's session.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recovered: bool,
    },
    Joined {
        room: Cow<'a, str>,
    },
    Left {
        room: Cow<'a, str>,
    },
    #[serde(rename_all = "camelCase")]
    UserJoined {
        room: Cow<'a, str>,
        /// The socket that entered (absent when a cluster node reports it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<Cow<'a, str>>,
        user_id: Option<Cow<'a, str>>,
        /// In rooms with presence: the member (one per user, not per socket).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<Cow<'a, Value>>,
    },
    #[serde(rename_all = "camelCase")]
    UserLeft {
        room: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<Cow<'a, str>>,
        user_id: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member: Option<Cow<'a, Value>>,
    },
    /// A member's presence metadata changed.
    Presence {
        room: Cow<'a, str>,
        member: Cow<'a, Value>,
    },
    #[serde(rename_all = "camelCase")]
    Message {
        room: Cow<'a, str>,
        from: Cow<'a, str>,
        user_id: Option<Cow<'a, str>>,
        payload: Cow<'a, Value>,
        /// With connection state recovery: this message's position.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Cow<'a, str>>,
    },
    Event {
        event: Cow<'a, str>,
        #[serde(default)]
        data: Cow<'a, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Cow<'a, str>>,
    },
    Ack {
        id: u64,
        #[serde(default)]
        data: Cow<'a, Value>,
    },
    Error {
        code: Cow<'a, str>,
        message: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<Cow<'a, str>>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Cow<'a, Value>>,
    },
}

impl ServerMessage<'_> {
    /// Serialize to the text of one frame.
    pub fn encode(&self) -> String {
        // Serializing these types cannot fail: keys are strings, values are JSON.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"encode failed"}"#.to_owned())
    }

    /// Parse a frame received from a server (used by the Rust client).
    pub fn decode(text: &str) -> Result<ServerMessage<'static>, serde_json::Error> {
        serde_json::from_str::<ServerMessage<'_>>(text).map(ServerMessage::into_owned)
    }

    fn into_owned(self) -> ServerMessage<'static> {
        fn s(c: Cow<'_, str>) -> Cow<'static, str> {
            Cow::Owned(c.into_owned())
        }
        fn v(c: Cow<'_, Value>) -> Cow<'static, Value> {
            Cow::Owned(c.into_owned())
        }
        match self {
            Self::Connected { client_id, user_id, resume, recovered } => ServerMessage::Connected {
                client_id: s(client_id),
                user_id: user_id.map(s),
                resume: resume.map(s),
                recovered,
            },
            Self::Joined { room } => ServerMessage::Joined { room: s(room) },
            Self::Left { room } => ServerMessage::Left { room: s(room) },
            Self::UserJoined { room, client_id, user_id, member } => ServerMessage::UserJoined {
                room: s(room),
                client_id: client_id.map(s),
                user_id: user_id.map(s),
                member: member.map(v),
            },
            Self::UserLeft { room, client_id, user_id, member } => ServerMessage::UserLeft {
                room: s(room),
                client_id: client_id.map(s),
                user_id: user_id.map(s),
                member: member.map(v),
            },
            Self::Presence { room, member } => ServerMessage::Presence { room: s(room), member: v(member) },
            Self::Message { room, from, user_id, payload, offset } => ServerMessage::Message {
                room: s(room),
                from: s(from),
                user_id: user_id.map(s),
                payload: v(payload),
                offset: offset.map(s),
            },
            Self::Event { event, data, id, offset } => {
                ServerMessage::Event { event: s(event), data: v(data), id, offset: offset.map(s) }
            }
            Self::Ack { id, data } => ServerMessage::Ack { id, data: v(data) },
            Self::Error { code, message, id, room } => {
                ServerMessage::Error { code: s(code), message: s(message), id, room: room.map(s) }
            }
            Self::Pong { data } => ServerMessage::Pong { data: data.map(v) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn join_shapes() {
        for text in [
            r#"{"type":"join","room":"r1"}"#,
            r#"{"type":"join","payload":"r1"}"#,
            r#"{"type":"join","payload":{"room":"r1"}}"#,
        ] {
            assert_eq!(decode_client(text), Ok(ClientMessage::Join { room: "r1".into() }), "{text}");
        }
        assert_eq!(decode_client(r#"{"type":"leave","payload":"x"}"#), Ok(ClientMessage::Leave { room: "x".into() }));
    }

    #[test]
    fn message_payload_or_data() {
        let m = decode_client(r#"{"type":"message","room":"r","payload":{"a":1}}"#).unwrap();
        assert_eq!(m, ClientMessage::Message { room: "r".into(), payload: json!({"a":1}) });
        let m = decode_client(r#"{"type":"message","room":"r","data":[1]}"#).unwrap();
        assert_eq!(m, ClientMessage::Message { room: "r".into(), payload: json!([1]) });
    }

    #[test]
    fn event_with_and_without_id() {
        let m = decode_client(r#"{"type":"event","event":"e","data":1,"id":7}"#).unwrap();
        assert_eq!(m, ClientMessage::Event { event: "e".into(), data: json!(1), id: Some(7) });
        let m = decode_client(r#"{"type":"event","event":"e"}"#).unwrap();
        assert_eq!(m, ClientMessage::Event { event: "e".into(), data: Value::Null, id: None });
    }

    #[test]
    fn errors_have_codes() {
        let code = |t: &str| decode_client(t).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::InvalidJson);
        assert_eq!(code("[1,2]"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"room":"r"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","room":""}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"join","room":7}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"event","id":-1,"event":"e"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code(r#"{"type":"ack","data":1}"#), ErrorCode::InvalidMessage);
        let e = decode_client(r#"{"type":"nope","id":3}"#).unwrap_err();
        assert_eq!((e.code, e.id), (ErrorCode::UnknownType, Some(3)));
    }

    #[test]
    fn client_roundtrip() {
        let msgs = [
            ClientMessage::Join { room: "a".into() },
            ClientMessage::Leave { room: "a".into() },
            ClientMessage::Message { room: "a".into(), payload: json!({"x":[1,2]}) },
            ClientMessage::Event { event: "e".into(), data: json!("d"), id: Some(9) },
            ClientMessage::Event { event: "e".into(), data: json!(null), id: None },
            ClientMessage::Ack { id: 4, data: json!(true) },
            ClientMessage::Ping { data: Some(json!(1)) },
            ClientMessage::Ping { data: None },
        ];
        for m in msgs {
            assert_eq!(decode_client(&encode_client(&m)), Ok(m));
        }
    }

    #[test]
    fn server_roundtrip_and_shape() {
        let data = json!({"k": "v"});
        let m = ServerMessage::Message {
            room: "r".into(),
            from: "abc".into(),
            user_id: Some("u1".into()),
            payload: Cow::Borrowed(&data),
            offset: None,
        };
        let text = m.encode();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"type":"message","room":"r","from":"abc","userId":"u1","payload":{"k":"v"}})
        );
        assert_eq!(ServerMessage::decode(&text).unwrap(), m);
        let e =
            ServerMessage::Error { code: "not_in_room".into(), message: "m".into(), id: None, room: Some("r".into()) };
        assert_eq!(
            serde_json::from_str::<Value>(&e.encode()).unwrap(),
            json!({"type":"error","code":"not_in_room","message":"m","room":"r"})
        );
        let c = ServerMessage::Connected { client_id: "id".into(), user_id: None, resume: None, recovered: false };
        assert_eq!(
            serde_json::from_str::<Value>(&c.encode()).unwrap(),
            json!({"type":"connected","clientId":"id","userId":null})
        );
        let r = ServerMessage::Connected {
            client_id: "id".into(),
            user_id: None,
            resume: Some("p".into()),
            recovered: true,
        };
        assert_eq!(
            serde_json::from_str::<Value>(&r.encode()).unwrap(),
            json!({"type":"connected","clientId":"id","userId":null,"resume":"p","recovered":true})
        );
        assert_eq!(ServerMessage::decode(&r.encode()).unwrap(), r);
    }
}

/// What the Rust client encodes, the server decodes as sent; any text
/// decodes or errs, never panics.
#[cfg(test)]
mod round_trip {
    use proptest::prelude::*;

    use super::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            // Any finite float: serde_json's float_roundtrip reads each back bit for bit.
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Up to 40 characters: within `MAX_NAME_BYTES`.
    fn name() -> impl Strategy<Value = String> {
        "\\PC{1,40}"
    }

    fn message() -> impl Strategy<Value = ClientMessage> {
        prop_oneof![
            name().prop_map(|room| ClientMessage::Join { room }),
            name().prop_map(|room| ClientMessage::Leave { room }),
            (name(), json()).prop_map(|(room, payload)| ClientMessage::Message { room, payload }),
            (name(), json(), prop::option::of(any::<u64>())).prop_map(|(event, data, id)| ClientMessage::Event {
                event,
                data,
                id
            }),
            (any::<u64>(), json()).prop_map(|(id, data)| ClientMessage::Ack { id, data }),
            prop::option::of(json()).prop_map(|data| ClientMessage::Ping { data }),
        ]
    }

    proptest! {
        #[test]
        fn a_client_message_survives_the_wire(m in message()) {
            prop_assert_eq!(decode_client(&encode_client(&m)), Ok(m));
        }

        #[test]
        fn any_text_decodes_or_errs(s in any::<String>()) {
            let _ = decode_client(&s);
            let _ = ServerMessage::decode(&s);
        }
    }
}
