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
    let unreachable = crate::git::GitError::Command {
        args: "fetch origin".into(),
        path: "ledger".into(),
        stderr: "Could not resolve host".into(),
        unreachable: true,
    };
    let offline = pass_error(OpsError::Ledger(unreachable.into()));
    assert_eq!(classify(&Err(offline)), Outcome::Offline);
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
