use super::*;

fn repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    (dir, repo)
}

#[test]
fn edits_touch_only_their_paths_and_diff_finds_them() {
    let (_d, repo) = repo();
    let a = repo.blob(b"a").unwrap();
    let b = repo.blob(b"b").unwrap();
    let t1 = apply_edits(
        &repo,
        None,
        &[Edit::blob("x/one/a.txt", a), Edit::blob("y/b.txt", b)],
    )
    .unwrap();
    let y1 = subtree_at(&repo, Some(t1), "y").unwrap();
    let t2 = apply_edits(&repo, Some(t1), &[Edit::blob("x/one/c.txt", b)]).unwrap();
    assert_eq!(subtree_at(&repo, Some(t2), "y").unwrap(), y1);
    let changed = changed_entries(&repo, Some(t1), Some(t2)).unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].path, "x/one/c.txt");
    let t3 = apply_edits(&repo, Some(t2), &[Edit::remove("y/b.txt")]).unwrap();
    assert!(subtree_at(&repo, Some(t3), "y").unwrap().is_none());
}

#[test]
fn union_keeps_both_sides_and_reports_conflicts() {
    let (_d, repo) = repo();
    let a = repo.blob(b"a").unwrap();
    let b = repo.blob(b"b").unwrap();
    let left = apply_edits(&repo, None, &[Edit::blob("d/1", a), Edit::blob("d/2", a)]).unwrap();
    let right = apply_edits(&repo, None, &[Edit::blob("d/2", b), Edit::blob("d/3", b)]).unwrap();
    let mut conflicts = Vec::new();
    let u = union(&repo, Some(left), Some(right), &mut conflicts)
        .unwrap()
        .unwrap();
    assert_eq!(conflicts, vec!["d/2".to_string()]);
    assert_eq!(entry_at(&repo, Some(u), "d/2").unwrap().unwrap().0, a);
    assert_eq!(entry_at(&repo, Some(u), "d/3").unwrap().unwrap().0, b);
}
