use super::*;

#[test]
fn second_holder_is_refused_until_the_first_is_dropped() {
    let dir = std::env::temp_dir().join(format!("gitmesh-lock-{}", std::process::id()));
    let path = dir.join("daemon.lock");
    let mut first = DaemonLock::acquire(&path).unwrap();
    first
        .write_info(&LockInfo {
            pid: 4242,
            started_at: "now".into(),
            listen: None,
        })
        .unwrap();
    match DaemonLock::acquire(&path) {
        Err(DaemonError::Busy { pid, .. }) => assert_eq!(pid, Some(4242)),
        other => panic!("expected Busy, got {other:?}"),
    }
    drop(first);
    assert!(DaemonLock::acquire(&path).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}
