//! The orchestrator: starts every peer pinned to the server core, drives it
//! with the scenarios from this (generator) process, repeats, and collects
//! the results for [`crate::report`]. For B4 it starts a `redis-server` and
//! two nodes of the peer on it, all three pinned to the server core.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::proto::Proto;
use crate::scenario::b1::{B1Params, B1Result};
use crate::scenario::b2::{B2Params, B2Result};
use crate::scenario::b3::{B3Params, B3Result};
use crate::scenario::b4::{B4Params, B4Result, ClusterTarget};
use crate::scenario::{Target, b1, b2, b3, b4};

/// A scenario of issue 4 (B4: fan-out across two nodes of a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scenario {
    B1,
    B2,
    B3,
    B4,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [Scenario::B1, Scenario::B2, Scenario::B3, Scenario::B4];

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "b1" | "fanout" | "fan-out" => Some(Self::B1),
            "b2" | "idle" | "memory" => Some(Self::B2),
            "b3" | "ack" | "acks" => Some(Self::B3),
            "b4" | "cluster" | "redis" => Some(Self::B4),
            _ => None,
        }
    }

    /// Parse a list, sorted and without repeats.
    pub fn parse_list(list: &[String]) -> anyhow::Result<Vec<Self>> {
        let mut v: Vec<Scenario> = list
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Scenario::parse(s).with_context(|| format!("unknown scenario {s:?} (b1, b2, b3, b4)")))
            .collect::<anyhow::Result<_>>()?;
        v.sort_by_key(|s| *s as u8);
        v.dedup();
        Ok(v)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::B1 => "B1",
            Self::B2 => "B2",
            Self::B3 => "B3",
            Self::B4 => "B4",
        })
    }
}

/// How a peer is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    /// `roomcast-bench-server` (this crate).
    Roomcast,
    /// `roomcast-bench-server --recovery`: the same with connection state
    /// recovery on, for what recording every broadcast costs (B1, B4).
    RoomcastRecovery,
    /// `roomcast-bench-limit` (this crate).
    Limit,
    /// `node bench/peers/node/<script>`.
    Node(&'static str),
    /// The socketioxide peer binary.
    Socketioxide,
    /// `.venv/bin/python bench/peers/python/<script>`, which needs the
    /// modules named (checked before the run).
    Python { script: &'static str, imports: &'static str },
}

/// A server measured by the benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Name used on the command line and in tables.
    pub name: &'static str,
    /// Longer description.
    pub title: &'static str,
    pub proto: Proto,
    pub kind: PeerKind,
}

/// Every peer, in table order.
pub const PEERS: [Peer; 9] = [
    Peer { name: "roomcast-sio", title: "roomcast (Socket.IO)", proto: Proto::SocketIo, kind: PeerKind::Roomcast },
    Peer {
        name: "roomcast-sio-recovery",
        title: "roomcast (Socket.IO), connection state recovery on",
        proto: Proto::SocketIo,
        kind: PeerKind::RoomcastRecovery,
    },
    Peer { name: "roomcast-json", title: "roomcast (JSON protocol)", proto: Proto::Json, kind: PeerKind::Roomcast },
    Peer { name: "node-sio", title: "Node socket.io", proto: Proto::SocketIo, kind: PeerKind::Node("socketio.mjs") },
    Peer { name: "socketioxide", title: "socketioxide", proto: Proto::SocketIo, kind: PeerKind::Socketioxide },
    Peer {
        name: "python-sio",
        title: "python-socketio (aiohttp)",
        proto: Proto::SocketIo,
        kind: PeerKind::Python { script: "server.py", imports: "socketio, aiohttp" },
    },
    // B5: the same app in Python on roomcast's package, compared with python-socketio.
    Peer {
        name: "roomcast-py",
        title: "roomcast from Python (AsyncServer)",
        proto: Proto::SocketIo,
        kind: PeerKind::Python { script: "roomcast_server.py", imports: "roomcast" },
    },
    Peer { name: "node-ws", title: "Node ws (JSON protocol)", proto: Proto::Json, kind: PeerKind::Node("ws.mjs") },
    Peer { name: "limit", title: "limit (raw tokio, one pre-encoded frame)", proto: Proto::Raw, kind: PeerKind::Limit },
];

impl Peer {
    pub fn by_name(name: &str) -> Option<Peer> {
        PEERS.iter().copied().find(|p| p.name == name.trim())
    }

    /// The scenarios this peer takes part in. B4 needs a cluster over Redis:
    /// roomcast (both protocols) and socket.io with @socket.io/redis-adapter.
    pub fn runs(&self, s: Scenario) -> bool {
        match (s, self.kind) {
            (_, PeerKind::RoomcastRecovery) => matches!(s, Scenario::B1 | Scenario::B4),
            (Scenario::B4, kind) => matches!(kind, PeerKind::Roomcast | PeerKind::Node("socketio.mjs")),
            (_, kind) => kind != PeerKind::Limit || s == Scenario::B1,
        }
    }

    /// The roomcast peer its figures are compared with.
    pub fn baseline(&self) -> &'static str {
        match self.proto {
            Proto::Json => "roomcast-json",
            Proto::SocketIo | Proto::Raw => "roomcast-sio",
        }
    }
}

/// Where things are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub repo: PathBuf,
    /// Directory of this executable (the bench server and limit binaries sit beside it).
    pub exe_dir: PathBuf,
    /// `CARGO_TARGET_DIR` of the socketioxide peer.
    pub peers_target: PathBuf,
    pub venv_python: PathBuf,
    pub results: PathBuf,
}

impl Paths {
    /// Defaults: the repository is the current directory when it holds
    /// `bench/APP.md`, else the one this crate was built from.
    pub fn discover(results: Option<PathBuf>) -> anyhow::Result<Self> {
        let cwd = std::env::current_dir()?;
        let repo = if cwd.join("bench/APP.md").is_file() {
            cwd
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or(cwd)
        };
        let exe = std::env::current_exe()?;
        let exe_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        let peers_target = std::env::var_os("ROOMCAST_PEERS_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache/roomcast-peers-target"));
        let venv_python = std::env::var_os("ROOMCAST_BENCH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join(".venv/bin/python"));
        let results = results.unwrap_or_else(|| repo.join("bench/results"));
        Ok(Self { repo, exe_dir, peers_target, venv_python, results })
    }

    fn node_dir(&self) -> PathBuf {
        self.repo.join("bench/peers/node")
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// The command line that starts `peer`, after checking that it can run.
pub fn peer_command(peer: &Peer, paths: &Paths) -> anyhow::Result<Vec<OsString>> {
    let need_file = |p: PathBuf, hint: &str| -> anyhow::Result<OsString> {
        if p.is_file() {
            Ok(p.into_os_string())
        } else {
            bail!("peer {}: {} not found ({hint})", peer.name, p.display())
        }
    };
    match peer.kind {
        PeerKind::Roomcast => Ok(vec![need_file(
            paths.exe_dir.join("roomcast-bench-server"),
            "build it with `cargo build --release -p roomcast-bench`",
        )?]),
        PeerKind::RoomcastRecovery => Ok(vec![
            need_file(
                paths.exe_dir.join("roomcast-bench-server"),
                "build it with `cargo build --release -p roomcast-bench`",
            )?,
            "--recovery".into(),
        ]),
        PeerKind::Limit => Ok(vec![need_file(
            paths.exe_dir.join("roomcast-bench-limit"),
            "build it with `cargo build --release -p roomcast-bench`",
        )?]),
        PeerKind::Node(script) => {
            let node = on_path("node").ok_or_else(|| anyhow::anyhow!("peer {}: `node` is not on PATH", peer.name))?;
            let script = need_file(paths.node_dir().join(script), "the node peers live in bench/peers/node")?;
            let module = if script.to_string_lossy().ends_with("ws.mjs") { "ws" } else { "socket.io" };
            if !paths.node_dir().join("node_modules").join(module).join("package.json").is_file() {
                bail!(
                    "peer {}: {module} is not installed: run `npm ci --prefix bench/peers/node` (make bench does)",
                    peer.name
                );
            }
            Ok(vec![node.into_os_string(), script])
        }
        PeerKind::Socketioxide => Ok(vec![need_file(
            paths.peers_target.join("release/socketioxide-peer"),
            "build it with `CARGO_TARGET_DIR=$HOME/.cache/roomcast-peers-target cargo build --release \
             --manifest-path bench/peers/socketioxide/Cargo.toml` (make bench does)",
        )?]),
        PeerKind::Python { script, imports } => {
            let python = need_file(
                paths.venv_python.clone(),
                "create the venv and `pip install -r bench/peers/python/requirements.txt` (make bench does)",
            )?;
            let script = need_file(paths.repo.join("bench/peers/python").join(script), "the python peer")?;
            let ok = std::process::Command::new(&python)
                .args(["-c", &format!("import {imports}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                bail!(
                    "peer {}: `import {imports}` fails in {}: `make bench` installs the requirements and the roomcast wheel",
                    peer.name,
                    paths.venv_python.display()
                );
            }
            Ok(vec![python, script])
        }
    }
}

/// What B4 needs beyond the peer itself: `redis-server`, and the socket.io
/// peer's Redis adapter and client.
pub fn cluster_requirements(peer: &Peer, paths: &Paths) -> anyhow::Result<()> {
    if crate::redis::program().is_none() {
        bail!(
            "B4 needs redis-server (Debian package redis-server: `apt-get install redis-server`; make bench installs it)"
        );
    }
    if let PeerKind::Node(_) = peer.kind {
        for module in ["@socket.io/redis-adapter", "redis"] {
            if !paths.node_dir().join("node_modules").join(module).join("package.json").is_file() {
                bail!(
                    "peer {}: {module} is not installed: run `npm ci --prefix bench/peers/node` (make bench does)",
                    peer.name
                );
            }
        }
    }
    Ok(())
}

/// A running peer process.
#[derive(Debug)]
pub struct RunningPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    pub pid: u32,
    pub log: PathBuf,
}

impl RunningPeer {
    /// Start `command` (pinned to `core` with taskset if given), `PORT=0`
    /// and `env`, and wait for its `PORT <n>` line.
    pub async fn start(
        command: &[OsString],
        core: Option<usize>,
        cwd: &Path,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let (program, args) = command.split_first().ok_or_else(|| anyhow::anyhow!("empty command"))?;
        let mut cmd = match core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).current_dir(cwd).env("PORT", "0").env("NODE_ENV", "production");
        cmd.envs(env.iter().copied());
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(stderr).kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {program:?}"))?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("peer exited at once"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let tail =
            || std::fs::read_to_string(&log).unwrap_or_default().lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        let line = match first {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => bail!("{program:?} exited before printing its port; stderr: {}", tail()),
            Ok(Err(e)) => bail!("reading {program:?}'s stdout: {e}"),
            Err(_) => bail!("{program:?} printed no `PORT <n>` line within 60 s; stderr: {}", tail()),
        };
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{program:?}: first stdout line is {line:?}, not `PORT <n>`"))?;
        // Keep stdout drained so that the peer never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, stdin, addr: SocketAddr::from(([127, 0, 0, 1], port)), pid, log })
    }

    /// Close stdin and wait for the exit (killing it after 5 s).
    pub async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            eprintln!("peer {} did not exit when stdin closed; killing it", self.pid);
            let _ = self.child.kill().await;
        }
    }
}

/// Everything one benchmark session is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    #[serde(skip)]
    pub peers: Vec<Peer>,
    pub peer_names: Vec<String>,
    pub scenarios: Vec<Scenario>,
    pub runs: usize,
    pub b1: B1Params,
    pub b2: B2Params,
    pub b3: B3Params,
    #[serde(default)]
    pub b4: B4Params,
    pub server_core: Option<usize>,
    pub generator_core: Option<usize>,
    pub quick: bool,
}

/// What a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    B1(B1Result),
    B2(B2Result),
    B3(B3Result),
    B4(B4Result),
    Failed { error: String },
}

/// One run of one scenario against one peer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub peer: String,
    pub scenario: Scenario,
    pub run: usize,
    pub outcome: Outcome,
}

/// Prints the progress line.
#[derive(Debug)]
pub struct ProgressLine {
    started: Instant,
    total: usize,
    step: usize,
}

impl ProgressLine {
    pub fn new(total: usize) -> Self {
        Self { started: Instant::now(), total, step: 0 }
    }

    pub fn next(&mut self) {
        self.step += 1;
    }

    pub fn print(&self, what: &str) {
        let s = self.started.elapsed().as_secs();
        eprintln!("[{:>3}/{} {:>2}:{:02}] {what}", self.step, self.total, s / 60, s % 60);
    }
}

/// Run the plan; returns every run's record.
pub async fn run_plan(plan: &Plan, paths: &Paths) -> anyhow::Result<Vec<RunRecord>> {
    // Fail early and clearly on any unavailable peer.
    let mut commands = Vec::new();
    let mut problems = Vec::new();
    for peer in &plan.peers {
        let cluster = if plan.scenarios.iter().any(|&s| s == Scenario::B4 && peer.runs(s)) {
            cluster_requirements(peer, paths)
        } else {
            Ok(())
        };
        match cluster.and_then(|()| peer_command(peer, paths)) {
            Ok(c) => commands.push((*peer, c)),
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems.dedup();
    if !problems.is_empty() {
        bail!("{}\n(leave unavailable peers out with --peers)", problems.join("\n"));
    }
    let total: usize =
        plan.scenarios.iter().map(|&s| commands.iter().filter(|(p, _)| p.runs(s)).count() * plan.runs).sum();
    let mut progress = ProgressLine::new(total);
    let mut records = Vec::new();
    let logs = paths.results.join("tmp");
    for &scenario in &plan.scenarios {
        // Runs interleave the peers, so that drift on the machine spreads over all of them.
        for run in 1..=plan.runs {
            for (peer, command) in commands.iter().filter(|(p, _)| p.runs(scenario)) {
                progress.next();
                let label = format!("{} {scenario} run {run}/{}", peer.name, plan.runs);
                progress.print(&format!("{label}: starting"));
                wait_for_quiet(&|m| progress.print(&format!("{label}: {m}"))).await;
                let log = logs.join(format!("{}-{scenario}-{run}.log", peer.name));
                let outcome = match one_run(plan, peer, command, scenario, paths, log, &|m| {
                    progress.print(&format!("{label}: {m}"))
                })
                .await
                {
                    Ok(o) => o,
                    Err(e) => Outcome::Failed { error: format!("{e:#}") },
                };
                progress.print(&format!("{label}: {}", crate::report::one_line(&outcome)));
                records.push(RunRecord { peer: peer.name.to_owned(), scenario, run, outcome });
            }
        }
    }
    Ok(records)
}

/// Other processes may use this share of a core before a run starts.
const QUIET: f64 = 0.15;
/// How long to wait for a quiet machine before measuring anyway (the run is then flagged).
const QUIET_WAIT: Duration = Duration::from_secs(180);

/// Wait (bounded) until the rest of the machine is idle: this machine is
/// shared, and a compiler on the server's or the generator's core would
/// distort every figure.
async fn wait_for_quiet(progress: &dyn Fn(&str)) {
    let started = Instant::now();
    let mut said = false;
    loop {
        let (busy0, own0) = (crate::procfs::machine_busy_seconds(), crate::procfs::cpu_seconds(None));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (Ok(b0), Ok(o0), Ok(b1), Ok(o1)) =
            (busy0, own0, crate::procfs::machine_busy_seconds(), crate::procfs::cpu_seconds(None))
        else {
            return;
        };
        let other = ((b1 - b0) - (o1 - o0)).max(0.0) / 0.5;
        if other < QUIET {
            return;
        }
        if started.elapsed() > QUIET_WAIT {
            progress(&format!("measuring anyway: other processes still use {:.0}% of a core", other * 100.0));
            return;
        }
        if !said {
            progress(&format!(
                "waiting for the machine to be quiet (other processes use {:.0}% of a core)",
                other * 100.0
            ));
            said = true;
        }
    }
}

async fn one_run(
    plan: &Plan,
    peer: &Peer,
    command: &[OsString],
    scenario: Scenario,
    paths: &Paths,
    log: PathBuf,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Outcome> {
    if scenario == Scenario::B4 {
        return cluster_run(plan, peer, command, paths, &log, progress).await;
    }
    let server = RunningPeer::start(command, plan.server_core, &paths.repo, log, &[]).await?;
    let target = Target { addr: server.addr, proto: peer.proto, pid: Some(server.pid) };
    let result = match scenario {
        Scenario::B1 => b1::run(target, &plan.b1, progress).await.map(Outcome::B1),
        Scenario::B2 => b2::run(target, &plan.b2, progress).await.map(Outcome::B2),
        Scenario::B3 => b3::run(target, &plan.b3, progress).await.map(Outcome::B3),
        Scenario::B4 => unreachable!("B4 runs on a cluster"),
    };
    let alive = std::fs::metadata(format!("/proc/{}", server.pid)).is_ok();
    let log = server.log.clone();
    server.stop().await;
    match result {
        Ok(o) => Ok(o),
        Err(e) if !alive => Err(e.context(format!("the peer died (see {})", log.display()))),
        Err(e) => Err(e),
    }
}

/// B4: a fresh `redis-server`, node A and node B of `peer` on it (the same
/// app, `REDIS_URL` set), all pinned to the server core; logs beside `log`.
async fn cluster_run(
    plan: &Plan,
    peer: &Peer,
    command: &[OsString],
    paths: &Paths,
    log: &Path,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Outcome> {
    let beside = |suffix: &str| log.with_extension(format!("{suffix}.log"));
    let redis = crate::redis::RedisServer::start(plan.server_core, beside("redis")).await?;
    let url = redis.url();
    let env = [("REDIS_URL", url.as_str())];
    let core = plan.server_core;
    let a = match RunningPeer::start(command, core, &paths.repo, beside("a"), &env).await {
        Ok(a) => a,
        Err(e) => {
            redis.stop().await;
            return Err(e.context("starting node A"));
        }
    };
    let b = match RunningPeer::start(command, core, &paths.repo, beside("b"), &env).await {
        Ok(b) => b,
        Err(e) => {
            a.stop().await;
            redis.stop().await;
            return Err(e.context("starting node B"));
        }
    };
    let cluster = ClusterTarget {
        a: Target { addr: a.addr, proto: peer.proto, pid: Some(a.pid) },
        b: Target { addr: b.addr, proto: peer.proto, pid: Some(b.pid) },
        redis_pid: Some(redis.pid),
    };
    let result = b4::run(cluster, &plan.b4, progress).await.map(Outcome::B4);
    let dead: Vec<String> =
        [("node A", a.pid, &a.log), ("node B", b.pid, &b.log), ("redis-server", redis.pid, &redis.log)]
            .into_iter()
            .filter(|(_, pid, _)| std::fs::metadata(format!("/proc/{pid}")).is_err())
            .map(|(what, _, log)| format!("{what} died (see {})", log.display()))
            .collect();
    a.stop().await;
    b.stop().await;
    redis.stop().await;
    match result {
        Err(e) if !dead.is_empty() => Err(e.context(dead.join("; "))),
        r => r,
    }
}

/// Facts about the machine and the software measured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub rustc: String,
    pub roomcast_commit: String,
    pub node: String,
    pub socket_io: String,
    pub ws: String,
    pub python: String,
    pub python_socketio: String,
    pub aiohttp: String,
    pub socketioxide: String,
    /// B4.
    #[serde(default)]
    pub redis_server: String,
    #[serde(default)]
    pub socket_io_redis_adapter: String,
    #[serde(default)]
    pub node_redis: String,
}

fn command_output(program: &Path, args: &[&str], cwd: &Path) -> String {
    std::process::Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "n/a".into())
}

fn package_json_version(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "n/a".into())
}

/// The version of `name` in a Cargo.lock.
pub fn cargo_lock_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim().strip_prefix("version = \"")?.strip_suffix('"')?;
            return Some(v.to_owned());
        }
    }
    None
}

/// Collect the machine facts.
pub fn machine(paths: &Paths) -> Machine {
    let repo = &paths.repo;
    let commit = command_output(Path::new("git"), &["rev-parse", "--short=12", "HEAD"], repo);
    let dirty = command_output(Path::new("git"), &["status", "--porcelain", "--untracked-files=no"], repo);
    let py = &paths.venv_python;
    let version_of = |pkg: &str| {
        command_output(py, &["-c", &format!("import importlib.metadata as m; print(m.version('{pkg}'))")], repo)
    };
    Machine {
        date: command_output(Path::new("date"), &["-u", "+%Y-%m-%d %H:%M UTC"], repo),
        cpu: crate::procfs::cpu_model(),
        cores: crate::procfs::cpu_count(),
        kernel: crate::procfs::kernel(),
        rustc: command_output(Path::new("rustc"), &["--version"], repo),
        roomcast_commit: if dirty == "n/a" || commit == "n/a" {
            commit
        } else {
            format!("{commit} (with uncommitted changes)")
        },
        node: command_output(Path::new("node"), &["--version"], repo),
        socket_io: package_json_version(&paths.node_dir().join("node_modules/socket.io/package.json")),
        ws: package_json_version(&paths.node_dir().join("node_modules/ws/package.json")),
        python: command_output(py, &["-c", "import platform; print(platform.python_version())"], repo),
        python_socketio: version_of("python-socketio"),
        aiohttp: version_of("aiohttp"),
        socketioxide: std::fs::read_to_string(repo.join("bench/peers/socketioxide/Cargo.lock"))
            .ok()
            .and_then(|l| cargo_lock_version(&l, "socketioxide"))
            .unwrap_or_else(|| "n/a".into()),
        redis_server: crate::redis::version(),
        socket_io_redis_adapter: package_json_version(
            &paths.node_dir().join("node_modules/@socket.io/redis-adapter/package.json"),
        ),
        node_redis: package_json_version(&paths.node_dir().join("node_modules/redis/package.json")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_versions() {
        let lock = "[[package]]\nname = \"socketioxide-core\"\nversion = \"0.17.0\"\n\n[[package]]\nname = \"socketioxide\"\nversion = \"0.18.1\"\n";
        assert_eq!(cargo_lock_version(lock, "socketioxide").as_deref(), Some("0.18.1"));
        assert_eq!(cargo_lock_version(lock, "tokio"), None);
    }

    #[test]
    fn peers_and_scenarios() {
        assert_eq!(Peer::by_name("limit").map(|p| p.proto), Some(Proto::Raw));
        let limit = Peer::by_name("limit").unwrap();
        assert!(limit.runs(Scenario::B1) && !limit.runs(Scenario::B2));
        assert_eq!(Peer::by_name("node-ws").unwrap().baseline(), "roomcast-json");
        assert_eq!(Scenario::parse("B3"), Some(Scenario::B3));
        assert_eq!(Scenario::parse("b4"), Some(Scenario::B4));
        assert_eq!(Scenario::parse("b9"), None);
        let b4: Vec<&str> = PEERS.iter().filter(|p| p.runs(Scenario::B4)).map(|p| p.name).collect();
        assert_eq!(b4, ["roomcast-sio", "roomcast-sio-recovery", "roomcast-json", "node-sio"]);
        let recovery = Peer::by_name("roomcast-sio-recovery").unwrap();
        assert!(recovery.runs(Scenario::B1) && !recovery.runs(Scenario::B2) && recovery.baseline() == "roomcast-sio");
        let list = ["b4".to_owned(), "B1".to_owned(), "b4".to_owned()];
        assert_eq!(Scenario::parse_list(&list).unwrap(), [Scenario::B1, Scenario::B4]);
        assert!(Scenario::parse_list(&["b5".to_owned()]).is_err());
    }
}
