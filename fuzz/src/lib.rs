//! What each fuzz target checks, callable from a stable test too: core's
//! `tests/fuzz_corpus.rs` includes this file and replays the committed corpus
//! (fuzz/corpus/<target>/) through the same checks in `make test`.
//!
//! Every check: decoding never panics, and what decodes re-encodes to
//! something that decodes to the same value.

use bytes::Bytes;
use roomcast::protocol::{engineio as eio, native, socketio as sio};

/// One Engine.IO packet (a WebSocket text frame or a polling segment).
pub fn engineio(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(packet) = eio::decode_text(text) {
        assert_eq!(eio::decode_text(&eio::encode_text(&packet)).as_ref(), Ok(&packet), "{text:?}");
    }
}

/// A long-polling POST body, as the server reads it: UTF-8, then packets
/// separated by the record separator.
pub fn polling_body(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(packets) = eio::decode_payload(text) {
        assert_eq!(eio::decode_payload(&eio::encode_payload(&packets)).as_ref(), Ok(&packets), "{text:?}");
    }
}

/// Socket.IO frames into one decoder, binary reassembly included. The input
/// is split at 0xFF bytes into frames; a frame starting with 0x00 is binary.
pub fn socketio(data: &[u8]) {
    let mut decoder = sio::Decoder::with_max_attachments(8);
    for frame in data.split(|b| *b == 0xFF) {
        let progress = match frame.split_first() {
            Some((0, bytes)) => decoder.feed_binary(Bytes::copy_from_slice(bytes)),
            _ => match std::str::from_utf8(frame) {
                Ok(text) => decoder.feed_text(text),
                Err(_) => continue,
            },
        };
        if let Ok(sio::Progress::Complete { mut packet, attachments }) = progress {
            let again = sio::decode(&sio::encode(&packet)).expect("a decoded packet re-encodes");
            assert_eq!(again, packet);
            let _ = packet.take_data(attachments);
        }
        assert!(decoder.remaining() <= 8);
    }
}

/// A JSON-protocol message from a client, and one from a server (the Rust
/// client decodes those).
pub fn json_protocol(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(message) = native::decode_client(text) {
        assert_eq!(native::decode_client(&native::encode_client(&message)), Ok(message));
    }
    if let Ok(message) = native::ServerMessage::decode(text) {
        let again = native::ServerMessage::decode(&message.encode()).expect("a decoded message re-encodes");
        assert_eq!(again, message);
    }
}
