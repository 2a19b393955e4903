//! The inbound queue of one Engine.IO session: transports (polling POSTs,
//! the upgrade task) and its sockets hand it work.
//!
//! A `VecDeque` under a mutex rather than a tokio channel: an idle session
//! then holds no buffer at all, where a channel allocates a block of slots
//! up front — at 10,000 idle connections that difference is what matters.

use std::collections::VecDeque;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// Items queued beyond this make senders wait (POST backpressure).
const CAPACITY: usize = 64;

pub(crate) struct Inbox<T> {
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Inbox<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State { items: VecDeque::new(), closed: false }),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    /// Queue `item`, waiting while the queue is full. False once closed.
    pub async fn send(&self, item: T) -> bool {
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
                if st.items.len() < CAPACITY {
                    st.items.extend(item.take());
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
            st.items.push_back(item);
        }
        self.readable.notify_one();
    }

    /// The next item; `None` once closed and drained.
    pub async fn recv(&self) -> Option<T> {
        loop {
            {
                let mut st = self.state.lock();
                if let Some(item) = st.items.pop_front() {
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
        let inbox = Arc::new(Inbox::new());
        for i in 0..CAPACITY {
            assert!(inbox.send(i).await);
        }
        let i2 = inbox.clone();
        let blocked = tokio::spawn(async move { i2.send(999).await });
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
        assert!(!inbox.send(1).await);
    }
}
