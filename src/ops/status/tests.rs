use super::*;

#[test]
fn a_peer_is_stale_when_unseen_too_long_unreadable_or_from_the_future() {
    assert!(!stale(Some(0), false, 300));
    assert!(!stale(Some(300), false, 300));
    assert!(stale(Some(301), false, 300));
    assert!(stale(None, false, 300));
    assert!(stale(Some(-5), true, 300));
}
