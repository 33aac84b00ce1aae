use super::*;

fn ev(id: &str, cause: &str, corr: &str) -> Envelope {
    Envelope {
        event_id: id.into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: "t".into(),
        event_type: "e".into(),
        node_id: "n".into(),
        source: "cli".into(),
        causation_id: cause.into(),
        correlation_id: corr.into(),
        seq: 1,
        ..Default::default()
    }
}

#[test]
fn chain_of_a_middle_event_includes_root_siblings_and_children() {
    let log = vec![
        ev("r", "", "r"),
        ev("other", "", "other"),
        ev("a", "r", "r"),
        ev("b", "r", "r"),
        ev("c", "a", "r"),
    ];
    let t = build(log, "a").unwrap();
    assert_eq!(t.root, "r");
    let ids: Vec<(&str, usize)> = t
        .events
        .iter()
        .map(|e| (e.event_id.as_str(), e.depth))
        .collect();
    assert_eq!(ids, vec![("r", 0), ("a", 1), ("b", 1), ("c", 2)]);
}

#[test]
fn imported_child_with_another_correlation_is_linked_by_causation() {
    let log = vec![
        ev("r", "", "r"),
        ev("x", "r", "elsewhere"),
        ev("y", "x", "elsewhere"),
    ];
    let t = build(log, "r").unwrap();
    assert_eq!(t.events.len(), 3);
    assert_eq!(t.events[2].depth, 2);
}

#[test]
fn unknown_event_has_no_trace_and_cycles_end() {
    assert!(build(vec![ev("r", "", "r")], "nope").is_none());
    let t = build(vec![ev("a", "b", ""), ev("b", "a", "")], "a").unwrap();
    assert_eq!(t.events.len(), 2);
}
