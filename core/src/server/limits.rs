//! Admission and rate limits: connection caps (total and per IP) and the
//! per-IP rate of new connections, checked before the upgrade, and the
//! per-connection token buckets on inbound messages.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::{ConnectionRate, RateLimit};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    ServerFull,
    TooManyFromIp,
    TooFastFromIp,
}

impl Refusal {
    /// The HTTP status a refused upgrade or handshake gets.
    pub fn status(self) -> http::StatusCode {
        match self {
            Refusal::ServerFull => http::StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooManyFromIp | Refusal::TooFastFromIp => http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Machine code and human message of the refusal.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Refusal::ServerFull => ("server_full", "server at connection limit"),
            Refusal::TooManyFromIp => ("too_many_connections", "too many connections from this address"),
            Refusal::TooFastFromIp => ("connection_rate", "too many new connections from this address; retry later"),
        }
    }
}

/// Rate buckets kept before full ones (as good as absent) are dropped.
const PRUNE_AT: usize = 4096;

#[derive(Debug)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// New-connection buckets of the addresses seen lately.
    rates: HashMap<IpAddr, TokenBucket>,
    prune_at: usize,
}

/// Counts live connections; a [`ConnectionPermit`] is held for each.
#[derive(Debug)]
pub(crate) struct ConnectionLimiter {
    max_total: Option<usize>,
    max_per_ip: Option<usize>,
    rate_per_ip: Option<ConnectionRate>,
    counts: Mutex<Counts>,
}

/// Releases its slot when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max_total: Option<usize>, max_per_ip: Option<usize>, rate_per_ip: Option<ConnectionRate>) -> Arc<Self> {
        let counts = Counts { total: 0, per_ip: HashMap::new(), rates: HashMap::new(), prune_at: PRUNE_AT };
        Arc::new(Self { max_total, max_per_ip, rate_per_ip, counts: Mutex::new(counts) })
    }

    /// Connections open now.
    pub fn live(&self) -> usize {
        self.counts.lock().total
    }

    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        self.try_acquire_at(ip, Instant::now())
    }

    fn try_acquire_at(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<ConnectionPermit, Refusal> {
        let mut guard = self.counts.lock();
        let c = &mut *guard;
        if self.max_total.is_some_and(|m| c.total >= m) {
            return Err(Refusal::ServerFull);
        }
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max_per_ip.is_some_and(|m| from_ip >= m) {
            return Err(Refusal::TooManyFromIp);
        }
        if let Some(rate) = self.rate_per_ip {
            if c.rates.len() >= c.prune_at {
                c.rates.retain(|_, b| {
                    b.refill(now);
                    b.tokens < b.burst
                });
                c.prune_at = (c.rates.len() * 2).max(PRUNE_AT);
            }
            let burst = f64::from(rate.burst);
            let bucket = c.rates.entry(ip).or_insert_with(|| TokenBucket::new(rate.per_sec, burst, now));
            bucket.refill(now);
            if bucket.tokens < 1.0 {
                return Err(Refusal::TooFastFromIp);
            }
            bucket.tokens -= 1.0;
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
        let l = ConnectionLimiter::new(Some(3), Some(2), None);
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
    fn new_connections_per_ip_are_rate_limited_and_refill() {
        let l = ConnectionLimiter::new(None, None, Some(ConnectionRate::new(2.0).burst(3)));
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        let held: Vec<_> = (0..3).map(|_| l.try_acquire_at(a, t0).unwrap()).collect();
        assert_eq!(l.try_acquire_at(a, t0).unwrap_err(), Refusal::TooFastFromIp);
        assert!(l.try_acquire_at(b, t0).is_ok(), "per address");
        drop(held);
        assert_eq!(l.try_acquire_at(a, t0).unwrap_err(), Refusal::TooFastFromIp, "closing does not give tokens back");
        assert!(l.try_acquire_at(a, t0 + Duration::from_millis(500)).is_ok(), "refilled at 2/s");
        assert!(l.try_acquire_at(a, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let l = ConnectionLimiter::new(None, None, Some(ConnectionRate::new(10.0)));
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            drop(l.try_acquire_at(IpAddr::from(i.to_be_bytes()), t0).unwrap());
        }
        assert_eq!(l.counts.lock().rates.len(), PRUNE_AT);
        let later = t0 + Duration::from_secs(1);
        drop(l.try_acquire_at("10.9.9.9".parse().unwrap(), later).unwrap());
        assert_eq!(l.counts.lock().rates.len(), 1, "full buckets dropped, only the new address kept");
    }

    #[test]
    fn default_burst_is_twice_the_rate() {
        assert_eq!(ConnectionRate::new(5.0).burst, 10);
        assert_eq!(ConnectionRate::new(0.1).burst, 1);
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
