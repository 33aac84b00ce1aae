use super::*;

#[test]
fn names_are_flat_and_distinct() {
    let a = file_name("event_mesh/outbox/p/../x.ndjson", Some(3));
    assert!(!a.contains('/'));
    assert!(a.starts_with("import-event_mesh.outbox.p....x.ndjson-line3-"));
    assert_ne!(a, file_name("event_mesh/outbox/p/../x.ndjson", Some(4)));
    assert_ne!(
        file_name("a/b", None),
        file_name("a.b", None),
        "distinct paths must not collide"
    );
}
