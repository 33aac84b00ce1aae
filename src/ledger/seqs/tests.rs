use super::*;

#[test]
fn ranges_merge_and_report_gaps() {
    let mut r = SeqRanges::default();
    r.insert_range(5, 7);
    r.insert_range(1, 2);
    assert_eq!(r.contiguous_through(), 2);
    assert_eq!(
        r.gaps("p"),
        vec![Gap {
            node_id: "p".into(),
            from_seq: 3,
            to_seq: 4
        }]
    );
    r.insert(3);
    r.insert(4);
    assert_eq!(r.0, vec![[1, 7]]);
    assert_eq!(r.contiguous_through(), 7);
    assert!(r.gaps("p").is_empty());
    r.insert_range(10, 12);
    r.insert_range(8, 9);
    assert_eq!(r.0, vec![[1, 12]]);
    r.insert_range(2, 5);
    assert_eq!(r.0, vec![[1, 12]]);
    assert_eq!(r.highest(), 12);
    assert!(r.contains(1) && r.contains(12) && !r.contains(13) && !r.contains(0));
    r.insert(20);
    assert!(r.contains(20) && !r.contains(15));
}

#[test]
fn nothing_seen_is_zero() {
    let r = SeqRanges::default();
    assert_eq!((r.contiguous_through(), r.highest()), (0, 0));
    assert!(r.gaps("p").is_empty());
}
