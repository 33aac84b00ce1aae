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
