//! `gitmesh schema`: list, show, check and publish event schemas.

use super::Output;
use gitmesh::schema::{SchemaError, registry};
use gitmesh::{Error, Node};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Flags of `schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SchemaCommand,
}

/// The `schema` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SchemaCommand {
    /// List every schema this node knows, with its source (builtin, ledger, local).
    List,
    /// Print one schema (the newest version unless --version).
    Show {
        /// Topic, e.g. scheduling
        topic: String,
        /// Event type, e.g. task.enqueued
        event_type: String,
        /// Schema version [default: the newest known]
        #[arg(long, value_name = "N")]
        version: Option<u32>,
    },
    /// Check a schema file: JSON Schema draft 2020-12 and a well-formed upcaster.
    Check {
        /// The file; a name v<N>.json also checks that its upcaster reads v<N-1>
        file: PathBuf,
    },
    /// Check every <topic>/<event_type>/v<N>.json under DIR, sign them as this node (it needs
    /// the schema role) and stage them for the ledger.
    Publish {
        /// Directory laid out as <topic>/<event_type>/v<N>.json
        dir: PathBuf,
    },
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    match a.command {
        SchemaCommand::List => list(root),
        SchemaCommand::Show {
            topic,
            event_type,
            version,
        } => show(root, &topic, &event_type, version),
        SchemaCommand::Check { file } => check(&file),
        SchemaCommand::Publish { dir } => publish(root, &dir),
    }
}

fn list(root: &Path) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let reg = node.schemas()?;
    let mut rows = Vec::new();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "{:<12} {:<24} {:>4}  {:<8} {:<8} LOCATION",
        "TOPIC", "EVENT_TYPE", "VER", "SOURCE", "UPCAST"
    );
    for e in reg.entries() {
        let (upcast_from, error) = match e.verify().and_then(|()| e.upcaster()) {
            Ok(u) => (u.map(|u| u.from), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let _ = writeln!(
            h,
            "{:<12} {:<24} {:>4}  {:<8} {:<8} {}{}",
            e.key.topic,
            e.key.event_type,
            e.key.version,
            source_name(e.source),
            upcast_from
                .map(|f| format!("from v{f}"))
                .unwrap_or_default(),
            e.location,
            if error.is_some() { "  (BROKEN)" } else { "" }
        );
        let mut row = json!({
            "topic": e.key.topic,
            "event_type": e.key.event_type,
            "version": e.key.version,
            "source": e.source,
            "location": e.location,
            "overrides": e.overrides,
            "upcast_from": upcast_from,
        });
        if let (Some(err), Some(obj)) = (error, row.as_object_mut()) {
            obj.insert("error".into(), Value::String(err));
        }
        rows.push(row);
    }
    for r in reg.refused() {
        let _ = writeln!(h, "refused: {} ({})", r.location, r.reason);
    }
    Ok(Output::new(
        json!({"schemas": rows, "refused": reg.refused()}),
        h,
    ))
}

fn source_name(s: gitmesh::schema::SchemaSource) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn show(root: &Path, topic: &str, event_type: &str, version: Option<u32>) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let reg = node.schemas()?;
    let entry = match version {
        Some(v) => reg.get(topic, event_type, v),
        None => reg.newest(topic, event_type),
    }
    .ok_or_else(|| {
        Error::not_found(format!(
            "no schema for {topic}/{event_type}{} (see `gitmesh schema list`)",
            version.map(|v| format!(" v{v}")).unwrap_or_default()
        ))
    })?;
    let schema = entry.schema()?;
    let human = format!(
        "# {} ({}: {})\n{}\n",
        entry.key,
        source_name(entry.source),
        entry.location,
        serde_json::to_string_pretty(schema).unwrap_or_default()
    );
    Ok(Output::new(
        json!({
            "topic": entry.key.topic,
            "event_type": entry.key.event_type,
            "version": entry.key.version,
            "source": entry.source,
            "location": entry.location,
            "schema": schema,
        }),
        human,
    ))
}

fn check(file: &Path) -> Result<Output, Error> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::usage(format!("schema check {}: {e}", file.display())))?;
    let version = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(registry::parse_version_file);
    let upcast =
        registry::check_schema_text(&text, version).map_err(|reason| SchemaError::BadSchema {
            location: file.display().to_string(),
            reason,
        })?;
    let human = match &upcast {
        Some(u) => format!(
            "{}: valid draft 2020-12 schema; upcasts from v{} in {} steps\n",
            file.display(),
            u.from,
            u.steps.len()
        ),
        None => format!("{}: valid draft 2020-12 schema\n", file.display()),
    };
    Ok(Output::new(
        json!({
            "file": file.display().to_string(),
            "valid": true,
            "version": version,
            "upcast_from": upcast.as_ref().map(|u| u.from),
            "upcast_steps": upcast.as_ref().map_or(0, |u| u.steps.len()),
        }),
        human,
    ))
}

fn publish(root: &Path, dir: &Path) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let staged = gitmesh::ops::schema::publish(&node, dir)?;
    let mut h = String::new();
    for s in &staged {
        let _ = writeln!(
            h,
            "staged {}{}",
            s.key,
            match (s.unchanged, s.replaces) {
                (true, _) => " (unchanged)".to_string(),
                (false, Some(src)) => format!(" (replaces the {} schema)", source_name(src)),
                (false, None) => String::new(),
            }
        );
    }
    let _ = writeln!(
        h,
        "{} schema file(s) signed by {} and in use on this node now; the next mesh-sync adds them to the ledger",
        staged.len(),
        node.id()
    );
    Ok(Output::new(
        json!({"staged": staged, "count": staged.len(), "signed_by": node.id()}),
        h,
    ))
}
