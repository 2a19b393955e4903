//! The bounded outbound queue of one connection.
//!
//! Producers (broadcasts, direct emits) push without awaiting; the single
//! writer task takes everything queued at once and flushes it in one go. The
//! queue is bounded in frames and bytes so a client that stops reading costs
//! a fixed amount of memory: volatile frames are dropped when it is full, any
//! other frame makes the push report [`Pushed::Overflow`] and the owner closes
//! the connection.
//!
//! With [`Overflow::Drop`] a full queue drops any frame instead (the
//! connection stays, and misses what did not fit).
//!
//! What is queued or being written is the connection's buffered amount,
//! which the application reads for backpressure; [`Outbox::drained`] waits
//! until it is back to zero.
//!
//! A WebSocket attaches its writer ([`Outbox::attach`]): then a single
//! recipient's frames ([`Outbox::push_now`]) are written by the pushing task
//! itself when nothing is queued or being written, which keeps order and
//! spares the writer task a wake-up per reply.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::Frame;
use super::websocket::WsWriter;

/// What a full queue does with a frame that is not volatile (volatile
/// frames are always dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Close the connection as a slow consumer (4008 / reason "slow
    /// consumer"), so the client knows and reconnects (and, with connection
    /// state recovery, gets what it missed).
    #[default]
    Close,
    /// Drop the frame and keep the connection (the client silently misses it).
    Drop,
}

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// A volatile frame was dropped because the queue is full.
    Dropped,
    /// The queue is full and the frame was not volatile: close the connection.
    Overflow,
    /// The connection is closing; the frame was discarded.
    Closed,
}

#[derive(Debug)]
struct State {
    /// Emptied by taking the vector, so an idle connection holds no capacity.
    frames: Vec<Frame>,
    bytes: usize,
    /// Bytes of the batch the writer took and has not reported written.
    inflight: usize,
    closing: bool,
    /// The WebSocket writer, for direct writes.
    wire: Option<Arc<WsWriter>>,
    /// The writer task holds a batch it has not finished writing.
    busy: bool,
    /// Bytes of the queue's encoding already written by a direct write that
    /// the socket only partly took.
    ahead: usize,
}

/// See the module docs.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    /// Wakes [`Outbox::drained`] waiters once nothing is buffered.
    drain: Notify,
    max_frames: usize,
    max_bytes: usize,
    overflow: Overflow,
}

impl Outbox {
    /// A queue holding at most `max_frames` frames and `max_bytes` bytes.
    pub fn new(max_frames: usize, max_bytes: usize, overflow: Overflow) -> Self {
        Self {
            state: Mutex::new(State {
                frames: Vec::new(),
                bytes: 0,
                inflight: 0,
                closing: false,
                wire: None,
                busy: false,
                ahead: 0,
            }),
            notify: Notify::new(),
            drain: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
            overflow,
        }
    }

    /// Bytes queued or being written: the connection's buffered amount.
    pub fn buffered(&self) -> usize {
        let st = self.state.lock();
        st.bytes + st.inflight
    }

    /// Wait until nothing is buffered (at once if nothing is), or the queue
    /// has closed.
    pub async fn drained(&self) {
        loop {
            let notified = self.drain.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.state.lock();
                if st.bytes + st.inflight == 0 || st.closing {
                    return;
                }
            }
            notified.await;
        }
    }

    /// The writer put the batch it took on the wire (or handed it to a
    /// polling response): wake drain waiters when nothing else is queued.
    pub fn written(&self) {
        let empty = {
            let mut st = self.state.lock();
            st.inflight = 0;
            st.frames.is_empty()
        };
        if empty {
            self.drain.notify_waiters();
        }
    }

    /// Queue a data frame within the limits.
    pub fn push(&self, frame: Frame, volatile: bool) -> Pushed {
        self.push_all(std::slice::from_ref(&frame), volatile)
    }

    /// Queue frames that belong together (a packet and its binary
    /// attachments): all of them or none.
    pub fn push_all(&self, frames: &[Frame], volatile: bool) -> Pushed {
        self.offer(frames, volatile, false)
    }

    /// Like [`Outbox::push_all`], but written at once by the calling task
    /// when a WebSocket is attached and idle. For frames meant for this one
    /// connection; a broadcast queues, so each recipient's writer batches.
    pub fn push_now(&self, frames: &[Frame], volatile: bool) -> Pushed {
        self.offer(frames, volatile, true)
    }

    fn offer(&self, frames: &[Frame], volatile: bool, direct: bool) -> Pushed {
        let len: usize = frames.iter().map(Frame::len).sum();
        let was_empty;
        {
            let mut st = self.state.lock();
            if st.closing {
                return Pushed::Closed;
            }
            if direct
                && st.frames.is_empty()
                && !st.busy
                && let Some(wire) = &st.wire
            {
                // Written under the lock, so no other frame can overtake.
                match wire.try_write(frames) {
                    Ok(None) => return Pushed::Queued,
                    Ok(Some(written)) => st.ahead = written,
                    // The writer task meets the error too and ends the connection.
                    Err(_) => {}
                }
            }
            // An empty queue takes one packet of any size so a single large
            // message below max_payload is never refused outright.
            let full = !st.frames.is_empty()
                && (st.frames.len() + frames.len() > self.max_frames || st.bytes + len > self.max_bytes);
            if full {
                return if volatile || self.overflow == Overflow::Drop { Pushed::Dropped } else { Pushed::Overflow };
            }
            was_empty = st.frames.is_empty();
            if st.frames.capacity() == 0 {
                // The writer takes the whole vector each time: start it at a
                // size that holds a burst without regrowing.
                st.frames.reserve(8);
            }
            st.bytes += len;
            st.frames.extend(frames.iter().cloned());
        }
        // The writer drains everything it finds, so it only needs waking when
        // the queue stops being empty.
        if was_empty {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Let [`Outbox::push_now`] write to this WebSocket.
    pub(crate) fn attach(&self, wire: Arc<WsWriter>) {
        self.state.lock().wire = Some(wire);
    }

    /// The writer is done: drop the outbox's reference to the socket.
    pub(crate) fn detach(&self) {
        self.state.lock().wire = None;
    }

    /// Queue a control frame (ping), bypassing the limits.
    pub fn push_control(&self, frame: Frame) -> Pushed {
        {
            let mut st = self.state.lock();
            if st.closing {
                return Pushed::Closed;
            }
            st.bytes += frame.len();
            st.frames.push(frame);
        }
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queue a close frame as the last frame. With `discard`, frames still
    /// queued are dropped first (the peer is not reading them anyway).
    /// Returns false if the queue was already closing.
    pub fn close(&self, code: u16, reason: impl Into<std::borrow::Cow<'static, str>>, discard: bool) -> bool {
        {
            let mut st = self.state.lock();
            if st.closing {
                return false;
            }
            st.closing = true;
            if discard {
                st.frames.clear();
                st.bytes = 0;
            }
            st.frames.push(Frame::Close { code, reason: reason.into() });
        }
        self.notify.notify_one();
        self.drain.notify_waiters();
        true
    }

    /// Wait until frames are queued and move all of them into `out`.
    /// Returns how many bytes of their encoding a direct write already put
    /// on the wire, or None once the queue is closing and empty: the writer
    /// is done.
    pub async fn next_batch(&self, out: &mut Vec<Frame>) -> Option<usize> {
        loop {
            {
                let mut st = self.state.lock();
                if !st.frames.is_empty() {
                    if out.is_empty() {
                        *out = std::mem::take(&mut st.frames);
                    } else {
                        out.append(&mut st.frames);
                    }
                    st.inflight += std::mem::take(&mut st.bytes);
                    st.busy = true;
                    return Some(std::mem::take(&mut st.ahead));
                }
                st.busy = false;
                if st.closing {
                    return None;
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(s.to_owned().into())
    }

    #[tokio::test]
    async fn bounded_by_frames_and_bytes() {
        let q = Outbox::new(2, 10, Overflow::Close);
        assert_eq!(q.push(text("aaaa"), false), Pushed::Queued);
        assert_eq!(q.push(text("bbbb"), false), Pushed::Queued);
        assert_eq!(q.push(text("c"), true), Pushed::Dropped);
        assert_eq!(q.push(text("c"), false), Pushed::Overflow);
        let mut out = Vec::new();
        assert!(q.next_batch(&mut out).await.is_some());
        assert_eq!(out.len(), 2);
        // Bytes limit: 8 + 4 > 10.
        assert_eq!(q.push(text("12345678"), false), Pushed::Queued);
        assert_eq!(q.push(text("1234"), false), Pushed::Overflow);
        // A single oversize frame goes into an empty queue.
        let q = Outbox::new(2, 10, Overflow::Close);
        assert_eq!(q.push(text("0123456789abcdef"), false), Pushed::Queued);
    }

    #[tokio::test]
    async fn drop_policy_keeps_the_connection() {
        let q = Outbox::new(1, 100, Overflow::Drop);
        assert_eq!(q.push(text("a"), false), Pushed::Queued);
        assert_eq!(q.push(text("b"), false), Pushed::Dropped);
    }

    #[tokio::test]
    async fn buffered_counts_until_written_and_drained_waits_for_it() {
        let q = std::sync::Arc::new(Outbox::new(8, 1000, Overflow::Close));
        q.drained().await; // nothing buffered: at once
        q.push(text("abc"), false);
        q.push(text("de"), false);
        assert_eq!(q.buffered(), 5);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.drained().await }
        });
        let mut out = Vec::new();
        q.next_batch(&mut out).await;
        assert_eq!(q.buffered(), 5, "taken by the writer but not written yet");
        q.push(text("f"), false);
        q.written();
        assert_eq!(q.buffered(), 1);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one frame still queued");
        out.clear();
        q.next_batch(&mut out).await;
        q.written();
        assert_eq!(q.buffered(), 0);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn close_discards_and_ends() {
        let q = Outbox::new(8, 1000, Overflow::Close);
        q.push(text("a"), false);
        assert!(q.close(4008, "slow", true));
        assert!(!q.close(1000, "again", true));
        assert_eq!(q.push(text("b"), false), Pushed::Closed);
        let mut out = Vec::new();
        assert!(q.next_batch(&mut out).await.is_some());
        assert_eq!(out, vec![Frame::Close { code: 4008, reason: "slow".into() }]);
        out.clear();
        assert!(q.next_batch(&mut out).await.is_none());
    }

    #[tokio::test]
    async fn graceful_close_keeps_queued_frames() {
        let q = Outbox::new(8, 1000, Overflow::Close);
        q.push(text("a"), false);
        q.close(1001, "bye", false);
        let mut out = Vec::new();
        q.next_batch(&mut out).await;
        assert_eq!(out.len(), 2);
    }

    #[tokio::test]
    async fn wakes_the_writer() {
        let q = std::sync::Arc::new(Outbox::new(8, 1000, Overflow::Close));
        let q2 = q.clone();
        let t = tokio::spawn(async move {
            let mut out = Vec::new();
            q2.next_batch(&mut out).await;
            out.len()
        });
        tokio::task::yield_now().await;
        q.push(text("x"), false);
        assert_eq!(t.await.unwrap(), 1);
    }
}
