//! The server's heartbeat on one connection: ping every interval, expect an
//! answer within the timeout. One timer, reset in place: no timer is created
//! per message in the session's loop.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

/// What the heartbeat asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a ping now.
    Ping,
    /// The last ping went unanswered: the peer is gone.
    TimedOut,
}

pub(crate) struct Heartbeat {
    timer: Pin<Box<Sleep>>,
    interval: Duration,
    timeout: Duration,
    /// When the unanswered ping was sent, if one is out.
    pinged_at: Option<Instant>,
}

impl Heartbeat {
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { timer: Box::pin(sleep_until(Instant::now() + interval)), interval, timeout, pinged_at: None }
    }

    /// Resolves when a ping is due or the answer is late. Cancel-safe.
    pub async fn tick(&mut self) -> Beat {
        self.timer.as_mut().await;
        if self.pinged_at.is_some() {
            return Beat::TimedOut;
        }
        let now = Instant::now();
        self.pinged_at = Some(now);
        self.timer.as_mut().reset(now + self.timeout);
        Beat::Ping
    }

    /// The peer answered: the next ping is due one interval after the last.
    pub fn pong(&mut self) {
        if let Some(at) = self.pinged_at.take() {
            self.timer.as_mut().reset(at + self.interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_then_times_out_unless_answered() {
        let mut hb = Heartbeat::new(Duration::from_secs(25), Duration::from_secs(20));
        let t0 = Instant::now();
        assert_eq!(hb.tick().await, Beat::Ping);
        assert_eq!(t0.elapsed(), Duration::from_secs(25));
        hb.pong();
        assert_eq!(hb.tick().await, Beat::Ping);
        assert_eq!(t0.elapsed(), Duration::from_secs(50), "cadence kept from the last ping");
        assert_eq!(hb.tick().await, Beat::TimedOut);
        assert_eq!(t0.elapsed(), Duration::from_secs(70));
    }
}
