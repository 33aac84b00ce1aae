use crate::event::{Envelope, IdForm, compute_id};
use serde_json::Value;

/// A root event of `n1` with the given content.
pub fn event(topic: &str, event_type: &str, payload: Value) -> Envelope {
    let mut e = Envelope {
        event_id: String::new(),
        timestamp: "2026-11-23T12:00:00.000000Z".into(),
        topic: topic.into(),
        event_type: event_type.into(),
        node_id: "n1".into(),
        source: "cli".into(),
        causation_id: String::new(),
        correlation_id: String::new(),
        seq: 1,
        prev: String::new(),
        payload: payload.as_object().cloned().unwrap_or_default(),
        dedupe_key: None,
        handler: None,
        schema_version: None,
        sig: None,
    };
    e.event_id = compute_id(&e, IdForm::Plain).unwrap();
    e.correlation_id = e.event_id.clone();
    e
}
