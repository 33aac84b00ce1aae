//! The node core through the real binary: init, publish, events, status, errors.

use crate::common;
use crate::common::{TestEnv, gm, json_ok, parse_json, printed, publish_args, run};
use serde_json::Value;

fn log_lines(root: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap_or_default();
    text.lines().map(str::to_string).collect()
}

#[test]
fn init_creates_the_layout_and_is_safe_to_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("n1");
    let first = json_ok(
        &root,
        &[
            "mesh-init",
            "--node-id",
            "N1",
            "--capabilities",
            "routing,scaling",
        ],
    );
    assert_eq!(first["node_id"], "n1");
    assert_eq!(first["created"], true);
    for p in [
        "mesh.toml",
        "artifacts/event_mesh",
        "state/event_mesh",
        "state/github_coordination",
    ] {
        assert!(root.join(p).exists(), "{p} missing");
    }
    let cfg = std::fs::read_to_string(root.join("mesh.toml")).unwrap();
    assert!(cfg.contains("node_id = \"n1\""), "{cfg}");
    assert!(cfg.contains("routing"), "{cfg}");
    let again = json_ok(&root, &["mesh-init", "--node-id", "n1"]);
    assert_eq!(again["created"], false);
    assert!(
        again["existing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "mesh.toml")
    );
    // A root keeps its identity.
    let mut c = gm(&root);
    c.args(["mesh-init", "--node-id", "other"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to node"));
}

#[test]
fn node_ids_that_could_escape_a_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["..", "a/b", "", ".x", "a b"] {
        let mut c = gm(&dir.path().join("x"));
        c.args(["--json", "mesh-init", "--node-id", bad]);
        let out = run(c);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let v = parse_json(&out);
        assert_eq!(v["ok"], false);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--node-id"),
            "{v}"
        );
        assert!(!dir.path().join("x/mesh.toml").exists());
    }
}

/// Canonical JSON written out by hand for a flat preimage (keys pre-sorted), then BLAKE3.
fn independent_plain_id(e: &Value) -> String {
    let payload = serde_json::to_string(&e["payload"]).unwrap(); // payload here has one string key
    let pre = format!(
        "{{\"causation_id\":{},\"event_type\":{},\"node_id\":{},\"payload\":{},\"timestamp\":{},\"topic\":{}}}",
        e["causation_id"], e["event_type"], e["node_id"], payload, e["timestamp"], e["topic"]
    );
    format!("evt_{}", &blake3::hash(pre.as_bytes()).to_hex()[..32])
}

#[test]
fn publish_assigns_seq_prev_and_a_recomputable_id() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let a = json_ok(
        &root,
        &publish_args(
            "scheduling",
            "task.enqueued",
            &["--payload-json", r#"{"task_id":"t-1"}"#],
        ),
    );
    assert_eq!(a["duplicate"], false);
    let e1 = &a["event"];
    assert_eq!(e1["seq"], 1);
    assert_eq!(e1["prev"], "");
    assert_eq!(e1["source"], "cli");
    assert_eq!(e1["correlation_id"], e1["event_id"]);
    assert_eq!(e1["event_id"].as_str().unwrap(), independent_plain_id(e1));
    let ts = e1["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z'));

    let b = json_ok(
        &root,
        &publish_args(
            "routing",
            "route.requested",
            &[
                "--payload-json",
                r#"{"task_id":"t-1"}"#,
                "--causation-id",
                e1["event_id"].as_str().unwrap(),
            ],
        ),
    );
    let e2 = &b["event"];
    assert_eq!(e2["seq"], 2);
    assert_eq!(e2["prev"], e1["event_id"]);
    assert_eq!(e2["correlation_id"], e1["event_id"]);
    assert_eq!(log_lines(&root).len(), 2);
    // The stored line is the printed envelope.
    let stored: Value = serde_json::from_str(&log_lines(&root)[1]).unwrap();
    assert_eq!(&stored, e2);
}

#[test]
fn dedupe_key_makes_a_repeat_a_no_op() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let args = [
        "mesh-publish",
        "--topic",
        "monitoring",
        "--event-type",
        "heartbeat.changed",
        "--dedupe-key",
        "hb-1",
    ];
    let first = json_ok(&root, &args);
    let mut with_payload = args.to_vec();
    with_payload.extend(["--payload-json", r#"{"n":2}"#]);
    let second = json_ok(&root, &with_payload);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["event"], first["event"]);
    assert_eq!(log_lines(&root).len(), 1);
    // Id from the documented dedupe preimage.
    let pre = r#"{"dedupe_key":"hb-1","event_type":"heartbeat.changed","node_id":"ws1","topic":"monitoring"}"#;
    let id = format!("evt_{}", &blake3::hash(pre.as_bytes()).to_hex()[..32]);
    assert_eq!(first["event"]["event_id"], id.as_str());
}

fn publish_stdin(root: &std::path::Path, input: &str) -> std::process::Output {
    let mut c = gm(root);
    c.args(["--json", "mesh-publish", "--stdin"]);
    common::run_with_stdin(c, input.as_bytes())
}

#[test]
fn stdin_batch_is_all_or_nothing() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let good = "{\"topic\":\"a\",\"event_type\":\"x.y\",\"payload\":{\"i\":1}}\n\n{\"topic\":\"a\",\"event_type\":\"x.y\",\"payload\":{\"i\":2},\"dedupe_key\":\"k\"}\n{\"topic\":\"a\",\"event_type\":\"x.y\",\"dedupe_key\":\"k\"}\n";
    let out = publish_stdin(&root, good);
    let v = parse_json(&out);
    assert_eq!(v["published"], 2, "{v}");
    assert_eq!(v["duplicates"], 1);
    assert_eq!(log_lines(&root).len(), 2);

    let bad = "{\"topic\":\"a\",\"event_type\":\"x.y\"}\n{\"topic\":\"a\",\"event_type\":\"x.y\"}\n{\"topic\":\"a\",\"event_type\":\"x.y\",\"payload\":{\"token\":\"abc\"}}\n";
    let out = publish_stdin(&root, bad);
    assert_eq!(out.status.code(), Some(1));
    let v = parse_json(&out);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("line 3") && msg.contains("$.token"), "{msg}");
    assert_eq!(
        log_lines(&root).len(),
        2,
        "nothing of the bad batch was written"
    );

    let out = publish_stdin(&root, "{\"topic\":\"a\"}\nnot json\n");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        parse_json(&out)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1")
    );
    assert_eq!(log_lines(&root).len(), 2);
}

#[test]
fn bad_payloads_are_refused_with_the_flag_or_path_named() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let cases: &[(&str, i32, &str)] = &[
        ("[1,2]", 2, "--payload-json"),
        ("{not json", 2, "--payload-json"),
        (r#"{"db":{"password":"hunter2"}}"#, 1, "$.db.password"),
        (
            r#"{"note":"ghp_0123456789abcdefghijABCDEFGHIJ012345"}"#,
            1,
            "$.note",
        ),
        (r#"{"k":["AKIAIOSFODNN7EXAMPLE"]}"#, 1, "$.k[0]"),
    ];
    for (payload, code, needle) in cases {
        let mut c = gm(&root);
        c.arg("--json")
            .args(publish_args("t", "e", &["--payload-json", payload]));
        let out = run(c);
        assert_eq!(out.status.code(), Some(*code), "{payload}");
        let v = parse_json(&out);
        assert_eq!(v["ok"], false);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{payload}: {msg}");
    }
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(70_000));
    let mut c = gm(&root);
    c.args(publish_args("t", "e", &["--payload-json", &big]));
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the limit"));
    let mut c = gm(&root);
    c.args(["mesh-publish", "--topic", "Bad Topic", "--event-type", "e"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic"));
    assert!(log_lines(&root).is_empty());
}

#[test]
fn events_filters_and_limits() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let mut input = String::new();
    for i in 0..30 {
        let topic = if i % 3 == 0 { "scaling" } else { "monitoring" };
        input.push_str(&format!(
            "{{\"topic\":\"{topic}\",\"event_type\":\"e.t\",\"payload\":{{\"i\":{i}}}}}\n"
        ));
    }
    assert!(publish_stdin(&root, &input).status.success());
    let all = json_ok(&root, &["events"]);
    assert_eq!(all["events"].as_array().unwrap().len(), 30);
    let scaling = json_ok(&root, &["events", "--topic", "scaling"]);
    assert_eq!(scaling["events"].as_array().unwrap().len(), 10);
    let last = json_ok(&root, &["events", "--limit", "3"]);
    let seqs: Vec<u64> = last["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![28, 29, 30]);
    let last_scaling = json_ok(&root, &["events", "--topic", "scaling", "--limit", "2"]);
    let seqs: Vec<u64> = last_scaling["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![25, 28]);
    assert_eq!(
        json_ok(&root, &["events", "--node", "other"])["events"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        json_ok(&root, &["events", "--since", "1h"])["events"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
    assert_eq!(
        json_ok(&root, &["events", "--since", "2999-01-01T00:00:00Z"])["events"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let mut c = gm(&root);
    c.args(["events", "--ndjson", "--limit", "5"]);
    let out = run(c);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(text.lines().last().unwrap(), log_lines(&root)[29]);
    let table = printed(&root, &["events", "--limit", "2"]);
    assert!(table.starts_with("TIMESTAMP"), "{table}");
    assert!(table.contains("monitoring.e.t"), "{table}");
}

#[test]
fn status_reports_counts_and_lag() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    for i in 0..3 {
        json_ok(
            &root,
            &publish_args("t", "e", &["--payload-json", &format!("{{\"i\":{i}}}")]),
        );
    }
    let s = json_ok(&root, &["mesh-status"]);
    assert_eq!(s["node_id"], "ws1");
    assert_eq!(s["event_count"], 3);
    assert_eq!(s["own_event_count"], 3);
    assert_eq!(s["imported_event_count"], 0);
    assert_eq!(s["last_seq"], 3);
    assert_eq!(s["dispatch_lag"], 3);
    assert_eq!(s["pending_export"], 3);
    assert!(s["peers"].is_array());
    let text = printed(&root, &["mesh-status"]);
    assert!(text.contains("ws1") && text.contains("3 total"), "{text}");
}

#[test]
fn usage_errors_exit_2_with_a_hint_and_json_when_asked() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let mut c = gm(&root);
    c.args(["mesh-publish", "--topik", "x"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--topik") && err.contains("--topic"), "{err}");
    let mut c = gm(&root);
    c.args(["mesh-status", "--json", "--bogus"]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(parse_json(&out)["error"]["kind"], "usage");
    // Uninitialised root: a clear message naming the file.
    let mut c = gm(&env.path().join("nowhere"));
    c.arg("mesh-status");
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mesh-init"));
}

#[test]
fn global_flags_work_before_or_after_the_subcommand() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let out = std::process::Command::new(common::bin())
        .args(["mesh-status", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(parse_json(&out)["node_id"], "ws1");
    let out = std::process::Command::new(common::bin())
        .arg("mesh-status")
        .env("GITMESH_ROOT", &root)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ws1"));
}

#[test]
fn config_with_unknown_key_names_it() {
    let env = TestEnv::new();
    let root = env.node("ws1");
    let path = root.join("mesh.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\nfavourite_colour = \"blue\"\n");
    std::fs::write(&path, text).unwrap();
    let mut c = gm(&root);
    c.args(["--json", "mesh-status"]);
    let v = parse_json(&run(c));
    assert_eq!(v["error"]["kind"], "config");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("favourite_colour") && msg.contains("mesh.toml"),
        "{msg}"
    );
}
