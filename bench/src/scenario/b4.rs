//! B4 fan-out across a cluster: two nodes of the same app on one Redis, the
//! room `bench` split across them — the first half of the subscribers on
//! node A, the second half on node B — and one publisher on node A. Every
//! message A's publisher sends reaches B's subscribers only through Redis;
//! the figure is those **cross-node deliveries** per second.
//!
//! The generator is B1's ([`super::b1`]): the same window of messages in
//! flight (a message is done once *every* subscriber, on both nodes, has it),
//! the same validation of every delivery (exactly once, in order), and a
//! latency phase at a fixed offered rate whose latency is sampled at B's
//! subscribers only. CPU is the sum over both nodes and `redis-server`, and
//! each one's share is kept.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::LocalSet;

use super::b1::{Pace, Publisher, State, Window, per_unit_us, subscriber};
use super::{CpuSample, Progress, Target, abort_all, spawn_clients};
use crate::proto::Client;
use crate::stats;
use crate::validate::Tally;

/// B4 parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B4Params {
    /// Subscribers in all; node A gets `subscribers / 2`, node B the rest.
    pub subscribers: usize,
    /// Messages in flight in the throughput phase.
    pub window: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Offered messages/s in the latency phase (0 skips it).
    pub latency_rate: f64,
    pub latency_duration: Duration,
    /// Wait after every client connected, before publishing: each node's
    /// subscriptions to the room's channel must be in place.
    pub settle: Duration,
    /// No progress for this long while messages are in flight ends the run.
    pub stall_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for B4Params {
    fn default() -> Self {
        Self {
            subscribers: 1000,
            // B1's window, for the same reason (socketioxide-like per-socket buffers).
            window: 100,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(10),
            // 2 500 cross-node deliveries/s with 1000 subscribers.
            latency_rate: 5.0,
            latency_duration: Duration::from_secs(10),
            settle: Duration::from_millis(500),
            stall_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(120),
        }
    }
}

/// The cluster under test: two nodes of one app on one Redis.
#[derive(Debug, Clone, Copy)]
pub struct ClusterTarget {
    /// Node A: the publisher and the first half of the subscribers.
    pub a: Target,
    /// Node B: the second half of the subscribers.
    pub b: Target,
    /// The `redis-server` process, for its CPU time.
    pub redis_pid: Option<u32>,
}

impl ClusterTarget {
    /// The processes whose CPU time is measured: A, B, Redis (those known).
    fn pids(&self) -> Vec<u32> {
        [self.a.pid, self.b.pid, self.redis_pid].into_iter().flatten().collect()
    }

    /// Each process's CPU seconds by name, from a window's `each` (in `pids` order).
    fn split(&self, each: &[Option<f64>]) -> ProcessCpu {
        let mut it = each.iter().copied();
        let mut next = |known: bool| if known { it.next().flatten() } else { None };
        ProcessCpu {
            node_a_s: next(self.a.pid.is_some()),
            node_b_s: next(self.b.pid.is_some()),
            redis_s: next(self.redis_pid.is_some()),
        }
    }
}

/// CPU seconds of each process over a measured window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ProcessCpu {
    pub node_a_s: Option<f64>,
    pub node_b_s: Option<f64>,
    pub redis_s: Option<f64>,
}

/// Throughput phase figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterThroughput {
    /// First deliveries to node B's subscribers (they crossed Redis).
    pub cross_deliveries: u64,
    pub cross_deliveries_per_sec: f64,
    /// Every subscriber, both nodes.
    pub deliveries_per_sec: f64,
    /// Server = node A + node B + redis-server.
    pub cpu: CpuSample,
    pub processes: ProcessCpu,
    /// Server CPU (both nodes and Redis) per cross-node delivery, in µs.
    pub server_us_per_cross_delivery: Option<f64>,
}

/// Latency phase figures (latency of cross-node deliveries only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterLatency {
    pub offered_rate: f64,
    pub cross_deliveries_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub cpu: CpuSample,
    pub processes: ProcessCpu,
    pub server_us_per_cross_delivery: Option<f64>,
    /// Ticks skipped because too many messages were still in flight.
    pub throttled: u64,
}

/// One B4 run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B4Result {
    pub subscribers: usize,
    /// Of which on node B.
    pub on_node_b: usize,
    pub sent: u64,
    pub throughput: Option<ClusterThroughput>,
    pub latency: Option<ClusterLatency>,
    /// Every subscriber, both nodes.
    pub tally: Tally,
    /// Node B's subscribers only.
    pub cross_tally: Tally,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// Why the run ended early, if it did.
    pub failure: Option<String>,
}

/// Run B4 against `cluster`.
pub async fn run(cluster: ClusterTarget, params: &B4Params, progress: Progress<'_>) -> anyhow::Result<B4Result> {
    LocalSet::new().run_until(run_local(cluster, params, progress)).await
}

async fn run_local(cluster: ClusterTarget, params: &B4Params, progress: Progress<'_>) -> anyhow::Result<B4Result> {
    let n = params.subscribers.max(2);
    let on_a = n / 2;
    let st = State::new(n, params.window, on_a)?;
    progress(&format!("connecting {on_a} subscribers to node A, {} to node B", n - on_a));
    let mut handles = Vec::with_capacity(n);
    for (target, first, count) in [(cluster.a, 0, on_a), (cluster.b, on_a, n - on_a)] {
        let sub_state = st.clone();
        let connected = spawn_clients(target, count, true, params.connect_timeout, progress, move |i, c| {
            subscriber(first + i, c, sub_state.clone())
        })
        .await;
        match connected {
            Ok(h) => handles.extend(h),
            Err(e) => {
                abort_all(&handles);
                return Err(e);
            }
        }
    }
    let mut publisher = match Client::connect(cluster.a.addr, cluster.a.proto, true).await {
        Ok(c) => Publisher::new(c),
        Err(e) => {
            abort_all(&handles);
            return Err(e.into());
        }
    };
    // Node B subscribed to the room's channel when its first subscriber
    // joined; let that (and the last joins' notices) settle.
    tokio::time::sleep(params.settle).await;

    let mut result = B4Result {
        subscribers: n,
        on_node_b: n - on_a,
        sent: 0,
        throughput: None,
        latency: None,
        tally: Tally::default(),
        cross_tally: Tally::default(),
        errors: 0,
        error_samples: Vec::new(),
        failure: None,
    };
    if let Err(e) = phases(cluster, params, &st, &mut publisher, &mut result, progress).await {
        result.failure = Some(e.to_string());
    }
    st.stopping.set(true);
    publisher.client.conn.close().await;
    abort_all(&handles);
    result.sent = st.sent.get();
    result.tally = st.tally(0..n);
    result.cross_tally = st.tally(on_a..n);
    result.errors = st.errors.count();
    result.error_samples = st.errors.samples();
    Ok(result)
}

async fn phases(
    cluster: ClusterTarget,
    params: &B4Params,
    st: &State,
    publisher: &mut Publisher,
    result: &mut B4Result,
    progress: Progress<'_>,
) -> anyhow::Result<()> {
    let stall = params.stall_timeout;
    let window = Pace::Window(params.window.max(1) as u64);
    let pids = cluster.pids();
    progress("warm-up");
    publisher.pump(st, window, std::time::Instant::now() + params.warmup, stall).await?;

    progress("measuring cross-node throughput");
    let Window { deliveries, cross_deliveries, cpu, each } =
        publisher.measure(st, window, params.measure, &pids, stall).await?;
    result.throughput = Some(ClusterThroughput {
        cross_deliveries,
        cross_deliveries_per_sec: cross_deliveries as f64 / cpu.wall_s,
        deliveries_per_sec: deliveries as f64 / cpu.wall_s,
        cpu,
        processes: cluster.split(&each),
        server_us_per_cross_delivery: per_unit_us(cpu.server_cpu_s, cross_deliveries),
    });
    publisher.drain(st, stall).await?;

    if params.latency_rate > 0.0 && !params.latency_duration.is_zero() {
        progress(&format!("measuring cross-node latency at {} msg/s", params.latency_rate));
        let (Window { cross_deliveries, cpu, each, .. }, mut lat) =
            publisher.measure_latency(st, params.latency_rate, params.latency_duration, &pids, stall).await?;
        let max = lat.iter().copied().max().unwrap_or(0);
        let (p50, p99) = stats::p50_p99(&mut lat).unwrap_or((0, 0));
        result.latency = Some(ClusterLatency {
            offered_rate: params.latency_rate,
            cross_deliveries_per_sec: cross_deliveries as f64 / cpu.wall_s,
            p50_us: p50 as f64 / 1e3,
            p99_us: p99 as f64 / 1e3,
            max_us: max as f64 / 1e3,
            cpu,
            processes: cluster.split(&each),
            server_us_per_cross_delivery: per_unit_us(cpu.server_cpu_s, cross_deliveries),
            throttled: publisher.throttled,
        });
    }
    Ok(())
}
