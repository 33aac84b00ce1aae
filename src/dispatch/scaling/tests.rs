use super::*;
use crate::dispatch::testutil::event;

#[test]
fn summaries_and_failures_become_decision_requests() {
    let ev = event(
        "scheduling",
        "lanes.ensure.summary",
        json!({"started_count": 0, "parallel_groups_at_limit": 2, "skipped_count": 4, "requested_lane": "all", "noise": "x"}),
    );
    let f = &on_summary(&ev)[0];
    assert_eq!(
        (f.topic.as_str(), f.event_type.as_str()),
        ("scaling", "decision.requested")
    );
    assert_eq!(f.payload["parallel_groups_at_limit"], 2);
    assert_eq!(f.payload["failed_count"], 0);
    assert_eq!(f.payload["skipped_count"], 4);
    assert_eq!(f.payload["requested_lane"], "all");
    assert!(!f.payload.contains_key("noise"));
    let ev = event(
        "monitoring",
        "lane.start_failed",
        json!({"lane_id": "lane-b"}),
    );
    let f = &on_lane_failed(&ev)[0];
    assert_eq!(f.payload["failed_count"], 1);
    assert_eq!(f.payload["requested_lane"], "lane-b");
}

#[test]
fn decisions_carry_trace_and_pass_through() {
    let t = DecisionTable::default_table();
    let ev = event(
        "scaling",
        "decision.requested",
        json!({"failed_count": 1, "requested_lane": "lane-a", "leader_epoch": 4, "execution_dag_id": "dag-1", "causal_hypothesis_id": "h-1"}),
    );
    let f = &on_decision_requested(&ev, &t)[0];
    assert_eq!(f.event_type, "decision.made");
    assert_eq!(f.payload["action"], "scale_down");
    assert_eq!(f.payload["reason"], "failures_present");
    assert_eq!(f.payload["target_delta"], -1);
    let tr = &f.payload["decision_trace"];
    assert_eq!(tr["decision_table_version"], "default-1");
    assert_eq!(tr["matched_rule_ids"][0], "failures_present");
    assert_eq!(tr["inputs_hash"].as_str().unwrap().len(), 32);
    for k in PASS_THROUGH {
        assert_eq!(f.payload[*k], ev.payload[*k], "{k}");
    }
    // Missing counts are zeros, so the same facts hash the same.
    let a = event(
        "scaling",
        "decision.requested",
        json!({"parallel_groups_at_limit": 1}),
    );
    let b = event(
        "scaling",
        "decision.requested",
        json!({"parallel_groups_at_limit": 1, "failed_count": 0}),
    );
    let fa = &on_decision_requested(&a, &t)[0];
    assert_eq!(fa.payload["action"], "scale_up");
    assert_eq!(
        fa.payload["decision_trace"],
        on_decision_requested(&b, &t)[0].payload["decision_trace"]
    );
}

#[test]
fn only_the_leader_commands_and_only_scale_actions() {
    let lead = Leadership {
        leader_id: "n1".into(),
        epoch: 3,
    };
    let ev = event(
        "scaling",
        "decision.made",
        json!({"action": "scale_up", "reason": "capacity_saturated", "target_delta": 1, "requested_lane": "all_enabled"}),
    );
    assert!(on_decision_made(&ev, None).is_empty());
    let f = &on_decision_made(&ev, Some(&lead))[0];
    assert_eq!(f.event_type, "command.requested");
    let c = f.payload["command_id"].as_str().unwrap();
    assert!(c.starts_with("cmd_") && c.len() == 36);
    assert_eq!(f.payload["target_lane"], "");
    assert_eq!(f.payload["requested_lane"], "all_enabled");
    assert_eq!(f.payload["leader_epoch"], 3);
    assert_eq!(f.payload["leader_id"], "n1");
    assert_eq!(f.payload["target_node"], ev.node_id.as_str());
    assert_eq!(f.payload["origin_decision_event_id"], ev.event_id.as_str());
    let hold = event(
        "scaling",
        "decision.made",
        json!({"action": "hold", "reason": "stable"}),
    );
    assert!(on_decision_made(&hold, Some(&lead)).is_empty());
    let named = event(
        "scaling",
        "decision.made",
        json!({"action": "scale_down", "reason": "r", "requested_lane": "lane-b", "target_node": "n7"}),
    );
    let f = &on_decision_made(&named, Some(&lead))[0];
    assert_eq!(f.payload["target_lane"], "lane-b");
    assert_eq!(f.payload["target_node"], "n7");
    assert_eq!(f.payload["target_delta"], -1);
}

#[test]
fn command_ids_depend_on_every_input() {
    let base = command_id("scale_up", "all", "", 1, "r", "evt_1");
    assert_eq!(base, command_id("scale_up", "all", "", 1, "r", "evt_1"));
    assert_ne!(base, command_id("scale_down", "all", "", 1, "r", "evt_1"));
    assert_ne!(base, command_id("scale_up", "all", "", 2, "r", "evt_1"));
    assert_ne!(base, command_id("scale_up", "all", "", 1, "r", "evt_2"));
}
