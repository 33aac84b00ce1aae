use super::*;

fn ext(number: u32, base: u64, bytes: u64) -> Extent {
    Extent {
        number,
        base,
        bytes,
    }
}

#[test]
fn locate_finds_the_segment_by_binary_search() {
    let sealed = [ext(1, 0, 100), ext(2, 100, 50), ext(3, 150, 10)];
    assert_eq!(locate(&sealed, 160, 0), Some(0));
    assert_eq!(locate(&sealed, 160, 99), Some(0));
    assert_eq!(locate(&sealed, 160, 100), Some(1));
    assert_eq!(locate(&sealed, 160, 149), Some(1));
    assert_eq!(locate(&sealed, 160, 150), Some(2));
    assert_eq!(locate(&sealed, 160, 159), Some(2));
    assert_eq!(locate(&sealed, 160, 160), None);
    assert_eq!(locate(&sealed, 160, u64::MAX), None);
    assert_eq!(locate(&[], 0, 5), None);
}

fn seg(number: u32, base: u64, bytes: u64) -> SealedSegment {
    SealedSegment {
        number,
        base,
        bytes,
        events: 1,
        head: LogHead::default(),
    }
}

#[test]
fn manifest_must_be_contiguous() {
    assert!(check_contiguous(&[]).is_ok());
    assert!(check_contiguous(&[seg(1, 0, 10), seg(2, 10, 5)]).is_ok());
    let gap = check_contiguous(&[seg(1, 0, 10), seg(2, 11, 5)]).unwrap_err();
    assert!(gap.contains("segment 2 starts at 11"), "{gap}");
    let skip = check_contiguous(&[seg(1, 0, 10), seg(3, 10, 5)]).unwrap_err();
    assert!(skip.contains("segment 3"), "{skip}");
    assert!(check_contiguous(&[seg(1, 4, 10)]).is_err());
}

#[test]
fn segment_files_are_numbered_with_six_digits() {
    let l = Layout::new(Path::new("root/artifacts/event_mesh/events.ndjson"));
    assert_eq!(
        l.segment(7),
        Path::new("root/artifacts/event_mesh/segments/events-000007.ndjson")
    );
    assert_eq!(
        l.index(12),
        Path::new("root/artifacts/event_mesh/segments/events-000012.idx")
    );
    assert_eq!(
        l.manifest,
        Path::new("root/artifacts/event_mesh/segments/segments.json")
    );
}
