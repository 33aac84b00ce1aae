//! Reading, checking and writing `mesh.toml`, with environment overrides applied on load.

use super::*;

impl Config {
    /// A fresh configuration for `mesh-init`.
    pub fn new(node_id: String) -> Self {
        Config {
            node_id,
            capabilities: Vec::new(),
            strict_schemas: false,
            labels: BTreeMap::new(),
            require_signatures: false,
            ledger: LedgerConfig::default(),
            sync: SyncConfig::default(),
            scaling: ScalingConfig::default(),
            policy: PolicyConfig::default(),
            limits: LimitsConfig::default(),
            lanes: Vec::new(),
            handlers: Vec::new(),
            schemas: SchemasConfig::default(),
            health: HealthConfig::default(),
            dispatch: DispatchConfig::default(),
            mesh: MeshConfig::default(),
            identity: IdentityConfig::default(),
            import: ImportConfig::default(),
        }
    }

    /// Parses `mesh.toml` text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: redact_urls(e.to_string().trim_end()).replace('\n', " "),
        })?;
        cfg.node_id = normalize_node_id(&cfg.node_id).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.check(path)?;
        Ok(cfg)
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for lane in &self.lanes {
            if !seen.insert(&lane.id) {
                return Err(bad(format!("lanes: duplicate lane id {:?}", lane.id)));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for h in &self.handlers {
            if !seen.insert(&h.name) {
                return Err(bad(format!(
                    "handlers: duplicate handler name {:?}",
                    h.name
                )));
            }
            if let Err(e) = crate::event::pattern::Pattern::parse(&h.pattern) {
                return Err(bad(format!("handlers.{}.match: {e}", h.name)));
            }
            if h.name.is_empty() || h.name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(bad(format!(
                    "handlers: name {:?} must be non-empty without spaces",
                    h.name
                )));
            }
            if h.run.is_empty() {
                return Err(bad(format!(
                    "handlers.{}: `run` must name a program",
                    h.name
                )));
            }
            if !(1..=MAX_OUTPUT_LIMIT).contains(&h.max_output_bytes) {
                return Err(bad(format!(
                    "handlers.{}.max_output_bytes: {} is outside 1..={MAX_OUTPUT_LIMIT}",
                    h.name, h.max_output_bytes
                )));
            }
            if !(1..=MAX_FOLLOWUPS_LIMIT).contains(&h.max_followups) {
                return Err(bad(format!(
                    "handlers.{}.max_followups: {} is outside 1..={MAX_FOLLOWUPS_LIMIT}",
                    h.name, h.max_followups
                )));
            }
            if let Some(v) = h
                .env
                .iter()
                .find(|v| v.is_empty() || v.contains('=') || v.contains('\0'))
            {
                return Err(bad(format!(
                    "handlers.{}.env: {v:?} is not a variable name",
                    h.name
                )));
            }
        }
        if !(1..=MAX_HOPS_LIMIT).contains(&self.dispatch.max_hops) {
            return Err(bad(format!(
                "dispatch.max_hops: {} is outside 1..={MAX_HOPS_LIMIT}",
                self.dispatch.max_hops
            )));
        }
        if self.dispatch.daemon_pass_events == 0 {
            return Err(bad("dispatch.daemon_pass_events must be 1 or more".into()));
        }
        if self.ledger.dir.is_empty()
            || self
                .ledger
                .dir
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(bad(format!(
                "ledger.dir {:?} must be a relative path inside the repository",
                self.ledger.dir
            )));
        }
        if let Some(e) = self.out_of_range().into_iter().next() {
            return Err(bad(e));
        }
        let sync = &self.sync;
        let (lo, hi) = CLOCK_TOLERANCE_RANGE;
        if sync.clock_tolerance.0 < lo || sync.clock_tolerance.0 > hi {
            return Err(bad(format!(
                "sync.clock_tolerance {} must lie between {} and {}",
                humantime::format_duration(sync.clock_tolerance.0),
                humantime::format_duration(lo),
                humantime::format_duration(hi)
            )));
        }
        if sync.interval.0.is_zero() {
            return Err(bad("sync.interval must be longer than zero".into()));
        }
        if sync.lease_ttl.0 <= SyncConfig::max_gap(sync.interval.0).saturating_mul(2) {
            return Err(bad(format!(
                "sync.lease_ttl ({}) must exceed twice sync.interval ({}) plus its 10% jitter \
                 ({}), or the leader's lease can lapse between two syncs: raise sync.lease_ttl \
                 or lower sync.interval",
                humantime::format_duration(sync.lease_ttl.0),
                humantime::format_duration(sync.interval.0),
                humantime::format_duration(SyncConfig::max_gap(sync.interval.0).saturating_mul(2))
            )));
        }
        if let Some(remote) = &self.ledger.remote {
            check_remote_url(remote).map_err(|m| bad(format!("ledger.remote: {m}")))?;
        }
        if let Some(host) = &self.ledger.token_host
            && (host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')))
        {
            return Err(bad(format!(
                "ledger.token_host {host:?} must be a host name like \"git.example.com\" (no scheme or path)"
            )));
        }
        if let Some(since) = &self.ledger.since
            && chrono::NaiveDate::parse_from_str(since, "%Y-%m-%d").is_err()
        {
            return Err(bad(format!(
                "ledger.since {since:?} must be a UTC day like \"2026-01-31\""
            )));
        }
        Ok(())
    }

    /// Every duration and size that lies outside its documented range, as
    /// `<key> = <value> is out of range (<range>)` (docs/configuration.md, "Ranges").
    pub fn out_of_range(&self) -> Vec<String> {
        use std::time::Duration;
        let mut out = Vec::new();
        let mut dur = |key: String, v: Duration, min: Duration, max: Duration| {
            if v < min || v > max {
                out.push(format!(
                    "{key} = {} is out of range ({} to {})",
                    humantime::format_duration(v),
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ));
            }
        };
        let ms = Duration::from_millis(1);
        let max = MAX_DURATION;
        let hour = Duration::from_secs(3600);
        dur(
            "ledger.retention".into(),
            self.ledger.retention.0,
            Duration::from_secs(1),
            max,
        );
        dur("sync.interval".into(), self.sync.interval.0, ms, max);
        dur(
            "sync.stale_after".into(),
            self.sync.stale_after.0,
            Duration::from_secs(1),
            max,
        );
        dur(
            "sync.lease_ttl".into(),
            self.sync.lease_ttl.0,
            Duration::from_secs(1),
            Duration::from_secs(86_400),
        );
        dur(
            "sync.lock_wait".into(),
            self.sync.lock_wait.0,
            Duration::ZERO,
            hour,
        );
        dur(
            "sync.remote_timeout".into(),
            self.sync.remote_timeout.0,
            REMOTE_TIMEOUT_RANGE.0,
            REMOTE_TIMEOUT_RANGE.1,
        );
        dur(
            "sync.push_debounce".into(),
            self.sync.push_debounce.0,
            Duration::ZERO,
            Duration::from_secs(60),
        );
        dur(
            "policy.command_freshness".into(),
            self.policy.command_freshness.0,
            Duration::from_secs(1),
            max,
        );
        for l in &self.lanes {
            dur(format!("lanes.{}.timeout", l.id), l.timeout.0, ms, hour);
        }
        for h in &self.handlers {
            dur(
                format!("handlers.{}.timeout", h.name),
                h.timeout.0,
                ms,
                hour,
            );
            dur(
                format!("handlers.{}.backoff", h.name),
                h.backoff.0,
                Duration::ZERO,
                hour,
            );
            dur(
                format!("handlers.{}.breaker_cooldown", h.name),
                h.breaker_cooldown.0,
                Duration::ZERO,
                max,
            );
        }
        let mut count = |key: String, v: u64, min: u64, max: u64| {
            if v < min || v > max {
                out.push(format!("{key} = {v} is out of range ({min} to {max})"));
            }
        };
        count(
            "ledger.compact_after_files".into(),
            self.ledger.compact_after_files,
            0,
            10_000_000,
        );
        count(
            "sync.push_retries".into(),
            self.sync.push_retries.into(),
            0,
            100,
        );
        count(
            "sync.poll_budget".into(),
            self.sync.poll_budget.into(),
            0,
            1000,
        );
        count(
            "limits.max_payload_bytes".into(),
            self.limits.max_payload_bytes as u64,
            2,
            1_000_000,
        );
        let i = &self.import;
        count(
            "import.quarantine_max_files".into(),
            i.quarantine_max_files,
            1,
            1_000_000,
        );
        // At least one kept item (64 KiB) and its reason.
        count(
            "import.quarantine_max_bytes".into(),
            i.quarantine_max_bytes,
            1 << 17,
            1 << 40,
        );
        count(
            "import.max_files_per_peer".into(),
            i.max_files_per_peer,
            1,
            10_000_000,
        );
        // At least one file at the 4 MiB import cap.
        count(
            "import.max_bytes_per_peer".into(),
            i.max_bytes_per_peer,
            4 << 20,
            1 << 40,
        );
        for h in &self.handlers {
            count(
                format!("handlers.{}.retries", h.name),
                h.retries.into(),
                0,
                100,
            );
            count(
                format!("handlers.{}.breaker_threshold", h.name),
                h.breaker_threshold.into(),
                0,
                10_000,
            );
        }
        out
    }

    /// Loads `mesh.toml` from a node root and applies `GITMESH_NODE_ID` / `GITMESH_REMOTE`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(crate::fsutil::IoContext::ctx(Err(e), "read", path)?),
        };
        let mut cfg = Config::parse(&text, path)?;
        if let Ok(id) = std::env::var("GITMESH_NODE_ID")
            && !id.is_empty()
        {
            cfg.node_id = normalize_node_id(&id).map_err(|e| ConfigError::Invalid {
                path: "GITMESH_NODE_ID".into(),
                message: e.to_string(),
            })?;
        }
        if let Ok(remote) = std::env::var("GITMESH_REMOTE")
            && !remote.is_empty()
        {
            check_remote_url(&remote).map_err(|message| ConfigError::Invalid {
                path: "GITMESH_REMOTE".into(),
                message,
            })?;
            cfg.ledger.remote = Some(remote);
        }
        Ok(cfg)
    }

    /// Writes `mesh.toml` atomically.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let header = "# gitmesh node configuration; see `gitmesh mesh-init --help` and docs/configuration.md\n";
        crate::fsutil::write_atomic(path, format!("{header}{text}").as_bytes(), true)?;
        Ok(())
    }

    /// Payload limits derived from `[limits]`.
    pub fn payload_limits(&self) -> PayloadLimits {
        PayloadLimits {
            max_bytes: self.limits.max_payload_bytes,
            ..PayloadLimits::default()
        }
    }
}
