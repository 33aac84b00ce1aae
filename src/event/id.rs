//! Deterministic event ids: RFC 8785 canonical JSON of a preimage, hashed with BLAKE3.

use super::{Envelope, EventError};
use serde_json::{Map, Value};

/// Which preimage an id is computed from (DESIGN.md 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm<'a> {
    /// Published with an idempotency key: node, topic, type and the key.
    Dedupe { dedupe_key: &'a str },
    /// Derived by a handler: node, topic, type, cause, payload and handler name.
    Derived { handler: &'a str },
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
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Envelope {
        Envelope {
            event_id: String::new(),
            timestamp: "2026-01-02T03:04:05.000006Z".into(),
            topic: "scheduling".into(),
            event_type: "task.enqueued".into(),
            node_id: "ws1".into(),
            source: "cli".into(),
            causation_id: String::new(),
            correlation_id: String::new(),
            seq: 1,
            prev: String::new(),
            payload: json!({"task_id": "t-1", "priority": 2})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            dedupe_key: None,
            handler: None,
            schema_version: None,
            sig: None,
        }
    }

    #[test]
    fn plain_id_is_blake3_of_canonical_preimage() {
        let e = env();
        let canonical = r#"{"causation_id":"","event_type":"task.enqueued","node_id":"ws1","payload":{"priority":2,"task_id":"t-1"},"timestamp":"2026-01-02T03:04:05.000006Z","topic":"scheduling"}"#;
        let expected = format!("evt_{}", &blake3::hash(canonical.as_bytes()).to_hex()[..32]);
        assert_eq!(compute_id(&e, IdForm::Plain).unwrap(), expected);
    }

    #[test]
    fn preimage_bytes_match_the_reference_canonicalizer() {
        let mut e = env();
        e.payload = json!({"z": [1, 2.5, {"b": null, "a": "\u{e9}"}], "\u{1f600}": 1e21, "a": -0.0, "m": "x\ny"})
            .as_object()
            .cloned()
            .unwrap();
        e.causation_id = "evt_0123456789abcdef0123456789abcdef".into();
        for sv in [None, Some(3)] {
            e.schema_version = sv;
            for form in [
                IdForm::Plain,
                IdForm::Dedupe { dedupe_key: "k\"1" },
                IdForm::Derived { handler: "h" },
            ] {
                let reference = serde_json_canonicalizer::to_vec(&preimage(&e, form)).unwrap();
                assert_eq!(
                    String::from_utf8(preimage_bytes(&e, form).unwrap()).unwrap(),
                    String::from_utf8(reference).unwrap()
                );
            }
        }
    }

    /// The worked example of docs/envelope.md; keep both in step.
    #[test]
    fn documented_examples() {
        let mut e = env();
        e.timestamp = "2026-11-23T10:00:00.000000Z".into();
        assert_eq!(
            compute_id(&e, IdForm::Plain).unwrap(),
            "evt_795f174819efa46bb241ac8eeb8728c2"
        );
        e.topic = "monitoring".into();
        e.event_type = "heartbeat.changed".into();
        let form = IdForm::Dedupe {
            dedupe_key: "hb-2026-11-23",
        };
        assert_eq!(
            compute_id(&e, form).unwrap(),
            "evt_accdb3b1eec3fb2a6d51df8bf625a0c2"
        );
    }

    #[test]
    fn canonical_json_uses_ecmascript_numbers_and_utf16_key_order() {
        let v = json!({"b": 1.0, "a": 1e-7, "\u{e9}": 1, "\u{1f600}": 2, "z": 1e21});
        let s = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(
            s,
            "{\"a\":1e-7,\"b\":1,\"z\":1e+21,\"\u{e9}\":1,\"\u{1f600}\":2}"
        );
    }

    #[test]
    fn fields_outside_the_preimage_do_not_change_the_id() {
        let a = env();
        let mut b = env();
        b.seq = 9;
        b.prev = "evt_00000000000000000000000000000000".into();
        b.source = "runtime".into();
        b.correlation_id = "evt_11111111111111111111111111111111".into();
        assert_eq!(
            compute_id(&a, IdForm::Plain).unwrap(),
            compute_id(&b, IdForm::Plain).unwrap()
        );
    }

    #[test]
    fn dedupe_form_ignores_payload_and_time() {
        let a = env();
        let mut b = env();
        b.timestamp = "2030-01-01T00:00:00.000000Z".into();
        b.payload.insert("x".into(), json!(1));
        let form = IdForm::Dedupe { dedupe_key: "k1" };
        assert_eq!(compute_id(&a, form).unwrap(), compute_id(&b, form).unwrap());
        assert_ne!(
            compute_id(&a, form).unwrap(),
            compute_id(&a, IdForm::Dedupe { dedupe_key: "k2" }).unwrap()
        );
    }

    #[test]
    fn schema_version_enters_preimage_only_when_present() {
        let a = env();
        let mut b = env();
        b.schema_version = Some(1);
        assert_ne!(
            compute_id(&a, IdForm::Plain).unwrap(),
            compute_id(&b, IdForm::Plain).unwrap()
        );
    }

    #[test]
    fn derived_form_depends_on_handler_and_cause_not_time() {
        let mut a = env();
        a.causation_id = "evt_0123456789abcdef0123456789abcdef".into();
        let mut b = a.clone();
        b.timestamp = "2031-01-01T00:00:00.000000Z".into();
        let f = IdForm::Derived { handler: "routing" };
        assert_eq!(compute_id(&a, f).unwrap(), compute_id(&b, f).unwrap());
        assert_ne!(
            compute_id(&a, f).unwrap(),
            compute_id(&a, IdForm::Derived { handler: "other" }).unwrap()
        );
    }
}
