//! Socket.IO v5 packets, encoded and validated like the reference
//! `socket.io-parser`.
//!
//! Text form: `<type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]`. Each
//! packet travels inside one Engine.IO `message`. A BINARY_EVENT / BINARY_ACK
//! carries its binary values as separate attachments (binary Engine.IO
//! messages) that follow the text packet; the JSON holds
//! `{"_placeholder":true,"num":N}` where attachment `N` goes. [`Data`] is the
//! payload tree that can hold bytes, and [`Decoder`] reassembles a packet from
//! its frames.
//!
//! Decoding never panics; every malformed input is an [`Error`], after which
//! the reference closes the connection.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::{Map, Number, Value};

/// The protocol revision implemented here.
pub const PROTOCOL: u8 = 5;

/// The reference decoder's default `maxAttachments`.
pub const DEFAULT_MAX_ATTACHMENTS: usize = 10;

/// Event names the reference refuses on decode: its own APIs give them a
/// special meaning, so a peer must not be able to trigger them.
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// The packet type digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    /// The type for a wire digit (`'0'`..=`'6'`).
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Connect,
            '1' => Self::Disconnect,
            '2' => Self::Event,
            '3' => Self::Ack,
            '4' => Self::ConnectError,
            '5' => Self::BinaryEvent,
            '6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The wire digit.
    pub fn as_char(self) -> char {
        char::from(b'0' + self as u8)
    }

    /// Whether packets of this type are followed by binary attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// One Socket.IO packet. For binary types, `data` holds placeholders and
/// `attachments` counts the binary frames that travel with it; it is ignored
/// for the other types.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    /// The namespace; `"/"` (or empty) is the main one and is not written.
    pub nsp: String,
    /// The acknowledgement id.
    pub id: Option<u64>,
    /// The payload. `Some(Value::Null)` is written as no payload, as the
    /// reference does for `null`.
    pub data: Option<Value>,
    pub attachments: usize,
}

/// Why a packet could not be decoded (or would not decode once encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// The attachment count of a binary packet is missing, not a positive
    /// integer, or not terminated by `-`.
    #[error("illegal attachments")]
    IllegalAttachments,
    #[error("too many attachments (at most {max})")]
    TooManyAttachments { max: usize },
    /// A binary packet's attachments together exceed the decoder's bound.
    #[error("attachments too large (at most {max} bytes in all)")]
    AttachmentsTooLarge { max: usize },
    /// The ack id does not fit in a `u64`.
    #[error("ack id too large")]
    InvalidId,
    #[error("invalid payload: {0}")]
    InvalidJson(String),
    #[error("invalid payload: {0}")]
    InvalidPayload(&'static str),
    #[error("invalid payload: reserved event name {0:?}")]
    ReservedEvent(String),
    #[error("invalid namespace: {0}")]
    InvalidNamespace(&'static str),
    /// A placeholder without a valid `num`, or one beyond the attachments.
    #[error("illegal attachments: bad placeholder")]
    IllegalPlaceholder,
    #[error("got binary data when not reconstructing a packet")]
    UnexpectedBinary,
    #[error("got plaintext data when reconstructing a packet")]
    UnexpectedText,
}

impl Packet {
    /// A packet without payload, id or attachments.
    pub fn new(kind: PacketType, nsp: impl Into<String>) -> Self {
        Self { kind, nsp: nsp.into(), id: None, data: None, attachments: 0 }
    }

    /// A CONNECT, with the auth payload (client) or `{"sid":…}` (server).
    pub fn connect(nsp: impl Into<String>, data: Option<Value>) -> Self {
        Self { data, ..Self::new(PacketType::Connect, nsp) }
    }

    /// A DISCONNECT.
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Self::new(PacketType::Disconnect, nsp)
    }

    /// A CONNECT_ERROR with `{"message":…}`, the shape v5 clients expect.
    pub fn connect_error(nsp: impl Into<String>, message: &str) -> Self {
        let mut obj = Map::new();
        obj.insert("message".to_owned(), Value::from(message));
        Self { data: Some(Value::Object(obj)), ..Self::new(PacketType::ConnectError, nsp) }
    }

    /// An EVENT, or a BINARY_EVENT plus its attachments when `args` holds
    /// binary (as the reference encoder decides). `args` is the whole array:
    /// event name first.
    pub fn event(nsp: impl Into<String>, args: Data, id: Option<u64>) -> (Self, Vec<Bytes>) {
        Self::with_args(PacketType::Event, PacketType::BinaryEvent, nsp.into(), args, id)
    }

    /// An ACK, or a BINARY_ACK plus its attachments when `args` holds binary.
    pub fn ack(nsp: impl Into<String>, id: u64, args: Data) -> (Self, Vec<Bytes>) {
        Self::with_args(PacketType::Ack, PacketType::BinaryAck, nsp.into(), args, Some(id))
    }

    fn with_args(text: PacketType, binary: PacketType, nsp: String, args: Data, id: Option<u64>) -> (Self, Vec<Bytes>) {
        let (value, buffers) = args.deconstruct();
        let kind = if buffers.is_empty() { text } else { binary };
        (Self { kind, nsp, id, data: Some(value), attachments: buffers.len() }, buffers)
    }

    /// Check that the packet encodes to something the reference decoder
    /// accepts (its `isPacketValid`, plus what the wire format needs): a
    /// namespace starting with `/` and without a comma, a payload of the
    /// right shape, and for binary types at least one attachment and no
    /// placeholder beyond them.
    pub fn validate(&self) -> Result<(), Error> {
        if !self.nsp.is_empty() && !self.nsp.starts_with('/') {
            return Err(Error::InvalidNamespace("must start with '/'"));
        }
        if self.nsp.contains(',') {
            return Err(Error::InvalidNamespace("must not contain a comma"));
        }
        let data = self.data.as_ref().filter(|v| !v.is_null());
        check_data(self.kind, data)?;
        if self.kind.is_binary() {
            if self.attachments == 0 {
                return Err(Error::IllegalAttachments);
            }
            if let Some(data) = data {
                check_placeholders(data, self.attachments)?;
            }
        }
        Ok(())
    }

    /// Take the payload out as [`Data`]; for binary types, `attachments`
    /// replace their placeholders. Other types keep placeholder-like objects
    /// as plain JSON, like the reference.
    pub fn take_data(&mut self, attachments: Vec<Bytes>) -> Result<Option<Data>, Error> {
        match self.data.take() {
            None => Ok(None),
            Some(value) if self.kind.is_binary() => Data::reconstruct(value, attachments).map(Some),
            Some(value) => Ok(Some(Data::from(value))),
        }
    }
}

/// Encode a packet as text. Binary attachments are sent after it, one binary
/// frame each. The packet is trusted: see [`Packet::validate`].
pub fn encode(packet: &Packet) -> String {
    let mut out = String::new();
    encode_into(packet, &mut out);
    out
}

/// Append the encoded packet to `out`, e.g. after an Engine.IO `4`, so that a
/// broadcast frame is built in one buffer.
pub fn encode_into(packet: &Packet, out: &mut String) {
    // Writing into a String cannot fail.
    out.push(packet.kind.as_char());
    if packet.kind.is_binary() {
        let _ = write!(out, "{}-", packet.attachments);
    }
    if !packet.nsp.is_empty() && packet.nsp != "/" {
        out.push_str(&packet.nsp);
        out.push(',');
    }
    if let Some(id) = packet.id {
        let _ = write!(out, "{id}");
    }
    if let Some(data) = packet.data.as_ref().filter(|v| !v.is_null()) {
        let _ = write!(out, "{data}");
    }
}

/// Decode a text packet with the default attachment limit.
pub fn decode(text: &str) -> Result<Packet, Error> {
    decode_with_limit(text, DEFAULT_MAX_ATTACHMENTS)
}

/// Decode a text packet, refusing binary packets announcing more than
/// `max_attachments` attachments. Binary packets come back with placeholders
/// unchecked; [`Decoder`] checks them once the attachments have arrived.
pub fn decode_with_limit(text: &str, max_attachments: usize) -> Result<Packet, Error> {
    let first = text.chars().next().ok_or(Error::Empty)?;
    let kind = PacketType::from_char(first).ok_or(Error::UnknownType(first))?;
    // The type is one ASCII digit and every delimiter below is ASCII, so the
    // byte offsets used for slicing are char boundaries.
    let mut rest = &text[1..];

    let mut attachments = 0;
    if kind.is_binary() {
        let (count, after) = rest.split_once('-').ok_or(Error::IllegalAttachments)?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::IllegalAttachments);
        }
        // All digits, so parsing fails only on overflow: certainly too many.
        let n = count.parse::<usize>().unwrap_or(usize::MAX);
        if n == 0 {
            return Err(Error::IllegalAttachments);
        }
        if n > max_attachments {
            return Err(Error::TooManyAttachments { max: max_attachments });
        }
        attachments = n;
        rest = after;
    }

    // The namespace runs to the first comma, or to the end when there is none
    // (`40/admin` is accepted as the reference does).
    let nsp = if rest.starts_with('/') {
        let (nsp, after) = rest.split_once(',').unwrap_or((rest, ""));
        rest = after;
        nsp
    } else {
        "/"
    };

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = match digits {
        0 => None,
        _ => Some(rest[..digits].parse::<u64>().map_err(|_| Error::InvalidId)?),
    };
    rest = &rest[digits..];

    let data = match rest {
        "" => None,
        json => Some(serde_json::from_str::<Value>(json).map_err(|e| Error::InvalidJson(e.to_string()))?),
    };
    check_data(kind, data.as_ref())?;
    Ok(Packet { kind, nsp: nsp.to_owned(), id, data, attachments })
}

/// The reference's payload rules, with an absent payload refused where the
/// spec makes it mandatory (EVENT, ACK, CONNECT_ERROR).
fn check_data(kind: PacketType, data: Option<&Value>) -> Result<(), Error> {
    use PacketType::*;
    let valid = match (kind, data) {
        (Connect, None | Some(Value::Object(_))) => true,
        (Disconnect, None) => true,
        (ConnectError, Some(Value::String(_) | Value::Object(_))) => true,
        (Event | BinaryEvent, Some(Value::Array(args))) => match args.first() {
            Some(Value::Number(_)) => true,
            Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                return Err(Error::ReservedEvent(name.clone()));
            }
            Some(Value::String(name)) if name.len() > super::MAX_NAME_BYTES => {
                return Err(Error::InvalidPayload("event name longer than 256 bytes"));
            }
            Some(Value::String(_)) => true,
            _ => false,
        },
        (Ack | BinaryAck, Some(Value::Array(_))) => true,
        _ => false,
    };
    if valid {
        return Ok(());
    }
    Err(Error::InvalidPayload(match kind {
        Connect => "CONNECT payload must be an object",
        Disconnect => "DISCONNECT must not have a payload",
        ConnectError => "CONNECT_ERROR payload must be an object or a string",
        Event | BinaryEvent => "EVENT payload must be an array starting with the event name",
        Ack | BinaryAck => "ACK payload must be an array",
    }))
}

/// A payload tree like [`serde_json::Value`] that can also hold binary.
/// Objects are ordered by key, as `serde_json::Map` is by default.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Data {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Binary(Bytes),
    Array(Vec<Data>),
    Object(BTreeMap<String, Data>),
}

impl From<Value> for Data {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s),
            Value::Array(a) => Self::Array(a.into_iter().map(Self::from).collect()),
            Value::Object(o) => Self::Object(o.into_iter().map(|(k, v)| (k, Self::from(v))).collect()),
        }
    }
}

impl From<Bytes> for Data {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for Data {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(Bytes::from(bytes))
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Data {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<bool> for Data {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<Vec<Data>> for Data {
    fn from(items: Vec<Data>) -> Self {
        Self::Array(items)
    }
}

impl Data {
    /// Whether any binary value is inside, i.e. whether it needs a binary packet.
    pub fn has_binary(&self) -> bool {
        match self {
            Self::Binary(_) => true,
            Self::Array(items) => items.iter().any(Self::has_binary),
            Self::Object(map) => map.values().any(Self::has_binary),
            _ => false,
        }
    }

    /// Replace each binary value with `{"_placeholder":true,"num":N}`, numbered
    /// depth-first in order (objects by key), and return the buffers in `N` order.
    pub fn deconstruct(self) -> (Value, Vec<Bytes>) {
        let mut buffers = Vec::new();
        let value = self.deconstruct_into(&mut buffers);
        (value, buffers)
    }

    fn deconstruct_into(self, buffers: &mut Vec<Bytes>) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::Number(n) => Value::Number(n),
            Self::String(s) => Value::String(s),
            Self::Binary(bytes) => {
                let mut placeholder = Map::new();
                placeholder.insert("_placeholder".to_owned(), Value::Bool(true));
                placeholder.insert("num".to_owned(), Value::from(buffers.len()));
                buffers.push(bytes);
                Value::Object(placeholder)
            }
            Self::Array(items) => Value::Array(items.into_iter().map(|d| d.deconstruct_into(buffers)).collect()),
            Self::Object(map) => {
                Value::Object(map.into_iter().map(|(k, d)| (k, d.deconstruct_into(buffers))).collect())
            }
        }
    }

    /// Put `attachments` back in place of placeholders: any object whose
    /// `_placeholder` is `true`. Its `num` must index an attachment; an
    /// attachment may be used more than once or not at all, as in the reference.
    pub fn reconstruct(value: Value, attachments: Vec<Bytes>) -> Result<Data, Error> {
        reconstruct_with(value, &attachments)
    }

    /// The JSON equivalent, or `None` when it holds binary.
    pub fn into_json(self) -> Option<Value> {
        Some(match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(b),
            Self::Number(n) => Value::Number(n),
            Self::String(s) => Value::String(s),
            Self::Binary(_) => return None,
            Self::Array(items) => Value::Array(items.into_iter().map(Self::into_json).collect::<Option<_>>()?),
            Self::Object(map) => {
                Value::Object(map.into_iter().map(|(k, d)| Some((k, d.into_json()?))).collect::<Option<_>>()?)
            }
        })
    }
}

fn reconstruct_with(value: Value, attachments: &[Bytes]) -> Result<Data, Error> {
    Ok(match value {
        Value::Object(map) => match placeholder_index(&map) {
            Some(index) => Data::Binary(attachments.get(index?).cloned().ok_or(Error::IllegalPlaceholder)?),
            None => Data::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, reconstruct_with(v, attachments)?)))
                    .collect::<Result<_, Error>>()?,
            ),
        },
        Value::Array(items) => {
            Data::Array(items.into_iter().map(|v| reconstruct_with(v, attachments)).collect::<Result<_, _>>()?)
        }
        other => Data::from(other),
    })
}

/// `None` when `map` is not a placeholder, else its `num`. Like the
/// reference, `1.0` counts as 1; unlike it, a fractional or missing `num` is
/// an error rather than a silent `undefined`.
fn placeholder_index(map: &Map<String, Value>) -> Option<Result<usize, Error>> {
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    let num = match map.get("num") {
        Some(Value::Number(n)) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as u64))
        }
        _ => None,
    };
    Some(num.and_then(|n| usize::try_from(n).ok()).ok_or(Error::IllegalPlaceholder))
}

/// Check every placeholder in `value` indexes one of `count` attachments.
fn check_placeholders(value: &Value, count: usize) -> Result<(), Error> {
    match value {
        Value::Object(map) => match placeholder_index(map) {
            Some(Ok(index)) if index < count => Ok(()),
            Some(_) => Err(Error::IllegalPlaceholder),
            None => map.values().try_for_each(|v| check_placeholders(v, count)),
        },
        Value::Array(items) => items.iter().try_for_each(|v| check_placeholders(v, count)),
        _ => Ok(()),
    }
}

/// What a [`Decoder`] has after a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A whole packet. For BINARY_EVENT / BINARY_ACK, `attachments` holds its
    /// binary frames in order, placeholders already checked against them (see
    /// [`Packet::take_data`]); otherwise it is empty.
    Complete { packet: Packet, attachments: Vec<Bytes> },
    /// A binary packet is under way; this many binary frames are still due.
    NeedAttachments(usize),
}

/// Reassembles packets from the frames of one connection: a text frame, then
/// for binary packets as many binary frames as it announced.
///
/// Any error leaves the decoder idle (a packet under way is dropped), so it
/// can go on, though the reference closes the connection instead.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_attachments: usize,
    max_bytes: usize,
    pending: Option<(Packet, Vec<Bytes>)>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder allowing [`DEFAULT_MAX_ATTACHMENTS`] per packet.
    pub fn new() -> Self {
        Self::with_max_attachments(DEFAULT_MAX_ATTACHMENTS)
    }

    /// A decoder refusing packets that announce more than `max` attachments,
    /// which bounds what one packet can make us buffer.
    pub fn with_max_attachments(max: usize) -> Self {
        Self::with_limits(max, usize::MAX)
    }

    /// A decoder also refusing a binary packet whose attachments add up to
    /// more than `max_bytes`: each frame is bounded by the transport, this
    /// bounds what a packet under way holds.
    pub fn with_limits(max_attachments: usize, max_bytes: usize) -> Self {
        Self { max_attachments, max_bytes, pending: None }
    }

    /// Feed a text frame (an Engine.IO `message` string).
    pub fn feed_text(&mut self, text: &str) -> Result<Progress, Error> {
        if self.pending.take().is_some() {
            return Err(Error::UnexpectedText);
        }
        let packet = decode_with_limit(text, self.max_attachments)?;
        if packet.kind.is_binary() {
            let due = packet.attachments;
            self.pending = Some((packet, Vec::with_capacity(due)));
            return Ok(Progress::NeedAttachments(due));
        }
        Ok(Progress::Complete { packet, attachments: Vec::new() })
    }

    /// Feed a binary frame (an Engine.IO binary `message`).
    pub fn feed_binary(&mut self, data: Bytes) -> Result<Progress, Error> {
        let Some((packet, mut buffers)) = self.pending.take() else {
            return Err(Error::UnexpectedBinary);
        };
        let held: usize = buffers.iter().map(Bytes::len).sum();
        if held.saturating_add(data.len()) > self.max_bytes {
            return Err(Error::AttachmentsTooLarge { max: self.max_bytes });
        }
        buffers.push(data);
        if buffers.len() < packet.attachments {
            let due = packet.attachments - buffers.len();
            self.pending = Some((packet, buffers));
            return Ok(Progress::NeedAttachments(due));
        }
        if let Some(data) = &packet.data {
            check_placeholders(data, buffers.len())?;
        }
        Ok(Progress::Complete { packet, attachments: buffers })
    }

    /// Binary frames still due for the packet under way; 0 when idle.
    pub fn remaining(&self) -> usize {
        self.pending.as_ref().map_or(0, |(packet, buffers)| packet.attachments.saturating_sub(buffers.len()))
    }

    /// Drop a packet under way (the reference's `destroy`).
    pub fn reset(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bin(bytes: &'static [u8]) -> Bytes {
        Bytes::from_static(bytes)
    }

    fn packet(kind: PacketType, nsp: &str, id: Option<u64>, data: Option<Value>, attachments: usize) -> Packet {
        Packet { kind, nsp: nsp.into(), id, data, attachments }
    }

    /// Every example of the v5 spec's "Packet encoding" section and sample session.
    #[test]
    fn attachments_are_bounded_in_all() {
        let mut d = Decoder::with_limits(4, 10);
        let text = r#"52-["e",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(d.feed_text(text), Ok(Progress::NeedAttachments(2)));
        assert_eq!(d.feed_binary(bin(b"123456")), Ok(Progress::NeedAttachments(1)));
        assert_eq!(d.feed_binary(bin(b"12345")), Err(Error::AttachmentsTooLarge { max: 10 }));
        assert_eq!(d.remaining(), 0, "the packet under way is dropped");
        assert!(matches!(d.feed_text(text), Ok(Progress::NeedAttachments(2))));
        assert_eq!(d.feed_binary(bin(b"123456")), Ok(Progress::NeedAttachments(1)));
        assert!(matches!(d.feed_binary(bin(b"1234")), Ok(Progress::Complete { .. })));
    }

    #[test]
    fn event_names_are_bounded() {
        let name = |n: usize| format!(r#"2["{}"]"#, "e".repeat(n));
        assert!(decode(&name(crate::protocol::MAX_NAME_BYTES)).is_ok());
        assert_eq!(decode(&name(257)), Err(Error::InvalidPayload("event name longer than 256 bytes")));
    }

    #[test]
    fn spec_examples() {
        use PacketType::*;
        let placeholder = |n: u64| json!({"_placeholder": true, "num": n});
        let cases = [
            ("0", packet(Connect, "/", None, None, 0)),
            (
                r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
                packet(Connect, "/admin", None, Some(json!({"sid": "oSO0OpakMV_3jnilAAAA"})), 0),
            ),
            (
                r#"4{"message":"Not authorized"}"#,
                packet(ConnectError, "/", None, Some(json!({"message": "Not authorized"})), 0),
            ),
            (r#"2["foo"]"#, packet(Event, "/", None, Some(json!(["foo"])), 0)),
            (r#"2/admin,["bar"]"#, packet(Event, "/admin", None, Some(json!(["bar"])), 0)),
            (
                r#"51-["baz",{"_placeholder":true,"num":0}]"#,
                packet(BinaryEvent, "/", None, Some(json!(["baz", placeholder(0)])), 1),
            ),
            (
                r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                packet(BinaryEvent, "/admin", None, Some(json!(["baz", placeholder(0), placeholder(1)])), 2),
            ),
            (r#"212["foo"]"#, packet(Event, "/", Some(12), Some(json!(["foo"])), 0)),
            (r#"3/admin,13["bar"]"#, packet(Ack, "/admin", Some(13), Some(json!(["bar"])), 0)),
            (
                r#"61-15["bar",{"_placeholder":true,"num":0}]"#,
                packet(BinaryAck, "/", Some(15), Some(json!(["bar", placeholder(0)])), 1),
            ),
            ("1", packet(Disconnect, "/", None, None, 0)),
            ("1/admin,", packet(Disconnect, "/admin", None, None, 0)),
            // Sample session (without the Engine.IO `4`).
            (
                r#"0{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
                packet(Connect, "/", None, Some(json!({"sid": "wZX3oN0bSVIhsaknAAAI"})), 0),
            ),
            (r#"2["hey","Jude"]"#, packet(Event, "/", None, Some(json!(["hey", "Jude"])), 0)),
            ("0/admin,", packet(Connect, "/admin", None, None, 0)),
            (r#"2/admin,1["tellme"]"#, packet(Event, "/admin", Some(1), Some(json!(["tellme"])), 0)),
            (
                r#"61-/admin,1[{"_placeholder":true,"num":0}]"#,
                packet(BinaryAck, "/admin", Some(1), Some(json!([placeholder(0)])), 1),
            ),
        ];
        for (text, p) in cases {
            assert_eq!(decode(text).as_ref(), Ok(&p), "decode {text}");
            assert_eq!(encode(&p), text, "encode {p:?}");
            assert_eq!(p.validate(), Ok(()), "{text}");
        }
    }

    #[test]
    fn spec_binary_examples_through_decoder() {
        let mut d = Decoder::new();
        assert_eq!(d.feed_text(r#"51-["baz",{"_placeholder":true,"num":0}]"#), Ok(Progress::NeedAttachments(1)));
        let Ok(Progress::Complete { mut packet, attachments }) = d.feed_binary(bin(&[1, 2, 3, 4])) else {
            panic!("incomplete")
        };
        let data = packet.take_data(attachments).unwrap().unwrap();
        assert_eq!(data, Data::Array(vec!["baz".into(), bin(&[1, 2, 3, 4]).into()]));

        // Building the same packet from data gives the spec's encoding.
        let (p, buffers) =
            Packet::event("/admin", Data::Array(vec!["baz".into(), vec![1u8, 2].into(), vec![3u8, 4].into()]), None);
        assert_eq!(encode(&p), r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#);
        assert_eq!(buffers, vec![bin(&[1, 2]), bin(&[3, 4])]);
        let (p, buffers) = Packet::ack("/", 15, Data::Array(vec!["bar".into(), bin(&[1, 2, 3, 4]).into()]));
        assert_eq!(encode(&p), r#"61-15["bar",{"_placeholder":true,"num":0}]"#);
        assert_eq!(buffers.len(), 1);
    }

    #[test]
    fn constructors() {
        assert_eq!(encode(&Packet::connect("/", None)), "0");
        assert_eq!(encode(&Packet::connect("/admin", Some(json!({"token": "123"})))), r#"0/admin,{"token":"123"}"#);
        assert_eq!(encode(&Packet::disconnect("/admin")), "1/admin,");
        assert_eq!(encode(&Packet::connect_error("/", "Not authorized")), r#"4{"message":"Not authorized"}"#);
        let (p, b) = Packet::event("/", Data::from(json!(["foo", 1])), Some(12));
        assert_eq!((encode(&p), b.len()), (r#"212["foo",1]"#.to_owned(), 0));
        let (p, _) = Packet::ack("/admin", 13, Data::Array(vec![]));
        assert_eq!(encode(&p), "3/admin,13[]");
        assert_eq!(p.kind, PacketType::Ack);
    }

    #[test]
    fn reference_parser_round_trips() {
        use PacketType::*;
        for p in [
            packet(Connect, "/woot", None, Some(json!({"token": "123"})), 0),
            packet(Disconnect, "/woot", None, None, 0),
            packet(Event, "/", None, Some(json!(["a", 1, {}])), 0),
            packet(Event, "/", None, Some(json!([1, "a", {}])), 0),
            packet(Event, "/test", Some(1), Some(json!(["a", 1, {}])), 0),
            packet(Ack, "/", Some(123), Some(json!(["a", 1, {}])), 0),
            packet(Ack, "/", Some(0), Some(json!([])), 0),
            packet(ConnectError, "/", None, Some(json!("Unauthorized")), 0),
            packet(ConnectError, "/", None, Some(json!({"message": "Unauthorized"})), 0),
            packet(Event, "/ñ", Some(u64::MAX), Some(json!(["é", "\u{1e}", "a,b", "-"])), 0),
            packet(BinaryEvent, "/", None, Some(json!(["a", {"_placeholder": true, "num": 9}])), 10),
        ] {
            assert_eq!(decode(&encode(&p)), Ok(p));
        }
    }

    #[test]
    fn reference_invalid_payloads() {
        for text in [
            r#"442["some","data""#,
            r#"0/admin,"invalid""#,
            "0[]",
            "1/admin,{}",
            r#"2/admin,"invalid"#,
            "2/admin,{}",
            r#"2[{"toString":"foo"}]"#,
            r#"2[true,"foo"]"#,
            r#"2[null,"bar"]"#,
            "2[]",
            "0null",
            "2null",
            "3{}",
            "4[]",
            "4",
            "2",
            "2/admin,",
            "3/admin,13",
        ] {
            assert!(matches!(decode(text), Err(Error::InvalidPayload(_) | Error::InvalidJson(_))), "{text}");
        }
        assert_eq!(decode(r#"2["connect"]"#), Err(Error::ReservedEvent("connect".into())));
        assert_eq!(decode(r#"2["disconnect","123"]"#), Err(Error::ReservedEvent("disconnect".into())));
        for name in RESERVED_EVENTS {
            assert!(matches!(decode(&format!(r#"51-/x,7["{name}"]"#)), Err(Error::ReservedEvent(_))), "{name}");
        }
        // Reserved names are only refused as event names.
        assert!(decode(r#"2["ok","connect"]"#).is_ok());
        assert!(decode(r#"3["connect"]"#).is_ok());
    }

    #[test]
    fn reference_attachment_counts() {
        for text in ["5", "51", "50-", "5a-", "51.23-", "5-", "5 1-", "6-1-[]", "6/a,1-[]"] {
            assert_eq!(decode(text), Err(Error::IllegalAttachments), "{text}");
        }
        assert_eq!(decode(r#"511-["a"]"#), Err(Error::TooManyAttachments { max: 10 }));
        assert_eq!(decode(r#"599999999999999999999999-["a"]"#), Err(Error::TooManyAttachments { max: 10 }));
        assert!(decode(r#"510-["a"]"#).is_ok());
        assert_eq!(decode(r#"501-["a"]"#).map(|p| p.attachments), Ok(1));
        let three =
            r#"53-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]"#;
        assert_eq!(decode_with_limit(three, 2), Err(Error::TooManyAttachments { max: 2 }));
        assert_eq!(Decoder::with_max_attachments(2).feed_text(three), Err(Error::TooManyAttachments { max: 2 }));
        assert!(decode_with_limit(three, 3).is_ok());
    }

    #[test]
    fn types_and_empty() {
        assert_eq!(decode(""), Err(Error::Empty));
        assert_eq!(decode("999"), Err(Error::UnknownType('9')));
        assert_eq!(decode("abc"), Err(Error::UnknownType('a')));
        assert_eq!(decode("é"), Err(Error::UnknownType('é')));
        for (i, c) in ('0'..='6').enumerate() {
            let t = PacketType::from_char(c).unwrap();
            assert_eq!((t as usize, t.as_char()), (i, c));
            assert_eq!(t.is_binary(), i == 5 || i == 6);
        }
    }

    #[test]
    fn namespace_edge_cases() {
        // No trailing comma: the namespace runs to the end (socket.io's own test suite sends `40/custom`).
        assert_eq!(decode("0/custom"), Ok(packet(PacketType::Connect, "/custom", None, None, 0)));
        assert_eq!(decode("1/custom"), Ok(Packet::disconnect("/custom")));
        // Without a comma, what follows is part of the namespace, leaving EVENT without payload.
        assert!(matches!(decode(r#"2/admin["a"]"#), Err(Error::InvalidPayload(_))));
        // Only a leading '/' starts a namespace.
        assert!(matches!(decode(r#"2admin,["a"]"#), Err(Error::InvalidJson(_))));
        assert_eq!(decode(r#"2/,["a"]"#).map(|p| p.nsp), Ok("/".to_owned()));
        // Encoding: "/" and "" are the main namespace.
        assert_eq!(encode(&Packet::connect("", None)), "0");
        assert_eq!(Packet::connect("", None).validate(), Ok(()));
        assert_eq!(Packet::connect("/a,b", None).validate(), Err(Error::InvalidNamespace("must not contain a comma")));
        assert_eq!(Packet::connect("admin", None).validate(), Err(Error::InvalidNamespace("must start with '/'")));
    }

    #[test]
    fn ack_ids() {
        assert_eq!(decode(r#"2007["a"]"#).map(|p| p.id), Ok(Some(7)));
        assert_eq!(decode(r#"218446744073709551615["a"]"#).map(|p| p.id), Ok(Some(u64::MAX)));
        assert_eq!(decode(r#"218446744073709551616["a"]"#), Err(Error::InvalidId));
        assert_eq!(decode(r#"3/x,99999999999999999999999999[]"#), Err(Error::InvalidId));
        // Data may start with whitespace, as JSON.parse allows.
        assert_eq!(decode(r#"2 ["a"]"#).map(|p| (p.id, p.data)), Ok((None, Some(json!(["a"])))));
        assert_eq!(decode(r#"21 ["a"]"#).map(|p| p.id), Ok(Some(1)));
    }

    #[test]
    fn null_data_is_omitted() {
        let p = packet(PacketType::Disconnect, "/a", None, Some(Value::Null), 0);
        assert_eq!(encode(&p), "1/a,");
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn validate_mirrors_decoder() {
        use PacketType::*;
        let bad = [
            packet(Connect, "/", None, Some(json!("invalid")), 0),
            packet(Connect, "/", None, Some(json!([])), 0),
            packet(Disconnect, "/admin", None, Some(json!({})), 0),
            packet(Event, "/admin", None, Some(json!("invalid")), 0),
            packet(Event, "/admin", None, Some(json!({})), 0),
            packet(Event, "/", None, Some(json!([true, "foo"])), 0),
            packet(Event, "/", None, Some(json!(["disconnect", "123"])), 0),
            packet(Event, "/", None, None, 0),
            packet(Ack, "/", Some(1), None, 0),
            packet(ConnectError, "/", None, None, 0),
            packet(BinaryEvent, "/", None, Some(json!(["a"])), 0),
            packet(BinaryEvent, "/", None, Some(json!(["a", {"_placeholder": true, "num": 1}])), 1),
        ];
        for p in bad {
            let text = encode(&p);
            assert!(p.validate().is_err(), "{p:?}");
            assert!(decode(&text).is_err() || p.kind.is_binary(), "{text}");
        }
    }

    fn nested() -> Data {
        let mut inner = BTreeMap::new();
        inner.insert("c".to_owned(), Data::from(bin(b"three")));
        inner.insert("d".to_owned(), Data::Null);
        let mut outer = BTreeMap::new();
        outer.insert("a".to_owned(), Data::from(bin(b"one")));
        outer
            .insert("b".to_owned(), Data::Array(vec![Data::from(json!(1.5)), bin(b"two").into(), Data::Object(inner)]));
        Data::Array(vec!["ev".into(), Data::Object(outer), bin(b"").into(), true.into()])
    }

    #[test]
    fn deconstruct_nested() {
        let data = nested();
        assert!(data.has_binary());
        assert_eq!(data.clone().into_json(), None);
        let (value, buffers) = data.clone().deconstruct();
        let ph = |n: u64| json!({"_placeholder": true, "num": n});
        assert_eq!(value, json!(["ev", {"a": ph(0), "b": [1.5, ph(1), {"c": ph(2), "d": null}]}, ph(3), true]));
        assert_eq!(buffers, vec![bin(b"one"), bin(b"two"), bin(b"three"), bin(b"")]);
        assert_eq!(Data::reconstruct(value.clone(), buffers.clone()), Ok(data.clone()));

        // And through the wire: text frame plus four binary frames.
        let (p, buffers) = Packet::event("/chat", data.clone(), Some(4));
        assert_eq!((p.kind, p.attachments), (PacketType::BinaryEvent, 4));
        let text = encode(&p);
        assert!(text.starts_with("54-/chat,4["), "{text}");
        let mut d = Decoder::new();
        assert_eq!(d.feed_text(&text), Ok(Progress::NeedAttachments(4)));
        assert_eq!(d.remaining(), 4);
        let mut last = None;
        for (i, b) in buffers.into_iter().enumerate() {
            let progress = d.feed_binary(b).unwrap();
            if i < 3 {
                assert_eq!(progress, Progress::NeedAttachments(3 - i));
            }
            last = Some(progress);
        }
        assert_eq!(d.remaining(), 0);
        let Some(Progress::Complete { mut packet, attachments }) = last else { panic!("incomplete") };
        assert_eq!((packet.nsp.as_str(), packet.id), ("/chat", Some(4)));
        assert_eq!(packet.take_data(attachments), Ok(Some(data)));
    }

    #[test]
    fn json_data_conversions() {
        let v = json!({"k": [1, "s", null, {"x": false}], "n": -2});
        let d = Data::from(v.clone());
        assert!(!d.has_binary());
        assert_eq!(d.clone().deconstruct(), (v.clone(), vec![]));
        assert_eq!(d.into_json(), Some(v));
        assert_eq!(Data::default(), Data::Null);
    }

    #[test]
    fn placeholder_rules() {
        let atts = || vec![bin(b"a"), bin(b"b")];
        let re = |v: Value| Data::reconstruct(v, atts());
        // Same attachment twice, or none used: both allowed.
        assert_eq!(
            re(json!([{"_placeholder": true, "num": 1}, {"_placeholder": true, "num": 1}])),
            Ok(Data::Array(vec![bin(b"b").into(), bin(b"b").into()]))
        );
        assert_eq!(re(json!(["x"])), Ok(Data::Array(vec!["x".into()])));
        // 1.0 is the integer 1 to JavaScript.
        assert_eq!(re(json!([{"_placeholder": true, "num": 1.0}])), Ok(Data::Array(vec![bin(b"b").into()])));
        // Extra keys do not stop an object from being a placeholder.
        assert_eq!(re(json!({"_placeholder": true, "num": 0, "x": 1})), Ok(Data::Binary(bin(b"a"))));
        // Only `true` makes a placeholder.
        let not = json!({"_placeholder": "true", "num": 0});
        assert_eq!(re(not.clone()), Ok(Data::from(not)));
        for bad in [
            json!([{"_placeholder": true, "num": 2}]),
            json!([{"_placeholder": true, "num": -1}]),
            json!([{"_placeholder": true, "num": 0.5}]),
            json!([{"_placeholder": true, "num": "0"}]),
            json!([{"_placeholder": true}]),
            json!({"deep": [[{"_placeholder": true, "num": 7}]]}),
        ] {
            assert_eq!(re(bad.clone()), Err(Error::IllegalPlaceholder), "{bad}");
            assert_eq!(check_placeholders(&bad, 2), Err(Error::IllegalPlaceholder), "{bad}");
        }
        // Non-binary packets keep placeholder-shaped objects as JSON.
        let mut p = decode(r#"2["e",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(p.take_data(vec![]), Ok(Some(Data::from(json!(["e", {"_placeholder": true, "num": 0}])))));
    }

    #[test]
    fn decoder_state_errors() {
        let mut d = Decoder::default();
        assert_eq!(d.feed_binary(bin(b"x")), Err(Error::UnexpectedBinary));
        assert_eq!(
            d.feed_text(r#"2["a"]"#),
            Ok(Progress::Complete { packet: decode(r#"2["a"]"#).unwrap(), attachments: vec![] })
        );
        assert_eq!(d.feed_binary(bin(b"x")), Err(Error::UnexpectedBinary));

        // Text while attachments are due: error, and the partial packet is dropped.
        assert_eq!(d.feed_text(r#"52-["a",{"_placeholder":true,"num":0}]"#), Ok(Progress::NeedAttachments(2)));
        assert_eq!(d.feed_binary(bin(b"1")), Ok(Progress::NeedAttachments(1)));
        assert_eq!(d.feed_text(r#"2["b"]"#), Err(Error::UnexpectedText));
        assert_eq!(d.remaining(), 0);
        assert_eq!(d.feed_binary(bin(b"2")), Err(Error::UnexpectedBinary));

        // A placeholder beyond the attachments fails when the last one arrives.
        assert_eq!(d.feed_text(r#"51-["a",{"_placeholder":true,"num":1}]"#), Ok(Progress::NeedAttachments(1)));
        assert_eq!(d.feed_binary(bin(b"1")), Err(Error::IllegalPlaceholder));
        assert_eq!(d.remaining(), 0);

        // Bad text leaves the decoder idle and usable; reset drops a packet under way.
        assert_eq!(d.feed_text("5"), Err(Error::IllegalAttachments));
        assert_eq!(d.feed_text(r#"51-["hello"]"#), Ok(Progress::NeedAttachments(1)));
        d.reset();
        assert!(matches!(d.feed_text(r#"2["hello"]"#), Ok(Progress::Complete { .. })));
    }

    #[test]
    fn binary_ack_through_decoder() {
        let mut d = Decoder::new();
        assert_eq!(d.feed_text(r#"61-/admin,1[{"_placeholder":true,"num":0}]"#), Ok(Progress::NeedAttachments(1)));
        let Ok(Progress::Complete { mut packet, attachments }) = d.feed_binary(bin(&[9])) else { panic!() };
        assert_eq!((packet.kind, packet.id), (PacketType::BinaryAck, Some(1)));
        assert_eq!(packet.take_data(attachments), Ok(Some(Data::Array(vec![bin(&[9]).into()]))));
    }

    #[test]
    fn error_messages() {
        assert_eq!(Error::IllegalAttachments.to_string(), "illegal attachments");
        assert_eq!(Error::TooManyAttachments { max: 10 }.to_string(), "too many attachments (at most 10)");
        assert_eq!(Error::UnknownType('9').to_string(), "unknown packet type '9'");
        assert_eq!(
            Error::ReservedEvent("connect".into()).to_string(),
            "invalid payload: reserved event name \"connect\""
        );
    }
}

/// Encode, then decode (reassembling the attachments), gives back the
/// packet and its data; any sequence of frames decodes or errs, never panics.
#[cfg(test)]
mod round_trip {
    use proptest::prelude::*;

    use super::*;

    /// A payload tree with binary leaves. Keys never look like a placeholder's.
    fn data() -> impl Strategy<Value = Data> {
        let leaf = prop_oneof![
            Just(Data::Null),
            any::<bool>().prop_map(Data::Bool),
            any::<i64>().prop_map(|n| Data::Number(n.into())),
            // Any finite float: serde_json's float_roundtrip reads each back bit for bit.
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Data::Number)),
            any::<String>().prop_map(Data::String),
            prop::collection::vec(any::<u8>(), 0..32).prop_map(|b| Data::Binary(Bytes::from(b))),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Data::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..6).prop_map(Data::Object),
            ]
        })
    }

    fn namespace() -> impl Strategy<Value = String> {
        prop_oneof![Just("/".to_owned()), "/[a-z]{1,8}"]
    }

    /// Send the packet as the wire carries it and read it back with a [`Decoder`].
    fn through_the_wire(packet: &Packet, buffers: Vec<Bytes>) -> Result<(Packet, Vec<Bytes>), Error> {
        let mut decoder = Decoder::new();
        let mut progress = decoder.feed_text(&encode(packet))?;
        for buffer in buffers {
            progress = decoder.feed_binary(buffer)?;
        }
        match progress {
            Progress::Complete { packet, attachments } => Ok((packet, attachments)),
            Progress::NeedAttachments(n) => panic!("still {n} attachments due"),
        }
    }

    proptest! {
        #[test]
        fn an_event_survives_the_wire(
            nsp in namespace(),
            name in "[a-z]{1,10}".prop_filter("not reserved", |n| !RESERVED_EVENTS.contains(&n.as_str())),
            args in prop::collection::vec(data(), 0..4),
            id in prop::option::of(any::<u64>()),
        ) {
            let sent = Data::Array(std::iter::once(Data::String(name)).chain(args).collect());
            let (packet, buffers) = Packet::event(nsp.clone(), sent.clone(), id);
            let (mut got, attachments) = through_the_wire(&packet, buffers).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!((&got.nsp, got.id, got.kind), (&nsp, id, packet.kind));
            prop_assert_eq!(got.take_data(attachments), Ok(Some(sent)));
        }

        #[test]
        fn an_ack_survives_the_wire(nsp in namespace(), id in any::<u64>(), args in prop::collection::vec(data(), 0..4)) {
            let sent = Data::Array(args);
            let (packet, buffers) = Packet::ack(nsp, id, sent.clone());
            let (mut got, attachments) = through_the_wire(&packet, buffers).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got.id, Some(id));
            prop_assert_eq!(got.take_data(attachments), Ok(Some(sent)));
        }

        #[test]
        fn any_frames_decode_or_err(frames in prop::collection::vec(
            prop_oneof![any::<String>().prop_map(Ok), prop::collection::vec(any::<u8>(), 0..16).prop_map(Err)],
            0..8,
        )) {
            let mut decoder = Decoder::with_max_attachments(4);
            for frame in frames {
                let progress = match frame {
                    Ok(text) => decoder.feed_text(&text),
                    Err(bytes) => decoder.feed_binary(Bytes::from(bytes)),
                };
                if let Ok(Progress::Complete { mut packet, attachments }) = progress {
                    let _ = packet.take_data(attachments);
                }
            }
            prop_assert!(decoder.remaining() <= 4);
        }
    }
}
