//! Event schemas: JSON Schema (draft 2020-12) files per (topic, event_type, version),
//! payload validation at publish and import, and declarative upcasting between versions.
//!
//! Sources, later ones overriding earlier ones for the same key: the built-in schemas,
//! the ledger's `<dir>/schemas/<topic>/<event_type>/v<N>.json` at the node's view, and the
//! local override directory `state/event_mesh/schemas/` with the same layout.

mod builtin;
pub mod registry;
pub mod sign;
pub mod stage;
pub mod upcast;
pub mod verified;

pub use crate::config::ImportPolicy;
pub use registry::{Checked, Registry, SchemaEntry, SchemaKey, SchemaSource};
pub use upcast::{Step, Upcaster};

use crate::event::Envelope;
use crate::fsutil::{PathError, read_json, write_json};
use crate::paths::NodePaths;
use serde::{Deserialize, Serialize};

/// Errors of schema lookup, validation and schema files.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A payload breaks its schema: `path` is the failing value (`$.a.b[0]`), `rule` the keyword.
    #[error(
        "{key}: payload {path}: {message} (schema rule `{rule}`){}",
        more(others)
    )]
    Violation {
        /// The schema.
        key: Box<SchemaKey>,
        /// JSON path of the failing value inside the payload.
        path: String,
        /// The JSON Schema keyword that failed (`required`, `type`, ...).
        rule: String,
        /// What is wrong.
        message: String,
        /// How many further violations there are.
        others: usize,
    },
    /// `strict_schemas = true` and no schema exists for the event.
    #[error(
        "{key}: no schema is known for this event type and version and strict_schemas = true \
         (add one with `gitmesh schema publish DIR`, or list them with `gitmesh schema list`)"
    )]
    Unknown {
        /// The missing schema.
        key: Box<SchemaKey>,
    },
    /// A schema file is not a valid schema (or its upcaster is malformed).
    #[error("schema {location}: {reason}")]
    BadSchema {
        /// File, ledger path or built-in name.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A file is not where the `<topic>/<event_type>/v<N>.json` layout wants it.
    #[error("{path}: {reason}")]
    Layout {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// This node may not publish schemas (roster mode without the `schema` role, or no key).
    #[error("node {node:?} may not publish schemas: {reason}")]
    NotPublisher {
        /// This node.
        node: String,
        /// Why, and how to fix it.
        reason: String,
    },
    /// The ledger repository could not be read.
    #[error("reading schemas from the ledger {path}: {reason}")]
    Ledger {
        /// The ledger repository.
        path: String,
        /// The git error.
        reason: String,
    },
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] PathError),
}

fn more(others: &usize) -> String {
    match others {
        0 => String::new(),
        1 => " and 1 more violation".into(),
        n => format!(" and {n} more violations"),
    }
}

impl SchemaError {
    /// Stable machine-readable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            SchemaError::Violation { .. } => "schema_violation",
            SchemaError::Unknown { .. } => "unknown_schema",
            SchemaError::BadSchema { .. } => "bad_schema",
            SchemaError::Layout { .. } => "bad_schema_layout",
            SchemaError::NotPublisher { .. } => "not_schema_publisher",
            SchemaError::Ledger { .. } => "ledger",
            SchemaError::Io(_) => "io",
        }
    }
}

/// What the importer does with one peer event after the schema check.
#[derive(Debug)]
pub enum ImportVerdict {
    /// Append it: it is valid or no schema applies.
    Accept,
    /// Append it and count it as flagged (`accept-and-flag`); the reason goes to the flag file.
    Flag(SchemaError),
    /// Do not append it: quarantine it with this reason (`quarantine`).
    Quarantine(SchemaError),
}

/// The import rule: a payload that breaks the schema of its version is quarantined or
/// flagged by policy. Events with no schema pass; a schema file that is itself broken
/// is not the event's fault, so the event passes too (the broken file is logged).
pub fn import_verdict(registry: &Registry, env: &Envelope, policy: ImportPolicy) -> ImportVerdict {
    match registry.check_envelope(env) {
        Ok(()) => ImportVerdict::Accept,
        Err(e @ SchemaError::Violation { .. }) => match policy {
            ImportPolicy::Quarantine => ImportVerdict::Quarantine(e),
            ImportPolicy::AcceptAndFlag => ImportVerdict::Flag(e),
        },
        Err(e) => {
            tracing::warn!(event_id = %env.event_id, "schema not applied at import: {e}");
            ImportVerdict::Accept
        }
    }
}

/// A batch of peer events sorted by [`import_verdict`].
#[derive(Debug, Default)]
pub struct Screened {
    /// Events to append (valid, unchecked, or flagged), in input order.
    pub accepted: Vec<Envelope>,
    /// Events to quarantine, each with its reason.
    pub quarantined: Vec<(Envelope, String)>,
    /// Accepted events that broke their schema, for [`record_flagged`] after the append.
    pub flagged: Vec<FlaggedEvent>,
}

/// Applies [`import_verdict`] to a batch of peer events.
pub fn screen(registry: &Registry, policy: ImportPolicy, events: Vec<Envelope>) -> Screened {
    let mut out = Screened::default();
    for env in events {
        match import_verdict(registry, &env, policy) {
            ImportVerdict::Accept => out.accepted.push(env),
            ImportVerdict::Flag(e) => {
                out.flagged.push(FlaggedEvent {
                    event_id: env.event_id.clone(),
                    reason: e.to_string(),
                });
                out.accepted.push(env);
            }
            ImportVerdict::Quarantine(e) => out.quarantined.push((env, e.to_string())),
        }
    }
    out
}

/// `schema_flagged.json`: events accepted at import although they broke their schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlaggedState {
    /// How many events were flagged in total.
    pub count: u64,
    /// The latest flagged events (at most [`FLAGGED_KEPT`]), oldest first.
    #[serde(default)]
    pub latest: Vec<FlaggedEvent>,
}

/// One flagged event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlaggedEvent {
    /// Its id.
    pub event_id: String,
    /// Why it was flagged.
    pub reason: String,
}

/// How many flagged events `schema_flagged.json` keeps by id.
pub const FLAGGED_KEPT: usize = 20;

/// Adds flagged events to the node's flag file (one atomic write per call; none when empty).
pub fn record_flagged(paths: &NodePaths, flagged: &[FlaggedEvent]) -> Result<(), PathError> {
    if flagged.is_empty() {
        return Ok(());
    }
    let path = paths.schema_flagged();
    let mut st: FlaggedState = read_json(&path)?.unwrap_or_default();
    st.count += flagged.len() as u64;
    st.latest.extend(flagged.iter().cloned());
    let excess = st.latest.len().saturating_sub(FLAGGED_KEPT);
    st.latest.drain(..excess);
    write_json(&path, &st)
}

/// The flag file's content (empty when there is none).
pub fn flagged(paths: &NodePaths) -> Result<FlaggedState, PathError> {
    Ok(read_json(&paths.schema_flagged())?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
