use super::*;
use crate::event::{IdForm, compute_id};

fn env(node: &str, seq: u64, prev: &str, n: u64) -> Envelope {
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

#[test]
fn a_parked_index_catches_up_with_appends_made_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::new(dir.path());
    let log = EventLog::new(&paths, "n1");
    let a = env("n1", 1, "", 1);
    let mut w = log.writer().unwrap();
    w.append(std::slice::from_ref(&a)).unwrap();
    assert!(w.contains(&a.event_id).unwrap());
    let parked = w.park();
    // Someone else appends while the lock is free.
    let b = env("peer", 7, "", 2);
    log.writer()
        .unwrap()
        .append(std::slice::from_ref(&b))
        .unwrap();
    let mut w = log.unpark(parked).unwrap();
    assert!(w.contains(&a.event_id).unwrap());
    assert!(w.contains(&b.event_id).unwrap());
    assert_eq!(w.get(&b.event_id).unwrap().unwrap(), b);
    assert_eq!(w.head().event_count, 2);
}
