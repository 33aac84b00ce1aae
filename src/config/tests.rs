use super::*;

/// The error message of parsing `text` as the config file `file`.
fn parse_err(text: &str, file: &str) -> String {
    Config::parse(text, Path::new(file))
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_keys_are_named() {
    let err = parse_err("node_id = \"a\"\n[sync]\nintervall = \"5s\"\n", "mesh.toml");
    assert!(err.contains("intervall"), "{err}");
    assert!(err.contains("mesh.toml"), "{err}");
}

#[test]
fn full_example_parses() {
    let text = r#"
node_id = "WS1"
capabilities = ["monitoring", "routing"]
labels = { site = "lab" }
[ledger]
remote = "git@github.com:org/coordination.git"
branch = "main"
dir = "event_mesh"
[sync]
interval = "60s"
push_retries = 5
stale_after = "300s"
[policy]
causal_gate = "enforced"
command_freshness = "5m"
[[lanes]]
id = "lane-a"
scaling_rank = 1
start = ["systemctl", "start", "worker@lane-a"]
stop = ["systemctl", "stop", "worker@lane-a"]
[[handlers]]
name = "notify"
match = "routing.route.*"
run = ["/usr/local/bin/notify-route"]
timeout = "10s"
retries = 3
[schemas]
import_policy = "accept-and-flag"
"#;
    let cfg = Config::parse(text, Path::new("mesh.toml")).unwrap();
    assert_eq!(cfg.node_id, "ws1");
    assert_eq!(cfg.policy.causal_gate, CausalGate::Enforced);
    assert_eq!(cfg.policy.command_freshness.0, Duration::from_secs(300));
    assert_eq!(cfg.lanes[0].id, "lane-a");
    assert_eq!(cfg.handlers[0].pattern, "routing.route.*");
    assert_eq!(cfg.schemas.import_policy, ImportPolicy::AcceptAndFlag);
    assert!(!cfg.strict_schemas);
}

#[test]
fn bad_duration_is_explained() {
    let err = parse_err("node_id = \"a\"\n[sync]\ninterval = \"soon\"\n", "m.toml");
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn handler_patterns_and_retry_settings_are_checked() {
    let text = "node_id = \"a\"\n[[handlers]]\nname = \"h\"\nmatch = \"a.**.b\"\nrun = [\"x\"]\n";
    let err = parse_err(text, "mesh.toml");
    assert!(
        err.contains("handlers.h.match") && err.contains("last"),
        "{err}"
    );
    let text = "node_id = \"a\"\n[[handlers]]\nname = \"h\"\nmatch = \"ops.*\"\nrun = [\"x\"]\nbackoff = \"5ms\"\nbreaker_threshold = 2\n";
    let cfg = Config::parse(text, Path::new("mesh.toml")).unwrap();
    assert_eq!(cfg.handlers[0].backoff.0, Duration::from_millis(5));
    assert_eq!(cfg.handlers[0].breaker_threshold, 2);
    assert_eq!(cfg.handlers[0].breaker_cooldown.0, Duration::from_secs(60));
    assert_eq!(cfg.handlers[0].retries, 3);
}

#[test]
fn lanes_and_handlers_can_be_appended_to_a_written_file() {
    let mut text = toml::to_string_pretty(&Config::new("n1".into())).unwrap();
    text.push_str("\n[[lanes]]\nid = \"a\"\nstart = [\"true\"]\n\n[[handlers]]\nname = \"h\"\nmatch = \"a.*\"\nrun = [\"true\"]\n");
    let cfg = Config::parse(&text, Path::new("mesh.toml")).unwrap();
    assert_eq!(cfg.lanes.len(), 1);
    assert_eq!(cfg.handlers.len(), 1);
}

#[test]
fn round_trips() {
    let mut cfg = Config::new("n1".into());
    cfg.capabilities = vec!["routing".into()];
    cfg.strict_schemas = true;
    let text = toml::to_string_pretty(&cfg).unwrap();
    let back = Config::parse(&text, Path::new("x")).unwrap();
    assert_eq!(back.capabilities, cfg.capabilities);
    assert!(back.strict_schemas);
    assert_eq!(back.schemas.import_policy, ImportPolicy::Quarantine);
}

#[test]
fn compaction_is_on_by_default_and_zero_turns_it_off() {
    let path = Path::new("mesh.toml");
    let cfg = Config::parse("node_id = \"a\"\n", path).unwrap();
    assert_eq!(cfg.ledger.compact_after_files, 1000);
    let cfg = Config::parse("node_id = \"a\"\n[ledger]\n", path).unwrap();
    assert_eq!(cfg.ledger.compact_after_files, 1000);
    let off = "node_id = \"a\"\n[ledger]\ncompact_after_files = 0\n";
    assert_eq!(
        Config::parse(off, path).unwrap().ledger.compact_after_files,
        0
    );
}

#[test]
fn a_duration_past_ten_years_is_a_config_error_naming_the_value() {
    let text = "node_id = \"n1\"\n[sync]\ninterval = \"500000000000y\"\n";
    let err = Config::parse(text, Path::new("mesh.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("500000000000y"), "{err}");
    assert!(err.contains("10 years"), "{err}");
    let ok = "node_id = \"n1\"\n[sync]\nretention = \"3650days\"\n".replace("[sync]", "[ledger]");
    assert!(Config::parse(&ok, Path::new("mesh.toml")).is_ok());
}

#[test]
fn a_lease_that_could_lapse_between_syncs_is_refused_naming_both_keys() {
    let path = Path::new("mesh.toml");
    let text = "node_id = \"n1\"\n[sync]\ninterval = \"60s\"\nlease_ttl = \"120s\"\n";
    let err = Config::parse(text, path).unwrap_err().to_string();
    assert!(
        err.contains("sync.lease_ttl") && err.contains("sync.interval"),
        "{err}"
    );
    // The defaults, and a ttl just above two jittered intervals, are accepted.
    let cfg = Config::parse("node_id = \"n1\"\n", path).unwrap();
    assert!(cfg.sync.lease_ttl.0 > SyncConfig::max_gap(cfg.sync.interval.0) * 2);
    let text = "node_id = \"n1\"\n[sync]\ninterval = \"60s\"\nlease_ttl = \"133s\"\n";
    let cfg = Config::parse(text, path).unwrap();
    assert_eq!(cfg.sync.renew_before(), Duration::from_secs(132));
    // The daemon shortens a longer --interval to this, so the lease still cannot lapse.
    let longest = cfg.sync.longest_interval_for_lease();
    assert!(
        SyncConfig::max_gap(longest) * 2 <= cfg.sync.lease_ttl.0,
        "{longest:?}"
    );
    assert!(longest > Duration::from_secs(60), "{longest:?}");
}

#[test]
fn clock_tolerance_is_range_checked() {
    let path = Path::new("mesh.toml");
    assert_eq!(
        Config::parse("node_id = \"n1\"\n", path)
            .unwrap()
            .sync
            .clock_tolerance
            .0,
        Duration::from_secs(60)
    );
    for bad in ["\"0s\"", "\"2h\""] {
        let text = format!("node_id = \"n1\"\n[sync]\nclock_tolerance = {bad}\n");
        let err = Config::parse(&text, path).unwrap_err().to_string();
        assert!(err.contains("sync.clock_tolerance"), "{err}");
    }
}

#[test]
fn propagation_keys_have_defaults_and_ranges() {
    let path = Path::new("mesh.toml");
    let sync = Config::parse("node_id = \"n1\"\n", path).unwrap().sync;
    assert_eq!(sync.push_debounce.0, Duration::from_millis(500));
    assert_eq!(sync.poll_budget, DEFAULT_POLL_BUDGET);
    let ok = "node_id = \"n1\"\n[sync]\npush_debounce = \"0s\"\npoll_budget = 0\n";
    let sync = Config::parse(ok, path).unwrap().sync;
    assert_eq!(
        (sync.push_debounce.0, sync.poll_budget),
        (Duration::ZERO, 0)
    );
    for (key, bad) in [
        ("push_debounce", "\"61s\""),
        ("poll_budget", "1001"),
        ("poll_budget", "-1"),
    ] {
        let text = format!("node_id = \"n1\"\n[sync]\n{key} = {bad}\n");
        let err = Config::parse(&text, path).unwrap_err().to_string();
        assert!(err.contains(key), "{key} = {bad}: {err}");
    }
}

#[test]
fn remote_urls_with_credentials_are_refused_and_redacted() {
    for bad in [
        "https://bot:s3cret@example.com/o/r.git",
        "https://ghp_s3cret@github.com/o/r.git",
        "http://u:s3cret@127.0.0.1:8080/r.git",
        "ssh://git:s3cret@example.com/r.git",
    ] {
        let m = check_remote_url(bad).unwrap_err();
        assert!(!m.contains("s3cret"), "{m}");
        assert!(
            m.contains("credential helper") && m.contains("GITMESH_GIT_TOKEN"),
            "{m}"
        );
    }
    for good in [
        "https://github.com/o/r.git",
        "ssh://git@example.com/r.git",
        "git@github.com:o/r.git",
        "/srv/mesh.git",
        "https://host/o/r@v1.git",
    ] {
        assert_eq!(check_remote_url(good), Ok(()), "{good}");
    }
    let text = "[ledger]\nremote = \"https://bot:s3cret@example.com/r.git\"\n";
    let e = Config::parse(&format!("node_id = \"a\"\n{text}"), Path::new("mesh.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ledger.remote") && !e.contains("s3cret"), "{e}");
    let e = Config::parse(
        "node_id = \"a\"\nbogus = \"https://u:s3cret@h/x\"\n",
        Path::new("m"),
    )
    .unwrap_err()
    .to_string();
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn out_of_range_durations_and_sizes_name_their_key() {
    let base = "node_id = \"a\"\n";
    for (extra, key) in [
        (
            "[sync]\ninterval = \"0s\"\n",
            "sync.interval = 0s is out of range",
        ),
        ("[sync]\nlease_ttl = \"2days\"\n", "sync.lease_ttl"),
        ("[sync]\npush_retries = 1000\n", "sync.push_retries = 1000"),
        (
            "[sync]\nremote_timeout = \"1s\"\n",
            "sync.remote_timeout = 1s is out of range (5s to 1h)",
        ),
        (
            "[sync]\nremote_timeout = \"2h\"\n",
            "sync.remote_timeout = 2h",
        ),
        (
            "[limits]\nmax_payload_bytes = 5000000\n",
            "limits.max_payload_bytes",
        ),
        (
            "[policy]\ncommand_freshness = \"0s\"\n",
            "policy.command_freshness",
        ),
        (
            "[import]\nquarantine_max_files = 0\n",
            "import.quarantine_max_files = 0",
        ),
        (
            "[import]\nquarantine_max_bytes = 1000\n",
            "import.quarantine_max_bytes = 1000",
        ),
        (
            "[import]\nmax_files_per_peer = 0\n",
            "import.max_files_per_peer = 0",
        ),
        (
            "[import]\nmax_bytes_per_peer = 1\n",
            "import.max_bytes_per_peer = 1",
        ),
        (
            "[[handlers]]\nname = \"h\"\nmatch = \"a.*\"\nrun = [\"true\"]\ntimeout = \"0s\"\n",
            "handlers.h.timeout",
        ),
        (
            "[[lanes]]\nid = \"l\"\nstart = [\"true\"]\nstop = [\"true\"]\ntimeout = \"2h\"\n",
            "lanes.l.timeout",
        ),
    ] {
        let text = format!("{base}{extra}");
        let err = Config::parse(&text, Path::new("mesh.toml"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(key), "{extra}: {err}");
    }
    // The defaults and the documented example are in range.
    assert!(Config::parse(base, Path::new("mesh.toml")).is_ok());
}
