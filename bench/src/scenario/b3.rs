//! B3 ack round trips: `clients` clients, each in a loop of `echo` with an
//! ack (Socket.IO `emitWithAck`, JSON protocol `event` with an `id`), one
//! request outstanding per client. Every ack is checked: same id, same data.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::LocalSet;

use super::b1::per_unit_us;
use super::{CpuMeter, CpuSample, Errors, Progress, Target, abort_all, spawn_clients};
use crate::clock::now_ns;
use crate::payload::Payload;
use crate::proto::{Client, Incoming, encode_echo};
use crate::stats;

/// B3 parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B3Params {
    pub clients: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub connect_timeout: Duration,
}

impl Default for B3Params {
    fn default() -> Self {
        Self {
            clients: 100,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(60),
        }
    }
}

/// One B3 run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B3Result {
    pub clients: usize,
    pub round_trips: u64,
    pub round_trips_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu: CpuSample,
    pub server_us_per_round_trip: Option<f64>,
    /// Acks with the wrong id or data, and connection errors.
    pub errors: u64,
    pub error_samples: Vec<String>,
}

const WAIT: u8 = 0;
const WARMUP: u8 = 1;
const MEASURE: u8 = 2;
const STOP: u8 = 3;

struct State {
    phase: watch::Receiver<u8>,
    round_trips: Cell<u64>,
    latencies: RefCell<Vec<u64>>,
    errors: Errors,
}

async fn client_loop(i: usize, mut c: Client, st: Rc<State>) {
    let mut phase = st.phase.clone();
    if phase.wait_for(|&p| p >= WARMUP).await.is_err() {
        return;
    }
    let mut buf = Vec::with_capacity(256);
    let mut k: u64 = 0;
    let p = u32::try_from(i).unwrap_or(u32::MAX);
    loop {
        if *phase.borrow() >= STOP {
            return;
        }
        let sent = Payload { p, n: k, t: now_ns() };
        buf.clear();
        encode_echo(&mut buf, c.proto, k, sent);
        c.conn.send_text(&buf);
        let mut reply = None;
        while reply.is_none() {
            let r = match c.conn.flush().await {
                Ok(()) => c.conn.read_more().await,
                Err(e) => Err(e),
            };
            let r = r.and_then(|()| {
                c.drain(|inc| match inc {
                    Incoming::Ack { id, data } => reply = Some((id, data)),
                    Incoming::ServerError(e) | Incoming::Invalid(e) => st.errors.record(format!("client {i}: {e}")),
                    _ => {}
                })
            });
            if let Err(e) = r {
                if *phase.borrow() < STOP {
                    st.errors.record(format!("client {i}: {e}"));
                }
                return;
            }
        }
        let now = now_ns();
        if reply != Some((k, Some(sent))) {
            st.errors.record(format!("client {i}: expected ack {k} with {sent:?}, got {reply:?}"));
        }
        if *phase.borrow() == MEASURE {
            st.round_trips.set(st.round_trips.get() + 1);
            st.latencies.borrow_mut().push(now.saturating_sub(sent.t));
        }
        k += 1;
    }
}

/// Run B3 against `target`.
pub async fn run(target: Target, params: &B3Params, progress: Progress<'_>) -> anyhow::Result<B3Result> {
    LocalSet::new().run_until(run_local(target, params, progress)).await
}

async fn run_local(target: Target, params: &B3Params, progress: Progress<'_>) -> anyhow::Result<B3Result> {
    let (phase_tx, phase_rx) = watch::channel(WAIT);
    let st = Rc::new(State {
        phase: phase_rx,
        round_trips: Cell::new(0),
        latencies: RefCell::new(Vec::new()),
        errors: Errors::default(),
    });
    progress(&format!("connecting {} clients", params.clients));
    let client_state = st.clone();
    let handles = spawn_clients(target, params.clients, false, params.connect_timeout, progress, move |i, c| {
        client_loop(i, c, client_state.clone())
    })
    .await?;
    progress("warm-up");
    phase_tx.send_replace(WARMUP);
    tokio::time::sleep(params.warmup).await;
    progress("measuring round trips");
    let meter = CpuMeter::start(target.pid);
    phase_tx.send_replace(MEASURE);
    let t_end = Instant::now() + params.measure;
    tokio::time::sleep_until(t_end.into()).await;
    phase_tx.send_replace(STOP);
    let cpu = meter.stop();
    // Let loops finish their last round trip, then close everything.
    tokio::time::sleep(Duration::from_millis(50)).await;
    abort_all(&handles);
    let round_trips = st.round_trips.get();
    let mut lat = std::mem::take(&mut *st.latencies.borrow_mut());
    let (p50, p99) = stats::p50_p99(&mut lat).unwrap_or((0, 0));
    Ok(B3Result {
        clients: params.clients,
        round_trips,
        round_trips_per_sec: round_trips as f64 / cpu.wall_s,
        p50_us: p50 as f64 / 1e3,
        p99_us: p99 as f64 / 1e3,
        cpu,
        server_us_per_round_trip: per_unit_us(cpu.server_cpu_s, round_trips),
        errors: st.errors.count(),
        error_samples: st.errors.samples(),
    })
}
