//! `gitmesh mesh-dispatch`, `gitmesh trace` and `gitmesh dead-letter`.

use super::{Output, count_line};
use gitmesh::dispatch::{DispatchOptions, trace, user};
use gitmesh::{Error, Node};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// Flags of `mesh-dispatch`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Handle at most N events in this pass (default: until the log end)
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let r = gitmesh::ops::append::dispatch(
        &node,
        &DispatchOptions {
            max_events: a.max_events,
        },
    )?;
    let mut h = format!(
        "dispatched {} events ({} acted on), appended {} follow-ups; cursor at byte {}\n",
        r.processed_events, r.acted_events, r.followup_events, r.cursor_offset
    );
    count_line(
        &mut h,
        "",
        r.duplicate_followups,
        "follow-ups were already in the log (replay after an interruption)",
    );
    count_line(
        &mut h,
        "",
        r.dead_lettered,
        "events went to the dead-letter file: see `gitmesh dead-letter list`",
    );
    if r.remaining_bytes > 0 {
        let _ = writeln!(h, "more events are waiting: run mesh-dispatch again");
    }
    Ok(Output::new(r, h))
}

/// Flags of `trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Any event of the chain (evt_...)
    pub event_id: String,
}

pub fn run_trace(root: &Path, a: TraceArgs) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let t = trace::trace(&node, &a.event_id).map_err(|e| match e {
        trace::TraceError::NotFound(_) => Error::not_found(e.to_string()),
        trace::TraceError::Log(l) => Error::from(l),
    })?;
    let human = trace::render(&t);
    Ok(Output::new(t, human))
}

/// `dead-letter` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// List events user handlers gave up on (not yet resolved).
    List,
    /// Run the handler again on pending dead letters.
    Retry {
        /// Only this handler's dead letters
        #[arg(long)]
        handler: Option<String>,
        /// Only this event's dead letters
        #[arg(long, value_name = "EVENT_ID")]
        event_id: Option<String>,
    },
}

pub fn run_dead_letter(root: &Path, c: DeadLetterCommand) -> Result<Output, Error> {
    let node = Node::open(root)?;
    match c {
        DeadLetterCommand::List => {
            let list = user::pending_dead_letters(&node)?;
            let mut h = String::new();
            if list.is_empty() {
                h.push_str("no dead letters\n");
            }
            for d in &list {
                let _ = writeln!(
                    h,
                    "{}  {:<16} {}  {} ({} attempts): {}",
                    d.timestamp, d.handler, d.event_id, d.reason, d.attempts, d.error
                );
            }
            let summary: Vec<_> = list
                .iter()
                .map(|d| {
                    json!({"handler": d.handler, "event_id": d.event_id, "reason": d.reason,
                        "error": d.error, "attempts": d.attempts, "timestamp": d.timestamp})
                })
                .collect();
            Ok(Output::new(
                json!({"node_id": node.id(), "dead_letters": summary}),
                h,
            ))
        }
        DeadLetterCommand::Retry { handler, event_id } => {
            let r = user::retry_dead_letters(&node, handler.as_deref(), event_id.as_deref())?;
            let h = format!(
                "retried {}: {} resolved ({} follow-ups), {} failed again{}\n",
                r.retried,
                r.resolved,
                r.followup_events,
                r.failed,
                if r.unknown_handler > 0 {
                    format!(
                        "; {} skipped (handler no longer configured)",
                        r.unknown_handler
                    )
                } else {
                    String::new()
                }
            );
            Ok(Output::new(r, h))
        }
    }
}
