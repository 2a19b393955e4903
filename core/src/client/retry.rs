//! At-least-once emits, as socket.io-client's `retries` and `ackTimeout`:
//! every emit asks for an ack; emits go out one at a time, in order; one
//! not acked within the ack timeout is sent again (with the same ack id),
//! up to `retries` more times, then fails. An emit whose connection drops
//! is sent again on the next one. The server recognises a repeated ack id
//! of the same client key and answers it without running the handler
//! again, so each event is handled once (see `hub::dedupe`).
//!
//! Both clients (Socket.IO and JSON protocol) keep one [`RetryQueue`]
//! behind their lock; `M` is their frame type, `R` what an ack carries.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// How often and how long an at-least-once emit is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Sends after the first (socket.io-client's `retries`).
    pub retries: u32,
    /// How long each send waits for its ack (socket.io-client's `ackTimeout`).
    pub ack_timeout: Duration,
}

struct Pending<M, R> {
    id: u64,
    frames: Vec<M>,
    /// Sends so far.
    tries: u32,
    /// The connection it is out on, and when its ack is due.
    out: Option<(u64, Instant)>,
    /// The caller waiting for the ack (`emit_with_ack`), if any.
    tx: Option<oneshot::Sender<Result<R>>>,
}

/// See the module docs. A client without retries keeps an empty one (the
/// default): nothing is ever due, and no ack is ever its.
pub(crate) struct RetryQueue<M, R> {
    policy: Retry,
    items: VecDeque<Pending<M, R>>,
}

impl<M, R> Default for RetryQueue<M, R> {
    fn default() -> Self {
        Self { policy: Retry { retries: 0, ack_timeout: Duration::ZERO }, items: VecDeque::new() }
    }
}

impl<M: Clone, R> RetryQueue<M, R> {
    pub fn new(policy: Retry) -> Self {
        Self { policy, items: VecDeque::new() }
    }

    /// The same policy, nothing queued (a client's run ended).
    pub fn emptied(&self) -> Self {
        Self::new(self.policy)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Queue the frames of emit `id`; `tx` (if any) gets its ack or why it failed.
    pub fn push(&mut self, id: u64, frames: Vec<M>, tx: Option<oneshot::Sender<Result<R>>>) {
        self.items.push_back(Pending { id, frames, tries: 0, out: None, tx });
    }

    /// The frames to write now on connection `epoch`: the first emit's,
    /// unless it is already out there and waiting for its ack.
    pub fn due(&mut self, epoch: u64) -> Option<Vec<M>> {
        let head = self.items.front_mut()?;
        if head.out.is_some_and(|(e, _)| e == epoch) {
            return None;
        }
        head.tries += 1;
        head.out = Some((epoch, Instant::now() + self.policy.ack_timeout));
        Some(head.frames.clone())
    }

    /// When the emit that is out stops waiting for its ack.
    pub fn deadline(&self) -> Option<Instant> {
        self.items.front().and_then(|p| p.out.map(|(_, at)| at))
    }

    /// The ack timed out (now is past [`RetryQueue::deadline`]): send it
    /// again at the next [`RetryQueue::due`], or give up after `retries`.
    pub fn expire(&mut self) {
        let Some(head) = self.items.front_mut() else { return };
        if head.out.is_none_or(|(_, at)| at > Instant::now()) {
            return;
        }
        if head.tries > self.policy.retries {
            let gone = self.items.pop_front().expect("a head");
            tracing::debug!(id = gone.id, tries = gone.tries, "emit not acked; giving up");
            if let Some(tx) = gone.tx {
                let why = format!("no ack after {} tries of {:?}", gone.tries, self.policy.ack_timeout);
                let _ = tx.send(Err(Error::new(ErrorKind::Timeout, why)));
            }
        } else {
            head.out = None;
        }
    }

    /// The ack of emit `id`: true if it answered the emit that is out (a
    /// late ack of an emit given up on is ignored, as socket.io-client does).
    pub fn settle(&mut self, id: u64, result: Result<R>) -> bool {
        if self.items.front().is_none_or(|p| p.id != id) {
            return false;
        }
        if let Some(tx) = self.items.pop_front().and_then(|p| p.tx) {
            let _ = tx.send(result);
        }
        true
    }

    /// The caller stopped waiting: withdraw emit `id`.
    pub fn cancel(&mut self, id: u64) {
        self.items.retain(|p| p.id != id);
    }
}

/// Sleep until `at`, or forever without one (a `select!` branch that only
/// fires when an ack is due).
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A client's key for the server's deduplication: random, so that no other
/// client can guess it and be answered with this client's acks.
pub(crate) fn client_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(retries: u32) -> RetryQueue<&'static str, u32> {
        RetryQueue::new(Retry { retries, ack_timeout: Duration::from_millis(100) })
    }

    #[tokio::test(start_paused = true)]
    async fn one_at_a_time_in_order_until_acked() {
        let mut q = queue(3);
        let (tx, mut rx) = oneshot::channel();
        q.push(1, vec!["a"], Some(tx));
        q.push(2, vec!["b"], None);
        assert_eq!(q.due(1), Some(vec!["a"]));
        assert_eq!(q.due(1), None, "out and waiting");
        assert!(!q.settle(2, Ok(0)), "only the emit that is out is answered");
        assert!(q.settle(1, Ok(7)));
        assert_eq!(rx.try_recv().unwrap().unwrap(), 7);
        assert_eq!(q.due(1), Some(vec!["b"]));
        assert!(q.settle(2, Ok(0)) && q.len() == 0 && q.due(1).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn resent_after_the_timeout_and_on_a_new_connection_then_given_up() {
        let mut q = queue(2);
        let (tx, mut rx) = oneshot::channel();
        q.push(1, vec!["a"], Some(tx));
        assert!(q.due(1).is_some());
        q.expire();
        assert!(q.due(1).is_none(), "not before its deadline");
        tokio::time::advance(Duration::from_millis(100)).await;
        q.expire();
        assert!(q.due(1).is_some(), "second try");
        assert!(q.due(2).is_some(), "the connection changed: third try");
        tokio::time::advance(Duration::from_millis(100)).await;
        q.expire();
        assert_eq!(rx.try_recv().unwrap().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(q.len(), 0);
        assert!(!q.settle(1, Ok(1)), "a late ack is ignored");
    }

    #[test]
    fn cancel_withdraws_and_keys_differ() {
        let mut q = queue(0);
        q.push(1, vec!["a"], None);
        q.cancel(1);
        assert!(q.len() == 0 && q.due(1).is_none());
        assert_ne!(client_key(), client_key());
        assert_eq!(client_key().len(), 32);
    }
}
