use super::*;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

const NOW: &str = "2026-01-01T00:00:00.000000Z";

fn enroll(r: &mut Roster, node: &str, k: &NodeKey, roles: &[Role]) {
    r.nodes.insert(
        node.to_string(),
        RosterNode {
            public_key: k.public_hex(),
            roles: roles.iter().copied().collect(),
            retired: false,
        },
    );
}

#[test]
fn genesis_verifies_and_a_forged_or_unsigned_one_does_not() {
    let g = Roster::genesis("a", &key(1), NOW);
    assert_eq!(verify_genesis(&g), Ok(()));
    assert!(g.has_role("a", Role::Leader) && g.has_role("a", Role::Admin));
    let mut forged = g.clone();
    enroll(&mut forged, "evil", &key(9), &[Role::Admin]);
    assert!(matches!(
        verify_genesis(&forged),
        Err(RosterRefusal::BadSignature { .. })
    ));
    let mut unsigned = g.clone();
    unsigned.sig = None;
    assert!(matches!(
        verify_genesis(&unsigned),
        Err(RosterRefusal::BadSignature { .. })
    ));
    let mut v2 = g.clone();
    v2.version = 2;
    assert!(matches!(
        verify_genesis(&v2),
        Err(RosterRefusal::NotNext { found: 2, .. })
    ));
}

#[test]
fn an_update_must_follow_link_and_be_signed_by_an_admin_of_the_previous_version() {
    let g = Roster::genesis("a", &key(1), NOW);
    let mut next = g.successor(NOW).unwrap();
    enroll(&mut next, "b", &key(2), &[Role::Member, Role::Leader]);
    next.sign("a", &key(1));
    assert_eq!(verify_update(&g, &next), Ok(()));

    // Signed by a node the previous version does not make admin (b grants itself admin).
    let mut selfmade = g.successor(NOW).unwrap();
    enroll(&mut selfmade, "b", &key(2), &[Role::Admin]);
    selfmade.sign("b", &key(2));
    assert!(matches!(
        verify_update(&g, &selfmade),
        Err(RosterRefusal::SignerNotAdmin { .. })
    ));

    // Skipping a version, rolling back, or naming another predecessor.
    let mut skip = next.clone();
    skip.version = 3;
    skip.sign("a", &key(1));
    assert!(matches!(
        verify_update(&g, &skip),
        Err(RosterRefusal::NotNext {
            trusted: 1,
            found: 3
        })
    ));
    assert!(matches!(
        verify_update(&next, &g),
        Err(RosterRefusal::NotNext { .. })
    ));
    let mut relinked = next.clone();
    relinked.prev = "00".repeat(32);
    relinked.sign("a", &key(1));
    assert!(matches!(
        verify_update(&g, &relinked),
        Err(RosterRefusal::PrevMismatch { .. })
    ));

    // A version at u64::MAX has no successor.
    let mut last = g.clone();
    last.version = u64::MAX;
    assert!(last.successor(NOW).is_none());
}

#[test]
fn a_rotated_admin_key_is_signed_by_the_old_key_and_then_the_new_one_signs() {
    let g = Roster::genesis("a", &key(1), NOW);
    let mut rotated = g.successor(NOW).unwrap();
    rotated.nodes.get_mut("a").unwrap().public_key = key(3).public_hex();
    // The new key cannot sign its own rotation.
    rotated.sign("a", &key(3));
    assert!(matches!(
        verify_update(&g, &rotated),
        Err(RosterRefusal::BadSignature { .. })
    ));
    rotated.sign("a", &key(1));
    assert_eq!(verify_update(&g, &rotated), Ok(()));
    let mut after = rotated.successor(NOW).unwrap();
    enroll(&mut after, "c", &key(4), &[Role::Member]);
    after.sign("a", &key(1));
    assert!(verify_update(&rotated, &after).is_err());
    after.sign("a", &key(3));
    assert_eq!(verify_update(&rotated, &after), Ok(()));
}

#[test]
fn an_update_cannot_remove_the_last_admin_or_list_a_bad_key() {
    let g = Roster::genesis("a", &key(1), NOW);
    let mut orphan = g.successor(NOW).unwrap();
    orphan.nodes.get_mut("a").unwrap().retired = true;
    orphan.sign("a", &key(1));
    assert_eq!(verify_update(&g, &orphan), Err(RosterRefusal::NoAdmin));
    let mut bad = g.successor(NOW).unwrap();
    bad.nodes.insert(
        "b".into(),
        RosterNode {
            public_key: "zz".into(),
            roles: [Role::Member].into(),
            retired: false,
        },
    );
    bad.sign("a", &key(1));
    assert!(matches!(
        verify_update(&g, &bad),
        Err(RosterRefusal::BadKey { .. })
    ));
}

#[test]
fn parse_refuses_duplicate_keys_unknown_fields_and_huge_files() {
    let g = Roster::genesis("a", &key(1), NOW);
    let text = String::from_utf8(g.to_file()).unwrap();
    assert_eq!(Roster::parse(text.as_bytes()), Ok(g.clone()));
    let dup = text.replacen("\"version\": 1,", "\"version\": 1, \"version\": 2,", 1);
    assert!(matches!(
        Roster::parse(dup.as_bytes()),
        Err(RosterRefusal::Malformed(_))
    ));
    let extra = text.replacen("\"version\": 1,", "\"version\": 1, \"threshold\": 0,", 1);
    assert!(matches!(
        Roster::parse(extra.as_bytes()),
        Err(RosterRefusal::Malformed(_))
    ));
    let huge = vec![b' '; MAX_ROSTER_BYTES + 1];
    assert!(matches!(
        Roster::parse(&huge),
        Err(RosterRefusal::TooLarge(_))
    ));
}

#[test]
fn standing_follows_the_roster_and_the_mode() {
    let mut r = Roster::genesis("a", &key(1), NOW);
    enroll(&mut r, "b", &key(2), &[Role::Member]);
    enroll(&mut r, "old", &key(5), &[Role::Leader]);
    r.nodes.get_mut("old").unwrap().retired = true;
    let pin = key(7).public_hex();
    let s = |node, role, mode| standing(Some(&r), mode, node, role, Some(&pin));
    assert!(matches!(
        s("a", Some(Role::Leader), TrustMode::Roster),
        Standing::Trusted(_)
    ));
    assert_eq!(
        s("b", Some(Role::Leader), TrustMode::Roster),
        Standing::MissingRole(Role::Leader)
    );
    assert_eq!(s("old", None, TrustMode::Open), Standing::Retired);
    assert_eq!(s("x", None, TrustMode::Roster), Standing::NotOnRoster);
    // Open mode: a node absent from the roster falls back to its pinned key.
    match s("x", Some(Role::Leader), TrustMode::Open) {
        Standing::Trusted(k) => assert_eq!(hex::encode(k.as_bytes()), pin),
        other => panic!("{other:?}"),
    }
    // A roster entry wins over a pin.
    match s("b", None, TrustMode::Open) {
        Standing::Trusted(k) => assert_eq!(hex::encode(k.as_bytes()), key(2).public_hex()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        standing(None, TrustMode::Roster, "x", None, None),
        Standing::Unknown
    );
}
