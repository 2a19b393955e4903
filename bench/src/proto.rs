//! The generator's two application protocols over [`crate::ws`]: Socket.IO v5
//! over Engine.IO 4 (WebSocket transport only) and roomcast's JSON protocol,
//! plus "raw" for the limit server (a frame is the payload itself).
//!
//! [`classify`] turns a received text frame into an owned [`Incoming`]; the
//! benchmark's own frames take a fast path that parses the payload in place,
//! anything else goes through serde_json.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::payload::{Payload, parse_payload, payload_from_value, write_payload, write_u64};
use crate::ws::{OP_TEXT, WsConn, WsError};

/// The room of the benchmark app.
pub const ROOM: &str = "bench";

/// A client protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Proto {
    /// Socket.IO v5 / Engine.IO 4 over WebSocket at `/socket.io/`.
    SocketIo,
    /// roomcast's JSON protocol at `/ws`.
    Json,
    /// The limit server: frames are payloads.
    Raw,
}

impl Proto {
    /// The upgrade path (with query).
    pub fn path(self) -> &'static str {
        match self {
            Self::SocketIo => "/socket.io/?EIO=4&transport=websocket",
            Self::Json => "/ws",
            Self::Raw => "/",
        }
    }

    /// Short name for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::SocketIo => "Socket.IO",
            Self::Json => "JSON",
            Self::Raw => "raw WS",
        }
    }
}

/// A received frame, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A room broadcast carrying a benchmark payload (`msg` event, JSON `message`, raw frame).
    Msg(Payload),
    /// An ack (Socket.IO `43<id>[..]`, JSON `{"type":"ack"}`) and its payload if it has one.
    Ack { id: u64, data: Option<Payload> },
    /// Engine.IO open packet (`0{...}`).
    EioOpen,
    /// Engine.IO ping (`2`): answer `3`.
    EioPing,
    /// Socket.IO namespace connected (`40{...}`).
    SioConnected,
    /// JSON protocol `connected`.
    Connected,
    /// JSON protocol `joined` for a room.
    Joined(String),
    /// An error the server reported (Socket.IO connect error or disconnect, JSON `error`).
    ServerError(String),
    /// Anything else that is valid and can be ignored (pongs, `user_joined`, other events).
    Other,
    /// Not understood.
    Invalid(String),
}

fn skip_digits(s: &[u8], mut i: usize) -> (Option<u64>, usize) {
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add(u64::from(s[i] - b'0'));
        i += 1;
    }
    ((i > start).then_some(v), i)
}

fn truncated(s: &[u8]) -> String {
    let s = String::from_utf8_lossy(&s[..s.len().min(120)]);
    s.into_owned()
}

/// Classify a text frame of protocol `proto`.
pub fn classify(proto: Proto, s: &[u8]) -> Incoming {
    match proto {
        Proto::SocketIo => classify_sio(s),
        Proto::Json => classify_json(s),
        Proto::Raw => match parse_payload(s) {
            Some((p, end)) if end == s.len() => Incoming::Msg(p),
            _ => Incoming::Invalid(format!("raw frame is not a payload: {}", truncated(s))),
        },
    }
}

fn classify_sio(s: &[u8]) -> Incoming {
    match s.first() {
        Some(b'0') => Incoming::EioOpen,
        Some(b'2') => Incoming::EioPing,
        Some(b'3' | b'6') => Incoming::Other,
        Some(b'1') => Incoming::ServerError("engine.io close packet".into()),
        Some(b'4') => classify_sio_packet(&s[1..]),
        _ => Incoming::Invalid(format!("not an engine.io packet: {}", truncated(s))),
    }
}

fn classify_sio_packet(s: &[u8]) -> Incoming {
    let Some(&kind) = s.first() else { return Incoming::Invalid("empty socket.io packet".into()) };
    let mut i = 1;
    // Namespace other than "/" is written "/nsp," — the app uses "/" only.
    if s.get(i) == Some(&b'/') {
        match s[i..].iter().position(|&b| b == b',') {
            Some(p) => i += p + 1,
            None => i = s.len(),
        }
    }
    match kind {
        b'0' => Incoming::SioConnected,
        b'1' => Incoming::ServerError("socket.io disconnect packet".into()),
        b'4' => Incoming::ServerError(format!("connect error: {}", truncated(&s[i..]))),
        b'2' => {
            let (_, i) = skip_digits(s, i);
            let rest = &s[i..];
            // With connection state recovery the event's offset comes last: `,"<ms>-<seq>"`.
            if let Some(after) = rest.strip_prefix(b"[\"msg\",")
                && let Some((p, end)) = parse_payload(after)
                && (&after[end..] == b"]" || is_offset_tail(&after[end..]))
            {
                return Incoming::Msg(p);
            }
            match serde_json::from_slice::<Vec<Value>>(rest) {
                Ok(args) => match args.first().and_then(Value::as_str) {
                    Some("msg") => match args.get(1).and_then(payload_from_value) {
                        Some(p) if args.len() == 2 || (args.len() == 3 && args[2].is_string()) => Incoming::Msg(p),
                        _ => Incoming::Invalid(format!("bad msg event: {}", truncated(rest))),
                    },
                    Some(_) => Incoming::Other,
                    None => Incoming::Invalid(format!("event without a name: {}", truncated(rest))),
                },
                Err(e) => Incoming::Invalid(format!("bad event json ({e}): {}", truncated(rest))),
            }
        }
        b'3' => {
            let (id, i) = skip_digits(s, i);
            let Some(id) = id else { return Incoming::Invalid("ack without id".into()) };
            let rest = &s[i..];
            if let Some(after) = rest.strip_prefix(b"[")
                && let Some((p, end)) = parse_payload(after)
                && &after[end..] == b"]"
            {
                return Incoming::Ack { id, data: Some(p) };
            }
            match serde_json::from_slice::<Vec<Value>>(rest) {
                Ok(args) => Incoming::Ack { id, data: args.first().and_then(payload_from_value) },
                Err(e) => Incoming::Invalid(format!("bad ack json ({e}): {}", truncated(rest))),
            }
        }
        _ => Incoming::Invalid(format!("unexpected socket.io packet: {}", truncated(s))),
    }
}

/// `,"<digits>-<digits>"]`: a recovery offset as an event's last argument.
fn is_offset_tail(tail: &[u8]) -> bool {
    tail.strip_prefix(b",\"")
        .and_then(|t| t.strip_suffix(b"\"]"))
        .is_some_and(|o| !o.is_empty() && o.iter().all(|&b| b.is_ascii_digit() || b == b'-'))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn classify_json(s: &[u8]) -> Incoming {
    // Fast paths for the shapes roomcast and the hand-written peers send.
    if let Some(rest) = s.strip_prefix(b"{\"type\":\"message\",")
        && let Some(at) = find(rest, b"\"payload\":")
        && let Some((p, end)) = parse_payload(&rest[at + 10..])
        && rest[at + 10 + end..].iter().all(|&b| b != b'{')
    {
        return Incoming::Msg(p);
    }
    if let Some(rest) = s.strip_prefix(b"{\"type\":\"ack\",\"id\":") {
        let (id, i) = skip_digits(rest, 0);
        if let Some(id) = id
            && let Some(after) = rest[i..].strip_prefix(b",\"data\":")
            && let Some((p, end)) = parse_payload(after)
            && &after[end..] == b"}"
        {
            return Incoming::Ack { id, data: Some(p) };
        }
    }
    if s.starts_with(b"{\"type\":\"user_joined\"") || s.starts_with(b"{\"type\":\"user_left\"") {
        return Incoming::Other;
    }
    let v: Value = match serde_json::from_slice(s) {
        Ok(v) => v,
        Err(e) => return Incoming::Invalid(format!("bad json ({e}): {}", truncated(s))),
    };
    match v.get("type").and_then(Value::as_str) {
        Some("message") => match v.get("payload").and_then(payload_from_value) {
            Some(p) => Incoming::Msg(p),
            None => Incoming::Invalid(format!("message without a benchmark payload: {}", truncated(s))),
        },
        Some("ack") => match v.get("id").and_then(Value::as_u64) {
            Some(id) => Incoming::Ack { id, data: v.get("data").and_then(payload_from_value) },
            None => Incoming::Invalid(format!("ack without id: {}", truncated(s))),
        },
        Some("connected") => Incoming::Connected,
        Some("joined") => Incoming::Joined(v.get("room").and_then(Value::as_str).unwrap_or_default().to_owned()),
        Some("error") => Incoming::ServerError(truncated(s)),
        Some(_) => Incoming::Other,
        None => Incoming::Invalid(format!("frame without type: {}", truncated(s))),
    }
}

/// Append a publish frame's text for `proto`.
pub fn encode_publish(out: &mut Vec<u8>, proto: Proto, p: Payload) {
    match proto {
        Proto::SocketIo => {
            out.extend_from_slice(b"42[\"publish\",");
            write_payload(out, p);
            out.push(b']');
        }
        Proto::Json => {
            out.extend_from_slice(b"{\"type\":\"message\",\"room\":\"bench\",\"payload\":");
            write_payload(out, p);
            out.push(b'}');
        }
        Proto::Raw => write_payload(out, p),
    }
}

/// Append an `echo` request with ack id `id`.
pub fn encode_echo(out: &mut Vec<u8>, proto: Proto, id: u64, p: Payload) {
    match proto {
        Proto::SocketIo => {
            out.extend_from_slice(b"42");
            write_u64(out, id);
            out.extend_from_slice(b"[\"echo\",");
            write_payload(out, p);
            out.push(b']');
        }
        Proto::Json | Proto::Raw => {
            out.extend_from_slice(b"{\"type\":\"event\",\"event\":\"echo\",\"data\":");
            write_payload(out, p);
            out.extend_from_slice(b",\"id\":");
            write_u64(out, id);
            out.push(b'}');
        }
    }
}

/// A connected client.
pub struct Client {
    pub conn: WsConn,
    pub proto: Proto,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("proto", &self.proto).field("conn", &self.conn).finish()
    }
}

/// How long one client may take to connect (and join).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

impl Client {
    /// Connect: Socket.IO waits for the open packet, connects the default
    /// namespace and waits for `40{..}`; JSON joins [`ROOM`] when `join` is set
    /// and waits for `joined`; raw only upgrades.
    pub async fn connect(addr: SocketAddr, proto: Proto, join: bool) -> Result<Self, WsError> {
        match tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_inner(addr, proto, join)).await {
            Ok(r) => r,
            Err(_) => Err(WsError::Protocol("connect timed out".into())),
        }
    }

    async fn connect_inner(addr: SocketAddr, proto: Proto, join: bool) -> Result<Self, WsError> {
        let mut conn = WsConn::connect(addr, proto.path()).await?;
        match proto {
            Proto::SocketIo => {
                Self::wait_for(&mut conn, proto, |i| *i == Incoming::EioOpen).await?;
                conn.send_text(b"40");
                Self::wait_for(&mut conn, proto, |i| *i == Incoming::SioConnected).await?;
            }
            Proto::Json if join => {
                let join = format!("{{\"type\":\"join\",\"room\":\"{ROOM}\"}}");
                conn.send_text(join.as_bytes());
                Self::wait_for(&mut conn, proto, |i| matches!(i, Incoming::Joined(r) if r == ROOM)).await?;
            }
            Proto::Json | Proto::Raw => {}
        }
        conn.flush().await?;
        Ok(Self { conn, proto })
    }

    async fn wait_for(conn: &mut WsConn, proto: Proto, want: impl Fn(&Incoming) -> bool) -> Result<(), WsError> {
        loop {
            let frame = conn.recv().await?;
            let incoming = classify(proto, &frame);
            if want(&incoming) {
                return Ok(());
            }
            match incoming {
                Incoming::EioPing => conn.send_text(b"3"),
                Incoming::ServerError(e) | Incoming::Invalid(e) => return Err(WsError::Protocol(e)),
                _ => {}
            }
        }
    }

    /// Drain every buffered frame into `f` (answering Engine.IO pings), then
    /// flush what was queued. Does not read from the socket.
    pub fn drain(&mut self, mut f: impl FnMut(Incoming)) -> Result<(), WsError> {
        while let Some(m) = self.conn.next_message()? {
            if m.opcode != OP_TEXT {
                self.conn.release(&m);
                f(Incoming::Invalid("binary frame".into()));
                continue;
            }
            let incoming = classify(self.proto, self.conn.data(&m));
            self.conn.release(&m);
            if incoming == Incoming::EioPing {
                self.conn.send_text(b"3");
            } else {
                f(incoming);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_text(p: Payload) -> String {
        let mut v = Vec::new();
        write_payload(&mut v, p);
        String::from_utf8(v).unwrap()
    }

    const P: Payload = Payload { p: 0, n: 42, t: 1_000 };

    #[test]
    fn socketio_frames() {
        let pl = payload_text(P);
        assert_eq!(classify(Proto::SocketIo, br#"0{"sid":"x","pingInterval":25000}"#), Incoming::EioOpen);
        assert_eq!(classify(Proto::SocketIo, b"2"), Incoming::EioPing);
        assert_eq!(classify(Proto::SocketIo, b"3"), Incoming::Other);
        assert_eq!(classify(Proto::SocketIo, br#"40{"sid":"abc"}"#), Incoming::SioConnected);
        assert!(matches!(classify(Proto::SocketIo, br#"44{"message":"no"}"#), Incoming::ServerError(_)));
        // Fast path.
        assert_eq!(classify(Proto::SocketIo, format!(r#"42["msg",{pl}]"#).as_bytes()), Incoming::Msg(P));
        // Slow path: other key order and spaces (python's default json.dumps).
        let other = r#"42["msg", {"x": "xx", "t": 1000, "n": 42, "p": 0}]"#;
        assert_eq!(classify(Proto::SocketIo, other.as_bytes()), Incoming::Msg(P));
        // With a namespace and an ack id.
        assert_eq!(classify(Proto::SocketIo, format!(r#"42/,7["msg",{pl}]"#).as_bytes()), Incoming::Msg(P));
        let recovered = format!(r#"42["msg",{pl},"1795000000000-3"]"#);
        assert_eq!(classify(Proto::SocketIo, recovered.as_bytes()), Incoming::Msg(P), "with its offset last");
        assert_eq!(classify(Proto::SocketIo, br#"42["other",1]"#), Incoming::Other);
        assert_eq!(
            classify(Proto::SocketIo, format!("4312[{pl}]").as_bytes()),
            Incoming::Ack { id: 12, data: Some(P) }
        );
        assert_eq!(classify(Proto::SocketIo, b"4312[null]"), Incoming::Ack { id: 12, data: None });
        assert!(matches!(classify(Proto::SocketIo, b"43[1]"), Incoming::Invalid(_)));
        assert!(matches!(classify(Proto::SocketIo, br#"42["msg",{"p":1}]"#), Incoming::Invalid(_)));
        assert!(matches!(classify(Proto::SocketIo, b"42[oops"), Incoming::Invalid(_)));
        assert!(matches!(classify(Proto::SocketIo, b"x"), Incoming::Invalid(_)));
    }

    #[test]
    fn json_frames() {
        let pl = payload_text(P);
        let msg = format!(r#"{{"type":"message","room":"bench","from":"abc","userId":null,"payload":{pl}}}"#);
        assert_eq!(classify(Proto::Json, msg.as_bytes()), Incoming::Msg(P));
        // Keys in another order (serde_json maps sort keys).
        let sorted = format!(r#"{{"from":"abc","payload":{pl},"room":"bench","type":"message","userId":null}}"#);
        assert_eq!(classify(Proto::Json, sorted.as_bytes()), Incoming::Msg(P));
        let ack = format!(r#"{{"type":"ack","id":9,"data":{pl}}}"#);
        assert_eq!(classify(Proto::Json, ack.as_bytes()), Incoming::Ack { id: 9, data: Some(P) });
        let ack2 = format!(r#"{{"data":{pl},"id":9,"type":"ack"}}"#);
        assert_eq!(classify(Proto::Json, ack2.as_bytes()), Incoming::Ack { id: 9, data: Some(P) });
        assert_eq!(classify(Proto::Json, br#"{"type":"connected","clientId":"a","userId":null}"#), Incoming::Connected);
        assert_eq!(classify(Proto::Json, br#"{"type":"joined","room":"bench"}"#), Incoming::Joined("bench".into()));
        assert_eq!(classify(Proto::Json, br#"{"type":"user_joined","room":"bench","clientId":"b"}"#), Incoming::Other);
        assert!(matches!(classify(Proto::Json, br#"{"type":"error","code":"x"}"#), Incoming::ServerError(_)));
        assert!(matches!(classify(Proto::Json, br#"{"type":"message","payload":3}"#), Incoming::Invalid(_)));
        assert!(matches!(classify(Proto::Json, b"nope"), Incoming::Invalid(_)));
    }

    #[test]
    fn raw_frames() {
        let pl = payload_text(P);
        assert_eq!(classify(Proto::Raw, pl.as_bytes()), Incoming::Msg(P));
        assert!(matches!(classify(Proto::Raw, format!("{pl}x").as_bytes()), Incoming::Invalid(_)));
    }

    #[test]
    fn encoders_round_trip_through_json() {
        let mut out = Vec::new();
        encode_publish(&mut out, Proto::SocketIo, P);
        let s = String::from_utf8(out.clone()).unwrap();
        let v: Value = serde_json::from_str(s.strip_prefix("42").unwrap()).unwrap();
        assert_eq!(v[0], "publish");
        assert_eq!(payload_from_value(&v[1]), Some(P));

        out.clear();
        encode_publish(&mut out, Proto::Json, P);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["room"], "bench");
        assert_eq!(payload_from_value(&v["payload"]), Some(P));

        out.clear();
        encode_echo(&mut out, Proto::SocketIo, 77, P);
        assert!(out.starts_with(b"4277[\"echo\","));
        out.clear();
        encode_echo(&mut out, Proto::Json, 77, P);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["event"].as_str(), v["id"].as_u64()),
            (Some("event"), Some("echo"), Some(77))
        );
    }
}
