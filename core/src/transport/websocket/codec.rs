//! RFC 6455 framing for the server side: header parsing and formatting come
//! from tungstenite's [`FrameHeader`]; roomcast frames outbound payloads
//! itself so a broadcast's payload is never copied per recipient (the header
//! is formatted beside it and both go out in one vectored write).

use std::io::Cursor;

use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::transport::Frame;

/// The longest header a server frame can have (no mask).
pub(crate) const MAX_SERVER_HEADER: usize = 10;

/// Why a client broke the protocol; the connection is closed with the
/// matching close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A frame or message above the size limit (close 1009).
    TooBig,
    /// A text message that is not UTF-8 (close 1007).
    InvalidUtf8,
    /// Any other breach of RFC 6455 (close 1002).
    Protocol(&'static str),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::TooBig => f.write_str("message too big"),
            Violation::InvalidUtf8 => f.write_str("text message is not UTF-8"),
            Violation::Protocol(why) => write!(f, "protocol error: {why}"),
        }
    }
}

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub fin: bool,
    pub opcode: OpCode,
    pub mask: [u8; 4],
    pub header_len: usize,
    pub payload_len: usize,
}

/// Parse the client frame header at the start of `buf`; `Ok(None)` when more
/// bytes are needed. Checks what a server must: masked, no reserved bits
/// (no extension is negotiated), control frames final and short, and the
/// payload within `max_payload`.
pub(crate) fn parse_header(buf: &[u8], max_payload: usize) -> Result<Option<Header>, Violation> {
    let mut cursor = Cursor::new(buf);
    let (h, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(Violation::Protocol("malformed frame header")),
    };
    if h.rsv1 || h.rsv2 || h.rsv3 {
        return Err(Violation::Protocol("reserved bits set"));
    }
    let Some(mask) = h.mask else { return Err(Violation::Protocol("unmasked client frame")) };
    match h.opcode {
        OpCode::Data(Data::Reserved(_)) | OpCode::Control(Control::Reserved(_)) => {
            return Err(Violation::Protocol("reserved opcode"));
        }
        OpCode::Control(_) if !h.is_final || len > 125 => {
            return Err(Violation::Protocol("fragmented or oversized control frame"));
        }
        _ => {}
    }
    let payload_len = usize::try_from(len).unwrap_or(usize::MAX);
    if payload_len > max_payload {
        return Err(Violation::TooBig);
    }
    Ok(Some(Header { fin: h.is_final, opcode: h.opcode, mask, header_len: cursor.position() as usize, payload_len }))
}

/// XOR `data` with the frame mask (client frames are always masked).
pub(crate) fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The opcode and payload of an outbound frame. Close payloads are built
/// here (code + reason); the others are the frame's own bytes.
pub(crate) fn opcode_and_payload(frame: &Frame) -> (OpCode, std::borrow::Cow<'_, [u8]>) {
    use std::borrow::Cow;
    match frame {
        Frame::Text(t) => (OpCode::Data(Data::Text), Cow::Borrowed(t.as_bytes())),
        Frame::Binary(b) => (OpCode::Data(Data::Binary), Cow::Borrowed(b)),
        Frame::Ping(b) => (OpCode::Control(Control::Ping), Cow::Borrowed(b)),
        Frame::Pong(b) => (OpCode::Control(Control::Pong), Cow::Borrowed(b)),
        Frame::Close { code, reason } => {
            // Control payloads are at most 125 bytes: cut the reason on a char boundary.
            let mut end = reason.len().min(123);
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            let mut p = Vec::with_capacity(2 + end);
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(&reason.as_bytes()[..end]);
            (OpCode::Control(Control::Close), Cow::Owned(p))
        }
    }
}

/// Append the header of a final, unmasked frame carrying `len` bytes.
pub(crate) fn write_header(out: &mut Vec<u8>, opcode: OpCode, len: usize) {
    let header = FrameHeader { opcode, ..FrameHeader::default() };
    // Writing to a Vec cannot fail.
    let _ = header.format(len as u64, out);
}

/// The status code of a received close frame's payload, if it has one.
pub(crate) fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        let start = out.len();
        out.extend_from_slice(payload);
        unmask(&mut out[start..], mask);
        out
    }

    #[test]
    fn parses_masked_frames_of_every_length_form() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload = vec![b'x'; len];
            let bytes = client_frame(0x81, &payload, [1, 2, 3, 4]);
            let h = parse_header(&bytes, 1 << 20).unwrap().unwrap();
            assert_eq!((h.fin, h.opcode, h.payload_len), (true, OpCode::Data(Data::Text), len));
            assert_eq!(h.header_len + len, bytes.len());
            let mut body = bytes[h.header_len..].to_vec();
            unmask(&mut body, h.mask);
            assert_eq!(body, payload);
            // Every strict prefix of the header asks for more bytes.
            for cut in 0..h.header_len {
                assert_eq!(parse_header(&bytes[..cut], 1 << 20), Ok(None), "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn refuses_what_a_server_must() {
        let unmasked = [0x81u8, 0x01, b'a'];
        assert_eq!(parse_header(&unmasked, 100), Err(Violation::Protocol("unmasked client frame")));
        let rsv = client_frame(0xC1, b"a", [0; 4]);
        assert_eq!(parse_header(&rsv, 100), Err(Violation::Protocol("reserved bits set")));
        let reserved_op = client_frame(0x83, b"a", [0; 4]);
        assert!(matches!(parse_header(&reserved_op, 100), Err(Violation::Protocol(_))));
        let fragmented_ping = client_frame(0x09, b"a", [0; 4]);
        assert!(matches!(parse_header(&fragmented_ping, 100), Err(Violation::Protocol(_))));
        let long_ping = client_frame(0x89, &[0; 126], [0; 4]);
        assert!(matches!(parse_header(&long_ping, 1000), Err(Violation::Protocol(_))));
        let big = client_frame(0x82, &[0; 101], [0; 4]);
        assert_eq!(parse_header(&big, 100), Err(Violation::TooBig));
    }

    #[test]
    fn unmask_matches_bytewise_xor() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let mask = [0xA1, 0x02, 0x7F, 0xFE];
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(fast, slow);
    }

    #[test]
    fn formats_server_headers() {
        for (len, want) in [
            (5usize, vec![0x81, 5]),
            (200, vec![0x81, 126, 0, 200]),
            (70_000, {
                let mut v = vec![0x81, 127];
                v.extend_from_slice(&70_000u64.to_be_bytes());
                v
            }),
        ] {
            let mut out = Vec::new();
            write_header(&mut out, OpCode::Data(Data::Text), len);
            assert_eq!(out, want);
            assert!(out.len() <= MAX_SERVER_HEADER);
        }
        let close = Frame::Close { code: 4008, reason: "é".repeat(100).into() };
        let (op, payload) = opcode_and_payload(&close);
        assert_eq!(op, OpCode::Control(Control::Close));
        assert!(payload.len() <= 125);
        assert_eq!(close_code(&payload), Some(4008));
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
