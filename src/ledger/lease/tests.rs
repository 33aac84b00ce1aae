use super::*;
use chrono::TimeZone;

fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .timestamp_opt(1_800_000_000 + s, 0)
        .single()
        .unwrap()
}

#[test]
fn absent_lease_is_taken_at_epoch_one() {
    let l = next(None, "a", at(0), 120).unwrap();
    assert_eq!((l.leader_id.as_str(), l.epoch), ("a", 1));
    assert!(l.held_by("a", at(119)));
    assert!(!l.held_by("a", at(120)));
    assert!(!l.held_by("b", at(1)));
}

#[test]
fn others_wait_for_expiry_then_bump_the_epoch() {
    let l = next(None, "a", at(0), 120).unwrap();
    assert_eq!(next(Some(&l), "b", at(60), 120), None);
    let taken = next(Some(&l), "b", at(120), 120).unwrap();
    assert_eq!((taken.leader_id.as_str(), taken.epoch), ("b", 2));
}

#[test]
fn holder_renews_in_the_second_half_keeping_its_epoch() {
    let l = next(None, "a", at(0), 120).unwrap();
    assert_eq!(next(Some(&l), "a", at(30), 120), None);
    let renewed = next(Some(&l), "a", at(90), 120).unwrap();
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.held_by("a", at(200)));
}
