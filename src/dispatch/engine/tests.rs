use super::*;
use crate::dispatch::testutil::event;
use serde_json::json;

fn table() -> Vec<(Pattern, Kind)> {
    let mut h = builtins();
    h.push((Pattern::parse("scaling.**").unwrap(), Kind::User(0)));
    h
}

fn kinds(topic: &str, event_type: &str, acting: bool, user_takes: bool) -> Vec<Kind> {
    let ev = event(topic, event_type, json!({}));
    handlers_for(&table(), &ev, acting, |_| user_takes)
}

#[test]
fn the_acting_node_runs_every_matching_handler_in_order() {
    assert_eq!(
        kinds("scaling", "command.requested", true, true),
        [Kind::Actuator, Kind::User(0)]
    );
    assert_eq!(
        kinds("monitoring", "heartbeat.changed", true, true),
        [Kind::Heartbeat]
    );
    assert!(kinds("monitoring", "nothing.here", true, true).is_empty());
}

#[test]
fn other_nodes_only_weigh_decisions() {
    assert!(kinds("scaling", "command.requested", false, true).is_empty());
    assert!(kinds("scheduling", "lanes.ensure.summary", false, true).is_empty());
    assert_eq!(
        kinds("scaling", "decision.made", false, true),
        [Kind::DecisionMade]
    );
    assert_eq!(
        kinds("scaling", "decision.made", true, true),
        [Kind::DecisionMade, Kind::User(0)]
    );
}

#[test]
fn a_user_handler_is_skipped_when_it_does_not_take_the_event() {
    assert_eq!(
        kinds("scaling", "command.requested", true, false),
        [Kind::Actuator]
    );
}

fn walk(cause: &str, max: u32, log: &[(&str, Up)]) -> (u32, Vec<String>) {
    hops(cause, max, |id| -> Result<Up, ()> {
        Ok(log
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, u)| u.clone())
            .unwrap_or(Up::Missing))
    })
    .unwrap()
}

#[test]
fn hops_count_the_causation_chain_up_to_the_limit() {
    let log = [
        ("c", Up::Cause("b".into())),
        ("b", Up::Cause("a".into())),
        ("a", Up::Cause(String::new())),
    ];
    assert_eq!(walk("", 5, &log).0, 0);
    assert_eq!(
        walk("c", 5, &log),
        (3, vec!["c".into(), "b".into(), "a".into()])
    );
    // The walk stops at the limit.
    assert_eq!(walk("c", 2, &log), (2, vec!["c".into(), "b".into()]));
    // A known hop count ends the walk; a missing cause counts as one hop.
    assert_eq!(walk("k", 50, &[("k", Up::Known(40))]).0, 41);
    assert_eq!(walk("k", 32, &[("k", Up::Known(40))]).0, 32);
    assert_eq!(walk("gone", 5, &log).0, 1);
}
