use super::*;

fn facts(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn counts(
    failed: i64,
    at_limit: i64,
    started: i64,
    restarted: i64,
    down: i64,
    up: i64,
) -> Map<String, Value> {
    facts(
        json!({"failed_count": failed, "parallel_groups_at_limit": at_limit,
        "started_count": started, "restarted_count": restarted,
        "scaled_down_count": down, "scaled_up_count": up}),
    )
}

#[test]
fn default_table_follows_the_documented_order() {
    let t = DecisionTable::default_table();
    assert_eq!(t.rules.len(), 5);
    let d = t.decide(&counts(1, 1, 0, 0, 0, 0));
    assert_eq!(
        (d.action, d.reason.as_str(), d.target_delta),
        (Action::ScaleDown, "failures_present", -1)
    );
    assert_eq!(d.matched_rule_ids[0], "failures_present");
    let d = t.decide(&counts(0, 2, 0, 0, 0, 0));
    assert_eq!(
        (d.action, d.reason.as_str(), d.target_delta),
        (Action::ScaleUp, "capacity_saturated", 1)
    );
    let d = t.decide(&counts(0, 2, 1, 0, 0, 0));
    assert_eq!((d.action, d.reason.as_str()), (Action::Hold, "stable"));
    let d = t.decide(&counts(0, 0, 0, 0, 1, 1));
    assert_eq!(d.reason, "recent_scale_down");
    let d = t.decide(&counts(0, 0, 0, 0, 0, 1));
    assert_eq!(d.reason, "recent_scale_up");
    assert_eq!(d.matched_rule_ids, vec!["recent_scale_up", "stable"]);
}

#[test]
fn operators_compare_numbers_and_lists() {
    let f = facts(json!({"n": 3, "lane": "a"}));
    let c = |op, v| {
        Condition {
            fact: "n".into(),
            op,
            value: v,
        }
        .holds(&f)
    };
    assert!(c(Op::Eq, json!(3.0)));
    assert!(c(Op::Gt, json!(2)) && !c(Op::Gt, json!(3)));
    assert!(c(Op::Gte, json!(3)) && c(Op::Lte, json!(3)) && c(Op::Lt, json!(4)));
    assert!(c(Op::In, json!([1, 3])) && !c(Op::In, json!([1, 2])));
    let missing = Condition {
        fact: "x".into(),
        op: Op::Lt,
        value: json!(1),
    };
    assert!(!missing.holds(&f));
    let s = Condition {
        fact: "lane".into(),
        op: Op::In,
        value: json!(["a", "b"]),
    };
    assert!(s.holds(&f));
}

#[test]
fn toml_and_json_tables_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.toml");
    std::fs::write(&p, "version = \"v7\"\n[[rules]]\nid = \"big\"\nwhen = { queue = { gte = 10 } }\nthen = { action = \"scale_up\", reason = \"queue_long\", target_delta = 2 }\n[[rules]]\nid = \"else\"\nthen = { action = \"hold\", reason = \"ok\" }\n").unwrap();
    let t = DecisionTable::load(&p).unwrap();
    assert_eq!(t.version, "v7");
    let d = t.decide(&facts(json!({"queue": 12})));
    assert_eq!((d.action, d.target_delta), (Action::ScaleUp, 2));
    assert_eq!(t.decide(&facts(json!({"queue": 1}))).reason, "ok");
    let j = dir.path().join("t.json");
    std::fs::write(&j, r#"{"version":"j1","rules":[{"id":"a","when":{"x":{"in":[1,2]}},"then":{"action":"scale_down","reason":"r","target_delta":-1}}]}"#).unwrap();
    let t = DecisionTable::load(&j).unwrap();
    assert_eq!(t.decide(&facts(json!({"x": 2}))).action, Action::ScaleDown);
    assert_eq!(t.decide(&facts(json!({"x": 3}))).reason, "no_rule_matched");
}

#[test]
fn invalid_tables_name_the_file_and_the_rule() {
    let p = Path::new("scaling_table.json");
    let bad = json!({"version": "1", "rules": [
        {"id": "ok", "then": {"action": "hold", "reason": "x"}},
        {"id": "grow", "when": {"n": {"more": 1}}, "then": {"action": "hold", "reason": "x"}}
    ]});
    let e = DecisionTable::from_value(&bad, p).unwrap_err().to_string();
    assert!(
        e.contains("scaling_table.json") && e.contains("rule 2 (\"grow\")") && e.contains("more"),
        "{e}"
    );
    let bad = json!({"version": "1", "rules": [{"id": "a", "then": {"action": "explode", "reason": "x"}}]});
    let e = DecisionTable::from_value(&bad, p).unwrap_err().to_string();
    assert!(e.contains("explode") && e.contains("rule 1"), "{e}");
    let bad = json!({"version": "1", "rules": [{"id": "a", "when": {"n": {"gt": "x"}}, "then": {"action": "hold", "reason": "x"}}]});
    assert!(DecisionTable::from_value(&bad, p).is_err());
    let dup = json!({"version": "1", "rules": [
        {"id": "a", "then": {"action": "hold", "reason": "x"}},
        {"id": "a", "then": {"action": "hold", "reason": "y"}}]});
    assert!(
        DecisionTable::from_value(&dup, p)
            .unwrap_err()
            .to_string()
            .contains("duplicate")
    );
    assert!(DecisionTable::from_value(&json!({"rules": []}), p).is_err());
}
