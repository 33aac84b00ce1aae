use super::*;
use crate::ledger::clock::LeaseClock;
use chrono::{Duration, TimeZone};

fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .timestamp_opt(1_800_000_000 + s, 0)
        .single()
        .unwrap()
}

/// A reader at `now` with a 120 s lease, 60 s tolerance, renewing with 50 s left.
fn clk(now: i64) -> LeaseClock {
    LeaseClock {
        now: at(now),
        ttl: Duration::seconds(120),
        tolerance: Duration::seconds(60),
        renew_before: Duration::seconds(50),
        own_offset: Some(Duration::zero()),
        refusal: None,
        holder_offset: Some(Duration::zero()),
        unchanged_for: None,
    }
}

#[test]
fn absent_lease_is_taken_at_epoch_one() {
    let l = next(None, "a", &clk(0)).unwrap();
    assert_eq!((l.leader_id.as_str(), l.epoch, l.ttl_sec), ("a", 1, 120));
    assert!(l.held_by("a", at(119)));
    assert!(!l.held_by("a", at(120)));
    assert!(!l.held_by("b", at(1)));
}

#[test]
fn others_wait_for_expiry_then_bump_the_epoch() {
    let l = next(None, "a", &clk(0)).unwrap();
    assert_eq!(next(Some(&l), "b", &clk(60)), None);
    let taken = next(Some(&l), "b", &clk(120)).unwrap();
    assert_eq!((taken.leader_id.as_str(), taken.epoch), ("b", 2));
}

#[test]
fn holder_renews_once_less_than_renew_before_is_left_keeping_its_epoch() {
    let l = next(None, "a", &clk(0)).unwrap();
    assert_eq!(next(Some(&l), "a", &clk(30)), None);
    let renewed = next(Some(&l), "a", &clk(71)).unwrap();
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.held_by("a", at(190)));
}

#[test]
fn a_node_whose_clock_is_skewed_neither_takes_nor_renews() {
    let mut c = clk(0);
    c.refusal = Some("clock 600 s ahead".into());
    assert_eq!(next(None, "a", &c), None);
    let l = next(None, "a", &clk(0)).unwrap();
    let mut c = clk(100);
    c.refusal = Some("clock 600 s ahead".into());
    assert_eq!(next(Some(&l), "a", &c), None, "no renewal while skewed");
}

#[test]
fn a_lease_from_a_clock_a_year_ahead_is_taken_over_with_the_next_epoch() {
    let year = 365 * 24 * 3600;
    let future = next(None, "f", &clk(year)).unwrap();
    let taken = next(Some(&future), "a", &clk(0)).unwrap();
    assert_eq!((taken.leader_id.as_str(), taken.epoch), ("a", 2));
    // Its own holder, corrected, does not keep it either: it starts a new epoch.
    let own = next(Some(&future), "f", &clk(0)).unwrap();
    assert_eq!(own.epoch, 2);
    assert!(own.expires() <= at(120));
}
