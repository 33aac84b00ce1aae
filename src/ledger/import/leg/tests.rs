use super::*;
use crate::git::tree::MODE_BLOB;

fn oid(n: u8) -> Oid {
    Oid::from_bytes(&[n; 20]).unwrap()
}

fn added(path: &str, mode: i32) -> TreeChange {
    TreeChange {
        path: path.into(),
        oid: Some(oid(1)),
        mode,
        before: None,
    }
}

fn deleted(path: &str) -> TreeChange {
    TreeChange {
        path: path.into(),
        oid: None,
        mode: 0,
        before: Some(oid(2)),
    }
}

/// The verdict for `c` in node `me`'s import, nothing archived, no history start,
/// and peer `p` imported through seq 100.
fn verdict(c: &TreeChange, archived: &Archived) -> Triage {
    let shape = verify::classify(&c.path);
    triage(c, &shape, "me", archived, None, |node| {
        if node == "p" { 100 } else { 0 }
    })
}

#[test]
fn new_peer_files_are_read_and_own_files_skipped() {
    let none = Archived::default();
    assert_eq!(
        verdict(&added("p/2026-11-23/101.ndjson", MODE_BLOB), &none),
        Triage::Read(oid(1))
    );
    assert_eq!(
        verdict(&added("me/2026-11-23/1.ndjson", MODE_BLOB), &none),
        Triage::Skip
    );
    assert_eq!(verdict(&deleted("p/2026-11-23/x.txt"), &none), Triage::Skip);
}

#[test]
fn a_changed_or_deleted_peer_batch_is_a_rewrite_unless_compaction_archived_it() {
    let none = Archived::default();
    let gone = deleted("p/2026-11-23/5.ndjson");
    assert_eq!(
        verdict(&gone, &none),
        Triage::Rewrite {
            node: "p".into(),
            before: oid(2),
            now: None
        }
    );
    let archive = added("p/archive-2026-11/1-50.ndjson", MODE_BLOB);
    let archived = Archived::from_changes(std::slice::from_ref(&archive));
    assert_eq!(verdict(&gone, &archived), Triage::Skip);
    // A batch changed in place is a rewrite even when an archive covers it.
    let changed = TreeChange {
        oid: Some(oid(3)),
        mode: MODE_BLOB,
        ..gone.clone()
    };
    assert_eq!(
        verdict(&changed, &archived),
        Triage::Rewrite {
            node: "p".into(),
            before: oid(2),
            now: Some(oid(3))
        }
    );
}

#[test]
fn an_archive_of_events_already_imported_is_skipped() {
    let none = Archived::default();
    let old = added("p/archive-2026-11/1-100.ndjson", MODE_BLOB);
    assert_eq!(verdict(&old, &none), Triage::Skip);
    let newer = added("p/archive-2026-11/1-101.ndjson", MODE_BLOB);
    assert_eq!(verdict(&newer, &none), Triage::Read(oid(1)));
}

#[test]
fn bad_paths_links_and_submodules_are_rejected_unread() {
    let none = Archived::default();
    let Triage::Reject {
        id_only, reason, ..
    } = verdict(&added("p/a/b/c.ndjson", MODE_BLOB), &none)
    else {
        panic!("a path too deep is rejected");
    };
    assert_eq!((id_only, reason), (false, Reason::UnexpectedPath));
    assert_eq!(
        verdict(&added("p/2026-11-23/101.ndjson", MODE_LINK), &none),
        Triage::Reject {
            oid: oid(1),
            id_only: false,
            reason: Reason::Symlink,
            detail: "symbolic links are not read".into()
        }
    );
    assert_eq!(
        verdict(&added("p/2026-11-23/101.ndjson", MODE_COMMIT), &none),
        Triage::Reject {
            oid: oid(1),
            id_only: true,
            reason: Reason::NotAFile,
            detail: "a submodule entry".into()
        }
    );
}

#[test]
fn a_peer_reads_at_least_one_file_and_stops_at_either_cap() {
    use super::super::run::{ReadCaps, ReadCount};
    let caps = ReadCaps {
        files: 2,
        bytes: 100,
    };
    let count = |files, bytes| ReadCount { files, bytes };
    assert!(!over_read_cap(count(0, 0), caps));
    assert!(!over_read_cap(count(1, 99), caps));
    assert!(over_read_cap(count(2, 0), caps), "files cap");
    assert!(over_read_cap(count(1, 100), caps), "bytes cap");
    let tiny = ReadCaps { files: 1, bytes: 1 };
    assert!(
        !over_read_cap(count(0, 0), tiny),
        "the first file always goes"
    );
}

#[test]
fn a_resumed_leg_visits_new_files_and_only_what_each_peer_left() {
    let deferred: BTreeMap<String, u64> = [("p".to_string(), 3)].into();
    assert!(visit(10, 10, "q", &deferred), "past the resume point");
    assert!(!visit(5, 10, "q", &deferred), "q finished its files");
    assert!(!visit(2, 10, "p", &deferred), "p read this one");
    assert!(visit(3, 10, "p", &deferred), "p left it");
    assert!(visit(9, 10, "p", &deferred));
}
