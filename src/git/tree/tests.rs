use super::*;

/// An empty repository holding two blobs, "a" and "b".
fn repo() -> (tempfile::TempDir, Repository, Oid, Oid) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    let a = repo.blob(b"a").unwrap();
    let b = repo.blob(b"b").unwrap();
    (dir, repo, a, b)
}

/// The tree `edits` make of `base`.
fn edited(repo: &Repository, base: Option<Oid>, edits: &[Edit]) -> Oid {
    apply_edits(repo, base, edits).unwrap()
}

#[test]
fn edits_touch_only_their_paths_and_diff_finds_them() {
    let (_d, repo, a, b) = repo();
    let t1 = edited(
        &repo,
        None,
        &[Edit::blob("x/one/a.txt", a), Edit::blob("y/b.txt", b)],
    );
    let y1 = subtree_at(&repo, Some(t1), "y").unwrap();
    let t2 = edited(&repo, Some(t1), &[Edit::blob("x/one/c.txt", b)]);
    assert_eq!(subtree_at(&repo, Some(t2), "y").unwrap(), y1);
    let changed = changed_entries(&repo, Some(t1), Some(t2)).unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].path, "x/one/c.txt");
    let t3 = edited(&repo, Some(t2), &[Edit::remove("y/b.txt")]);
    assert!(subtree_at(&repo, Some(t3), "y").unwrap().is_none());
}

#[test]
fn union_keeps_both_sides_and_reports_conflicts() {
    let (_d, repo, a, b) = repo();
    let left = edited(&repo, None, &[Edit::blob("d/1", a), Edit::blob("d/2", a)]);
    let right = edited(&repo, None, &[Edit::blob("d/2", b), Edit::blob("d/3", b)]);
    let mut conflicts = Vec::new();
    let u = union(&repo, Some(left), Some(right), &mut conflicts)
        .unwrap()
        .unwrap();
    assert_eq!(conflicts, vec!["d/2".to_string()]);
    assert_eq!(entry_at(&repo, Some(u), "d/2").unwrap().unwrap().0, a);
    assert_eq!(entry_at(&repo, Some(u), "d/3").unwrap().unwrap().0, b);
}

#[test]
fn diff_entries_reports_additions_modifications_and_deletions() {
    let (_d, repo, a, b) = repo();
    let before = [
        Edit::blob("p/1/a", a),
        Edit::blob("p/1/b", a),
        Edit::blob("p/2/a", a),
        Edit::blob("q/x", a),
        Edit::blob("s", a),
    ];
    let after = [
        Edit::blob("p/1/a", b),
        Edit::remove("p/1/b"),
        Edit::remove("q/x"),
        Edit::remove("s"),
        Edit::blob("s/now-a-dir", b),
        Edit::blob("r/new", b),
    ];
    let t1 = edited(&repo, None, &before);
    let t2 = edited(&repo, Some(t1), &after);
    let got: Vec<(String, Option<Oid>, Option<Oid>)> = diff_entries(&repo, Some(t1), Some(t2))
        .unwrap()
        .into_iter()
        .map(|c| (c.path, c.oid, c.before))
        .collect();
    let want = vec![
        ("p/1/a".to_string(), Some(b), Some(a)),
        ("p/1/b".to_string(), None, Some(a)),
        ("r/new".to_string(), Some(b), None),
        ("s/now-a-dir".to_string(), Some(b), None),
        ("s".to_string(), None, Some(a)),
        ("q/x".to_string(), None, Some(a)),
    ];
    assert_eq!(got, want);
    assert!(diff_entries(&repo, Some(t2), Some(t2)).unwrap().is_empty());
    // Only what the newer tree holds, for `changed_entries`.
    let changed: Vec<String> = changed_entries(&repo, Some(t1), Some(t2))
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(changed, ["p/1/a", "r/new", "s/now-a-dir"]);
}

/// A tree `levels` directories deep (`a/a/...`) holding `blob` at the bottom.
fn deep(repo: &Repository, levels: usize, blob: Oid) -> Oid {
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert("f", blob, MODE_BLOB).unwrap();
    let mut t = tb.write().unwrap();
    for _ in 0..levels {
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("a", t, MODE_TREE).unwrap();
        t = tb.write().unwrap();
    }
    t
}

#[test]
fn trees_nested_thousands_deep_are_walked_to_the_limit_on_a_small_stack() {
    let (d, repo, a, b) = repo();
    let old = deep(&repo, 5000, a);
    let new = deep(&repo, 5000, b);
    let sibling = edited(&repo, Some(new), &[Edit::blob("z.txt", a)]);
    // 64 KiB of stack: a walk that recursed per level would overflow it.
    let (diff, conflicts, merged) = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let repo = Repository::open_bare(repo.path()).unwrap();
            let diff = diff_entries(&repo, Some(old), Some(sibling)).unwrap();
            let mut conflicts = Vec::new();
            let merged = union(&repo, Some(old), Some(sibling), &mut conflicts).unwrap();
            (diff, conflicts, merged)
        })
        .unwrap()
        .join()
        .unwrap();
    let depth = |p: &str| p.split('/').count();
    assert_eq!(diff.len(), 2, "{diff:?}");
    assert_eq!(diff[0].mode, MODE_TREE);
    assert_eq!(depth(&diff[0].path), MAX_TREE_DEPTH);
    assert_eq!(diff[1].path, "z.txt");
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(depth(&conflicts[0]), MAX_TREE_DEPTH);
    let merged = merged.unwrap();
    assert!(
        entry_at(&repo_at(&d), Some(merged), "z.txt")
            .unwrap()
            .is_some()
    );
}

fn repo_at(d: &tempfile::TempDir) -> Repository {
    Repository::open_bare(d.path()).unwrap()
}
