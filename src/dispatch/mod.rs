//! Dispatch: give each new event of the log to the handlers whose pattern matches,
//! and append their follow-ups as derived own events, exactly once.
//!
//! A pass resumes at the byte offset in `dispatch_cursor.json` (O(1)), reads
//! forward, and appends follow-ups in chunks under one log lock, saving the
//! cursor after each chunk. Follow-up ids depend only on their cause, handler
//! and payload, and a follow-up whose id the log already holds is not appended
//! again: a crash anywhere between append and cursor save replays the chunk
//! without duplicating anything. See `docs/dispatch.md`.

pub mod actuator;
mod cursor;
pub mod emit;
mod engine;
pub mod process;
pub mod routing;
pub mod scaling;
pub mod scheduling;
pub mod table;
pub mod trace;
pub mod user;

pub use cursor::{DispatchCursor, DispatchSeen};
pub use engine::{HOP_LIMIT_TOPIC, HOP_LIMIT_TYPE};

use crate::fsutil::{PathError, read_json};
use crate::log::LogError;
use crate::node::Node;
use engine::{Engine, Kind, builtins};
use serde::Serialize;
use serde_json::{Map, Value};
use table::{DecisionTable, TableError};

/// Errors of dispatch.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The decision table named in `[scaling] decision_table` is unusable.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A state file failed.
    #[error(transparent)]
    Io(#[from] PathError),
    /// Reading the ledger (lease, manifests) failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A follow-up could not be given an id.
    #[error("follow-up of {cause}: {source}")]
    Event {
        /// The event whose follow-up it was.
        cause: String,
        #[source]
        /// What is wrong with the follow-up.
        source: crate::event::EventError,
    },
}

/// One follow-up a handler asks for: everything but what the engine assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// The handler that produced it (part of the derived id).
    pub handler: String,
    /// Topic.
    pub topic: String,
    /// Event type.
    pub event_type: String,
    /// Payload (no wall-clock values: it is part of the id).
    pub payload: Map<String, Value>,
}

impl FollowUp {
    /// A follow-up from `handler`.
    pub fn new(
        handler: &str,
        topic: &str,
        event_type: &str,
        payload: Map<String, Value>,
    ) -> FollowUp {
        FollowUp {
            handler: handler.to_string(),
            topic: topic.to_string(),
            event_type: event_type.to_string(),
            payload,
        }
    }
}

/// Options of one pass.
#[derive(Debug, Clone, Default)]
pub struct DispatchOptions {
    /// Stop after this many events (default: until the log end, including follow-ups).
    pub max_events: Option<u64>,
}

/// What a pass did (`mesh-dispatch --json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchReport {
    /// This node.
    pub node_id: String,
    /// Events the cursor moved over in this pass.
    pub processed_events: u64,
    /// Follow-ups appended in this pass.
    pub followup_events: u64,
    /// Where the next pass starts.
    pub cursor_offset: u64,
    /// Events this node acted on (it was the acting node and a handler matched).
    pub acted_events: u64,
    /// Follow-ups not appended because the log already held them (replay after a crash).
    pub duplicate_followups: u64,
    /// Events user handlers gave up on or skipped (see `gitmesh dead-letter list`).
    pub dead_lettered: u64,
    /// Events the log holds after the cursor.
    pub remaining_bytes: u64,
    /// Events that went to no handler because they lie `dispatch.max_hops`
    /// causation hops below their root (each reported by a
    /// `monitoring.dispatch.hop_limit_reached` event).
    pub hop_limited: u64,
}

/// Loads the decision table named in `mesh.toml` (relative to the node root), or the default.
pub fn load_table(node: &Node) -> Result<DecisionTable, TableError> {
    match &node.config.scaling.decision_table {
        Some(p) => DecisionTable::load(&node.paths.root.join(p)),
        None => Ok(DecisionTable::default_table()),
    }
}

/// Takes the node's dispatch lock (waiting for a pass already running), held until dropped.
///
/// The log lock is released while handlers run outside processes, so this
/// second lock is what keeps two passes (say, the daemon and a manual run)
/// from running the same handler on the same event at once.
pub fn lock_dispatch(node: &Node) -> Result<crate::lock::FileLock, PathError> {
    crate::lock::FileLock::lock(&node.paths.dispatch_lock())
}

/// Runs one dispatch pass on `node`.
pub fn run(node: &Node, opts: &DispatchOptions) -> Result<DispatchReport, DispatchError> {
    let _pass = lock_dispatch(node)?;
    let table = load_table(node)?;
    let mut cursor: DispatchCursor = read_json(&node.paths.dispatch_cursor())?.unwrap_or_default();
    let seen: DispatchSeen = read_json(&node.paths.dispatch_seen())?.unwrap_or_default();
    let mut handlers = builtins();
    let users = user::UserHandlers::load(node)?;
    for i in 0..users.len() {
        handlers.push((users.pattern(i).clone(), Kind::User(i)));
    }
    let writer = node.log.writer()?;
    let log_len = writer.head().log_len;
    if !cursor::cursor_is_valid(node, &cursor, &seen, log_len)? {
        tracing::warn!(
            offset = cursor.offset,
            log_len,
            "dispatch cursor does not match the log (replaced or restored?); dispatching again from the start, follow-ups dedupe by id"
        );
        cursor.offset = 0;
    }
    let e = Engine::new(node, writer, handlers, table, users, cursor, seen);
    // Handlers see events upcast to the newest payload schema this node knows.
    let schemas = match node.schemas() {
        Ok(r) => Some(r),
        Err(err) => {
            tracing::warn!(error = %err, "schemas could not be loaded; handlers see stored payloads");
            None
        }
    };
    e.pass(schemas, opts.max_events.unwrap_or(u64::MAX))
}

#[cfg(test)]
pub(crate) mod testutil;
