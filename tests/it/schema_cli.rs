//! `gitmesh schema check|publish|show`: broken files are refused with their reason,
//! published files are staged for the ledger and used at once.

use crate::common::{TestEnv, gm, json_err, json_ok, publish_args, run, schema_row};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// `gitmesh --json ARGS` that must exit 1; returns the error message.
fn fails(root: &Path, args: &[&str]) -> (String, String) {
    let (code, v) = json_err(root, args);
    assert_eq!(code, 1, "{args:?}: {v}");
    assert_eq!(v["ok"], false);
    (
        v["error"]["kind"].as_str().unwrap().to_string(),
        v["error"]["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn check_explains_broken_schema_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&str, &str, &str)] = &[
        ("v1.json", "{\"type\": ", "not JSON"),
        (
            "v1.json",
            r#"{"type": "strin"}"#,
            "not a valid draft 2020-12 schema at schema $.type",
        ),
        (
            "v1.json",
            r#"{"properties": {"a": {"minLength": -1}}}"#,
            "$.properties.a.minLength",
        ),
        (
            "v1.json",
            r#"{"$schema": "http://json-schema.org/draft-07/schema#"}"#,
            "draft 2020-12",
        ),
        ("v1.json", "[1, 2]", "must be a JSON object"),
        (
            "v3.json",
            r#"{"x-gitmesh-upcast": {"from": 1, "steps": []}}"#,
            "must read v2",
        ),
        (
            "v2.json",
            r#"{"x-gitmesh-upcast": {"from": 1, "steps": [{"rename": {"from": "a"}}]}}"#,
            "missing field `to`",
        ),
        (
            "v2.json",
            r#"{"x-gitmesh-upcast": {"from": 1, "steps": [{"copy": {"from": "a", "to": "b"}}]}}"#,
            "unknown variant `copy`",
        ),
        (
            "v2.json",
            r#"{"x-gitmesh-upcast": {"from": 1, "steps": [{"move": {"from": "a", "to": "a.b"}}]}}"#,
            "steps[0]",
        ),
    ];
    for (i, (name, text, reason)) in cases.iter().enumerate() {
        let f = write(&d.join(format!("case{i}")).join(name), text);
        let (kind, msg) = fails(d, &["schema", "check", f.to_str().unwrap()]);
        assert_eq!(kind, "bad_schema", "{msg}");
        assert!(msg.contains(reason), "case {i}: {msg}");
        assert!(msg.contains(f.to_str().unwrap()), "names the file: {msg}");
    }
    // Plain text mode: the reason on stderr and exit 1.
    let f = d.join("case0/v1.json");
    let mut c = gm(d);
    c.args(["schema", "check", f.to_str().unwrap()]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not JSON"));

    let good = write(
        &d.join("good/v2.json"),
        r#"{"type": "object", "x-gitmesh-upcast": {"from": 1, "steps": [{"remove": {"path": "old"}}]}}"#,
    );
    let v = json_ok(d, &["schema", "check", good.to_str().unwrap()]);
    assert_eq!(v["valid"], true);
    assert_eq!(v["version"], 2);
    assert_eq!(v["upcast_from"], 1);
    assert_eq!(v["upcast_steps"], 1);
}

#[test]
fn publish_stages_valid_files_and_uses_them_at_once() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let src = env.path().join("schemas");
    write(
        &src.join("monitoring/host.seen/v1.json"),
        r#"{"type": "object", "required": ["host"]}"#,
    );
    write(
        &src.join("monitoring/host.seen/v2.json"),
        r#"{"type": "object", "required": ["hostname"], "x-gitmesh-upcast": {"from": 1, "steps": [{"rename": {"from": "host", "to": "hostname"}}]}}"#,
    );
    let v = json_ok(&root, &["schema", "publish", src.to_str().unwrap()]);
    assert_eq!(v["count"], 2);
    let staged = v["staged"].as_array().unwrap();
    let find = |et: &str, ver: u64| -> Value {
        staged
            .iter()
            .find(|s| s["event_type"] == et && s["version"] == ver)
            .unwrap()
            .clone()
    };
    assert_eq!(find("host.seen", 2)["upcast_from"], 1);
    assert_eq!(find("host.seen", 1)["replaces"], Value::Null);
    for rel in [
        "monitoring/host.seen/v1.json",
        "monitoring/host.seen/v2.json",
    ] {
        let want = std::fs::read(src.join(rel)).unwrap();
        for base in ["state/event_mesh/schema_outbox", "state/event_mesh/schemas"] {
            assert_eq!(
                std::fs::read(root.join(base).join(rel)).unwrap(),
                want,
                "{base}/{rel}"
            );
        }
    }
    // The node validates against them at once.
    let (kind, msg) = fails(
        &root,
        &publish_args("monitoring", "host.seen", &["--payload-json", "{}"]),
    );
    assert_eq!(kind, "schema_violation");
    assert!(
        msg.contains("monitoring/host.seen v1: payload $.host:"),
        "{msg}"
    );
    let listed = json_ok(&root, &["schema", "list"]);
    let sources: Vec<(&str, &str)> = listed["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["topic"] == "monitoring" && s["event_type"] == "host.seen")
        .map(|s| {
            (
                s["event_type"].as_str().unwrap(),
                s["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![("host.seen", "local"), ("host.seen", "local")]
    );
    let v1 = json_ok(
        &root,
        &[
            "schema",
            "show",
            "monitoring",
            "host.seen",
            "--version",
            "1",
        ],
    );
    assert_eq!(v1["schema"]["required"][0], "host");
    // The exporter reads the staged files with their ledger-relative paths.
    let paths = gitmesh::paths::NodePaths::new(&root);
    let files = gitmesh::schema::stage::outbox_files(&paths).unwrap();
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "monitoring/host.seen/v1.json",
            "monitoring/host.seen/v2.json",
        ]
    );
    // After the push, the exporter clears what it pushed; a file re-staged meanwhile stays.
    let restaged = r#"{"type": "object"}"#;
    write(
        &root.join("state/event_mesh/schema_outbox/monitoring/host.seen/v1.json"),
        restaged,
    );
    gitmesh::schema::stage::remove_staged(&paths, &files).unwrap();
    let left = gitmesh::schema::stage::outbox_files(&paths).unwrap();
    assert_eq!(
        left,
        vec![(
            "monitoring/host.seen/v1.json".to_string(),
            restaged.as_bytes().to_vec()
        )]
    );
    // The local override copies stay: the node keeps using them.
    assert!(
        root.join("state/event_mesh/schemas/monitoring/host.seen/v2.json")
            .exists()
    );
}

#[test]
fn publish_with_one_bad_file_stages_nothing() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let src = env.path().join("schemas");
    write(
        &src.join("monitoring/host.seen/v1.json"),
        r#"{"type": "object"}"#,
    );
    let bad = write(&src.join("monitoring/host.seen/v2.json"), r#"{"type": 5}"#);
    let (kind, msg) = fails(&root, &["schema", "publish", src.to_str().unwrap()]);
    assert_eq!(kind, "bad_schema");
    assert!(msg.contains(bad.to_str().unwrap()), "{msg}");
    assert!(!root.join("state/event_mesh/schema_outbox").exists());
    assert!(!root.join("state/event_mesh/schemas").exists());

    // Files outside the layout are named too.
    std::fs::remove_file(&bad).unwrap();
    let stray = write(&src.join("monitoring/host.seen/latest.json"), "{}");
    let (kind, msg) = fails(&root, &["schema", "publish", src.to_str().unwrap()]);
    assert_eq!(kind, "bad_schema_layout");
    assert!(msg.contains(stray.to_str().unwrap()), "{msg}");
    std::fs::remove_file(&stray).unwrap();
    let bad_topic = write(&src.join("Monitoring/host.seen/v1.json"), "{}");
    let (_, msg) = fails(&root, &["schema", "publish", src.to_str().unwrap()]);
    assert!(msg.contains(bad_topic.to_str().unwrap()), "{msg}");

    let (kind, _) = fails(
        &root,
        &[
            "schema",
            "publish",
            env.path().join("missing").to_str().unwrap(),
        ],
    );
    assert_eq!(kind, "bad_schema_layout");
    let (kind, _) = fails(&root, &["schema", "show", "monitoring", "nothing.here"]);
    assert_eq!(kind, "not_found");

    // A broken schema put in the override directory by hand is listed as broken and
    // blocks publishing its type with the file named.
    let broken = write(
        &root.join("state/event_mesh/schemas/monitoring/host.seen/v1.json"),
        r#"{"type": 5}"#,
    );
    let row = schema_row(&root, "host.seen");
    assert!(row["error"].as_str().unwrap().contains("$.type"), "{row}");
    let (kind, msg) = fails(&root, &publish_args("monitoring", "host.seen", &[]));
    assert_eq!(kind, "bad_schema");
    assert!(msg.contains(broken.to_str().unwrap()), "{msg}");
}
