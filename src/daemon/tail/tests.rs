use super::*;

fn env(topic: &str, node: &str) -> Envelope {
    Envelope {
        event_id: "evt_00000000000000000000000000000000".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: topic.into(),
        event_type: "x.y".into(),
        node_id: node.into(),
        source: "cli".into(),
        seq: 1,
        ..Default::default()
    }
}

#[test]
fn counts_by_topic_and_origin() {
    let mut c = LogCounts::default();
    c.add(&env("routing", "a"), "a");
    c.add(&env("routing", "b"), "a");
    c.add(&env("scaling", "a"), "a");
    assert_eq!(c.by_topic["routing"], 2);
    assert_eq!(c.by_topic["scaling"], 1);
    assert_eq!((c.own, c.imported), (2, 1));
}
