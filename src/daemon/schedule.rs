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

#[cfg(test)]
mod tests;
