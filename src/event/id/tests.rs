use super::*;
use serde_json::json;

fn env() -> Envelope {
    Envelope {
        timestamp: "2026-01-02T03:04:05.000006Z".into(),
        topic: "scheduling".into(),
        event_type: "task.enqueued".into(),
        node_id: "ws1".into(),
        source: "cli".into(),
        seq: 1,
        payload: json!({"task_id": "t-1", "priority": 2})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
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
