use super::*;

fn head(seq: u64, id: &str) -> ChainHead {
    ChainHead {
        seq,
        event_id: id.into(),
    }
}

#[test]
fn events_are_accepted_only_in_sequence() {
    assert_eq!(step(&head(0, ""), 1, "", "a", false), Step::Accept);
    assert_eq!(step(&head(1, "a"), 2, "a", "b", false), Step::Accept);
    assert_eq!(step(&head(1, "a"), 3, "b", "c", false), Step::Wait);
    assert_eq!(step(&head(2, "b"), 2, "a", "b", true), Step::Duplicate);
    assert_eq!(step(&head(2, "b"), 1, "", "a", true), Step::Duplicate);
}

#[test]
fn the_next_event_already_in_the_log_moves_the_head_on() {
    // A lost import state: the log has the peer's events, the chain head is empty.
    assert_eq!(step(&head(0, ""), 1, "", "a", true), Step::Known);
    assert_eq!(step(&head(1, "a"), 2, "a", "b", true), Step::Known);
}

#[test]
fn same_seq_different_event_or_wrong_prev_is_a_fork() {
    for (h, seq, prev, id) in [
        (head(2, "b"), 2, "a", "x"),
        (head(2, "b"), 3, "zz", "c"),
        (head(0, ""), 1, "q", "a"),
    ] {
        let s = step(&h, seq, prev, id, false);
        assert!(matches!(s, Step::Fork(_)), "seq {seq} prev {prev:?}: {s:?}");
    }
}

#[test]
fn a_head_without_id_from_an_old_state_accepts_the_next_seq() {
    assert_eq!(step(&head(5, ""), 6, "anything", "f", false), Step::Accept);
    assert_eq!(step(&head(5, ""), 7, "anything", "g", false), Step::Wait);
}

#[test]
fn alerts_are_raised_once() {
    let a = Alert {
        kind: Reason::Fork,
        node_id: "p".into(),
        path: "x".into(),
        seq: Some(2),
        detail: String::new(),
        commit: "c".into(),
    };
    let mut v = Vec::new();
    assert!(raise(&mut v, a.clone()));
    assert!(!raise(&mut v, a));
    assert_eq!(v.len(), 1);
}
