use super::*;

fn key(i: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k[15] = 0xee;
    k
}

/// Index bytes for ids 0..100,000 (id i at offset 10·i), then id 7 again at 5,000,000.
fn many_records_with_id_7_repeated() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..100_000u32 {
        bytes.extend_from_slice(&key(i));
        bytes.extend_from_slice(&(u64::from(i) * 10).to_le_bytes());
    }
    bytes.extend_from_slice(&key(7));
    bytes.extend_from_slice(&5_000_000u64.to_le_bytes());
    bytes
}

#[test]
fn scan_file_finds_the_latest_record_at_or_after_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log_ids.bin");
    assert_eq!(IdIndex::scan_file(&path, &key(1), 0).unwrap(), None);
    // More records than one read buffer holds, a repeated id, and a torn tail.
    let mut bytes = many_records_with_id_7_repeated();
    bytes.extend_from_slice(&key(8)[..9]);
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        IdIndex::scan_file(&path, &key(99_999), 0).unwrap(),
        Some(999_990)
    );
    assert_eq!(
        IdIndex::scan_file(&path, &key(50_000), 0).unwrap(),
        Some(500_000)
    );
    assert_eq!(
        IdIndex::scan_file(&path, &key(7), 0).unwrap(),
        Some(5_000_000)
    );
    assert_eq!(IdIndex::scan_file(&path, &key(3), 100).unwrap(), None);
    assert_eq!(IdIndex::scan_file(&path, &key(200_000), 0).unwrap(), None);
    let map = IdIndex::load(&path, 100).unwrap();
    assert_eq!(map.get_key(&key(7)), Some(5_000_000));
    assert_eq!(map.get_key(&key(3)), None);
    // Ids 10.. plus id 7, whose later record is past the base.
    assert_eq!(map.len(), 100_000 - 10 + 1);
}

#[test]
fn scan_file_many_answers_every_key_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log_ids.bin");
    assert_eq!(
        IdIndex::scan_file_many(&path, &[key(1)], 0).unwrap(),
        vec![None]
    );
    // key(i) for i < 65,536 all share their first two bytes: the filter lets
    // every one of them through and the sorted search must tell them apart.
    let bytes = many_records_with_id_7_repeated();
    fs::write(&path, &bytes).unwrap();
    let keys = [
        key(99_999),
        key(7),
        key(200_000),
        key(3),
        key(65_536),
        key(7),
    ];
    assert_eq!(
        IdIndex::scan_file_many(&path, &keys, 0).unwrap(),
        vec![
            Some(999_990),
            Some(5_000_000),
            None,
            Some(30),
            Some(655_360),
            Some(5_000_000)
        ]
    );
    // Below the base only the later record of key(7) counts.
    assert_eq!(
        IdIndex::scan_file_many(&path, &keys, 100).unwrap(),
        vec![
            Some(999_990),
            Some(5_000_000),
            None,
            None,
            Some(655_360),
            Some(5_000_000)
        ]
    );
    assert!(IdIndex::scan_file_many(&path, &[], 0).unwrap().is_empty());
}
