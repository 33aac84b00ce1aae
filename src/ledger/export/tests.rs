use super::*;

fn line(seq: u64, day: &str, len: usize) -> Line {
    Line {
        seq,
        day: day.into(),
        bytes: vec![b'x'; len],
    }
}

#[test]
fn batches_split_on_size_and_day() {
    let lines = vec![
        line(1, "2026-01-01", 40),
        line(2, "2026-01-01", 40),
        line(3, "2026-01-01", 40),
        line(4, "2026-01-02", 10),
    ];
    let b = plan_batches(&lines, 100, 3000, |_| 0);
    let got: Vec<(String, u64, usize)> = b
        .iter()
        .map(|b| (b.dir.clone(), b.first_seq, b.lines.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-01-01".into(), 1, 2),
            ("2026-01-01".into(), 3, 1),
            ("2026-01-02".into(), 4, 1)
        ]
    );
}

#[test]
fn a_full_day_directory_continues_in_the_next() {
    let lines: Vec<Line> = (1..=3).map(|s| line(s, "2026-01-01", 60)).collect();
    let b = plan_batches(&lines, 100, 3, |d| if d == "2026-01-01" { 2 } else { 0 });
    let dirs: Vec<&str> = b.iter().map(|b| b.dir.as_str()).collect();
    assert_eq!(dirs, vec!["2026-01-01", "2026-01-01.1", "2026-01-01.1"]);
}

#[test]
fn heartbeat_only_changes_are_held_back() {
    let now = chrono::Utc::now();
    let old = Manifest {
        node_id: "a".into(),
        last_seen: crate::event::format_timestamp(now - chrono::Duration::seconds(10)),
        ..Manifest::default()
    };
    let desired = Manifest {
        last_seen: crate::event::format_timestamp(now),
        ..old.clone()
    };
    let hb = Duration::from_secs(100);
    assert_eq!(manifest_update(Some(&old), desired.clone(), now, hb), None);
    let later = now + chrono::Duration::seconds(200);
    assert!(manifest_update(Some(&old), desired.clone(), later, hb).is_some());
    let changed = Manifest {
        exported_through_seq: 5,
        ..desired
    };
    assert!(manifest_update(Some(&old), changed, now, hb).is_some());
}

fn state(exported_through_seq: u64, scan_offset: u64) -> ExportState {
    ExportState {
        exported_through_seq,
        scan_offset,
    }
}

#[test]
fn export_resumes_where_it_stopped_when_the_ledger_agrees() {
    let st = resume_point(&state(5, 900), 5, 8, 1000).unwrap();
    assert_eq!(st, state(5, 900));
}

#[test]
fn export_skips_what_the_ledger_already_holds_of_this_node() {
    // Exported by an earlier run whose state file was lost: not exported twice.
    let st = resume_point(&state(2, 300), 6, 8, 1000).unwrap();
    assert_eq!(st, state(6, 300));
}

#[test]
fn a_log_behind_the_ledger_refuses_to_export() {
    assert_eq!(resume_point(&state(2, 300), 6, 4, 1000), None);
}

#[test]
fn a_scan_offset_past_the_log_end_restarts_the_scan() {
    let st = resume_point(&state(3, 5000), 3, 3, 1000).unwrap();
    assert_eq!(st, state(3, 0));
}

#[test]
fn batch_names_carry_the_content_hash_and_old_names_still_parse() {
    let a = batch_file_name(5, b"one\n");
    let b = batch_file_name(5, b"two\n");
    assert_ne!(a, b);
    assert!(
        a.starts_with("000000000005.") && a.ends_with(".ndjson"),
        "{a}"
    );
    assert_eq!(batch_first_seq(&a), Some(5));
    assert_eq!(batch_first_seq("000000000007.ndjson"), Some(7));
    for bad in [
        "x.ndjson",
        "5.XYZ.ndjson",
        "5.0123.ndjson",
        ".ndjson",
        "5.json",
        "000000000001-000000000002.ndjson",
    ] {
        assert_eq!(batch_first_seq(bad), None, "{bad}");
    }
}
