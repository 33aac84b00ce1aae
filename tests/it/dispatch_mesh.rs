//! Exactly one node acts: several nodes holding the same imported events, and SIGKILL at random points.

use crate::common;
use crate::common::{TestEnv, gm, run_with_stdin};
use crate::dispatch_support::*;
use rand::Rng;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

#[test]
fn three_nodes_holding_one_route_request_produce_exactly_one_selection() {
    let env = TestEnv::new();
    let roots = env.nodes(["n1", "n2", "n3"]);
    let opts = json!([{"lane_id": "a", "provider": "p", "model": "m", "score": 0.4},
                      {"lane_id": "b", "provider": "p", "model": "m", "score": 0.6}]);
    // One request from n1 for itself, one from n1 addressed to n3.
    let own = request_route(&roots[0], json!({"task_id": "t-1", "options": opts}));
    let targeted = request_route(
        &roots[0],
        json!({"task_id": "t-2", "options": opts, "target_node": "n3"}),
    );
    for (i, r) in roots.iter().enumerate().skip(1) {
        let name = format!("n{}", i + 1);
        import_event(r, &name, &own);
        import_event(r, &name, &targeted);
    }
    // Every node dispatches, twice, in any order.
    for _ in 0..2 {
        for r in roots.iter().rev() {
            dispatch(r);
        }
    }
    let mut selected: Vec<serde_json::Value> = Vec::new();
    for r in &roots {
        selected.extend(of_type(r, "route.selected"));
    }
    let for_own: Vec<_> = selected
        .iter()
        .filter(|e| e["causation_id"] == own["event_id"])
        .collect();
    let for_targeted: Vec<_> = selected
        .iter()
        .filter(|e| e["causation_id"] == targeted["event_id"])
        .collect();
    assert_eq!(for_own.len(), 1, "{for_own:?}");
    assert_eq!(for_own[0]["node_id"], "n1");
    assert_eq!(for_own[0]["payload"]["selection"]["lane_id"], "b");
    assert_eq!(for_targeted.len(), 1, "{for_targeted:?}");
    assert_eq!(for_targeted[0]["node_id"], "n3");
    // Imported events are recorded and dispatched past everywhere.
    for r in &roots {
        assert_eq!(json_lag(r), 0);
    }
}

#[test]
fn three_nodes_produce_one_command_per_decision_from_the_leader_only() {
    let env = TestEnv::new();
    let roots = env.nodes(["n1", "n2", "n3"]);
    for r in &roots {
        write_lease(r, "n2", 7, 120);
    }
    publish(
        &roots[0],
        "scheduling",
        "lanes.start.summary",
        json!({"parallel_groups_at_limit": 1}),
    );
    dispatch(&roots[0]);
    let made = of_type(&roots[0], "decision.made");
    assert_eq!(made.len(), 1);
    for (i, r) in roots.iter().enumerate().skip(1) {
        import_event(r, &format!("n{}", i + 1), &made[0]);
    }
    for _ in 0..2 {
        for r in &roots {
            dispatch(r);
        }
    }
    let mut cmds = Vec::new();
    for r in &roots {
        cmds.extend(of_type(r, "command.requested"));
        // Each node holds the one decision; nobody decided again from a copy.
        let d = of_type(r, "decision.made");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0]["event_id"], made[0]["event_id"]);
    }
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0]["node_id"], "n2");
    assert_eq!(cmds[0]["payload"]["leader_epoch"], 7);
    assert_eq!(cmds[0]["payload"]["target_node"], "n1");
}

fn json_lag(root: &std::path::Path) -> u64 {
    common::json_ok(root, &["mesh-status"])["dispatch_lag"]
        .as_u64()
        .unwrap()
}

#[test]
fn sigkill_at_random_points_never_duplicates_or_loses_a_follow_up() {
    let env = TestEnv::new();
    let n1 = env.node("n1");
    // 1,500 causes: heartbeats (1 follow-up), tasks (3), lane summaries (2).
    let mut batch = String::new();
    let mut expected: HashMap<&str, usize> = HashMap::new();
    for i in 0..1500 {
        let line = match i % 3 {
            0 => {
                *expected.entry("tick.requested").or_default() += 1;
                json!({"topic": "monitoring", "event_type": "heartbeat.changed", "payload": {"i": i}})
            }
            1 => {
                for t in ["task.scheduled", "route.requested", "route.selected"] {
                    *expected.entry(t).or_default() += 1;
                }
                json!({"topic": "scheduling", "event_type": "task.enqueued",
                       "payload": {"task_id": format!("t-{i}"), "routing_options": [{"lane_id": "a", "score": i}]}})
            }
            _ => {
                for t in ["decision.requested", "decision.made"] {
                    *expected.entry(t).or_default() += 1;
                }
                json!({"topic": "scheduling", "event_type": "lanes.ensure.summary", "payload": {"failed_count": i % 2}})
            }
        };
        batch.push_str(&line.to_string());
        batch.push('\n');
    }
    let mut c = gm(&n1);
    c.args(["--json", "mesh-publish", "--stdin"]);
    assert!(run_with_stdin(c, batch.as_bytes()).status.success());

    // Calibrate on a copy: how long one whole pass takes with this build on this machine,
    // so the kills land inside passes however fast dispatch is.
    let probe = env.path().join("probe");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&n1)
        .arg(&probe)
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = std::time::Instant::now();
    dispatch(&probe);
    let full = t0.elapsed().as_millis().max(10) as u64;

    let mut rng = rand::rng();
    let mut killed = 0;
    // Kills land in the first half of a whole pass; a run that ends before its kill
    // (the machine got faster than at calibration) narrows the window, so a load
    // spike during calibration cannot let the whole backlog finish unkilled.
    let lo = (full / 40).max(1);
    let mut hi = (full / 2).max(lo + 1);
    for _ in 0..40 {
        let mut c = gm(&n1);
        c.arg("mesh-dispatch")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(lo..hi)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        } else {
            hi = (hi * 2 / 3).max(lo + 1);
        }
        child.wait().unwrap();
    }
    assert!(
        killed > 0,
        "no run was interrupted; the test proves nothing"
    );
    let r = dispatch(&n1);
    assert_eq!(r["remaining_bytes"], 0);
    let all = events(&n1);
    let mut ids = HashSet::new();
    for e in &all {
        assert!(
            ids.insert(e["event_id"].as_str().unwrap().to_string()),
            "duplicate {e}"
        );
    }
    // The own seq chain has no gap and no fork.
    let mut prev = String::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], (i + 1) as u64);
        assert_eq!(e["prev"], prev.as_str());
        prev = e["event_id"].as_str().unwrap().to_string();
    }
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut per_cause: HashMap<(String, String), usize> = HashMap::new();
    for e in all.iter().filter(|e| e["source"] == "mesh-dispatch") {
        *got.entry(e["event_type"].as_str().unwrap().to_string())
            .or_default() += 1;
        *per_cause
            .entry((
                e["causation_id"].as_str().unwrap().into(),
                e["event_type"].as_str().unwrap().into(),
            ))
            .or_default() += 1;
    }
    for (t, n) in &expected {
        assert_eq!(
            got.get(*t).copied().unwrap_or(0),
            *n,
            "{t} (after {killed} kills)"
        );
    }
    assert!(per_cause.values().all(|n| *n == 1));
    assert_eq!(json_lag(&n1), 0);
}
