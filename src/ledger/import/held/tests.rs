use super::*;

fn held(node: &str, first_seq: u64, reason: HeldReason) -> Held {
    Held {
        node_id: node.into(),
        first_seq,
        reason,
    }
}

#[test]
fn ready_files_are_those_that_can_progress_ordered_by_node_and_seq() {
    let mut files = BTreeMap::new();
    files.insert("a/b/9".to_string(), held("b", 9, HeldReason::Gap));
    files.insert("a/b/5".to_string(), held("b", 5, HeldReason::Gap));
    files.insert("a/a/3".to_string(), held("a", 3, HeldReason::Gap));
    files.insert("a/c/0".to_string(), held("c", 0, HeldReason::UntrustedKey));
    files.insert("a/d/0".to_string(), held("d", 0, HeldReason::UntrustedKey));
    // a has seq 2 (3 is next), b has seq 4 (5 is next, 9 still waits), d's key is untrusted.
    let chain_seq = |node: &str| match node {
        "a" => 2,
        "b" => 4,
        _ => 0,
    };
    let ready = ready_to_retry(&files, chain_seq, |node| node == "d");
    assert_eq!(ready, ["a/a/3", "a/b/5", "a/c/0"]);
}

#[test]
fn nothing_is_ready_while_every_gap_stays_open() {
    let mut files = BTreeMap::new();
    files.insert("x".to_string(), held("b", 7, HeldReason::Gap));
    assert!(ready_to_retry(&files, |_| 5, |_| false).is_empty());
}

#[test]
fn a_file_from_the_future_is_read_again_while_it_is_next_in_the_chain() {
    let mut files = BTreeMap::new();
    files.insert("f/3".to_string(), held("f", 3, HeldReason::Future));
    files.insert("f/9".to_string(), held("f", 9, HeldReason::Future));
    assert_eq!(ready_to_retry(&files, |_| 2, |_| false), ["f/3"]);
}
