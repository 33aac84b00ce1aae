//! Health you can see and alert on: every sync (CLI or daemon) records its outcome in
//! the node root; `mesh-status` shows it with the daemon, the lease, the disk and the
//! verdict; `mesh-status --check` exits 3 and `/healthz` answers 503 when unhealthy;
//! `/metrics` carries the same facts and the process's resources.

use crate::common::{
    TestEnv, gm, install_hook, json_err, json_ok, publish_batch, run, set_config_key,
};
use crate::daemon_support::{Daemon, http_get, parse_prometheus, poll_until};
use crate::dispatch_support::{dispatch, publish, write_config};
use serde_json::{Value, json};
use std::path::Path;

/// `mesh-status --json`.
fn status(root: &Path) -> Value {
    json_ok(root, &["mesh-status"])
}

/// `mesh-status --check`: (exit code, `--json` report, human output).
fn check(root: &Path) -> (i32, Value, String) {
    let mut c = gm(root);
    c.args(["--json", "mesh-status", "--check"]);
    let out = run(c);
    let v = crate::common::parse_json(&out);
    let mut c = gm(root);
    c.args(["mesh-status", "--check"]);
    let human = run(c);
    assert_eq!(
        out.status.code(),
        human.status.code(),
        "both forms end the same"
    );
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&human.stdout).into_owned(),
    )
}

fn reason_codes(health: &Value) -> Vec<String> {
    health["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

/// `mesh-sync --json` with extra environment: (exit code, report).
fn sync_env(root: &Path, env: &[(&str, &str)]) -> (i32, Value) {
    let mut c = gm(root);
    c.args(["--json", "mesh-sync"]).envs(env.iter().copied());
    let out = run(c);
    (
        out.status.code().unwrap_or(-1),
        crate::common::parse_json(&out),
    )
}

#[test]
fn every_sync_is_recorded_and_refused_or_repeated_failures_make_the_node_unhealthy() {
    let env = TestEnv::with_remote();
    let a = env.node("a");
    let before = status(&a);
    assert!(before["sync"]["last_attempt"].is_null(), "{before}");
    assert_eq!(before["daemon"]["running"], false);
    assert_eq!(before["health"], json!({"healthy": true, "reasons": []}));
    assert!(
        before["disk"]["free_bytes"].as_u64().unwrap() > 0,
        "{before}"
    );

    // A good sync: recorded as ok, the lease it took is current.
    assert_eq!(sync_env(&a, &[]).0, 0);
    let s = status(&a);
    let ok_at = s["sync"]["last_success"].as_str().unwrap().to_string();
    assert_eq!(s["sync"]["last_attempt"]["outcome"], "ok", "{s}");
    assert_eq!(s["sync"]["last_attempt"]["at"], ok_at.as_str());
    assert_eq!(s["sync"]["consecutive_failures"], 0);
    assert_eq!(s["leader"]["leader_id"], "a");
    assert_eq!(s["lease_expired"], false);
    let (code, v, human) = check(&a);
    assert_eq!(code, 0, "{v}");
    assert!(human.contains("health    ok"), "{human}");

    // The server refuses the push: unhealthy at once, with git's message.
    install_hook(
        env.remote(),
        "pre-receive",
        "#!/bin/sh\necho 'push refused: frozen for audit' >&2\nexit 1\n",
    );
    publish_batch(&a, 1, "refused");
    assert_eq!(sync_env(&a, &[]).0, 1);
    let s = status(&a);
    let last = &s["sync"]["last_attempt"];
    assert_eq!(
        (last["outcome"].as_str(), last["kind"].as_str()),
        (Some("error"), Some("rejected")),
        "{s}"
    );
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("frozen for audit"),
        "{s}"
    );
    assert_eq!(
        s["sync"]["last_success"],
        ok_at.as_str(),
        "the last success stays"
    );
    assert_eq!(s["sync"]["consecutive_failures"], 1);
    assert_eq!(reason_codes(&s["health"]), ["sync_refused"]);
    // Plain mesh-status still exits 0; --check exits 3 with the reason in both forms.
    assert!(
        run({
            let mut c = gm(&a);
            c.arg("mesh-status");
            c
        })
        .status
        .success()
    );
    let (code, v, human) = check(&a);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["ok"], true, "the report itself was built: {v}");
    assert!(human.contains("UNHEALTHY sync_refused"), "{human}");
    assert!(human.contains("frozen for audit"), "{human}");

    // Unreachable twice more:
    // the third failure in a row crosses max_failed_syncs = 3.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mesh.git");
    for n in 2..=3 {
        assert_eq!(sync_env(&a, &[("GITMESH_REMOTE", &url)]).0, 75);
        let s = status(&a);
        assert_eq!(s["sync"]["consecutive_failures"], n);
        assert_eq!(s["sync"]["last_attempt"]["outcome"], "offline");
        assert_eq!(s["sync"]["last_attempt"]["kind"], "offline");
    }
    let (code, v, _) = check(&a);
    assert_eq!(code, 3);
    assert_eq!(reason_codes(&v["health"]), ["sync_failing"], "{v}");

    // Fixed: one good sync clears the streak and the verdict.
    std::fs::remove_file(env.remote().join("hooks/pre-receive")).unwrap();
    assert_eq!(sync_env(&a, &[]).0, 0);
    let (code, v, _) = check(&a);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["sync"]["consecutive_failures"], 0);
    assert_ne!(v["sync"]["last_success"], ok_at.as_str());
}

#[test]
fn a_stale_last_success_open_alerts_and_low_disk_are_reasons() {
    let env = TestEnv::new();
    let a = env.node("a");
    assert_eq!(sync_env(&a, &[]).0, 0);
    // The last success long ago (older than 5 x sync.interval, the default max_sync_age).
    let path = a.join("state/event_mesh/sync_state.json");
    let mut st: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    st["last_success"] = json!("2020-01-01T00:00:00.000000Z");
    std::fs::write(&path, st.to_string()).unwrap();
    let (code, v, human) = check(&a);
    assert_eq!(
        (code, reason_codes(&v["health"])),
        (3, vec!["sync_stale".to_string()]),
        "{v}"
    );
    assert!(human.contains("2020-01-01"), "{human}");

    // Less free space than [health] min_free_mb: low disk, before it runs out.
    set_config_key(&a, "min_free_mb", "1099511627776");
    let (code, v, human) = check(&a);
    assert_eq!(code, 3);
    assert_eq!(
        reason_codes(&v["health"]),
        ["sync_stale", "low_disk"],
        "{v}"
    );
    assert_eq!(v["disk"]["low"], true);
    assert!(human.contains("(LOW)"), "{human}");

    // A garbled state file is ignored (the next sync rewrites it), never fatal.
    std::fs::write(&path, "{not json").unwrap();
    set_config_key(&a, "min_free_mb", "0");
    let (code, v, _) = check(&a);
    assert_eq!(code, 0, "{v}");
    assert!(v["sync"]["last_attempt"].is_null());
    assert_eq!(sync_env(&a, &[]).0, 0);
    assert_eq!(status(&a)["sync"]["last_attempt"]["outcome"], "ok");
}

#[test]
fn the_daemon_records_its_syncs_and_serves_healthz_and_health_metrics() {
    let env = TestEnv::new();
    let a = env.node("a");
    // A handler that fails until a flag file exists: one dead letter, resolved later.
    let flag = env.path().join("handler-ok");
    let body = format!(
        "[[handlers]]\nname = \"gate\"\nmatch = \"ops.job.*\"\nrun = [\"sh\", \"-c\", \"cat >/dev/null; test -e {}\"]\ntimeout = \"5s\"\nretries = 0\nbackoff = \"10ms\"\n",
        flag.display()
    );
    write_config(&a, "a", &body);
    publish(&a, "ops", "job.done", json!({"n": 1}));
    assert_eq!(dispatch(&a)["dead_lettered"], 1);

    let d = Daemon::start(&a, &["--interval", "1h"]);
    let s = poll_until("the daemon's first sync is recorded", || {
        let s = d.get_json("/status");
        (s["sync"]["last_attempt"]["outcome"] == "ok").then_some(s)
    });
    assert_eq!(s["daemon"]["running"], true, "{s}");
    assert_eq!(s["daemon"]["pid"], d.child.id());
    assert_eq!(s["daemon"]["listen"], d.addr.as_str());
    // The CLI sees the same daemon and the same record.
    let cli = status(&a);
    assert_eq!(cli["daemon"]["pid"], d.child.id());
    assert_eq!(cli["sync"], s["sync"]);

    let (code, body) = http_get(&d.addr, "/healthz").unwrap();
    let h: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (code, &h),
        (200, &json!({"ok": true, "healthy": true, "reasons": []}))
    );

    let m = parse_prometheus(&d.get("/metrics")).unwrap();
    let val = |name: &str| m.value(name, &[]).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(val("gitmesh_healthy"), 1.0);
    assert_eq!(val("gitmesh_sync_consecutive_failures"), 0.0);
    assert!(val("gitmesh_last_sync_success_time_seconds") > 1.7e9);
    assert!(val("gitmesh_disk_free_bytes") > 0.0);
    assert_eq!(val("gitmesh_lease_expired"), 0.0);
    assert_eq!(
        m.value("gitmesh_unhealthy_reason", &[("reason", "low_disk")]),
        Some(0.0)
    );
    assert!(val("process_resident_memory_bytes") > 0.0);
    assert!(val("process_open_fds") >= 3.0);
    assert!(val("process_start_time_seconds") > 1.7e9);
    assert!(m.value("process_cpu_seconds_total", &[]).is_some());
    assert_eq!(val("gitmesh_dead_letter_events"), 1.0);

    // The operator fixes the handler and replays: the gauge returns to 0.
    std::fs::write(&flag, "").unwrap();
    let r = json_ok(&a, &["dead-letter", "retry"]);
    assert_eq!(r["resolved"], 1, "{r}");
    let m = parse_prometheus(&d.get("/metrics")).unwrap();
    assert_eq!(m.value("gitmesh_dead_letter_events", &[]), Some(0.0));

    // A threshold the disk cannot meet, reloaded: /healthz says 503 and why.
    let text = std::fs::read_to_string(a.join("mesh.toml")).unwrap();
    std::fs::write(
        a.join("mesh.toml"),
        format!("{text}\n[health]\nmin_free_mb = 1099511627776\n"),
    )
    .unwrap();
    d.signal("HUP");
    let (code, h) = poll_until("/healthz reports the low disk", || {
        let (code, body) = http_get(&d.addr, "/healthz").ok()?;
        (code == 503).then(|| (code, serde_json::from_str::<Value>(&body).unwrap()))
    });
    assert_eq!(code, 503);
    assert_eq!(h["healthy"], false);
    assert_eq!(reason_codes(&h), ["low_disk"], "{h}");
    let m = parse_prometheus(&d.get("/metrics")).unwrap();
    assert_eq!(m.value("gitmesh_healthy", &[]), Some(0.0));
    assert_eq!(
        m.value("gitmesh_unhealthy_reason", &[("reason", "low_disk")]),
        Some(1.0)
    );
    let (code, _) = json_err(&a, &["mesh-status", "--check"]);
    assert_eq!(code, 3);
    d.signal("TERM");
    let (st, _, _) = d.wait_exit(crate::daemon_support::WAIT);
    assert!(st.success());
    assert_eq!(
        status(&a)["daemon"]["running"],
        false,
        "the lock went with it"
    );
}
