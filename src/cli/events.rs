//! `gitmesh events`.

use super::Output;
use gitmesh::ops::query::{EventFilter, events};
use gitmesh::{Error, Node};
use serde_json::json;
use std::path::Path;

/// Flags of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this topic
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this event type
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only events emitted by this node
    #[arg(long)]
    pub node: Option<String>,
    /// Only events since a time (RFC 3339) or for a duration back (e.g. 15m, 2h)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most N events: the newest N
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the raw log lines (NDJSON) instead of a table
    #[arg(long, conflicts_with = "json")]
    pub ndjson: bool,
    /// Show payloads as stored, without upcasting them to the newest schema version
    #[arg(long)]
    pub raw: bool,
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    if let Some(t) = gitmesh::event::parse_timestamp(s) {
        return Ok(t);
    }
    let d = humantime::parse_duration(s).map_err(|_| {
        Error::usage(format!(
            "--since {s:?}: give an RFC 3339 time (2026-11-23T10:00:00Z) or a duration (15m, 2h)"
        ))
    })?;
    let d = chrono::Duration::from_std(d)
        .map_err(|_| Error::usage(format!("--since {s:?}: too long ago")))?;
    Ok(chrono::Utc::now() - d)
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let filter = EventFilter {
        topic: a.topic,
        event_type: a.event_type,
        node: a.node,
        since: a.since.as_deref().map(parse_since).transpose()?,
        limit: a.limit,
    };
    let list = events(&node, &filter)?;
    // The stored lines stay as they are; the listing shows each event upcast to the
    // newest schema version this node knows, marked with `upcast_from`, unless --raw.
    let registry = if a.raw || a.ndjson {
        None
    } else {
        Some(node.schemas()?)
    };
    let mut shown = Vec::with_capacity(list.len());
    let mut versions = Vec::with_capacity(list.len());
    for e in &list {
        let stored = e.schema_version.unwrap_or(1);
        let view = match registry {
            Some(r) => r.upcast(e),
            None => std::borrow::Cow::Borrowed(e),
        };
        let now = view.schema_version.unwrap_or(1);
        let mut v = serde_json::to_value(&*view).unwrap_or_default();
        if now != stored
            && let Some(obj) = v.as_object_mut()
        {
            obj.insert("upcast_from".into(), json!(stored));
        }
        versions.push(if now != stored {
            format!("v{stored}>v{now}")
        } else {
            format!("v{now}")
        });
        shown.push(v);
    }
    let mut human = String::new();
    if a.ndjson {
        for e in &list {
            human.push_str(&e.to_json_line());
            human.push('\n');
        }
    } else if list.is_empty() {
        human.push_str("no events\n");
    } else {
        human.push_str(&format!(
            "{:<27}  {:<12} {:>6}  {:<36}  {:<7}  {:<36}  {}\n",
            "TIMESTAMP", "NODE", "SEQ", "TOPIC.EVENT_TYPE", "SCHEMA", "EVENT_ID", "SOURCE"
        ));
        for (e, ver) in list.iter().zip(&versions) {
            human.push_str(&format!(
                "{:<27}  {:<12} {:>6}  {:<36}  {:<7}  {:<36}  {}\n",
                e.timestamp,
                e.node_id,
                e.seq,
                e.kind(),
                ver,
                e.event_id,
                e.source
            ));
        }
    }
    Ok(Output::new(json!({"events": shown}), human))
}
