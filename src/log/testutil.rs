//! Events for the log's unit tests.

use crate::event::{Envelope, IdForm, compute_id};

/// Event `n` of `node` with seq `seq` after `prev`, its id computed (so the log can index it).
pub(crate) fn env(node: &str, seq: u64, prev: &str, n: u64) -> Envelope {
    let mut e = Envelope {
        event_id: String::new(),
        timestamp: format!("2026-11-23T12:00:00.{n:06}Z"),
        topic: "t".into(),
        event_type: "e".into(),
        node_id: node.into(),
        source: "cli".into(),
        causation_id: String::new(),
        correlation_id: String::new(),
        seq,
        prev: prev.into(),
        payload: Default::default(),
        dedupe_key: None,
        handler: None,
        schema_version: None,
        sig: None,
    };
    e.event_id = compute_id(&e, IdForm::Plain).unwrap();
    e.correlation_id = e.event_id.clone();
    e
}
