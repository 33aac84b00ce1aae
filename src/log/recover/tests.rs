use super::*;

fn head(node: &str, log_len: u64, event_count: u64) -> LogHead {
    LogHead {
        log_len,
        event_count,
        node_id: node.into(),
        ..LogHead::default()
    }
}

fn disk(len: u64, records: u64) -> OnDisk<'static> {
    OnDisk {
        base: 100,
        len,
        node_id: "n1",
        records,
        sealed_events: 10,
        last_sealed_node: Some("n1"),
    }
}

#[test]
fn a_batch_is_rolled_back_only_when_the_file_ends_inside_it() {
    let p = Pending {
        start: 200,
        end: 300,
    };
    assert_eq!(rollback_start(&p, 100, 250), Some(200));
    assert_eq!(rollback_start(&p, 100, 299), Some(200));
    // Fully written, or not written at all: nothing to roll back.
    assert_eq!(rollback_start(&p, 100, 300), None);
    assert_eq!(rollback_start(&p, 100, 200), None);
    // A marker from before the last seal points into a sealed segment.
    assert_eq!(rollback_start(&p, 250, 260), None);
}

#[test]
fn a_stored_head_within_the_log_and_backed_by_records_is_kept() {
    let h = head("n1", 150, 13);
    assert_eq!(
        head_start(Some(h.clone()), &disk(160, 3)),
        HeadStart::Stored(h)
    );
}

#[test]
fn a_stored_head_that_disagrees_with_the_log_is_rebuilt() {
    let rescan = HeadStart::Rescan {
        rebuild_sealed: false,
    };
    // No head at all.
    assert_eq!(head_start(None, &disk(160, 3)), rescan);
    // Beyond the end of the log (its tail was cut off).
    assert_eq!(head_start(Some(head("n1", 170, 13)), &disk(160, 3)), rescan);
    // Before the active file (a seal happened after it was written).
    assert_eq!(head_start(Some(head("n1", 90, 13)), &disk(160, 3)), rescan);
    // Counted for another node.
    assert_eq!(head_start(Some(head("n2", 150, 13)), &disk(160, 3)), rescan);
    // Fewer records than active events it covers: the record file was cut.
    assert_eq!(head_start(Some(head("n1", 150, 13)), &disk(160, 2)), rescan);
}

#[test]
fn sealed_heads_are_recomputed_only_when_counted_for_another_node() {
    let other = OnDisk {
        last_sealed_node: Some("n2"),
        ..disk(160, 0)
    };
    assert_eq!(
        head_start(None, &other),
        HeadStart::Rescan {
            rebuild_sealed: true
        }
    );
    let none_sealed = OnDisk {
        last_sealed_node: None,
        ..disk(160, 0)
    };
    assert_eq!(
        head_start(None, &none_sealed),
        HeadStart::Rescan {
            rebuild_sealed: false
        }
    );
}
