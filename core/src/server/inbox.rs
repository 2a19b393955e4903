//! The inbound queue of one Engine.IO session: transports (polling POSTs,
//! the upgrade task) and its sockets hand it work.
//!
//! A `VecDeque` under a mutex rather than a tokio channel: an idle session
//! then holds no buffer at all, where a channel allocates a block of slots
//! up front — at 10,000 idle connections that difference is what matters.
//!
//! The queue is bounded in items and in bytes: what a client posted and the
//! session has not handled yet is part of the connection's memory, so a
//! client posting faster than its session works waits instead of growing it.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Items queued beyond this make senders wait (POST backpressure).
const CAPACITY: usize = 64;

pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
    max_bytes: usize,
}

struct State<T> {
    /// Each item with the bytes it counts for.
    items: VecDeque<(T, usize)>,
    bytes: usize,
    closed: bool,
}

impl<T> Inbox<T> {
    /// A queue holding at most `max_bytes` of items (an empty queue takes
    /// one item of any size).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State { items: VecDeque::new(), bytes: 0, closed: false }),
            readable: Notify::new(),
            writable: Notify::new(),
            max_bytes,
        }
    }

    /// Queue `item`, which holds `bytes`, waiting while the queue is full.
    /// False once closed. Each `recv` wakes one waiting sender: made for one
    /// sender at a time (a session takes one POST at a time); several would
    /// all get in, though not as soon as room frees up.
    pub async fn send(&self, item: T, bytes: usize) -> bool {
        let mut item = Some(item);
        loop {
            let writable = self.writable.notified();
            tokio::pin!(writable);
            writable.as_mut().enable();
            {
                let mut st = self.state.lock();
                if st.closed {
                    return false;
                }
                let fits = st.items.is_empty() || st.bytes + bytes <= self.max_bytes;
                if st.items.len() < CAPACITY && fits {
                    st.bytes += bytes;
                    st.items.extend(item.take().map(|i| (i, bytes)));
                    drop(st);
                    self.readable.notify_one();
                    return true;
                }
            }
            writable.await;
        }
    }

    /// Queue `item` now, beyond the capacity (notices that must not wait).
    pub fn push(&self, item: T) {
        {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.items.push_back((item, 0));
        }
        self.readable.notify_one();
    }

    /// The next item; `None` once closed and drained.
    pub async fn recv(&self) -> Option<T> {
        loop {
            {
                let mut st = self.state.lock();
                if let Some((item, bytes)) = st.items.pop_front() {
                    st.bytes -= bytes;
                    drop(st);
                    self.writable.notify_one();
                    return Some(item);
                }
                if st.closed {
                    return None;
                }
            }
            self.readable.notified().await;
        }
    }

    /// Refuse further items and wake everyone.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.readable.notify_one();
        self.writable.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn order_backpressure_and_close() {
        let inbox = Arc::new(Inbox::new(usize::MAX));
        for i in 0..CAPACITY {
            assert!(inbox.send(i, 1).await);
        }
        let i2 = inbox.clone();
        let blocked = tokio::spawn(async move { i2.send(999, 1).await });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "full: the sender waits");
        inbox.push(1000); // notices go past the capacity
        assert_eq!(inbox.recv().await, Some(0));
        assert_eq!(inbox.recv().await, Some(1));
        assert!(blocked.await.unwrap(), "room again: the sender got in");
        let mut rest = Vec::new();
        for _ in 0..CAPACITY {
            rest.push(inbox.recv().await.unwrap());
        }
        assert_eq!(&rest[CAPACITY - 2..], &[1000, 999]);
        inbox.close();
        assert_eq!(inbox.recv().await, None);
        assert!(!inbox.send(1, 1).await);
    }

    #[tokio::test]
    async fn bounded_in_bytes() {
        let inbox = Arc::new(Inbox::new(100));
        assert!(inbox.send(1, 500).await, "an empty queue takes one item of any size");
        let i2 = inbox.clone();
        let blocked = tokio::spawn(async move { i2.send(2, 60).await });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "500 bytes queued: the sender waits");
        assert_eq!(inbox.recv().await, Some(1));
        assert!(blocked.await.unwrap());
        assert!(inbox.send(3, 40).await, "60 + 40 fit in 100");
        let i2 = inbox.clone();
        let blocked = tokio::spawn(async move { i2.send(4, 1).await });
        tokio::task::yield_now().await;
        assert!(!blocked.is_finished(), "full to the byte");
        assert_eq!(inbox.recv().await, Some(2));
        assert!(blocked.await.unwrap());
        assert_eq!((inbox.recv().await, inbox.recv().await), (Some(3), Some(4)));
        assert_eq!(inbox.state.lock().bytes, 0);
    }
}
