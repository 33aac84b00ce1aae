use super::*;

#[test]
fn urls_with_credentials_are_redacted() {
    let s = redact("fatal: unable to access 'https://user:pw@github.com/o/r.git/': 403");
    assert!(!s.contains("pw"), "{s}");
    assert!(s.contains("github.com/o/r.git"), "{s}");
}

#[test]
fn only_the_user_part_of_a_url_is_redacted() {
    assert_eq!(
        redact("fatal: Authentication failed for 'https://user:secret@host/o/r.git/'"),
        "fatal: Authentication failed for 'https://***@host/o/r.git/'"
    );
    // An `@` in the path is not a credential.
    assert_eq!(
        redact("fetching https://host/o/r@v1.git"),
        "fetching https://host/o/r@v1.git"
    );
}

#[test]
fn the_token_goes_only_over_https_to_its_host() {
    let gh = "https://github.com/o/r.git";
    assert_eq!(token_use(gh, None, false), TokenUse::Send);
    assert_eq!(
        token_use("HTTPS://GitHub.com:443/o/r", None, false),
        TokenUse::Send
    );
    assert_eq!(
        token_use("http://github.com/o/r.git", None, false),
        TokenUse::NotHttps
    );
    assert_eq!(
        token_use("git@github.com:o/r.git", None, false),
        TokenUse::NotHttps
    );
    assert_eq!(token_use("/srv/mesh.git", None, false), TokenUse::NotHttps);
    assert_eq!(
        token_use("https://evil.example/o/r", None, false),
        TokenUse::OtherHost
    );
    // A look-alike host is another host.
    assert_eq!(
        token_use("https://github.com.evil.example/r", None, false),
        TokenUse::OtherHost
    );
    assert_eq!(
        token_use("https://x@evil.example/github.com", None, false),
        TokenUse::OtherHost
    );
    let own = Some("git.example.com");
    assert_eq!(
        token_use("https://git.example.com/r", own, false),
        TokenUse::Send
    );
    assert_eq!(
        token_use("http://git.example.com/r", own, false),
        TokenUse::NotHttps
    );
    assert_eq!(
        token_use("https://127.0.0.1:8443/r", Some("127.0.0.1"), false),
        TokenUse::Send
    );
    assert_eq!(
        token_use("https://[::1]:8443/r", Some("::1"), false),
        TokenUse::Send
    );
    // A configured credential helper wins over the variable.
    assert_eq!(token_use(gh, None, true), TokenUse::Helper);
}

#[test]
fn url_hosts_drop_user_and_port() {
    assert_eq!(
        url_host("https://u:p@Host.Example:8443/x").as_deref(),
        Some("host.example")
    );
    assert_eq!(url_host("https://[::1]:80/x").as_deref(), Some("::1"));
    assert_eq!(url_host("no url"), None);
}

#[test]
fn network_commands_are_told_from_local_ones() {
    assert_eq!(
        RemoteOp::of(&["fetch", "--quiet", "origin", "x"]),
        Some(RemoteOp::Fetch)
    );
    assert_eq!(
        RemoteOp::of(&["-c", "pack.window=0", "push", "--quiet", "origin"]),
        Some(RemoteOp::Push)
    );
    assert_eq!(
        RemoteOp::of(&["ls-remote", "--heads", "origin"]),
        Some(RemoteOp::LsRemote)
    );
    assert_eq!(RemoteOp::of(&["config", "--get", "fetch"]), None);
    assert_eq!(RemoteOp::of(&["-c", "push", "gc"]), None);
    assert_eq!(RemoteOp::of(&[]), None);
}

#[test]
fn capped_reads_keep_up_to_the_cap_and_count_the_rest() {
    let mut kept = Vec::new();
    assert_eq!(keep_within(&mut kept, b"abcd", 6), 0);
    assert_eq!(keep_within(&mut kept, b"efgh", 6), 2);
    assert_eq!(kept, b"abcdef");
    assert_eq!(keep_within(&mut kept, b"ijk", 6), 3);
    assert_eq!(keep_within(&mut kept, b"", 6), 0);
    assert_eq!(kept.len(), 6);
    let mut none = Vec::new();
    assert_eq!(keep_within(&mut none, b"xy", 0), 2);
    assert!(none.is_empty());
}

#[test]
fn the_stdout_cap_holds_the_largest_advertisement_the_parser_accepts() {
    // The most refs `parse_ls_remote` accepts, each with the longest name and oid it takes.
    let max = super::super::remote::MAX_ADVERTISED_REFS;
    let line = |i: usize| format!("{}\trefs/heads/{:0>1013}\n", "a".repeat(64), i);
    let text: String = (0..max).map(line).collect();
    assert_eq!(line(0).len(), 64 + 1 + 1024 + 1);
    assert_eq!(
        super::super::remote::parse_ls_remote(&text).unwrap().len(),
        max
    );
    assert!(text.len() < STDOUT_CAP, "{} >= {STDOUT_CAP}", text.len());
    // And not much more: a flood is stopped within a few MiB of it.
    assert!(STDOUT_CAP - text.len() <= 2 << 20);
}

#[test]
fn a_timeout_says_what_ran_where_for_how_long_and_which_key() {
    let e = GitError::Timeout {
        args: "fetch --quiet origin".into(),
        path: "/n/state/github_coordination".into(),
        after: Duration::from_secs(120),
    };
    assert_eq!(
        e.to_string(),
        "`git fetch --quiet origin` in /n/state/github_coordination gave no answer \
         within 120 s ([sync] remote_timeout); killed"
    );
    assert!(e.is_unreachable());
    assert_eq!(e.remote_failure().map(|f| f.kind()), Some("timeout"));
    let over = GitError::Oversized {
        args: "ls-remote --heads origin".into(),
        path: "/r".into(),
        cap: STDOUT_CAP,
    };
    assert!(
        over.to_string()
            .contains(&format!("more than {STDOUT_CAP} bytes"))
    );
    assert!(!over.is_unreachable());
    assert_eq!(over.remote_failure().map(|f| f.kind()), Some("git"));
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).stdin(Stdio::null());
    cmd
}

/// Whether any process is left in the process group `pgid` (zombies count until reaped).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists; nothing is sent.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

#[test]
fn a_child_past_its_deadline_is_killed_with_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // The shell records its pid (the group's id) and waits on a grandchild.
    let script = format!("echo $$ > {}; sleep 30 & wait", pidfile.display());
    let limits = Limits {
        timeout: Duration::from_secs(1),
        stdout_cap: 1024,
        stderr_keep: 1024,
    };
    let started = Instant::now();
    let got = run_bounded(sh(&script), &limits).unwrap();
    let took = started.elapsed();
    assert_eq!(got.ending, Ending::TimedOut);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let pgid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The orphaned `sleep` is reaped by init shortly after the kill.
    let mut alive = group_alive(pgid);
    for _ in 0..100 {
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        alive = group_alive(pgid);
    }
    assert!(
        !alive,
        "process group {pgid} still has members after the kill"
    );
}

#[test]
fn a_child_flooding_stdout_is_killed_at_the_cap() {
    let limits = Limits {
        timeout: Duration::from_secs(20),
        stdout_cap: 100_000,
        stderr_keep: 1024,
    };
    let started = Instant::now();
    let got = run_bounded(sh("yes gitmesh"), &limits).unwrap();
    assert_eq!(got.ending, Ending::StdoutOver);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_flood_on_stderr_is_drained_counted_and_does_not_block_the_child() {
    let limits = Limits {
        timeout: Duration::from_secs(20),
        stdout_cap: 1024,
        stderr_keep: 1000,
    };
    // 1 MB on stderr would fill a pipe nobody reads and hang the child.
    let got = run_bounded(sh("head -c 1000000 /dev/zero >&2; echo done"), &limits).unwrap();
    assert!(matches!(got.ending, Ending::Exited(s) if s.success()));
    assert_eq!(got.stdout, b"done\n");
    assert_eq!(got.stderr.len(), 1000);
    assert_eq!(got.stderr_dropped, 999_000);
}

#[test]
fn a_child_that_exits_in_time_gives_its_status_and_output() {
    let got = run_bounded(
        sh("printf out; printf err >&2; exit 3"),
        &Limits::remote(Duration::from_secs(20)),
    )
    .unwrap();
    assert_eq!(
        match got.ending {
            Ending::Exited(s) => s.code(),
            _ => None,
        },
        Some(3)
    );
    assert_eq!(got.stdout, b"out");
    assert_eq!(got.stderr, b"err");
    assert_eq!(got.stderr_dropped, 0);
}
