//! The scenarios of issue 4, as generator logic that runs against any server
//! address: B1 fan-out, B2 idle memory, B3 ack round trips, and B4 fan-out
//! across two nodes of a cluster.
//!
//! They run on the caller's tokio runtime (the orchestrator's is a
//! current-thread runtime pinned to the generator's core) inside a
//! `LocalSet`: all client state is single-threaded (`Rc`, `Cell`).

pub mod b1;
pub mod b2;
pub mod b3;
pub mod b4;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::procfs;
use crate::proto::{Client, Proto};

/// The server under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    pub proto: Proto,
    /// The server's process, for CPU and RSS (`None` when it runs in-process).
    pub pid: Option<u32>,
}

/// Progress notes from a running scenario (the orchestrator prints them).
pub type Progress<'a> = &'a dyn Fn(&str);

/// CPU time of the server and of the generator over a window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default)]
pub struct CpuSample {
    pub wall_s: f64,
    /// Server CPU seconds (all threads; B4: both nodes and Redis), if its pid is known.
    pub server_cpu_s: Option<f64>,
    /// The generator's own CPU seconds (this whole process).
    pub gen_cpu_s: f64,
    /// CPU seconds the whole machine was busy (every process, interrupts).
    #[serde(default)]
    pub machine_busy_s: Option<f64>,
}

impl CpuSample {
    /// Fraction of one core the server used.
    pub fn server_share(&self) -> Option<f64> {
        self.server_cpu_s.map(|c| c / self.wall_s)
    }

    /// Fraction of one core the generator used.
    pub fn gen_share(&self) -> f64 {
        self.gen_cpu_s / self.wall_s
    }

    /// Fraction of one core used by everything else on the machine (other
    /// processes, and kernel work not charged to either process). Above a few
    /// percent the machine was not quiet and the figures are suspect.
    pub fn other_share(&self) -> Option<f64> {
        let busy = self.machine_busy_s?;
        Some(((busy - self.server_cpu_s? - self.gen_cpu_s) / self.wall_s).max(0.0))
    }
}

/// Starts CPU accounting for a measured window.
#[derive(Debug)]
pub struct CpuMeter {
    /// The server's processes (one, or B4's two nodes and Redis) and their CPU seconds at the start.
    servers: Vec<(u32, Option<f64>)>,
    t0: Instant,
    gen0: f64,
    machine0: Option<f64>,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> Self {
        Self::start_all(pid.as_slice())
    }

    /// Account for several server processes: their CPU times are summed.
    pub fn start_all(pids: &[u32]) -> Self {
        let servers = pids.iter().map(|&p| (p, procfs::cpu_seconds(Some(p)).ok())).collect();
        let gen0 = procfs::cpu_seconds(None).unwrap_or(0.0);
        let machine0 = procfs::machine_busy_seconds().ok();
        Self { servers, t0: Instant::now(), gen0, machine0 }
    }

    pub fn stop(&self) -> CpuSample {
        self.stop_each().0
    }

    /// The sample (server = the sum over every process, if each is known)
    /// and each process's own CPU seconds, in the order given.
    pub fn stop_each(&self) -> (CpuSample, Vec<Option<f64>>) {
        let wall_s = self.t0.elapsed().as_secs_f64();
        let each: Vec<Option<f64>> =
            self.servers.iter().map(|&(p, s0)| Some((procfs::cpu_seconds(Some(p)).ok()? - s0?).max(0.0))).collect();
        let server_cpu_s = if each.is_empty() { None } else { each.iter().copied().sum::<Option<f64>>() };
        let gen_cpu_s = (procfs::cpu_seconds(None).unwrap_or(0.0) - self.gen0).max(0.0);
        let machine_busy_s = match (self.machine0, procfs::machine_busy_seconds()) {
            (Some(m0), Ok(m1)) => Some((m1 - m0).max(0.0)),
            _ => None,
        };
        (CpuSample { wall_s, server_cpu_s, gen_cpu_s, machine_busy_s }, each)
    }
}

/// Errors seen by clients: counted, the first few kept verbatim.
#[derive(Debug, Default)]
pub struct Errors {
    count: Cell<u64>,
    samples: RefCell<Vec<String>>,
}

impl Errors {
    pub fn record(&self, what: impl Into<String>) {
        self.count.set(self.count.get() + 1);
        let mut s = self.samples.borrow_mut();
        if s.len() < 5 {
            s.push(what.into());
        }
    }

    pub fn count(&self) -> u64 {
        self.count.get()
    }

    pub fn samples(&self) -> Vec<String> {
        self.samples.borrow().clone()
    }
}

/// How many clients may be connecting at the same time.
pub const CONNECT_CONCURRENCY: usize = 64;

/// Spawn `n` client tasks on the current `LocalSet`: each connects (at most
/// [`CONNECT_CONCURRENCY`] at once), then runs `run(i, client)`. Returns once
/// all are connected, or the first connect error, or after `timeout`.
pub async fn spawn_clients<F, Fut>(
    target: Target,
    n: usize,
    join: bool,
    timeout: Duration,
    progress: Progress<'_>,
    run: F,
) -> anyhow::Result<Vec<JoinHandle<()>>>
where
    F: Fn(usize, Client) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let run = Rc::new(run);
    let gate = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let ready = Rc::new(Cell::new(0usize));
    let failed: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (run, gate, ready, failed) = (run.clone(), gate.clone(), ready.clone(), failed.clone());
        handles.push(tokio::task::spawn_local(async move {
            let client = {
                let Ok(_permit) = gate.acquire().await else { return };
                match Client::connect(target.addr, target.proto, join).await {
                    Ok(c) => c,
                    Err(e) => {
                        failed.borrow_mut().get_or_insert_with(|| format!("client {i}: {e}"));
                        return;
                    }
                }
            };
            ready.set(ready.get() + 1);
            run(i, client).await;
        }));
    }
    let deadline = Instant::now() + timeout;
    let mut last_note = Instant::now();
    loop {
        if let Some(e) = failed.borrow().clone() {
            handles.iter().for_each(JoinHandle::abort);
            anyhow::bail!("connecting {n} clients failed ({} connected): {e}", ready.get());
        }
        if ready.get() >= n {
            return Ok(handles);
        }
        if Instant::now() >= deadline {
            handles.iter().for_each(JoinHandle::abort);
            anyhow::bail!("only {} of {n} clients connected within {timeout:?}", ready.get());
        }
        if last_note.elapsed() >= Duration::from_secs(2) {
            progress(&format!("connected {}/{n}", ready.get()));
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Abort client tasks (their connections close as they drop).
pub fn abort_all(handles: &[JoinHandle<()>]) {
    handles.iter().for_each(JoinHandle::abort);
}
