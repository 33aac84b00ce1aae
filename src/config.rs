//! `mesh.toml`: the node's configuration, with environment overrides (docs/configuration.md).

use crate::event::{PayloadLimits, normalize_node_id};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors loading or writing `mesh.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file does not exist: the root was never initialised.
    #[error("{path} not found: run `gitmesh mesh-init --node-id ID` first (or pass --root)")]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// A duration written as `"60s"`, `"5m"`, `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// The longest duration `mesh.toml` accepts: far beyond any sensible interval, timeout
/// or retention, and far below what would overflow a deadline computed from it.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not a duration like \"60s\" ({e})"))
        })?;
        if parsed > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is longer than the longest duration accepted (10 years)"
            )));
        }
        Ok(HumanDuration(parsed))
    }
}

fn secs(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(n))
}

/// The whole of `mesh.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id (normalized).
    pub node_id: String,
    /// What this node can do; used by capability routing.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Refuse to publish events whose (topic, event_type, version) has no schema.
    #[serde(default)]
    pub strict_schemas: bool,
    /// Refuse unsigned events from every peer, not only from peers with a published key.
    #[serde(default)]
    pub require_signatures: bool,
    /// Free-form labels published in the manifest.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the ledger lives.
    #[serde(default)]
    pub ledger: LedgerConfig,
    /// Sync timing and retry policy.
    #[serde(default)]
    pub sync: SyncConfig,
    /// Scaling decision table.
    #[serde(default)]
    pub scaling: ScalingConfig,
    /// Command policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Input limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Lanes this node's actuator can start and stop.
    // Omitted when empty, so an operator can append `[[lanes]]`/`[[handlers]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lanes: Vec<LaneConfig>,
    /// User handlers run during dispatch.
    // Omitted when empty, so an operator can append `[[lanes]]`/`[[handlers]]` tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<HandlerConfig>,
    /// Event schema policy.
    #[serde(default)]
    pub schemas: SchemasConfig,
    /// When `mesh-status --check` and `/healthz` call the node unhealthy.
    #[serde(default)]
    pub health: HealthConfig,
    /// Bounds on dispatch: causation hops, events per daemon pass.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// Who the mesh trusts: the signed roster, or trust on first use.
    #[serde(default)]
    pub mesh: MeshConfig,
    /// Where the node's signing key comes from.
    #[serde(default, skip_serializing_if = "IdentityConfig::is_default")]
    pub identity: IdentityConfig,
    /// Bounds on one import per peer: files and bytes read, quarantine kept.
    #[serde(default)]
    pub import: ImportConfig,
}

/// `[import]`: per-peer bounds, so one peer's outbox (or junk planted in it) costs
/// a bounded amount of reading per sync and of quarantine on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Quarantine records kept per peer; the oldest are removed past it.
    #[serde(default = "default_quarantine_files")]
    pub quarantine_max_files: u64,
    /// Quarantine bytes kept per peer; the oldest records are removed past it.
    #[serde(default = "default_quarantine_bytes")]
    pub quarantine_max_bytes: u64,
    /// Outbox files one import reads per peer; the rest wait for the next sync.
    #[serde(default = "default_peer_files")]
    pub max_files_per_peer: u64,
    /// Outbox bytes one import reads per peer; the rest wait for the next sync.
    #[serde(default = "default_peer_bytes")]
    pub max_bytes_per_peer: u64,
}

fn default_quarantine_files() -> u64 {
    1000
}
fn default_quarantine_bytes() -> u64 {
    64 << 20
}
fn default_peer_files() -> u64 {
    10_000
}
fn default_peer_bytes() -> u64 {
    1 << 30
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            quarantine_max_files: default_quarantine_files(),
            quarantine_max_bytes: default_quarantine_bytes(),
            max_files_per_peer: default_peer_files(),
            max_bytes_per_peer: default_peer_bytes(),
        }
    }
}

/// `[health]`: the thresholds of "unhealthy" (docs/operations.md, "Health").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Consecutive failed syncs (any kind) that make the node unhealthy (0: never).
    #[serde(default = "default_max_failed_syncs")]
    pub max_failed_syncs: u32,
    /// A node whose last successful sync is older than this is unhealthy
    /// (default: 5 times `sync.interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sync_age: Option<HumanDuration>,
    /// Free space (MiB) below which the node root's file system is reported low (0: never).
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

fn default_max_failed_syncs() -> u32 {
    3
}
fn default_min_free_mb() -> u64 {
    100
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            max_failed_syncs: default_max_failed_syncs(),
            max_sync_age: None,
            min_free_mb: default_min_free_mb(),
        }
    }
}

impl Config {
    /// How old the last successful sync may be before the node is unhealthy.
    pub fn max_sync_age(&self) -> Duration {
        self.health
            .max_sync_age
            .map(|d| d.0)
            .unwrap_or_else(|| self.sync.interval.0.saturating_mul(5))
    }
}

/// `[dispatch]`: the bounds that keep handlers from running away.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Longest causation chain dispatch extends: an event this many hops below
    /// its root goes to no handler, and the stopped chain is reported.
    #[serde(default = "default_max_hops")]
    pub max_hops: u32,
    /// Most events one daemon dispatch pass (or the dispatch inside a daemon
    /// sync) handles before sync, heartbeat and lease get their turn.
    #[serde(default = "default_pass_events")]
    pub daemon_pass_events: u64,
}

/// Largest `dispatch.max_hops` accepted.
pub const MAX_HOPS_LIMIT: u32 = 1000;

fn default_max_hops() -> u32 {
    32
}
fn default_pass_events() -> u64 {
    10_000
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            max_hops: default_max_hops(),
            daemon_pass_events: default_pass_events(),
        }
    }
}

/// How peers are trusted (`[mesh] trust`, docs/roster.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustMode {
    /// Once the ledger holds a roster, only nodes on it (with the right role) are trusted.
    #[default]
    Roster,
    /// Nodes absent from the roster are trusted on first use with every role.
    Open,
}

/// `[mesh]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshConfig {
    /// `"roster"` (default) or `"open"`.
    #[serde(default)]
    pub trust: TrustMode,
}

/// `[identity]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// A file holding the node's secret key (64 hex digits, mode 0600), e.g. a mounted
    /// secret; relative paths are from the node root. Absent: `state/event_mesh/keys/node.ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl IdentityConfig {
    fn is_default(&self) -> bool {
        self == &IdentityConfig::default()
    }
}

/// What the importer does with a peer event whose payload breaks its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportPolicy {
    /// Do not append it; quarantine it with the violation as its reason.
    #[default]
    Quarantine,
    /// Append it and count it in `schema_flagged` (mesh-status).
    AcceptAndFlag,
}

/// `[schemas]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemasConfig {
    /// `"quarantine"` (default) or `"accept-and-flag"`.
    #[serde(default)]
    pub import_policy: ImportPolicy,
}

/// `[ledger]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// URL or path of the shared repository; `None` means the embedded bare repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Branch of the shared repository.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The ledger directory inside the repository.
    #[serde(default = "default_dir")]
    pub dir: String,
    /// How nodes share the repository: one shared branch, or one ref per node.
    #[serde(default)]
    pub mode: LedgerMode,
    /// Import skips batches whose events all predate this UTC day (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Peers not seen for this long no longer hold back compaction.
    #[serde(default = "default_retention")]
    pub retention: HumanDuration,
    /// Sync compacts the ledger once the head tree holds this many batch files (0: never).
    #[serde(default = "default_compact_after_files")]
    pub compact_after_files: u64,
    /// One more https host (besides github.com) the token variable may be sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_host: Option<String>,
}

/// How nodes write to the shared repository (`[ledger] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerMode {
    /// Every node pushes its files onto the one shared branch (pushes race; retried).
    #[default]
    SharedBranch,
    /// Each node pushes only `refs/heads/gitmesh/<node_id>`; the lease stays on the shared branch.
    PerNodeRefs,
}

/// Under a day of once-a-minute syncs (1,440 batches), so a busy node compacts about daily
/// and its outbox head never lists more than about a thousand batch files.
pub const DEFAULT_COMPACT_AFTER_FILES: u64 = 1000;

fn default_compact_after_files() -> u64 {
    DEFAULT_COMPACT_AFTER_FILES
}

fn default_retention() -> HumanDuration {
    secs(30 * 24 * 3600)
}

fn default_branch() -> String {
    "main".into()
}
fn default_dir() -> String {
    "event_mesh".into()
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            remote: None,
            branch: default_branch(),
            dir: default_dir(),
            mode: LedgerMode::default(),
            since: None,
            retention: default_retention(),
            compact_after_files: DEFAULT_COMPACT_AFTER_FILES,
            token_host: None,
        }
    }
}

/// `[sync]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Time between syncs of the daemon.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// How often a rejected push is retried.
    #[serde(default = "default_push_retries")]
    pub push_retries: u32,
    /// A peer not seen for this long is stale.
    #[serde(default = "default_stale_after")]
    pub stale_after: HumanDuration,
    /// Length of the leader lease taken and renewed by sync.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: HumanDuration,
    /// How long a sync, export or import waits for another one on the same node to finish.
    #[serde(default = "default_lock_wait")]
    pub lock_wait: HumanDuration,
    /// How far another node's clock stamp may lie in this node's future before it is
    /// not believed; also the skew past which this node alerts and stops leading.
    #[serde(default = "default_clock_tolerance")]
    pub clock_tolerance: HumanDuration,
    /// How long the daemon waits after the last own append before it pushes, so a
    /// burst of appends becomes one commit.
    #[serde(default = "default_push_debounce")]
    pub push_debounce: HumanDuration,
    /// Remote requests per second the whole fleet may spend on one ledger repository;
    /// the daemon's poll period follows from it and the number of live nodes (0: no polls).
    #[serde(default = "default_poll_budget")]
    pub poll_budget: u32,
    /// Longest a fetch, push or ls-remote may take before git is killed, so a remote
    /// that accepts the connection and never answers cannot hold the sync lock forever.
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: HumanDuration,
}

/// The accepted range of `[sync] remote_timeout`: long enough for a first fetch of a
/// large ledger over a slow link to be cut by `remote_timeout` only when set low on purpose.
pub const REMOTE_TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_secs(5), Duration::from_secs(3600));

/// The daemon spreads each sync interval by up to this fraction either way.
pub const SYNC_JITTER: f64 = 0.1;

/// The accepted range of `[sync] clock_tolerance`.
pub const CLOCK_TOLERANCE_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(3600));

impl SyncConfig {
    /// The longest gap between two syncs at `interval`: the interval plus its jitter.
    pub fn max_gap(interval: Duration) -> Duration {
        interval.mul_f64(1.0 + SYNC_JITTER)
    }

    /// The holder renews the lease once less than this is left: two of the longest gaps
    /// between syncs, so one lost or failed sync still leaves time to renew.
    pub fn renew_before(&self) -> Duration {
        Self::max_gap(self.interval.0)
            .saturating_mul(2)
            .min(self.lease_ttl.0)
    }

    /// The longest sync interval at which the lease cannot lapse while its holder is healthy.
    pub fn longest_interval_for_lease(&self) -> Duration {
        // Whole milliseconds, rounded down, so float rounding never lands past the bound.
        let ms = self.lease_ttl.0.as_millis() as f64 / (2.0 * (1.0 + SYNC_JITTER));
        Duration::from_millis(ms.floor() as u64)
    }
}

fn default_interval() -> HumanDuration {
    secs(60)
}
fn default_push_retries() -> u32 {
    5
}
fn default_stale_after() -> HumanDuration {
    secs(300)
}
fn default_lease_ttl() -> HumanDuration {
    secs(150)
}
fn default_lock_wait() -> HumanDuration {
    secs(30)
}
fn default_clock_tolerance() -> HumanDuration {
    secs(60)
}
fn default_push_debounce() -> HumanDuration {
    HumanDuration(Duration::from_millis(500))
}
/// Default of `[sync] poll_budget` (docs/scaling.md, "Polling budget").
pub const DEFAULT_POLL_BUDGET: u32 = 10;
fn default_poll_budget() -> u32 {
    DEFAULT_POLL_BUDGET
}
fn default_remote_timeout() -> HumanDuration {
    secs(120)
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval: default_interval(),
            push_retries: default_push_retries(),
            stale_after: default_stale_after(),
            lease_ttl: default_lease_ttl(),
            lock_wait: default_lock_wait(),
            clock_tolerance: default_clock_tolerance(),
            push_debounce: default_push_debounce(),
            poll_budget: default_poll_budget(),
            remote_timeout: default_remote_timeout(),
        }
    }
}

/// `[scaling]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingConfig {
    /// Decision table file (JSON or TOML), relative to the node root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_table: Option<PathBuf>,
}

/// How the causal gate treats disruptive commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CausalGate {
    /// Log and allow.
    #[default]
    Advisory,
    /// Refuse without a causal hypothesis.
    Enforced,
}

/// `[policy]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Gate for disruptive commands.
    #[serde(default)]
    pub causal_gate: CausalGate,
    /// Commands older than this are rejected as stale.
    #[serde(default = "default_freshness")]
    pub command_freshness: HumanDuration,
}

fn default_freshness() -> HumanDuration {
    secs(300)
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            causal_gate: CausalGate::default(),
            command_freshness: default_freshness(),
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest payload accepted, in bytes.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
}

fn default_max_payload() -> usize {
    64 * 1024
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload_bytes: default_max_payload(),
        }
    }
}

/// One `[[lanes]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneConfig {
    /// Lane id.
    pub id: String,
    /// Disabled lanes are never started or stopped.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Lower ranks are preferred: started first, stopped last.
    #[serde(default)]
    pub scaling_rank: i64,
    /// argv that starts the lane.
    #[serde(default)]
    pub start: Vec<String>,
    /// argv that stops the lane.
    #[serde(default)]
    pub stop: Vec<String>,
    /// argv whose exit 0 means the lane is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Vec<String>>,
    /// Time limit for start/stop/status.
    #[serde(default = "default_lane_timeout")]
    pub timeout: HumanDuration,
}

fn yes() -> bool {
    true
}
fn default_lane_timeout() -> HumanDuration {
    secs(30)
}

/// One `[[handlers]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// Handler name (part of derived event ids).
    pub name: String,
    /// `topic.event_type` pattern (`*` one segment, `**` any rest).
    #[serde(rename = "match")]
    pub pattern: String,
    /// argv to run; the event arrives on stdin.
    pub run: Vec<String>,
    /// Time limit per attempt.
    #[serde(default = "default_handler_timeout")]
    pub timeout: HumanDuration,
    /// Retries after the first failure.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one.
    #[serde(default = "default_backoff")]
    pub backoff: HumanDuration,
    /// Consecutive failed events that open the circuit breaker.
    #[serde(default = "default_breaker_threshold")]
    pub breaker_threshold: u32,
    /// How long an open breaker skips events before one trial run (half-open).
    #[serde(default = "default_breaker_cooldown")]
    pub breaker_cooldown: HumanDuration,
    /// Most bytes read from each of stdout and stderr; more ends the attempt
    /// (dead-lettered as `output_too_large`).
    #[serde(default = "default_max_output")]
    pub max_output_bytes: u64,
    /// Most follow-ups one event may produce; more and none is appended
    /// (dead-lettered as `too_many_followups`).
    #[serde(default = "default_max_followups")]
    pub max_followups: usize,
    /// Names of variables passed from gitmesh's environment on top of the
    /// inherited allow-list (the remote's token only if named here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// Largest `max_output_bytes` accepted for a handler (256 MiB).
pub const MAX_OUTPUT_LIMIT: u64 = 256 * 1024 * 1024;
/// Largest `max_followups` accepted for a handler.
pub const MAX_FOLLOWUPS_LIMIT: usize = 100_000;

fn default_max_output() -> u64 {
    1024 * 1024
}
fn default_max_followups() -> usize {
    100
}

fn default_backoff() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown() -> HumanDuration {
    secs(60)
}

fn default_handler_timeout() -> HumanDuration {
    secs(10)
}
fn default_retries() -> u32 {
    3
}

/// Where the user part (`user:password@`) of a URL in `text` lies, if it has one.
///
/// Only an `@` before the path (or a quote) ends the user part, so `host/o/r@v1` is
/// no credential.
pub fn url_userinfo(text: &str) -> Option<std::ops::Range<usize>> {
    let start = text.find("://")? + 3;
    let authority = &text[start..];
    let end = authority
        .find(['/', '\'', '"', '?', '#'])
        .unwrap_or(authority.len());
    authority[..end].rfind('@').map(|at| start..start + at)
}

/// `url` with its user part replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    match url_userinfo(url) {
        Some(r) => format!("{}***{}", &url[..r.start], &url[r.end..]),
        None => url.to_string(),
    }
}

/// `text` with the user part of every URL in it replaced by `***`.
pub fn redact_urls(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        result.push_str(&redact_url(word));
    }
    result
}

/// Refuses a remote URL that carries credentials (pure); the message redacts them.
///
/// A password in any URL is refused, and any user part in an `http(s)://` URL, where
/// it can only be a secret or a name better given to a credential helper.
/// `ssh://git@host/...` and `git@host:...` stay valid: the user there is no secret.
pub fn check_remote_url(url: &str) -> Result<(), String> {
    let Some(r) = url_userinfo(url) else {
        return Ok(());
    };
    let lower = url.to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    if web || url[r].contains(':') {
        return Err(format!(
            "{} holds credentials in the URL; remove them and use a git credential helper \
             (`git config --global credential.helper store`) or the GITMESH_GIT_TOKEN variable",
            redact_url(url)
        ));
    }
    Ok(())
}

mod load;

#[cfg(test)]
mod tests;
