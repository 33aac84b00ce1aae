use super::*;

#[test]
fn json_never_shows_progress() {
    assert!(!visible(true));
}

#[test]
fn hidden_progress_accepts_every_call() {
    let p = Progress::new(Some(10), "import", false);
    assert!(!p.is_visible());
    p.inc(3);
    p.set_total(20);
    p.set_message("batch 1");
    p.finish();
    assert_eq!(p.position(), 0);
}

#[test]
fn bar_counts_items() {
    let p = Progress::with_target(Some(5), "export", ProgressDrawTarget::hidden());
    p.inc(2);
    p.inc(3);
    assert_eq!(p.position(), 5);
    let s = Progress::with_target(None, "scan", ProgressDrawTarget::hidden());
    s.inc(7);
    assert_eq!(s.position(), 7);
    s.finish();
}
