//! `roomcast-bench`: the load generator and the orchestrator of `make bench`.
//!
//! ```text
//! roomcast-bench run [--quick] [--runs N] [--peers a,b] [--scenarios b1,b2,b3,b4]   # everything, writes bench/results/
//! roomcast-bench run --only b4 [--quick] [--runs N]                                 # B4 only, updated in bench/results/
//! roomcast-bench gen --addr 127.0.0.1:3000 --proto sio --scenario b1 [--pid P]      # one scenario against a running server
//! roomcast-bench gen --addr A --addr-b B --proto sio --scenario b4                  # B4 against two running cluster nodes
//! roomcast-bench report                                                              # redraw RESULTS.md from results.json
//! ```
//!
//! The generator runs on one current-thread tokio runtime pinned to its own
//! core; peers (B4: both nodes and redis-server) are pinned to the other core
//! with `taskset`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use roomcast_bench::orchestrate::{self, PEERS, Paths, Peer, Plan, Scenario};
use roomcast_bench::proto::Proto;
use roomcast_bench::report::{self, Results};
use roomcast_bench::scenario::b1::B1Params;
use roomcast_bench::scenario::b2::B2Params;
use roomcast_bench::scenario::b3::B3Params;
use roomcast_bench::scenario::b4::{B4Params, ClusterTarget};
use roomcast_bench::scenario::{Target, b1, b2, b3, b4};

#[derive(Parser)]
#[command(name = "roomcast-bench", about = "Side-by-side benchmarks of roomcast and other real-time servers")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the scenarios against every peer and write bench/results/.
    Run(RunArgs),
    /// Run one scenario against a server that is already listening; print JSON.
    Gen(GenArgs),
    /// Rewrite RESULTS.md and the charts from results.json.
    Report {
        /// Results directory (default bench/results).
        #[arg(long)]
        results: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct Params {
    /// B1 and B4 subscribers (B4: half on each node).
    #[arg(long)]
    subscribers: Option<usize>,
    /// B1 and B4 messages in flight during the throughput phase.
    #[arg(long)]
    window: Option<usize>,
    /// Measured seconds (B1 and B4 throughput, B3).
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds before each measurement.
    #[arg(long)]
    warmup: Option<f64>,
    /// B1 and B4 latency phase: offered messages per second (0 skips the phase).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// B1 and B4 latency phase seconds.
    #[arg(long)]
    latency_duration: Option<f64>,
    /// B2 idle clients.
    #[arg(long)]
    idle_clients: Option<usize>,
    /// B3 clients.
    #[arg(long)]
    ack_clients: Option<usize>,
}

#[derive(Args)]
struct RunArgs {
    /// Tiny parameters for development: 100 subscribers (B4: 50 per node), 2 s, 1 run, 1000 idle clients.
    #[arg(long)]
    quick: bool,
    /// Repetitions of every measurement (default 3; 1 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Comma-separated peers (default all): roomcast-sio, roomcast-json, node-sio, socketioxide, python-sio, node-ws, limit.
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<String>>,
    /// Comma-separated scenarios (default b1,b2,b3,b4); results.json is written afresh.
    #[arg(long, value_delimiter = ',', conflicts_with = "only")]
    scenarios: Option<Vec<String>>,
    /// Run only these scenarios (e.g. `--only b4`) and update them in the existing results.json,
    /// keeping the other scenarios' runs (RESULTS.md says when each was measured).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Results directory (default bench/results).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Core the servers are pinned to (B4: both nodes and redis-server).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core the generator is pinned to.
    #[arg(long, default_value_t = 1)]
    generator_core: usize,
    /// Do not pin anything (results are then not comparable).
    #[arg(long)]
    no_pin: bool,
    #[command(flatten)]
    params: Params,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProtoArg {
    Sio,
    Json,
    Raw,
}

#[derive(Args)]
struct GenArgs {
    /// Server address (B4: node A, with the publisher).
    #[arg(long)]
    addr: SocketAddr,
    /// B4: node B's address.
    #[arg(long)]
    addr_b: Option<SocketAddr>,
    #[arg(long, value_enum)]
    proto: ProtoArg,
    /// b1, b2, b3 or b4.
    #[arg(long)]
    scenario: String,
    /// The server's pid, for its CPU time and RSS (B4: node A's).
    #[arg(long)]
    pid: Option<u32>,
    /// B4: node B's pid.
    #[arg(long)]
    pid_b: Option<u32>,
    /// B4: redis-server's pid.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// Pin the generator to this core.
    #[arg(long)]
    generator_core: Option<usize>,
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    params: Params,
}

fn secs(v: Option<f64>, default: Duration) -> Duration {
    v.filter(|s| s.is_finite() && *s >= 0.0).map_or(default, Duration::from_secs_f64)
}

struct AllParams {
    b1: B1Params,
    b2: B2Params,
    b3: B3Params,
    b4: B4Params,
}

fn build_params(p: &Params, quick: bool) -> AllParams {
    let (mut b1p, mut b2p, mut b3p) = (B1Params::default(), B2Params::default(), B3Params::default());
    let mut b4p = B4Params::default();
    if quick {
        b1p.subscribers = 100;
        b1p.warmup = Duration::from_millis(500);
        b1p.measure = Duration::from_secs(2);
        b1p.latency_duration = Duration::from_secs(2);
        b2p.clients = 1000;
        b2p.settle = Duration::from_secs(1);
        b3p.clients = 20;
        b3p.warmup = Duration::from_millis(500);
        b3p.measure = Duration::from_secs(2);
        b4p.subscribers = 100;
        b4p.warmup = Duration::from_millis(500);
        b4p.measure = Duration::from_secs(2);
        b4p.latency_duration = Duration::from_secs(2);
    }
    if let Some(n) = p.subscribers {
        b1p.subscribers = n.max(1);
        b4p.subscribers = n.max(2);
    }
    if let Some(w) = p.window {
        b1p.window = w.max(1);
        b4p.window = w.max(1);
    }
    b1p.measure = secs(p.duration, b1p.measure);
    b3p.measure = secs(p.duration, b3p.measure);
    b4p.measure = secs(p.duration, b4p.measure);
    b1p.warmup = secs(p.warmup, b1p.warmup);
    b3p.warmup = secs(p.warmup, b3p.warmup);
    b4p.warmup = secs(p.warmup, b4p.warmup);
    if let Some(r) = p.latency_rate {
        b1p.latency_rate = r.max(0.0);
        b4p.latency_rate = r.max(0.0);
    }
    b1p.latency_duration = secs(p.latency_duration, b1p.latency_duration);
    b4p.latency_duration = secs(p.latency_duration, b4p.latency_duration);
    if let Some(n) = p.idle_clients {
        b2p.clients = n.max(1);
    }
    if let Some(n) = p.ack_clients {
        b3p.clients = n.max(1);
    }
    AllParams { b1: b1p, b2: b2p, b3: b3p, b4: b4p }
}

/// Pin this process's (single) thread to `core`; threads started later inherit it.
fn pin_self(core: usize) -> anyhow::Result<()> {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.len() < 2 {
        bail!("pinning needs at least 2 cores, this machine shows {} (use --no-pin)", ids.len());
    }
    let id = ids.into_iter().find(|c| c.id == core).with_context(|| format!("no core {core}"))?;
    if !core_affinity::set_for_current(id) {
        bail!("could not pin the generator to core {core}");
    }
    Ok(())
}

/// Raise the soft open-files limit to the hard one (B2 holds thousands of sockets).
fn raise_nofile(need: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < need as u64 => {
            eprintln!("warning: open-files limit is {n}, B2 needs about {need}: raise the hard limit (ulimit -Hn)")
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not raise the open-files limit: {e}"),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Run(args) => run(args),
        Cmd::Gen(args) => generate(args),
        Cmd::Report { results } => {
            let paths = Paths::discover(results)?;
            let results = report::read(&paths.results)?;
            let path = report::write(&results, &paths.results)?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let paths = Paths::discover(args.results.clone())?;
    let peers: Vec<Peer> = match &args.peers {
        None => PEERS.to_vec(),
        Some(names) => names
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                Peer::by_name(n).with_context(|| {
                    format!(
                        "unknown peer {n:?}; known: {}",
                        PEERS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let scenarios: Vec<Scenario> = match args.only.as_ref().or(args.scenarios.as_ref()) {
        None => Scenario::ALL.to_vec(),
        Some(list) => Scenario::parse_list(list)?,
    };
    if scenarios.is_empty() {
        bail!("no scenario to run");
    }
    // A peer that takes part in none of the scenarios is left out (B4 runs three of them).
    let named = args.peers.is_some();
    let (peers, idle): (Vec<Peer>, Vec<Peer>) = peers.into_iter().partition(|p| scenarios.iter().any(|&s| p.runs(s)));
    if named && !idle.is_empty() {
        eprintln!(
            "roomcast-bench: {} take(s) no part in {}; left out",
            idle.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
            scenarios.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
    }
    if peers.is_empty() {
        bail!("no peer takes part in the scenarios asked for");
    }
    // --only updates the existing results: read them now, not after a long run.
    let earlier = match &args.only {
        Some(_) if paths.results.join("results.json").is_file() => {
            let old = report::read(&paths.results)
                .with_context(|| format!("--only updates {}/results.json, which", paths.results.display()))?;
            if old.plan.quick != args.quick {
                bail!(
                    "{}/results.json holds a {} run: --only would mix it with a {} one (use --results DIR)",
                    paths.results.display(),
                    if old.plan.quick { "--quick" } else { "full" },
                    if args.quick { "--quick" } else { "full" }
                );
            }
            Some(old)
        }
        _ => None,
    };
    let AllParams { b1: b1p, b2: b2p, b3: b3p, b4: b4p } = build_params(&args.params, args.quick);
    let (server_core, generator_core) =
        if args.no_pin { (None, None) } else { (Some(args.server_core), Some(args.generator_core)) };
    if let Some(core) = generator_core {
        pin_self(core)?;
        if std::process::Command::new("taskset").arg("--version").output().is_err() {
            bail!("taskset is missing (Debian package util-linux); or run with --no-pin");
        }
    }
    raise_nofile(b2p.clients + 256);
    let plan = Plan {
        peer_names: peers.iter().map(|p| p.name.to_owned()).collect(),
        peers,
        scenarios,
        runs: args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
        b1: b1p,
        b2: b2p,
        b3: b3p,
        b4: b4p,
        server_core,
        generator_core,
        quick: args.quick,
    };
    eprintln!(
        "roomcast-bench: peers {}; scenarios {}; {} run(s) each; results in {}",
        plan.peer_names.join(", "),
        plan.scenarios.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        plan.runs,
        paths.results.display()
    );
    let records = runtime()?.block_on(orchestrate::run_plan(&plan, &paths))?;
    let mut results = Results { machine: orchestrate::machine(&paths), plan, records, kept: Vec::new() };
    if let Some(old) = earlier {
        results = report::merge(old, results);
    }
    let path = report::write(&results, &paths.results)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn generate(args: GenArgs) -> anyhow::Result<()> {
    if let Some(core) = args.generator_core {
        pin_self(core)?;
    }
    let params = build_params(&args.params, args.quick);
    raise_nofile(params.b2.clients + 256);
    let proto = match args.proto {
        ProtoArg::Sio => Proto::SocketIo,
        ProtoArg::Json => Proto::Json,
        ProtoArg::Raw => Proto::Raw,
    };
    let target = Target { addr: args.addr, proto, pid: args.pid };
    let scenario = Scenario::parse(&args.scenario).with_context(|| format!("unknown scenario {:?}", args.scenario))?;
    let progress = |m: &str| eprintln!("{scenario}: {m}");
    let rt = runtime()?;
    let json = match scenario {
        Scenario::B1 => serde_json::to_string_pretty(&rt.block_on(b1::run(target, &params.b1, &progress))?)?,
        Scenario::B2 => serde_json::to_string_pretty(&rt.block_on(b2::run(target, &params.b2, &progress))?)?,
        Scenario::B3 => serde_json::to_string_pretty(&rt.block_on(b3::run(target, &params.b3, &progress))?)?,
        Scenario::B4 => {
            let addr_b = args.addr_b.context("B4 needs node B's address (--addr-b)")?;
            let cluster = ClusterTarget {
                a: target,
                b: Target { addr: addr_b, proto, pid: args.pid_b },
                redis_pid: args.redis_pid,
            };
            serde_json::to_string_pretty(&rt.block_on(b4::run(cluster, &params.b4, &progress))?)?
        }
    };
    println!("{json}");
    Ok(())
}
