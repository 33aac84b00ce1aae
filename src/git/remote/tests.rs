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

#[test]
fn ls_remote_output_is_parsed_and_bounded() {
    let a = "a".repeat(40);
    let text = format!(
        "{a}\trefs/heads/main\n{}\trefs/heads/gitmesh/n2\n",
        "B".repeat(40)
    );
    let refs = parse_ls_remote(&text).unwrap();
    assert_eq!(
        refs,
        vec![
            ("refs/heads/main".to_string(), a.clone()),
            ("refs/heads/gitmesh/n2".to_string(), "b".repeat(40)),
        ]
    );
    assert_eq!(parse_ls_remote("").unwrap(), vec![]);
    for bad in [
        format!("{a} refs/heads/main"),
        format!("{}\trefs/heads/main", "z".repeat(40)),
        format!("{}\trefs/heads/main", "a".repeat(39)),
        format!("{a}\tHEAD"),
    ] {
        assert!(parse_ls_remote(&bad).is_err(), "{bad}");
    }
    let flood = format!("{a}\trefs/heads/x\n").repeat(MAX_ADVERTISED_REFS + 1);
    assert!(parse_ls_remote(&flood).unwrap_err().contains("more than"));
}
