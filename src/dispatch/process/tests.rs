use super::*;

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[test]
fn passes_stdin_and_env_and_captures_output() {
    let out = run(
        &argv(&["sh", "-c", "cat; printf %s \"$X\"; echo oops >&2; exit 3"]),
        &[("X".into(), "$(rm -rf /)".into())],
        Some(b"in;"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout, b"in;$(rm -rf /)");
    assert!(out.describe().contains("exit status 3: oops"));
}

#[test]
fn time_limit_kills_the_whole_group() {
    let t = Instant::now();
    let out = run(
        &argv(&["sh", "-c", "sleep 30 & sleep 30"]),
        &[],
        None,
        Duration::from_millis(200),
    )
    .unwrap();
    assert!(out.timed_out && !out.success());
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn missing_program_is_an_error() {
    assert!(
        run(
            &argv(&["/nonexistent/prog"]),
            &[],
            None,
            Duration::from_secs(1)
        )
        .is_err()
    );
    assert!(run(&[], &[], None, Duration::from_secs(1)).is_err());
}

#[test]
fn children_never_get_the_remote_token() {
    let cmd = command("env", &[], &[("GITMESH_EVENT_ID".into(), "evt_1".into())]);
    let envs: Vec<_> = cmd.get_envs().collect();
    for var in crate::git::cli::TOKEN_VARS {
        assert!(
            envs.contains(&(std::ffi::OsStr::new(var), None)),
            "{var} is removed from the child's environment: {envs:?}"
        );
    }
    assert!(envs.contains(&(
        std::ffi::OsStr::new("GITMESH_EVENT_ID"),
        Some(std::ffi::OsStr::new("evt_1"))
    )));
}
