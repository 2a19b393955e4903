//! `make soak`: what a long run under churn must leave flat. The samples
//! of the server process over time, the verdict on them, and their chart.

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::report::{FONT, register_font};

/// One look at the server process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Seconds since the load started (negative: before it).
    pub t: f64,
    pub rss_kib: u64,
    pub fds: u64,
    /// Tasks alive on its tokio runtime (`roomcast_runtime_tasks`).
    pub tasks: u64,
    /// Open connections (`roomcast_connections`).
    pub connections: u64,
    /// Rooms with members in namespace "/" (`roomcast_rooms`).
    pub rooms: u64,
    /// Sessions kept for recovery in namespace "/" (`roomcast_recovery_sessions`).
    pub parked: u64,
    /// Connections the clients opened so far.
    pub opened: u64,
}

/// Limits on growth between the start of the steady phase and its end.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Allowed growth of resident memory, as a fraction, plus `rss_slack_kib`.
    pub rss_growth: f64,
    pub rss_slack_kib: u64,
    /// The same over the second half of the steady phase, once the
    /// allocator and the server's caches have settled: tighter, so that a
    /// small loss per connection opened adds up past it.
    pub late_rss_growth: f64,
    pub late_rss_slack_kib: u64,
    /// Allowed growth of fds and tasks per connection held (churn moves them).
    pub per_connection_growth: f64,
    /// What may be left over, in fds and tasks, once every client is gone.
    pub leftover: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self {
            rss_growth: 0.25,
            rss_slack_kib: 32 * 1024,
            late_rss_growth: 0.02,
            late_rss_slack_kib: 8 * 1024,
            per_connection_growth: 0.10,
            leftover: 16,
        }
    }
}

fn mean(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|s| f(s) as f64).sum::<f64>() / samples.len() as f64
}

/// Per-connection average of `f` over `samples`.
fn per_connection(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    mean(samples, f) / mean(samples, |s| s.connections).max(1.0)
}

/// Whether the run stayed flat. `baseline` is before any load, `steady`
/// the samples while the load ran (after the ramp), `after` once every
/// client left. Returns the findings, one line each; any starting with
/// "LEAK" fails the soak.
pub fn verdict(baseline: &Sample, steady: &[Sample], after: &Sample, tol: Tolerance) -> Vec<String> {
    let mut out = Vec::new();
    let fifth = (steady.len() / 5).max(1);
    let (early, late) = (&steady[..fifth.min(steady.len())], &steady[steady.len().saturating_sub(fifth)..]);
    let (rss0, rss1) = (mean(early, |s| s.rss_kib), mean(late, |s| s.rss_kib));
    let rss_limit = rss0 * (1.0 + tol.rss_growth) + tol.rss_slack_kib as f64;
    out.push(format!(
        "{}memory: {:.0} MiB early in the steady phase, {:.0} MiB at its end (limit {:.0} MiB)",
        if rss1 > rss_limit { "LEAK " } else { "" },
        rss0 / 1024.0,
        rss1 / 1024.0,
        rss_limit / 1024.0
    ));
    let mid = &steady[steady.len() / 2..(steady.len() / 2 + fifth).min(steady.len())];
    let rss_mid = mean(mid, |s| s.rss_kib);
    let late_limit = rss_mid * (1.0 + tol.late_rss_growth) + tol.late_rss_slack_kib as f64;
    let opened = late.last().map_or(0, |s| s.opened).saturating_sub(mid.first().map_or(0, |s| s.opened));
    out.push(format!(
        "{}memory over the second half: {:.0} MiB to {:.0} MiB (limit {:.0} MiB) while {opened} connections \
         were opened, {:.0} bytes each",
        if rss1 > late_limit { "LEAK " } else { "" },
        rss_mid / 1024.0,
        rss1 / 1024.0,
        late_limit / 1024.0,
        (rss1 - rss_mid).max(0.0) * 1024.0 / opened.max(1) as f64
    ));
    type Field = (&'static str, fn(&Sample) -> u64);
    let fields: [Field; 2] = [("fds", |s| s.fds), ("tasks", |s| s.tasks)];
    for (name, f) in fields {
        let (a, b) = (per_connection(early, f), per_connection(late, f));
        let grew = b > a * (1.0 + tol.per_connection_growth);
        out.push(format!("{}{name} per connection: {a:.2} early, {b:.2} at the end", if grew { "LEAK " } else { "" }));
        let (before, left) = (f(baseline), f(after));
        out.push(format!(
            "{}{name} once every client left: {left} (before the load: {before})",
            if left > before + tol.leftover { "LEAK " } else { "" }
        ));
    }
    out.push(format!(
        "{}connections and rooms once every client left: {} and {}",
        if after.connections + after.rooms > 0 { "LEAK " } else { "" },
        after.connections,
        after.rooms
    ));
    out.push(format!(
        "{}recovery sessions once the window passed: {} (at most {} while the load held)",
        if after.parked > 0 { "LEAK " } else { "" },
        after.parked,
        steady.iter().map(|s| s.parked).max().unwrap_or(0)
    ));
    out
}

/// Five panels over time: memory, fds, tasks, connections, recovery sessions.
pub fn chart(samples: &[Sample], title: &str, path: &Path) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 1200)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, body) = root.split_vertically(50);
    head.draw(&Text::new(title.to_owned(), (20, 12), (FONT, 24)))?;
    let t0 = samples.first().map_or(0.0, |s| s.t);
    let t1 = samples.last().map_or(1.0, |s| s.t).max(t0 + 1.0);
    type Panel = (&'static str, fn(&Sample) -> f64, RGBColor);
    let panels: [Panel; 5] = [
        ("resident memory (MiB)", |s| s.rss_kib as f64 / 1024.0, RGBColor(200, 60, 60)),
        ("open file descriptors", |s| s.fds as f64, RGBColor(60, 110, 200)),
        ("tokio tasks alive", |s| s.tasks as f64, RGBColor(60, 160, 90)),
        ("connections", |s| s.connections as f64, RGBColor(120, 80, 170)),
        ("sessions kept for recovery", |s| s.parked as f64, RGBColor(200, 140, 40)),
    ];
    for (area, (name, f, color)) in body.split_evenly((5, 1)).iter().zip(panels) {
        let ymax = samples.iter().map(f).fold(0.0, f64::max).max(1.0) * 1.1;
        let mut c = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .caption(name, (FONT, 16))
            .build_cartesian_2d(t0..t1, 0.0..ymax)?;
        c.configure_mesh()
            .x_desc("seconds since the load started")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .draw()?;
        c.draw_series(LineSeries::new(samples.iter().map(|s| (s.t, f(s))), color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(rss_kib: u64, fds: u64, tasks: u64, connections: u64) -> Sample {
        Sample { t: 0.0, rss_kib, fds, tasks, connections, rooms: connections / 10, parked: tasks / 10, opened: 0 }
    }

    #[test]
    fn flat_runs_pass_and_growth_is_a_leak() {
        let base = s(10_000, 10, 5, 0);
        let flat: Vec<_> = (0..20)
            .map(|i| Sample { opened: i * 1000, ..s(200_000 + i * 10, 10_010 + i % 3, 20_005, 10_000) })
            .collect();
        let tol = Tolerance::default();
        let ok = verdict(&base, &flat, &s(210_000, 12, 6, 0), tol);
        assert!(ok.iter().all(|l| !l.starts_with("LEAK")), "{ok:?}");

        let growing: Vec<_> = (0..20).map(|i| s(200_000 + i * 20_000, 10_010, 20_005 + i * 500, 10_000)).collect();
        let bad = verdict(&base, &growing, &s(210_000, 12, 400, 3), tol);
        let leaks: Vec<_> = bad.iter().filter(|l| l.starts_with("LEAK")).collect();
        assert_eq!(
            leaks.len(),
            6,
            "memory, memory late, tasks per connection, tasks left, connections and rooms left, sessions: {bad:?}"
        );

        // About 300 bytes lost per connection opened, 10,000 opened per
        // sample (60,000 between the middle and the end, about as many as
        // the soak opens): inside the loose band, caught over the second half.
        let slow: Vec<_> =
            (0..20).map(|i| Sample { opened: i * 10_000, ..s(200_000 + i * 3_000, 10_010, 20_005, 10_000) }).collect();
        let found = verdict(&base, &slow, &s(210_000, 12, 6, 0), tol);
        let leaks: Vec<_> = found.iter().filter(|l| l.starts_with("LEAK")).collect();
        assert_eq!(leaks.len(), 1, "{found:?}");
        assert!(leaks[0].starts_with("LEAK memory over the second half"), "{found:?}");
    }
}
