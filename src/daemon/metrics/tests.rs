use super::*;
use serde_json::json;

#[test]
fn sync_reports_are_summed() {
    let mut m = Metrics::default();
    m.absorb_sync_report(&json!({
        "import": {"imported_events": 3, "quarantined": ["a", "b"]},
        "dispatch": {"processed_events": 4, "followup_events": 1},
        "export": {"exported_events": 2},
        "push": {"pushed": true, "attempts": 3, "offline": false}
    }));
    m.absorb_sync_report(&json!({"push": {"attempts": 1}}));
    assert_eq!((m.imported, m.quarantined, m.exported), (3, 2, 2));
    assert_eq!((m.dispatched, m.followups, m.push_retries), (4, 1, 2));
}

#[test]
fn text_has_help_type_and_escaped_labels() {
    let mut m = Metrics::default();
    m.log.by_topic.insert("rout\"ing".into(), 2);
    m.sync.record(Outcome::Offline, 0.25, None);
    let text = render("n1", &m, &Snapshot::default());
    assert!(text.contains("# TYPE gitmesh_log_events gauge\n"));
    assert!(text.contains("gitmesh_log_events{topic=\"rout\\\"ing\"} 2\n"));
    assert!(text.contains("gitmesh_sync_runs_total{result=\"offline\"} 1\n"));
    assert!(text.contains("gitmesh_sync_last_duration_seconds 0.25\n"));
    assert!(text.contains("gitmesh_sync_last_result{result=\"offline\"} 1\n"));
    assert!(text.ends_with('\n'));
}
