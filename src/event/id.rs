//! Deterministic event ids: RFC 8785 canonical JSON of a preimage, hashed with BLAKE3.

use super::{Envelope, EventError};
use serde_json::{Map, Value};

/// Which preimage an id is computed from (docs/envelope.md, "Ids").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm<'a> {
    /// Published with an idempotency key: node, topic, type and the key.
    Dedupe {
        /// The caller's idempotency key.
        dedupe_key: &'a str,
    },
    /// Derived by a handler: node, topic, type, cause, payload and handler name.
    Derived {
        /// The handler that derived the event.
        handler: &'a str,
    },
    /// Any other event: node, topic, type, timestamp, cause and payload.
    Plain,
}

/// Canonical (RFC 8785) JSON bytes of a value.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, EventError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| EventError::Canonical(e.to_string()))
}

/// The preimage of an id, borrowing from the envelope; JCS sorts the keys.
#[derive(serde::Serialize)]
struct Preimage<'a> {
    node_id: &'a str,
    topic: &'a str,
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dedupe_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    handler: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<u32>,
}

fn preimage<'a>(env: &'a Envelope, form: IdForm<'a>) -> Preimage<'a> {
    let mut p = Preimage {
        node_id: &env.node_id,
        topic: &env.topic,
        event_type: &env.event_type,
        dedupe_key: None,
        timestamp: None,
        causation_id: None,
        payload: None,
        handler: None,
        schema_version: env.schema_version,
    };
    match form {
        IdForm::Dedupe { dedupe_key } => p.dedupe_key = Some(dedupe_key),
        IdForm::Derived { handler } => {
            p.causation_id = Some(&env.causation_id);
            p.payload = Some(&env.payload);
            p.handler = Some(handler);
        }
        IdForm::Plain => {
            p.timestamp = Some(&env.timestamp);
            p.causation_id = Some(&env.causation_id);
            p.payload = Some(&env.payload);
        }
    }
    p
}

/// The canonical preimage bytes an id is the hash of.
///
/// The preimage keys are ASCII, so their JCS order is plain byte order; they are
/// written in that order directly, and the payload goes through the JCS writer
/// (which sorts its keys by UTF-16 code units). A unit test checks the bytes
/// against the reference canonicalizer.
pub fn preimage_bytes(env: &Envelope, form: IdForm<'_>) -> Result<Vec<u8>, EventError> {
    use super::canon::{object, string};
    let p = preimage(env, form);
    let mut b = Vec::with_capacity(256 + env.payload.len() * 32);
    let mut first = true;
    let mut key = |b: &mut Vec<u8>, k: &str| {
        b.push(if first { b'{' } else { b',' });
        first = false;
        string(k, b);
        b.push(b':');
    };
    if let Some(c) = p.causation_id {
        key(&mut b, "causation_id");
        string(c, &mut b);
    }
    if let Some(d) = p.dedupe_key {
        key(&mut b, "dedupe_key");
        string(d, &mut b);
    }
    key(&mut b, "event_type");
    string(p.event_type, &mut b);
    if let Some(h) = p.handler {
        key(&mut b, "handler");
        string(h, &mut b);
    }
    key(&mut b, "node_id");
    string(p.node_id, &mut b);
    if let Some(m) = p.payload {
        key(&mut b, "payload");
        object(m.iter(), &mut b)?;
    }
    if let Some(v) = p.schema_version {
        key(&mut b, "schema_version");
        b.extend_from_slice(v.to_string().as_bytes());
    }
    if let Some(t) = p.timestamp {
        key(&mut b, "timestamp");
        string(t, &mut b);
    }
    key(&mut b, "topic");
    string(p.topic, &mut b);
    b.push(b'}');
    Ok(b)
}

/// Computes `evt_` + the first 32 hex digits of BLAKE3(canonical preimage).
pub fn compute_id(env: &Envelope, form: IdForm<'_>) -> Result<String, EventError> {
    let bytes = preimage_bytes(env, form)?;
    let hash = blake3::hash(&bytes);
    Ok(format!("evt_{}", &hash.to_hex()[..32]))
}

#[cfg(test)]
mod tests;
