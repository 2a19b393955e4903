//! Admission and rate limits: connection caps (total and per IP) checked
//! before the upgrade, and the per-connection token buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::RateLimit;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    ServerFull,
    TooManyFromIp,
}

impl Refusal {
    /// The HTTP status a refused upgrade or handshake gets.
    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::ServerFull => http::StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooManyFromIp => http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Machine code and human message of the refusal.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Refusal::ServerFull => ("server_full", "server at connection limit"),
            Refusal::TooManyFromIp => ("too_many_connections", "too many connections from this address"),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts live connections; a [`ConnectionPermit`] is held for each.
#[derive(Debug)]
pub(crate) struct ConnectionLimiter {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    counts: Mutex<Counts>,
}

/// Releases its slot when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max_total: Option<usize>, max_per_ip: Option<usize>) -> Arc<Self> {
        Arc::new(Self { max_total, max_per_ip, counts: Mutex::default() })
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.counts.lock().total
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut c = self.counts.lock();
        if self.max_total.is_some_and(|m| c.total >= m) {
            return Err(Refusal::ServerFull);
        }
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip.is_some_and(|m| from_ip >= m) {
            return Err(Refusal::TooManyFromIp);
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_default() += 1;
        Ok(ConnectionPermit { limiter: self.clone(), ip })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut c = self.limiter.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self { rate, burst, tokens: burst, last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }
}

/// The limiter's decision about one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Drop the message and tell the client.
    Reject,
    /// Sustained abuse: close the connection.
    Close,
}

/// Message and byte buckets of one connection. Owned by its session task,
/// so no locking.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    messages: TokenBucket,
    bytes: TokenBucket,
    violations: u32,
    max_violations: u32,
}

impl RateLimiter {
    pub fn new(limit: &RateLimit, now: Instant) -> Self {
        Self {
            messages: TokenBucket::new(limit.messages_per_sec, limit.message_burst, now),
            bytes: TokenBucket::new(limit.bytes_per_sec, limit.byte_burst, now),
            violations: 0,
            max_violations: limit.max_violations,
        }
    }

    pub fn check(&mut self, len: usize, now: Instant) -> Verdict {
        self.messages.refill(now);
        self.bytes.refill(now);
        let len = len as f64;
        if self.messages.tokens >= 1.0 && self.bytes.tokens >= len.min(self.bytes.burst) {
            self.messages.tokens -= 1.0;
            self.bytes.tokens -= len.min(self.bytes.burst);
            self.violations = 0;
            return Verdict::Allow;
        }
        self.violations += 1;
        if self.violations > self.max_violations { Verdict::Close } else { Verdict::Reject }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn permits_count_total_and_per_ip() {
        let l = ConnectionLimiter::new(Some(3), Some(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let p1 = l.try_acquire(a).unwrap();
        let _p2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::TooManyFromIp);
        let _p3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), Refusal::ServerFull);
        drop(p1);
        assert!(l.try_acquire(a).is_ok(), "released on drop");
    }

    #[test]
    fn bucket_rejects_then_closes_then_refills() {
        let limit = RateLimit {
            messages_per_sec: 10.0,
            message_burst: 2.0,
            bytes_per_sec: 1e9,
            byte_burst: 1e9,
            max_violations: 2,
        };
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&limit, t0);
        assert_eq!(r.check(1, t0), Verdict::Allow);
        assert_eq!(r.check(1, t0), Verdict::Allow);
        assert_eq!(r.check(1, t0), Verdict::Reject);
        assert_eq!(r.check(1, t0), Verdict::Reject);
        assert_eq!(r.check(1, t0), Verdict::Close);
        let later = t0 + Duration::from_millis(150);
        assert_eq!(r.check(1, later), Verdict::Allow, "refilled at 10/s");
    }

    #[test]
    fn bytes_are_limited_too() {
        let limit = RateLimit {
            messages_per_sec: 1e6,
            message_burst: 1e6,
            bytes_per_sec: 100.0,
            byte_burst: 100.0,
            max_violations: 5,
        };
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&limit, t0);
        assert_eq!(r.check(80, t0), Verdict::Allow);
        assert_eq!(r.check(80, t0), Verdict::Reject);
    }
}
