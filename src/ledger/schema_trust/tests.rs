use super::*;
use crate::keys::NodeKey;
use crate::ledger::roster::RosterNode;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

/// `a` admin and publisher, `m` a member only, `r` a retired publisher.
fn roster() -> Roster {
    let mut r = Roster::genesis("a", &key(1), "2026-01-01T00:00:00.000000Z");
    for (id, k, roles, retired) in [
        ("m", 2, vec![Role::Member], false),
        ("r", 3, vec![Role::Member, Role::Schema], true),
    ] {
        r.nodes.insert(
            id.into(),
            RosterNode {
                public_key: key(k).public_hex(),
                roles: roles.into_iter().collect(),
                retired,
            },
        );
    }
    r
}

#[test]
fn the_roster_decides_for_the_nodes_it_lists_in_both_modes() {
    let r = roster();
    for mode in [TrustMode::Roster, TrustMode::Open] {
        let pin = key(2).public_hex();
        assert!(publisher_key(Some(&r), mode, "a", None).is_ok());
        let why = publisher_key(Some(&r), mode, "m", Some(&pin)).unwrap_err();
        assert!(
            why.contains("\"m\"") && why.contains("schema role"),
            "{why}"
        );
        let why = publisher_key(Some(&r), mode, "r", None).unwrap_err();
        assert!(why.contains("retired"), "{why}");
    }
}

#[test]
fn a_node_off_the_roster_publishes_only_in_open_mode_with_a_pinned_key() {
    let r = roster();
    let pin = key(7).public_hex();
    let why = publisher_key(Some(&r), TrustMode::Roster, "x", Some(&pin)).unwrap_err();
    assert!(why.contains("not on the mesh roster"), "{why}");
    let k = publisher_key(Some(&r), TrustMode::Open, "x", Some(&pin)).unwrap();
    assert_eq!(hex::encode(k.as_bytes()), pin);
    assert!(publisher_key(Some(&r), TrustMode::Open, "x", None).is_err());
    // No roster at all: the pin decides in both modes.
    assert!(publisher_key(None, TrustMode::Roster, "x", Some(&pin)).is_ok());
    assert!(publisher_key(None, TrustMode::Roster, "x", None).is_err());
}

#[test]
fn publishing_is_refused_locally_with_the_role_and_the_fix() {
    let r = roster();
    let own = key(2).public_hex();
    let why = may_publish(Some(&r), TrustMode::Roster, "m", &own).unwrap_err();
    assert!(why.contains("schema role"), "{why}");
    assert!(
        why.contains("gitmesh roster roles m member schema"),
        "{why}"
    );
    // The roster's key for the node is not this root's key.
    let why = may_publish(Some(&r), TrustMode::Roster, "a", &key(9).public_hex()).unwrap_err();
    assert!(why.contains("another public key"), "{why}");
    assert_eq!(
        may_publish(Some(&r), TrustMode::Roster, "a", &key(1).public_hex()),
        Ok(())
    );
    // Off the roster: refused in roster mode, allowed in open mode.
    let own = key(8).public_hex();
    let why = may_publish(Some(&r), TrustMode::Roster, "new", &own).unwrap_err();
    assert!(why.contains("roster enroll new"), "{why}");
    assert_eq!(may_publish(Some(&r), TrustMode::Open, "new", &own), Ok(()));
}
