//! The reading half of a server WebSocket.
//!
//! An idle connection holds no read buffer: the buffer is released whenever
//! everything received has been parsed and the socket has nothing more to
//! read, and allocated again when data arrives. With tens of thousands of
//! mostly idle clients this is most of a connection's memory.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::tcp::OwnedReadHalf;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::codec::{self, Violation};
use crate::transport::Utf8Bytes;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4096;

/// A message or control frame from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    Text(Utf8Bytes),
    Binary(Bytes),
    /// Answer with a pong carrying the same payload.
    Ping(Bytes),
    Pong,
    /// The client started the closing handshake (with its status code, if any).
    Close(Option<u16>),
}

/// Why reading ended.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the TCP connection without a close frame.
    Eof,
    Io(io::Error),
    Violation(Violation),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Eof => f.write_str("connection closed without a close frame"),
            ReadError::Io(e) => write!(f, "i/o error: {e}"),
            ReadError::Violation(v) => v.fmt(f),
        }
    }
}

/// A message being reassembled from fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct WsReader {
    io: OwnedReadHalf,
    buf: BytesMut,
    partial: Option<Partial>,
    max_payload: usize,
}

impl WsReader {
    /// `pending` holds bytes the HTTP layer read past the upgrade request.
    /// It is a view into hyper's whole read buffer, so it is copied, not kept.
    pub(crate) fn new(io: OwnedReadHalf, pending: Bytes, max_payload: usize) -> Self {
        Self { io, buf: BytesMut::from(&pending[..]), partial: None, max_payload }
    }

    /// The next message or control frame. Cancel-safe: a frame is only taken
    /// from the buffer once it is complete.
    pub(crate) async fn next(&mut self) -> Result<Received, ReadError> {
        loop {
            if let Some(msg) = self.parse().map_err(ReadError::Violation)? {
                return Ok(msg);
            }
            self.fill().await?;
        }
    }

    /// Take the next complete frame from the buffer; data frames that end a
    /// message yield it.
    fn parse(&mut self) -> Result<Option<Received>, Violation> {
        loop {
            let Some(h) = codec::parse_header(&self.buf, self.max_payload)? else { return Ok(None) };
            let frame_len = h.header_len + h.payload_len;
            if self.buf.len() < frame_len {
                self.buf.reserve(frame_len - self.buf.len());
                return Ok(None);
            }
            self.buf.advance(h.header_len);
            let mut payload = self.buf.split_to(h.payload_len);
            codec::unmask(&mut payload, h.mask);
            let (text, data) = match h.opcode {
                OpCode::Control(Control::Ping) => return Ok(Some(Received::Ping(payload.freeze()))),
                OpCode::Control(Control::Pong) => return Ok(Some(Received::Pong)),
                OpCode::Control(Control::Close) => {
                    if payload.len() == 1 || (payload.len() > 2 && std::str::from_utf8(&payload[2..]).is_err()) {
                        return Err(Violation::Protocol("malformed close frame"));
                    }
                    return Ok(Some(Received::Close(codec::close_code(&payload))));
                }
                OpCode::Data(Data::Continue) => {
                    let Some(p) = self.partial.as_mut() else {
                        return Err(Violation::Protocol("continuation frame without a message"));
                    };
                    if p.data.len() + payload.len() > self.max_payload {
                        return Err(Violation::TooBig);
                    }
                    p.data.extend_from_slice(&payload);
                    if !h.fin {
                        continue;
                    }
                    let p = self.partial.take().expect("checked above");
                    (p.text, p.data)
                }
                OpCode::Data(op) => {
                    if self.partial.is_some() {
                        return Err(Violation::Protocol("new message inside a fragmented one"));
                    }
                    let text = op == Data::Text;
                    if !h.fin {
                        self.partial = Some(Partial { text, data: payload });
                        continue;
                    }
                    (text, payload)
                }
                OpCode::Control(Control::Reserved(_)) => return Err(Violation::Protocol("reserved opcode")),
            };
            let data = data.freeze();
            return Ok(Some(if text {
                Received::Text(Utf8Bytes::try_from(data).map_err(|_| Violation::InvalidUtf8)?)
            } else {
                Received::Binary(data)
            }));
        }
    }

    /// Read more bytes. An emptied buffer goes back to the allocator when
    /// the socket turns out to have nothing more (the connection is idle).
    async fn fill(&mut self) -> Result<(), ReadError> {
        loop {
            self.io.readable().await.map_err(ReadError::Io)?;
            self.buf.reserve(READ_CHUNK);
            match self.io.try_read_buf(&mut self.buf) {
                Ok(0) => return Err(ReadError::Eof),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.buf.is_empty() {
                        self.buf = BytesMut::new();
                    }
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A client frame, masked as clients must.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![first, 0x80 | payload.len() as u8];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn pair(max_payload: usize) -> (TcpStream, WsReader) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, _write) = server.into_split();
        (client, WsReader::new(read, Bytes::new(), max_payload))
    }

    async fn next(reader: &mut WsReader) -> Result<Received, ReadError> {
        tokio::time::timeout(std::time::Duration::from_secs(5), reader.next()).await.expect("reader stalled")
    }

    #[tokio::test]
    async fn reassembles_fragments_around_control_frames() {
        let (mut client, mut reader) = pair(1024).await;
        let mut bytes = frame(0x01, b"hel"); // text, not final
        bytes.extend(frame(0x89, b"p")); // a ping between fragments
        bytes.extend(frame(0x80, b"lo")); // final continuation
        bytes.extend(frame(0x82, &[1, 2, 3]));
        bytes.extend(frame(0x8A, b""));
        bytes.extend(frame(0x88, &1000u16.to_be_bytes()));
        // Byte by byte: every frame boundary and split header is exercised.
        for b in bytes {
            client.write_all(&[b]).await.unwrap();
        }
        assert_eq!(next(&mut reader).await.unwrap(), Received::Ping(Bytes::from_static(b"p")));
        assert_eq!(next(&mut reader).await.unwrap(), Received::Text("hello".into()));
        assert_eq!(next(&mut reader).await.unwrap(), Received::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(next(&mut reader).await.unwrap(), Received::Pong);
        assert_eq!(next(&mut reader).await.unwrap(), Received::Close(Some(1000)));
        drop(client);
        assert!(matches!(next(&mut reader).await, Err(ReadError::Eof)));
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer() {
        let (mut client, mut reader) = pair(1024).await;
        client.write_all(&frame(0x81, b"hi")).await.unwrap();
        assert_eq!(next(&mut reader).await.unwrap(), Received::Text("hi".into()));
        // Waiting for the next frame finds the socket empty and lets go of the buffer.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), reader.next()).await.is_err());
        assert_eq!(reader.buf.capacity(), 0);
        client.write_all(&frame(0x81, b"again")).await.unwrap();
        assert_eq!(next(&mut reader).await.unwrap(), Received::Text("again".into()));
    }

    #[tokio::test]
    async fn violations_end_reading() {
        let cases: Vec<(Vec<u8>, Violation)> = vec![
            (vec![0x81, 0x01, b'a'], Violation::Protocol("unmasked client frame")),
            (frame(0x80, b"x"), Violation::Protocol("continuation frame without a message")),
            (
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
                Violation::Protocol("new message inside a fragmented one"),
            ),
            (frame(0x81, &[0xFF, 0xFE]), Violation::InvalidUtf8),
            (frame(0x82, &[0; 11]), Violation::TooBig),
            ([frame(0x02, &[0; 6]), frame(0x80, &[0; 6])].concat(), Violation::TooBig),
            (frame(0x88, &[3]), Violation::Protocol("malformed close frame")),
        ];
        for (bytes, want) in cases {
            let (mut client, mut reader) = pair(10).await;
            client.write_all(&bytes).await.unwrap();
            match next(&mut reader).await {
                Err(ReadError::Violation(v)) => assert_eq!(v, want),
                other => panic!("{bytes:?}: expected {want:?}, got {other:?}"),
            }
        }
    }
}
