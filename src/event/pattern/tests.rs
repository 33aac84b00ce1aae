use super::*;

fn m(p: &str, name: &str) -> bool {
    Pattern::parse(p).unwrap().matches(name)
}

/// Asserts that `p` matches every name of `yes` and none of `no`.
fn check(p: &str, yes: &[&str], no: &[&str]) {
    for name in yes {
        assert!(m(p, name), "{p} should match {name}");
    }
    for name in no {
        assert!(!m(p, name), "{p} should not match {name}");
    }
}

#[test]
fn literal_patterns_match_exactly() {
    check(
        "routing.route.requested",
        &["routing.route.requested"],
        &["routing.route.selected"],
    );
    check("routing.route", &[], &["routing.route.requested"]);
    check(
        "routing.route.requested.x",
        &[],
        &["routing.route.requested"],
    );
}

#[test]
fn star_matches_exactly_one_segment() {
    check(
        "routing.route.*",
        &["routing.route.selected"],
        &["routing.route.a.b"],
    );
    check("*.route.*", &["routing.route.blocked"], &[]);
    check("routing.*", &[], &["routing.route.selected"]);
}

#[test]
fn double_star_matches_any_non_empty_rest() {
    check(
        "scaling.**",
        &["scaling.decision.made", "scaling.tick"],
        &["routing.route.selected"],
    );
    check("**", &["monitoring.heartbeat.changed"], &[]);
    check("scaling.decision.**", &["scaling.decision.made"], &[]);
    check("scaling.decision.made.**", &[], &["scaling.decision.made"]);
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
