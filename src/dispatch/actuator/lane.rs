//! Running a lane's argv: whether a lane runs, the environment a lane command
//! gets, running it, and what its end means for the command (pure).

use super::command::{CommandView, Direction};
use super::outcome::Outcome;
use crate::config::LaneConfig;
use crate::dispatch::process::{self, ProcessOutcome};
use crate::event::Envelope;
use std::collections::BTreeMap;

/// How running a lane's argv went.
#[derive(Debug, Clone)]
pub enum LaneRun {
    /// The lane has no argv for this direction, so nothing ran.
    NoArgv,
    /// The argv ran and ended like this.
    Ended(ProcessOutcome),
    /// The argv could not start (the error's text).
    CannotStart(String),
}

/// The argv that moves `lane` in `direction`.
pub fn argv(lane: &LaneConfig, direction: Direction) -> &[String] {
    match direction {
        Direction::ScaleUp => &lane.start,
        Direction::ScaleDown => &lane.stop,
    }
}

/// Runs `lane`'s argv for `direction` with `env` and the lane's time limit.
pub fn run(lane: &LaneConfig, direction: Direction, env: &[(String, String)]) -> LaneRun {
    let argv = argv(lane, direction);
    if argv.is_empty() {
        return LaneRun::NoArgv;
    }
    match process::run(argv, env, None, lane.timeout.0) {
        Ok(out) => LaneRun::Ended(out),
        Err(e) => LaneRun::CannotStart(e.to_string()),
    }
}

/// The outcome and reason of a lane run (pure); `applied_reason` is the reason
/// recorded on success.
pub fn settle(
    lane: &LaneConfig,
    direction: Direction,
    run: &LaneRun,
    applied_reason: String,
) -> (Outcome, String) {
    let prog = argv(lane, direction).first().map_or("", String::as_str);
    match run {
        LaneRun::NoArgv => (
            Outcome::Failed,
            format!(
                "lane {:?} has no {} argv",
                lane.id,
                match direction {
                    Direction::ScaleUp => "start",
                    Direction::ScaleDown => "stop",
                }
            ),
        ),
        LaneRun::Ended(out) if out.success() => (Outcome::Applied, applied_reason),
        LaneRun::Ended(out) => (Outcome::Failed, format!("{prog}: {}", out.describe())),
        LaneRun::CannotStart(e) => (Outcome::Failed, format!("cannot run {prog}: {e}")),
    }
}

/// Whether a lane runs: its status argv when it has one that answers in time,
/// else what this actuator last did to it.
pub fn running(l: &LaneConfig, recorded: &BTreeMap<String, bool>) -> bool {
    if let Some(status) = &l.status
        && !status.is_empty()
        && let Ok(out) = process::run(status, &[], None, l.timeout.0)
        && !out.timed_out
    {
        return out.code == Some(0);
    }
    recorded.get(&l.id).copied().unwrap_or(false)
}

/// The environment a lane command gets: the command's values, never its argv.
pub fn env(
    ev: &Envelope,
    cmd: &CommandView,
    lane: &str,
    node: &str,
    reason: &str,
) -> Vec<(String, String)> {
    vec![
        ("GITMESH_COMMAND_ID".into(), cmd.command_id.clone()),
        ("GITMESH_COMMAND_EVENT_ID".into(), ev.event_id.clone()),
        ("GITMESH_ACTION".into(), cmd.action_text.clone()),
        ("GITMESH_LANE_ID".into(), lane.to_string()),
        (
            "GITMESH_LEADER_EPOCH".into(),
            cmd.leader_epoch.map(|e| e.to_string()).unwrap_or_default(),
        ),
        ("GITMESH_LEADER_ID".into(), cmd.leader_id.clone()),
        ("GITMESH_REASON".into(), reason.to_string()),
        ("GITMESH_NODE_ID".into(), node.to_string()),
    ]
}
