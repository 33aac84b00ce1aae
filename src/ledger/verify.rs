//! Pure checks of what a peer's outbox holds: path shapes, size caps, envelopes.

use super::quarantine::Reason;
pub use crate::event::strict::find_duplicate_key;
use crate::event::{Envelope, PayloadLimits, validate_envelope, validate_node_id};
use ed25519_dalek::VerifyingKey;

/// Caps applied to ledger input before it is parsed.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Largest file read from an outbox.
    pub max_file_bytes: u64,
    /// Longest line accepted in a batch.
    pub max_line_bytes: usize,
    /// Payload limits of the importing node.
    pub payload: PayloadLimits,
}

/// Largest batch file import reads (export writes files under 1,000,000 bytes).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Longest batch line import accepts.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

impl ImportLimits {
    /// The default caps with the node's payload limits.
    pub fn new(payload: PayloadLimits) -> ImportLimits {
        ImportLimits {
            max_file_bytes: MAX_FILE_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
            payload,
        }
    }
}

/// What kind of outbox file a path (relative to `<dir>/outbox`) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// `<node>/<dir>/<seq>.ndjson`: a batch of the node's events.
    Batch {
        /// The outbox's node.
        node: String,
    },
    /// `<node>/<event_id>.json`: the one-file-per-event layout.
    Single {
        /// The outbox's node.
        node: String,
        /// The id the file name claims.
        event_id: String,
    },
    /// Anything else, with why.
    Bad(Reason, String),
}

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Classifies a path relative to the outbox root.
pub fn classify(rel: &str) -> Shape {
    let parts: Vec<&str> = rel.split('/').collect();
    let Some(node) = parts.first() else {
        return Shape::Bad(Reason::UnexpectedPath, "empty path".into());
    };
    if let Err(e) = validate_node_id(node) {
        return Shape::Bad(
            Reason::BadNodeDir,
            format!("outbox directory {node:?} is not a node id: {e}"),
        );
    }
    let node = node.to_string();
    match parts.as_slice() {
        [_, dir, file] if plain_name(dir) && plain_name(file) && file.ends_with(".ndjson") => {
            Shape::Batch { node }
        }
        [_, file] if plain_name(file) && file.ends_with(".json") => {
            let id = file.trim_end_matches(".json");
            if crate::log::index_key(id).is_some() {
                Shape::Single {
                    node,
                    event_id: id.to_string(),
                }
            } else {
                Shape::Bad(
                    Reason::UnexpectedPath,
                    format!("{file:?} is not <event_id>.json"),
                )
            }
        }
        _ => Shape::Bad(
            Reason::UnexpectedPath,
            "expected <node>/<day>/<seq>.ndjson or <node>/<event_id>.json".into(),
        ),
    }
}

/// How an importer may check a peer's signatures.
#[derive(Debug, Clone, Copy)]
pub enum KeyCheck<'a> {
    /// The node's pinned key: every event must carry a valid signature by it.
    Pinned(&'a VerifyingKey),
    /// No key is known for the node: unsigned events pass unless `require` is set.
    Unknown {
        /// `require_signatures` is on.
        require: bool,
    },
}

/// Checks an event's signature against what is known of its node's key.
pub fn check_signature(env: &Envelope, keys: KeyCheck<'_>) -> Result<(), (Reason, String)> {
    match keys {
        KeyCheck::Pinned(key) => {
            if env.sig.is_none() {
                return Err((
                    Reason::Unsigned,
                    format!(
                        "event {} is unsigned but node {:?} has a key",
                        env.event_id, env.node_id
                    ),
                ));
            }
            crate::keys::verify(env, key).map_err(|e| (Reason::BadSignature, e.to_string()))
        }
        KeyCheck::Unknown { require: false } => Ok(()),
        KeyCheck::Unknown { require: true } => match env.sig {
            None => Err((
                Reason::Unsigned,
                format!(
                    "event {} is unsigned and require_signatures is on",
                    env.event_id
                ),
            )),
            Some(_) => Err((
                Reason::NoKey,
                format!(
                    "event {} is signed but node {:?} has published no key to check it with",
                    env.event_id, env.node_id
                ),
            )),
        },
    }
}

/// Checks one serialized event found in `node`'s outbox.
pub fn check_event(
    node: &str,
    text: &[u8],
    limits: &ImportLimits,
) -> Result<Envelope, (Reason, String)> {
    let parsed = Envelope::from_json_line(text);
    if let Err(detail) = find_duplicate_key(text) {
        return Err((Reason::DuplicateKey, detail));
    }
    let env = match parsed {
        Ok(env) => env,
        Err(e) => {
            let reason = if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
                Reason::InvalidEvent
            } else {
                Reason::InvalidJson
            };
            return Err((reason, e.to_string()));
        }
    };
    if env.node_id != node {
        return Err((
            Reason::WrongNode,
            format!(
                "event {} claims node {:?} but sits in the outbox of {node:?}",
                env.event_id, env.node_id
            ),
        ));
    }
    match validate_envelope(&env, &limits.payload) {
        Ok(()) => {
            // Keys in canonical order: every node stores the bytes that were signed.
            let mut env = env;
            env.payload = crate::event::ijson::canonical_payload(std::mem::take(&mut env.payload));
            Ok(env)
        }
        Err(e @ crate::event::EventError::NonCanonical { .. }) => {
            Err((Reason::NonCanonical, format!("event {}: {e}", env.event_id)))
        }
        Err(e @ crate::event::EventError::IdMismatch { .. }) => {
            Err((Reason::IdMismatch, e.to_string()))
        }
        Err(e) => Err((Reason::InvalidEvent, format!("event {}: {e}", env.event_id))),
    }
}

/// One outcome of reading a batch: an event, or a rejected line.
#[derive(Debug)]
pub enum LineResult<'a> {
    /// A valid event.
    Event(Box<Envelope>),
    /// Line `line` (1-based) was rejected.
    Rejected {
        /// 1-based line number.
        line: usize,
        /// Its bytes.
        bytes: &'a [u8],
        /// Why.
        reason: Reason,
        /// Details.
        detail: String,
    },
}

/// Checks every line of a batch file of `node` (the file is already known to be UTF-8).
pub fn check_batch<'a>(node: &str, text: &'a [u8], limits: &ImportLimits) -> Vec<LineResult<'a>> {
    let mut out = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > limits.max_line_bytes {
            out.push(LineResult::Rejected {
                line: i + 1,
                bytes: line,
                reason: Reason::LineTooLong,
                detail: format!("{} bytes; the cap is {}", line.len(), limits.max_line_bytes),
            });
            continue;
        }
        match check_event(node, line, limits) {
            Ok(env) => out.push(LineResult::Event(Box::new(env))),
            Err((reason, detail)) => out.push(LineResult::Rejected {
                line: i + 1,
                bytes: line,
                reason,
                detail,
            }),
        }
    }
    out
}

/// Checks a one-event file of `node` named `event_id`.json.
pub fn check_single(
    node: &str,
    event_id: &str,
    text: &[u8],
    limits: &ImportLimits,
) -> Result<Envelope, (Reason, String)> {
    let env = check_event(node, text, limits)?;
    if env.event_id != event_id {
        return Err((
            Reason::NameMismatch,
            format!("file {event_id}.json holds event {}", env.event_id),
        ));
    }
    Ok(env)
}

#[cfg(test)]
mod tests;
