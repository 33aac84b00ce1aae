use super::*;
use crate::fsutil::DiskSpace;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    crate::event::parse_timestamp(s).unwrap()
}

/// An attempt that finished `minute` minutes into 2026.
fn step(minute: u32, outcome: SyncOutcome, kind: Option<&str>) -> SyncAttempt {
    SyncAttempt {
        at: format!("2026-01-01T00:{minute:02}:00Z"),
        outcome,
        kind: kind.map(str::to_string),
        message: kind.map(|k| format!("failed: {k}")),
        duration_ms: 5,
    }
}

fn inputs<'a>(sync: &'a SyncState, now: &str) -> HealthInputs<'a> {
    HealthInputs {
        now: at(now),
        sync,
        max_failed_syncs: 3,
        max_sync_age: Duration::from_secs(300),
        disk: None,
        alerts: Vec::new(),
    }
}

fn codes(h: &Health) -> Vec<&'static str> {
    h.reasons.iter().map(|r| r.code).collect()
}

#[test]
fn failures_count_up_and_a_success_resets_them() {
    let s = SyncState::default()
        .after(step(0, SyncOutcome::Ok, None))
        .after(step(1, SyncOutcome::Offline, Some("offline")))
        .after(step(2, SyncOutcome::Error, Some("auth")));
    assert_eq!(s.consecutive_failures, 2);
    assert_eq!(s.last_success.as_deref(), Some("2026-01-01T00:00:00Z"));
    assert_eq!(
        s.last_attempt.as_ref().unwrap().kind.as_deref(),
        Some("auth")
    );
    let s = s.after(step(3, SyncOutcome::Ok, None));
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.last_success.as_deref(), Some("2026-01-01T00:03:00Z"));
}

#[test]
fn each_rule_at_its_threshold() {
    let ok = SyncState::default().after(step(0, SyncOutcome::Ok, None));
    // Fresh success: healthy. Exactly max age: still healthy; one second more: stale.
    assert!(assess(&inputs(&ok, "2026-01-01T00:04:00Z")).healthy);
    assert!(assess(&inputs(&ok, "2026-01-01T00:05:00Z")).healthy);
    assert_eq!(
        codes(&assess(&inputs(&ok, "2026-01-01T00:05:01Z"))),
        ["sync_stale"]
    );

    let two = ok
        .clone()
        .after(step(1, SyncOutcome::Offline, Some("offline")))
        .after(step(2, SyncOutcome::Contended, Some("contended")));
    assert!(assess(&inputs(&two, "2026-01-01T00:02:00Z")).healthy);
    let three = two.after(step(3, SyncOutcome::Offline, Some("offline")));
    assert_eq!(
        codes(&assess(&inputs(&three, "2026-01-01T00:03:00Z"))),
        ["sync_failing"]
    );
    let mut off = inputs(&three, "2026-01-01T00:03:00Z");
    off.max_failed_syncs = 0;
    assert!(assess(&off).healthy, "0 turns the rule off");
}

#[test]
fn a_refused_sync_is_unhealthy_at_once_an_offline_one_is_not() {
    for (kind, healthy) in [
        ("auth", false),
        ("rejected", false),
        ("not_found", false),
        ("offline", true),
        ("timeout", true),
        ("git", true),
    ] {
        let s = SyncState::default().after(step(0, SyncOutcome::Error, Some(kind)));
        let h = assess(&inputs(&s, "2026-01-01T00:00:10Z"));
        assert_eq!(h.healthy, healthy, "{kind}");
        if !healthy {
            assert_eq!(codes(&h), ["sync_refused"]);
            assert!(h.reasons[0].message.contains(kind));
        }
    }
}

#[test]
fn alerts_and_low_disk() {
    let s = SyncState::default();
    let mut i = inputs(&s, "2026-01-01T00:00:00Z");
    assert!(
        assess(&i).healthy,
        "a node that never synced has no sync reason"
    );
    i.alerts = vec!["fork n2".into()];
    let disk = |free| DiskStatus {
        space: DiskSpace {
            free_bytes: free,
            total_bytes: 1 << 30,
        },
        min_free_bytes: 100 << 20,
        low: free < 100 << 20,
    };
    i.disk = Some(disk(50 << 20));
    let h = assess(&i);
    assert_eq!(codes(&h), ["alerts", "low_disk"]);
    assert!(h.reasons[1].message.contains("50 MiB free"));
    i.alerts.clear();
    i.disk = Some(disk(100 << 20));
    assert!(assess(&i).healthy);
}

#[test]
fn messages_are_redacted_and_bounded() {
    let err: crate::ops::Result<crate::ops::sync::SyncReport> =
        Err(crate::ops::OpsError::Usage(format!(
            "fatal: unable to access 'https://bot:hunter22@git.example/r.git/' {}",
            "x".repeat(5000)
        )));
    let a = attempt_of(
        &err,
        at("2026-01-01T00:00:00Z"),
        Duration::from_millis(1500),
    );
    assert_eq!(a.outcome, SyncOutcome::Error);
    assert_eq!(a.kind.as_deref(), Some("usage"));
    assert_eq!(a.duration_ms, 1500);
    let m = a.message.unwrap();
    assert!(!m.contains("hunter22"), "{m}");
    assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 3);
}
