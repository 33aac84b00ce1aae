use super::*;

#[test]
fn stat_fields_follow_a_command_name_with_spaces_and_parentheses() {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice threads itrealvalue starttime ...
    let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 12345 67";
    let (cpu, start) = parse_stat(stat, 100.0, Some(1_700_000_000.0));
    assert_eq!(cpu, Some(4.0));
    assert_eq!(start, Some(1_700_000_010.0));
}

#[test]
fn stat_without_boot_time_has_no_start_and_garbage_has_nothing() {
    let stat = "42 (x) S 1 42 42 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000";
    assert_eq!(parse_stat(stat, 100.0, None), (Some(4.0), None));
    assert_eq!(
        parse_stat("no parenthesis here", 100.0, Some(1.0)),
        (None, None)
    );
    assert_eq!(parse_stat("1 (x) S", 100.0, Some(1.0)), (None, None));
}

#[test]
fn statm_and_btime() {
    assert_eq!(resident_pages("1000 250 30 4 0 80 0\n"), Some(250));
    assert_eq!(resident_pages("1000"), None);
    assert_eq!(
        boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
        Some(1_700_000_000.0)
    );
    assert_eq!(boot_time("cpu 1 2 3\n"), None);
}

#[test]
fn this_process_is_sampled_on_linux() {
    let s = sample();
    if cfg!(target_os = "linux") {
        assert!(s.resident_memory_bytes.is_some_and(|b| b > 0));
        assert!(s.open_fds.is_some_and(|n| n >= 3));
        assert!(s.cpu_seconds.is_some());
        assert!(s.start_time_unix.is_some_and(|t| t > 1_000_000_000.0));
    }
}
