//! What the orchestrator reads about processes: CPU time, resident memory
//! (`VmRSS` of `/proc/PID/status`) and machine facts.
//!
//! CPU time is utime + stime of all threads of a process (living and exited).
//! `/proc/PID/stat` fields 14 and 15 give it in clock ticks (10 ms), too coarse
//! for short windows at low load, so [`cpu_seconds`] reads the same quantity
//! in nanoseconds from the process's CPU-time clock (`clock_getcpuclockid`)
//! and falls back to `/proc/PID/stat`.

use std::io;
use std::sync::OnceLock;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know of).
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// utime + stime in clock ticks from the text of `/proc/PID/stat`. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // After ")" comes field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.nth(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Busy clock ticks of the whole machine (all cores) from the text of
/// `/proc/stat`: user + nice + system + irq + softirq + steal of the `cpu` line.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_ascii_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    Some(v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).copied().unwrap_or(0))
}

/// CPU seconds the whole machine has been busy.
pub fn machine_busy_seconds() -> io::Result<f64> {
    let ticks =
        parse_machine_busy_ticks(&std::fs::read_to_string("/proc/stat")?).ok_or_else(|| invalid("/proc/stat"))?;
    Ok(ticks as f64 / clk_tck() as f64)
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_vmrss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_ascii_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// The CPU model of `/proc/cpuinfo`.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// CPU seconds used so far by process `pid` (`None`: this process).
pub fn cpu_seconds(pid: Option<u32>) -> io::Result<f64> {
    let pid_t = pid.map_or(Some(0), |p| i32::try_from(p).ok());
    if let Some(p) = pid_t
        && let Ok(clock) = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(p))
        && let Ok(t) = clock.now()
    {
        return Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9);
    }
    stat_cpu_seconds(pid)
}

/// CPU seconds of process `pid` from `/proc/PID/stat` (clock-tick resolution).
pub fn stat_cpu_seconds(pid: Option<u32>) -> io::Result<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let ticks = parse_stat_ticks(&std::fs::read_to_string(path)?).ok_or_else(|| invalid("unparsable stat"))?;
    Ok(ticks as f64 / clk_tck() as f64)
}

/// Resident set size of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    parse_vmrss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status"))?).ok_or_else(|| invalid("no VmRSS"))
}

/// Logical CPUs listed in `/proc/cpuinfo` (whatever this process's affinity).
pub fn cpu_count() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

/// CPU model, or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| parse_cpu_model(&s)).unwrap_or_else(|| "unknown".into())
}

/// Kernel release.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // Real line shape; comm with spaces and a parenthesis.
        let stat = "1234 (node (v8) x) S 1 1234 1234 0 -1 4194560 1200 0 3 0 250 75 0 0 20 0 11 0 \
                    9876 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn own_stat_parses() {
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(stat_cpu_seconds(None).unwrap() >= 0.0);
        // Both sources measure the same thing (the clock is finer).
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (fine, coarse) = (cpu_seconds(Some(std::process::id())).unwrap(), stat_cpu_seconds(None).unwrap());
        assert!((fine - coarse).abs() < 0.05 + 0.1 * fine, "{fine} vs {coarse}");
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(clk_tck() > 0);
    }

    #[test]
    fn machine_stat() {
        let stat = "cpu  100 5 20 900 7 1 2 3 0 0\ncpu0 50 0 10 450 3 0 1 1 0 0\n";
        assert_eq!(parse_machine_busy_ticks(stat), Some(100 + 5 + 20 + 1 + 2 + 3));
        assert_eq!(parse_machine_busy_ticks("cpu0 1 2 3\n"), None);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn status_rss() {
        let status = "Name:\tnode\nVmPeak:\t  100 kB\nVmRSS:\t   45678 kB\nThreads:\t7\n";
        assert_eq!(parse_vmrss_kib(status), Some(45_678));
        assert_eq!(parse_vmrss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn cpuinfo_model() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(info).as_deref(), Some("AMD EPYC 7B13"));
    }
}
