//! The writing half of a server WebSocket.
//!
//! Frames are written straight to the socket's write half: each payload is
//! referenced, not copied, beside a header formatted for it, in one vectored
//! write per batch. The half is shared (`&self` writes) so a reply can be
//! written by the task that produced it when the connection's queue is empty
//! (see [`Outbox::push_now`]), sparing a wake-up of the writer task.

use std::borrow::Cow;
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::tcp::OwnedWriteHalf;

use super::codec;
use crate::metrics::Counters;
use crate::transport::Frame;
use crate::transport::outbox::Outbox;

/// Slices per `writev` call: below every platform's `IOV_MAX` (1024 on Linux).
const MAX_SLICES: usize = 512;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct WsWriter {
    io: OwnedWriteHalf,
    counters: Arc<Counters>,
}

/// A batch of frames laid out for a vectored write: each payload follows its
/// header.
struct Encoded<'a> {
    headers: Vec<u8>,
    /// (end of this frame's header in `headers`, payload)
    parts: Vec<(usize, Cow<'a, [u8]>)>,
    len: usize,
    data_frames: u64,
    data_bytes: u64,
}

impl<'a> Encoded<'a> {
    fn new(frames: &'a [Frame]) -> Self {
        let mut e = Encoded {
            headers: Vec::with_capacity(frames.len() * codec::MAX_SERVER_HEADER),
            parts: Vec::with_capacity(frames.len()),
            len: 0,
            data_frames: 0,
            data_bytes: 0,
        };
        for frame in frames {
            let (opcode, payload) = codec::opcode_and_payload(frame);
            let start = e.headers.len();
            codec::write_header(&mut e.headers, opcode, payload.len());
            e.len += e.headers.len() - start + payload.len();
            if matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
                e.data_frames += 1;
                e.data_bytes += payload.len() as u64;
            }
            e.parts.push((e.headers.len(), payload));
        }
        e
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(self.parts.len() * 2);
        let mut start = 0;
        for (end, payload) in &self.parts {
            out.push(IoSlice::new(&self.headers[start..*end]));
            if !payload.is_empty() {
                out.push(IoSlice::new(payload));
            }
            start = *end;
        }
        out
    }
}

impl WsWriter {
    pub(crate) fn new(io: OwnedWriteHalf, counters: Arc<Counters>) -> Self {
        Self { io, counters }
    }

    /// Write `frames` if the socket takes them without waiting. Returns None
    /// when all went out, else how many bytes of their encoding did: the
    /// caller queues the frames and the writer task skips those bytes.
    pub(crate) fn try_write(&self, frames: &[Frame]) -> io::Result<Option<usize>> {
        let encoded = Encoded::new(frames);
        let mut slices = encoded.slices();
        let mut bufs = &mut slices[..];
        let mut written = 0;
        while !bufs.is_empty() {
            match self.io.try_write_vectored(&bufs[..bufs.len().min(MAX_SLICES)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if written == 0 => return Err(e),
                Err(_) => break,
            }
        }
        if written < encoded.len {
            return Ok(Some(written));
        }
        self.count(&encoded);
        Ok(None)
    }

    /// Write `frames`, of whose encoding the first `skip` bytes are already
    /// on the wire, waiting for the socket as needed.
    pub(crate) async fn write_all(&self, frames: &[Frame], skip: usize) -> io::Result<()> {
        let encoded = Encoded::new(frames);
        let mut slices = encoded.slices();
        let mut bufs = &mut slices[..];
        IoSlice::advance_slices(&mut bufs, skip);
        while !bufs.is_empty() {
            self.io.writable().await?;
            match self.io.try_write_vectored(&bufs[..bufs.len().min(MAX_SLICES)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        self.count(&encoded);
        Ok(())
    }

    fn count(&self, encoded: &Encoded<'_>) {
        Counters::add(&self.counters.messages_out, encoded.data_frames);
        Counters::add(&self.counters.bytes_out, encoded.data_bytes);
    }
}

/// Drain the outbox to the socket until it closes: everything queued goes
/// out in one vectored write. Ends after a close frame (bounded by
/// `close_timeout`: the peer may not be reading), or when the peer is gone.
pub(crate) async fn write_loop(writer: Arc<WsWriter>, outbox: Arc<Outbox>, close_timeout: Duration) {
    let mut batch = Vec::new();
    while let Some(skip) = outbox.next_batch(&mut batch).await {
        let closing = matches!(batch.last(), Some(Frame::Close { .. }));
        let written = if closing {
            tokio::time::timeout(close_timeout, writer.write_all(&batch, skip)).await.unwrap_or(Ok(()))
        } else {
            writer.write_all(&batch, skip).await
        };
        batch.clear();
        if closing || written.is_err() {
            break;
        }
    }
    // Dropping the last reference to the write half sends FIN.
    outbox.detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_headers_beside_payloads() {
        let frames = [
            Frame::Text("hello".into()),
            Frame::Binary(bytes::Bytes::from(vec![7u8; 300])),
            Frame::Pong(bytes::Bytes::new()),
        ];
        let e = Encoded::new(&frames);
        let flat: Vec<u8> = e.slices().iter().flat_map(|s| s.to_vec()).collect();
        let mut want = vec![0x81, 5];
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&[0x82, 126, 1, 44]);
        want.extend_from_slice(&[7u8; 300]);
        want.extend_from_slice(&[0x8A, 0]);
        assert_eq!(flat, want);
        assert_eq!(e.len, want.len());
        assert_eq!((e.data_frames, e.data_bytes), (2, 305));
    }
}
