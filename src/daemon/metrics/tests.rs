use super::*;
use crate::daemon::PassReport;
use crate::dispatch::DispatchReport;
use crate::ops::sync::SyncReport;

/// Asserts that each of `lines` stands in `text` as a whole line.
fn assert_has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
    }
}

#[test]
fn sync_reports_are_summed() {
    let mut m = Metrics::default();
    let mut r = SyncReport::default();
    r.import.imported_events = 3;
    r.import.quarantined = 2;
    r.export.exported_events = 2;
    r.push.pushed = true;
    r.push.attempts = 3;
    r.dispatch = Some(DispatchReport {
        processed_events: 4,
        followup_events: 1,
        ..Default::default()
    });
    m.absorb(&PassReport::Sync(Box::new(r)));
    let mut quiet = SyncReport::default();
    quiet.push.attempts = 1;
    m.absorb(&PassReport::Sync(Box::new(quiet)));
    m.absorb(&PassReport::Dispatch(DispatchReport {
        processed_events: 5,
        ..Default::default()
    }));
    assert_eq!((m.imported, m.quarantined, m.exported), (3, 2, 2));
    assert_eq!((m.dispatched, m.followups, m.push_retries), (9, 1, 2));
}

#[test]
fn text_has_help_type_and_escaped_labels() {
    let mut m = Metrics::default();
    m.log.by_topic.insert("rout\"ing".into(), 2);
    m.sync.record(Outcome::Offline, 0.25, None);
    let text = render("n1", &m, &Snapshot::default(), Format::Prometheus).unwrap();
    assert_has_lines(
        &text,
        &[
            "# TYPE gitmesh_log_events gauge",
            "gitmesh_log_events{topic=\"rout\\\"ing\"} 2",
            "gitmesh_sync_runs_total{result=\"offline\"} 1",
            "gitmesh_sync_last_duration_seconds 0.25",
            "gitmesh_sync_last_result{result=\"offline\"} 1",
        ],
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn openmetrics_is_served_only_to_scrapers_that_ask_for_it() {
    let prometheus_server =
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    assert_eq!(
        Format::negotiate(Some(prometheus_server)),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate(None), Format::Prometheus);
    assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text; q=0, text/plain")),
        Format::Prometheus
    );
}

#[test]
fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
    let mut m = Metrics::default();
    m.sync.record(Outcome::Ok, 0.5, None);
    let text = render("n1", &m, &Snapshot::default(), Format::OpenMetrics).unwrap();
    assert_has_lines(
        &text,
        &[
            "# TYPE gitmesh_sync_runs counter",
            "gitmesh_sync_runs_total{result=\"ok\"} 1",
            "# UNIT gitmesh_sync_last_duration_seconds seconds",
        ],
    );
    assert!(text.contains("gitmesh_info{node_id=\"n1\","));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn pass_durations_fill_cumulative_buckets() {
    let mut m = Metrics::default();
    m.sync.record(Outcome::Ok, 0.02, None);
    m.sync.record(Outcome::Offline, 3.0, None);
    let text = render("n1", &m, &Snapshot::default(), Format::Prometheus).unwrap();
    assert_has_lines(
        &text,
        &[
            "# TYPE gitmesh_sync_duration_seconds histogram",
            "gitmesh_sync_duration_seconds_bucket{le=\"0.025\"} 1",
            "gitmesh_sync_duration_seconds_bucket{le=\"5\"} 2",
            "gitmesh_sync_duration_seconds_bucket{le=\"+Inf\"} 2",
            "gitmesh_sync_duration_seconds_count 2",
            "gitmesh_dispatch_duration_seconds_count 0",
        ],
    );
}
