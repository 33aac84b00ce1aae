use super::*;

fn m(p: &str, name: &str) -> bool {
    Pattern::parse(p).unwrap().matches(name)
}

#[test]
fn literal_patterns_match_exactly() {
    assert!(m("routing.route.requested", "routing.route.requested"));
    assert!(!m("routing.route.requested", "routing.route.selected"));
    assert!(!m("routing.route", "routing.route.requested"));
    assert!(!m("routing.route.requested.x", "routing.route.requested"));
}

#[test]
fn star_matches_exactly_one_segment() {
    assert!(m("routing.route.*", "routing.route.selected"));
    assert!(m("*.route.*", "routing.route.blocked"));
    assert!(!m("routing.*", "routing.route.selected"));
    assert!(!m("routing.route.*", "routing.route.a.b"));
}

#[test]
fn double_star_matches_any_non_empty_rest() {
    assert!(m("scaling.**", "scaling.decision.made"));
    assert!(m("scaling.**", "scaling.tick"));
    assert!(m("**", "monitoring.heartbeat.changed"));
    assert!(!m("scaling.**", "routing.route.selected"));
    assert!(m("scaling.decision.**", "scaling.decision.made"));
    assert!(!m("scaling.decision.made.**", "scaling.decision.made"));
}

#[test]
fn bad_patterns_are_explained() {
    assert!(Pattern::parse("").is_err());
    assert!(Pattern::parse("a..b").is_err());
    assert!(
        Pattern::parse("a.**.b")
            .unwrap_err()
            .reason
            .contains("last")
    );
    assert!(Pattern::parse("route*").is_err());
}
