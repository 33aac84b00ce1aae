use super::*;
use serde_json::json;

fn env(event_type: &str, payload: serde_json::Value) -> Envelope {
    Envelope {
        event_id: "evt_11111111111111111111111111111111".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: "scheduling".into(),
        event_type: event_type.into(),
        node_id: "peer".into(),
        source: "cli".into(),
        seq: 1,
        payload: payload.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

#[test]
fn a_node_with_its_registry_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Registry>();
}

#[test]
fn import_policy_decides() {
    let r = Registry::builtin();
    let bad = env("task.enqueued", json!({"task_id": 5}));
    let good = env("task.enqueued", json!({"task_id": "t"}));
    let unknown = env("whatever", json!({"x": 1}));
    assert!(matches!(
        import_verdict(&r, &bad, ImportPolicy::Quarantine),
        ImportVerdict::Quarantine(SchemaError::Violation { .. })
    ));
    assert!(matches!(
        import_verdict(&r, &bad, ImportPolicy::AcceptAndFlag),
        ImportVerdict::Flag(_)
    ));
    for p in [ImportPolicy::Quarantine, ImportPolicy::AcceptAndFlag] {
        assert!(matches!(
            import_verdict(&r, &good, p),
            ImportVerdict::Accept
        ));
        assert!(matches!(
            import_verdict(&r, &unknown, p),
            ImportVerdict::Accept
        ));
    }
}

#[test]
fn screen_sorts_a_batch_by_policy() {
    let r = Registry::builtin();
    let batch = || {
        vec![
            env("task.enqueued", json!({"task_id": "a"})),
            env("task.enqueued", json!({})),
            env("unknown.type", json!({})),
        ]
    };
    let q = screen(&r, ImportPolicy::Quarantine, batch());
    assert_eq!(q.accepted.len(), 2);
    assert_eq!(q.quarantined.len(), 1);
    assert!(
        q.quarantined[0].1.contains("$.task_id"),
        "{}",
        q.quarantined[0].1
    );
    assert!(q.flagged.is_empty());
    let f = screen(&r, ImportPolicy::AcceptAndFlag, batch());
    assert_eq!(f.accepted.len(), 3);
    assert!(f.quarantined.is_empty());
    assert_eq!(f.flagged.len(), 1);
    assert_eq!(f.flagged[0].event_id, f.accepted[1].event_id);
}

#[test]
fn violation_message_names_path_and_rule() {
    let r = Registry::builtin();
    let msg = r
        .check_envelope(&env("task.enqueued", json!({"task_id": 5})))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("scheduling/task.enqueued v1"), "{msg}");
    assert!(msg.contains("$.task_id"), "{msg}");
    assert!(msg.contains("`type`"), "{msg}");
}
