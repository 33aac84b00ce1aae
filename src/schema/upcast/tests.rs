use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn upcaster(block: Value, version: u32) -> Upcaster {
    Upcaster::from_schema(&json!({ KEYWORD: block }), version)
        .unwrap()
        .unwrap()
}

#[test]
fn the_documented_example_upcasts() {
    let u = upcaster(
        json!({"from": 1, "steps": [
            {"rename": {"from": "host", "to": "hostname"}},
            {"default": {"path": "region", "value": "eu"}},
            {"move": {"from": "cpu", "to": "metrics.cpu"}},
            {"map": {"path": "state", "values": {"up": "running"}}},
            {"remove": {"path": "legacy"}}
        ]}),
        2,
    );
    let mut p = obj(json!({"host": "a", "cpu": 0.5, "state": "up", "legacy": 1, "keep": true}));
    u.apply(&mut p);
    assert_eq!(
        Value::Object(p),
        json!({"hostname": "a", "region": "eu", "metrics": {"cpu": 0.5}, "state": "running", "keep": true})
    );
}

#[test]
fn steps_never_overwrite_or_fail() {
    let u = upcaster(
        json!({"from": 2, "steps": [
            {"rename": {"from": "host", "to": "hostname"}},
            {"default": {"path": "region", "value": "eu"}},
            {"move": {"from": "cpu", "to": "metrics.cpu"}},
            {"move": {"from": "mem", "to": "scalar.mem"}},
            {"default": {"path": "scalar.x", "value": 1}},
            {"map": {"path": "state", "values": {"up": "running"}}}
        ]}),
        3,
    );
    let mut p = obj(json!({
        "host": "old", "hostname": "new", "region": "us",
        "cpu": 1, "metrics": {"cpu": 2}, "mem": 3, "scalar": 7, "state": "down"
    }));
    let before = p.clone();
    u.apply(&mut p);
    assert_eq!(
        p, before,
        "existing targets and non-object paths are left alone"
    );
    let mut empty = Map::new();
    u.apply(&mut empty);
    assert_eq!(
        Value::Object(empty),
        json!({"region": "eu", "scalar": {"x": 1}})
    );
}

#[test]
fn nested_paths_and_non_string_map_keys() {
    let u = upcaster(
        json!({"from": 1, "steps": [
            {"rename": {"from": "a.b", "to": "c"}},
            {"map": {"path": "a.flag", "values": {"true": "yes", "1": "one"}}},
            {"map": {"path": "n", "values": {"1": "one"}}}
        ]}),
        2,
    );
    let mut p = obj(json!({"a": {"b": 5, "flag": true}, "n": 1}));
    u.apply(&mut p);
    assert_eq!(
        Value::Object(p),
        json!({"a": {"c": 5, "flag": "yes"}, "n": "one"})
    );
}

#[test]
fn malformed_blocks_are_explained() {
    let err =
        |block: Value, v: u32| Upcaster::from_schema(&json!({ KEYWORD: block }), v).unwrap_err();
    assert!(err(json!({"from": 1, "steps": []}), 3).contains("must read v2"));
    assert!(err(json!({"from": 0, "steps": []}), 1).contains("from"));
    assert!(err(json!({"from": 1, "steps": [{"renam": {}}]}), 2).contains("renam"));
    assert!(err(json!({"from": 1}), 2).contains("steps"));
    assert!(
        err(
            json!({"from": 1, "steps": [{"rename": {"from": "a", "to": "b.c"}}]}),
            2
        )
        .contains("steps[0]")
    );
    assert!(
        err(
            json!({"from": 1, "steps": [{"move": {"from": "a", "to": "a.b"}}]}),
            2
        )
        .contains("inside")
    );
    assert!(
        err(
            json!({"from": 1, "steps": [{"remove": {"path": "a..b"}}]}),
            2
        )
        .contains("empty segment")
    );
    assert!(
        Upcaster::from_schema(&json!({"type": "object"}), 2)
            .unwrap()
            .is_none()
    );
}
