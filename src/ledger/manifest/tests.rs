use super::*;

fn key() -> crate::keys::NodeKey {
    let dir = tempfile::tempdir().unwrap();
    let paths = crate::paths::NodePaths::new(dir.path());
    crate::keys::NodeKey::load_or_create(&paths).unwrap().0
}

#[test]
fn a_signed_manifest_verifies_and_any_edit_breaks_it() {
    let k = key();
    let m = Manifest {
        node_id: "a".into(),
        public_key: Some(k.public_hex()),
        exported_through_seq: 3,
        ..Manifest::default()
    }
    .signed(&k);
    assert_eq!(m.check_signature(), Signed::Valid);
    assert!(m.signed_by(&k.public_hex()));
    let edited = Manifest {
        exported_through_seq: 99,
        ..m.clone()
    };
    assert!(matches!(edited.check_signature(), Signed::Invalid(_)));
    let unsigned = Manifest {
        sig: None,
        ..m.clone()
    };
    assert!(matches!(unsigned.check_signature(), Signed::Invalid(_)));
    let other = key();
    let forged = Manifest {
        public_key: Some(other.public_hex()),
        ..m.clone()
    }
    .signed(&other);
    assert_eq!(forged.check_signature(), Signed::Valid);
    assert!(!forged.signed_by(&k.public_hex()));
    let keyless = Manifest {
        public_key: None,
        sig: None,
        ..m
    };
    assert_eq!(keyless.check_signature(), Signed::Keyless);
}
