use super::*;
use crate::ops::OpsError;
use crate::ops::sync::SyncReport;

fn sync_report(offline: bool) -> PassReport {
    let mut r = SyncReport::default();
    r.push.offline = offline;
    PassReport::Sync(Box::new(r))
}

fn pass_error(e: OpsError) -> DaemonError {
    DaemonError::Pass(Box::new(e))
}

#[test]
fn reports_and_errors_are_classified() {
    assert_eq!(classify(&Ok(sync_report(false))), Outcome::Ok);
    assert_eq!(classify(&Ok(sync_report(true))), Outcome::Offline);
    let dispatch = PassReport::Dispatch(crate::dispatch::DispatchReport::default());
    assert_eq!(classify(&Ok(dispatch)), Outcome::Ok);
    let usage = pass_error(OpsError::Usage("sync is not available".into()));
    assert_eq!(classify(&Err(usage)), Outcome::Failed);
    let busy = pass_error(OpsError::Ledger(crate::ledger::LedgerError::Busy {
        path: "x".into(),
    }));
    assert_eq!(classify(&Err(busy)), Outcome::Busy);
    let git_failure = |stderr: &str| {
        pass_error(OpsError::Ledger(
            crate::git::GitError::Command {
                args: "push origin".into(),
                path: "ledger".into(),
                stderr: stderr.into(),
                failure: crate::git::failure::classify(stderr),
            }
            .into(),
        ))
    };
    let offline =
        git_failure("fatal: unable to access 'https://h/r.git/': Could not resolve host: h");
    assert_eq!(classify(&Err(offline)), Outcome::Offline);
    // A refused credential, a refusing server or a missing repository does not
    // get better by waiting: it is a failure to alert on, not an offline back-off.
    for stderr in [
        "fatal: Authentication failed for 'https://h/r.git/'",
        " ! [remote rejected] main -> main (pre-receive hook declined)",
        "fatal: repository 'https://h/r.git/' not found",
    ] {
        assert_eq!(
            classify(&Err(git_failure(stderr))),
            Outcome::Failed,
            "{stderr}"
        );
    }
    let panicked = DaemonError::Panicked {
        step: "sync",
        message: "boom".into(),
    };
    assert_eq!(classify(&Err(panicked)), Outcome::Failed);
}

#[test]
fn delay_is_the_interval_with_jitter() {
    let i = Duration::from_secs(60);
    let max = Duration::from_secs(900);
    assert_eq!(next_sync_delay(i, 0, max, 0.5), i);
    assert_eq!(next_sync_delay(i, 0, max, 0.0), Duration::from_secs(54));
    assert!(next_sync_delay(i, 0, max, 0.999) < Duration::from_secs(66));
    assert!(next_sync_delay(i, 0, max, 0.999) > Duration::from_secs(65));
}

#[test]
fn offline_backs_off_exponentially_up_to_the_cap() {
    let i = Duration::from_secs(60);
    let max = Duration::from_secs(900);
    assert_eq!(next_sync_delay(i, 1, max, 0.5), Duration::from_secs(120));
    assert_eq!(next_sync_delay(i, 2, max, 0.5), Duration::from_secs(240));
    assert_eq!(next_sync_delay(i, 4, max, 0.5), Duration::from_secs(900));
    assert_eq!(next_sync_delay(i, 1000, max, 0.5), Duration::from_secs(900));
}

#[test]
fn cap_never_shortens_a_long_interval() {
    let i = Duration::from_secs(3600);
    assert_eq!(
        next_sync_delay(i, 3, Duration::from_secs(900), 0.5),
        Duration::from_secs(3600)
    );
}

#[test]
fn bad_unit_values_stay_within_bounds() {
    let b = Duration::from_secs(10);
    assert_eq!(jitter(b, f64::NAN), b);
    assert_eq!(jitter(b, -3.0), Duration::from_secs(9));
    assert_eq!(jitter(b, 7.0), Duration::from_secs(11));
}

#[test]
fn a_small_fleet_polls_every_second() {
    let minute = Duration::from_secs(60);
    for n in [1, 2, 5, 9] {
        assert_eq!(poll_period(n, 10, minute), Some(POLL_FLOOR), "{n} nodes");
    }
}

#[test]
fn the_poll_period_grows_with_the_fleet_to_stay_within_the_budget() {
    let minute = Duration::from_secs(60);
    // 10 nodes: 1 request/s each, 1/30 of it spent on full syncs.
    let p10 = poll_period(10, 10, minute).unwrap();
    assert!(
        (p10.as_secs_f64() - 1.0 / (1.0 - 2.0 / 60.0)).abs() < 1e-9,
        "{p10:?}"
    );
    let p50 = poll_period(50, 10, minute).unwrap();
    assert!(
        (p50.as_secs_f64() - 1.0 / (0.2 - 2.0 / 60.0)).abs() < 1e-9,
        "{p50:?}"
    );
    let p100 = poll_period(100, 10, minute).unwrap();
    assert!(
        (p100.as_secs_f64() - 1.0 / (0.1 - 2.0 / 60.0)).abs() < 1e-9,
        "{p100:?}"
    );
    // 1,000 nodes: 0.01 request/s each, less than their full syncs alone take.
    assert_eq!(poll_period(1000, 10, minute), None);
    // Whatever the fleet, all its requests stay within the budget.
    for n in [1u32, 3, 10, 30, 50, 100, 299] {
        if let Some(p) = poll_period(n, 10, minute) {
            let fleet = f64::from(n) * (1.0 / p.as_secs_f64() + 2.0 / 60.0);
            assert!(fleet <= 10.0 + 1e-9, "{n}: {fleet}");
        }
    }
}

#[test]
fn no_polls_without_a_budget_or_when_the_sync_comes_first() {
    assert_eq!(poll_period(3, 0, Duration::from_secs(60)), None);
    assert_eq!(poll_period(1, 10, Duration::from_secs(1)), None);
    assert_eq!(poll_period(1, 10, Duration::ZERO), None);
    assert_eq!(
        poll_period(0, 10, Duration::from_secs(60)),
        Some(POLL_FLOOR)
    );
}

#[test]
fn poll_jitter_spreads_a_fleet_started_together() {
    let p = Duration::from_secs(2);
    let spread: Vec<Duration> = [0.0, 0.25, 0.5, 0.75, 0.999]
        .iter()
        .map(|u| jitter(p, *u))
        .collect();
    assert_eq!(spread[0], Duration::from_millis(1800));
    assert_eq!(spread[2], p);
    assert!(spread.windows(2).all(|w| w[0] < w[1]));
    assert!(spread[4] < Duration::from_millis(2200));
}

#[test]
fn a_burst_is_pushed_once_after_the_last_append_within_a_bound() {
    let q = Duration::from_millis(500);
    let t0 = Duration::ZERO;
    let ms = Duration::from_millis;
    assert_eq!(push_deadline(t0, t0, q), ms(500));
    assert_eq!(push_deadline(t0, ms(300), q), ms(800));
    // A stream that never pauses is still pushed after 4 debounce periods.
    assert_eq!(push_deadline(t0, ms(1900), q), ms(2000));
    assert_eq!(push_deadline(t0, ms(10_000), q), ms(2000));
    assert_eq!(push_deadline(t0, t0, Duration::ZERO), t0);
}

#[test]
fn sync_now_waits_for_the_gap_after_the_last_sync() {
    let s = Duration::from_secs;
    assert_eq!(sync_now_at(s(10), None), s(10));
    assert_eq!(sync_now_at(s(10), Some(s(5))), s(10));
    assert_eq!(
        sync_now_at(s(10), Some(s(9) + Duration::from_millis(500))),
        s(10) + Duration::from_millis(500)
    );
}
