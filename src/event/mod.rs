//! The event envelope: its fields, how ids are derived, and what makes one valid.

pub mod canon;
mod id;
pub mod ijson;
pub mod pattern;
pub mod strict;
mod validate;

pub use id::{IdForm, canonical_json, compute_id};
pub use validate::{
    PayloadLimits, check_payload, normalize_node_id, validate_envelope, validate_event_type,
    validate_node_id, validate_topic,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Errors about one event: malformed fields, bad payloads, ids that do not match.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A field has a value the contract does not allow.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The envelope field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload breaks a rule; `path` is a JSON path such as `$.db.password`.
    #[error("payload {path}: {reason}")]
    Payload {
        /// JSON path of the offending value inside the payload.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A payload number whose written form is not the form its id and signature cover.
    #[error("payload {path}: {reason}")]
    NonCanonical {
        /// JSON path of the number inside the payload.
        path: String,
        /// Why it cannot be stored as written.
        reason: String,
    },
    /// The id does not match the one recomputed from the content.
    #[error("event id {found} does not match its content (expected {expected})")]
    IdMismatch {
        /// The id the event carries.
        found: String,
        /// The id its content hashes to.
        expected: String,
    },
    /// The line is not a JSON envelope.
    #[error("not a valid event envelope: {0}")]
    Parse(String),
    /// A value could not be put into canonical form.
    #[error("canonical JSON: {0}")]
    Canonical(String),
}

/// One event, exactly as it is stored on a line of the log and in ledger batches.
///
/// `Default` is an empty, invalid envelope: a base to fill in, never an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// `evt_` + 32 hex digits of BLAKE3 over the canonical preimage.
    pub event_id: String,
    /// RFC 3339 UTC with microseconds, when the event was recorded.
    pub timestamp: String,
    /// Coarse stream name, `[a-z0-9_-]{1,64}`.
    pub topic: String,
    /// Dotted type name, `[a-z0-9_.-]{1,128}`.
    pub event_type: String,
    /// The node that emitted the event.
    pub node_id: String,
    /// What produced it: `cli`, `mesh-dispatch`, `runtime`, ...
    pub source: String,
    /// The event this one reacts to, `""` for a root event.
    pub causation_id: String,
    /// The root of the causal chain (the event's own id for a root).
    pub correlation_id: String,
    /// Per-node sequence number, 1-based.
    pub seq: u64,
    /// The emitting node's previous own event, `""` for seq 1.
    pub prev: String,
    /// Event-specific data.
    pub payload: Map<String, Value>,
    /// Idempotency key the id was derived from, when published with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    /// Handler that derived this event during dispatch (part of the id preimage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Payload schema version; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    /// Hex ed25519 signature over the canonical envelope without `sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl Envelope {
    /// Parses one NDJSON line into an envelope (no semantic validation).
    pub fn from_json_line(line: &[u8]) -> Result<Envelope, EventError> {
        serde_json::from_slice(line).map_err(|e| EventError::Parse(e.to_string()))
    }

    /// Serializes the envelope as one compact JSON line without the newline.
    pub fn to_json_line(&self) -> String {
        // Serializing a struct of strings, integers and a JSON map cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The form of preimage this envelope's id was derived from.
    pub fn id_form(&self) -> IdForm<'_> {
        if let Some(key) = &self.dedupe_key {
            IdForm::Dedupe { dedupe_key: key }
        } else if let Some(handler) = &self.handler {
            IdForm::Derived { handler }
        } else {
            IdForm::Plain
        }
    }

    /// Recomputes the id from the content.
    pub fn expected_id(&self) -> Result<String, EventError> {
        compute_id(self, self.id_form())
    }

    /// `topic.event_type`, the name handler patterns match against.
    pub fn kind(&self) -> String {
        format!("{}.{}", self.topic, self.event_type)
    }

    /// The node that must act on this event: `payload.target_node`, else the origin.
    pub fn acting_node(&self) -> &str {
        match self.payload.get("target_node") {
            Some(Value::String(node)) if !node.is_empty() => node,
            _ => &self.node_id,
        }
    }
}

/// Current time in the envelope's timestamp format.
pub fn now_timestamp() -> String {
    format_timestamp(chrono::Utc::now())
}

/// Formats a UTC instant as RFC 3339 with microseconds and `Z`.
pub fn format_timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses an envelope timestamp.
pub fn parse_timestamp(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
