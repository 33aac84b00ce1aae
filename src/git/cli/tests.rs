use super::*;

#[test]
fn urls_with_credentials_are_redacted() {
    let s = redact("fatal: unable to access 'https://user:pw@github.com/o/r.git/': 403");
    assert!(!s.contains("pw"), "{s}");
    assert!(s.contains("github.com/o/r.git"), "{s}");
}

#[test]
fn unreachable_phrases() {
    assert!(looks_unreachable(
        "fatal: Could not read from remote repository."
    ));
    // What `git fetch` prints when git daemon, at its connection limit, resets the connection.
    assert!(looks_unreachable(
        "fatal: read error: Connection reset by peer"
    ));
    assert!(!looks_unreachable(
        "! [rejected] main -> main (fetch first)"
    ));
}
