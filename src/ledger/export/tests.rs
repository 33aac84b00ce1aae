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
