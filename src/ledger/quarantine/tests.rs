use super::*;

#[test]
fn names_are_flat_and_distinct() {
    let a = file_name("event_mesh/outbox/p/../x.ndjson", "b1");
    assert!(!a.contains('/'));
    assert!(a.starts_with("import-event_mesh.outbox.p....x.ndjson-"));
    assert_ne!(a, file_name("event_mesh/outbox/p/../x.ndjson", "b2"));
    assert_ne!(
        file_name("a/b", "b"),
        file_name("a.b", "b"),
        "distinct paths must not collide"
    );
}

fn rec(bytes: u64) -> Record {
    Record {
        file: format!("f{bytes}"),
        bytes,
        blob: String::new(),
        repeats: 0,
    }
}

#[test]
fn the_oldest_records_go_first_until_files_and_bytes_fit() {
    let caps = Caps {
        max_files: 3,
        max_bytes: 100,
    };
    let records: VecDeque<Record> = [10, 20, 30].into_iter().map(rec).collect();
    assert_eq!(to_prune(&records, caps), 0);
    let four: VecDeque<Record> = [10, 20, 30, 5].into_iter().map(rec).collect();
    assert_eq!(to_prune(&four, caps), 1, "one file too many");
    let heavy: VecDeque<Record> = [60, 30, 30].into_iter().map(rec).collect();
    assert_eq!(
        to_prune(&heavy, caps),
        1,
        "120 bytes: the 60-byte oldest goes"
    );
    let huge: VecDeque<Record> = [10, 20, 95].into_iter().map(rec).collect();
    assert_eq!(to_prune(&huge, caps), 2, "only the newest fits");
}

#[test]
fn buckets_are_node_directories_or_one_for_malformed_names() {
    assert_eq!(bucket("p/2026-01-01/1.ndjson"), "p");
    assert_eq!(bucket("p"), "p");
    assert_eq!(bucket("Not A Node!/x"), INVALID_BUCKET);
    assert_eq!(bucket(""), INVALID_BUCKET);
}

#[test]
fn a_file_is_one_record_listing_its_bad_lines_and_peers_are_pruned_to_their_caps() {
    let d = tempfile::tempdir().unwrap();
    let caps = Caps {
        max_files: 2,
        max_bytes: 1 << 20,
    };
    let mut q = Quarantine::new(d.path().join("q"), d.path().join("i.json"), caps);
    let items: Vec<Item> = (1..=150)
        .map(|n| Item {
            line: Some(n),
            reason: Reason::InvalidJson,
            detail: "not JSON".into(),
        })
        .collect();
    let name = q
        .put("p", "o/p/a.ndjson", "b1", b"x\n", &items, "s")
        .unwrap();
    let text = std::fs::read_to_string(d.path().join(format!("q/{name}.reason"))).unwrap();
    assert!(text.starts_with("invalid_json: not JSON\n"), "{text}");
    assert!(text.contains("items: 150\n") && text.contains("... and 50 more"));
    assert_eq!(q.repeat("p", "b1"), Some(name.clone()));
    assert_eq!(q.repeat("other", "b1"), None);
    let one = [Item {
        line: None,
        reason: Reason::UnexpectedPath,
        detail: "junk".into(),
    }];
    q.put("p", "o/p/b", "b2", b"y", &one, "s").unwrap();
    q.put("p", "o/p/c", "b3", b"z", &one, "s").unwrap();
    q.put("q", "o/q/c", "b3", b"z", &one, "s").unwrap();
    q.save().unwrap();
    assert!(
        !d.path().join(format!("q/{name}")).exists(),
        "oldest pruned"
    );
    assert!(!d.path().join(format!("q/{name}.reason")).exists());
    let usage = load_index(&d.path().join("i.json")).usage();
    assert_eq!(usage.len(), 2);
    assert_eq!((usage[0].files, usage[0].pruned), (2, 1));
    assert_eq!((usage[1].peer.as_str(), usage[1].files), ("q", 1));
    assert_eq!(std::fs::read_dir(d.path().join("q")).unwrap().count(), 6);
}
