use super::*;
use crate::config::LedgerMode;

#[test]
fn own_branch_follows_the_mode() {
    let mut cfg = Config::new("n1".into());
    assert_eq!(own_branch(&cfg), "main");
    cfg.ledger.mode = LedgerMode::PerNodeRefs;
    assert_eq!(own_branch(&cfg), "gitmesh/n1");
    assert!(per_node(&cfg));
}
