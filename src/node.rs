//! A node root opened for work: its configuration, paths and event log.

use crate::config::Config;
use crate::event::{
    Envelope, EventError, IdForm, check_payload, validate_event_type, validate_topic,
};
use crate::log::EventLog;
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Why a node could not be opened or an event could not be published.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// `mesh.toml` is missing or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An event or payload is invalid.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Line `line` of a batch is invalid; nothing of the batch was written.
    #[error("line {line}: {source}")]
    BatchLine {
        /// 1-based position in the batch.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: Box<NodeError>,
    },
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// A schema check failed, or a schema file is bad.
    #[error(transparent)]
    Schema(Box<crate::schema::SchemaError>),
    /// Input meant to be drafts is not (not NDJSON drafts, or none at all).
    #[error("{0}")]
    Draft(String),
}

impl From<crate::schema::SchemaError> for NodeError {
    fn from(e: crate::schema::SchemaError) -> Self {
        NodeError::Schema(Box::new(e))
    }
}

impl NodeError {
    /// Stable machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::Config(_) => "config",
            NodeError::Event(EventError::Payload { .. } | EventError::NonCanonical { .. }) => {
                "invalid_payload"
            }
            NodeError::Event(_) => "invalid_event",
            NodeError::BatchLine { source, .. } => source.kind(),
            NodeError::Log(_) => "log",
            NodeError::Io(_) => "io",
            NodeError::Schema(e) => e.kind(),
            NodeError::Draft(_) => "usage",
        }
    }
}

/// Result of node operations.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// An event to publish: everything but the fields the node assigns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Topic, `[a-z0-9_-]{1,64}`.
    pub topic: String,
    /// Event type, `[a-z0-9_.-]{1,128}`.
    pub event_type: String,
    /// Payload object.
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// The event this one reacts to.
    #[serde(default)]
    pub causation_id: String,
    /// Producer name; `cli` when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// Idempotency key: publishing the same key again returns the first event.
    #[serde(default)]
    pub dedupe_key: Option<String>,
    /// Payload schema version.
    #[serde(default)]
    pub schema_version: Option<u32>,
}

/// One published event and whether it already existed.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The stored envelope.
    pub event: Envelope,
    /// True when an event with this id was already in the log (nothing was written).
    pub duplicate: bool,
}

/// An initialised node root.
#[derive(Debug, Clone)]
pub struct Node {
    /// Where its files are.
    pub paths: NodePaths,
    /// Its `mesh.toml`.
    pub config: Config,
    /// Its event log.
    pub log: EventLog,
    /// Its schema registry, loaded on first use.
    schemas: std::sync::Arc<std::sync::OnceLock<crate::schema::Registry>>,
}

impl Draft {
    /// Parses NDJSON drafts; the first bad line fails the batch with its (1-based) number.
    pub fn parse_batch(text: &str, source: Option<&str>) -> Result<Vec<Draft>> {
        let mut drafts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(d) = Draft::parse_line(line, i + 1, source)? {
                drafts.push(d);
            }
        }
        if drafts.is_empty() {
            return Err(NodeError::Draft("no events in the input".into()));
        }
        Ok(drafts)
    }
}

impl Draft {
    /// Parses line `number` (1-based) of an NDJSON batch; `None` for a blank line.
    pub fn parse_line(line: &str, number: usize, source: Option<&str>) -> Result<Option<Draft>> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        let bad = |msg: String| NodeError::BatchLine {
            line: number,
            source: Box::new(NodeError::Draft(msg)),
        };
        crate::event::strict::find_duplicate_key(line.as_bytes()).map_err(bad)?;
        let mut d: Draft = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "not a draft {{topic, event_type, payload, ...}}: {e}"
            ))
        })?;
        if d.source.is_none() {
            d.source = source.map(str::to_string);
        }
        Ok(Some(d))
    }
}

impl Node {
    /// Opens the node root at `root` (reads `mesh.toml`).
    pub fn open(root: &Path) -> Result<Node> {
        let paths = NodePaths::new(root);
        let config = Config::load(&paths.config())?;
        let log = EventLog::new(&paths, &config.node_id);
        Ok(Node {
            paths,
            config,
            log,
            schemas: Default::default(),
        })
    }

    /// The node's schemas (built-in, ledger view, local overrides), loaded once.
    pub fn schemas(&self) -> Result<&crate::schema::Registry> {
        if let Some(r) = self.schemas.get() {
            return Ok(r);
        }
        let r = crate::schema::Registry::load(&self.paths, &self.config)?;
        Ok(self.schemas.get_or_init(|| r))
    }

    /// Forgets the loaded schemas so the next use reads them again (after a sync brought new ones).
    pub fn reload_schemas(&mut self) {
        self.schemas = Default::default();
    }

    /// The `[identity] key_file` path, relative ones taken from the node root.
    pub fn key_file(&self) -> Option<std::path::PathBuf> {
        self.config
            .identity
            .key_file
            .as_ref()
            .map(|p| self.paths.root.join(p))
    }

    /// This node's signing key and where it came from (see [`crate::keys::NodeKey::resolve`]).
    pub fn signing_key(
        &self,
    ) -> std::result::Result<
        Option<(crate::keys::NodeKey, crate::keys::KeySource)>,
        crate::keys::KeyError,
    > {
        crate::keys::NodeKey::resolve(&self.paths, self.key_file().as_deref())
    }

    /// This node's id.
    pub fn id(&self) -> &str {
        &self.config.node_id
    }

    /// Checks a draft before anything is written; returns the payload in its
    /// stored form (`event::ijson::canonical_payload`), the one to publish.
    pub fn check_draft(&self, d: &Draft) -> Result<Map<String, Value>> {
        validate_topic(&d.topic)?;
        validate_event_type(&d.event_type)?;
        if !d.causation_id.is_empty() && crate::log::index_key(&d.causation_id).is_none() {
            return Err(EventError::Field {
                field: "causation_id",
                reason: format!(
                    "{:?} is not an event id (evt_ + 32 hex digits)",
                    d.causation_id
                ),
            }
            .into());
        }
        if let Some(k) = &d.dedupe_key
            && (k.is_empty() || k.len() > 256)
        {
            return Err(EventError::Field {
                field: "dedupe_key",
                reason: "must be 1 to 256 characters".into(),
            }
            .into());
        }
        if let Some(s) = &d.source
            && (s.is_empty() || s.len() > 128 || s.chars().any(char::is_control))
        {
            return Err(EventError::Field {
                field: "source",
                reason: "must be 1 to 128 printable characters".into(),
            }
            .into());
        }
        if d.schema_version == Some(0) {
            return Err(EventError::Field {
                field: "schema_version",
                reason: "must be 1 or more".into(),
            }
            .into());
        }
        let payload = crate::event::ijson::canonical_payload(d.payload.clone());
        check_payload(&payload, &self.config.payload_limits())?;
        self.schemas()?.check_publish(
            &d.topic,
            &d.event_type,
            d.schema_version,
            &payload,
            self.config.strict_schemas,
        )?;
        Ok(payload)
    }

    /// Publishes drafts as one all-or-nothing append with one fsync.
    ///
    /// Every draft is checked first; a bad one fails the whole batch with its
    /// (1-based) position and nothing is written.
    pub fn publish(&self, drafts: &[Draft]) -> Result<Vec<Published>> {
        let mut payloads = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.iter().enumerate() {
            payloads.push(
                self.check_draft(d)
                    .map_err(|e| batch_error(drafts.len(), i, e))?,
            );
        }
        let mut w = self.log.writer()?;
        let now = chrono::Utc::now();
        let mut seq = w.head().own_seq;
        let mut prev = w.head().own_prev.clone();
        let mut ts = crate::event::parse_timestamp(&w.next_own_timestamp(now)).unwrap_or(now);
        enum Slot {
            Fresh(usize),
            Duplicate(Box<Envelope>),
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(drafts.len());
        let mut fresh: Vec<Envelope> = Vec::with_capacity(drafts.len());
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        for (d, payload) in drafts.iter().zip(payloads) {
            let mut env = self.draft_envelope(
                Draft {
                    payload,
                    ..d.clone()
                },
                ts,
            )?;
            // Only keyed ids can repeat: plain ids carry a timestamp that only moves forward.
            if env.dedupe_key.is_some() {
                if let Some(&i) = in_batch.get(&env.event_id) {
                    slots.push(Slot::Fresh(i));
                    continue;
                }
                if let Some(existing) = w.get(&env.event_id)? {
                    slots.push(Slot::Duplicate(Box::new(existing)));
                    continue;
                }
                in_batch.insert(env.event_id.clone(), fresh.len());
            }
            env.correlation_id = correlation(&mut w, &env)?;
            seq += 1;
            env.seq = seq;
            env.prev = std::mem::replace(&mut prev, env.event_id.clone());
            slots.push(Slot::Fresh(fresh.len()));
            fresh.push(env);
            ts += chrono::Duration::microseconds(1);
        }
        w.append(&fresh)?;
        // Move the fresh envelopes out; an in-batch repeat of a keyed draft copies its first use.
        let mut fresh: Vec<Option<Envelope>> = fresh.into_iter().map(Some).collect();
        let mut pos_of = vec![usize::MAX; fresh.len()];
        let mut out: Vec<Published> = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::Fresh(i) => match fresh[i].take() {
                    Some(event) => {
                        pos_of[i] = out.len();
                        out.push(Published {
                            event,
                            duplicate: false,
                        });
                    }
                    None => {
                        let event = out[pos_of[i]].event.clone();
                        out.push(Published {
                            event,
                            duplicate: true,
                        });
                    }
                },
                Slot::Duplicate(event) => out.push(Published {
                    event: *event,
                    duplicate: true,
                }),
            }
        }
        Ok(out)
    }
}

impl Node {
    /// The envelope of draft `d` stamped `ts`, with its id; seq, prev and
    /// correlation are assigned under the log's lock.
    fn draft_envelope(&self, d: Draft, ts: chrono::DateTime<chrono::Utc>) -> Result<Envelope> {
        let mut env = Envelope {
            event_id: String::new(),
            timestamp: crate::event::format_timestamp(ts),
            topic: d.topic,
            event_type: d.event_type,
            node_id: self.config.node_id.clone(),
            source: d.source.unwrap_or_else(|| "cli".into()),
            causation_id: d.causation_id,
            correlation_id: String::new(),
            seq: 0,
            prev: String::new(),
            payload: d.payload,
            dedupe_key: d.dedupe_key,
            handler: None,
            schema_version: d.schema_version,
            sig: None,
        };
        let form = match &env.dedupe_key {
            Some(k) => IdForm::Dedupe { dedupe_key: k },
            None => IdForm::Plain,
        };
        env.event_id = crate::event::compute_id(&env, form)?;
        Ok(env)
    }
}

/// The correlation of a new own event: its own id for a root, else its cause's
/// correlation (or the cause's id when the log does not hold the cause).
fn correlation(w: &mut crate::log::LogWriter<'_>, env: &Envelope) -> Result<String> {
    if env.causation_id.is_empty() {
        return Ok(env.event_id.clone());
    }
    Ok(match w.get(&env.causation_id)? {
        Some(cause) => cause.correlation_id,
        None => env.causation_id.clone(),
    })
}

fn batch_error(len: usize, i: usize, e: NodeError) -> NodeError {
    if len > 1 {
        NodeError::BatchLine {
            line: i + 1,
            source: Box::new(e),
        }
    } else {
        e
    }
}

mod stream;

pub use stream::StreamPublished;
