//! Publish-time validation against the built-in schemas and `strict_schemas`.

use crate::common::{TestEnv, gm, json_err, json_ok, parse_json, printed};
use serde_json::{Value, json};
use std::path::Path;

/// Runs `gitmesh --json ARGS`, asserts exit 1 and `ok: false`, returns the error object.
fn refused(root: &Path, args: &[&str]) -> Value {
    let (code, v) = json_err(root, args);
    assert_eq!(code, 1, "gitmesh {args:?}: {v}");
    assert_eq!(v["ok"], false, "{v}");
    v["error"].clone()
}

fn publish(topic: &str, event_type: &str, payload: &Value) -> Vec<String> {
    vec![
        "mesh-publish".into(),
        "--topic".into(),
        topic.into(),
        "--event-type".into(),
        event_type.into(),
        "--payload-json".into(),
        payload.to_string(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every built-in type: (topic, event_type, valid payload, invalid payload, path named, rule).
fn cases() -> Vec<(
    &'static str,
    &'static str,
    Value,
    Value,
    &'static str,
    &'static str,
)> {
    vec![
        (
            "monitoring",
            "heartbeat.changed",
            json!({"status": "ok"}),
            json!({"status": 3}),
            "$.status",
            "type",
        ),
        (
            "scheduling",
            "tick.requested",
            json!({"reason": "timer"}),
            json!({"target_node": 7}),
            "$.target_node",
            "type",
        ),
        (
            "scheduling",
            "task.enqueued",
            json!({"task_id": "t-1", "routing_options": [{"score": 0.9, "healthy": true}]}),
            json!({"routing_options": []}),
            "$.task_id",
            "required",
        ),
        (
            "scheduling",
            "task.scheduled",
            json!({"task_id": "t-1"}),
            json!({"task_id": ""}),
            "$.task_id",
            "minLength",
        ),
        (
            "scheduling",
            "lanes.ensure.summary",
            json!({"requested_count": 2, "failed_count": 0}),
            json!({"failed_count": -1}),
            "$.failed_count",
            "minimum",
        ),
        (
            "scheduling",
            "lanes.start.summary",
            json!({"started_count": 1}),
            json!({"started_count": 1.5}),
            "$.started_count",
            "type",
        ),
        (
            "routing",
            "route.requested",
            json!({"task_id": "t-1", "options": [{"node_id": "n2", "score": 1}], "required_capabilities": ["gpu"]}),
            json!({"options": [{"score": 1}, {"healthy": "yes"}]}),
            "$.options[1].healthy",
            "type",
        ),
        (
            "routing",
            "route.selected",
            json!({"task_id": "t-1", "score": 0.5}),
            json!({"score": "high"}),
            "$.score",
            "type",
        ),
        (
            "routing",
            "route.blocked",
            json!({"task_id": "t-1", "reason": "no_healthy_option"}),
            json!({"reason": ["x"]}),
            "$.reason",
            "type",
        ),
        (
            "monitoring",
            "lane.ensure_failed",
            json!({"lane_id": "lane-a", "failed_count": 1}),
            json!({"lane_id": 1}),
            "$.lane_id",
            "type",
        ),
        (
            "monitoring",
            "lane.start_failed",
            json!({"lane_id": "lane-a", "error": "exit 3"}),
            json!({"error": {"code": 3}}),
            "$.error",
            "type",
        ),
        (
            "scaling",
            "decision.requested",
            json!({"failed_count": 1, "started_count": 0}),
            json!({"failed_count": "1"}),
            "$.failed_count",
            "type",
        ),
        (
            "scaling",
            "decision.made",
            json!({"decision": "hold", "decision_trace": {"table_version": 1}}),
            json!({"decision_trace": "rule-1"}),
            "$.decision_trace",
            "type",
        ),
        (
            "scaling",
            "command.requested",
            json!({"command_id": "cmd_0a1b", "leader_epoch": 3, "target_lane": null, "target_node": "n2"}),
            json!({"command_id": "cmd_0a1b"}),
            "$.leader_epoch",
            "required",
        ),
        (
            "scaling",
            "command.applied",
            json!({"command_id": "cmd_0a1b", "target_lane": "lane-a"}),
            json!({"command_id": "0a1b"}),
            "$.command_id",
            "pattern",
        ),
        (
            "scaling",
            "command.rejected",
            json!({"command_id": "cmd_0a1b", "reason": "stale_epoch"}),
            json!({"leader_epoch": -2}),
            "$.leader_epoch",
            "minimum",
        ),
    ]
}

#[test]
fn every_builtin_type_accepts_valid_and_refuses_invalid_payloads_naming_the_path() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let cases = cases();
    assert_eq!(
        cases.len(),
        16,
        "one case per row of the built-in handler table"
    );
    let listed = json_ok(&root, &["schema", "list"]);
    for (topic, et, good, bad, path, rule) in &cases {
        assert!(
            listed["schemas"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["topic"] == *topic
                    && s["event_type"] == *et
                    && s["source"] == "builtin"),
            "{topic}/{et} has no built-in schema"
        );
        let ok = json_ok(&root, &args(&publish(topic, et, good)));
        assert_eq!(ok["event"]["payload"], *good);
        let err = refused(&root, &args(&publish(topic, et, bad)));
        assert_eq!(err["kind"], "schema_violation", "{topic}/{et}: {err}");
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("payload {path}:")),
            "{topic}/{et}: {msg}"
        );
        assert!(msg.contains(&format!("`{rule}`")), "{topic}/{et}: {msg}");
        assert!(msg.contains(&format!("{topic}/{et} v1")), "{msg}");
    }
    // Only the valid events were written.
    let events = json_ok(&root, &["events"]);
    assert_eq!(events["events"].as_array().unwrap().len(), cases.len());
}

#[test]
fn a_refused_event_in_a_batch_names_its_line_and_writes_nothing() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let mut c = gm(&root);
    c.args(["--json", "mesh-publish", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(
            stdin,
            r#"{{"topic":"scheduling","event_type":"task.enqueued","payload":{{"task_id":"a"}}}}"#
        )
        .unwrap();
        writeln!(
            stdin,
            r#"{{"topic":"scheduling","event_type":"task.enqueued","payload":{{"task_id":1}}}}"#
        )
        .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let v = parse_json(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["error"]["kind"], "schema_violation");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("line 2:") && msg.contains("$.task_id"),
        "{msg}"
    );
    assert_eq!(
        json_ok(&root, &["events"])["events"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn strict_schemas_refuses_unknown_types_and_versions() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let payload = json!({"anything": 1});
    // Lenient by default: a type without a schema is accepted.
    json_ok(&root, &args(&publish("audit", "login.seen", &payload)));
    let cfg = root.join("mesh.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("strict_schemas = false", "strict_schemas = true");
    assert!(text.contains("strict_schemas = true"));
    std::fs::write(&cfg, text).unwrap();
    let err = refused(&root, &args(&publish("audit", "login.seen", &payload)));
    assert_eq!(err["kind"], "unknown_schema");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("audit/login.seen v1"),
        "{err}"
    );
    // A version with no schema is unknown too, even when v1 of the type has one.
    let mut a = publish("scheduling", "task.scheduled", &json!({"task_id": "t"}));
    a.extend(["--schema-version".into(), "2".into()]);
    let err = refused(&root, &args(&a));
    assert_eq!(err["kind"], "unknown_schema");
    // Known types still publish.
    json_ok(
        &root,
        &args(&publish(
            "scheduling",
            "task.scheduled",
            &json!({"task_id": "t"}),
        )),
    );
}

#[test]
fn mesh_status_shows_flagged_imports() {
    let env = TestEnv::new();
    let root = env.node("n1");
    assert_eq!(json_ok(&root, &["mesh-status"])["schema_flagged"], 0);
    let paths = gitmesh::paths::NodePaths::new(&root);
    let flagged: Vec<_> = (0..3)
        .map(|i| gitmesh::schema::FlaggedEvent {
            event_id: format!("evt_{i:032x}"),
            reason: "scheduling/task.enqueued v1: payload $.task_id: missing".into(),
        })
        .collect();
    gitmesh::schema::record_flagged(&paths, &flagged[..2]).unwrap();
    gitmesh::schema::record_flagged(&paths, &flagged[2..]).unwrap();
    assert_eq!(json_ok(&root, &["mesh-status"])["schema_flagged"], 3);
    let text = printed(&root, &["mesh-status"]);
    assert!(
        text.contains("3 imported events broke their schema"),
        "{text}"
    );
}
