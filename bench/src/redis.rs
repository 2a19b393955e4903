//! B4's own `redis-server`: started on a free loopback port (pinned like the
//! peers), with nothing persisted, and killed when stopped or dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// How long `redis-server` may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The `redis-server` program: on `PATH`, else Debian's `/usr/bin/redis-server`.
pub fn program() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("redis-server")).find(|p| p.is_file()));
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/redis-server")).filter(|p| p.is_file()))
}

/// `redis-server --version`, e.g. `7.0.15`.
pub fn version() -> String {
    program()
        .and_then(|p| std::process::Command::new(p).arg("--version").output().ok())
        .and_then(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.split_ascii_whitespace().find_map(|w| w.strip_prefix("v=").map(str::to_owned))
        })
        .unwrap_or_else(|| "n/a".into())
}

/// A running `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub pid: u32,
    pub log: PathBuf,
}

impl RedisServer {
    /// Start `redis-server` on a free port of 127.0.0.1 (pinned to `core`
    /// with taskset if given), its output in `log`, and wait until it answers
    /// PING. Fails clearly when it is not installed or does not come up.
    pub async fn start(core: Option<usize>, log: PathBuf) -> anyhow::Result<Self> {
        let program = program().context(
            "B4 needs redis-server (Debian package redis-server: `apt-get install redis-server`; make bench installs it)",
        )?;
        // A free port: bind port 0, note it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        let port_arg = port.to_string();
        cmd.args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--loglevel", "warning"]);
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("redis-server exited at once")?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ping(port).await {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("redis-server exited ({status}) before answering on port {port}: {}", tail(&log));
            }
            if Instant::now() >= deadline {
                let _ = child.kill().await;
                bail!("redis-server did not answer on port {port} within {START_TIMEOUT:?}: {}", tail(&log));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self { child, port, pid, log })
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the process is still running.
    pub fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Kill it and wait (nothing is persisted).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

fn tail(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default().lines().rev().take(5).collect::<Vec<_>>().join(" | ")
}

async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"+PONG\r\n")
    };
    tokio::time::timeout(Duration::from_secs(1), attempt).await.ok().flatten().unwrap_or(false)
}
