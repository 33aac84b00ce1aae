//! `gitmesh mesh-publish`.

use super::{Output, parse_object};
use gitmesh::{Draft, Error, Node};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Flags of `mesh-publish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Topic, e.g. monitoring, scheduling, routing, scaling
    #[arg(long, required_unless_present = "stdin")]
    pub topic: Option<String>,
    /// Dotted event type, e.g. task.enqueued
    #[arg(long, required_unless_present = "stdin")]
    pub event_type: Option<String>,
    /// Payload as a JSON object
    #[arg(long, value_name = "JSON", conflicts_with = "payload_file")]
    pub payload_json: Option<String>,
    /// Payload read from a file holding a JSON object
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,
    /// Id of the event this one reacts to
    #[arg(long, value_name = "EVENT_ID")]
    pub causation_id: Option<String>,
    /// Producer name recorded in the event [default: cli]
    #[arg(long)]
    pub source: Option<String>,
    /// Idempotency key: publishing the same key again returns the first event
    #[arg(long, value_name = "KEY")]
    pub dedupe_key: Option<String>,
    /// Payload schema version (absent means 1)
    #[arg(long, value_name = "N")]
    pub schema_version: Option<u32>,
    /// Read NDJSON drafts ({topic, event_type, payload, ...}) from stdin as one batch
    #[arg(long, conflicts_with_all = ["topic", "event_type", "payload_json", "payload_file", "causation_id", "dedupe_key", "schema_version"])]
    pub stdin: bool,
}

pub fn run(root: &Path, a: Args) -> Result<Output, Error> {
    let node = Node::open(root)?;
    if a.stdin {
        let mut input = std::io::stdin().lock();
        let r = gitmesh::ops::append::publish_stream(&node, &mut input, a.source.as_deref())
            .map_err(|e| match e {
                gitmesh::ops::OpsError::Node(gitmesh::node::NodeError::Draft(m))
                    if m == "no events in the input" =>
                {
                    Error::usage("--stdin: no events on standard input")
                }
                other => other.into(),
            })?;
        let (published, dups) = (r.published, r.duplicates);
        let human = format!(
            "published {published} events ({dups} duplicates) on {}\n",
            node.id()
        );
        return Ok(Output::new(
            json!({"published": published, "duplicates": dups, "node_id": node.id()}),
            human,
        ));
    }
    let payload = match (&a.payload_json, &a.payload_file) {
        (Some(text), _) => parse_object(text, "--payload-json")?,
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Error::usage(format!("--payload-file {}: {e}", file.display())))?;
            parse_object(&text, &format!("--payload-file {}", file.display()))?
        }
        (None, None) => Default::default(),
    };
    let draft = Draft {
        topic: a.topic.unwrap_or_default(),
        event_type: a.event_type.unwrap_or_default(),
        payload,
        causation_id: a.causation_id.unwrap_or_default(),
        source: a.source,
        dedupe_key: a.dedupe_key,
        schema_version: a.schema_version,
    };
    let mut results = gitmesh::ops::append::publish(&node, std::slice::from_ref(&draft))?;
    let p = results.remove(0);
    let human = format!(
        "{} {} {}.{} seq {}\n",
        if p.duplicate {
            "duplicate of"
        } else {
            "published"
        },
        p.event.event_id,
        p.event.topic,
        p.event.event_type,
        p.event.seq
    );
    Ok(Output::new(
        json!({"event": p.event, "duplicate": p.duplicate}),
        human,
    ))
}
