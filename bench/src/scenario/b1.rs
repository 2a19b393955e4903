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
//!
//! B4 ([`super::b4`]) runs the same subscribers and publisher against two
//! nodes of a cluster.

use std::cell::{Cell, RefCell};
use std::ops::Range;
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

/// The generator's state of one fan-out run (B1, B4): one publisher, `subscribers` subscribers.
pub(super) struct State {
    subscribers: u32,
    /// Ring of per-message delivery counts, indexed by `n & mask`.
    counts: RefCell<Vec<u32>>,
    mask: u64,
    pub(super) sent: Cell<u64>,
    /// Every message below `done` reached every subscriber.
    done: Cell<u64>,
    /// First deliveries, every subscriber.
    pub(super) deliveries: Cell<u64>,
    /// Subscribers from this index on are B4's cross-node ones (on node B);
    /// 0 in B1, where every subscriber counts.
    cross_from: usize,
    /// First deliveries to subscribers from `cross_from` on.
    pub(super) cross_deliveries: Cell<u64>,
    /// Latency is sampled for messages in this range, at subscribers from `cross_from` on.
    lat_range: Cell<(u64, u64)>,
    latencies: RefCell<Vec<u64>>,
    checks: RefCell<Vec<SeqCheck>>,
    progress: tokio::sync::Notify,
    pub(super) errors: Errors,
    pub(super) stopping: Cell<bool>,
}

impl State {
    pub(super) fn new(subscribers: usize, window: usize, cross_from: usize) -> anyhow::Result<Rc<Self>> {
        let cap = window.max(1 << 16).next_power_of_two();
        Ok(Rc::new(State {
            subscribers: u32::try_from(subscribers)?,
            counts: RefCell::new(vec![0; cap]),
            mask: cap as u64 - 1,
            sent: Cell::new(0),
            done: Cell::new(0),
            deliveries: Cell::new(0),
            cross_from,
            cross_deliveries: Cell::new(0),
            lat_range: Cell::new((u64::MAX, u64::MAX)),
            latencies: RefCell::new(Vec::new()),
            checks: RefCell::new(vec![SeqCheck::new(); subscribers]),
            progress: tokio::sync::Notify::new(),
            errors: Errors::default(),
            stopping: Cell::new(false),
        }))
    }

    fn in_flight(&self) -> u64 {
        self.sent.get() - self.done.get()
    }

    /// The deliveries of every message sent so far to the subscribers in `subs`, judged now.
    pub(super) fn tally(&self, subs: Range<usize>) -> Tally {
        let sent = self.sent.get();
        let mut total = Tally::default();
        for check in &self.checks.borrow()[subs] {
            total.add(&check.tally(sent));
        }
        total
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
        if sub >= self.cross_from {
            self.cross_deliveries.set(self.cross_deliveries.get() + 1);
            let (lo, hi) = self.lat_range.get();
            if p.n >= lo && p.n < hi {
                self.latencies.borrow_mut().push(now.saturating_sub(p.t));
            }
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

/// Subscriber `i`: validate and count every delivery until the connection ends.
pub(super) async fn subscriber(i: usize, mut c: Client, st: Rc<State>) {
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
pub(super) enum Pace {
    /// Keep this many messages in flight.
    Window(u64),
    /// One message every period (skipping ticks while the ring is full).
    Rate(Duration),
}

/// What one measured window of a fan-out run counted.
pub(super) struct Window {
    pub deliveries: u64,
    pub cross_deliveries: u64,
    /// Server CPU: the sum over the processes measured.
    pub cpu: CpuSample,
    /// Each process's own CPU seconds, in the order given.
    pub each: Vec<Option<f64>>,
}

/// The one publisher of a fan-out run.
pub(super) struct Publisher {
    pub(super) client: Client,
    buf: Vec<u8>,
    pub(super) throttled: u64,
}

impl Publisher {
    pub(super) fn new(client: Client) -> Self {
        Self { client, buf: Vec::with_capacity(256), throttled: 0 }
    }

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
    pub(super) async fn pump(&mut self, st: &State, pace: Pace, until: Instant, stall: Duration) -> anyhow::Result<()> {
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
    pub(super) async fn drain(&mut self, st: &State, stall: Duration) -> anyhow::Result<()> {
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

    /// Publish with `pace` for `duration`, counting deliveries and the CPU
    /// time of the server processes `pids` over that window.
    pub(super) async fn measure(
        &mut self,
        st: &State,
        pace: Pace,
        duration: Duration,
        pids: &[u32],
        stall: Duration,
    ) -> anyhow::Result<Window> {
        let meter = CpuMeter::start_all(pids);
        let (d0, c0) = (st.deliveries.get(), st.cross_deliveries.get());
        self.pump(st, pace, Instant::now() + duration, stall).await?;
        let (cpu, each) = meter.stop_each();
        Ok(Window { deliveries: st.deliveries.get() - d0, cross_deliveries: st.cross_deliveries.get() - c0, cpu, each })
    }

    /// The latency phase: `rate` messages/s for `duration`, then wait until
    /// they are all delivered; returns the window and the latency (ns) of
    /// every delivery of its messages (at subscribers from `cross_from` on).
    pub(super) async fn measure_latency(
        &mut self,
        st: &State,
        rate: f64,
        duration: Duration,
        pids: &[u32],
        stall: Duration,
    ) -> anyhow::Result<(Window, Vec<u64>)> {
        let period = Duration::from_secs_f64(1.0 / rate);
        let lo = st.sent.get();
        st.lat_range.set((lo, u64::MAX));
        let window = self.measure(st, Pace::Rate(period), duration, pids, stall).await?;
        st.lat_range.set((lo, st.sent.get()));
        self.drain(st, stall).await?;
        Ok((window, std::mem::take(&mut *st.latencies.borrow_mut())))
    }
}

/// Run B1 against `target`.
pub async fn run(target: Target, params: &B1Params, progress: Progress<'_>) -> anyhow::Result<B1Result> {
    LocalSet::new().run_until(run_local(target, params, progress)).await
}

async fn run_local(target: Target, params: &B1Params, progress: Progress<'_>) -> anyhow::Result<B1Result> {
    let n = params.subscribers;
    let st = State::new(n, params.window, 0)?;
    progress(&format!("connecting {n} subscribers"));
    let sub_state = st.clone();
    let handles = spawn_clients(target, n, true, params.connect_timeout, progress, move |i, c| {
        subscriber(i, c, sub_state.clone())
    })
    .await?;
    let mut publisher = Publisher::new(Client::connect(target.addr, target.proto, true).await?);
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
    result.sent = st.sent.get();
    result.tally = st.tally(0..n);
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
    let pids = target.pid.as_slice();
    let Window { deliveries, cpu, .. } = publisher.measure(st, window, params.measure, pids, stall).await?;
    result.throughput = Some(Throughput {
        deliveries,
        deliveries_per_sec: deliveries as f64 / cpu.wall_s,
        cpu,
        server_us_per_delivery: per_unit_us(cpu.server_cpu_s, deliveries),
    });
    publisher.drain(st, stall).await?;

    if params.latency_rate > 0.0 && !params.latency_duration.is_zero() {
        progress(&format!("measuring latency at {} msg/s", params.latency_rate));
        let (Window { deliveries, cpu, .. }, mut lat) =
            publisher.measure_latency(st, params.latency_rate, params.latency_duration, pids, stall).await?;
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
