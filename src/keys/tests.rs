use super::*;

fn env() -> Envelope {
    Envelope {
        event_id: "evt_0123456789abcdef0123456789abcdef".into(),
        timestamp: "2026-01-02T03:04:05.000006Z".into(),
        topic: "t".into(),
        event_type: "e".into(),
        node_id: "a".into(),
        source: "cli".into(),
        correlation_id: "evt_0123456789abcdef0123456789abcdef".into(),
        seq: 1,
        ..Default::default()
    }
}

#[test]
fn sign_and_verify_round_trip_and_tamper_fails() {
    let dir = tempfile::tempdir().unwrap();
    let paths = NodePaths::new(dir.path());
    let (key, created) = NodeKey::load_or_create(&paths).unwrap();
    assert!(created);
    let (again, created) = NodeKey::load_or_create(&paths).unwrap();
    assert!(!created);
    assert_eq!(key.public_hex(), again.public_hex());
    let mut e = env();
    e.sig = Some(key.sign(&e).unwrap());
    let public = parse_public("a", &key.public_hex()).unwrap();
    verify(&e, &public).unwrap();
    let mut tampered = e.clone();
    tampered.payload.insert("x".into(), 1.into());
    assert!(verify(&tampered, &public).is_err());
    let mut unsigned = e.clone();
    unsigned.sig = None;
    assert!(verify(&unsigned, &public).is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(key_path(&paths))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(!format!("{key:?}").contains(&std::fs::read_to_string(key_path(&paths)).unwrap()));
}

#[test]
fn pins_on_first_sight_and_alerts_on_change_until_trusted() {
    let mut k = KnownNodes::default();
    assert_eq!(k.observe("b", "k1", "t0"), Pin::New);
    assert_eq!(k.observe("b", "k1", "t1"), Pin::Trusted);
    assert_eq!(
        k.observe("b", "k2", "t2"),
        Pin::Changed {
            pinned: "k1".into()
        }
    );
    assert_eq!(k.trusted_key("b"), Some("k1"));
    assert_eq!(k.alerts(), vec!["b".to_string()]);
    assert!(k.trust_offered("b", "t3"));
    assert_eq!(k.trusted_key("b"), Some("k2"));
    assert!(k.alerts().is_empty());
    assert!(!k.trust_offered("b", "t4"));
}
