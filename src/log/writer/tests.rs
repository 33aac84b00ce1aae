use super::*;
use crate::log::testutil::env;
use crate::paths::NodePaths;

#[test]
fn a_parked_index_catches_up_with_appends_made_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::new(dir.path());
    let log = EventLog::new(&paths, "n1");
    let a = env("n1", 1, "", 1);
    let mut w = log.writer().unwrap();
    w.append(std::slice::from_ref(&a)).unwrap();
    assert!(w.contains(&a.event_id).unwrap());
    let parked = w.park();
    // Someone else appends while the lock is free.
    let b = env("peer", 7, "", 2);
    log.writer()
        .unwrap()
        .append(std::slice::from_ref(&b))
        .unwrap();
    let mut w = log.unpark(parked).unwrap();
    assert!(w.contains(&a.event_id).unwrap());
    assert!(w.contains(&b.event_id).unwrap());
    assert_eq!(w.get(&b.event_id).unwrap().unwrap(), b);
    assert_eq!(w.head().event_count, 2);
}
