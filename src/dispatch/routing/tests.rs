use super::*;
use crate::dispatch::testutil::event;

fn route(payload: Value, live: &[LiveNode]) -> FollowUp {
    let mut out = on_route_requested(&event("routing", "route.requested", payload), live);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

#[test]
fn best_healthy_option_wins() {
    let f = route(
        json!({"task_id": "t", "options": [
            {"lane_id": "a", "provider": "p", "model": "m", "score": 0.9, "healthy": false},
            {"lane_id": "b", "provider": "p", "model": "m", "score": 0.7},
            {"lane_id": "c", "provider": "q", "model": "n", "score": 0.5, "healthy": true}
        ]}),
        &[],
    );
    assert_eq!(f.event_type, "route.selected");
    assert_eq!(f.payload["selected"], true);
    assert_eq!(f.payload["task_id"], "t");
    assert_eq!(
        f.payload["selection"],
        json!({"lane_id": "b", "provider": "p", "model": "m", "score": 0.7})
    );
}

#[test]
fn ties_are_broken_by_name_whatever_the_order() {
    let a = json!({"lane_id": "a", "score": 1});
    let b = json!({"lane_id": "b", "score": 1});
    assert_eq!(
        best_option(&[b.clone(), a.clone()]).unwrap()["lane_id"],
        "a"
    );
    assert_eq!(best_option(&[a, b]).unwrap()["lane_id"], "a");
}

#[test]
fn no_healthy_option_blocks() {
    let f = route(
        json!({"options": [{"lane_id": "a", "score": 1, "healthy": false}]}),
        &[],
    );
    assert_eq!(f.event_type, "route.blocked");
    assert_eq!(f.payload["selected"], false);
    assert_eq!(f.payload["reason"], "no_healthy_option");
    let f = route(json!({"task_id": "t"}), &[]);
    assert_eq!(f.payload["reason"], "no_healthy_option");
}

fn nodes() -> Vec<LiveNode> {
    let n = |id: &str, caps: &[&str]| LiveNode {
        node_id: id.into(),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
    };
    vec![
        n("n1", &["gpu", "routing"]),
        n("n2", &["gpu"]),
        n("n3", &["cpu"]),
        n("n4", &["gpu", "cpu"]),
    ]
}

#[test]
fn capability_routing_picks_a_capable_node_stably() {
    let live = nodes();
    let f = route(
        json!({"task_id": "t-7", "required_capabilities": ["gpu"]}),
        &live,
    );
    let chosen = f.payload["target_node"].as_str().unwrap().to_string();
    assert!(["n1", "n2", "n4"].contains(&chosen.as_str()));
    assert_eq!(f.payload["selection"]["node_id"], chosen.as_str());
    // Order of the manifests does not matter; removing another node does not move it.
    let mut rev = live.clone();
    rev.reverse();
    assert_eq!(pick_node("t-7", &["gpu"], &rev).unwrap(), chosen);
    let without: Vec<_> = live
        .iter()
        .filter(|n| n.node_id != chosen && n.node_id != "n3")
        .cloned()
        .collect();
    let other = pick_node("t-7", &["gpu"], &without).unwrap();
    assert_ne!(other, chosen);
    let kept: Vec<_> = live
        .iter()
        .filter(|n| n.node_id != other)
        .cloned()
        .collect();
    assert_eq!(pick_node("t-7", &["gpu"], &kept).unwrap(), chosen);
}

#[test]
fn capability_routing_spreads_tasks_and_blocks_without_a_capable_node() {
    let live = nodes();
    let picks: std::collections::BTreeSet<String> = (0..50)
        .filter_map(|i| pick_node(&format!("task-{i}"), &["gpu"], &live))
        .collect();
    assert!(picks.len() >= 2, "{picks:?}");
    assert_eq!(
        pick_node("t", &["gpu", "cpu"], &live).as_deref(),
        Some("n4")
    );
    let f = route(
        json!({"task_id": "t", "required_capabilities": ["tpu"]}),
        &live,
    );
    assert_eq!(f.event_type, "route.blocked");
    assert_eq!(f.payload["reason"], "no_capable_node");
}
