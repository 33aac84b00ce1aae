use super::*;

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    assert_eq!(backoff(1, 1.0), Duration::from_millis(100));
    assert_eq!(backoff(3, 1.0), Duration::from_millis(400));
    assert_eq!(backoff(30, 1.0), Duration::from_millis(3200));
    assert_eq!(backoff(2, 0.5), Duration::from_millis(100));
    assert_eq!(backoff(2, 9.0), Duration::from_millis(300));
}
