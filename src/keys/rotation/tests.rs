use super::*;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

const NOW: &str = "2026-12-01T00:00:00.000000Z";

#[test]
fn a_statement_signed_by_both_keys_verifies_and_round_trips() {
    let r = Rotation::new("a", &key(1), &key(2), 5, NOW);
    assert_eq!(r.verify(), Ok(()));
    let parsed = Rotation::parse("a", &r.to_file()).unwrap();
    assert_eq!(parsed, r);
    assert!(r.file_name().starts_with("000000000005-"));
}

#[test]
fn a_statement_signed_by_another_key_is_refused() {
    let mut r = Rotation::new("a", &key(1), &key(2), 5, NOW);
    // A forger names the node's key as old but can only sign with its own.
    let forged = Rotation::new("a", &key(9), &key(2), 5, NOW);
    r.old_sig = forged.old_sig.clone();
    assert!(matches!(r.verify(), Err(RotationRefusal::OldSignature(_))));
    let mut r = Rotation::new("a", &key(1), &key(2), 5, NOW);
    r.new_sig = None;
    assert!(matches!(r.verify(), Err(RotationRefusal::NewSignature(_))));
    let mut r = Rotation::new("a", &key(1), &key(2), 5, NOW);
    r.from_seq = 6;
    assert!(
        matches!(r.verify(), Err(RotationRefusal::OldSignature(_))),
        "a changed seq breaks the signatures"
    );
}

#[test]
fn parse_refuses_other_nodes_kinds_duplicates_and_size() {
    let r = Rotation::new("a", &key(1), &key(2), 5, NOW);
    assert!(matches!(
        Rotation::parse("b", &r.to_file()),
        Err(RotationRefusal::WrongNode { .. })
    ));
    let mut other = r.clone();
    other.kind = "something.else".into();
    assert!(Rotation::parse("a", &other.to_file()).is_err());
    let text = String::from_utf8(r.to_file()).unwrap();
    let dup = text.replacen("{", "{\"from_seq\":1,", 1);
    assert!(Rotation::parse("a", dup.as_bytes()).is_err());
    let big = vec![b' '; MAX_STATEMENT_BYTES + 1];
    assert!(Rotation::parse("a", &big).is_err());
    let same = Rotation::new("a", &key(1), &key(1), 5, NOW);
    assert!(matches!(same.verify(), Err(RotationRefusal::BadKey(_))));
}

#[test]
fn follow_moves_the_pin_along_a_chain_in_any_file_order() {
    let h = KeyHistory::single(&key(1).public_hex());
    let s1 = Rotation::new("a", &key(1), &key(2), 5, NOW);
    let s2 = Rotation::new("a", &key(2), &key(3), 9, NOW);
    let f = follow("a", &h, &[s2.clone(), s1.clone()]);
    assert_eq!(f.applied, vec![1, 0]);
    assert!(f.refused.is_empty());
    assert_eq!(f.history.current, key(3).public_hex());
    assert_eq!(f.history.current_from(), 9);
    let chain = KeyChain::from_history("a", &f.history).unwrap();
    let pk = |n: u8| VerifyingKey::from(&ed25519_dalek::SigningKey::from_bytes(&[n; 32]));
    assert_eq!(chain.for_seq(4), &pk(1));
    assert_eq!(chain.for_seq(5), &pk(2));
    assert_eq!(chain.for_seq(8), &pk(2));
    assert_eq!(chain.for_seq(9), &pk(3));
    // Seen again, nothing changes and nothing is refused.
    let again = follow("a", &f.history, &[s1, s2]);
    assert!(again.applied.is_empty() && again.refused.is_empty());
    assert_eq!(again.history, f.history);
}

#[test]
fn a_rotation_away_from_an_unpinned_key_is_refused_and_the_pin_stays() {
    let h = KeyHistory::single(&key(1).public_hex());
    let forged = Rotation::new("a", &key(9), &key(8), 5, NOW);
    let f = follow("a", &h, std::slice::from_ref(&forged));
    assert_eq!(f.history, h);
    assert!(matches!(
        f.refused.as_slice(),
        [(0, RotationRefusal::NotPinnedKey { .. })]
    ));
}

#[test]
fn a_replayed_old_rotation_is_refused_after_a_later_one() {
    // 1 -> 2 at 5, then 2 -> 3 at 9; an attacker holding key 2 replays a fork 2 -> 4.
    let h = KeyHistory::single(&key(1).public_hex());
    let s1 = Rotation::new("a", &key(1), &key(2), 5, NOW);
    let s2 = Rotation::new("a", &key(2), &key(3), 9, NOW);
    let f = follow("a", &h, &[s1, s2]);
    let fork = Rotation::new("a", &key(2), &key(4), 7, NOW);
    let g = follow("a", &f.history, &[fork]);
    assert_eq!(g.history, f.history);
    assert!(matches!(
        g.refused.as_slice(),
        [(0, RotationRefusal::NotPinnedKey { .. })]
    ));
    // A rotation starting below where the current key took over is refused too.
    let back = Rotation::new("a", &key(3), &key(5), 8, NOW);
    let g = follow("a", &f.history, &[back]);
    assert!(matches!(
        g.refused.as_slice(),
        [(
            0,
            RotationRefusal::SeqBehind {
                from_seq: 8,
                floor: 9
            }
        )]
    ));
}

#[test]
fn origin_walks_back_from_the_published_key() {
    let s1 = Rotation::new("a", &key(1), &key(2), 5, NOW);
    let s2 = Rotation::new("a", &key(2), &key(3), 9, NOW);
    let forged = Rotation::new("a", &key(7), &key(8), 2, NOW);
    let all = [forged, s2, s1];
    assert_eq!(origin(&key(3).public_hex(), &all), key(1).public_hex());
    assert_eq!(origin(&key(6).public_hex(), &all), key(6).public_hex());
}
