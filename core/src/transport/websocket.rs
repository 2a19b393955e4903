//! WebSocket transport: the upgrade handshake over hyper and the writer task.
//! The only module that talks to tokio-tungstenite on the server side.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::Frame;
use super::outbox::Outbox;
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

/// Bytes read from the socket at a time. tungstenite zero-fills its whole
/// read buffer on every read, so its 128 KiB default would cost every idle
/// connection 128 KiB of resident memory. 2 KiB holds a burst of small
/// messages per read; larger frames grow the buffer as needed.
const READ_BUFFER: usize = 2048;

/// tungstenite settings: inbound messages and frames capped at `max_payload`.
pub fn config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(max_payload.saturating_mul(2).max(1024 * 1024))
}

pub(crate) fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(t) => Message::Text(t),
        Frame::Binary(b) => Message::Binary(b),
        Frame::Ping(b) => Message::Ping(b),
        Frame::Close { code, reason } => {
            Message::Close(Some(CloseFrame { code: CloseCode::from(code), reason: reason.into_owned().into() }))
        }
    }
}

/// Drain the outbox into the sink until it closes: everything queued is fed,
/// then flushed once, so a burst of frames costs one write. Ends after a
/// close frame, or when the peer is gone.
pub(crate) async fn write_loop<S>(mut sink: S, outbox: Arc<Outbox>, counters: Arc<Counters>, close_timeout: Duration)
where
    S: Sink<Message> + Unpin,
{
    let mut batch = Vec::new();
    while outbox.next_batch(&mut batch).await {
        let (mut frames, mut bytes) = (0u64, 0u64);
        let mut closing = false;
        for frame in batch.drain(..) {
            if matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
                frames += 1;
                bytes += frame.len() as u64;
            }
            closing = matches!(frame, Frame::Close { .. });
            let msg = to_message(frame);
            if closing {
                // The peer may not be reading: bound the close handshake.
                let _ = tokio::time::timeout(close_timeout, async {
                    let _ = sink.send(msg).await;
                    let _ = sink.close().await;
                })
                .await;
                break;
            }
            if sink.feed(msg).await.is_err() {
                return;
            }
        }
        Counters::add(&counters.messages_out, frames);
        Counters::add(&counters.bytes_out, bytes);
        if closing || sink.flush().await.is_err() {
            return;
        }
    }
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
