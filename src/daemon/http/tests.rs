use super::*;

#[test]
fn stream_query_reads_filters_patterns_and_the_resume_id() {
    let q = stream_query(
        "topic=routing&type=route.%2A&pattern=routing.%2A%2A&pattern=*.x&last_event_id=evt_1",
    )
    .unwrap();
    assert_eq!(q.filter.topic.as_deref(), Some("routing"));
    assert_eq!(q.filter.event_type.as_deref(), Some("route.*"));
    assert_eq!(q.filter.patterns, ["routing.**", "*.x"]);
    assert_eq!(q.last_event_id.as_deref(), Some("evt_1"));
    assert!(stream_query("").unwrap().filter.patterns.is_empty());
}

#[test]
fn stream_query_names_what_it_refuses() {
    let e = stream_query("topic=a&limit=3").unwrap_err();
    assert!(e.contains("\"limit\""), "{e}");
    let e = stream_query("topic=%FF").unwrap_err();
    assert!(e.contains("\"topic\""), "{e}");
}
