use super::lane::{self, LaneRun};
use super::record::{self, MAX_RECORDS};
use super::*;
use crate::config::{HumanDuration, LaneConfig};
use crate::dispatch::process::ProcessOutcome;
use crate::dispatch::testutil::event;
use serde_json::json;
use std::time::Duration;

fn command_event() -> Envelope {
    event(
        "scaling",
        "command.requested",
        json!({"command_id": "cmd_1", "action": "scale_up", "leader_epoch": 4, "leader_id": "n1", "reason": "queue backlog"}),
    )
}

fn lane_cfg(start: &[&str]) -> LaneConfig {
    LaneConfig {
        id: "a".into(),
        enabled: true,
        scaling_rank: 1,
        start: start.iter().map(|s| s.to_string()).collect(),
        stop: vec!["stop-lane".into()],
        status: None,
        timeout: HumanDuration(Duration::from_secs(5)),
    }
}

fn ended(code: Option<i32>, timed_out: bool, stderr: &str) -> LaneRun {
    LaneRun::Ended(ProcessOutcome {
        code,
        timed_out,
        stdout: Vec::new(),
        stderr: stderr.into(),
        overflow: None,
    })
}

fn record(event_id: &str, command_id: &str, outcome: Outcome, phase: Phase) -> CommandRecord {
    CommandRecord {
        event_id: event_id.into(),
        command_id: command_id.into(),
        action: "scale_up".into(),
        lane_id: "a".into(),
        outcome,
        reason: String::new(),
        leader_epoch: Some(1),
        phase,
        audited: true,
    }
}

#[test]
fn outcomes_keep_the_strings_of_the_audit_trail() {
    let all = [
        (Outcome::Pending, ""),
        (Outcome::Applied, "applied"),
        (Outcome::Failed, "failed"),
        (Outcome::Interrupted, "interrupted"),
        (Outcome::RejectedInvalid, "rejected_invalid"),
        (Outcome::RejectedDuplicate, "rejected_duplicate"),
        (Outcome::RejectedStale, "rejected_stale"),
        (Outcome::RejectedFuture, "rejected_future"),
        (Outcome::RejectedStaleEpoch, "rejected_stale_epoch"),
        (Outcome::RejectedLeaderFence, "rejected_leader_fence"),
        (
            Outcome::RejectedUnverifiedEpoch,
            "rejected_unverified_epoch",
        ),
        (
            Outcome::RejectedNotLeaderSigned,
            "rejected_not_leader_signed",
        ),
        (Outcome::RejectedPolicy, "rejected_policy"),
        (Outcome::RejectedUnknownLane, "rejected_unknown_lane"),
        (Outcome::RejectedNoTarget, "rejected_no_target"),
    ];
    for (o, s) in all {
        assert_eq!(o.as_str(), s);
        assert_eq!(serde_json::to_value(o).unwrap(), json!(s));
        assert_eq!(serde_json::from_value::<Outcome>(json!(s)).unwrap(), o);
    }
    assert!(serde_json::from_value::<Outcome>(json!("exploded")).is_err());
}

#[test]
fn an_audit_line_is_written_and_read_back_byte_for_byte() {
    let text = r#"{"timestamp":"2026-11-23T12:00:00.000000Z","event_id":"evt_1","command_id":"cmd_1","action":"scale_down","lane_id":"b","outcome":"rejected_stale_epoch","reason":"old","leader_epoch":3}"#;
    let line: AuditLine = serde_json::from_str(text).unwrap();
    assert_eq!(line.outcome, Outcome::RejectedStaleEpoch);
    assert_eq!(serde_json::to_string(&line).unwrap(), text);
    let bare: AuditLine = serde_json::from_str(r#"{"event_id":"evt_2"}"#).unwrap();
    assert!(bare.outcome.is_empty());
}

#[test]
fn a_started_record_from_an_older_state_file_still_loads() {
    let text = r#"{"fence":{"highest_epoch":2,"epoch_leaders":{"2":"n1"}},"lanes":{},"records":[{"event_id":"evt_1","command_id":"cmd_1","action":"scale_up","lane_id":"a","outcome":"","reason":"","leader_epoch":2,"phase":"started","audited":false}]}"#;
    let state: ActuatorState = serde_json::from_str(text).unwrap();
    assert_eq!(state.records[0].outcome, Outcome::Pending);
    assert_eq!(serde_json::to_string(&state).unwrap(), text);
}

#[test]
fn a_rejection_is_settled_without_running_anything() {
    let ev = command_event();
    let cmd = CommandView::from_event(&ev);
    let verdict = Verdict::Reject {
        outcome: Outcome::RejectedPolicy,
        reason: "needs a causal_hypothesis_id".into(),
    };
    match step(&ev, &cmd, verdict) {
        Step::Settled(rec) => {
            assert_eq!(rec.event_id, ev.event_id);
            assert_eq!(rec.command_id, "cmd_1");
            assert_eq!(rec.lane_id, "");
            assert_eq!(rec.outcome, Outcome::RejectedPolicy);
            assert_eq!(rec.reason, "needs a causal_hypothesis_id");
            assert_eq!(rec.leader_epoch, Some(4));
            assert_eq!(rec.phase, Phase::Done);
            assert!(!rec.audited);
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn an_accepted_command_is_recorded_started_on_its_lane_before_it_runs() {
    let ev = command_event();
    let cmd = CommandView::from_event(&ev);
    let verdict = Verdict::Apply {
        lane_id: "a".into(),
        direction: Direction::ScaleUp,
        note: Some("advisory".into()),
    };
    match step(&ev, &cmd, verdict) {
        Step::Run {
            record,
            direction,
            note,
        } => {
            assert_eq!(record.lane_id, "a");
            assert_eq!(record.phase, Phase::Started);
            assert!(record.outcome.is_empty());
            assert_eq!(direction, Direction::ScaleUp);
            assert_eq!(note.as_deref(), Some("advisory"));
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn a_lane_run_settles_as_applied_only_on_a_clean_exit() {
    let l = lane_cfg(&["start-lane", "--now"]);
    let up = Direction::ScaleUp;
    let settle = |run: &LaneRun| lane::settle(&l, up, run, "queue backlog".into());
    assert_eq!(
        settle(&ended(Some(0), false, "")),
        (Outcome::Applied, "queue backlog".into())
    );
    assert_eq!(
        settle(&ended(Some(3), false, "one\nno capacity")),
        (
            Outcome::Failed,
            "start-lane: exit status 3: no capacity".into()
        )
    );
    assert_eq!(
        settle(&ended(None, true, "")),
        (Outcome::Failed, "start-lane: timed out".into())
    );
    assert_eq!(
        settle(&LaneRun::CannotStart("No such file or directory".into())),
        (
            Outcome::Failed,
            "cannot run start-lane: No such file or directory".into()
        )
    );
    let none = lane_cfg(&[]);
    assert_eq!(
        lane::settle(&none, up, &LaneRun::NoArgv, String::new()),
        (Outcome::Failed, "lane \"a\" has no start argv".into())
    );
    assert_eq!(
        lane::settle(
            &none,
            Direction::ScaleDown,
            &ended(Some(1), false, ""),
            String::new()
        ),
        (Outcome::Failed, "stop-lane: exit status 1".into())
    );
}

#[test]
fn a_command_id_counts_as_used_once_it_ran_or_may_have_run() {
    let mut s = ActuatorState::default();
    s.push(record("evt_f", "cmd_f", Outcome::Failed, Phase::Done));
    s.push(record(
        "evt_r",
        "cmd_r",
        Outcome::RejectedStale,
        Phase::Done,
    ));
    s.push(record("evt_a", "cmd_a", Outcome::Applied, Phase::Done));
    s.push(record("evt_i", "cmd_i", Outcome::Interrupted, Phase::Done));
    s.push(record("evt_s", "cmd_s", Outcome::Pending, Phase::Started));
    s.push(record("evt_e", "", Outcome::Applied, Phase::Done));
    assert_eq!(s.command_id_used_by("cmd_f"), None);
    assert_eq!(s.command_id_used_by("cmd_r"), None);
    assert_eq!(s.command_id_used_by("cmd_a").as_deref(), Some("evt_a"));
    assert_eq!(s.command_id_used_by("cmd_i").as_deref(), Some("evt_i"));
    assert_eq!(s.command_id_used_by("cmd_s").as_deref(), Some("evt_s"));
    assert_eq!(s.command_id_used_by(""), None);
}

#[test]
fn the_record_keeps_only_the_newest_commands() {
    let mut s = ActuatorState::default();
    for i in 0..MAX_RECORDS + 3 {
        s.push(record(
            &format!("evt_{i}"),
            "cmd",
            Outcome::Failed,
            Phase::Done,
        ));
    }
    assert_eq!(s.records.len(), MAX_RECORDS);
    assert_eq!(s.records[0].event_id, "evt_3");
    assert!(s.record_mut(&format!("evt_{}", MAX_RECORDS + 2)).is_some());
    assert!(s.record_mut("evt_2").is_none());
}

#[test]
fn only_a_started_record_settles_as_interrupted() {
    let mut started = record("evt_1", "cmd_1", Outcome::Pending, Phase::Started);
    started.settle_interrupted();
    assert_eq!(started.outcome, Outcome::Interrupted);
    assert_eq!(started.phase, Phase::Done);
    assert!(started.reason.contains("not run again"));
    let mut done = record("evt_2", "cmd_2", Outcome::Applied, Phase::Done);
    done.settle_interrupted();
    assert_eq!(done.outcome, Outcome::Applied);
}

#[test]
fn only_an_applied_record_becomes_command_applied() {
    let ev = command_event();
    let kind = |o| outcome_event(&ev, &record("e", "cmd_1", o, Phase::Done)).event_type;
    assert_eq!(kind(Outcome::Applied), "command.applied");
    assert_eq!(kind(Outcome::Failed), "command.rejected");
    assert_eq!(kind(Outcome::Interrupted), "command.rejected");
    assert_eq!(kind(Outcome::RejectedNoTarget), "command.rejected");
    let f = outcome_event(
        &ev,
        &record("e", "cmd_1", Outcome::RejectedDuplicate, Phase::Done),
    );
    assert_eq!(f.payload["outcome"], "rejected_duplicate");
}

#[test]
fn the_audit_trail_knows_its_last_line() {
    let a = r#"{"event_id":"evt_a","outcome":"applied"}"#;
    let b = r#"{"event_id":"evt_b","outcome":"failed"}"#;
    assert!(record::last_line_is(&format!("{a}\n{b}\n"), "evt_b"));
    assert!(!record::last_line_is(&format!("{a}\n{b}\n"), "evt_a"));
    assert!(!record::last_line_is("", "evt_a"));
    assert!(!record::last_line_is(
        &format!("{a}\n{{\"event_id\":\"evt_b"),
        "evt_b"
    ));
}

#[test]
fn an_audit_line_is_appended_once_even_when_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("commands.ndjson");
    let mut line = AuditLine {
        event_id: "evt_1".into(),
        outcome: Outcome::Applied,
        ..AuditLine::default()
    };
    record::append_audit(&path, &line).unwrap();
    record::append_audit(&path, &line).unwrap();
    line.event_id = "evt_2".into();
    record::append_audit(&path, &line).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<AuditLine>(l).unwrap().event_id)
        .collect();
    assert_eq!(ids, ["evt_1", "evt_2"]);
}
