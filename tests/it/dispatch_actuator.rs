//! Leader-issued scaling commands and the actuator, through the binary with real lane processes.

use crate::common::{TestEnv, assert_has_fields, gm, json_ok};
use crate::dispatch_support::*;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Two lanes whose start/stop argv append a line to `record` (the operator's argv;
/// command values reach it only as environment variables).
pub(crate) fn lanes(record: &Path, extra: &str) -> String {
    let rec = record.display();
    let mut s = String::from(extra);
    for (id, rank) in [("lane-a", 1), ("lane-b", 2)] {
        s.push_str(&format!(
            "\n[[lanes]]\nid = \"{id}\"\nscaling_rank = {rank}\n\
start = [\"sh\", \"-c\", \"echo \\\"started $GITMESH_LANE_ID $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{rec}\"]\n\
stop = [\"sh\", \"-c\", \"echo \\\"stopped $GITMESH_LANE_ID $GITMESH_COMMAND_ID\\\" >> \\\"$0\\\"\", \"{rec}\"]\n"
        ));
    }
    s
}

pub(crate) fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

pub(crate) fn saturated() -> serde_json::Value {
    json!({"started_count": 0, "restarted_count": 0, "parallel_groups_at_limit": 1, "requested_lane": "all_enabled"})
}

#[test]
fn the_leader_issues_one_command_and_the_target_node_runs_the_lane() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let n2 = env.node("n2");
    let record = env.path().join("n2-lanes.log");
    write_config(&n2, "n2", &lanes(&record, ""));
    // n1 holds the lease; n2 sees the same lease in its ledger view.
    write_lease(&n1, "n1", 3, 120);
    write_lease(&n2, "n1", 3, 120);

    // n2's lanes report saturation; n2 decides but, not being leader, issues no command.
    publish(&n2, "scheduling", "lanes.ensure.summary", saturated());
    dispatch(&n2);
    let made = of_type(&n2, "decision.made");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["payload"]["action"], "scale_up");
    assert!(of_type(&n2, "command.requested").is_empty());

    // The leader sees the decision (imported) and issues exactly one command for n2.
    import_event(&n1, "n1", &made[0]);
    dispatch(&n1);
    dispatch(&n1);
    let cmds = of_type(&n1, "command.requested");
    assert_eq!(cmds.len(), 1);
    let c = &cmds[0]["payload"];
    assert!(c["command_id"].as_str().unwrap().starts_with("cmd_"));
    assert_eq!(c["leader_epoch"], 3);
    assert_eq!(c["leader_id"], "n1");
    assert_eq!(c["target_node"], "n2");
    assert_eq!(c["target_lane"], "");
    assert_eq!(c["origin_decision_event_id"], made[0]["event_id"]);
    assert_eq!(c["decision_trace"], made[0]["payload"]["decision_trace"]);
    // n1 is not the target: it runs nothing and records no outcome.
    assert!(of_type(&n1, "command.applied").is_empty());
    assert!(command_lines(&n1).is_empty());

    // The target imports the command and applies it: lane-a (lowest rank, stopped) starts.
    import_event(&n2, "n2", &cmds[0]);
    dispatch(&n2);
    dispatch(&n2);
    let cid = c["command_id"].as_str().unwrap();
    assert_eq!(lines(&record), vec![format!("started lane-a {cid}")]);
    let applied = of_type(&n2, "command.applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["payload"]["outcome"], "applied");
    assert_eq!(applied[0]["payload"]["lane_id"], "lane-a");
    assert_eq!(applied[0]["causation_id"], cmds[0]["event_id"]);
    assert_eq!(applied[0]["handler"], "actuator");
    let audit = command_lines(&n2);
    assert_eq!(audit.len(), 1);
    assert_has_fields(
        &audit[0],
        &[
            "timestamp",
            "event_id",
            "command_id",
            "action",
            "lane_id",
            "outcome",
            "reason",
            "leader_epoch",
        ],
    );
    assert_eq!(audit[0]["command_id"], cid);
    assert_eq!(audit[0]["outcome"], "applied");
    let st = json_ok(&n2, &["mesh-status"]);
    assert_eq!(st["command_outcomes"]["applied"], 1);
    assert_eq!(st["latest_leader_epoch"], 3);

    // The next saturation starts the next lane.
    publish(
        &n2,
        "scheduling",
        "lanes.ensure.summary",
        json!({"started_count": 0, "restarted_count": 0, "parallel_groups_at_limit": 2}),
    );
    dispatch(&n2);
    let made = of_type(&n2, "decision.made");
    import_event(&n1, "n1", &made[1]);
    dispatch(&n1);
    let cmds = of_type(&n1, "command.requested");
    assert_eq!(cmds.len(), 2);
    import_event(&n2, "n2", &cmds[1]);
    dispatch(&n2);
    let l = lines(&record);
    assert_eq!(l.len(), 2);
    assert!(l[1].starts_with("started lane-b "), "{l:?}");
}

#[test]
fn a_follower_or_an_expired_leader_never_issues_a_command() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let record = env.path().join("lanes.log");
    write_config(&n1, "n1", &lanes(&record, ""));
    publish(&n1, "scheduling", "lanes.ensure.summary", saturated());
    dispatch(&n1);
    // No lease at all.
    assert_eq!(of_type(&n1, "decision.made").len(), 1);
    assert!(of_type(&n1, "command.requested").is_empty());
    // Lease held by a peer.
    write_lease(&n1, "n2", 4, 120);
    publish(
        &n1,
        "scheduling",
        "lanes.ensure.summary",
        json!({"parallel_groups_at_limit": 3}),
    );
    dispatch(&n1);
    // Own lease, but expired.
    write_lease(&n1, "n1", 5, -5);
    publish(
        &n1,
        "scheduling",
        "lanes.ensure.summary",
        json!({"parallel_groups_at_limit": 4}),
    );
    dispatch(&n1);
    assert_eq!(of_type(&n1, "decision.made").len(), 3);
    assert!(of_type(&n1, "command.requested").is_empty());
    assert!(!record.exists());
}

fn command(root: &Path, payload: serde_json::Value) -> String {
    publish(root, "scaling", "command.requested", payload)["event_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn stale_fenced_unknown_lane_and_policy_blocked_commands_are_rejected() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let record = env.path().join("lanes.log");
    write_config(
        &n1,
        "n1",
        &lanes(
            &record,
            "[policy]\ncausal_gate = \"enforced\"\ncommand_freshness = \"3s\"\n",
        ),
    );
    write_lease(&n1, "n1", 5, 120);
    let base = |id: &str| json!({"command_id": id, "action": "scale_up", "target_lane": "lane-a", "leader_epoch": 5, "leader_id": "n1", "target_node": "n1"});
    command(&n1, base("cmd_stale"));
    std::thread::sleep(Duration::from_millis(3200));
    let mut p = base("cmd_old_epoch");
    p["leader_epoch"] = json!(4);
    command(&n1, p);
    let mut p = base("cmd_fenced");
    p["leader_id"] = json!("n9");
    command(&n1, p);
    let mut p = base("cmd_unknown_lane");
    p["target_lane"] = json!("lane-zz");
    command(&n1, p);
    command(&n1, base("cmd_up"));
    command(
        &n1,
        json!({"command_id": "cmd_down_all", "action": "scale_down", "requested_lane": "all", "target_lane": "", "leader_epoch": 5, "leader_id": "n1", "target_node": "n1"}),
    );
    command(
        &n1,
        json!({"command_id": "cmd_down_all_why", "action": "scale_down", "requested_lane": "all", "target_lane": "", "leader_epoch": 5, "leader_id": "n1", "target_node": "n1", "causal_hypothesis_id": "hyp-7"}),
    );
    dispatch(&n1);
    let outcome = |id: &str| {
        let l: Vec<_> = command_lines(&n1)
            .into_iter()
            .filter(|l| l["command_id"] == id)
            .collect();
        assert_eq!(l.len(), 1, "{id}: {l:?}");
        l[0]["outcome"].as_str().unwrap().to_string()
    };
    assert_eq!(outcome("cmd_stale"), "rejected_stale");
    assert_eq!(outcome("cmd_old_epoch"), "rejected_stale_epoch");
    assert_eq!(outcome("cmd_fenced"), "rejected_leader_fence");
    assert_eq!(outcome("cmd_unknown_lane"), "rejected_unknown_lane");
    assert_eq!(outcome("cmd_up"), "applied");
    assert_eq!(outcome("cmd_down_all"), "rejected_policy");
    assert_eq!(outcome("cmd_down_all_why"), "applied");
    assert_eq!(
        lines(&record),
        vec![
            "started lane-a cmd_up".to_string(),
            "stopped lane-a cmd_down_all_why".to_string()
        ]
    );
    let rejected = of_type(&n1, "command.rejected");
    assert_eq!(rejected.len(), 5);
    let fenced = rejected
        .iter()
        .find(|e| e["payload"]["command_id"] == "cmd_fenced")
        .unwrap();
    assert_eq!(fenced["payload"]["outcome"], "rejected_leader_fence");
    assert_eq!(of_type(&n1, "command.applied").len(), 2);
    let st = json_ok(&n1, &["mesh-status"]);
    assert_eq!(st["command_outcomes"]["rejected_policy"], 1);
    assert_eq!(st["command_outcomes"]["applied"], 2);

    // The same command id again (say, from a second leader) is not applied twice.
    command(&n1, base("cmd_up"));
    dispatch(&n1);
    let l: Vec<_> = command_lines(&n1)
        .into_iter()
        .filter(|l| l["command_id"] == "cmd_up")
        .collect();
    assert_eq!(l.len(), 2);
    assert_eq!(l[1]["outcome"], "rejected_duplicate");
    assert_eq!(lines(&record).len(), 2);
}

#[test]
fn a_command_interrupted_mid_run_is_not_run_again() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    let record = env.path().join("lanes.log");
    let rec = record.display();
    write_config(
        &n1,
        "n1",
        &format!(
            "[[lanes]]\nid = \"slow\"\nstart = [\"sh\", \"-c\", \"echo begin >> \\\"$0\\\"; sleep 2; echo end >> \\\"$0\\\"\", \"{rec}\"]\nstop = [\"true\"]\n"
        ),
    );
    write_lease(&n1, "n1", 1, 120);
    command(
        &n1,
        json!({"command_id": "cmd_slow", "action": "scale_up", "target_lane": "slow", "leader_epoch": 1, "leader_id": "n1"}),
    );
    let mut c = gm(&n1);
    c.arg("mesh-dispatch");
    let mut child = c.spawn().unwrap();
    let t = Instant::now();
    while !lines(&record).contains(&"begin".to_string()) && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    dispatch(&n1);
    let audit = command_lines(&n1);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["outcome"], "interrupted");
    let rej = of_type(&n1, "command.rejected");
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["payload"]["outcome"], "interrupted");
    // Wait for the orphaned lane process, then check it ran exactly once.
    let t = Instant::now();
    while !lines(&record).contains(&"end".to_string()) && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(lines(&record), vec!["begin", "end"]);
    dispatch(&n1);
    assert_eq!(command_lines(&n1).len(), 1);
}
