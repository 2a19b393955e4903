//! WebSocket plumbing shared by both clients: the stream types, the close
//! grace, and mapping handshake and transport failures to [`Error`]s.

use std::time::Duration;

use futures_util::stream::SplitSink;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{Error, ErrorKind};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type Sink = SplitSink<Ws, Message>;

/// How long a closing handshake may take before the socket is just dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// An HTTP answer instead of the upgrade: its status gives the kind, its
/// JSON body (`{"message":…}`, as both roomcast endpoints send) the reason.
pub(crate) fn handshake_error(e: tungstenite::Error) -> Error {
    let tungstenite::Error::Http(response) = &e else {
        return ws_error(e);
    };
    let status = response.status();
    let kind = match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        404 => ErrorKind::NotFound,
        429 => ErrorKind::RateLimited,
        403 | 503 => ErrorKind::Refused,
        _ => ErrorKind::Protocol,
    };
    let message = response
        .body()
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| status.to_string());
    Error::new(kind, format!("connection refused by the server ({}): {message}", status.as_u16())).with_source(e)
}

pub(crate) fn ws_error(e: tungstenite::Error) -> Error {
    let kind = match &e {
        tungstenite::Error::Io(_) => ErrorKind::Io,
        tungstenite::Error::Url(_) | tungstenite::Error::HttpFormat(_) => ErrorKind::InvalidArgument,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => ErrorKind::Closed,
        tungstenite::Error::Capacity(_) => ErrorKind::PayloadTooLarge,
        _ => ErrorKind::Protocol,
    };
    Error::new(kind, e.to_string()).with_source(e)
}
