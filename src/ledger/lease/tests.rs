use super::*;
use chrono::TimeZone;

fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc
        .timestamp_opt(1_800_000_000 + s, 0)
        .single()
        .unwrap()
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

#[test]
fn the_epoch_never_wraps() {
    let mut l = next(None, "a", at(0), 120).unwrap();
    l.epoch = u64::MAX - 1;
    assert_eq!(next(Some(&l), "b", at(500), 120), None);
    l.epoch = u64::MAX;
    assert_eq!(next(Some(&l), "b", at(500), 120), None);
    assert_eq!(next(None, "a", at(0), u64::MAX), None);
}

#[test]
fn a_signed_lease_by_an_eligible_taker_verifies_and_its_successor_too() {
    let first = signed(next(None, "a", at(0), 120).unwrap(), 1);
    assert_eq!(verify(&first, None, &trusted(1), 3600), Ok(()));
    let renewed = signed(next(Some(&first), "a", at(90), 120).unwrap(), 1);
    assert_eq!(verify(&renewed, Some(&first), &trusted(1), 3600), Ok(()));
    let taken = signed(next(Some(&renewed), "b", at(300), 120).unwrap(), 2);
    assert_eq!(taken.epoch, 2);
    assert_eq!(verify(&taken, Some(&renewed), &trusted(2), 3600), Ok(()));
}

#[test]
fn forged_leases_are_refused_with_their_reason() {
    let first = signed(next(None, "a", at(0), 120).unwrap(), 1);
    // Unsigned, or signed by another key.
    let mut unsigned = first.clone();
    unsigned.sig = None;
    assert_eq!(
        verify(&unsigned, None, &trusted(1), 3600).map_err(|e| e.code()),
        Err("bad_signature")
    );
    assert_eq!(
        verify(&first, None, &trusted(2), 3600).map_err(|e| e.code()),
        Err("bad_signature")
    );
    // A taker the roster does not allow.
    assert_eq!(
        verify(&first, None, &Standing::NotOnRoster, 3600).map_err(|e| e.code()),
        Err("taker_not_eligible")
    );
    // The last epoch, or a jump: never accepted.
    let mut max = next(None, "a", at(0), 120).unwrap();
    max.epoch = u64::MAX;
    let max = signed(max, 1);
    assert_eq!(
        verify(&max, None, &trusted(1), 3600),
        Err(LeaseRefusal::EpochOutOfRange(u64::MAX))
    );
    let mut jump = next(Some(&first), "b", at(300), 120).unwrap();
    jump.epoch = 7;
    let jump = signed(jump, 2);
    assert_eq!(
        verify(&jump, Some(&first), &trusted(2), 3600),
        Err(LeaseRefusal::EpochNotNext {
            trusted: 1,
            found: 7
        })
    );
    // Until year 9999: longer than the mesh-wide maximum.
    let mut forever = next(None, "a", at(0), 120).unwrap();
    forever.lease_expires_at = "9999-12-31T23:59:59.000000Z".into();
    let forever = signed(forever, 1);
    assert_eq!(
        verify(&forever, None, &trusted(1), 3600).map_err(|e| e.code()),
        Err("too_long")
    );
    // Another holder in the same epoch, or before the trusted lease expired.
    let same = signed(
        Lease {
            leader_id: "b".into(),
            ..next(None, "b", at(10), 120).unwrap()
        },
        2,
    );
    assert_eq!(
        verify(&same, Some(&first), &trusted(2), 3600).map_err(|e| e.code()),
        Err("epoch_taken")
    );
    let mut early = next(None, "b", at(60), 120).unwrap();
    early.epoch = 2;
    let early = signed(early, 2);
    assert_eq!(
        verify(&early, Some(&first), &trusted(2), 3600).map_err(|e| e.code()),
        Err("taken_before_expiry")
    );
    // A stale (older) epoch.
    let mut second = signed(next(Some(&first), "b", at(300), 120).unwrap(), 2);
    second.epoch = 2;
    assert_eq!(
        verify(&first, Some(&second), &trusted(1), 3600).map_err(|e| e.code()),
        Err("epoch_not_next")
    );
}
