//! Two nodes on different schema versions share one ledger: the newer node upcasts the
//! older node's events for its handlers and views, and quarantines payloads that break
//! a schema the writer did not know.

use crate::common::{TestEnv, deliver, json_ok, sync};
use crate::schema_evolution::{V2, local_schema, publish_host, publish_v2_without_hostname, write};
use serde_json::{Value, json};

fn find<'a>(events: &'a [Value], id: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event_id"] == id)
}

#[test]
fn a_v2_node_upcasts_a_v1_peer_and_quarantines_what_breaks_v2() {
    let env = TestEnv::with_remote();
    let [old, new] = env.nodes(["old", "new"]);

    // Only the new node knows v2 (a local schema) and runs a handler on host.seen.
    write(&local_schema(&new, 2), V2);
    let seen = env.path().join("handler-saw.ndjson");
    let mut cfg = std::fs::read_to_string(new.join("mesh.toml")).unwrap();
    cfg.push_str(&format!(
        "\n[[handlers]]\nname = \"record\"\nmatch = \"monitoring.host.seen\"\nrun = [\"sh\", \"-c\", \"cat >> '{}'; echo >> '{}'\"]\n",
        seen.display(),
        seen.display()
    ));
    std::fs::write(new.join("mesh.toml"), cfg).unwrap();

    // The old node writes a v1 event addressed to the new node.
    let v1 = publish_host(&old, json!({"host": "h1", "target_node": "new"}), None);
    let v1_id = v1["event_id"].as_str().unwrap();
    deliver(&old, &new, 1);

    // The handler saw the event upcast to v2: renamed field, default filled, same id.
    let saw = std::fs::read_to_string(&seen).expect("the handler ran");
    let got: Value = serde_json::from_str(saw.lines().next().unwrap()).unwrap();
    assert_eq!(got["event_id"], v1_id);
    assert_eq!(got["schema_version"], 2);
    assert_eq!(got["payload"]["hostname"], "h1");
    assert_eq!(got["payload"]["region"], "eu");
    assert!(got["payload"].get("host").is_none(), "{got}");

    // Views upcast too; the stored line is untouched and keeps its id.
    let view = json_ok(&new, &["events", "--topic", "monitoring"]);
    let e = find(view["events"].as_array().unwrap(), v1_id).unwrap();
    assert_eq!(e["payload"]["hostname"], "h1");
    let raw = json_ok(&new, &["events", "--topic", "monitoring", "--raw"]);
    let e = find(raw["events"].as_array().unwrap(), v1_id).unwrap();
    assert_eq!(e["payload"]["host"], "h1");
    // The imported copy is the old node's envelope plus the signature its export added.
    let mut unsigned = e.clone();
    assert!(
        unsigned.as_object_mut().unwrap().remove("sig").is_some(),
        "{e}"
    );
    assert_eq!(
        unsigned, v1,
        "the stored envelope is the one the old node wrote"
    );

    // The old node does not know v2, so it accepts a v2 payload without `hostname`;
    // the new node quarantines it at import, and later events still flow.
    let bad = publish_host(&old, json!({"host": "h2"}), Some(2));
    let after = publish_host(&old, json!({"host": "h3"}), None);
    sync(&old);
    let s = sync(&new);
    assert_eq!(s["import"]["quarantined"], 1, "{s}");
    assert_eq!(s["import"]["imported_events"], 1, "{s}");
    let rejected = s["import"]["rejected"].as_array().unwrap();
    assert!(
        rejected.iter().any(|r| r["reason"] == "schema_violation"),
        "{s}"
    );
    let all = json_ok(&new, &["events", "--raw"]);
    let all = all["events"].as_array().unwrap();
    assert!(find(all, bad["event_id"].as_str().unwrap()).is_none());
    assert!(find(all, after["event_id"].as_str().unwrap()).is_some());
    let st = json_ok(&new, &["mesh-status"]);
    assert!(st["quarantined"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["gaps"], serde_json::json!([]), "{st}");

    // The same node refuses such a payload at publish, naming the path.
    let (code, v) = publish_v2_without_hostname(&new);
    assert_eq!(code, 1);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("hostname"),
        "{v}"
    );
}
