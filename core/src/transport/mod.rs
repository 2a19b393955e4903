//! Transports move frames between a session and the network. The outbox is
//! shared by all of them; each transport drains it its own way.

pub mod outbox;
pub mod websocket;

pub use outbox::Overflow;

use std::borrow::Cow;

use bytes::Bytes;
pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One outbound frame. Payloads are refcounted so a broadcast encoded once
/// is shared by every recipient's queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    /// The answer to a client's ping.
    Pong(Bytes),
    Close {
        code: u16,
        reason: Cow<'static, str>,
    },
}

impl Frame {
    /// Payload bytes, as counted against queue limits.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
            Frame::Close { reason, .. } => 2 + reason.len(),
        }
    }

    /// Whether the frame has an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<String> for Frame {
    fn from(s: String) -> Self {
        Frame::Text(s.into())
    }
}

/// WebSocket close codes used by roomcast (documented in docs/protocol-json.md).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const PING_TIMEOUT: u16 = 4000;
    pub const AUTH_FAILED: u16 = 4001;
    pub const REFUSED: u16 = 4003;
    pub const SLOW_CONSUMER: u16 = 4008;
}
