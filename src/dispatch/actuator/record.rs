//! The actuator's memory: command records (`actuator.json`) and the audit trail
//! (`commands.ndjson`), with the pure rules over them and their file I/O.

use super::command::CommandView;
use super::outcome::Outcome;
use super::rules::Fence;
use crate::event::Envelope;
use crate::fsutil::{IoContext, PathError, append_json_line};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Most command records kept; older ones are far outside the freshness window.
pub(super) const MAX_RECORDS: usize = 4096;

/// Why a record found `started` is settled as interrupted.
const INTERRUPTED_REASON: &str =
    "the actuator stopped while the lane command ran; not run again (at most once)";

/// Where a command stands in the actuator's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The argv was about to run (or ran) when the record was written.
    Started,
    /// The outcome is final.
    Done,
}

/// One command as the actuator handled it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The `command.requested` event.
    pub event_id: String,
    /// Its command id.
    pub command_id: String,
    /// Its action.
    pub action: String,
    /// The lane acted on (empty when rejected before a lane was chosen).
    pub lane_id: String,
    /// What became of it (pending while `started`).
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
    /// The command's epoch.
    pub leader_epoch: Option<u64>,
    /// Started or done.
    pub phase: Phase,
    /// Whether its line is in `commands.ndjson`.
    pub audited: bool,
}

impl CommandRecord {
    /// A record of `cmd` (event `ev`) with no lane and no outcome yet.
    pub fn new(ev: &Envelope, cmd: &CommandView) -> CommandRecord {
        CommandRecord {
            event_id: ev.event_id.clone(),
            command_id: cmd.command_id.clone(),
            action: cmd.action_text.clone(),
            lane_id: String::new(),
            outcome: Outcome::Pending,
            reason: String::new(),
            leader_epoch: cmd.leader_epoch,
            phase: Phase::Done,
            audited: false,
        }
    }

    /// Settles a record left `started` by a stop mid-run as interrupted (at most once).
    pub fn settle_interrupted(&mut self) {
        if self.phase == Phase::Started {
            self.phase = Phase::Done;
            self.outcome = Outcome::Interrupted;
            self.reason = INTERRUPTED_REASON.into();
        }
    }
}

/// One line of `commands.ndjson`, the actuator's audit trail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLine {
    /// When the outcome was recorded.
    pub timestamp: String,
    /// The `command.requested` event.
    pub event_id: String,
    /// Its command id.
    pub command_id: String,
    /// Its action.
    pub action: String,
    /// The lane acted on (empty when rejected before a lane was chosen).
    pub lane_id: String,
    /// What became of the command.
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
    /// The command's epoch.
    pub leader_epoch: Option<u64>,
}

impl AuditLine {
    /// The audit line of a settled record, stamped `timestamp`.
    pub fn of(rec: &CommandRecord, timestamp: String) -> AuditLine {
        AuditLine {
            timestamp,
            event_id: rec.event_id.clone(),
            command_id: rec.command_id.clone(),
            action: rec.action.clone(),
            lane_id: rec.lane_id.clone(),
            outcome: rec.outcome,
            reason: rec.reason.clone(),
            leader_epoch: rec.leader_epoch,
        }
    }
}

/// `state/event_mesh/actuator.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActuatorState {
    /// Fencing memory.
    #[serde(default)]
    pub fence: Fence,
    /// Lanes this actuator started (true) or stopped (false).
    #[serde(default)]
    pub lanes: BTreeMap<String, bool>,
    /// The newest command records, oldest first.
    #[serde(default)]
    pub records: Vec<CommandRecord>,
}

impl ActuatorState {
    /// The newest record of a command event.
    pub fn record_mut(&mut self, event_id: &str) -> Option<&mut CommandRecord> {
        self.records
            .iter_mut()
            .rev()
            .find(|r| r.event_id == event_id)
    }

    /// The event that already used `command_id`: one being run or applied (or
    /// interrupted, which may have applied), so the id is never run twice.
    pub fn command_id_used_by(&self, command_id: &str) -> Option<String> {
        self.records
            .iter()
            .find(|r| {
                !r.command_id.is_empty()
                    && r.command_id == command_id
                    && (r.phase == Phase::Started
                        || matches!(r.outcome, Outcome::Applied | Outcome::Interrupted))
            })
            .map(|r| r.event_id.clone())
    }

    /// Adds a record, dropping the oldest beyond `MAX_RECORDS`.
    pub fn push(&mut self, rec: CommandRecord) {
        self.records.push(rec);
        let extra = self.records.len().saturating_sub(MAX_RECORDS);
        self.records.drain(..extra);
    }
}

/// Appends `line` to the audit trail at `path` (fsynced), unless it is already
/// the last line there (a crash after the append and before the record said so).
pub(super) fn append_audit(path: &Path, line: &AuditLine) -> Result<(), PathError> {
    if last_line_names(path, &line.event_id)? {
        return Ok(());
    }
    append_json_line(path, line)
}

/// Whether the last line of `path` is the audit line of `event_id` (the crash window).
fn last_line_names(path: &Path, event_id: &str) -> Result<bool, PathError> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).ctx("open", path),
    };
    let len = f.metadata().ctx("stat", path)?.len();
    let from = len.saturating_sub(16 * 1024);
    f.seek(SeekFrom::Start(from)).ctx("seek", path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ctx("read", path)?;
    let text = String::from_utf8_lossy(&buf);
    Ok(last_line_is(&text, event_id))
}

/// Whether the last line of `text` is a JSON object whose `event_id` is `event_id`.
pub(super) fn last_line_is(text: &str, event_id: &str) -> bool {
    let Some(last) = text.trim_end_matches('\n').rsplit('\n').next() else {
        return false;
    };
    serde_json::from_str::<Value>(last)
        .ok()
        .and_then(|v| {
            v.get("event_id")
                .and_then(Value::as_str)
                .map(|s| s == event_id)
        })
        .unwrap_or(false)
}
