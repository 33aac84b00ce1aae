use super::*;

#[test]
fn a_ref_held_by_another_git_is_recognised() {
    assert!(ref_locked(
        "error: cannot lock ref 'refs/remotes/origin/main': is at de94 but expected e0bc"
    ));
    assert!(ref_locked(
        "fatal: Unable to create '/r/refs/remotes/origin/main.lock': File exists."
    ));
    assert!(!ref_locked("fatal: repository '/gone' does not exist"));
}

#[test]
fn rejections_are_told_apart_from_failures() {
    assert!(looks_rejected(
        "! [rejected]        main -> main (fetch first)\nerror: failed to push some refs"
    ));
    assert!(looks_rejected(
        "! [remote rejected] main -> main (failed to update ref)"
    ));
    assert!(!looks_rejected(
        "remote: Permission to o/r.git denied to bot."
    ));
}
