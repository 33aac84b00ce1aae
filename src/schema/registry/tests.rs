use super::location::json_path_of_pointer;
use super::*;
use serde_json::json;

fn reg_with(extra: &[(u32, Value)]) -> Registry {
    let mut r = Registry::builtin();
    for (v, s) in extra {
        r.add(
            SchemaKey {
                topic: "monitoring".into(),
                event_type: "host.seen".into(),
                version: *v,
            },
            SchemaSource::Local,
            format!("test v{v}"),
            Cow::Owned(s.to_string()),
        );
    }
    r
}

fn env(payload: Value, version: Option<u32>) -> Envelope {
    Envelope {
        event_id: "evt_00000000000000000000000000000000".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: "monitoring".into(),
        event_type: "host.seen".into(),
        node_id: "n1".into(),
        source: "cli".into(),
        seq: 1,
        payload: payload.as_object().cloned().unwrap_or_default(),
        schema_version: version,
        ..Default::default()
    }
}

#[test]
fn builtins_parse_and_compile() {
    let r = Registry::builtin();
    assert_eq!(r.entries().count(), BUILTINS.len());
    for e in r.entries() {
        e.validator()
            .unwrap_or_else(|err| panic!("{}: {err}", e.key));
    }
}

#[test]
fn violations_name_the_path_and_rule() {
    let r = Registry::builtin();
    let err = r
        .check("scheduling", "task.enqueued", None, &Map::new())
        .unwrap_err();
    match &err {
        SchemaError::Violation { path, rule, .. } => {
            assert_eq!(path, "$.task_id");
            assert_eq!(rule, "required");
        }
        other => panic!("{other:?}"),
    }
    let p = json!({"task_id": "t", "routing_options": [{"score": 1}, {"score": "high"}]});
    match r.check(
        "scheduling",
        "task.enqueued",
        Some(1),
        p.as_object().unwrap(),
    ) {
        Err(SchemaError::Violation { path, rule, .. }) => {
            assert_eq!(path, "$.routing_options[1].score");
            assert_eq!(rule, "type");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.check("x", "y", None, &Map::new()).unwrap(),
        Checked::NoSchema
    );
    assert!(r.check_publish("x", "y", None, &Map::new(), true).is_err());
}

#[test]
fn odd_property_names_are_quoted() {
    let mut s = String::from("$");
    push_property(&mut s, "a b");
    push_property(&mut s, "ok_1");
    push_property(&mut s, "9x");
    assert_eq!(s, r#"$["a b"].ok_1["9x"]"#);
    assert_eq!(
        json_path_of_pointer("/properties/a~1b/0"),
        r#"$.properties["a/b"][0]"#
    );
}

#[test]
fn version_file_names() {
    assert_eq!(parse_version_file("v1.json"), Some(1));
    assert_eq!(parse_version_file("v12.json"), Some(12));
    for bad in [
        "v0.json", "v01.json", "v.json", "1.json", "v1.yaml", "v-1.json",
    ] {
        assert_eq!(parse_version_file(bad), None, "{bad}");
    }
    assert!(layout_key("Bad", "x", "v1.json").is_none());
    assert!(layout_key("ok", "a.b", "v2.json").is_some());
}

#[test]
fn upcast_chains_and_stops_at_a_gap() {
    let v2 = json!({"x-gitmesh-upcast": {"from": 1, "steps": [{"rename": {"from": "host", "to": "hostname"}}]}});
    let v3 = json!({"x-gitmesh-upcast": {"from": 2, "steps": [{"default": {"path": "region", "value": "eu"}}]}});
    let r = reg_with(&[(1, json!({})), (2, v2.clone()), (3, v3.clone())]);
    let e = env(json!({"host": "a"}), None);
    let up = r.upcast(&e);
    assert!(matches!(up, Cow::Owned(_)));
    assert_eq!(up.schema_version, Some(3));
    assert_eq!(up.event_id, e.event_id);
    assert_eq!(
        Value::Object(up.payload.clone()),
        json!({"hostname": "a", "region": "eu"})
    );
    let e2 = env(json!({"hostname": "b"}), Some(2));
    assert_eq!(r.upcast(&e2).schema_version, Some(3));
    let e3 = env(json!({}), Some(3));
    assert!(matches!(r.upcast(&e3), Cow::Borrowed(_)));
    // v2 without an upcaster: a v1 event cannot be carried past v1.
    let r = reg_with(&[(2, json!({})), (3, v3)]);
    assert!(matches!(r.upcast(&e), Cow::Borrowed(_)));
    // No v3: stop at v2.
    let r = reg_with(&[(2, v2)]);
    assert_eq!(r.upcast(&e).schema_version, Some(2));
}

#[test]
fn later_sources_override() {
    let mut r = Registry::builtin();
    let key = SchemaKey {
        topic: "scheduling".into(),
        event_type: "task.enqueued".into(),
        version: 1,
    };
    r.add(
        key.clone(),
        SchemaSource::Local,
        "here".into(),
        Cow::Borrowed("{}"),
    );
    let e = r.get("scheduling", "task.enqueued", 1).unwrap();
    assert_eq!(e.source, SchemaSource::Local);
    assert_eq!(e.overrides, vec![SchemaSource::Builtin]);
    assert_eq!(
        r.check("scheduling", "task.enqueued", None, &Map::new())
            .unwrap(),
        Checked::Valid
    );
}

#[test]
fn bad_schemas_are_explained() {
    assert!(
        check_schema_text("{", None)
            .unwrap_err()
            .contains("not JSON")
    );
    assert!(
        check_schema_text(r#"{"type": "strin"}"#, None)
            .unwrap_err()
            .contains("draft 2020-12")
    );
    assert!(
        check_schema_text(
            r#"{"$schema": "http://json-schema.org/draft-07/schema#"}"#,
            None
        )
        .unwrap_err()
        .contains("2020-12")
    );
    assert!(
        check_schema_text(r#"{"x-gitmesh-upcast": {"from": 1, "steps": []}}"#, Some(3))
            .unwrap_err()
            .contains("v2")
    );
    assert!(
        check_schema_text(r#"{"x-gitmesh-upcast": {"from": 1, "steps": []}}"#, None)
            .unwrap()
            .is_some()
    );
}
