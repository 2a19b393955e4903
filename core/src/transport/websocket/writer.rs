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

/// Payloads up to this size are copied next to their header: the kernel
/// copies one contiguous run much faster than many small slices. Larger ones
/// are referenced where they are.
const INLINE_PAYLOAD: usize = 1024;

/// A batch of frames laid out for one vectored write.
struct Encoded<'a> {
    /// Headers and small payloads, in order.
    buf: Vec<u8>,
    parts: Vec<Part<'a>>,
    len: usize,
    data_frames: u64,
    data_bytes: u64,
}

enum Part<'a> {
    /// A run of `buf`.
    Run(std::ops::Range<usize>),
    /// A large payload, not copied.
    Payload(Cow<'a, [u8]>),
}

impl<'a> Encoded<'a> {
    fn new(frames: &'a [Frame]) -> Self {
        let inline: usize = frames.iter().map(|f| f.len()).filter(|n| *n <= INLINE_PAYLOAD).sum();
        let mut e = Encoded {
            buf: Vec::with_capacity(frames.len() * codec::MAX_SERVER_HEADER + inline),
            parts: Vec::new(),
            len: 0,
            data_frames: 0,
            data_bytes: 0,
        };
        let mut run_start = 0;
        for frame in frames {
            let (opcode, payload) = codec::opcode_and_payload(frame);
            codec::write_header(&mut e.buf, opcode, payload.len());
            if matches!(frame, Frame::Text(_) | Frame::Binary(_)) {
                e.data_frames += 1;
                e.data_bytes += payload.len() as u64;
            }
            if payload.len() <= INLINE_PAYLOAD {
                e.buf.extend_from_slice(&payload);
            } else {
                e.parts.push(Part::Run(run_start..e.buf.len()));
                run_start = e.buf.len();
                e.len += payload.len();
                e.parts.push(Part::Payload(payload));
            }
        }
        if run_start < e.buf.len() {
            e.parts.push(Part::Run(run_start..e.buf.len()));
        }
        e.len += e.buf.len();
        e
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Run(r) => IoSlice::new(&self.buf[r.clone()]),
                Part::Payload(p) => IoSlice::new(p),
            })
            .collect()
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
        // Boxed per batch: an idle connection's task then holds only the wait
        // for the next batch, not the state of a write.
        let written = if closing {
            Box::pin(tokio::time::timeout(close_timeout, writer.write_all(&batch, skip))).await.unwrap_or(Ok(()))
        } else {
            Box::pin(writer.write_all(&batch, skip)).await
        };
        // Dropped, not cleared: an idle connection keeps no batch capacity.
        batch = Vec::new();
        if closing || written.is_err() {
            break;
        }
        outbox.written();
    }
    // Dropping the last reference to the write half sends FIN.
    outbox.detach();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_out_headers_beside_payloads() {
        let big = bytes::Bytes::from(vec![7u8; INLINE_PAYLOAD + 1]);
        let frames = [
            Frame::Text("hello".into()),
            Frame::Binary(big.clone()),
            Frame::Pong(bytes::Bytes::new()),
            Frame::Text("x".into()),
        ];
        let e = Encoded::new(&frames);
        let slices = e.slices();
        // A run up to the big payload's header, the big payload, the rest.
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[1].as_ptr(), big.as_ptr(), "large payloads are not copied");
        let flat: Vec<u8> = slices.iter().flat_map(|s| s.to_vec()).collect();
        let mut want = vec![0x81, 5];
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&[0x82, 126, 4, 1]);
        want.extend_from_slice(&big);
        want.extend_from_slice(&[0x8A, 0, 0x81, 1, b'x']);
        assert_eq!(flat, want);
        assert_eq!(e.len, want.len());
        assert_eq!((e.data_frames, e.data_bytes), (3, 5 + big.len() as u64 + 1));
    }
}
