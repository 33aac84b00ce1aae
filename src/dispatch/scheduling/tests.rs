use super::*;
use crate::dispatch::testutil::event;
use serde_json::json;

#[test]
fn heartbeat_becomes_a_tick() {
    let out = on_heartbeat(&event("monitoring", "heartbeat.changed", json!({})));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].topic, "scheduling");
    assert_eq!(out[0].event_type, "tick.requested");
}

#[test]
fn task_is_scheduled_and_routed_with_its_options() {
    let ev = event(
        "scheduling",
        "task.enqueued",
        json!({"task_id": "t-1", "priority": 2, "routing_options": [{"lane_id": "a", "score": 1}]}),
    );
    let out = on_task_enqueued(&ev);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].event_type, "task.scheduled");
    assert_eq!(out[0].payload["task_id"], "t-1");
    assert_eq!(out[0].payload["priority"], 2);
    assert_eq!(out[1].topic, "routing");
    assert_eq!(out[1].event_type, "route.requested");
    assert_eq!(out[1].payload["options"][0]["lane_id"], "a");
}

#[test]
fn task_without_id_is_ignored() {
    let ev = event("scheduling", "task.enqueued", json!({"priority": 1}));
    assert!(on_task_enqueued(&ev).is_empty());
    let ev = event("scheduling", "task.enqueued", json!({"task_id": ""}));
    assert!(on_task_enqueued(&ev).is_empty());
}
