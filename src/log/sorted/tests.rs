use super::*;

fn id(n: u64) -> [u8; 16] {
    *blake3::hash(&n.to_le_bytes())
        .as_bytes()
        .first_chunk()
        .unwrap()
}

#[test]
fn fanout_bits_grow_with_the_count_and_stop_at_sixteen() {
    assert_eq!(fanout_bits(0), 0);
    assert_eq!(fanout_bits(8), 0);
    assert_eq!(fanout_bits(9), 1);
    assert_eq!(fanout_bits(1000), 7);
    assert_eq!(fanout_bits(600_000), 16);
    assert_eq!(fanout_bits(u64::MAX), 16);
}

#[test]
fn bucket_is_the_leading_bits() {
    let mut k = [0u8; 16];
    k[0] = 0b1010_0000;
    k[1] = 0xff;
    assert_eq!(bucket(&k, 0), 0);
    assert_eq!(bucket(&k, 1), 1);
    assert_eq!(bucket(&k, 4), 0b1010);
    assert_eq!(bucket(&k, 16), 0xa0ff);
}

#[test]
fn encoded_records_are_sorted_unique_and_fanned_out() {
    let mut recs: Vec<_> = (0..1000).map(|i| (id(i), i * 10)).collect();
    recs.push((id(5), 99_999)); // a repeat keeps the highest offset
    let bytes = encode(recs, 7, 10_000);
    let h = Header::parse(bytes[..40].try_into().unwrap()).unwrap();
    assert_eq!(
        h,
        Header {
            base: 7,
            bytes: 10_000,
            count: 1000,
            bits: 7
        }
    );
    assert_eq!(h.file_len(), bytes.len() as u64);
    let body = &bytes[h.records_at() as usize..];
    let ids: Vec<&[u8]> = body.chunks_exact(24).map(|r| &r[..16]).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(search_records(body, &id(5)), Some(99_999));
    assert_eq!(search_records(body, &id(6)), Some(60));
    assert_eq!(search_records(body, &id(5000)), None);
    // The last fan-out entry counts every record.
    let last = h.records_at() as usize - 8;
    assert_eq!(
        u64::from_le_bytes(bytes[last..last + 8].try_into().unwrap()),
        1000
    );
}

#[test]
fn search_records_handles_empty_and_edges() {
    assert_eq!(search_records(&[], &id(1)), None);
    let bytes = encode(vec![(id(1), 1), (id(2), 2)], 0, 1);
    let body = &bytes[40 + 8..];
    assert_eq!(search_records(body, &id(1)), Some(1));
    assert_eq!(search_records(body, &id(2)), Some(2));
    assert_eq!(search_records(body, &[0u8; 16]), None);
    assert_eq!(search_records(body, &[0xffu8; 16]), None);
}

#[test]
fn file_lookup_finds_every_id_and_rejects_misses_with_any_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events-000001.idx");
    let n = 5000;
    let recs: Vec<_> = (0..n).map(|i| (id(i), 1000 + i * 3)).collect();
    SortedIndex::write(&path, recs, 1000, n * 3).unwrap();
    let idx = SortedIndex::open(&path, 1000, n * 3).unwrap().unwrap();
    assert_eq!(idx.header().count, n);
    for window in [1, 2, 512] {
        for i in (0..n).step_by(7) {
            assert_eq!(
                idx.get_windowed(&id(i), window).unwrap(),
                Some(1000 + i * 3)
            );
        }
        for i in n..n + 300 {
            assert_eq!(idx.get_windowed(&id(i), window).unwrap(), None);
        }
    }
}

#[test]
fn an_index_for_another_segment_or_a_truncated_one_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.idx");
    assert!(SortedIndex::open(&path, 0, 10).unwrap().is_none());
    SortedIndex::write(&path, vec![(id(1), 0)], 0, 10).unwrap();
    assert!(SortedIndex::open(&path, 0, 10).unwrap().is_some());
    assert!(SortedIndex::open(&path, 0, 11).unwrap().is_none());
    assert!(SortedIndex::open(&path, 5, 10).unwrap().is_none());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(SortedIndex::open(&path, 0, 10).unwrap().is_none());
    std::fs::write(&path, b"not an index file at all, just some text....").unwrap();
    assert!(SortedIndex::open(&path, 0, 10).unwrap().is_none());
}
