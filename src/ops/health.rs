//! Health: the record of sync attempts every syncing process keeps in
//! `state/event_mesh/sync_state.json`, and the rules that call a node unhealthy
//! (docs/operations.md, "Health").
//!
//! The rules ([`assess`]) and the state's update ([`SyncState::after`]) are pure;
//! [`record`] and [`load`] are the only I/O, and recording is best-effort: a full
//! disk must not turn a finished sync into a failure.

use crate::fsutil::DiskSpace;
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest `sync_state.json` read; a larger file is not ours and is ignored.
const MAX_STATE_BYTES: u64 = 64 * 1024;
/// Longest error message kept (characters); git can print pages.
const MAX_MESSAGE_CHARS: usize = 1000;

/// How a sync attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Fetched, and the remote holds this node's work (or there was nothing to push).
    Ok,
    /// The remote could not be reached; local work was done (exit 75).
    Offline,
    /// Every push lost the race to other nodes; the next sync retries (exit 75).
    Contended,
    /// The sync failed (exit 1 or 2): see the kind and message.
    Error,
}

impl SyncOutcome {
    /// The name used in JSON, logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            SyncOutcome::Ok => "ok",
            SyncOutcome::Offline => "offline",
            SyncOutcome::Contended => "contended",
            SyncOutcome::Error => "error",
        }
    }
}

/// One finished sync attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncAttempt {
    /// When it finished (RFC 3339, UTC).
    pub at: String,
    /// How it ended.
    pub outcome: SyncOutcome,
    /// The error kind (`offline`, `timeout`, `auth`, `rejected`, `not_found`, ...), when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The error message, credentials redacted and bounded in length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How long it took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
}

/// `sync_state.json`: the last attempt, the last success and the failure streak.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// The last sync that ran (a sync that found another holding the lock is not one).
    #[serde(default)]
    pub last_attempt: Option<SyncAttempt>,
    /// When the last successful sync finished.
    #[serde(default)]
    pub last_success: Option<String>,
    /// Syncs that did not succeed since the last one that did.
    #[serde(default)]
    pub consecutive_failures: u32,
}

impl SyncState {
    /// The state once `attempt` is recorded.
    pub fn after(mut self, attempt: SyncAttempt) -> SyncState {
        if attempt.outcome == SyncOutcome::Ok {
            self.consecutive_failures = 0;
            self.last_success = Some(attempt.at.clone());
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        self.last_attempt = Some(attempt);
        self
    }
}

/// The attempt a sync's result describes.
pub fn attempt_of(
    result: &super::Result<super::sync::SyncReport>,
    at: chrono::DateTime<chrono::Utc>,
    took: Duration,
) -> SyncAttempt {
    let (outcome, kind, message) = match result {
        Ok(r) if r.push.offline => (
            SyncOutcome::Offline,
            Some(r.push.error_kind.unwrap_or("offline").to_string()),
            r.push.error.clone(),
        ),
        Ok(r) if r.push.contended => (
            SyncOutcome::Contended,
            Some("contended".to_string()),
            r.push.error.clone(),
        ),
        Ok(_) => (SyncOutcome::Ok, None, None),
        Err(e) if e.is_offline() => (
            SyncOutcome::Offline,
            Some(e.kind().to_string()),
            Some(e.to_string()),
        ),
        Err(e) => (
            SyncOutcome::Error,
            Some(e.kind().to_string()),
            Some(e.to_string()),
        ),
    };
    SyncAttempt {
        at: crate::event::format_timestamp(at),
        outcome,
        kind,
        message: message.map(|m| bounded(&crate::git::cli::redact(&m))),
        duration_ms: took.as_millis().min(u128::from(u64::MAX)) as u64,
    }
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] characters.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The recorded state; empty when there is none, and when the file is unreadable
/// (it is rewritten whole by the next sync).
pub fn load(paths: &NodePaths) -> SyncState {
    let path = paths.sync_state();
    let Ok(meta) = std::fs::metadata(&path) else {
        return SyncState::default();
    };
    if meta.len() > MAX_STATE_BYTES {
        tracing::warn!(path = %path.display(), "sync state file too large; ignored");
        return SyncState::default();
    }
    match crate::fsutil::read_json::<SyncState>(&path) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "sync state unreadable; ignored");
            SyncState::default()
        }
    }
}

/// Adds `attempt` to the recorded state, atomically; a failure (a full disk) is logged only.
pub fn record(paths: &NodePaths, attempt: SyncAttempt) {
    let next = load(paths).after(attempt);
    if let Err(e) = crate::fsutil::write_json(&paths.sync_state(), &next) {
        tracing::warn!(error = %e, "could not record the sync's outcome");
    }
}

/// Who holds the daemon lock, as the daemon writes it into `daemon.lock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Process id of the daemon.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// The address its HTTP server listens on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// Whether a daemon runs on this root.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DaemonStatus {
    /// A process holds the daemon lock.
    pub running: bool,
    /// What the holder recorded (absent while it is starting).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub holder: Option<LockInfo>,
}

/// Probes the daemon lock without taking it or writing anything.
pub fn daemon_status(paths: &NodePaths) -> DaemonStatus {
    let path = paths.daemon_lock();
    let running = crate::lock::FileLock::is_held(&path).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not probe the daemon lock");
        false
    });
    let holder = running
        .then(|| std::fs::read(&path).ok())
        .flatten()
        .filter(|b| b.len() as u64 <= MAX_STATE_BYTES)
        .and_then(|b| serde_json::from_slice(&b).ok());
    DaemonStatus { running, holder }
}

/// Free space of the node root's file system and whether it is below the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskStatus {
    /// Bytes still writable.
    #[serde(flatten)]
    pub space: DiskSpace,
    /// `[health] min_free_mb`, in bytes.
    pub min_free_bytes: u64,
    /// Free space is below the threshold.
    pub low: bool,
}

/// The disk status of the node root (None when `statvfs` fails; logged).
pub fn disk_status(paths: &NodePaths, min_free_mb: u64) -> Option<DiskStatus> {
    match crate::fsutil::disk_space(&paths.root) {
        Ok(space) => {
            let min_free_bytes = min_free_mb.saturating_mul(1024 * 1024);
            Some(DiskStatus {
                space,
                min_free_bytes,
                low: space.free_bytes < min_free_bytes,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the free disk space");
            None
        }
    }
}

/// One reason a node is unhealthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// Stable code: `sync_failing`, `sync_refused`, `sync_stale`, `alerts`, `low_disk`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// The verdict of [`assess`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// No reason applies.
    pub healthy: bool,
    /// Every reason that applies (empty when healthy).
    pub reasons: Vec<Reason>,
}

/// What [`assess`] looks at.
#[derive(Debug, Clone)]
pub struct HealthInputs<'a> {
    /// Now.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The recorded syncs.
    pub sync: &'a SyncState,
    /// `[health] max_failed_syncs` (0: the rule is off).
    pub max_failed_syncs: u32,
    /// `[health] max_sync_age` (or its default).
    pub max_sync_age: Duration,
    /// The node root's disk.
    pub disk: Option<DiskStatus>,
    /// Open alerts: changed keys, forks, rewritten history (each a description).
    pub alerts: Vec<String>,
}

/// Error kinds of a sync that waiting does not fix.
const REFUSED_KINDS: [&str; 3] = ["auth", "rejected", "not_found"];

/// Decides whether the node is healthy, and why not.
pub fn assess(i: &HealthInputs<'_>) -> Health {
    let mut reasons = Vec::new();
    let s = i.sync;
    if i.max_failed_syncs > 0 && s.consecutive_failures >= i.max_failed_syncs {
        reasons.push(Reason {
            code: "sync_failing",
            message: format!(
                "the last {} syncs failed (threshold {})",
                s.consecutive_failures, i.max_failed_syncs
            ),
        });
    }
    if let Some(a) = &s.last_attempt
        && let Some(kind) = a.kind.as_deref().filter(|k| REFUSED_KINDS.contains(k))
    {
        reasons.push(Reason {
            code: "sync_refused",
            message: format!(
                "the last sync failed with kind {kind}: {}",
                a.message.as_deref().unwrap_or("")
            ),
        });
    }
    if let Some(t) = s.last_success.as_deref() {
        let age = crate::event::parse_timestamp(t).map(|t| i.now - t);
        let limit = chrono::Duration::from_std(i.max_sync_age).unwrap_or(chrono::Duration::MAX);
        if age.is_none_or(|a| a > limit) {
            reasons.push(Reason {
                code: "sync_stale",
                message: format!(
                    "the last successful sync ({t}) is older than {}",
                    humantime::format_duration(i.max_sync_age)
                ),
            });
        }
    }
    if !i.alerts.is_empty() {
        reasons.push(Reason {
            code: "alerts",
            message: format!("open alerts: {}", i.alerts.join("; ")),
        });
    }
    if let Some(d) = i.disk.filter(|d| d.low) {
        reasons.push(Reason {
            code: "low_disk",
            message: format!(
                "{} MiB free on the node root's file system, below {} MiB",
                d.space.free_bytes / (1024 * 1024),
                d.min_free_bytes / (1024 * 1024)
            ),
        });
    }
    Health {
        healthy: reasons.is_empty(),
        reasons,
    }
}

#[cfg(test)]
mod tests;
