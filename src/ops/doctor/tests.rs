use super::*;

#[test]
fn git_versions_are_parsed_and_compared() {
    assert_eq!(parse_git_version("git version 2.39.5\n"), Some((2, 39)));
    assert_eq!(
        parse_git_version("git version 2.30.0.windows.1"),
        Some((2, 30))
    );
    assert_eq!(parse_git_version("hub version 1"), None);
    assert!(Some((2, 30)) < Some(MIN_GIT) && Some((2, 43)) >= Some(MIN_GIT));
}

#[test]
fn each_remote_failure_has_its_fix() {
    assert!(remote_fix(Some(RemoteFailure::Auth), false).contains("credential"));
    assert!(remote_fix(Some(RemoteFailure::Rejected), true).contains("write access"));
    assert!(remote_fix(Some(RemoteFailure::NotFound), false).contains("[ledger] remote"));
    assert!(remote_fix(Some(RemoteFailure::Unreachable), false).contains("out of reach"));
    assert!(remote_fix(Some(RemoteFailure::Timeout), false).contains("[sync] remote_timeout"));
}

#[test]
fn disk_and_clock_fail_past_their_limits() {
    assert!(disk_check(MIN_FREE_BYTES, 1 << 40).ok);
    let low = disk_check(MIN_FREE_BYTES - 1, 1 << 40);
    assert!(!low.ok && low.fix.is_some());
    assert!(clock_check(None).ok);
    assert!(
        clock_check(Some(-3600)).ok,
        "a remote commit in the past is normal"
    );
    assert!(clock_check(Some(MAX_CLOCK_AHEAD_SECS)).ok);
    assert!(!clock_check(Some(MAX_CLOCK_AHEAD_SECS + 1)).ok);
}
