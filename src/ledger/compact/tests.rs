use super::*;

fn m(id: &str, age_days: i64, through: &[(&str, u64)]) -> Manifest {
    let now = chrono::Utc::now();
    Manifest {
        node_id: id.into(),
        last_seen: crate::event::format_timestamp(now - chrono::Duration::days(age_days)),
        imported_through: through.iter().map(|(n, s)| (n.to_string(), *s)).collect(),
        ..Manifest::default()
    }
}

#[test]
fn the_watermark_is_the_slowest_live_peer_and_stale_peers_are_reported() {
    let ms = vec![
        m("me", 0, &[]),
        m("fast", 0, &[("me", 90)]),
        m("slow", 1, &[("me", 40)]),
        m("gone", 60, &[("me", 3)]),
    ];
    let (wm, held, stale) = watermark(
        "me",
        &ms,
        chrono::Utc::now(),
        Duration::from_secs(30 * 86400),
    );
    assert_eq!(wm, Some(40));
    assert_eq!(held, vec![("slow".to_string(), 40)]);
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].node_id, "gone");
    // A live peer that never imported this node holds everything back.
    let ms = vec![m("new", 0, &[])];
    assert_eq!(
        watermark("me", &ms, chrono::Utc::now(), Duration::from_secs(60)).0,
        Some(0)
    );
}

#[test]
fn only_batches_wholly_below_the_watermark_are_archivable() {
    let b = |first| BatchFile {
        dir: "2026-01-01".into(),
        name: format!("{first:012}.ndjson"),
        first_seq: first,
    };
    let batches = vec![b(1), b(11), b(21)];
    assert_eq!(archivable(&batches, 30, 0), 0);
    assert_eq!(archivable(&batches, 30, 15), 1);
    assert_eq!(archivable(&batches, 30, 20), 2);
    assert_eq!(archivable(&batches, 30, 29), 2);
    assert_eq!(archivable(&batches, 30, 30), 3);
}

#[test]
fn import_skips_old_days_and_fully_imported_archives() {
    assert!(skip_on_import(
        "a/2026-01-01/000000000001.ndjson",
        Some("2026-02-01"),
        0
    ));
    assert!(!skip_on_import(
        "a/2026-02-01/000000000001.ndjson",
        Some("2026-02-01"),
        0
    ));
    assert!(skip_on_import(
        "a/2026-01-31.1/000000000001.ndjson",
        Some("2026-02-01"),
        0
    ));
    assert!(!skip_on_import(
        "a/2026-01-01/000000000001.ndjson",
        None,
        99
    ));
    let arch = "a/archive-2026-01/000000000001-000000000050.ndjson";
    assert!(skip_on_import(arch, None, 50));
    assert!(!skip_on_import(arch, None, 49));
    assert!(skip_on_import(arch, Some("2026-02-10"), 0));
    assert!(!skip_on_import(arch, Some("2026-01-10"), 0));
    assert_eq!(
        archive_range("000000000001-000000000050.ndjson"),
        Some((1, 50))
    );
    assert!(!skip_on_import("a/evt_x.json", Some("2030-01-01"), 0));
}

#[test]
fn automatic_compaction_waits_for_half_a_threshold_of_archivable_batches() {
    assert_eq!(auto_min_archivable(1000), 500);
    assert_eq!(auto_min_archivable(3), 1);
    // A threshold of 1 still archives; 0 never reaches here (compaction is off).
    assert_eq!(auto_min_archivable(1), 1);
}
