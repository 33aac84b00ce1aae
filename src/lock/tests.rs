use super::*;

#[test]
fn a_held_lock_is_refused_until_its_holder_drops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("x.lock");
    let first = FileLock::lock(&path).unwrap();
    assert_eq!(first.path(), path);
    let started = Instant::now();
    let second = FileLock::try_lock_for(&path, Duration::from_millis(120)).unwrap();
    assert!(second.is_none(), "a second holder while the first holds it");
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "the wait is honoured"
    );
    drop(first);
    let third = FileLock::try_lock_for(&path, Duration::ZERO).unwrap();
    assert!(third.is_some(), "free again once dropped");
}

#[test]
fn a_lock_in_an_unwritable_place_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let err = FileLock::lock(&blocker.join("x.lock")).unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
}
