use super::*;
use serde_json::json;

fn payload(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn path_of(v: Value) -> String {
    match check_payload(&payload(v), &PayloadLimits::default()) {
        Err(EventError::Payload { path, .. }) => path,
        other => panic!("expected a payload error, got {other:?}"),
    }
}

#[test]
fn secret_keys_are_refused_with_their_path() {
    assert_eq!(
        path_of(json!({"db": {"password": "hunter2"}})),
        "$.db.password"
    );
    assert_eq!(
        path_of(json!({"items": [{"apiKey": "x"}]})),
        "$.items[0].apiKey"
    );
    assert_eq!(
        path_of(json!({"github-token": "abc"})),
        "$[\"github-token\"]"
    );
    assert_eq!(path_of(json!({"client_secret": "s"})), "$.client_secret");
}

#[test]
fn empty_secret_keys_and_lookalikes_pass() {
    let ok = json!({"password": "", "token_count": 3, "tokens_used": 5, "secretary": "ann"});
    check_payload(&payload(ok), &PayloadLimits::default()).unwrap();
}

#[test]
fn credential_values_are_refused_anywhere() {
    let gh = format!("ghp_{}", "a".repeat(36));
    assert_eq!(path_of(json!({"note": gh})), "$.note");
    let pat = format!("github_pat_{}", "B".repeat(60));
    assert_eq!(path_of(json!({"a": [1, {"b": pat}]})), "$.a[1].b");
    assert_eq!(path_of(json!({"k": "id=AKIAIOSFODNN7EXAMPLE"})), "$.k");
    assert_eq!(
        path_of(json!({"pem": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"})),
        "$.pem"
    );
}

#[test]
fn size_and_depth_limits() {
    let big = json!({"blob": "x".repeat(70_000)});
    assert_eq!(path_of(big), "$");
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!({"d": deep});
    }
    assert!(path_of(deep).starts_with("$.d.d"));
}

#[test]
fn node_ids_cannot_escape_directories() {
    for bad in ["", "..", ".", "a/b", "../x", ".hidden", "a b", "A\u{0}"] {
        assert!(normalize_node_id(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(normalize_node_id(" Ops-Box.1 ").unwrap(), "ops-box.1");
}

#[test]
fn topic_and_type_charsets() {
    validate_topic("monitoring").unwrap();
    assert!(validate_topic("Mon").is_err());
    assert!(validate_topic("a.b").is_err());
    validate_event_type("task.enqueued").unwrap();
    assert!(validate_event_type(&"x".repeat(129)).is_err());
}
