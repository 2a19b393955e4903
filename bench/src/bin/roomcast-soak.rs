//! `roomcast-soak` (`make soak`): `roomcast serve`, with connection state
//! recovery on, under 10,000 connections that churn for twelve minutes. Three
//! in four speak the JSON protocol: they join rooms, send to them now and
//! then, and move between them. One in four speaks Socket.IO over WebSocket:
//! heartbeats and events, some asking for acks. After a random lifetime each
//! client leaves: most close, one in ten vanishes (stops reading, never
//! closes) and checks that the heartbeat closed it in time. Either way the
//! server parks its session for recovery until the window ends. Then the
//! client comes back as a new connection. The server's resident memory, fds,
//! tokio tasks, connections, rooms and parked sessions are sampled
//! throughout; they must stay flat while the load holds, and fall back once
//! it ends and the window has passed. Writes `samples.json`, `soak.png` and
//! `SOAK.md` into `--out`; exits 1 on a leak or an unreaped client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use parking_lot::Mutex;
use roomcast_bench::proto::{Client, Proto};
use roomcast_bench::soak::{Sample, Tolerance, chart, verdict};
use roomcast_bench::ws::{WsConn, WsError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::{Instant, sleep, sleep_until, timeout};

#[derive(Parser, Debug)]
struct Args {
    /// The `roomcast` binary to serve with.
    #[arg(long)]
    server: PathBuf,
    /// Connections held at once.
    #[arg(long, default_value_t = 10_000)]
    connections: u64,
    /// Seconds the load runs (the ramp included).
    #[arg(long, default_value_t = 720)]
    seconds: u64,
    /// Seconds over which the clients first connect.
    #[arg(long, default_value_t = 60)]
    ramp_seconds: u64,
    /// Rooms the clients spread over.
    #[arg(long, default_value_t = 1000)]
    rooms: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    sample_seconds: u64,
    /// Where the samples, chart and report go.
    #[arg(long, default_value = "bench/results/soak")]
    out: PathBuf,
}

/// The heartbeat the server runs with: a vanished client is reaped within
/// interval + timeout.
const PING_MS: u64 = 5000;

/// The recovery window: parked sessions of vanished clients expire after it.
const RECOVERY_MS: u64 = 30_000;

#[derive(Default)]
struct Counts {
    connects: AtomicU64,
    sio_connects: AtomicU64,
    connect_errors: AtomicU64,
    closed_by_server: AtomicU64,
    vanished: AtomicU64,
    /// Vanished clients the server had not closed in time.
    not_reaped: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
}

/// xorshift64*: each client's own sequence of choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

fn join(ws: &mut WsConn, room: u64) {
    ws.send_text(format!(r#"{{"type":"join","room":"r{room}"}}"#).as_bytes());
}

/// Read what arrived (answering pings on the way); the count of messages.
async fn drain(ws: &mut WsConn) -> Result<u64, WsError> {
    ws.read_more().await?;
    let mut n = 0;
    while let Some(m) = ws.next_message()? {
        ws.release(&m);
        n += 1;
    }
    ws.flush().await?;
    Ok(n)
}

/// One client slot: connect, live a while, leave, again until `deadline`.
/// Every fourth slot speaks Socket.IO, the others the JSON protocol.
async fn client(addr: SocketAddr, seed: u64, rooms: u64, deadline: Instant, counts: Arc<Counts>) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let proto = if seed.is_multiple_of(4) { Proto::SocketIo } else { Proto::Json };
    while Instant::now() < deadline {
        let mut c = match Client::connect(addr, proto, false).await {
            Ok(c) => c,
            Err(_) => {
                counts.connect_errors.fetch_add(1, Relaxed);
                sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        counts.connects.fetch_add(1, Relaxed);
        if proto == Proto::SocketIo {
            counts.sio_connects.fetch_add(1, Relaxed);
        }
        let end = (Instant::now() + rng.millis(10_000, 60_000)).min(deadline);
        let outcome = match proto {
            Proto::Json => json_life(&mut c.conn, &mut rng, seed, rooms, end, &counts).await,
            _ => sio_life(&mut c, &mut rng, seed, end, &counts).await,
        };
        if outcome.is_err() {
            counts.closed_by_server.fetch_add(1, Relaxed);
        } else if rng.below(10) == 0 {
            // Vanish: hold the socket, read nothing, answer no ping. The
            // heartbeat must have closed it by interval + timeout.
            counts.vanished.fetch_add(1, Relaxed);
            sleep(Duration::from_millis(2 * PING_MS + 2000)).await;
            if !closed_by_server(&mut c.conn, Duration::from_secs(3)).await {
                counts.not_reaped.fetch_add(1, Relaxed);
            }
        } else {
            c.conn.close().await;
        }
    }
}

/// Whether the server has closed `ws` (or does within `within`); what it
/// sent before is read and dropped.
async fn closed_by_server(ws: &mut WsConn, within: Duration) -> bool {
    let until_closed = async {
        loop {
            while let Ok(Some(m)) = ws.next_message() {
                ws.release(&m);
            }
            if ws.read_more().await.is_err() {
                return;
            }
        }
    };
    timeout(within, until_closed).await.is_ok()
}

/// A JSON-protocol life: two rooms, a message to one of them now and then,
/// sometimes a move to another room.
async fn json_life(
    ws: &mut WsConn,
    rng: &mut Rng,
    seed: u64,
    rooms: u64,
    end: Instant,
    counts: &Counts,
) -> Result<(), WsError> {
    let mut joined = [rng.below(rooms), rng.below(rooms)];
    for room in joined {
        join(ws, room);
    }
    let mut next_send = Instant::now() + rng.millis(1_000, 20_000);
    loop {
        tokio::select! {
            r = drain(ws) => { counts.received.fetch_add(r?, Relaxed); }
            _ = sleep_until(next_send) => {
                let room = joined[rng.below(2) as usize];
                let msg = format!(r#"{{"type":"message","room":"r{room}","payload":{{"from":{seed},"n":{}}}}}"#, rng.below(1 << 20));
                ws.send_text(msg.as_bytes());
                if rng.below(5) == 0 {
                    let k = rng.below(2) as usize;
                    ws.send_text(format!(r#"{{"type":"leave","room":"r{}"}}"#, joined[k]).as_bytes());
                    joined[k] = rng.below(rooms);
                    join(ws, joined[k]);
                }
                ws.flush().await?;
                counts.sent.fetch_add(1, Relaxed);
                next_send = Instant::now() + rng.millis(15_000, 25_000);
            }
            _ = sleep_until(end) => return Ok(()),
        }
    }
}

/// A Socket.IO life: Engine.IO heartbeats answered, an event now and then,
/// every other one asking for an ack (the server has no handler for it, so
/// the ack never comes: what it leaves behind must not pile up either).
async fn sio_life(c: &mut Client, rng: &mut Rng, seed: u64, end: Instant, counts: &Counts) -> Result<(), WsError> {
    let mut next_send = Instant::now() + rng.millis(1_000, 20_000);
    let mut ack = 0u64;
    loop {
        tokio::select! {
            r = c.conn.read_more() => {
                r?;
                let mut n = 0;
                c.drain(|_| n += 1)?;
                c.conn.flush().await?;
                counts.received.fetch_add(n, Relaxed);
            }
            _ = sleep_until(next_send) => {
                ack += 1;
                let id = if ack.is_multiple_of(2) { ack.to_string() } else { String::new() };
                let msg = format!(r#"42{id}["note",{{"from":{seed},"n":{}}}]"#, rng.below(1 << 20));
                c.conn.send_text(msg.as_bytes());
                c.conn.flush().await?;
                counts.sent.fetch_add(1, Relaxed);
                next_send = Instant::now() + rng.millis(15_000, 25_000);
            }
            _ = sleep_until(end) => return Ok(()),
        }
    }
}

/// `roomcast_<name> <value>` from the metrics text.
/// A gauge missing from the scrape is an error, never a zero that passes.
fn gauge(text: &str, name: &str) -> anyhow::Result<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .with_context(|| format!("no {name} in the metrics"))
}

async fn metrics(addr: SocketAddr) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n").await?;
    let mut out = String::new();
    timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await??;
    Ok(out)
}

async fn sample(addr: SocketAddr, pid: u32, t: f64, counts: &Counts) -> anyhow::Result<Sample> {
    let text = metrics(addr).await?;
    Ok(Sample {
        t,
        rss_kib: roomcast_bench::procfs::rss_kib(pid)?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64,
        tasks: gauge(&text, "roomcast_runtime_tasks")?,
        connections: gauge(&text, "roomcast_connections")?,
        rooms: gauge(&text, r#"roomcast_rooms{namespace="/"}"#)?,
        parked: gauge(&text, r#"roomcast_recovery_sessions{namespace="/"}"#)?,
        opened: counts.connects.load(Relaxed),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let nofile = rlimit::increase_nofile_limit(u64::MAX)?;
    if nofile < args.connections + 1000 {
        bail!("{} connections need more fds than the limit of {nofile}", args.connections);
    }
    let mut server = tokio::process::Command::new(&args.server)
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-path", "/metrics"])
        .args(["--ping-interval-ms", &PING_MS.to_string(), "--ping-timeout-ms", &PING_MS.to_string()])
        .args(["--recovery-window-ms", &RECOVERY_MS.to_string()])
        .env("RUST_LOG", "warn,roomcast=info")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.server.display()))?;
    let pid = server.id().context("server pid")?;
    let mut lines = BufReader::new(server.stdout.take().context("stdout")?).lines();
    let addr: SocketAddr = loop {
        let line = timeout(Duration::from_secs(20), lines.next_line()).await??.context("server exited")?;
        if let Some(rest) = line.split("serving http://").nth(1) {
            break rest.split('/').next().context("address")?.parse()?;
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    println!("soak: {} connections for {} s against {addr} (pid {pid})", args.connections, args.seconds);

    let counts = Arc::new(Counts::default());
    let baseline = sample(addr, pid, -1.0, &counts).await?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let samples = Arc::new(Mutex::new(vec![baseline]));
    let sampler = tokio::spawn({
        let (samples, counts, every) = (samples.clone(), counts.clone(), Duration::from_secs(args.sample_seconds));
        async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match sample(addr, pid, start.elapsed().as_secs_f64(), &counts).await {
                    Ok(s) => samples.lock().push(s),
                    Err(e) => eprintln!("soak: sample failed: {e:#}"),
                }
            }
        }
    });
    let progress = tokio::spawn({
        let (samples, counts) = (samples.clone(), counts.clone());
        async move {
            loop {
                sleep(Duration::from_secs(30)).await;
                if let Some(s) = samples.lock().last() {
                    println!(
                        "soak: {:>4.0} s  {:>6} connections  {:>5.0} MiB  {:>6} fds  {:>6} tasks  {} connects, {} sent, {} received",
                        s.t,
                        s.connections,
                        s.rss_kib as f64 / 1024.0,
                        s.fds,
                        s.tasks,
                        counts.connects.load(Relaxed),
                        counts.sent.load(Relaxed),
                        counts.received.load(Relaxed)
                    );
                }
            }
        }
    });
    let mut clients = tokio::task::JoinSet::new();
    let ramp = Duration::from_secs(args.ramp_seconds).as_secs_f64() / args.connections.max(1) as f64;
    for i in 0..args.connections {
        sleep_until(start + Duration::from_secs_f64(ramp * i as f64)).await;
        clients.spawn(client(addr, i + 1, args.rooms, deadline, counts.clone()));
    }
    while clients.join_next().await.is_some() {}
    // Vanished clients are reaped within the heartbeat; then everything is back.
    let drained = Instant::now() + Duration::from_millis(2 * PING_MS + 5000);
    loop {
        let s = sample(addr, pid, start.elapsed().as_secs_f64(), &counts).await?;
        if (s.connections + s.rooms == 0 && s.tasks <= baseline.tasks + 4) || Instant::now() > drained {
            break;
        }
        sleep(Duration::from_millis(500)).await;
    }
    // The sessions the last disconnects parked expire with the window.
    sleep(Duration::from_millis(RECOVERY_MS + 2000)).await;
    let after = sample(addr, pid, start.elapsed().as_secs_f64(), &counts).await?;
    sampler.abort();
    progress.abort();
    let mut all = samples.lock().clone();
    all.push(after);
    let _ = server.start_kill();
    let _ = server.wait().await;

    let steady_from = args.ramp_seconds as f64 + 30.0;
    // Every client's life ends by the deadline: the samples up to it.
    let steady_to = args.seconds.saturating_sub(args.sample_seconds) as f64;
    let steady: Vec<Sample> = all.iter().copied().filter(|s| s.t >= steady_from && s.t <= steady_to).collect();
    if steady.len() < 5 {
        bail!("too short a steady phase ({} samples): run longer than the ramp", steady.len());
    }
    let mut findings = verdict(&baseline, &steady, &after, Tolerance::default());
    let not_reaped = counts.not_reaped.load(Relaxed);
    findings.push(format!(
        "{}vanished clients the heartbeat had not closed after {} s: {not_reaped} of {}",
        if not_reaped > 0 { "FAIL " } else { "" },
        (2 * PING_MS + 2000 + 3000) / 1000,
        counts.vanished.load(Relaxed)
    ));
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("samples.json"), serde_json::to_string_pretty(&all)?)?;
    let title = format!("roomcast serve, {} churning connections for {} s", args.connections, args.seconds);
    chart(&all, &title, &args.out.join("soak.png"))?;
    let c = |a: &AtomicU64| a.load(Relaxed);
    let held = steady.iter().map(|s| s.connections).sum::<u64>() / steady.len() as u64;
    let mut md = format!(
        "# Soak\n\n{} connections (three in four on the JSON protocol, one in four on Socket.IO over \
         WebSocket) against `roomcast serve --recovery-window-ms {RECOVERY_MS}` (heartbeat {PING_MS} ms) for \
         {} s, {} rooms; ramp {} s; steady phase from {steady_from:.0} s. Written by `make soak` \
         (`bench/src/bin/roomcast-soak.rs`) on Linux {}, {} cores.\n\n\
         - connections opened: {} ({} of them Socket.IO; {} failed to connect); held on average in the \
         steady phase: {held}\n\
         - closed by the client: most; vanished without a close: {}; closed by the server: {}\n\
         - room messages and Socket.IO events sent: {}; frames received: {}\n\n## Verdict\n\n",
        args.connections,
        args.seconds,
        args.rooms,
        args.ramp_seconds,
        roomcast_bench::procfs::kernel(),
        roomcast_bench::procfs::cpu_count(),
        c(&counts.connects),
        c(&counts.sio_connects),
        c(&counts.connect_errors),
        c(&counts.vanished),
        c(&counts.closed_by_server),
        c(&counts.sent),
        c(&counts.received),
    );
    for f in &findings {
        md.push_str(&format!("- {f}\n"));
        println!("soak: {f}");
    }
    md.push_str("\n![memory, fds, tasks and connections over time](soak.png)\n");
    std::fs::write(args.out.join("SOAK.md"), md)?;
    println!("soak: wrote {}", args.out.join("SOAK.md").display());
    if findings.iter().any(|f| f.starts_with("LEAK") || f.starts_with("FAIL")) {
        bail!("the soak found a leak or a failure");
    }
    Ok(())
}
