use super::*;
use crate::config::HumanDuration;

fn lane(id: &str, rank: i64, enabled: bool) -> LaneConfig {
    LaneConfig {
        id: id.into(),
        enabled,
        scaling_rank: rank,
        start: vec!["true".into()],
        stop: vec!["true".into()],
        status: None,
        timeout: HumanDuration(Duration::from_secs(5)),
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    crate::event::parse_timestamp("2026-11-23T12:00:00Z").unwrap()
}

fn cmd(action: &str, lane: &str, epoch: u64, leader: &str) -> CommandView {
    CommandView {
        command_id: "cmd_1".into(),
        action: match action {
            "scale_up" => Some(Direction::ScaleUp),
            "scale_down" => Some(Direction::ScaleDown),
            _ => None,
        },
        action_text: action.into(),
        requested_lane: lane.into(),
        target_lane: match lane {
            "all" | "all_enabled" => String::new(),
            l => l.into(),
        },
        leader_epoch: Some(epoch),
        leader_id: leader.into(),
        signed_by: leader.into(),
        causal_hypothesis_id: String::new(),
        issued_at: Some(now() - chrono::Duration::seconds(10)),
    }
}

fn lease(leader: &str, epoch: u64) -> Lease {
    Lease {
        leader_id: leader.into(),
        epoch,
        lease_expires_at: "2026-11-23T12:05:00Z".into(),
        ttl_sec: 300,
        taken_at: "2026-11-23T12:00:00Z".into(),
        sig: None,
    }
}

fn verdict(
    c: &CommandView,
    gate: CausalGate,
    l: Option<&Lease>,
    fence: &Fence,
    running: &[&str],
) -> Verdict {
    let lanes = vec![
        lane("a", 1, true),
        lane("b", 2, true),
        lane("c", 3, true),
        lane("off", 0, false),
    ];
    let r = Rules {
        now: now(),
        freshness: Duration::from_secs(300),
        tolerance: Duration::from_secs(60),
        gate,
        lanes: &lanes,
        lease: l,
        fence,
        command_id_used_by: None,
    };
    decide(c, &r, &mut |l: &LaneConfig| {
        running.contains(&l.id.as_str())
    })
}

fn outcome(v: &Verdict) -> &str {
    match v {
        Verdict::Reject { outcome, .. } => outcome.as_str(),
        Verdict::Apply { .. } => "apply",
    }
}

/// The outcome of a command under lease `l`, advisory policy, an empty fence, no lane running.
fn under_lease(c: &CommandView, l: &Lease) -> String {
    outcome(&verdict(
        c,
        CausalGate::Advisory,
        Some(l),
        &Fence::default(),
        &[],
    ))
    .to_string()
}

/// A fence that has seen `leader` command at `epoch`.
fn fence_after(epoch: u64, leader: &str) -> Fence {
    let mut fence = Fence::default();
    fence.observe(epoch, leader);
    fence
}

/// The outcome of a command with no lease known, advisory policy and `fence`, no lane running.
fn under_fence(c: &CommandView, fence: &Fence) -> String {
    outcome(&verdict(c, CausalGate::Advisory, None, fence, &[])).to_string()
}

#[test]
fn fresh_command_from_the_leader_applies_to_the_named_lane() {
    let l = lease("n1", 2);
    let v = verdict(
        &cmd("scale_up", "b", 2, "n1"),
        CausalGate::Advisory,
        Some(&l),
        &Fence::default(),
        &[],
    );
    assert_eq!(
        v,
        Verdict::Apply {
            lane_id: "b".into(),
            direction: Direction::ScaleUp,
            note: None
        }
    );
}

#[test]
fn commands_from_the_future_are_never_applied() {
    let l = lease("n1", 5);
    let mut c = cmd("scale_up", "a", 5, "n1");
    c.issued_at = Some(now() + chrono::Duration::seconds(61));
    assert_eq!(under_lease(&c, &l), "rejected_future");
    c.issued_at = Some(now() + chrono::Duration::days(365));
    assert_eq!(under_lease(&c, &l), "rejected_future");
    // Within the tolerance a fast issuer is still heard.
    c.issued_at = Some(now() + chrono::Duration::seconds(60));
    assert_eq!(under_lease(&c, &l), "apply");
}

#[test]
fn stale_commands_and_epochs_are_rejected() {
    let l = lease("n1", 5);
    let mut c = cmd("scale_up", "a", 5, "n1");
    c.issued_at = Some(now() - chrono::Duration::seconds(301));
    assert_eq!(under_lease(&c, &l), "rejected_stale");
    let c = cmd("scale_up", "a", 4, "n1");
    assert_eq!(under_lease(&c, &l), "rejected_stale_epoch");
    let fence = fence_after(7, "n2");
    let c = cmd("scale_up", "a", 6, "n2");
    assert_eq!(under_fence(&c, &fence), "rejected_stale_epoch");
}

#[test]
fn non_leaders_are_fenced() {
    let l = lease("n1", 5);
    let c = cmd("scale_up", "a", 5, "n9");
    assert_eq!(under_lease(&c, &l), "rejected_leader_fence");
    let fence = fence_after(3, "n1");
    let c = cmd("scale_up", "a", 3, "n2");
    assert_eq!(under_fence(&c, &fence), "rejected_leader_fence");
    let mut c = cmd("scale_up", "a", 3, "n1");
    c.leader_epoch = None;
    assert_eq!(under_fence(&c, &fence), "rejected_leader_fence");
}

#[test]
fn unknown_disabled_and_missing_lanes_are_rejected() {
    let f = fence_after(1, "n1");
    let cases: [(&str, &str, &[&str], &str); 5] = [
        ("scale_up", "zz", &[], "rejected_unknown_lane"),
        ("scale_up", "off", &[], "rejected_unknown_lane"),
        ("scale_up", "all", &["a", "b", "c"], "rejected_no_target"),
        ("scale_down", "", &[], "rejected_no_target"),
        ("explode", "a", &[], "rejected_invalid"),
    ];
    for (action, lane, running, want) in cases {
        let c = cmd(action, lane, 1, "n1");
        assert_eq!(
            outcome(&verdict(&c, CausalGate::Advisory, None, &f, running)),
            want,
            "{action} on lane {lane:?} with {running:?} running"
        );
    }
}

#[test]
fn causal_gate_blocks_disruptive_scale_down_only_when_enforced() {
    let f = fence_after(1, "n1");
    let c = cmd("scale_down", "all", 1, "n1");
    assert_eq!(
        outcome(&verdict(&c, CausalGate::Enforced, None, &f, &["a"])),
        "rejected_policy"
    );
    match verdict(&c, CausalGate::Advisory, None, &f, &["a"]) {
        Verdict::Apply { note, .. } => assert!(note.unwrap().contains("advisory")),
        v => panic!("{v:?}"),
    }
    let mut c = cmd("scale_down", "all_enabled", 1, "n1");
    c.causal_hypothesis_id = "h-1".into();
    assert_eq!(
        outcome(&verdict(&c, CausalGate::Enforced, None, &f, &["a"])),
        "apply"
    );
    let c = cmd("scale_down", "a", 1, "n1");
    assert_eq!(
        outcome(&verdict(&c, CausalGate::Enforced, None, &f, &["a"])),
        "apply"
    );
}

#[test]
fn lane_choice_prefers_low_ranks_up_and_high_ranks_down() {
    let f = fence_after(1, "n1");
    let pick = |action: &str, running: &[&str]| match verdict(
        &cmd(action, "all_enabled", 1, "n1"),
        CausalGate::Advisory,
        None,
        &f,
        running,
    ) {
        Verdict::Apply { lane_id, .. } => lane_id,
        v => panic!("{v:?}"),
    };
    assert_eq!(pick("scale_up", &[]), "a");
    assert_eq!(pick("scale_up", &["a"]), "b");
    assert_eq!(pick("scale_down", &["a", "b"]), "b");
    assert_eq!(pick("scale_down", &["a", "b", "c", "off"]), "c");
}

#[test]
fn a_used_command_id_is_not_applied_twice() {
    let lanes = vec![lane("a", 1, true)];
    let f = fence_after(1, "n1");
    let r = Rules {
        now: now(),
        freshness: Duration::from_secs(300),
        tolerance: Duration::from_secs(60),
        gate: CausalGate::Advisory,
        lanes: &lanes,
        lease: None,
        fence: &f,
        command_id_used_by: Some("evt_x"),
    };
    let v = decide(&cmd("scale_up", "a", 1, "n1"), &r, &mut |_| false);
    assert_eq!(outcome(&v), "rejected_duplicate");
}

#[test]
fn an_epoch_without_a_verified_lease_is_refused_and_does_not_move_the_fence() {
    let l = lease("n1", 5);
    let c = cmd("scale_up", "a", u64::MAX, "n1");
    assert_eq!(under_lease(&c, &l), "rejected_unverified_epoch");
    let c = cmd("scale_up", "a", 6, "n1");
    assert_eq!(
        under_fence(&c, &Fence::default()),
        "rejected_unverified_epoch"
    );
}

#[test]
fn a_command_naming_the_leader_but_signed_by_another_node_is_refused() {
    let l = lease("n1", 5);
    let mut c = cmd("scale_up", "a", 5, "n1");
    c.signed_by = "n2".into();
    assert_eq!(under_lease(&c, &l), "rejected_not_leader_signed");
    c.signed_by = "n1".into();
    assert_eq!(under_lease(&c, &l), "apply");
}
