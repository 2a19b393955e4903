//! B2 idle memory: `clients` connected idle clients (Socket.IO: namespace
//! connected; JSON: upgraded, in no room). The server's resident memory
//! (`VmRSS`) is read before and after; the difference per connection is the
//! figure. "Before" is taken after a few connections came and went, so that
//! lazily initialized runtime state is not charged to the idle connections.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::LocalSet;

use super::{Progress, Target, abort_all, spawn_clients};
use crate::procfs;
use crate::proto::Client;

/// B2 parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B2Params {
    pub clients: usize,
    /// Wait after the last connection before reading RSS.
    pub settle: Duration,
    pub connect_timeout: Duration,
}

impl Default for B2Params {
    fn default() -> Self {
        Self { clients: 10_000, settle: Duration::from_secs(2), connect_timeout: Duration::from_secs(300) }
    }
}

/// One B2 run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct B2Result {
    pub clients: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// (after - before) / clients, in KiB.
    pub kib_per_connection: f64,
    pub connect_seconds: f64,
}

async fn idle(mut c: Client) {
    loop {
        if c.drain(|_| {}).is_err() || c.conn.flush().await.is_err() || c.conn.read_more().await.is_err() {
            return;
        }
    }
}

/// Run B2 against `target` (needs the server's pid).
pub async fn run(target: Target, params: &B2Params, progress: Progress<'_>) -> anyhow::Result<B2Result> {
    LocalSet::new().run_until(run_local(target, params, progress)).await
}

async fn run_local(target: Target, params: &B2Params, progress: Progress<'_>) -> anyhow::Result<B2Result> {
    let pid = target.pid.ok_or_else(|| anyhow::anyhow!("B2 needs the server's pid"))?;
    // Warm the server up: a few connections that come and go.
    for _ in 0..10 {
        let mut c = Client::connect(target.addr, target.proto, false).await?;
        c.conn.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = procfs::rss_kib(pid)?;
    progress(&format!("connecting {} idle clients", params.clients));
    let t0 = Instant::now();
    let handles =
        spawn_clients(target, params.clients, false, params.connect_timeout, progress, |_, c| idle(c)).await?;
    let connect_seconds = t0.elapsed().as_secs_f64();
    tokio::time::sleep(params.settle).await;
    let rss_after_kib = procfs::rss_kib(pid)?;
    let alive = handles.iter().filter(|h| !h.is_finished()).count();
    abort_all(&handles);
    if alive < params.clients {
        anyhow::bail!(
            "{} of {} idle connections were closed before the measurement",
            params.clients - alive,
            params.clients
        );
    }
    Ok(B2Result {
        clients: params.clients,
        rss_before_kib,
        rss_after_kib,
        kib_per_connection: (rss_after_kib as f64 - rss_before_kib as f64) / params.clients as f64,
        connect_seconds,
    })
}
