use super::*;

fn env(topic: &str, event_type: &str) -> Envelope {
    Envelope {
        event_id: "evt_00000000000000000000000000000000".into(),
        timestamp: "2026-01-01T00:00:00.000000Z".into(),
        topic: topic.into(),
        event_type: event_type.into(),
        node_id: "a".into(),
        source: "cli".into(),
        seq: 1,
        ..Default::default()
    }
}

fn sel(topic: Option<&str>, event_type: Option<&str>, patterns: &[&str]) -> Selector {
    EventFilter {
        topic: topic.map(String::from),
        event_type: event_type.map(String::from),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
    .compile()
    .unwrap()
}

#[test]
fn literal_topic_and_type_match_exactly() {
    let s = sel(Some("routing"), Some("route.selected"), &[]);
    assert!(s.matches(&env("routing", "route.selected")));
    assert!(!s.matches(&env("routing", "route.requested")));
    assert!(!s.matches(&env("scaling", "route.selected")));
    // A literal type with an odd shape still compares as text.
    let odd = sel(None, Some("a..b"), &[]);
    assert!(odd.matches(&env("t", "a..b")));
}

#[test]
fn star_patterns_apply_to_topic_and_type() {
    let any_topic = sel(Some("*"), Some("route.*"), &[]);
    assert!(any_topic.matches(&env("routing", "route.selected")));
    assert!(any_topic.matches(&env("other", "route.x")));
    assert!(!any_topic.matches(&env("routing", "route.a.b")));
    let rest = sel(Some("routing"), Some("route.**"), &[]);
    assert!(rest.matches(&env("routing", "route.a.b")));
    assert!(!rest.matches(&env("routing", "other.a")));
}

#[test]
fn any_pattern_may_match_and_all_other_filters_must() {
    let s = sel(None, None, &["routing.**", "*.decision.*"]);
    assert!(s.matches(&env("routing", "route.selected")));
    assert!(s.matches(&env("scaling", "decision.made")));
    assert!(!s.matches(&env("scaling", "other.made")));
    let both = sel(Some("scaling"), None, &["*.decision.*"]);
    assert!(!both.matches(&env("routing", "decision.made")));
}

#[test]
fn bad_filters_are_usage_errors_naming_the_text() {
    let bad = |f: EventFilter| match f.compile() {
        Err(OpsError::Usage(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = bad(EventFilter {
        patterns: vec!["a**".into()],
        ..Default::default()
    });
    assert!(m.contains("a**"), "{m}");
    let m = bad(EventFilter {
        topic: Some("rout*".into()),
        ..Default::default()
    });
    assert!(m.contains("rout*"), "{m}");
    let m = bad(EventFilter {
        event_type: Some("**.x".into()),
        ..Default::default()
    });
    assert!(m.contains("**.x"), "{m}");
    let m = bad(EventFilter {
        patterns: vec!["x.*".into(); MAX_PATTERNS + 1],
        ..Default::default()
    });
    assert!(m.contains("at most"), "{m}");
}
