use crate::log::EventLog;
use crate::log::testutil::env;
use crate::paths::NodePaths;

/// Own events 1..=n of n1, chained; each with a payload of `pad` bytes.
fn chain(n: u64, pad: usize) -> Vec<crate::event::Envelope> {
    let mut prev = String::new();
    (1..=n)
        .map(|seq| {
            let mut e = env("n1", seq, &prev, seq);
            e.payload.insert("pad".into(), "x".repeat(pad).into());
            prev = e.event_id.clone();
            e
        })
        .collect()
}

#[test]
fn a_committed_stream_is_visible_and_an_aborted_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::new(dir.path());
    let log = EventLog::new(&paths, "n1");
    let events = chain(6, 300_000);
    let mut w = log.writer().unwrap();
    let mut b = w.stream_begin();
    for e in &events[..3] {
        w.stream_push(&mut b, e).unwrap();
    }
    assert_eq!(b.next_seq(), 4);
    // Nothing counts before the commit, though lines reached the file.
    assert_eq!(w.head().event_count, 0);
    assert!(!w.contains(&events[0].event_id).unwrap());
    assert_eq!(w.stream_commit(b).unwrap(), 3);
    assert_eq!(w.head().own_seq, 3);
    assert_eq!(w.get(&events[2].event_id).unwrap().unwrap(), events[2]);
    let len = w.head().log_len;

    // Over 1 MiB pushed (so written), then abandoned: cut away again.
    let mut b = w.stream_begin();
    for e in &events[3..] {
        w.stream_push(&mut b, e).unwrap();
    }
    w.stream_abort(b);
    assert_eq!(w.head().log_len, len);
    drop(w);
    let mut w = log.writer().unwrap();
    assert_eq!(w.head().event_count, 3);
    assert!(!w.contains(&events[4].event_id).unwrap());
    assert_eq!(log.end_offset().unwrap(), len);
    // A gap in the own seqs is refused before anything is written.
    let mut b = w.stream_begin();
    assert!(w.stream_push(&mut b, &events[4]).is_err());
}

#[test]
fn a_stream_cut_short_by_a_crash_is_rolled_back_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::new(dir.path());
    let log = EventLog::new(&paths, "n1");
    let events = chain(5, 300_000);
    let mut w = log.writer().unwrap();
    let mut b = w.stream_begin();
    for e in &events {
        w.stream_push(&mut b, e).unwrap();
    }
    // As if the process died here: no commit, no abort.
    std::mem::forget(b);
    drop(w);
    let w = log.writer().unwrap();
    assert_eq!(w.head().event_count, 0);
    assert!(w.recovery().rolled_back_bytes > 0);
    assert_eq!(log.end_offset().unwrap(), 0);
}
