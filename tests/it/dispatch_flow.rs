//! Dispatch through the binary: scheduling, routing, scaling decisions, trace, replay safety.

use crate::common::{TestEnv, assert_has_fields, field, gm, json_ok, parse_json, run};
use crate::dispatch_support::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A fresh node "n1" (and the environment that owns its directory).
fn node_n1() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    (env, n1)
}

/// Enqueues task `task_id` with lane `a` as its one routing option; returns the envelope.
fn enqueue_for_lane_a(root: &Path, task_id: &str) -> serde_json::Value {
    enqueue_task(
        root,
        json!({"task_id": task_id, "routing_options": [{"lane_id": "a", "score": 1}]}),
    )
}

#[test]
fn enqueued_task_is_scheduled_and_routed_to_the_best_healthy_lane() {
    let (_env, n1) = node_n1();
    let task = enqueue_task(
        &n1,
        json!({"task_id": "t-42", "routing_options": [
            {"lane_id": "lane-fast", "provider": "p1", "model": "big", "score": 0.95, "healthy": false},
            {"lane_id": "lane-b", "provider": "p2", "model": "mid", "score": 0.8},
            {"lane_id": "lane-a", "provider": "p3", "model": "mid", "score": 0.8, "healthy": true},
            {"lane_id": "lane-c", "provider": "p2", "model": "small", "score": 0.3}
        ]}),
    );
    let r = dispatch(&n1);
    assert_has_fields(
        &r,
        &[
            "node_id",
            "processed_events",
            "followup_events",
            "cursor_offset",
        ],
    );
    assert_eq!(r["node_id"], "n1");
    // task.enqueued -> task.scheduled + route.requested -> route.selected, all in one pass.
    assert_eq!(r["followup_events"], 3);
    assert_eq!(r["processed_events"], 4);
    let scheduled = of_type(&n1, "task.scheduled");
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0]["payload"]["task_id"], "t-42");
    assert_eq!(scheduled[0]["causation_id"], task["event_id"]);
    let req = of_type(&n1, "route.requested");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0]["payload"]["options"].as_array().unwrap().len(), 4);
    let sel = of_type(&n1, "route.selected");
    assert_eq!(sel.len(), 1);
    let s = &sel[0];
    assert_eq!(s["payload"]["selected"], true);
    // Highest healthy score is a tie at 0.8: lane-a wins by name, deterministically.
    assert_eq!(
        s["payload"]["selection"],
        json!({"lane_id": "lane-a", "provider": "p3", "model": "mid", "score": 0.8})
    );
    assert_eq!(s["source"], "mesh-dispatch");
    assert_eq!(s["handler"], "routing");
    assert_eq!(s["causation_id"], req[0]["event_id"]);
    assert_eq!(s["correlation_id"], task["event_id"]);
    // A second pass finds nothing new.
    let again = dispatch(&n1);
    assert_eq!(again["processed_events"], 0);
    assert_eq!(again["followup_events"], 0);
    assert_eq!(again["cursor_offset"], r["cursor_offset"]);
    let status = json_ok(&n1, &["mesh-status"]);
    assert_eq!(status["dispatch_lag"], 0);
}

#[test]
fn unhealthy_options_block_the_route() {
    let (_env, n1) = node_n1();
    request_route(
        &n1,
        json!({"task_id": "t", "options": [{"lane_id": "a", "score": 1, "healthy": false}]}),
    );
    dispatch(&n1);
    let b = of_type(&n1, "route.blocked");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["payload"]["selected"], false);
    assert_eq!(b[0]["payload"]["reason"], "no_healthy_option");
    assert!(of_type(&n1, "route.selected").is_empty());
}

#[test]
fn capability_routing_picks_a_live_capable_node_from_the_manifests() {
    let (_env, n1) = node_n1();
    write_manifest(&n1, "gpu1", &["gpu"], 10);
    write_manifest(&n1, "gpu-stale", &["gpu"], 100_000);
    write_manifest(&n1, "cpu1", &["cpu"], 10);
    request_route(
        &n1,
        json!({"task_id": "t-1", "required_capabilities": ["gpu"]}),
    );
    request_route(
        &n1,
        json!({"task_id": "t-2", "required_capabilities": ["tpu"]}),
    );
    dispatch(&n1);
    let sel = of_type(&n1, "route.selected");
    assert_eq!(sel.len(), 1, "{sel:?}");
    assert_eq!(sel[0]["payload"]["target_node"], "gpu1");
    assert_eq!(sel[0]["payload"]["selection"]["node_id"], "gpu1");
    let blocked = of_type(&n1, "route.blocked");
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0]["payload"]["reason"], "no_capable_node");
}

#[test]
fn lane_summaries_and_failures_become_scaling_decisions() {
    let (_env, n1) = node_n1();
    publish(
        &n1,
        "scheduling",
        "lanes.ensure.summary",
        json!({"started_count": 0, "restarted_count": 0, "parallel_groups_at_limit": 2,
               "requested_lane": "all_enabled", "execution_dag_id": "dag-9"}),
    );
    publish(
        &n1,
        "monitoring",
        "lane.start_failed",
        json!({"lane_id": "lane-b"}),
    );
    publish(
        &n1,
        "scheduling",
        "lanes.start.summary",
        json!({"started_count": 1, "scaled_up_count": 1}),
    );
    dispatch(&n1);
    let req = of_type(&n1, "decision.requested");
    assert_eq!(req.len(), 3);
    let made = of_type(&n1, "decision.made");
    assert_eq!(made.len(), 3);
    let by_reason = |r: &str| {
        made.iter()
            .find(|m| m["payload"]["reason"] == r)
            .unwrap_or_else(|| panic!("no decision {r} in {made:?}"))
            .clone()
    };
    let up = by_reason("capacity_saturated");
    assert_eq!(up["payload"]["action"], "scale_up");
    assert_eq!(up["payload"]["target_delta"], 1);
    assert_eq!(up["payload"]["requested_lane"], "all_enabled");
    assert_eq!(up["payload"]["execution_dag_id"], "dag-9");
    let tr = &up["payload"]["decision_trace"];
    assert_eq!(tr["decision_table_version"], "default-1");
    assert_eq!(tr["matched_rule_ids"][0], "capacity_saturated");
    assert_eq!(tr["inputs_hash"].as_str().unwrap().len(), 32);
    let down = by_reason("failures_present");
    assert_eq!(down["payload"]["action"], "scale_down");
    assert_eq!(down["payload"]["target_delta"], -1);
    assert_eq!(down["payload"]["requested_lane"], "lane-b");
    let hold = by_reason("recent_scale_up");
    assert_eq!(hold["payload"]["action"], "hold");
    // No lease: no command from anyone.
    assert!(of_type(&n1, "command.requested").is_empty());
}

#[test]
fn a_decision_table_file_replaces_the_default_and_a_bad_one_is_an_error() {
    let (_env, n1) = node_n1();
    std::fs::write(
        n1.join("table.toml"),
        "version = \"ops-3\"\n[[rules]]\nid = \"deep_queue\"\nwhen = { queue_depth = { gte = 100 }, region = { in = [\"eu\", \"us\"] } }\nthen = { action = \"scale_up\", reason = \"queue_deep\", target_delta = 2 }\n[[rules]]\nid = \"otherwise\"\nthen = { action = \"hold\", reason = \"fine\" }\n",
    )
    .unwrap();
    write_config(&n1, "n1", "[scaling]\ndecision_table = \"table.toml\"\n");
    publish(
        &n1,
        "scaling",
        "decision.requested",
        json!({"queue_depth": 150, "region": "eu"}),
    );
    publish(
        &n1,
        "scaling",
        "decision.requested",
        json!({"queue_depth": 150, "region": "ap"}),
    );
    dispatch(&n1);
    let made = of_type(&n1, "decision.made");
    assert_eq!(made.len(), 2);
    assert_eq!(made[0]["payload"]["action"], "scale_up");
    assert_eq!(made[0]["payload"]["target_delta"], 2);
    assert_eq!(
        made[0]["payload"]["decision_trace"]["decision_table_version"],
        "ops-3"
    );
    assert_eq!(made[1]["payload"]["reason"], "fine");

    std::fs::write(
        n1.join("table.toml"),
        "version = \"ops-4\"\n[[rules]]\nid = \"ok\"\nthen = { action = \"hold\", reason = \"x\" }\n[[rules]]\nid = \"broken\"\nwhen = { n = { around = 3 } }\nthen = { action = \"hold\", reason = \"y\" }\n",
    )
    .unwrap();
    publish(&n1, "scaling", "decision.requested", json!({"n": 3}));
    let mut c = gm(&n1);
    c.args(["--json", "mesh-dispatch"]);
    let out = run(c);
    assert!(!out.status.success());
    let v = parse_json(&out);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("table.toml") && msg.contains("rule 2 (\"broken\")") && msg.contains("around"),
        "{msg}"
    );
    assert_eq!(v["error"]["kind"], "config");
    // Nothing was dispatched past the error.
    assert_eq!(of_type(&n1, "decision.made").len(), 2);
}

#[test]
fn trace_shows_the_whole_causal_tree_from_any_of_its_events() {
    let (_env, n1) = node_n1();
    let task = enqueue_for_lane_a(&n1, "t-1");
    publish(&n1, "monitoring", "heartbeat.changed", json!({}));
    dispatch(&n1);
    let leaf = of_type(&n1, "route.selected")[0]["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = json_ok(&n1, &["trace", &leaf]);
    assert_eq!(t["root"], task["event_id"]);
    let evs = t["events"].as_array().unwrap();
    let types = field(evs, "event_type");
    assert_eq!(
        types,
        [
            "task.enqueued",
            "task.scheduled",
            "route.requested",
            "route.selected"
        ]
    );
    for e in evs {
        assert_has_fields(
            e,
            &[
                "event_id",
                "causation_id",
                "node_id",
                "topic",
                "event_type",
                "timestamp",
            ],
        );
        assert_eq!(e["node_id"], "n1");
    }
    assert_eq!(evs[3]["causation_id"], evs[2]["event_id"]);
    let mut c = gm(&n1);
    c.args(["trace", &leaf]);
    let out = run(c);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("route.selected") && text.contains("handler routing"),
        "{text}"
    );
    let mut c = gm(&n1);
    c.args(["--json", "trace", "evt_00000000000000000000000000000000"]);
    let out = run(c);
    assert!(!out.status.success());
    assert_eq!(parse_json(&out)["error"]["kind"], "not_found");
}

#[test]
fn replaying_after_a_lost_cursor_duplicates_nothing() {
    let (_env, n1) = node_n1();
    for i in 0..20 {
        enqueue_for_lane_a(&n1, &format!("t-{i}"));
    }
    let first = dispatch(&n1);
    assert_eq!(first["followup_events"], 60);
    let before = events(&n1).len();
    // As if the process died after appending but before saving the cursor.
    std::fs::remove_file(n1.join("state/event_mesh/dispatch_cursor.json")).unwrap();
    let again = dispatch(&n1);
    assert_eq!(again["followup_events"], 0);
    assert_eq!(again["duplicate_followups"], 60);
    assert_eq!(events(&n1).len(), before);
    // --max-events bounds a pass.
    for i in 0..5 {
        publish(&n1, "monitoring", "heartbeat.changed", json!({"n": i}));
    }
    let r = json_ok(&n1, &["mesh-dispatch", "--max-events", "2"]);
    assert_eq!(r["processed_events"], 2);
    let r = dispatch(&n1);
    assert_eq!(of_type(&n1, "tick.requested").len(), 5);
    assert!(r["processed_events"].as_u64().unwrap() >= 3);
}

#[test]
fn a_replaced_log_is_dispatched_again_from_the_start() {
    let (env, n1) = node_n1();
    publish(&n1, "monitoring", "heartbeat.changed", json!({"n": 1}));
    dispatch(&n1);
    assert_eq!(of_type(&n1, "tick.requested").len(), 1);
    // The log is replaced by another one of a different history (say, a restore):
    // the saved cursor no longer points at what it dispatched.
    let other = env.node("other");
    let log = |r: &Path| r.join("artifacts/event_mesh/events.ndjson");
    for i in 0..3 {
        publish(
            &other,
            "monitoring",
            "heartbeat.changed",
            json!({"other": i}),
        );
    }
    let before = std::fs::metadata(log(&n1)).unwrap().len();
    let text = std::fs::read_to_string(log(&other)).unwrap();
    assert!(text.len() as u64 > before);
    let cursor: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(n1.join("state/event_mesh/dispatch_cursor.json")).unwrap(),
    )
    .unwrap();
    assert!(cursor["offset"].as_u64().unwrap() > 0);
    for f in ["log_head.json", "log_ids.bin"] {
        let _ = std::fs::remove_file(n1.join("state/event_mesh").join(f));
    }
    std::fs::write(log(&n1), text).unwrap();
    let r = dispatch(&n1);
    // Every event of the new log was passed over, from offset 0 (a trusted
    // cursor would have started in the middle of its second line).
    assert_eq!(r["processed_events"], 3);
    assert_eq!(
        r["cursor_offset"].as_u64().unwrap(),
        std::fs::metadata(log(&n1)).unwrap().len()
    );
    // They are `other`'s events: recorded, not acted on here.
    assert_eq!(r["followup_events"], 0);
}
