use crate::event::{Envelope, IdForm, compute_id};
use serde_json::Value;

/// A root event of `n1` with the given content.
pub fn event(topic: &str, event_type: &str, payload: Value) -> Envelope {
    let mut e = Envelope {
        timestamp: "2026-11-23T12:00:00.000000Z".into(),
        topic: topic.into(),
        event_type: event_type.into(),
        node_id: "n1".into(),
        source: "cli".into(),
        seq: 1,
        payload: payload.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    };
    e.event_id = compute_id(&e, IdForm::Plain).unwrap();
    e.correlation_id = e.event_id.clone();
    e
}
