//! The "limit" server of `bench/APP.md`: what a fan-out costs with no protocol
//! at all. Every connection (any path) is a subscriber; a text frame from a
//! client is encoded once as a server WebSocket frame and those `Bytes` are
//! queued to every other subscriber, whose writer task writes everything
//! queued with one `write_all`.
//!
//! The upgrade handshake is done by hand (tungstenite's `derive_accept_key`)
//! so that the raw `TcpStream` can be split: the reader half parses client
//! frames, the writer half gets raw frame bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use parking_lot::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::ws::{self, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, WsError};

/// Frames one subscriber may have queued; past that its frames are dropped
/// and reported on stderr (the generator's window keeps queues far shorter,
/// so a drop shows up as loss in the results).
pub const QUEUE_FRAMES: usize = 8192;

#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    subscribers: RwLock<HashMap<u64, mpsc::Sender<Bytes>>>,
}

/// Accept connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let registry = Arc::new(Registry::default());
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, registry).await
                && !matches!(e, WsError::Closed(_))
            {
                eprintln!("limit: connection ended: {e}");
            }
        });
    }
}

/// Read the HTTP upgrade request and answer 101; returns bytes read past it.
async fn handshake(stream: &mut TcpStream) -> Result<BytesMut, WsError> {
    let mut buf = BytesMut::with_capacity(2048);
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(WsError::Protocol("request head too long".into()));
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(WsError::Closed("before the upgrade".into()));
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let key = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.trim().to_owned());
    let Some(key) = key else {
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
        return Err(WsError::Protocol("not a websocket upgrade".into()));
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await?;
    buf.advance(end);
    Ok(buf)
}

async fn connection(mut stream: TcpStream, registry: Arc<Registry>) -> Result<(), WsError> {
    stream.set_nodelay(true)?;
    let mut rbuf = handshake(&mut stream).await?;
    let (mut reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_FRAMES);
    let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
    registry.subscribers.write().insert(id, tx.clone());
    let writer_task = tokio::spawn(write_loop(writer, rx));

    let result = async {
        let mut fragments: Option<Vec<u8>> = None;
        loop {
            while let Some(h) = ws::parse_header(&rbuf)? {
                if rbuf.len() < h.frame_len() {
                    rbuf.reserve(h.frame_len() - rbuf.len());
                    break;
                }
                let mut frame = rbuf.split_to(h.frame_len());
                frame.advance(h.header_len);
                let Some(mask) = h.mask else { return Err(WsError::Protocol("unmasked client frame".into())) };
                ws::apply_mask(&mut frame, mask);
                match h.opcode {
                    OP_TEXT if h.fin => broadcast(&registry, id, &frame),
                    OP_TEXT => fragments = Some(frame.to_vec()),
                    OP_CONTINUATION => {
                        let Some(buf) = fragments.as_mut() else {
                            return Err(WsError::Protocol("continuation without a message".into()));
                        };
                        buf.extend_from_slice(&frame);
                        if h.fin {
                            broadcast(&registry, id, buf);
                            fragments = None;
                        }
                    }
                    OP_PING => {
                        let _ = tx.try_send(Bytes::from(ws::server_frame(OP_PONG, &frame)));
                    }
                    OP_CLOSE => {
                        let _ = tx.try_send(Bytes::from(ws::server_frame(OP_CLOSE, &frame[..frame.len().min(2)])));
                        return Err(WsError::Closed("close frame".into()));
                    }
                    _ => {} // pongs, binary frames: ignored
                }
            }
            if rbuf.capacity() - rbuf.len() < 1024 {
                rbuf.reserve(8192);
            }
            if reader.read_buf(&mut rbuf).await? == 0 {
                return Err(WsError::Closed("EOF".into()));
            }
        }
    }
    .await;
    registry.subscribers.write().remove(&id);
    drop(tx);
    // Let the writer flush what is queued (e.g. the close frame).
    let _ = writer_task.await;
    result
}

/// Encode `text` once and queue it to every subscriber but `from`.
fn broadcast(registry: &Registry, from: u64, text: &[u8]) {
    let frame = Bytes::from(ws::server_frame(OP_TEXT, text));
    let subscribers = registry.subscribers.read();
    for (&id, tx) in subscribers.iter() {
        if id != from && tx.try_send(frame.clone()).is_err() {
            // Full (a consumer that does not read) or gone: its own task ends it.
            eprintln!("limit: subscriber {id} queue full, frame dropped");
        }
    }
}

/// Write every queued frame: wait for one, take all others already queued,
/// and hand them to the kernel in one batched write.
async fn write_loop(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(256);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        if batch.len() == 1 {
            if writer.write_all(&batch[0]).await.is_err() {
                return;
            }
        } else {
            buf.clear();
            for b in &batch {
                buf.extend_from_slice(b);
            }
            if writer.write_all(&buf).await.is_err() {
                return;
            }
        }
        batch.clear();
    }
    let _ = writer.shutdown().await;
}
