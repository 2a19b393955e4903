//! The server's WebSocket transport: the upgrade handshake over hyper, then
//! RFC 6455 framing straight on the TCP stream's two halves (see
//! [`reader`] and [`writer`] for why not a generic WebSocket stream).

mod codec;
mod reader;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

pub(crate) use codec::Violation;
pub(crate) use reader::{ReadError, Received, WsReader};
pub(crate) use writer::{WsWriter, write_loop};

use super::Frame;
use crate::metrics::Counters;

/// Whether the request asks for a WebSocket upgrade.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.to_str().map(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(token))).unwrap_or(false))
    };
    has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers.get(header::SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13")
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
}

/// The `101 Switching Protocols` answer to a valid upgrade request.
pub fn switching_protocols<B: Default>(headers: &HeaderMap) -> Option<Response<B>> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let accept = derive_accept_key(key.as_bytes());
    let mut res = Response::new(B::default());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, HeaderValue::from_str(&accept).ok()?);
    Some(res)
}

/// Take over an upgraded connection as a server WebSocket: its reading half
/// and its shared writing half. None if the connection is not a TCP stream
/// (the server only serves TCP).
pub(crate) fn accept(
    upgraded: Upgraded,
    max_payload: usize,
    counters: Arc<Counters>,
) -> Option<(WsReader, Arc<WsWriter>)> {
    let parts = upgraded.downcast::<TokioIo<TcpStream>>().ok()?;
    let (read, write) = parts.io.into_inner().into_split();
    Some((WsReader::new(read, parts.read_buf, max_payload), Arc::new(WsWriter::new(write, counters))))
}

/// Write frames to a WebSocket whose writer task has not started (the
/// Engine.IO upgrade probe, a refusal before the session), within `timeout`.
pub(crate) async fn send(writer: &WsWriter, frames: &[Frame], timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, writer.write_all(frames, 0)).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc_example_key() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(is_upgrade(&h));
        let res: Response<()> = switching_protocols(&h).unwrap();
        assert_eq!(res.headers()[header::SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        h.remove(header::SEC_WEBSOCKET_VERSION);
        assert!(!is_upgrade(&h));
    }
}
