//! The dead-letter file: events a user handler gave up on, and their resolutions.

use crate::event::Envelope;
use crate::fsutil::{IoContext, PathError, append_json_line};
use crate::node::Node;
use serde::{Deserialize, Serialize};

/// What a line of the dead-letter file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// A handler gave up on an event (`dead_letter`).
    DeadLetter,
    /// A retry of that handler and event succeeded (`resolved`).
    Resolved,
}

/// Why a handler gave up on an event; the string forms are those of the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// No reason: a `resolved` line (left out of the file).
    #[default]
    #[serde(rename = "")]
    Unset,
    /// Every attempt failed (`failed`).
    Failed,
    /// Skipped while the handler's circuit breaker was open (`circuit_open`).
    CircuitOpen,
    /// The handler printed more than its `max_output_bytes` on stdout or stderr;
    /// the rest was discarded and the run ended (`output_too_large`).
    OutputTooLarge,
    /// The handler asked for more follow-ups than its `max_followups`; none was
    /// appended (`too_many_followups`).
    TooManyFollowups,
}

impl DeadLetterReason {
    /// The string form, as written to the file (empty when unset).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Unset => "",
            DeadLetterReason::Failed => "failed",
            DeadLetterReason::CircuitOpen => "circuit_open",
            DeadLetterReason::OutputTooLarge => "output_too_large",
            DeadLetterReason::TooManyFollowups => "too_many_followups",
        }
    }

    /// Whether no reason is recorded (resolved lines).
    pub fn is_unset(&self) -> bool {
        *self == DeadLetterReason::Unset
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dead letter: an event a handler gave up on (or skipped while its breaker was open).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// A dead letter, or the resolution of earlier ones.
    pub kind: DeadLetterKind,
    /// When it was written.
    pub timestamp: String,
    /// The handler.
    pub handler: String,
    /// The event.
    pub event_id: String,
    /// Why the handler gave up (dead letters only).
    #[serde(default, skip_serializing_if = "DeadLetterReason::is_unset")]
    pub reason: DeadLetterReason,
    /// The last error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Runs made.
    #[serde(default)]
    pub attempts: u32,
    /// The whole event, so it can be replayed without the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Envelope>,
}

impl DeadLetter {
    /// A `dead_letter` line: `handler` gave up on `ev` (kept whole for a replay).
    pub fn given_up(
        handler: &str,
        ev: &Envelope,
        reason: DeadLetterReason,
        error: String,
        attempts: u32,
    ) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::DeadLetter,
            timestamp: crate::event::now_timestamp(),
            handler: handler.to_string(),
            event_id: ev.event_id.clone(),
            reason,
            error,
            attempts,
            event: Some(ev.clone()),
        }
    }

    /// A `resolved` line: a retry of `handler` on `event_id` succeeded.
    pub fn resolved(handler: &str, event_id: &str) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::Resolved,
            timestamp: crate::event::now_timestamp(),
            handler: handler.to_string(),
            event_id: event_id.to_string(),
            reason: DeadLetterReason::Unset,
            error: String::new(),
            attempts: 0,
            event: None,
        }
    }
}

/// Appends one line to the dead-letter file (fsynced).
pub fn append_dead_letter(node: &Node, d: &DeadLetter) -> Result<(), PathError> {
    append_json_line(&node.paths.dead_letter(), d)
}

/// Dead letters not yet resolved, oldest first (the newest line per handler and event).
pub fn pending_dead_letters(node: &Node) -> Result<Vec<DeadLetter>, PathError> {
    let path = node.paths.dead_letter();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read", &path),
    };
    let mut pending: Vec<DeadLetter> = Vec::new();
    for line in text.lines() {
        let Ok(d) = serde_json::from_str::<DeadLetter>(line) else {
            continue;
        };
        pending.retain(|p| !(p.handler == d.handler && p.event_id == d.event_id));
        if d.kind == DeadLetterKind::DeadLetter {
            pending.push(d);
        }
    }
    Ok(pending)
}
