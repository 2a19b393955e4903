//! Engine.IO v4 packets, as encoded by the reference `engine.io-parser`.
//!
//! A packet is a type digit followed by its data. Over WebSocket each packet is
//! one frame: text packets go as text frames ([`encode_text`] /
//! [`decode_text`]) and [`Packet::Binary`] goes as a raw binary frame holding
//! just its bytes. Over HTTP long-polling several packets share one body
//! ([`encode_payload`] / [`decode_payload`]), separated by [`SEPARATOR`], with
//! binary packets written as `b<base64>`.
//!
//! Decoding never panics; malformed input is an [`Error`], after which the
//! reference server closes the session.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The `EIO` query parameter value of this protocol revision.
pub const PROTOCOL: u8 = 4;

/// Separates packets in a long-polling body (ASCII record separator).
pub const SEPARATOR: char = '\x1e';

/// Prefix of a base64-encoded binary packet in a long-polling body.
const BINARY_PREFIX: char = 'b';

/// Node's `Buffer.from(s, "base64")` accepts missing padding and stray
/// trailing bits, so a peer may send either; we accept both too.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The packet type digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Open = 0,
    Close = 1,
    Ping = 2,
    Pong = 3,
    Message = 4,
    Upgrade = 5,
    Noop = 6,
}

impl PacketType {
    /// The type for a wire digit (`'0'`..=`'6'`).
    pub fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '0' => Self::Open,
            '1' => Self::Close,
            '2' => Self::Ping,
            '3' => Self::Pong,
            '4' => Self::Message,
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            _ => return None,
        })
    }

    /// The wire digit.
    pub fn as_char(self) -> char {
        char::from(b'0' + self as u8)
    }
}

/// The handshake data of an `open` packet, with exactly the reference keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    pub sid: String,
    pub upgrades: Vec<String>,
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Largest long-polling body the client may send, in bytes. Servers older
    /// than engine.io 6 omit it; it then decodes as 0, which clients read as
    /// "no limit".
    #[serde(default)]
    pub max_payload: u64,
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Open(OpenPacket),
    Close,
    /// The optional payload is `"probe"` during a transport upgrade.
    Ping(Option<String>),
    Pong(Option<String>),
    Message(String),
    /// A binary `message`: a raw binary frame over WebSocket, `b<base64>` in
    /// long-polling bodies.
    Binary(Bytes),
    Upgrade,
    Noop,
}

impl Packet {
    /// The wire type; [`Packet::Binary`] is a `message`.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) | Self::Binary(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }
}

/// Why a packet or payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A packet without even a type digit (also an empty body or a trailing
    /// separator).
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("invalid base64 in binary packet: {0}")]
    InvalidBase64(String),
    #[error("invalid open packet: {0}")]
    InvalidOpen(String),
}

/// Decode one packet from a WebSocket text frame or a long-polling body segment.
///
/// Like the reference, a `b` prefix means base64 binary even in a WebSocket
/// text frame, and data after `close`, `upgrade` and `noop` is ignored.
pub fn decode_text(text: &str) -> Result<Packet, Error> {
    let mut chars = text.chars();
    let first = chars.next().ok_or(Error::Empty)?;
    let rest = chars.as_str();
    if first == BINARY_PREFIX {
        return LENIENT_BASE64
            .decode(rest)
            .map(|v| Packet::Binary(Bytes::from(v)))
            .map_err(|e| Error::InvalidBase64(e.to_string()));
    }
    let optional = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(match PacketType::from_char(first).ok_or(Error::UnknownType(first))? {
        PacketType::Open => Packet::Open(serde_json::from_str(rest).map_err(|e| Error::InvalidOpen(e.to_string()))?),
        PacketType::Close => Packet::Close,
        PacketType::Ping => Packet::Ping(optional(rest)),
        PacketType::Pong => Packet::Pong(optional(rest)),
        PacketType::Message => Packet::Message(rest.to_owned()),
        PacketType::Upgrade => Packet::Upgrade,
        PacketType::Noop => Packet::Noop,
    })
}

/// Encode one packet as text.
///
/// For a WebSocket, send [`Packet::Binary`] as a binary frame of its bytes
/// instead: here it becomes the long-polling form `b<base64>`.
pub fn encode_text(packet: &Packet) -> String {
    let mut out = String::new();
    encode_text_into(packet, &mut out);
    out
}

/// Append the text form of `packet` to `out` (see [`encode_text`]), so that a
/// caller can build a frame or body without intermediate strings.
pub fn encode_text_into(packet: &Packet, out: &mut String) {
    if let Packet::Binary(bytes) = packet {
        out.push(BINARY_PREFIX);
        STANDARD.encode_string(bytes, out);
        return;
    }
    out.push(packet.packet_type().as_char());
    match packet {
        Packet::Open(open) => {
            // Serializing strings and integers into a String cannot fail.
            out.push_str(&serde_json::to_string(open).unwrap_or_default());
        }
        Packet::Ping(Some(data)) | Packet::Pong(Some(data)) | Packet::Message(data) => out.push_str(data),
        _ => {}
    }
}

/// Decode a long-polling body: packets separated by [`SEPARATOR`].
///
/// The reference hands over the packets before the first bad one and then
/// closes the session; as the session is lost either way, one bad packet here
/// fails the whole body. An empty body or segment is [`Error::Empty`].
pub fn decode_payload(payload: &str) -> Result<Vec<Packet>, Error> {
    payload.split(SEPARATOR).map(decode_text).collect()
}

/// Encode packets as one long-polling body; binary packets become `b<base64>`.
pub fn encode_payload(packets: &[Packet]) -> String {
    let mut out = String::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        encode_text_into(packet, &mut out);
    }
    out
}

/// The errors the reference server answers bad HTTP requests with, as
/// `{"code":N,"message":"…"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HttpError {
    TransportUnknown = 0,
    SessionIdUnknown = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl HttpError {
    /// The error for a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::TransportUnknown,
            1 => Self::SessionIdUnknown,
            2 => Self::BadHandshakeMethod,
            3 => Self::BadRequest,
            4 => Self::Forbidden,
            5 => Self::UnsupportedProtocolVersion,
            _ => return None,
        })
    }

    /// The numeric `code` field.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The default `message` field, word for word as the reference sends it.
    pub fn message(self) -> &'static str {
        match self {
            Self::TransportUnknown => "Transport unknown",
            Self::SessionIdUnknown => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for [`HttpError::Forbidden`], 400 otherwise.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            _ => 400,
        }
    }

    /// The `application/json` response body, e.g. `{"code":0,"message":"Transport unknown"}`.
    pub fn json_body(self) -> String {
        self.json_body_with_message(self.message())
    }

    /// The body with a custom message, as the reference sends when an
    /// `allowRequest` hook refuses with a reason.
    pub fn json_body_with_message(self, message: &str) -> String {
        // Display of a JSON string is its escaped literal and cannot fail.
        let message = serde_json::Value::from(message);
        format!(r#"{{"code":{},"message":{message}}}"#, self.code())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn open() -> OpenPacket {
        OpenPacket {
            sid: "lv_VI97HAXpY6yYWAAAC".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        }
    }

    #[test]
    fn type_digits() {
        for (i, c) in ('0'..='6').enumerate() {
            let t = PacketType::from_char(c).unwrap();
            assert_eq!((t as usize, t.as_char()), (i, c));
        }
        assert_eq!(PacketType::from_char('7'), None);
        assert_eq!(PacketType::from_char('b'), None);
    }

    #[test]
    fn open_packet_exact_keys() {
        let text = encode_text(&Packet::Open(open()));
        assert_eq!(
            text,
            r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
        let v: Value = serde_json::from_str(&text[1..]).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5);
        for k in ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"] {
            assert!(keys.contains(&k), "{k}");
        }
        assert_eq!(decode_text(&text), Ok(Packet::Open(open())));
    }

    #[test]
    fn open_packet_lenient_and_strict_parts() {
        // Older servers omit maxPayload; unknown keys are ignored.
        let p = decode_text(r#"0{"sid":"s","upgrades":[],"pingInterval":1,"pingTimeout":2,"x":true}"#).unwrap();
        let Packet::Open(o) = p else { panic!("not open: {p:?}") };
        assert_eq!((o.sid.as_str(), o.max_payload, o.ping_timeout), ("s", 0, 2));
        for bad in ["0", "0{", r#"0{"sid":"s"}"#, r#"0{"sid":1,"upgrades":[],"pingInterval":1,"pingTimeout":2}"#] {
            assert!(matches!(decode_text(bad), Err(Error::InvalidOpen(_))), "{bad}");
        }
    }

    #[test]
    fn text_packets_roundtrip() {
        let cases = [
            ("1", Packet::Close),
            ("2", Packet::Ping(None)),
            ("2probe", Packet::Ping(Some("probe".into()))),
            ("3", Packet::Pong(None)),
            ("3probe", Packet::Pong(Some("probe".into()))),
            ("4hello", Packet::Message("hello".into())),
            ("4", Packet::Message(String::new())),
            ("4€ \u{1e}x", Packet::Message("€ \u{1e}x".into())),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
            ("bAQIDBA==", Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
            ("b", Packet::Binary(Bytes::new())),
        ];
        for (text, packet) in cases {
            assert_eq!(decode_text(text).as_ref(), Ok(&packet), "{text:?}");
            assert_eq!(encode_text(&packet), text);
        }
    }

    #[test]
    fn decode_leniency_matches_reference() {
        // Data after close/upgrade/noop is ignored, as by the reference server.
        assert_eq!(decode_text("1bye"), Ok(Packet::Close));
        assert_eq!(decode_text("5x"), Ok(Packet::Upgrade));
        assert_eq!(decode_text("6x"), Ok(Packet::Noop));
        // Unpadded base64 and non-zero trailing bits are accepted like Node's Buffer.
        assert_eq!(decode_text("bAQIDBA"), Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))));
        assert_eq!(decode_text("bAQIDBB=="), Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))));
    }

    #[test]
    fn decode_errors() {
        assert_eq!(decode_text(""), Err(Error::Empty));
        assert_eq!(decode_text("abc"), Err(Error::UnknownType('a')));
        assert_eq!(decode_text("7"), Err(Error::UnknownType('7')));
        assert_eq!(decode_text("€"), Err(Error::UnknownType('€')));
        assert!(matches!(decode_text("b!!!!"), Err(Error::InvalidBase64(_))));
        assert!(matches!(decode_text("bAQI=DBA"), Err(Error::InvalidBase64(_))));
    }

    #[test]
    fn payload_spec_examples() {
        let text = "4hello\x1e2\x1e4world";
        let packets = vec![Packet::Message("hello".into()), Packet::Ping(None), Packet::Message("world".into())];
        assert_eq!(decode_payload(text), Ok(packets.clone()));
        assert_eq!(encode_payload(&packets), text);

        let text = "4hello\x1ebAQIDBA==";
        let packets = vec![Packet::Message("hello".into()), Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]))];
        assert_eq!(decode_payload(text), Ok(packets.clone()));
        assert_eq!(encode_payload(&packets), text);

        let text = r#"42["hello"]"#.to_owned() + "\x1e" + r#"42["world"]"#;
        assert_eq!(decode_payload(&text).unwrap().len(), 2);
        assert_eq!(decode_payload("3"), Ok(vec![Packet::Pong(None)]));
    }

    #[test]
    fn payload_errors() {
        assert_eq!(encode_payload(&[]), "");
        assert_eq!(decode_payload(""), Err(Error::Empty));
        assert_eq!(decode_payload("4a\x1e"), Err(Error::Empty));
        assert_eq!(decode_payload("4a\x1e\x1e4b"), Err(Error::Empty));
        assert_eq!(decode_payload("4a\x1eabc\x1e4b"), Err(Error::UnknownType('a')));
    }

    #[test]
    fn encode_into_appends() {
        let mut s = String::from("x");
        encode_text_into(&Packet::Message("m".into()), &mut s);
        encode_text_into(&Packet::Binary(Bytes::from_static(b"\xff")), &mut s);
        assert_eq!(s, "x4mb/w==");
        assert_eq!(Packet::Binary(Bytes::new()).packet_type(), PacketType::Message);
    }

    #[test]
    fn http_errors() {
        let all = [
            (0, "Transport unknown"),
            (1, "Session ID unknown"),
            (2, "Bad handshake method"),
            (3, "Bad request"),
            (4, "Forbidden"),
            (5, "Unsupported protocol version"),
        ];
        for (code, message) in all {
            let e = HttpError::from_code(code).unwrap();
            assert_eq!((e.code(), e.message(), e.to_string().as_str()), (code, message, message));
            let body: Value = serde_json::from_str(&e.json_body()).unwrap();
            assert_eq!(body, json!({"code": code, "message": message}));
            assert_eq!(e.http_status(), if code == 4 { 403 } else { 400 });
        }
        assert_eq!(HttpError::TransportUnknown.json_body(), r#"{"code":0,"message":"Transport unknown"}"#);
        assert_eq!(HttpError::from_code(6), None);
        assert_eq!(HttpError::Forbidden.json_body_with_message("no \"you\""), r#"{"code":4,"message":"no \"you\""}"#);
    }
}

/// Encode, then decode, gives back the packet: single packets and
/// long-polling bodies, and decoding arbitrary text never panics.
#[cfg(test)]
mod round_trip {
    use proptest::prelude::*;

    use super::*;

    /// Text without the payload separator (it cannot occur inside a packet of a body).
    fn text() -> impl Strategy<Value = String> {
        "[^\u{1e}]{0,40}"
    }

    fn packet() -> impl Strategy<Value = Packet> {
        let some_text = "[^\u{1e}]{1,40}";
        prop_oneof![
            (
                "[A-Za-z0-9_-]{1,24}",
                prop::collection::vec("[a-z]{1,10}", 0..3),
                any::<u64>(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(sid, upgrades, ping_interval, ping_timeout, max_payload)| Packet::Open(
                    OpenPacket { sid, upgrades, ping_interval, ping_timeout, max_payload }
                )),
            Just(Packet::Close),
            prop::option::of(some_text).prop_map(Packet::Ping),
            prop::option::of(some_text).prop_map(Packet::Pong),
            text().prop_map(Packet::Message),
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Packet::Binary(Bytes::from(b))),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
        ]
    }

    proptest! {
        #[test]
        fn a_packet_survives_text_encoding(p in packet()) {
            prop_assert_eq!(decode_text(&encode_text(&p)), Ok(p));
        }

        #[test]
        fn a_body_survives_payload_encoding(packets in prop::collection::vec(packet(), 1..8)) {
            prop_assert_eq!(decode_payload(&encode_payload(&packets)), Ok(packets));
        }

        #[test]
        fn any_text_decodes_or_errs(s in any::<String>()) {
            let _ = decode_text(&s);
            let _ = decode_payload(&s);
        }
    }
}
