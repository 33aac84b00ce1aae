use super::*;

fn id(dev: u64, ino: u64, born_ns: u64) -> RootIdentity {
    RootIdentity { dev, ino, born_ns }
}

#[test]
fn a_reused_inode_with_another_birth_time_is_another_root() {
    assert!(id(1, 7, 100).same_root(&id(1, 7, 100)));
    assert!(
        !id(1, 7, 100).same_root(&id(1, 7, 200)),
        "restored into a reused inode"
    );
    assert!(!id(1, 7, 100).same_root(&id(1, 8, 100)));
    assert!(!id(1, 7, 100).same_root(&id(2, 7, 100)));
}

#[test]
fn an_unknown_birth_time_falls_back_to_device_and_inode() {
    assert!(
        id(1, 7, 0).same_root(&id(1, 7, 100)),
        "recorded by an older version"
    );
    assert!(
        id(1, 7, 100).same_root(&id(1, 7, 0)),
        "no birth time on this file system"
    );
    assert!(!id(1, 7, 0).same_root(&id(1, 8, 100)));
}

#[test]
fn the_birth_time_survives_the_json_file_and_old_files_still_read() {
    let old: RootIdentity = serde_json::from_str(r#"{"dev":1,"ino":7}"#).unwrap();
    assert_eq!(old, id(1, 7, 0));
    let text = serde_json::to_string(&id(1, 7, 5)).unwrap();
    assert_eq!(
        serde_json::from_str::<RootIdentity>(&text).unwrap(),
        id(1, 7, 5)
    );
}

#[test]
fn recovery_appends_the_missing_seqs_in_order_and_stops_at_a_gap() {
    let mut c = OwnChain::new(2, "e2");
    assert_eq!(c.next(1, "e1", ""), Next::Skip);
    assert_eq!(c.next(2, "e2", "e1"), Next::Skip);
    assert_eq!(c.next(3, "e3", "e2"), Next::Take);
    assert_eq!(c.next(4, "e4", "e3"), Next::Take);
    assert_eq!(c.next(6, "e6", "e5"), Next::Stop);
    assert_eq!(c.through(), 4);
}

fn fork(seq: u64, ledger_id: &str, local_id: &str) -> Next {
    Next::Fork {
        seq,
        ledger_id: ledger_id.into(),
        local_id: local_id.into(),
    }
}

#[test]
fn a_different_event_at_the_local_head_is_a_fork() {
    let mut c = OwnChain::new(2, "e2");
    assert_eq!(c.next(2, "x2", "e1"), fork(2, "x2", "e2"));
}

#[test]
fn a_next_event_chained_to_another_head_is_a_fork() {
    let mut c = OwnChain::new(2, "e2");
    assert_eq!(c.next(3, "e3", "x2"), fork(2, "x2", "e2"));
    assert_eq!(c.through(), 2, "nothing taken");
}

#[test]
fn an_empty_log_takes_the_ledger_from_seq_one() {
    let mut c = OwnChain::new(0, "");
    assert_eq!(c.next(1, "e1", ""), Next::Take);
    assert_eq!(c.next(2, "e2", "e1"), Next::Take);
    assert_eq!(c.through(), 2);
}

#[test]
fn a_manifest_under_another_key_is_a_lost_key() {
    assert_eq!(check_key(None, "aa", 0), None);
    assert_eq!(check_key(Some("aa"), "aa", 7), None);
    let f = check_key(Some("bb"), "aa", 7).unwrap();
    assert_eq!(
        (f.ledger_seq, f.ledger_key.as_str(), f.local_key.as_str()),
        (7, "bb", "aa")
    );
}
