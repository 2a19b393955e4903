//! Minimal WebSocket (RFC 6455) framing for the generator and the limit server.
//!
//! The generator reads server frames in place from one buffer (no allocation
//! per frame) and batches its own frames into one write; control frames are
//! handled here (ping → pong, close → [`WsError::Closed`]). No extensions.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Largest message accepted (the benchmark's are ~200 bytes).
pub const MAX_MESSAGE: usize = 16 << 20;

/// The `Sec-WebSocket-Key` the generator sends and the accept value it expects.
const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const EXPECTED_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[derive(Debug)]
pub enum WsError {
    Io(io::Error),
    /// The peer sent a close frame or closed the connection.
    Closed(String),
    /// The peer broke the protocol.
    Protocol(String),
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Closed(why) => write!(f, "connection closed: {why}"),
            Self::Protocol(why) => write!(f, "websocket protocol error: {why}"),
        }
    }
}

impl std::error::Error for WsError {}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub header_len: usize,
    pub payload_len: usize,
}

impl FrameHeader {
    /// Total length of the frame on the wire.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Parse a frame header at the start of `buf`; `Ok(None)` when more bytes are needed.
pub fn parse_header(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set".into()));
    }
    let opcode = b0 & 0x0F;
    let fin = b0 & 0x80 != 0;
    if opcode >= 0x8 && (!fin || b1 & 0x7F > 125) {
        return Err(WsError::Protocol("fragmented or oversized control frame".into()));
    }
    let mut header_len = 2;
    let payload_len = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            header_len = 4;
            usize::from(u16::from_be_bytes([buf[2], buf[3]]))
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            header_len = 10;
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX)
        }
        n => usize::from(n),
    };
    if payload_len > MAX_MESSAGE {
        return Err(WsError::Protocol(format!("frame of {payload_len} bytes")));
    }
    let mask = if b1 & 0x80 != 0 {
        if buf.len() < header_len + 4 {
            return Ok(None);
        }
        let m = [buf[header_len], buf[header_len + 1], buf[header_len + 2], buf[header_len + 3]];
        header_len += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(FrameHeader { fin, opcode, mask, header_len, payload_len }))
}

/// XOR `data` with `mask` (masking and unmasking are the same).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Append one final frame; masked (client → server) when `mask` is given.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        None => out.extend_from_slice(payload),
        Some(m) => {
            out.extend_from_slice(&m);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], m);
        }
    }
}

/// Header of a final, unmasked server frame (the limit server encodes once).
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame(&mut out, opcode, payload, None);
    out
}

/// Where a received message's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgData {
    /// In the read buffer.
    Buf(Range<usize>),
    /// Reassembled from fragments.
    Fragments,
}

/// A received data message (text or binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub opcode: u8,
    pub data: MsgData,
}

/// A client WebSocket connection with an in-place read buffer and a batched write buffer.
pub struct WsConn {
    io: TcpStream,
    rbuf: BytesMut,
    /// Bytes of `rbuf` already handed out; dropped before the next read.
    consumed: usize,
    out: Vec<u8>,
    frag: Option<(u8, Vec<u8>)>,
    mask_state: u32,
}

impl std::fmt::Debug for WsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsConn").field("peer", &self.io.peer_addr().ok()).finish_non_exhaustive()
    }
}

fn find_header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Check an HTTP upgrade response head: status 101 and the expected accept key.
pub fn check_upgrade_response(head: &str) -> Result<(), WsError> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("101") {
        return Err(WsError::Protocol(format!("upgrade refused: {status}")));
    }
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|(_, v)| v.trim());
    if accept != Some(EXPECTED_ACCEPT) {
        return Err(WsError::Protocol(format!("bad Sec-WebSocket-Accept: {accept:?}")));
    }
    Ok(())
}

impl WsConn {
    /// Connect to `addr` and upgrade `path` (with query) to a WebSocket.
    pub async fn connect(addr: SocketAddr, path: &str) -> Result<Self, WsError> {
        let mut io = TcpStream::connect(addr).await?;
        io.set_nodelay(true)?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        io.write_all(request.as_bytes()).await?;
        let mut rbuf = BytesMut::with_capacity(4096);
        let end = loop {
            if let Some(end) = find_header_end(&rbuf) {
                break end;
            }
            if rbuf.len() > 16 * 1024 {
                return Err(WsError::Protocol("upgrade response too long".into()));
            }
            if io.read_buf(&mut rbuf).await? == 0 {
                return Err(WsError::Closed("during the upgrade".into()));
            }
        };
        check_upgrade_response(&String::from_utf8_lossy(&rbuf[..end]))?;
        rbuf.advance(end);
        let port = addr.port();
        Ok(Self {
            io,
            rbuf,
            consumed: 0,
            out: Vec::with_capacity(256),
            frag: None,
            mask_state: 0x9E37_79B9 ^ u32::from(port),
        })
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift32: masks need not be secret here, only present.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        x.to_le_bytes()
    }

    /// Queue a text frame (sent by the next [`flush`](Self::flush)).
    pub fn send_text(&mut self, text: &[u8]) {
        let mask = self.next_mask();
        encode_frame(&mut self.out, OP_TEXT, text, Some(mask));
    }

    /// Queue a frame of any type.
    pub fn send_frame(&mut self, opcode: u8, data: &[u8]) {
        let mask = self.next_mask();
        encode_frame(&mut self.out, opcode, data, Some(mask));
    }

    /// Whether frames are queued.
    pub fn has_pending(&self) -> bool {
        !self.out.is_empty()
    }

    /// Write every queued frame in one `write_all`.
    pub async fn flush(&mut self) -> Result<(), WsError> {
        if !self.out.is_empty() {
            self.io.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Read more bytes from the socket (cancel-safe).
    pub async fn read_more(&mut self) -> Result<(), WsError> {
        if self.consumed > 0 {
            self.rbuf.advance(self.consumed);
            self.consumed = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(8192);
        }
        if self.io.read_buf(&mut self.rbuf).await? == 0 {
            return Err(WsError::Closed("EOF".into()));
        }
        Ok(())
    }

    /// The next complete data message already buffered, if any. Pings are
    /// answered (queued), pongs skipped, a close frame is an error.
    pub fn next_message(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let Some(h) = parse_header(&self.rbuf[self.consumed..])? else { return Ok(None) };
            let start = self.consumed + h.header_len;
            let end = start + h.payload_len;
            if self.rbuf.len() < end {
                if self.rbuf.capacity() < end {
                    self.rbuf.reserve(end - self.rbuf.len());
                }
                return Ok(None);
            }
            if let Some(m) = h.mask {
                apply_mask(&mut self.rbuf[start..end], m);
            }
            self.consumed = end;
            match h.opcode {
                OP_PING => {
                    let data = self.rbuf[start..end].to_vec();
                    self.send_frame(OP_PONG, &data);
                }
                OP_PONG => {}
                OP_CLOSE => {
                    let code = if end - start >= 2 {
                        u16::from_be_bytes([self.rbuf[start], self.rbuf[start + 1]])
                    } else {
                        1005
                    };
                    let reason = String::from_utf8_lossy(&self.rbuf[(start + 2).min(end)..end]).into_owned();
                    return Err(WsError::Closed(format!("close frame {code} {reason}")));
                }
                OP_TEXT | OP_BINARY if h.fin => {
                    if self.frag.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one".into()));
                    }
                    return Ok(Some(Message { opcode: h.opcode, data: MsgData::Buf(start..end) }));
                }
                OP_TEXT | OP_BINARY => {
                    if self.frag.is_some() {
                        return Err(WsError::Protocol("new message inside a fragmented one".into()));
                    }
                    self.frag = Some((h.opcode, self.rbuf[start..end].to_vec()));
                }
                OP_CONTINUATION => {
                    let Some((opcode, buf)) = self.frag.as_mut() else {
                        return Err(WsError::Protocol("continuation without a message".into()));
                    };
                    buf.extend_from_slice(&self.rbuf[start..end]);
                    if buf.len() > MAX_MESSAGE {
                        return Err(WsError::Protocol("message too big".into()));
                    }
                    if h.fin {
                        return Ok(Some(Message { opcode: *opcode, data: MsgData::Fragments }));
                    }
                }
                other => return Err(WsError::Protocol(format!("unknown opcode {other}"))),
            }
        }
    }

    /// The bytes of a message returned by the last [`next_message`](Self::next_message).
    pub fn data(&self, msg: &Message) -> &[u8] {
        match &msg.data {
            MsgData::Buf(r) => &self.rbuf[r.clone()],
            MsgData::Fragments => self.frag.as_ref().map(|(_, b)| b.as_slice()).unwrap_or_default(),
        }
    }

    /// Release a reassembled message (call after handling a [`MsgData::Fragments`] one).
    pub fn release(&mut self, msg: &Message) {
        if msg.data == MsgData::Fragments {
            self.frag = None;
        }
    }

    /// Wait for the next data message, answering control frames on the way.
    /// Returns an owned copy (for handshakes; hot paths use [`next_message`](Self::next_message)).
    pub async fn recv(&mut self) -> Result<Vec<u8>, WsError> {
        loop {
            if let Some(m) = self.next_message()? {
                let v = self.data(&m).to_vec();
                self.release(&m);
                return Ok(v);
            }
            self.flush().await?;
            self.read_more().await?;
        }
    }

    /// Send a close frame and flush (best effort).
    pub async fn close(&mut self) {
        self.send_frame(OP_CLOSE, &1000u16.to_be_bytes());
        let _ = self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 100_000] {
            let payload = vec![b'a'; len];
            let mut out = Vec::new();
            encode_frame(&mut out, OP_TEXT, &payload, None);
            let h = parse_header(&out).unwrap().unwrap();
            assert_eq!(h.payload_len, len);
            assert_eq!(h.frame_len(), out.len());
            assert!(h.fin);
            assert_eq!(h.opcode, OP_TEXT);
            assert_eq!(h.mask, None);
            // Any prefix of the header is "need more".
            for cut in 0..h.header_len {
                assert_eq!(parse_header(&out[..cut]).unwrap(), None);
            }
        }
    }

    #[test]
    fn masked_round_trip() {
        let mut out = Vec::new();
        encode_frame(&mut out, OP_TEXT, b"hello", Some([1, 2, 3, 4]));
        let h = parse_header(&out).unwrap().unwrap();
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
        let mut data = out[h.header_len..].to_vec();
        assert_ne!(data, b"hello");
        apply_mask(&mut data, [1, 2, 3, 4]);
        assert_eq!(data, b"hello");
    }

    #[test]
    fn rejects_bad_frames() {
        assert!(parse_header(&[0xC1, 0x00]).is_err()); // RSV1 (compression) not negotiated
        assert!(parse_header(&[0x09, 0x00]).is_err()); // fragmented ping
        assert!(parse_header(&[0x89, 126, 0, 200]).is_err()); // control frame > 125
    }

    #[test]
    fn upgrade_response() {
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nsec-websocket-accept: {EXPECTED_ACCEPT}\r\n\r\n"
        );
        assert!(check_upgrade_response(&ok).is_ok());
        assert!(check_upgrade_response("HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
        assert!(check_upgrade_response("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n").is_err());
        // The constant matches tungstenite's derivation.
        assert_eq!(
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(CLIENT_KEY.as_bytes()),
            EXPECTED_ACCEPT
        );
    }
}
