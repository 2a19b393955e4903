//! The bounded outbound queue of one connection.
//!
//! Producers (broadcasts, direct emits) push without awaiting; the single
//! writer task takes everything queued at once and flushes it in one go. The
//! queue is bounded in frames and bytes so a client that stops reading costs
//! a fixed amount of memory: volatile frames are dropped when it is full, any
//! other frame makes the push report [`Pushed::Overflow`] and the owner closes
//! the connection.
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
    max_frames: usize,
    max_bytes: usize,
}

impl Outbox {
    /// A queue holding at most `max_frames` frames and `max_bytes` bytes.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                frames: Vec::new(),
                bytes: 0,
                closing: false,
                wire: None,
                busy: false,
                ahead: 0,
            }),
            notify: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
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
                return if volatile { Pushed::Dropped } else { Pushed::Overflow };
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
                    st.bytes = 0;
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
        let q = Outbox::new(2, 10);
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
        let q = Outbox::new(2, 10);
        assert_eq!(q.push(text("0123456789abcdef"), false), Pushed::Queued);
    }

    #[tokio::test]
    async fn close_discards_and_ends() {
        let q = Outbox::new(8, 1000);
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
        let q = Outbox::new(8, 1000);
        q.push(text("a"), false);
        q.close(1001, "bye", false);
        let mut out = Vec::new();
        q.next_batch(&mut out).await;
        assert_eq!(out.len(), 2);
    }

    #[tokio::test]
    async fn wakes_the_writer() {
        let q = std::sync::Arc::new(Outbox::new(8, 1000));
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
