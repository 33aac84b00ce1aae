use super::*;
use crate::ledger::lease::Lease;
use chrono::TimeZone;

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
}

fn stamp(s: i64) -> String {
    crate::event::format_timestamp(at(s))
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

#[test]
fn a_stamp_is_from_the_future_only_beyond_the_tolerance() {
    assert!(!in_future(at(60), at(0), secs(60)));
    assert!(in_future(at(61), at(0), secs(60)));
    assert!(!in_future(at(-1000), at(0), secs(60)));
}

#[test]
fn a_lease_expiry_beyond_ttl_plus_tolerance_is_implausible() {
    assert!(lease_expiry_plausible(at(180), secs(120), at(0), secs(60)));
    assert!(!lease_expiry_plausible(at(181), secs(120), at(0), secs(60)));
    assert!(lease_expiry_plausible(at(-5), secs(120), at(0), secs(60)));
}

/// Feeds heartbeats of `peers` (id, offset) written at true time `t`, read `delay` later.
fn round(st: &mut ClockState, me_off: i64, peers: &[(&str, i64)], t: i64, delay: i64) {
    let stamps: Vec<(String, String)> = peers
        .iter()
        .map(|(p, off)| (p.to_string(), stamp(t + off)))
        .collect();
    st.observe_heartbeats(
        "me",
        stamps.iter().map(|(p, s)| (p.as_str(), s.as_str())),
        at(t + delay + me_off),
    );
}

#[test]
fn the_first_heartbeat_is_a_baseline_and_later_ones_are_samples() {
    let mut st = ClockState::default();
    round(&mut st, 0, &[("b", 600)], 0, 5);
    assert_eq!(st.peer_estimate("b"), None);
    assert_eq!(st.own_offset(), None);
    round(&mut st, 0, &[("b", 600)], 60, 5);
    assert_eq!(st.peer_estimate("b"), Some(595));
}

#[test]
fn the_least_delayed_sample_is_the_estimate_and_samples_are_bounded() {
    let mut st = ClockState::default();
    for (i, delay) in [30, 50, 2, 40, 20, 45, 33, 41, 38, 36].iter().enumerate() {
        round(&mut st, 0, &[("b", -100)], i as i64 * 60, *delay);
    }
    assert_eq!(st.peers["b"].samples.len(), MAX_SAMPLES);
    assert_eq!(st.peer_estimate("b"), Some(-102));
    // An unchanged heartbeat adds no sample.
    let before = st.clone();
    let s = st.peers["b"].last_seen.clone();
    st.observe_heartbeats("me", [("b", s.as_str())], at(99_999));
    assert_eq!(st, before);
}

#[test]
fn own_offset_is_against_the_median_so_one_wrong_clock_cannot_move_it() {
    let year = 365 * 24 * 3600;
    // Three nodes, one a year ahead: the normal node keeps offset 0 and sees the peer ahead.
    let mut normal = ClockState::default();
    let mut fast = ClockState::default();
    for t in [0, 60, 120] {
        round(&mut normal, 0, &[("c", 0), ("f", year)], t, 1);
        round(&mut fast, year, &[("a", 0), ("c", 0)], t, 1);
    }
    assert_eq!(normal.own_offset(), Some(0));
    assert_eq!(normal.peer_offsets()["f"], year - 1);
    assert_eq!(fast.own_offset(), Some(year + 1));
    assert!(skew_refusal(fast.own_offset(), secs(60)).is_some_and(|w| w.contains("ahead")));
    assert!(skew_refusal(normal.own_offset(), secs(60)).is_none());
    // A slow node is told it is behind.
    let mut slow = ClockState::default();
    for t in [0, 60] {
        round(&mut slow, -600, &[("a", 0), ("c", 0)], t, 1);
    }
    let why = skew_refusal(slow.own_offset(), secs(60)).unwrap();
    assert!(why.contains("599 s behind"), "{why}");
    // Two nodes that disagree: each trusts itself.
    let mut two = ClockState::default();
    for t in [0, 60] {
        round(&mut two, 0, &[("f", 600)], t, 1);
    }
    assert_eq!(two.own_offset(), Some(0));
}

#[test]
fn departed_peers_are_forgotten_and_self_is_never_sampled() {
    let mut st = ClockState::default();
    round(&mut st, 0, &[("b", 0), ("me", 0)], 0, 1);
    assert!(st.peers.contains_key("b") && !st.peers.contains_key("me"));
    round(&mut st, 0, &[("c", 0)], 60, 1);
    assert!(!st.peers.contains_key("b"));
}

fn lease(leader: &str, epoch: u64, expires: i64) -> Lease {
    Lease {
        leader_id: leader.into(),
        epoch,
        lease_expires_at: stamp(expires),
        ttl_sec: 120,
        taken_at: stamp(expires - 120),
        sig: None,
    }
}

#[test]
fn lease_sightings_count_changes_of_leader_or_epoch_and_time_unchanged_versions() {
    let mut st = ClockState::default();
    assert_eq!(st.observe_lease(Some(&lease("a", 1, 120)), at(0)), None);
    assert_eq!(st.observe_lease(Some(&lease("a", 1, 120)), at(50)), None);
    assert_eq!(
        st.unchanged_for(&lease("a", 1, 120), at(50)),
        Some(secs(50))
    );
    // A renewal is a new version but not a change of leadership.
    assert_eq!(st.observe_lease(Some(&lease("a", 1, 180)), at(60)), None);
    assert_eq!(
        st.unchanged_for(&lease("a", 1, 180), at(70)),
        Some(secs(10))
    );
    let change = st
        .observe_lease(Some(&lease("b", 2, 400)), at(300))
        .unwrap();
    assert_eq!(change.old, ("a".to_string(), 1));
    assert_eq!(change.new, ("b".to_string(), 2));
    assert_eq!(st.leadership_changes, 1);
    assert_eq!(st.unchanged_for(&lease("a", 1, 180), at(300)), None);
}

fn reader(now: i64, holder_offset: Option<i64>, unchanged_for: Option<i64>) -> LeaseClock {
    LeaseClock {
        now: at(now),
        ttl: secs(120),
        tolerance: secs(60),
        renew_before: secs(50),
        own_offset: Some(Duration::zero()),
        refusal: None,
        holder_offset: holder_offset.map(secs),
        unchanged_for: unchanged_for.map(secs),
    }
}

#[test]
fn a_fast_reader_judges_by_the_holders_clock_and_never_takes_early() {
    // The holder wrote the lease at its 0, expiry 120. A reader 600 s fast sees it at 600.
    let held = |now, off| judge("a", at(120), 120, "f", &reader(now, off, None));
    assert_eq!(held(650, Some(-600)), Standing::Valid);
    assert_eq!(held(719, Some(-600)), Standing::Valid);
    assert_eq!(held(720, Some(-600)), Standing::Expired);
    // An estimate biased low (delivery delay) only makes the reader later, never earlier.
    assert_eq!(held(720, Some(-605)), Standing::Valid);
    // A slow reader too follows the holder's clock: it does not wait 600 s extra.
    let slow = |now| {
        let mut r = reader(now, Some(600), None);
        r.own_offset = Some(secs(-600));
        judge("a", at(120), 120, "s", &r)
    };
    assert_eq!(slow(-500), Standing::Valid);
    assert_eq!(slow(-480), Standing::Expired);
    // Not yet knowing it is slow, it does not call the normal lease bogus either.
    let mut r = reader(-500, None, None);
    r.own_offset = None;
    assert_eq!(judge("a", at(120), 120, "s", &r), Standing::Valid);
}

#[test]
fn without_an_estimate_the_lease_expires_after_its_length_seen_unchanged() {
    let c = |now, seen| judge("a", at(120), 120, "f", &reader(now, None, seen));
    // By its own clock alone a reader waits out the tolerance too.
    assert_eq!(c(150, Some(30)), Standing::Valid);
    assert_eq!(c(180, Some(60)), Standing::Expired);
    // A reader 600 s fast whose skew is not measured yet, having seen the version
    // for 119 s, does not take it; at the lease's length it does.
    let mut r = reader(719, None, Some(119));
    r.own_offset = None;
    assert_eq!(judge("a", at(120), 120, "f", &r), Standing::Valid);
    r.unchanged_for = Some(secs(120));
    assert_eq!(judge("a", at(120), 120, "f", &r), Standing::Expired);
}

#[test]
fn a_huge_ttl_in_the_lease_does_not_stretch_the_wait() {
    let mut r = reader(0, None, Some(180));
    r.own_offset = None;
    assert_eq!(judge("a", at(100), u64::MAX, "f", &r), Standing::Expired);
}

#[test]
fn the_holder_renews_inside_the_margin_and_an_implausible_lease_is_invalid_for_all() {
    let c = |now| judge("a", at(120), 120, "a", &reader(now, None, None));
    assert_eq!(c(60), Standing::Valid);
    assert_eq!(c(71), Standing::RenewDue);
    assert_eq!(c(120), Standing::Expired);
    let year = 365 * 24 * 3600;
    assert_eq!(
        judge("f", at(year), 120, "a", &reader(0, None, None)),
        Standing::Implausible
    );
    assert_eq!(
        judge("a", at(year), 120, "a", &reader(0, None, None)),
        Standing::Implausible
    );
    // Its holder calls it bogus even unmeasured; another node only once it knows its own offset.
    let mut r = reader(0, None, None);
    r.own_offset = None;
    assert_eq!(judge("a", at(year), 120, "a", &r), Standing::Implausible);
    assert_eq!(judge("f", at(year), 120, "a", &r), Standing::Valid);
}
