//! Schema evolution: upcast views in `events`, raw payloads with `--raw`, stable ids,
//! and schemas read from the ledger with local overrides on top.

use crate::common::{
    TestEnv, json_err, json_ok, printed, publish_args, publish_event, schema_row, sync,
};
use gitmesh::Envelope;
use serde_json::{Value, json};
use std::path::Path;

/// `host.seen` v2, upcasting v1 payloads (`host` renamed, a default `region`, ...).
pub(crate) const V2: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["hostname"],
  "properties": {"hostname": {"type": "string"}, "region": {"type": "string"}},
  "x-gitmesh-upcast": {"from": 1, "steps": [
    {"rename": {"from": "host", "to": "hostname"}},
    {"default": {"path": "region", "value": "eu"}},
    {"move": {"from": "cpu", "to": "metrics.cpu"}},
    {"map": {"path": "state", "values": {"up": "running"}}}
  ]}
}"#;

const V3: &str = r#"{
  "type": "object",
  "x-gitmesh-upcast": {"from": 2, "steps": [{"rename": {"from": "region", "to": "zone"}}]}
}"#;

/// Writes `text` at `path`, creating its directory.
pub(crate) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Where a node keeps its local `host.seen` schema of `version`.
pub(crate) fn local_schema(root: &Path, version: u32) -> std::path::PathBuf {
    root.join(format!(
        "state/event_mesh/schemas/monitoring/host.seen/v{version}.json"
    ))
}

/// Publishes a `monitoring` `host.seen` event, at schema `version` when given.
pub(crate) fn publish_host(root: &Path, payload: Value, version: Option<u32>) -> Value {
    let p = payload.to_string();
    let v = version.map(|v| v.to_string());
    let mut extra = vec!["--payload-json", p.as_str()];
    if let Some(v) = &v {
        extra.extend(["--schema-version", v]);
    }
    publish_event(root, "monitoring", "host.seen", &extra)
}

/// A v2 `host.seen` publish whose payload lacks `hostname`: (exit code, JSON).
pub(crate) fn publish_v2_without_hostname(root: &Path) -> (i32, Value) {
    let extra = ["--schema-version", "2", "--payload-json", r#"{"host":"x"}"#];
    json_err(root, &publish_args("monitoring", "host.seen", &extra))
}

/// The `schema list` row of `event_type`, if the node knows it.
fn schema_row_opt(root: &Path, event_type: &str) -> Option<Value> {
    json_ok(root, &["schema", "list"])["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["event_type"] == event_type)
        .cloned()
}

fn events(root: &Path, raw: bool) -> Vec<Value> {
    let mut a = vec!["events"];
    if raw {
        a.push("--raw");
    }
    json_ok(root, &a)["events"].as_array().unwrap().clone()
}

fn stored_lines(root: &Path) -> Vec<Envelope> {
    std::fs::read_to_string(root.join("artifacts/event_mesh/events.ndjson"))
        .unwrap()
        .lines()
        .map(|l| Envelope::from_json_line(l.as_bytes()).unwrap())
        .collect()
}

#[test]
fn v1_events_are_shown_upcast_and_raw_with_raw() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let old = json!({"host": "web-1", "cpu": 0.7, "state": "up"});
    let e1 = publish_host(&root, old.clone(), None);
    // Before any v2 schema the event is shown as stored.
    assert_eq!(events(&root, false)[0]["payload"], old);

    write(&local_schema(&root, 2), V2);
    let shown = events(&root, false);
    assert_eq!(shown[0]["event_id"], e1["event_id"]);
    assert_eq!(shown[0]["schema_version"], 2);
    assert_eq!(shown[0]["upcast_from"], 1);
    assert_eq!(
        shown[0]["payload"],
        json!({"hostname": "web-1", "region": "eu", "metrics": {"cpu": 0.7}, "state": "running"})
    );
    let raw = events(&root, true);
    assert_eq!(raw[0]["payload"], old);
    assert!(raw[0].get("schema_version").is_none());
    assert!(raw[0].get("upcast_from").is_none());

    // The table marks the upcast; --ndjson stays the stored line (backups).
    let table = printed(&root, &["events"]);
    assert!(table.contains("v1>v2"), "{table}");
    let nd = printed(&root, &["events", "--ndjson"]);
    assert_eq!(
        Envelope::from_json_line(nd.trim().as_bytes())
            .unwrap()
            .payload,
        *old.as_object().unwrap()
    );

    // v3 chains on top of v2; a v2 event goes one step, a v3 event none.
    write(&local_schema(&root, 3), V3);
    let e2 = publish_host(&root, json!({"hostname": "web-2", "region": "us"}), Some(2));
    let e3 = publish_host(&root, json!({"zone": "ap"}), Some(3));
    let shown = events(&root, false);
    assert_eq!(shown[0]["schema_version"], 3);
    assert_eq!(shown[0]["payload"]["zone"], "eu");
    assert_eq!(shown[1]["event_id"], e2["event_id"]);
    assert_eq!(shown[1]["upcast_from"], 2);
    assert_eq!(
        shown[1]["payload"],
        json!({"hostname": "web-2", "zone": "us"})
    );
    assert_eq!(shown[2]["event_id"], e3["event_id"]);
    assert!(shown[2].get("upcast_from").is_none());

    // A v2 publish is validated against v2.
    let (code, v) = publish_v2_without_hostname(&root);
    assert_eq!(code, 1);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$.hostname"),
        "{v}"
    );
}

#[test]
fn changing_a_schema_never_changes_an_existing_events_id() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let a = publish_host(&root, json!({"host": "a"}), None);
    let b = publish_host(&root, json!({"hostname": "b"}), Some(2));
    let log_before = std::fs::read(root.join("artifacts/event_mesh/events.ndjson")).unwrap();
    let ids = |raw: bool| -> Vec<Value> {
        events(&root, raw)
            .iter()
            .map(|e| e["event_id"].clone())
            .collect()
    };
    let expected = vec![a["event_id"].clone(), b["event_id"].clone()];
    for (i, schema) in [V2, V3, r#"{"type": "object", "required": ["other"]}"#]
        .iter()
        .enumerate()
    {
        write(&local_schema(&root, 2), schema);
        if i == 1 {
            write(&local_schema(&root, 3), V3);
        }
        assert_eq!(ids(true), expected);
        assert_eq!(ids(false), expected);
    }
    // The stored lines are byte-for-byte unchanged and their ids recompute from their content.
    let log_after = std::fs::read(root.join("artifacts/event_mesh/events.ndjson")).unwrap();
    assert_eq!(log_before, log_after);
    for e in stored_lines(&root) {
        assert_eq!(e.expected_id().unwrap(), e.event_id);
    }
    for e in events(&root, true) {
        let env: Envelope = serde_json::from_value(e).unwrap();
        assert_eq!(env.expected_id().unwrap(), env.event_id);
    }
}

#[test]
fn schemas_in_the_ledger_are_used_and_local_overrides_win() {
    use crate::common::mesh::{Work, key_of, schema_sig};
    let env = TestEnv::with_remote();
    let root = env.node("n1");
    // Another node's export put a v2 schema into the ledger, first without its signature.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let dir = "event_mesh/schemas/monitoring/host.seen";
    work.push_files(
        &[
            (&format!("{dir}/v2.json"), V2.as_bytes()),
            (&format!("{dir}/README.md"), b"not a schema"),
        ],
        "schemas",
    );
    sync(&root);
    assert!(schema_row_opt(&root, "host.seen").is_none());
    // Signed by n1, the mesh's first node and so a schema publisher: used after a sync.
    let sig = schema_sig(
        "monitoring",
        "host.seen",
        2,
        V2.as_bytes(),
        "n1",
        &key_of(&root),
    );
    work.push_files(&[(&format!("{dir}/v2.sig.json"), &sig)], "signature");
    sync(&root);

    let listed = json_ok(&root, &["schema", "list"]);
    let host: Vec<&Value> = listed["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["event_type"] == "host.seen")
        .collect();
    assert_eq!(host.len(), 1, "{listed}");
    assert_eq!(host[0]["source"], "ledger");
    assert_eq!(host[0]["upcast_from"], 1);
    assert_eq!(
        host[0]["location"],
        "ledger:event_mesh/schemas/monitoring/host.seen/v2.json"
    );

    publish_host(&root, json!({"host": "a"}), None);
    assert_eq!(events(&root, false)[0]["payload"]["hostname"], "a");

    // A local v2 without an upcaster overrides the ledger's: no upcast any more.
    write(&local_schema(&root, 2), r#"{"type": "object"}"#);
    let shown = json_ok(&root, &["schema", "show", "monitoring", "host.seen"]);
    assert_eq!(shown["source"], "local");
    assert_eq!(shown["version"], 2);
    let row = schema_row(&root, "host.seen");
    assert_eq!(row["overrides"], json!(["ledger"]));
    assert_eq!(events(&root, false)[0]["payload"], json!({"host": "a"}));
}

#[test]
fn a_long_running_node_sees_new_schemas_after_reload() {
    let env = TestEnv::new();
    let root = env.node("n1");
    let mut node = gitmesh::Node::open(&root).unwrap();
    let draft = gitmesh::Draft {
        topic: "monitoring".into(),
        event_type: "host.seen".into(),
        ..Default::default()
    };
    node.check_draft(&draft).unwrap();
    write(&local_schema(&root, 1), r#"{"required": ["host"]}"#);
    // Loaded once per node: the new file is not seen until a reload.
    node.check_draft(&draft).unwrap();
    node.reload_schemas();
    let err = node.check_draft(&draft).unwrap_err();
    assert_eq!(err.kind(), "schema_violation");
    assert!(err.to_string().contains("$.host"), "{err}");
}
