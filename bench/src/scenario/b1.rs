//! B1 fan-out: one room of `subscribers`, one publisher.
//!
//! **Throughput phase.** "As fast as the server accepts" is read as: the
//! publisher keeps a window of `window` messages in flight, where a message is
//! done once *every* subscriber has received it. A server that accepted
//! publishes faster than it delivers would otherwise buffer without bound
//! (socket.io and python-socketio do, roomcast closes slow consumers), and the
//! figure would measure queue growth instead of deliveries. With the window
//! the server is never idle for lack of input and never asked to buffer more
//! than `window × subscribers` frames. Deliveries/s are counted over the
//! measured window after a warm-up.
//!
//! **Latency phase.** A fixed offered rate (`latency_rate` messages/s) that
//! every peer sustains; latency is receive time minus the send time carried in
//! the payload, for every delivery.
//!
//! Every delivery is validated per subscriber (loss, duplicates, order).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::LocalSet;
use tokio::time::sleep_until;

use super::{CpuMeter, CpuSample, Errors, Progress, Target, abort_all, spawn_clients};
use crate::clock::now_ns;
use crate::payload::Payload;
use crate::proto::{Client, Incoming, encode_publish};
use crate::stats;
use crate::validate::{SeqCheck, Tally};

/// B1 parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B1Params {
    pub subscribers: usize,
    /// Messages in flight in the throughput phase.
    pub window: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Offered messages/s in the latency phase (0 skips it).
    pub latency_rate: f64,
    pub latency_duration: Duration,
    /// No progress for this long while messages are in flight ends the run.
    pub stall_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for B1Params {
    fn default() -> Self {
        Self {
            subscribers: 1000,
            // Below socketioxide's default per-socket buffer (128 packets): it
            // drops what does not fit, which would show up as loss.
            window: 100,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            // 5 000 deliveries/s with 1000 subscribers: about half of what
            // python-socketio, the slowest peer, can do on one core.
            latency_rate: 5.0,
            latency_duration: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(120),
        }
    }
}

/// Throughput phase figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub cpu: CpuSample,
    /// Server CPU per delivery in µs.
    pub server_us_per_delivery: Option<f64>,
}

/// Latency phase figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub offered_rate: f64,
    pub deliveries_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub cpu: CpuSample,
    pub server_us_per_delivery: Option<f64>,
    /// Ticks skipped because too many messages were still in flight.
    pub throttled: u64,
}

/// One B1 run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B1Result {
    pub subscribers: usize,
    pub sent: u64,
    pub throughput: Option<Throughput>,
    pub latency: Option<Latency>,
    pub tally: Tally,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Why the run ended early, if it did.
    pub failure: Option<String>,
}

struct State {
    subscribers: u32,
    /// Ring of per-message delivery counts, indexed by `n & mask`.
    counts: RefCell<Vec<u32>>,
    mask: u64,
    sent: Cell<u64>,
    /// Every message below `done` reached every subscriber.
    done: Cell<u64>,
    deliveries: Cell<u64>,
    lat_range: Cell<(u64, u64)>,
    latencies: RefCell<Vec<u64>>,
    checks: RefCell<Vec<SeqCheck>>,
    progress: tokio::sync::Notify,
    errors: Errors,
    stopping: Cell<bool>,
}

impl State {
    fn in_flight(&self) -> u64 {
        self.sent.get() - self.done.get()
    }

    fn on_msg(&self, sub: usize, p: Payload, now: u64) {
        if p.p != 0 {
            self.errors.record(format!("subscriber {sub}: payload from unknown publisher {}", p.p));
            return;
        }
        let arrival = self.checks.borrow_mut()[sub].record(p.n);
        if !arrival.is_new() || p.n >= self.sent.get() {
            return; // duplicates (and numbers never sent) are counted by the check
        }
        self.deliveries.set(self.deliveries.get() + 1);
        let (lo, hi) = self.lat_range.get();
        if p.n >= lo && p.n < hi {
            self.latencies.borrow_mut().push(now.saturating_sub(p.t));
        }
        let mut done = self.done.get();
        if p.n < done {
            return;
        }
        let mut counts = self.counts.borrow_mut();
        let slot = &mut counts[(p.n & self.mask) as usize];
        *slot += 1;
        if *slot == self.subscribers {
            let sent = self.sent.get();
            while done < sent && counts[(done & self.mask) as usize] == self.subscribers {
                counts[(done & self.mask) as usize] = 0;
                done += 1;
            }
            if done != self.done.get() {
                self.done.set(done);
                self.progress.notify_one();
            }
        }
    }
}

async fn subscriber(i: usize, mut c: Client, st: Rc<State>) {
    let mut now = now_ns();
    loop {
        let r = c.drain(|inc| match inc {
            Incoming::Msg(p) => st.on_msg(i, p, now),
            Incoming::Ack { .. } => st.errors.record(format!("subscriber {i}: unexpected ack")),
            Incoming::ServerError(e) | Incoming::Invalid(e) => st.errors.record(format!("subscriber {i}: {e}")),
            _ => {}
        });
        let r = match r {
            Ok(()) => c.conn.flush().await,
            Err(e) => Err(e),
        };
        let r = match r {
            Ok(()) => c.conn.read_more().await,
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            if !st.stopping.get() {
                st.errors.record(format!("subscriber {i}: {e}"));
            }
            return;
        }
        now = now_ns();
    }
}

/// How the publisher paces itself.
#[derive(Clone, Copy)]
enum Pace {
    /// Keep this many messages in flight.
    Window(u64),
    /// One message every period (skipping ticks while the ring is full).
    Rate(Duration),
}

struct Publisher {
    client: Client,
    buf: Vec<u8>,
    throttled: u64,
}

impl Publisher {
    fn queue(&mut self, st: &State) {
        let n = st.sent.get();
        self.buf.clear();
        encode_publish(&mut self.buf, self.client.proto, Payload { p: 0, n, t: now_ns() });
        self.client.conn.send_text(&self.buf);
        st.sent.set(n + 1);
    }

    fn handle_incoming(&mut self, st: &State) -> anyhow::Result<()> {
        self.client.drain(|inc| match inc {
            Incoming::ServerError(e) | Incoming::Invalid(e) => st.errors.record(format!("publisher: {e}")),
            Incoming::Msg(_) => st.errors.record("publisher received its own message"),
            _ => {}
        })?;
        Ok(())
    }

    async fn flush(&mut self, stall: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(stall, self.client.conn.flush()).await {
            Ok(r) => Ok(r?),
            Err(_) => anyhow::bail!("the server stopped reading the publisher for {stall:?}"),
        }
    }

    /// Publish until `until` with `pace`.
    async fn pump(&mut self, st: &State, pace: Pace, until: Instant, stall: Duration) -> anyhow::Result<()> {
        let cap = st.mask + 1;
        let mut next_tick = Instant::now();
        let mut last_done = (st.done.get(), Instant::now());
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if st.done.get() != last_done.0 {
                last_done = (st.done.get(), now);
            } else if st.in_flight() > 0 && now - last_done.1 > stall {
                anyhow::bail!("stalled: {} messages in flight, no progress for {stall:?}", st.in_flight());
            }
            let wake = match pace {
                Pace::Window(w) => {
                    while st.in_flight() < w {
                        self.queue(st);
                    }
                    until.min(last_done.1 + stall)
                }
                Pace::Rate(period) => {
                    if now >= next_tick {
                        if st.in_flight() < cap {
                            self.queue(st);
                        } else {
                            self.throttled += 1;
                        }
                        next_tick += period;
                    }
                    next_tick.min(until)
                }
            };
            self.flush(stall).await?;
            tokio::select! {
                biased;
                () = st.progress.notified() => {}
                r = self.client.conn.read_more() => {
                    r?;
                    self.handle_incoming(st)?;
                }
                () = sleep_until(wake.into()) => {}
            }
        }
    }

    /// Wait until every message sent so far is done.
    async fn drain(&mut self, st: &State, stall: Duration) -> anyhow::Result<()> {
        let mut last_done = (st.done.get(), Instant::now());
        while st.in_flight() > 0 {
            if st.done.get() != last_done.0 {
                last_done = (st.done.get(), Instant::now());
            }
            let deadline = last_done.1 + stall;
            if Instant::now() >= deadline {
                anyhow::bail!("stalled while draining: {} messages still in flight", st.in_flight());
            }
            tokio::select! {
                biased;
                () = st.progress.notified() => {}
                r = self.client.conn.read_more() => {
                    r?;
                    self.handle_incoming(st)?;
                    self.flush(stall).await?;
                }
                () = sleep_until(deadline.into()) => {}
            }
        }
        Ok(())
    }
}

/// Run B1 against `target`.
pub async fn run(target: Target, params: &B1Params, progress: Progress<'_>) -> anyhow::Result<B1Result> {
    LocalSet::new().run_until(run_local(target, params, progress)).await
}

async fn run_local(target: Target, params: &B1Params, progress: Progress<'_>) -> anyhow::Result<B1Result> {
    let cap = params.window.max(1 << 16).next_power_of_two();
    let n = params.subscribers;
    let st = Rc::new(State {
        subscribers: u32::try_from(n)?,
        counts: RefCell::new(vec![0; cap]),
        mask: cap as u64 - 1,
        sent: Cell::new(0),
        done: Cell::new(0),
        deliveries: Cell::new(0),
        lat_range: Cell::new((u64::MAX, u64::MAX)),
        latencies: RefCell::new(Vec::new()),
        checks: RefCell::new(vec![SeqCheck::new(); n]),
        progress: tokio::sync::Notify::new(),
        errors: Errors::default(),
        stopping: Cell::new(false),
    });
    progress(&format!("connecting {n} subscribers"));
    let sub_state = st.clone();
    let handles = spawn_clients(target, n, true, params.connect_timeout, progress, move |i, c| {
        subscriber(i, c, sub_state.clone())
    })
    .await?;
    let client = Client::connect(target.addr, target.proto, true).await?;
    let mut publisher = Publisher { client, buf: Vec::with_capacity(256), throttled: 0 };
    // Let the last joins settle (JSON peers announce them to every member).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut result = B1Result {
        subscribers: n,
        sent: 0,
        throughput: None,
        latency: None,
        tally: Tally::default(),
        errors: 0,
        error_samples: Vec::new(),
        failure: None,
    };
    let outcome = phases(target, params, &st, &mut publisher, &mut result, progress).await;
    if let Err(e) = outcome {
        result.failure = Some(e.to_string());
    }
    st.stopping.set(true);
    publisher.client.conn.close().await;
    abort_all(&handles);
    let sent = st.sent.get();
    result.sent = sent;
    for check in st.checks.borrow().iter() {
        result.tally.add(&check.tally(sent));
    }
    result.errors = st.errors.count();
    result.error_samples = st.errors.samples();
    Ok(result)
}

async fn phases(
    target: Target,
    params: &B1Params,
    st: &State,
    publisher: &mut Publisher,
    result: &mut B1Result,
    progress: Progress<'_>,
) -> anyhow::Result<()> {
    let stall = params.stall_timeout;
    let window = Pace::Window(params.window.max(1) as u64);
    progress("warm-up");
    publisher.pump(st, window, Instant::now() + params.warmup, stall).await?;

    progress("measuring throughput");
    let meter = CpuMeter::start(target.pid);
    let d0 = st.deliveries.get();
    publisher.pump(st, window, Instant::now() + params.measure, stall).await?;
    let cpu = meter.stop();
    let deliveries = st.deliveries.get() - d0;
    result.throughput = Some(Throughput {
        deliveries,
        deliveries_per_sec: deliveries as f64 / cpu.wall_s,
        cpu,
        server_us_per_delivery: per_unit_us(cpu.server_cpu_s, deliveries),
    });
    publisher.drain(st, stall).await?;

    if params.latency_rate > 0.0 && !params.latency_duration.is_zero() {
        progress(&format!("measuring latency at {} msg/s", params.latency_rate));
        let period = Duration::from_secs_f64(1.0 / params.latency_rate);
        let lo = st.sent.get();
        st.lat_range.set((lo, u64::MAX));
        let meter = CpuMeter::start(target.pid);
        let d0 = st.deliveries.get();
        publisher.pump(st, Pace::Rate(period), Instant::now() + params.latency_duration, stall).await?;
        let cpu = meter.stop();
        let deliveries = st.deliveries.get() - d0;
        st.lat_range.set((lo, st.sent.get()));
        publisher.drain(st, stall).await?;
        let mut lat = std::mem::take(&mut *st.latencies.borrow_mut());
        let max = lat.iter().copied().max().unwrap_or(0);
        let (p50, p99) = stats::p50_p99(&mut lat).unwrap_or((0, 0));
        result.latency = Some(Latency {
            offered_rate: params.latency_rate,
            deliveries_per_sec: deliveries as f64 / cpu.wall_s,
            p50_us: p50 as f64 / 1e3,
            p99_us: p99 as f64 / 1e3,
            max_us: max as f64 / 1e3,
            cpu,
            server_us_per_delivery: per_unit_us(cpu.server_cpu_s, deliveries),
            throttled: publisher.throttled,
        });
    }
    Ok(())
}

/// Server CPU µs per unit of work.
pub fn per_unit_us(cpu_s: Option<f64>, units: u64) -> Option<f64> {
    cpu_s.filter(|_| units > 0).map(|c| c * 1e6 / units as f64)
}
