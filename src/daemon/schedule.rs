//! Pure timing decisions of the daemon: how a sync ended and when to sync next.

use super::{DaemonError, PassReport};
use std::time::Duration;

/// How one sync pass ended, as far as scheduling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything done, remote reached.
    Ok,
    /// Local work done, remote unreachable (exit code 75): back off.
    Offline,
    /// Another sync (e.g. a `mesh-sync` run by hand) holds the node's lock: retry soon.
    Busy,
    /// A real failure: logged and counted; the next pass runs on the normal schedule.
    Failed,
}

impl Outcome {
    /// Label used in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Offline => "offline",
            Outcome::Busy => "busy",
            Outcome::Failed => "error",
        }
    }
}

/// Classifies the result of a sync or dispatch pass.
///
/// A report counts as offline when its push did not reach the remote; an error
/// counts as offline when the remote could not be reached, as busy when another
/// sync held the node's lock.
pub fn classify(result: &Result<PassReport, DaemonError>) -> Outcome {
    match result {
        Ok(r) if r.offline() => Outcome::Offline,
        Ok(_) => Outcome::Ok,
        Err(DaemonError::Pass(e)) if e.is_offline() => Outcome::Offline,
        Err(DaemonError::Pass(e)) if e.is_busy() => Outcome::Busy,
        Err(_) => Outcome::Failed,
    }
}

/// Delay before a retry when another sync held the lock.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Delay before the next sync.
///
/// `offline_streak` consecutive offline passes double the interval each time, up to
/// `max_backoff` (never less than the interval itself). `unit` in `[0, 1)` spreads
/// the result over ±10% so a fleet started together does not push in lockstep.
pub fn next_sync_delay(
    interval: Duration,
    offline_streak: u32,
    max_backoff: Duration,
    unit: f64,
) -> Duration {
    let cap = max_backoff.max(interval);
    let factor = 2u32.saturating_pow(offline_streak.min(20));
    let base = interval.saturating_mul(factor).min(cap);
    jitter(base, unit)
}

/// `base` scaled by a factor in `[0.9, 1.1)` chosen by `unit` in `[0, 1)`.
pub fn jitter(base: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    base.mul_f64(0.9 + 0.2 * unit)
}

/// Shortest time between two polls of the remote, however large the budget.
pub const POLL_FLOOR: Duration = Duration::from_secs(1);

/// Remote requests one full sync makes (a fetch and a push), counted against the budget.
pub const FULL_SYNC_REQUESTS: f64 = 2.0;

/// Time between two polls of the remote (a fetch, one ref advertisement when nothing moved) by one node, or `None`
/// when the node should not poll at all.
///
/// The fleet of `live_nodes` (at least this node) shares `budget` requests per
/// second on one repository: each node's share, less what its full syncs every
/// `interval` already spend, is spent on polls, but never more often than
/// [`POLL_FLOOR`]. No polling when the budget is 0, when the full syncs alone use
/// the share, or when a poll would come no sooner than the next full sync.
pub fn poll_period(live_nodes: u32, budget: u32, interval: Duration) -> Option<Duration> {
    if budget == 0 || interval.is_zero() {
        return None;
    }
    let share = f64::from(budget) / f64::from(live_nodes.max(1));
    let polls_per_sec = share - FULL_SYNC_REQUESTS / interval.as_secs_f64();
    if polls_per_sec <= 0.0 {
        return None;
    }
    let period = Duration::try_from_secs_f64(1.0 / polls_per_sec)
        .unwrap_or(Duration::MAX)
        .max(POLL_FLOOR);
    (period < interval).then_some(period)
}

/// When the daemon pushes after own appends: `quiet` after the last append, but
/// never later than `4 × quiet` after the first one, so a steady stream of appends
/// still goes out in batches instead of waiting for a pause.
pub fn push_deadline<T>(first: T, last: T, quiet: Duration) -> T
where
    T: std::ops::Add<Duration, Output = T> + Ord,
{
    let latest = first + quiet.saturating_mul(PUSH_MAX_WAIT_FACTOR);
    (last + quiet).min(latest)
}

/// A burst is pushed at the latest this many debounce periods after its first append.
pub const PUSH_MAX_WAIT_FACTOR: u32 = 4;

/// Shortest gap between the end of one sync and a sync asked for by SIGUSR1 or
/// `POST /sync`, so a flood of requests cannot turn into back-to-back syncs.
pub const SYNC_NOW_GAP: Duration = Duration::from_secs(1);

/// When a sync asked for now may start, given when the last sync ended.
pub fn sync_now_at<T>(now: T, last_sync_end: Option<T>) -> T
where
    T: std::ops::Add<Duration, Output = T> + Ord,
{
    match last_sync_end {
        Some(end) => now.max(end + SYNC_NOW_GAP),
        None => now,
    }
}

#[cfg(test)]
mod tests;
