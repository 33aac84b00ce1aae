//! Process metrics (`process_*` in Prometheus' naming) read from `/proc` on Linux:
//! resident memory, file descriptors, CPU time and start time. `prometheus-client`
//! has no process collector, so these few files are read at scrape time; where a
//! file is missing (another system) the metric is left out.

/// One reading of the process's resources; a field is `None` when it could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit of open file descriptors.
    pub max_fds: Option<u64>,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: Option<f64>,
    /// Unix time the process started.
    pub start_time_unix: Option<f64>,
}

/// Reads the current process's resources.
pub fn sample() -> ProcessSample {
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // SAFETY: as above.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| boot_time(&t));
    let (cpu_seconds, start_time_unix) = match (&stat, ticks > 0) {
        (Some(s), true) => parse_stat(s, ticks as f64, boot),
        _ => (None, None),
    };
    ProcessSample {
        resident_memory_bytes: statm
            .as_deref()
            .and_then(resident_pages)
            .zip(u64::try_from(page).ok())
            .map(|(pages, size)| pages.saturating_mul(size)),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        max_fds: max_fds(),
        cpu_seconds,
        start_time_unix,
    }
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Resident pages: the second field of `/proc/self/statm`.
pub fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// The boot time (Unix seconds) from `/proc/stat`'s `btime` line.
pub fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

/// CPU seconds (utime + stime) and start time (Unix seconds, when the boot time is
/// known) from `/proc/self/stat`, whose clock-tick fields follow the parenthesised
/// command name (which may itself hold spaces and parentheses).
pub fn parse_stat(stat: &str, ticks: f64, boot: Option<f64>) -> (Option<f64>, Option<f64>) {
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return (None, None);
    };
    // Field 3 (state) is the first after the name; utime is 14, stime 15, starttime 22.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu = field(14).zip(field(15)).map(|(u, s)| (u + s) / ticks);
    let start = field(22).zip(boot).map(|(t, b)| b + t / ticks);
    (cpu, start)
}

#[cfg(test)]
mod tests;
