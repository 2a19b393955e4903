//! `bench/results/`: `results.json` (every run), `RESULTS.md` (machine,
//! versions, tables with median and spread and ratios to roomcast, the
//! issue's targets) and PNG charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::orchestrate::{Machine, Outcome, PEERS, Peer, Plan, RunRecord, Scenario};
use crate::scenario::b1::B1Result;
use crate::scenario::b2::B2Result;
use crate::scenario::b3::B3Result;
use crate::scenario::b4::B4Result;
use crate::stats::Spread;

/// Below this share of its core the generator is not the bottleneck.
pub const GENERATOR_LIMIT: f64 = 0.90;

/// Everything a benchmark session produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub machine: Machine,
    pub plan: Plan,
    pub records: Vec<RunRecord>,
    /// Scenarios whose runs come from earlier sessions (`run --only` keeps
    /// them); `machine` and `plan.runs` describe the latest session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptSession>,
}

/// Scenarios measured in an earlier session and kept by `run --only`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptSession {
    pub scenarios: Vec<Scenario>,
    pub date: String,
    pub roomcast_commit: String,
    pub runs: usize,
}

/// `new` (a `run --only` session) with the records of `old` for every
/// scenario `new` did not run; the plan's parameters of those scenarios and
/// its peers are carried over, and `kept` says when they were measured.
pub fn merge(old: Results, new: Results) -> Results {
    let new_scenarios = new.plan.scenarios.clone();
    let ran = |s: &Scenario| new_scenarios.contains(s);
    let mut kept: Vec<KeptSession> = old
        .kept
        .iter()
        .map(|k| KeptSession { scenarios: k.scenarios.iter().copied().filter(|s| !ran(s)).collect(), ..k.clone() })
        .filter(|k| !k.scenarios.is_empty())
        .collect();
    let earlier_own: Vec<Scenario> = old
        .plan
        .scenarios
        .iter()
        .copied()
        .filter(|s| !ran(s) && !old.kept.iter().any(|k| k.scenarios.contains(s)))
        .collect();
    if !earlier_own.is_empty() {
        kept.push(KeptSession {
            scenarios: earlier_own,
            date: old.machine.date.clone(),
            roomcast_commit: old.machine.roomcast_commit.clone(),
            runs: old.plan.runs,
        });
    }
    let mut plan = new.plan;
    let mut scenarios: Vec<Scenario> =
        plan.scenarios.iter().chain(old.plan.scenarios.iter().filter(|s| !ran(s))).copied().collect();
    scenarios.sort_by_key(|s| *s as u8);
    scenarios.dedup();
    let kept_scenario = |s: Scenario| !plan.scenarios.contains(&s) && old.plan.scenarios.contains(&s);
    if kept_scenario(Scenario::B1) {
        plan.b1 = old.plan.b1.clone();
    }
    if kept_scenario(Scenario::B2) {
        plan.b2 = old.plan.b2.clone();
    }
    if kept_scenario(Scenario::B3) {
        plan.b3 = old.plan.b3.clone();
    }
    if kept_scenario(Scenario::B4) {
        plan.b4 = old.plan.b4.clone();
    }
    let names: Vec<String> = PEERS
        .iter()
        .map(|p| p.name.to_owned())
        .filter(|n| plan.peer_names.contains(n) || old.plan.peer_names.contains(n))
        .collect();
    plan.peers = names.iter().filter_map(|n| Peer::by_name(n)).collect();
    plan.peer_names = names;
    plan.scenarios = scenarios;
    let mut records: Vec<RunRecord> = old.records.into_iter().filter(|r| !ran(&r.scenario)).collect();
    records.extend(new.records);
    records.sort_by_key(|r| r.scenario as u8);
    Results { machine: new.machine, plan, records, kept }
}

/// Above this share of a core used by other processes, a run is flagged.
pub const OTHER_LOAD_LIMIT: f64 = 0.10;

/// The largest share of a core that other processes used during a measured window of `o`.
pub fn other_load(o: &Outcome) -> Option<f64> {
    let samples: Vec<f64> = match o {
        Outcome::B1(r) => [r.throughput.as_ref().map(|t| t.cpu), r.latency.as_ref().map(|l| l.cpu)]
            .into_iter()
            .flatten()
            .filter_map(|c| c.other_share())
            .collect(),
        Outcome::B3(r) => r.cpu.other_share().into_iter().collect(),
        Outcome::B4(r) => [r.throughput.as_ref().map(|t| t.cpu), r.latency.as_ref().map(|l| l.cpu)]
            .into_iter()
            .flatten()
            .filter_map(|c| c.other_share())
            .collect(),
        Outcome::B2(_) | Outcome::Failed { .. } => Vec::new(),
    };
    samples.into_iter().reduce(f64::max)
}

/// A short summary of one run for the progress line.
pub fn one_line(o: &Outcome) -> String {
    let mut line = one_line_inner(o);
    if let Some(other) = other_load(o).filter(|&x| x > OTHER_LOAD_LIMIT) {
        let _ = write!(line, "; WARNING: other processes used {:.0}% of a core", other * 100.0);
    }
    line
}

fn one_line_inner(o: &Outcome) -> String {
    match o {
        Outcome::B1(r) => {
            let mut s = String::new();
            if let Some(t) = &r.throughput {
                let _ = write!(
                    s,
                    "{}/s deliveries, server {} µs/delivery, server core {}, generator core {}",
                    human(t.deliveries_per_sec),
                    opt(t.server_us_per_delivery, 3),
                    pct(t.cpu.server_share()),
                    pct(Some(t.cpu.gen_share()))
                );
            }
            if let Some(l) = &r.latency {
                let _ = write!(s, "; latency p50 {:.2} ms p99 {:.2} ms", l.p50_us / 1e3, l.p99_us / 1e3);
            }
            let _ = write!(s, "; {}", r.tally);
            if r.errors > 0 {
                let _ = write!(s, "; {} errors (first: {})", r.errors, r.error_samples.first().map_or("", |e| e));
            }
            if let Some(f) = &r.failure {
                let _ = write!(s, "; ENDED EARLY: {f}");
            }
            s
        }
        Outcome::B2(r) => format!(
            "{} clients, RSS {:.1} → {:.1} MiB, {:.2} KiB/connection, connected in {:.1} s",
            r.clients,
            r.rss_before_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            r.kib_per_connection,
            r.connect_seconds
        ),
        Outcome::B3(r) => format!(
            "{}/s round trips, p50 {:.0} µs p99 {:.0} µs, server {} µs/round trip, server core {}, generator core {}{}",
            human(r.round_trips_per_sec),
            r.p50_us,
            r.p99_us,
            opt(r.server_us_per_round_trip, 2),
            pct(r.cpu.server_share()),
            pct(Some(r.cpu.gen_share())),
            if r.errors > 0 { format!("; {} errors: {:?}", r.errors, r.error_samples.first()) } else { String::new() }
        ),
        Outcome::B4(r) => {
            let mut s = String::new();
            if let Some(t) = &r.throughput {
                let share = |v: Option<f64>| pct(v.map(|c| c / t.cpu.wall_s));
                let _ = write!(
                    s,
                    "{}/s cross-node deliveries ({}/s in all), servers {} µs/cross-node delivery, node A {} node B {} redis {} of the server core, generator core {}",
                    human(t.cross_deliveries_per_sec),
                    human(t.deliveries_per_sec),
                    opt(t.server_us_per_cross_delivery, 3),
                    share(t.processes.node_a_s),
                    share(t.processes.node_b_s),
                    share(t.processes.redis_s),
                    pct(Some(t.cpu.gen_share()))
                );
            }
            if let Some(l) = &r.latency {
                let _ = write!(s, "; cross-node latency p50 {:.2} ms p99 {:.2} ms", l.p50_us / 1e3, l.p99_us / 1e3);
            }
            let _ = write!(s, "; {} (node B: {})", r.tally, r.cross_tally);
            if r.errors > 0 {
                let _ = write!(s, "; {} errors (first: {})", r.errors, r.error_samples.first().map_or("", |e| e));
            }
            if let Some(f) = &r.failure {
                let _ = write!(s, "; ENDED EARLY: {f}");
            }
            s
        }
        Outcome::Failed { error } => format!("FAILED: {error}"),
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{:.0}%", v * 100.0))
}

/// Significant-digit formatting for table cells.
fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e4 {
        human(v)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(s: Option<Spread>, f: fn(f64) -> String) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.runs == 1 => f(s.median),
        Some(s) => format!("{} ({}–{})", f(s.median), f(s.min), f(s.max)),
    }
}

fn percent_cell(s: Option<Spread>) -> String {
    cell(s, |v| format!("{:.0}%", v * 100.0))
}

fn ratio(v: Option<Spread>, base: Option<Spread>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if b.median > 0.0 => format!("×{:.2}", v.median / b.median),
        _ => "—".into(),
    }
}

/// Runs of one peer in one scenario.
struct PeerRuns<'a> {
    peer: Peer,
    outcomes: Vec<&'a Outcome>,
}

impl<'a> PeerRuns<'a> {
    fn failures(&self) -> Vec<&'a str> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Failed { error } => Some(error.as_str()),
                _ => None,
            })
            .collect()
    }

    fn b1(&self) -> Vec<&'a B1Result> {
        self.outcomes.iter().filter_map(|o| if let Outcome::B1(r) = o { Some(r) } else { None }).collect()
    }

    fn b2(&self) -> Vec<&'a B2Result> {
        self.outcomes.iter().filter_map(|o| if let Outcome::B2(r) = o { Some(r) } else { None }).collect()
    }

    fn b3(&self) -> Vec<&'a B3Result> {
        self.outcomes.iter().filter_map(|o| if let Outcome::B3(r) = o { Some(r) } else { None }).collect()
    }

    fn b4(&self) -> Vec<&'a B4Result> {
        self.outcomes.iter().filter_map(|o| if let Outcome::B4(r) = o { Some(r) } else { None }).collect()
    }
}

fn runs_of<'a>(results: &'a Results, scenario: Scenario) -> Vec<PeerRuns<'a>> {
    PEERS
        .iter()
        .filter(|p| p.runs(scenario))
        .map(|&peer| PeerRuns {
            peer,
            outcomes: results
                .records
                .iter()
                .filter(|r| r.peer == peer.name && r.scenario == scenario)
                .map(|r| &r.outcome)
                .collect(),
        })
        .filter(|p| !p.outcomes.is_empty())
        .collect()
}

fn spread(values: impl Iterator<Item = f64>) -> Option<Spread> {
    Spread::of(&values.collect::<Vec<_>>())
}

/// The figures compared across peers, per peer.
#[derive(Debug, Clone, Default)]
struct Figures {
    b1_rate: Option<Spread>,
    b1_cpu: Option<Spread>,
    b1_server_share: Option<Spread>,
    b1_gen_share: Option<Spread>,
    b1_lat_p50: Option<Spread>,
    b1_lat_p99: Option<Spread>,
    b1_lat_rate: Option<Spread>,
    b1_lat_cpu: Option<Spread>,
    b1_lat_server_share: Option<Spread>,
    b1_clean: Option<bool>,
    b2_kib: Option<Spread>,
    b3_rate: Option<Spread>,
    b3_cpu: Option<Spread>,
    b3_p50: Option<Spread>,
    b3_p99: Option<Spread>,
    b3_gen_share: Option<Spread>,
    b3_server_share: Option<Spread>,
    b4_rate: Option<Spread>,
    b4_all_rate: Option<Spread>,
    b4_cpu: Option<Spread>,
    b4_a_share: Option<Spread>,
    b4_b_share: Option<Spread>,
    b4_redis_share: Option<Spread>,
    b4_gen_share: Option<Spread>,
    b4_lat_rate: Option<Spread>,
    b4_lat_p50: Option<Spread>,
    b4_lat_p99: Option<Spread>,
    b4_lat_cpu: Option<Spread>,
    b4_clean: Option<bool>,
}

impl Figures {
    fn b1_valid(&self) -> Option<bool> {
        self.b1_gen_share.map(|g| g.median < GENERATOR_LIMIT)
    }

    fn b3_valid(&self) -> Option<bool> {
        self.b3_gen_share.map(|g| g.median < GENERATOR_LIMIT)
    }

    fn b4_valid(&self) -> Option<bool> {
        self.b4_gen_share.map(|g| g.median < GENERATOR_LIMIT)
    }
}

fn figures(results: &Results, peer: &str) -> Figures {
    let mut f = Figures::default();
    let pick = |s: Scenario| runs_of(results, s).into_iter().find(|r| r.peer.name == peer);
    if let Some(r) = pick(Scenario::B1) {
        let b1 = r.b1();
        let thr: Vec<_> = b1.iter().filter_map(|r| r.throughput.as_ref()).collect();
        f.b1_rate = spread(thr.iter().map(|t| t.deliveries_per_sec));
        f.b1_cpu = spread(thr.iter().filter_map(|t| t.server_us_per_delivery));
        f.b1_server_share = spread(thr.iter().filter_map(|t| t.cpu.server_share()));
        f.b1_gen_share = spread(thr.iter().map(|t| t.cpu.gen_share()));
        let lat: Vec<_> = b1.iter().filter_map(|r| r.latency.as_ref()).collect();
        f.b1_lat_p50 = spread(lat.iter().map(|l| l.p50_us / 1e3));
        f.b1_lat_p99 = spread(lat.iter().map(|l| l.p99_us / 1e3));
        f.b1_lat_rate = spread(lat.iter().map(|l| l.deliveries_per_sec));
        f.b1_lat_cpu = spread(lat.iter().filter_map(|l| l.server_us_per_delivery));
        f.b1_lat_server_share = spread(lat.iter().filter_map(|l| l.cpu.server_share()));
        if !b1.is_empty() {
            f.b1_clean = Some(b1.iter().all(|r| r.tally.is_clean() && r.failure.is_none()));
        }
    }
    if let Some(r) = pick(Scenario::B2) {
        f.b2_kib = spread(r.b2().iter().map(|r| r.kib_per_connection));
    }
    if let Some(r) = pick(Scenario::B3) {
        let b3 = r.b3();
        f.b3_rate = spread(b3.iter().map(|r| r.round_trips_per_sec));
        f.b3_cpu = spread(b3.iter().filter_map(|r| r.server_us_per_round_trip));
        f.b3_p50 = spread(b3.iter().map(|r| r.p50_us));
        f.b3_p99 = spread(b3.iter().map(|r| r.p99_us));
        f.b3_gen_share = spread(b3.iter().map(|r| r.cpu.gen_share()));
        f.b3_server_share = spread(b3.iter().filter_map(|r| r.cpu.server_share()));
    }
    if let Some(r) = pick(Scenario::B4) {
        let b4 = r.b4();
        let thr: Vec<_> = b4.iter().filter_map(|r| r.throughput.as_ref()).collect();
        f.b4_rate = spread(thr.iter().map(|t| t.cross_deliveries_per_sec));
        f.b4_all_rate = spread(thr.iter().map(|t| t.deliveries_per_sec));
        f.b4_cpu = spread(thr.iter().filter_map(|t| t.server_us_per_cross_delivery));
        f.b4_a_share = spread(thr.iter().filter_map(|t| t.processes.node_a_s.map(|c| c / t.cpu.wall_s)));
        f.b4_b_share = spread(thr.iter().filter_map(|t| t.processes.node_b_s.map(|c| c / t.cpu.wall_s)));
        f.b4_redis_share = spread(thr.iter().filter_map(|t| t.processes.redis_s.map(|c| c / t.cpu.wall_s)));
        f.b4_gen_share = spread(thr.iter().map(|t| t.cpu.gen_share()));
        let lat: Vec<_> = b4.iter().filter_map(|r| r.latency.as_ref()).collect();
        f.b4_lat_rate = spread(lat.iter().map(|l| l.cross_deliveries_per_sec));
        f.b4_lat_p50 = spread(lat.iter().map(|l| l.p50_us / 1e3));
        f.b4_lat_p99 = spread(lat.iter().map(|l| l.p99_us / 1e3));
        f.b4_lat_cpu = spread(lat.iter().filter_map(|l| l.server_us_per_cross_delivery));
        if !b4.is_empty() {
            f.b4_clean = Some(b4.iter().all(|r| r.tally.is_clean() && r.failure.is_none()));
        }
    }
    f
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no (generator-bound)",
        None => "—",
    }
}

/// Write `results.json`, `RESULTS.md` and the charts into `dir`; returns the RESULTS.md path.
pub fn write(results: &Results, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(results)?)?;
    let chart_note = match charts(results, dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("charts not drawn: {e:#}");
            vec![format!("(charts not drawn: {e:#})")]
        }
    };
    let mut md = markdown(results, &chart_note);
    // Hand-kept before/after figures of core changes survive regeneration.
    if dir.join("HISTORY.md").exists() {
        md.push_str("\n## Before / after core changes\n\nSee [HISTORY.md](HISTORY.md): what was profiled, what changed in the core, the figures before and after, and what the remaining gaps are made of.\n");
    }
    let path = dir.join("RESULTS.md");
    std::fs::write(&path, md)?;
    Ok(path)
}

/// Read `results.json` back (to redraw the report).
pub fn read(dir: &Path) -> anyhow::Result<Results> {
    Ok(serde_json::from_str(&std::fs::read_to_string(dir.join("results.json"))?)?)
}

fn markdown(results: &Results, charts: &[String]) -> String {
    let m = &results.machine;
    let plan = &results.plan;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "# roomcast benchmarks\n");
    let now: Vec<String> = plan
        .scenarios
        .iter()
        .filter(|s| !results.kept.iter().any(|k| k.scenarios.contains(s)))
        .map(ToString::to_string)
        .collect();
    let generated = if results.kept.is_empty() {
        format!(
            "Generated by `{}` on {}. Every figure is measured in the same session, side by side; cells read \
             `median (min–max)` over {} run(s).",
            if plan.quick { "make bench-quick" } else { "make bench" },
            m.date,
            plan.runs
        )
    } else {
        format!(
            "Generated by `roomcast-bench run --only {}` on {}, which re-ran {} and kept the other scenarios' runs \
             from earlier sessions (listed below). Within a scenario every figure is measured in the same session, \
             side by side; cells read `median (min–max)` over the runs.",
            now.join(",").to_lowercase(),
            m.date,
            now.join(", ")
        )
    };
    let _ = writeln!(
        w,
        "{generated} Ratios divide a peer's median by roomcast's (\"vs roomcast\" ×2.00 = twice roomcast's figure; \
         Socket.IO peers and the limit are compared with roomcast (Socket.IO), JSON-protocol peers with roomcast \
         (JSON)).\n"
    );
    if plan.quick {
        let _ = writeln!(w, "**Quick run: tiny parameters, for development only — not comparable with a full run.**\n");
    }
    if !results.kept.is_empty() {
        let _ = writeln!(w, "| scenarios | measured | roomcast commit | runs |\n|---|---|---|---|");
        let _ = writeln!(w, "| {} | {} | {} | {} |", now.join(", "), m.date, m.roomcast_commit, plan.runs);
        for k in &results.kept {
            let names: Vec<String> = k.scenarios.iter().map(ToString::to_string).collect();
            let _ = writeln!(w, "| {} | {} | {} | {} |", names.join(", "), k.date, k.roomcast_commit, k.runs);
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "## Machine and versions\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    let rows = [
        ("CPU", format!("{} ({} cores)", m.cpu, m.cores)),
        ("kernel", m.kernel.clone()),
        (
            "pinning",
            format!(
                "server on core {}{}, generator on core {}",
                plan.server_core.map_or("(not pinned)".into(), |c| c.to_string()),
                if plan.scenarios.contains(&Scenario::B4) { " (B4: both nodes and redis-server)" } else { "" },
                plan.generator_core.map_or("(not pinned)".into(), |c| c.to_string())
            ),
        ),
        (
            "roomcast",
            format!(
                "commit {} ({}){}",
                m.roomcast_commit,
                m.rustc,
                if results.kept.is_empty() { "" } else { "; the latest session's, see the sessions above" }
            ),
        ),
        ("Node.js", m.node.clone()),
        ("socket.io", m.socket_io.clone()),
        ("ws", m.ws.clone()),
        ("Python", m.python.clone()),
        ("python-socketio", format!("{} (aiohttp {})", m.python_socketio, m.aiohttp)),
        ("socketioxide", m.socketioxide.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(w, "| {k} | {v} |");
    }
    if plan.scenarios.contains(&Scenario::B4) {
        let _ = writeln!(w, "| redis-server (B4) | {} |", m.redis_server);
        let _ = writeln!(
            w,
            "| @socket.io/redis-adapter (B4) | {} (node-redis {}) |",
            m.socket_io_redis_adapter, m.node_redis
        );
    }
    let _ = writeln!(w);
    let peers: Vec<(Peer, Figures)> = PEERS
        .iter()
        .filter(|p| plan.peer_names.iter().any(|n| n == p.name))
        .map(|p| (*p, figures(results, p.name)))
        .collect();
    let base =
        |p: &Peer| peers.iter().find(|(q, _)| q.name == p.baseline()).map(|(_, f)| f.clone()).unwrap_or_default();

    let _ = writeln!(w, "## Targets (issue 4)\n");
    targets(w, &peers);

    if plan.scenarios.contains(&Scenario::B1) {
        let b = &plan.b1;
        let _ =
            writeln!(w, "## B1 fan-out: 1 room × {} subscribers, one publisher, 100-byte payloads\n", b.subscribers);
        let _ = writeln!(
            w,
            "Throughput: the publisher keeps {} messages in flight (a message is in flight until every \
             subscriber has it), {:.1} s measured after {:.1} s of warm-up. The throughput counts only while the \
             generator's core is below {:.0}% busy; otherwise the server CPU per delivery is the comparison.\n",
            b.window,
            b.measure.as_secs_f64(),
            b.warmup.as_secs_f64(),
            GENERATOR_LIMIT * 100.0
        );
        let _ = writeln!(
            w,
            "| peer | deliveries/s | vs roomcast | server CPU µs/delivery | vs roomcast | server core | generator core | throughput counts | deliveries checked |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
        for (p, f) in peers.iter().filter(|(p, _)| p.runs(Scenario::B1)) {
            let b = base(p);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.title,
                cell(f.b1_rate, num),
                ratio(f.b1_rate, b.b1_rate),
                cell(f.b1_cpu, num),
                ratio(f.b1_cpu, b.b1_cpu),
                percent_cell(f.b1_server_share),
                percent_cell(f.b1_gen_share),
                yes_no(f.b1_valid()),
                b1_check(results, p.name)
            );
        }
        if b.latency_rate > 0.0 {
            let _ = writeln!(
                w,
                "\nLatency at a fixed offered load of {} messages/s ({} deliveries/s) for {:.1} s, from the send time \
                 in each payload to its arrival, over every delivery:\n",
                b.latency_rate,
                num(b.latency_rate * b.subscribers as f64),
                b.latency_duration.as_secs_f64()
            );
            let _ = writeln!(
                w,
                "| peer | achieved deliveries/s | p50 ms | p99 ms | server CPU µs/delivery | vs roomcast | server core |"
            );
            let _ = writeln!(w, "|---|---|---|---|---|---|---|");
            for (p, f) in peers.iter().filter(|(p, _)| p.runs(Scenario::B1)) {
                let b = base(p);
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    p.title,
                    cell(f.b1_lat_rate, num),
                    cell(f.b1_lat_p50, num),
                    cell(f.b1_lat_p99, num),
                    cell(f.b1_lat_cpu, num),
                    ratio(f.b1_lat_cpu, b.b1_lat_cpu),
                    percent_cell(f.b1_lat_server_share)
                );
            }
        }
        let _ = writeln!(w);
    }

    if plan.scenarios.contains(&Scenario::B2) {
        let _ = writeln!(
            w,
            "## B2 idle memory: {} connected idle clients\n\nServer `VmRSS` after the clients connected minus before \
             (after a few warm-up connections came and went), per connection. Socket.IO peers: Engine.IO \
             handshake and namespace connected; JSON-protocol peers: upgraded WebSocket, in no room.\n",
            plan.b2.clients
        );
        let _ = writeln!(w, "| peer | KiB per connection | vs roomcast | RSS before → after (MiB) | connect time s |");
        let _ = writeln!(w, "|---|---|---|---|---|");
        for (p, f) in peers.iter().filter(|(p, _)| p.runs(Scenario::B2)) {
            let runs = runs_of(results, Scenario::B2);
            let b2 = runs.iter().find(|r| r.peer.name == p.name).map(|r| r.b2()).unwrap_or_default();
            let before = spread(b2.iter().map(|r| r.rss_before_kib as f64 / 1024.0));
            let after = spread(b2.iter().map(|r| r.rss_after_kib as f64 / 1024.0));
            let secs = spread(b2.iter().map(|r| r.connect_seconds));
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} → {} | {} |",
                p.title,
                cell(f.b2_kib, num),
                ratio(f.b2_kib, base(p).b2_kib),
                cell(before, num),
                cell(after, num),
                cell(secs, num)
            );
        }
        let _ = writeln!(w);
    }

    if plan.scenarios.contains(&Scenario::B3) {
        let b = &plan.b3;
        let _ = writeln!(
            w,
            "## B3 ack round trips: {} clients, each with one `echo` + ack outstanding\n\n{:.1} s measured after \
             {:.1} s of warm-up; latency over every round trip in the window.\n",
            b.clients,
            b.measure.as_secs_f64(),
            b.warmup.as_secs_f64()
        );
        let _ = writeln!(
            w,
            "| peer | round trips/s | vs roomcast | p50 µs | p99 µs | server CPU µs/round trip | vs roomcast | server core | generator core | throughput counts | errors |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|");
        for (p, f) in peers.iter().filter(|(p, _)| p.runs(Scenario::B3)) {
            let runs = runs_of(results, Scenario::B3);
            let errors: u64 =
                runs.iter().find(|r| r.peer.name == p.name).map(|r| r.b3().iter().map(|x| x.errors).sum()).unwrap_or(0);
            let b = base(p);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.title,
                cell(f.b3_rate, num),
                ratio(f.b3_rate, b.b3_rate),
                cell(f.b3_p50, num),
                cell(f.b3_p99, num),
                cell(f.b3_cpu, num),
                ratio(f.b3_cpu, b.b3_cpu),
                percent_cell(f.b3_server_share),
                percent_cell(f.b3_gen_share),
                yes_no(f.b3_valid()),
                errors
            );
        }
        let _ = writeln!(w);
    }

    if plan.scenarios.contains(&Scenario::B4) {
        b4_section(w, results, &peers);
    }

    let failures: Vec<String> = results
        .records
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed { error } => Some(format!("- {} {} run {}: {error}", r.peer, r.scenario, r.run)),
            Outcome::B1(b) if b.failure.is_some() || b.errors > 0 => Some(format!(
                "- {} B1 run {}: {}{}",
                r.peer,
                r.run,
                b.failure.as_deref().map_or(String::new(), |f| format!("ended early: {f}; ")),
                if b.errors > 0 {
                    format!("{} client errors, e.g. {:?}", b.errors, b.error_samples)
                } else {
                    String::new()
                }
            )),
            Outcome::B3(b) if b.errors > 0 => {
                Some(format!("- {} B3 run {}: {} errors, e.g. {:?}", r.peer, r.run, b.errors, b.error_samples))
            }
            Outcome::B4(b) if b.failure.is_some() || b.errors > 0 => Some(format!(
                "- {} B4 run {}: {}{}",
                r.peer,
                r.run,
                b.failure.as_deref().map_or(String::new(), |f| format!("ended early: {f}; ")),
                if b.errors > 0 {
                    format!("{} client errors, e.g. {:?}", b.errors, b.error_samples)
                } else {
                    String::new()
                }
            )),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(w, "## Failures and errors\n\n{}\n", failures.join("\n"));
    }
    let disturbed: Vec<String> = results
        .records
        .iter()
        .filter_map(|r| {
            let o = other_load(&r.outcome).filter(|&x| x > OTHER_LOAD_LIMIT)?;
            Some(format!("{} {} run {} ({:.0}%)", r.peer, r.scenario, r.run, o * 100.0))
        })
        .collect();
    let _ = writeln!(w, "## Machine load\n");
    if disturbed.is_empty() {
        let _ = writeln!(
            w,
            "Other processes used less than {:.0}% of a core during every measured window.\n",
            OTHER_LOAD_LIMIT * 100.0
        );
    } else {
        let _ = writeln!(
            w,
            "**Other processes were busy during some measured windows** (share of a core, from `/proc/stat` minus \
             the server and the generator); those figures are suspect: {}.\n",
            disturbed.join(", ")
        );
    }

    let _ = writeln!(w, "## Charts\n");
    for c in charts {
        if c.ends_with(".png") {
            let _ = writeln!(w, "![{c}]({c})");
        } else {
            let _ = writeln!(w, "{c}");
        }
    }
    let _ = writeln!(w, "\n## Method\n\n{METHOD}");
    s
}

const METHOD: &str = "\
- Every peer implements the app of `bench/APP.md`. Each run starts a fresh peer process pinned to the \
server core with `taskset`; the generator (`roomcast-bench`, one current-thread tokio runtime) runs pinned \
to the other core. Runs interleave the peers (run 1 of every peer, then run 2, ...).
- The generator speaks WebSocket itself: it parses server frames in place from one read buffer and \
batches its own frames into one write, so that it stays cheaper per frame than the servers it measures. \
On two cores a fast server still outruns it; this is why the server's CPU time per delivery (utime + \
stime of all its threads over the measured window, divided by the deliveries in \
that window) is reported beside every throughput, together with the generator's own CPU share \
(this process). A throughput figure counts only while the generator's core is below 90% busy.
- roomcast's peer runs tokio's multi-thread runtime; pinned to one core, tokio starts one worker.
- Every delivery is validated by its subscriber: per publisher, each sequence number must arrive exactly \
once and in order. Loss, duplicates and reordering are counted (\"deliveries checked\"), never tolerated \
silently.
- B1 throughput: the publisher keeps a window of messages in flight, a message leaving the window once \
every subscriber has it. That is how \"as fast as the server accepts\" is read: the server always has \
work, and is never asked to buffer without bound (a publisher that outruns the fan-out would only \
measure queue growth, or get slow consumers disconnected). The window (100 by default) stays below \
socketioxide's per-socket buffer of 128 packets, past which it drops packets. When neither the server's nor \
the generator's core is near 100% busy, the window (the round trip between them) bounds the throughput; the \
server CPU per delivery is still comparable, as every peer gets the same window.
- B1 latency: the offered rate (5 messages/s by default, 5,000 deliveries/s with 1000 subscribers) is about \
half of what the slowest peer (python-socketio) can fan out; at such a rate a message's latency is mostly the \
time the server takes to write it to every subscriber.
- B2: \"before\" is read after a few connections came and went, so lazily built runtime state is not charged to \
the idle connections.
- CPU time is read from each process's CPU-time clock (`clock_getcpuclockid`, the utime + stime of \
`/proc/PID/stat` at nanosecond resolution). Before each run the orchestrator waits (up to 3 minutes) until \
other processes use less than 15% of a core; the \"Machine load\" section lists windows that were disturbed anyway.
- The limit server does no protocol work at all: it encodes each incoming text frame once as a server \
frame and writes those bytes to every other connection, batching whatever is queued into one write.
- B4: each run starts a fresh `redis-server` (no persistence) on a free port and two processes of the same \
peer on it (`REDIS_URL`; roomcast: `Server::builder().redis(..)`, socket.io: `@socket.io/redis-adapter` on \
node-redis). With two cores, the generator keeps its own core and both nodes and `redis-server` share the \
server core, so every peer's whole cluster gets the same one core and the figures compare what one message \
costs the cluster (node A's local fan-out and publish, Redis, node B's fan-out). The room is split half and \
half, the publisher is on node A, and only deliveries to node B's subscribers (they crossed Redis) count as \
cross-node; the server CPU per cross-node delivery is both nodes' and Redis's CPU over the window divided by \
those deliveries, so it includes node A's local fan-out. Every delivery on both nodes is validated as in B1.";

fn b1_check(results: &Results, peer: &str) -> String {
    let runs = runs_of(results, Scenario::B1);
    let Some(r) = runs.iter().find(|r| r.peer.name == peer) else { return "—".into() };
    let mut total = crate::validate::Tally::default();
    for b in r.b1() {
        total.add(&b.tally);
    }
    let failed = r.failures().len() + r.b1().iter().filter(|b| b.failure.is_some()).count();
    let mut s = if total.is_clean() {
        format!("{} ok", human(total.received as f64))
    } else {
        format!("**{total}** of {}", human(total.expected as f64))
    };
    if failed > 0 {
        let _ = write!(s, ", {failed} run(s) failed");
    }
    s
}

fn b4_check(results: &Results, peer: &str) -> String {
    let runs = runs_of(results, Scenario::B4);
    let Some(r) = runs.iter().find(|r| r.peer.name == peer) else { return "—".into() };
    let (mut total, mut cross) = (crate::validate::Tally::default(), crate::validate::Tally::default());
    for b in r.b4() {
        total.add(&b.tally);
        cross.add(&b.cross_tally);
    }
    let failed = r.failures().len() + r.b4().iter().filter(|b| b.failure.is_some()).count();
    let mut s = if total.is_clean() {
        format!("{} ok ({} cross-node)", human(total.received as f64), human(cross.received as f64))
    } else {
        format!("**{total}** of {} (node B: {cross})", human(total.expected as f64))
    };
    if failed > 0 {
        let _ = write!(s, ", {failed} run(s) failed");
    }
    s
}

fn b4_section(w: &mut String, results: &Results, peers: &[(Peer, Figures)]) {
    let b = &results.plan.b4;
    let on_b = b.subscribers.max(2) - b.subscribers.max(2) / 2;
    let _ = writeln!(
        w,
        "## B4 cluster fan-out: 2 nodes + Redis, 1 room × {} subscribers split across the nodes, one publisher on node A\n",
        b.subscribers
    );
    let _ = writeln!(
        w,
        "Node A holds {} subscribers and the publisher, node B {on_b} subscribers; a message reaches node B only \
         through Redis. The figure is **cross-node deliveries** per second (deliveries to node B's subscribers). \
         As in B1 the publisher keeps {} messages in flight (until every subscriber on both nodes has it), {:.1} s \
         measured after {:.1} s of warm-up. Server CPU is node A + node B + redis-server, all three on the server \
         core; the core columns are each process's share of that core. The throughput counts only while the \
         generator's core is below {:.0}% busy; otherwise the CPU per cross-node delivery is the comparison.\n",
        b.subscribers.max(2) / 2,
        b.window,
        b.measure.as_secs_f64(),
        b.warmup.as_secs_f64(),
        GENERATOR_LIMIT * 100.0
    );
    let _ = writeln!(
        w,
        "| peer | cross-node deliveries/s | vs roomcast | all deliveries/s | server CPU µs/cross-node delivery | vs roomcast | node A core | node B core | redis core | generator core | throughput counts | deliveries checked |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    let base =
        |p: &Peer| peers.iter().find(|(q, _)| q.name == p.baseline()).map(|(_, f)| f.clone()).unwrap_or_default();
    let b4_peers: Vec<&(Peer, Figures)> =
        peers.iter().filter(|(p, f)| p.runs(Scenario::B4) && (f.b4_rate.is_some() || f.b4_clean.is_some())).collect();
    for (p, f) in &b4_peers {
        let bf = base(p);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.title,
            cell(f.b4_rate, num),
            ratio(f.b4_rate, bf.b4_rate),
            cell(f.b4_all_rate, num),
            cell(f.b4_cpu, num),
            ratio(f.b4_cpu, bf.b4_cpu),
            percent_cell(f.b4_a_share),
            percent_cell(f.b4_b_share),
            percent_cell(f.b4_redis_share),
            percent_cell(f.b4_gen_share),
            yes_no(f.b4_valid()),
            b4_check(results, p.name)
        );
    }
    let get = |name: &str| peers.iter().find(|(p, _)| p.name == name).map(|(_, f)| f);
    if let (Some(rc), Some(ns)) = (get("roomcast-sio"), get("node-sio")) {
        let quotient = |a: Option<Spread>, b: Option<Spread>| match (a, b) {
            (Some(a), Some(b)) if b.median > 0.0 => Some(a.median / b.median),
            _ => None,
        };
        if let (Some(rate), Some(cpu)) = (quotient(rc.b4_rate, ns.b4_rate), quotient(ns.b4_cpu, rc.b4_cpu)) {
            let _ = writeln!(
                w,
                "\nroomcast (Socket.IO) ÷ socket.io + @socket.io/redis-adapter: **×{rate:.1} cross-node deliveries/s**{}, \
                 and socket.io's cluster spends ×{cpu:.1} roomcast's CPU per cross-node delivery.",
                if rc.b4_valid() == Some(false) {
                    " (a lower bound: the generator's core was saturated by roomcast's deliveries)"
                } else {
                    ""
                }
            );
        }
    }
    if b.latency_rate > 0.0 {
        let _ = writeln!(
            w,
            "\nCross-node latency at a fixed offered load of {} messages/s ({} cross-node deliveries/s) for {:.1} s, \
             from the send time in each payload to its arrival at node B's subscribers:\n",
            b.latency_rate,
            num(b.latency_rate * on_b as f64),
            b.latency_duration.as_secs_f64()
        );
        let _ = writeln!(
            w,
            "| peer | achieved cross-node deliveries/s | p50 ms | p99 ms | server CPU µs/cross-node delivery | vs roomcast |"
        );
        let _ = writeln!(w, "|---|---|---|---|---|---|");
        for (p, f) in &b4_peers {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                p.title,
                cell(f.b4_lat_rate, num),
                cell(f.b4_lat_p50, num),
                cell(f.b4_lat_p99, num),
                cell(f.b4_lat_cpu, num),
                ratio(f.b4_lat_cpu, base(p).b4_lat_cpu)
            );
        }
    }
    let _ = writeln!(w);
}

fn targets(w: &mut String, peers: &[(Peer, Figures)]) {
    let get = |name: &str| peers.iter().find(|(p, _)| p.name == name).map(|(_, f)| f);
    let _ = writeln!(w, "| target | roomcast | other | ratio | met |\n|---|---|---|---|---|");
    let row = |w: &mut String,
               target: &str,
               rc: Option<Spread>,
               other: Option<Spread>,
               limit: f64,
               higher_is_better: bool| {
        let (verdict, r) = match (rc, other) {
            (Some(a), Some(b)) if b.median > 0.0 => {
                let r = a.median / b.median;
                let met = if higher_is_better { r >= limit } else { r <= limit };
                (if met { "met" } else { "**not met**" }, format!("×{r:.3}"))
            }
            _ => ("not measured", "—".into()),
        };
        let _ = writeln!(w, "| {target} | {} | {} | {r} | {verdict} |", cell(rc, num), cell(other, num));
    };
    let rc = get("roomcast-sio");
    let rcj = get("roomcast-json");
    let sx = get("socketioxide");
    // (target, roomcast peer, other peer, figure, the ratio to stay at or under)
    type Ratio = (&'static str, &'static str, &'static str, fn(&Figures) -> Option<Spread>, f64);
    let ratio_rows = |w: &mut String, rows: &[Ratio]| {
        for &(target, ours, theirs, figure, limit) in rows {
            row(w, target, get(ours).and_then(figure), get(theirs).and_then(figure), limit, false);
        }
    };
    let b1_cpu: fn(&Figures) -> Option<Spread> = |f| f.b1_cpu;
    let b3_cpu: fn(&Figures) -> Option<Spread> = |f| f.b3_cpu;
    ratio_rows(
        w,
        &[
            ("B1 server CPU/delivery ≤ 1/10 of socket.io's (µs)", "roomcast-sio", "node-sio", b1_cpu, 0.1),
            ("B1 server CPU/delivery ≤ 1/2 of socketioxide's (µs)", "roomcast-sio", "socketioxide", b1_cpu, 0.5),
            ("B1 server CPU/delivery within 1.5× of the limit's (µs)", "roomcast-sio", "limit", b1_cpu, 1.5),
            (
                "B1 (JSON protocol) server CPU/delivery within 1.5× of the limit's (µs)",
                "roomcast-json",
                "limit",
                b1_cpu,
                1.5,
            ),
        ],
    );
    // Throughput: only meaningful where the generator was not saturated.
    match (rc, sx) {
        (Some(a), Some(b)) if a.b1_rate.is_some() && b.b1_rate.is_some() => {
            let (ra, rb) = (a.b1_rate.map_or(0.0, |s| s.median), b.b1_rate.map_or(0.0, |s| s.median));
            let verdict = if ra >= rb {
                "met"
            } else if a.b1_valid() == Some(false) || b.b1_valid() == Some(false) {
                "n/a: generator saturated, see CPU/delivery"
            } else {
                "**not met**"
            };
            let _ = writeln!(
                w,
                "| B1 throughput ≥ socketioxide's when the generator is not saturated (deliveries/s) | {} | {} | ×{:.3} | {verdict} |",
                cell(a.b1_rate, num),
                cell(b.b1_rate, num),
                if rb > 0.0 { ra / rb } else { 0.0 }
            );
        }
        _ => {
            let _ = writeln!(w, "| B1 throughput ≥ socketioxide's | — | — | — | not measured |");
        }
    }
    match rc.and_then(|f| f.b2_kib) {
        Some(k) => {
            let _ = writeln!(
                w,
                "| B2 ≤ 4 KiB per idle connection | {} KiB | — | — | {} |",
                cell(Some(k), num),
                if k.median <= 4.0 { "met" } else { "**not met**" }
            );
        }
        None => {
            let _ = writeln!(w, "| B2 ≤ 4 KiB per idle connection | — | — | — | not measured |");
        }
    }
    ratio_rows(
        w,
        &[
            ("B3 server CPU/round trip ≤ 1/5 of socket.io's (µs)", "roomcast-sio", "node-sio", b3_cpu, 0.2),
            (
                "B5 Python: roomcast-py server CPU/delivery ≤ 1/20 of python-socketio's in B1 (µs)",
                "roomcast-py",
                "python-sio",
                b1_cpu,
                0.05,
            ),
            (
                "B5 Python: roomcast-py server CPU/round trip ≤ 1/5 of python-socketio's in B3 (µs)",
                "roomcast-py",
                "python-sio",
                b3_cpu,
                0.2,
            ),
        ],
    );
    // B4: cross-node deliveries/s ≥ 10× socket.io's on its Redis adapter.
    let ns = get("node-sio");
    match (rc.and_then(|f| f.b4_rate), ns.and_then(|f| f.b4_rate)) {
        (Some(a), Some(b)) if b.median > 0.0 => {
            let r = a.median / b.median;
            let verdict = if r >= 10.0 {
                "met"
            } else if rc.and_then(Figures::b4_valid) == Some(false) {
                "n/a: generator saturated, see CPU per cross-node delivery"
            } else {
                "**not met**"
            };
            let _ = writeln!(
                w,
                "| B4 cluster (2 nodes + Redis): cross-node deliveries/s ≥ 10× socket.io + redis-adapter's | {} | {} | ×{r:.1} | {verdict} |",
                cell(Some(a), num),
                cell(Some(b), num)
            );
        }
        _ => {
            let _ = writeln!(
                w,
                "| B4 cluster (2 nodes + Redis): cross-node deliveries/s ≥ 10× socket.io + redis-adapter's | — | — | — | not measured |"
            );
        }
    }
    let b4_cpu: fn(&Figures) -> Option<Spread> = |f| f.b4_cpu;
    ratio_rows(
        w,
        &[(
            "B4 (the same target in CPU): server CPU (2 nodes + Redis) per cross-node delivery ≤ 1/10 of socket.io's (µs)",
            "roomcast-sio",
            "node-sio",
            b4_cpu,
            0.1,
        )],
    );
    for (name, f) in [("roomcast (Socket.IO)", rc), ("roomcast (JSON)", rcj)] {
        let verdict = match f.and_then(|f| f.b1_clean) {
            Some(true) => "met",
            Some(false) => "**not met** (see B1 table)",
            None => "not measured",
        };
        let _ = writeln!(w, "| B1 ordering: {name} delivers every message once, in publish order | | | | {verdict} |");
    }
    for (name, f) in [("roomcast (Socket.IO)", rc), ("roomcast (JSON)", rcj)] {
        if let Some(clean) = f.and_then(|f| f.b4_clean) {
            let verdict = if clean { "met" } else { "**not met** (see B4 table)" };
            let _ = writeln!(
                w,
                "| B4 ordering: {name} delivers every message once, in publish order, on both nodes | | | | {verdict} |"
            );
        }
    }
    let unclean: Vec<&str> = peers
        .iter()
        .filter(|(p, f)| !p.name.starts_with("roomcast") && (f.b1_clean == Some(false) || f.b4_clean == Some(false)))
        .map(|(p, _)| p.title)
        .collect();
    if !unclean.is_empty() {
        let _ = writeln!(w, "\nPeers that lost, duplicated or reordered deliveries: {}.", unclean.join(", "));
    }
    let _ = writeln!(w);
}

// ---------------------------------------------------------------------------
// Charts

pub(crate) const FONT: &str = "sans-serif";

pub(crate) fn register_font() -> anyhow::Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let candidates = [
            std::env::var("ROOMCAST_BENCH_FONT").unwrap_or_default(),
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
            "/usr/share/fonts/dejavu/DejaVuSans.ttf".into(),
        ];
        let path = candidates
            .iter()
            .find(|p| !p.is_empty() && Path::new(p).is_file())
            .ok_or("no font: install fonts-dejavu-core (make bench does) or set ROOMCAST_BENCH_FONT")?;
        let bytes: &'static [u8] = Box::leak(std::fs::read(path).map_err(|e| e.to_string())?.into_boxed_slice());
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).map_err(|_| format!("{path}: not a usable font"))
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

/// One bar: label and one value per series.
struct Bar {
    label: String,
    values: Vec<Option<Spread>>,
    /// Drawn hatched-looking (lighter): e.g. throughput while the generator was saturated.
    faded: bool,
}

const COLORS: [RGBColor; 2] = [RGBColor(0x2b, 0x6c, 0xb0), RGBColor(0xe0, 0x7b, 0x39)];

/// How values map to the y axis. Log for figures that span orders of
/// magnitude across peers (CPU per delivery: 0.2 µs to 100 µs), so every bar
/// stays readable.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

impl Scale {
    fn y(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.max(1e-9).log10(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn bar_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[&str],
    bars: &[Bar],
    note: &str,
    scale: Scale,
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let values = || bars.iter().flat_map(|b| b.values.iter().flatten());
    let ymax = values().map(|s| s.max.max(s.median)).fold(0.0f64, f64::max);
    let (ymin, ymax) = match scale {
        Scale::Linear => (0.0, if ymax > 0.0 { ymax * 1.15 } else { 1.0 }),
        Scale::Log => {
            let lo = values().map(|s| s.min.min(s.median)).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
            let lo = if lo.is_finite() { lo.log10().floor() } else { 0.0 };
            (lo, scale.y(ymax.max(10f64.powf(lo))).ceil() + 0.15)
        }
    };
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 26))
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(90)
        .build_cartesian_2d((0..n - 1).into_segmented(), ymin..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                bars.get(*i).map(|b| b.label.clone()).unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .x_label_style((FONT, 15))
        .y_label_style((FONT, 14))
        .y_label_formatter(&|v| match scale {
            Scale::Linear => num(*v),
            Scale::Log => num(10f64.powf(*v)),
        })
        .y_desc(y_desc)
        .axis_desc_style((FONT, 16))
        .draw()?;
    let s = series.len().max(1) as i32;
    for (i, bar) in bars.iter().enumerate() {
        let (x0, _) = chart.backend_coord(&(SegmentValue::Exact(i), ymin));
        let (x1, y0) = chart.backend_coord(&(SegmentValue::Exact(i + 1), ymin));
        let width = x1 - x0;
        let group = width * 7 / 10;
        let left = x0 + (width - group) / 2;
        for (k, v) in bar.values.iter().enumerate() {
            let Some(v) = v else { continue };
            let color = COLORS[k % COLORS.len()];
            let style = if bar.faded { color.mix(0.35).filled() } else { color.filled() };
            let bx0 = left + group * k as i32 / s;
            let bx1 = left + group * (k as i32 + 1) / s - 2;
            let (_, ytop) = chart.backend_coord(&(SegmentValue::Exact(i), scale.y(v.median)));
            root.draw(&Rectangle::new([(bx0, ytop), (bx1, y0)], style))?;
            if v.runs > 1 {
                let (_, ylo) = chart.backend_coord(&(SegmentValue::Exact(i), scale.y(v.min)));
                let (_, yhi) = chart.backend_coord(&(SegmentValue::Exact(i), scale.y(v.max)));
                let xm = (bx0 + bx1) / 2;
                let line = BLACK.stroke_width(2);
                root.draw(&PathElement::new(vec![(xm, ylo), (xm, yhi)], line))?;
                root.draw(&PathElement::new(vec![(xm - 6, ylo), (xm + 6, ylo)], line))?;
                root.draw(&PathElement::new(vec![(xm - 6, yhi), (xm + 6, yhi)], line))?;
            }
            let (_, ylabel) = chart.backend_coord(&(SegmentValue::Exact(i), scale.y(v.max.max(v.median))));
            root.draw(&Text::new(num(v.median), ((bx0 + bx1) / 2 - 18, ylabel - 20), (FONT, 14)))?;
        }
    }
    if series.len() > 1 {
        for (k, name) in series.iter().enumerate() {
            let x = 860 + 110 * k as i32;
            root.draw(&Rectangle::new([(x, 50), (x + 18, 64)], COLORS[k % COLORS.len()].filled()))?;
            root.draw(&Text::new(name.to_string(), (x + 24, 49), (FONT, 15)))?;
        }
    }
    if !note.is_empty() {
        root.draw(&Text::new(note.to_string(), (110, 580), (FONT, 13)))?;
    }
    root.present()?;
    Ok(())
}

fn charts(results: &Results, dir: &Path) -> anyhow::Result<Vec<String>> {
    register_font()?;
    let plan = &results.plan;
    let peers: Vec<(Peer, Figures)> = PEERS
        .iter()
        .filter(|p| plan.peer_names.iter().any(|n| n == p.name))
        .map(|p| (*p, figures(results, p.name)))
        .collect();
    let mut files = Vec::new();
    let mut chart =
        |file: &str, title: &str, y: &str, series: &[&str], bars: Vec<Bar>, note: &str| -> anyhow::Result<()> {
            if bars.iter().any(|b| b.values.iter().any(Option::is_some)) {
                // Peers differ by orders of magnitude in CPU and rates; memory and latency do not.
                let scale = if file.starts_with("b1_cpu")
                    || file.starts_with("b1_throughput")
                    || file.starts_with("b3_")
                    || file.starts_with("b4_")
                {
                    Scale::Log
                } else {
                    Scale::Linear
                };
                bar_chart(&dir.join(file), title, y, series, &bars, note, scale)?;
                files.push(file.to_owned());
            }
            Ok(())
        };
    let only = |s: Scenario| peers.iter().filter(move |(p, _)| p.runs(s));
    let spread_note = if plan.runs > 1 { "bars: median; whiskers: min–max over runs" } else { "" };
    if plan.scenarios.contains(&Scenario::B1) {
        chart(
            "b1_cpu_per_delivery.png",
            "B1 fan-out: server CPU per delivery (lower is better), log scale",
            "µs of server CPU per delivery",
            &[],
            only(Scenario::B1)
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b1_cpu], faded: false })
                .collect(),
            spread_note,
        )?;
        chart(
            "b1_throughput.png",
            "B1 fan-out: deliveries per second (higher is better), log scale",
            "deliveries/s",
            &[],
            only(Scenario::B1)
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b1_rate], faded: f.b1_valid() == Some(false) })
                .collect(),
            "faded bars: generator core ≥ 90% busy, the figure is a lower bound for that server",
        )?;
        if plan.b1.latency_rate > 0.0 {
            chart(
                "b1_latency.png",
                &format!("B1 latency at {} msg/s × {} subscribers", plan.b1.latency_rate, plan.b1.subscribers),
                "ms",
                &["p50", "p99"],
                only(Scenario::B1)
                    .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b1_lat_p50, f.b1_lat_p99], faded: false })
                    .collect(),
                spread_note,
            )?;
        }
    }
    if plan.scenarios.contains(&Scenario::B2) {
        chart(
            "b2_memory_per_connection.png",
            &format!("B2: server memory per idle connection ({} clients, lower is better)", plan.b2.clients),
            "KiB RSS per connection",
            &[],
            only(Scenario::B2)
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b2_kib], faded: false })
                .collect(),
            spread_note,
        )?;
    }
    if plan.scenarios.contains(&Scenario::B3) {
        chart(
            "b3_cpu_per_round_trip.png",
            "B3 acks: server CPU per round trip (lower is better), log scale",
            "µs of server CPU per round trip",
            &[],
            only(Scenario::B3)
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b3_cpu], faded: false })
                .collect(),
            spread_note,
        )?;
        chart(
            "b3_round_trips.png",
            &format!("B3 acks: round trips per second, {} clients (higher is better, log scale)", plan.b3.clients),
            "round trips/s",
            &[],
            only(Scenario::B3)
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b3_rate], faded: f.b3_valid() == Some(false) })
                .collect(),
            "faded bars: generator core ≥ 90% busy, the figure is a lower bound for that server",
        )?;
    }
    if plan.scenarios.contains(&Scenario::B4) {
        let measured = || only(Scenario::B4).filter(|(_, f)| f.b4_rate.is_some() || f.b4_cpu.is_some());
        chart(
            "b4_cross_node_throughput.png",
            &format!(
                "B4 cluster: cross-node deliveries/s, {} subscribers (higher is better), log scale",
                plan.b4.subscribers
            ),
            "cross-node deliveries/s",
            &[],
            measured()
                .map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b4_rate], faded: f.b4_valid() == Some(false) })
                .collect(),
            "faded bars: generator core ≥ 90% busy, the figure is a lower bound for that server",
        )?;
        chart(
            "b4_cpu_per_cross_delivery.png",
            "B4: CPU of 2 nodes + Redis per cross-node delivery (lower is better), log scale",
            "µs of server CPU per cross-node delivery",
            &[],
            measured().map(|(p, f)| Bar { label: p.name.into(), values: vec![f.b4_cpu], faded: false }).collect(),
            spread_note,
        )?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(date: &str, peers: &[&str], scenarios: &[Scenario], runs: usize) -> Results {
        let peers: Vec<Peer> = peers.iter().map(|n| Peer::by_name(n).unwrap()).collect();
        let records = scenarios
            .iter()
            .flat_map(|&scenario| {
                peers.iter().filter(move |p| p.runs(scenario)).flat_map(move |p| {
                    (1..=runs).map(move |run| RunRecord {
                        peer: p.name.to_owned(),
                        scenario,
                        run,
                        outcome: Outcome::Failed { error: date.to_owned() },
                    })
                })
            })
            .collect();
        Results {
            machine: Machine { date: date.into(), roomcast_commit: format!("commit-{date}"), ..Machine::default() },
            plan: Plan {
                peer_names: peers.iter().map(|p| p.name.to_owned()).collect(),
                peers,
                scenarios: scenarios.to_vec(),
                runs,
                b1: Default::default(),
                b2: Default::default(),
                b3: Default::default(),
                b4: Default::default(),
                server_core: Some(0),
                generator_core: Some(1),
                quick: false,
            },
            records,
            kept: Vec::new(),
        }
    }

    #[test]
    fn only_replaces_the_scenarios_it_ran() {
        let mut old = session("old", &["roomcast-sio", "node-sio", "limit"], &[Scenario::B1, Scenario::B2], 3);
        old.plan.b1.subscribers = 777;
        let mut new = session("new", &["roomcast-sio", "node-sio"], &[Scenario::B4], 3);
        new.plan.b1.subscribers = 1;
        let merged = merge(old, new);
        assert_eq!(merged.plan.scenarios, [Scenario::B1, Scenario::B2, Scenario::B4]);
        assert_eq!(merged.plan.peer_names, ["roomcast-sio", "node-sio", "limit"]);
        assert_eq!(merged.plan.peers.len(), 3);
        assert_eq!(merged.plan.b1.subscribers, 777, "B1's parameters come with B1's runs");
        assert_eq!(merged.machine.date, "new");
        assert_eq!(
            merged.kept,
            [KeptSession {
                scenarios: vec![Scenario::B1, Scenario::B2],
                date: "old".into(),
                roomcast_commit: "commit-old".into(),
                runs: 3
            }]
        );
        let from = |s: Scenario| -> Vec<&str> {
            let mut v: Vec<&str> = merged
                .records
                .iter()
                .filter(|r| r.scenario == s)
                .map(|r| match &r.outcome {
                    Outcome::Failed { error } => error.as_str(),
                    _ => "",
                })
                .collect();
            v.dedup();
            v
        };
        assert_eq!((from(Scenario::B1), from(Scenario::B4)), (vec!["old"], vec!["new"]));
        assert_eq!(merged.records.len(), 3 * 3 + 2 * 3 + 2 * 3);

        // B4 again: the kept B1 and B2 stay described as they were; the markdown says so.
        let again = merge(merged, session("newer", &["roomcast-sio", "node-sio"], &[Scenario::B4], 1));
        assert_eq!(again.kept.len(), 1);
        assert_eq!(again.kept[0].date, "old");
        assert_eq!(again.records.iter().filter(|r| r.scenario == Scenario::B4).count(), 2);
        let md = markdown(&again, &[]);
        assert!(md.contains("run --only b4` on newer"), "{md}");
        assert!(md.contains("| B4 | newer | commit-newer | 1 |"), "{md}");
        assert!(md.contains("| B1, B2 | old | commit-old | 3 |"), "{md}");

        // Re-running a kept scenario takes it out of `kept`.
        let b1 = merge(again, session("latest", &["roomcast-sio"], &[Scenario::B1, Scenario::B2], 1));
        assert_eq!(b1.kept.len(), 1);
        assert_eq!(b1.kept[0].scenarios, [Scenario::B4]);
        assert_eq!(b1.kept[0].date, "newer");
    }
}
