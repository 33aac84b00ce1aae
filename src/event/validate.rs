//! Field rules for envelopes and the payload checks every write path applies.

use super::{Envelope, EventError};
use serde_json::{Map, Value};

/// Limits applied to payloads before they are written or imported.
#[derive(Debug, Clone, Copy)]
pub struct PayloadLimits {
    /// Largest serialized payload accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays accepted.
    pub max_depth: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        PayloadLimits {
            max_bytes: 64 * 1024,
            max_depth: 32,
        }
    }
}

fn field(field: &'static str, reason: impl Into<String>) -> EventError {
    EventError::Field {
        field,
        reason: reason.into(),
    }
}

fn check_charset(
    name: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
    rule: &str,
) -> Result<(), EventError> {
    if value.is_empty() || value.len() > max {
        return Err(field(
            name,
            format!("must be 1 to {max} characters, {rule}"),
        ));
    }
    if let Some(bad) = value.bytes().find(|b| !allowed(*b)) {
        return Err(field(
            name,
            format!("{value:?} has {:?}; allowed: {rule}", bad as char),
        ));
    }
    Ok(())
}

/// Checks a topic against `[a-z0-9_-]{1,64}`.
pub fn validate_topic(topic: &str) -> Result<(), EventError> {
    check_charset(
        "topic",
        topic,
        64,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-',
        "[a-z0-9_-]",
    )
}

/// Checks an event type against `[a-z0-9_.-]{1,128}`.
pub fn validate_event_type(event_type: &str) -> Result<(), EventError> {
    check_charset(
        "event_type",
        event_type,
        128,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b),
        "[a-z0-9_.-]",
    )
}

/// Checks a node id: `[a-z0-9._-]{1,64}`, not starting with `.` (no `.`/`..`/hidden dirs).
pub fn validate_node_id(node_id: &str) -> Result<(), EventError> {
    check_charset(
        "node_id",
        node_id,
        64,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b),
        "[a-z0-9._-], not starting with '.'",
    )?;
    if node_id.starts_with('.') {
        return Err(field(
            "node_id",
            format!(
                "{node_id:?} must not start with '.' (it would name a hidden or parent directory)"
            ),
        ));
    }
    Ok(())
}

/// Lowercases and trims a node id given by a user, then validates it.
pub fn normalize_node_id(raw: &str) -> Result<String, EventError> {
    let id = raw.trim().to_ascii_lowercase();
    validate_node_id(&id)?;
    Ok(id)
}

fn is_event_id(s: &str) -> bool {
    s.len() == 36
        && s.starts_with("evt_")
        && s[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_timestamp(s: &str) -> bool {
    // YYYY-MM-DDTHH:MM:SS.ffffffZ: fixed width, then a real calendar check.
    let b = s.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && super::parse_timestamp(s).is_some()
}

/// Checks every envelope field and the payload, and that the id matches the content.
pub fn validate_envelope(env: &Envelope, limits: &PayloadLimits) -> Result<(), EventError> {
    if !is_event_id(&env.event_id) {
        return Err(field(
            "event_id",
            "must be evt_ followed by 32 lowercase hex digits",
        ));
    }
    if !is_timestamp(&env.timestamp) {
        return Err(field(
            "timestamp",
            format!(
                "{:?} is not RFC 3339 UTC with microseconds (2026-01-02T03:04:05.000006Z)",
                env.timestamp
            ),
        ));
    }
    validate_topic(&env.topic)?;
    validate_event_type(&env.event_type)?;
    validate_node_id(&env.node_id)?;
    if env.source.is_empty() || env.source.len() > 128 || env.source.chars().any(char::is_control) {
        return Err(field("source", "must be 1 to 128 printable characters"));
    }
    if !env.causation_id.is_empty() && !is_event_id(&env.causation_id) {
        return Err(field("causation_id", "must be \"\" or an event id"));
    }
    if !is_event_id(&env.correlation_id) {
        return Err(field("correlation_id", "must be an event id"));
    }
    if env.causation_id.is_empty() && env.correlation_id != env.event_id {
        return Err(field(
            "correlation_id",
            "a root event's correlation_id must be its own id",
        ));
    }
    if env.seq == 0 {
        return Err(field("seq", "must be 1 or more"));
    }
    if env.seq == 1 && !env.prev.is_empty() {
        return Err(field("prev", "must be \"\" for seq 1"));
    }
    if env.seq > 1 && !is_event_id(&env.prev) {
        return Err(field("prev", "must be the id of the node's previous event"));
    }
    if let Some(key) = &env.dedupe_key
        && (key.is_empty() || key.len() > 256)
    {
        return Err(field("dedupe_key", "must be 1 to 256 characters"));
    }
    if let Some(h) = &env.handler
        && (h.is_empty() || h.len() > 128)
    {
        return Err(field("handler", "must be 1 to 128 characters"));
    }
    if let Some(sig) = &env.sig
        && (sig.len() != 128
            || !sig
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    {
        return Err(field(
            "sig",
            "must be 128 lowercase hex digits (an ed25519 signature)",
        ));
    }
    if env.schema_version == Some(0) {
        return Err(field("schema_version", "must be 1 or more"));
    }
    check_payload(&env.payload, limits)?;
    let expected = env.expected_id()?;
    if expected != env.event_id {
        return Err(EventError::IdMismatch {
            found: env.event_id.clone(),
            expected,
        });
    }
    Ok(())
}

/// Checks size, nesting depth, secrets and I-JSON numbers (`event::ijson`); errors carry the JSON path of the offending value.
pub fn check_payload(
    payload: &Map<String, Value>,
    limits: &PayloadLimits,
) -> Result<(), EventError> {
    let size = serialized_len(payload);
    if size > limits.max_bytes {
        return Err(EventError::Payload {
            path: "$".into(),
            reason: format!(
                "is {size} bytes, over the limit of {} bytes",
                limits.max_bytes
            ),
        });
    }
    let mut path = String::from("$");
    walk_object(payload, &mut path, 1, limits.max_depth)
}

/// Length of the compact JSON form, without building it.
fn serialized_len(payload: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, payload) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

fn walk_object(
    map: &Map<String, Value>,
    path: &mut String,
    depth: usize,
    max_depth: usize,
) -> Result<(), EventError> {
    if depth > max_depth {
        return Err(EventError::Payload {
            path: path.clone(),
            reason: format!("nests deeper than {max_depth} levels"),
        });
    }
    for (key, value) in map {
        let len = path.len();
        push_key(path, key);
        if is_secret_key(key) && !is_empty_value(value) {
            return Err(EventError::Payload {
                path: path.clone(),
                reason: format!(
                    "key {key:?} looks like a credential; secrets never go into events"
                ),
            });
        }
        walk_value(value, path, depth, max_depth)?;
        path.truncate(len);
    }
    Ok(())
}

fn walk_value(
    value: &Value,
    path: &mut String,
    depth: usize,
    max_depth: usize,
) -> Result<(), EventError> {
    match value {
        Value::Object(m) => walk_object(m, path, depth + 1, max_depth),
        Value::Array(items) => {
            if depth + 1 > max_depth {
                return Err(EventError::Payload {
                    path: path.clone(),
                    reason: format!("nests deeper than {max_depth} levels"),
                });
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_value(item, path, depth + 1, max_depth)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Number(n) => match super::ijson::number_problem(n) {
            Some(reason) => Err(EventError::NonCanonical {
                path: path.clone(),
                reason,
            }),
            None => Ok(()),
        },
        Value::String(s) => match secret_in_text(s) {
            Some(what) => Err(EventError::Payload {
                path: path.clone(),
                reason: format!("contains what looks like {what}; secrets never go into events"),
            }),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit();
    if simple {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_string())));
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(false) => true,
        _ => false,
    }
}

const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "secret_key",
    "private_key",
    "client_secret",
    "credentials",
    "authorization",
];

/// True for keys such as `password`, `db_password`, `github-token` or `apiKey`.
fn is_secret_key(key: &str) -> bool {
    // Cheap pre-filter: every secret word contains one of these letters runs.
    let lower_hit = |w: &str| key.len() >= w.len() && key.to_ascii_lowercase().contains(w);
    if ![
        "pass",
        "secret",
        "token",
        "key",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|w| lower_hit(w))
    {
        return false;
    }
    let mut norm = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            norm.push('_');
        }
        norm.push(if c == '-' {
            '_'
        } else {
            c.to_ascii_lowercase()
        });
    }
    let compact: String = norm.chars().filter(|c| *c != '_').collect();
    SECRET_KEYS.iter().any(|s| {
        norm == *s
            || (norm.len() > s.len()
                && norm.ends_with(s)
                && norm[..norm.len() - s.len()].ends_with('_'))
            || compact == s.replace('_', "")
    })
}

/// Names the kind of credential found in free text, if any.
fn secret_in_text(s: &str) -> Option<&'static str> {
    const GITHUB: &[&str] = &["ghp_", "gho_", "ghs_", "ghu_", "ghr_"];
    for prefix in GITHUB {
        if has_token_after(s, prefix, 30) {
            return Some("a GitHub token");
        }
    }
    if has_token_after(s, "github_pat_", 40) {
        return Some("a GitHub fine-grained token");
    }
    for prefix in ["AKIA", "ASIA"] {
        let mut from = 0;
        while let Some(pos) = s[from..].find(prefix) {
            let start = from + pos;
            let rest = &s.as_bytes()[start + 4..];
            let boundary_before = start == 0 || !s.as_bytes()[start - 1].is_ascii_alphanumeric();
            if boundary_before
                && rest.len() >= 16
                && rest[..16]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                && rest.get(16).is_none_or(|b| !b.is_ascii_alphanumeric())
            {
                return Some("an AWS access key id");
            }
            from = start + 4;
        }
    }
    if s.contains("-----BEGIN") && s.contains("PRIVATE KEY-----") {
        return Some("a private key block");
    }
    None
}

fn has_token_after(s: &str, prefix: &str, min: usize) -> bool {
    let mut from = 0;
    while let Some(pos) = s[from..].find(prefix) {
        let start = from + pos + prefix.len();
        let n = s.as_bytes()[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        if n >= min {
            return true;
        }
        from = start;
    }
    false
}

#[cfg(test)]
mod tests;
