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
