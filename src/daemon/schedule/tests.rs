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
