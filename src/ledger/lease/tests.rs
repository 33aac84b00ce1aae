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

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

fn trusted(n: u8) -> Standing {
    Standing::Trusted(Box::new(
        crate::keys::parse_public("x", &key(n).public_hex()).unwrap(),
    ))
}

fn signed(mut l: Lease, n: u8) -> Lease {
    l.sign(&key(n));
    l
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

#[test]
fn the_epoch_never_wraps() {
    let mut l = next(None, "a", &clk(0)).unwrap();
    l.epoch = u64::MAX - 1;
    assert_eq!(next(Some(&l), "b", &clk(500)), None);
    l.epoch = u64::MAX;
    assert_eq!(next(Some(&l), "b", &clk(500)), None);
}

#[test]
fn a_signed_lease_by_an_eligible_taker_verifies_and_its_successor_too() {
    let first = signed(next(None, "a", &clk(0)).unwrap(), 1);
    assert_eq!(verify(&first, None, &trusted(1), 3600, 60), Ok(()));
    let renewed = signed(next(Some(&first), "a", &clk(90)).unwrap(), 1);
    assert_eq!(
        verify(&renewed, Some(&first), &trusted(1), 3600, 60),
        Ok(())
    );
    let taken = signed(next(Some(&renewed), "b", &clk(300)).unwrap(), 2);
    assert_eq!(taken.epoch, 2);
    assert_eq!(
        verify(&taken, Some(&renewed), &trusted(2), 3600, 60),
        Ok(())
    );
}

#[test]
fn forged_leases_are_refused_with_their_reason() {
    let first = signed(next(None, "a", &clk(0)).unwrap(), 1);
    // Unsigned, or signed by another key.
    let mut unsigned = first.clone();
    unsigned.sig = None;
    assert_eq!(
        verify(&unsigned, None, &trusted(1), 3600, 60).map_err(|e| e.code()),
        Err("bad_signature")
    );
    assert_eq!(
        verify(&first, None, &trusted(2), 3600, 60).map_err(|e| e.code()),
        Err("bad_signature")
    );
    // A taker the roster does not allow.
    assert_eq!(
        verify(&first, None, &Standing::NotOnRoster, 3600, 60).map_err(|e| e.code()),
        Err("taker_not_eligible")
    );
    // The last epoch, or a jump: never accepted.
    let mut max = next(None, "a", &clk(0)).unwrap();
    max.epoch = u64::MAX;
    let max = signed(max, 1);
    assert_eq!(
        verify(&max, None, &trusted(1), 3600, 60),
        Err(LeaseRefusal::EpochOutOfRange(u64::MAX))
    );
    let mut jump = next(Some(&first), "b", &clk(300)).unwrap();
    jump.epoch = 7;
    let jump = signed(jump, 2);
    assert_eq!(
        verify(&jump, Some(&first), &trusted(2), 3600, 60),
        Err(LeaseRefusal::EpochNotNext {
            trusted: 1,
            found: 7
        })
    );
    // Until year 9999: longer than the mesh-wide maximum.
    let mut forever = next(None, "a", &clk(0)).unwrap();
    forever.lease_expires_at = "9999-12-31T23:59:59.000000Z".into();
    let forever = signed(forever, 1);
    assert_eq!(
        verify(&forever, None, &trusted(1), 3600, 60).map_err(|e| e.code()),
        Err("too_long")
    );
    // Another holder in the same epoch, or before the trusted lease expired.
    let same = signed(
        Lease {
            leader_id: "b".into(),
            ..next(None, "b", &clk(10)).unwrap()
        },
        2,
    );
    assert_eq!(
        verify(&same, Some(&first), &trusted(2), 3600, 60).map_err(|e| e.code()),
        Err("epoch_taken")
    );
    let mut early = next(None, "b", &clk(30)).unwrap();
    early.epoch = 2;
    let early = signed(early, 2);
    assert_eq!(
        verify(&early, Some(&first), &trusted(2), 3600, 60).map_err(|e| e.code()),
        Err("taken_before_expiry")
    );
    // A stale (older) epoch.
    let mut second = signed(next(Some(&first), "b", &clk(300)).unwrap(), 2);
    second.epoch = 2;
    assert_eq!(
        verify(&first, Some(&second), &trusted(1), 3600, 60).map_err(|e| e.code()),
        Err("epoch_not_next")
    );
}

#[test]
fn a_takeover_within_the_tolerance_or_of_a_lease_from_a_clock_far_ahead_verifies() {
    let first = signed(next(None, "a", &clk(0)).unwrap(), 1);
    // Taken 40 s before the trusted expiry by the taker's clock: within 60 s of skew.
    let mut close = next(None, "b", &clk(80)).unwrap();
    close.epoch = 2;
    let close = signed(close, 2);
    assert_eq!(verify(&close, Some(&first), &trusted(2), 3600, 60), Ok(()));
    // A lease written by a clock a year ahead is taken over at once.
    let year = 365 * 24 * 3600;
    let far = signed(next(None, "a", &clk(year)).unwrap(), 1);
    let taken = signed(next(Some(&far), "b", &clk(0)).unwrap(), 2);
    assert_eq!(taken.epoch, 2);
    assert_eq!(verify(&taken, Some(&far), &trusted(2), 3600, 60), Ok(()));
}
