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

/// `n` events signed by `key`, each a different seq.
fn signed(key: &NodeKey, n: u64) -> Vec<Envelope> {
    (1..=n)
        .map(|seq| {
            let mut e = env();
            e.seq = seq;
            e.event_id = format!("evt_{seq:032x}");
            e.sig = Some(key.sign(&e).unwrap());
            e
        })
        .collect()
}

#[test]
fn batch_verification_accepts_good_signatures_on_any_number_of_threads() {
    let key = NodeKey::from_secret([7; 32]);
    let public = parse_public("a", &key.public_hex()).unwrap();
    let events = signed(&key, 3 * VERIFY_BATCH as u64 + 5);
    let refs: Vec<&Envelope> = events.iter().collect();
    for threads in [1, 2, 3, 16] {
        let v = verify_many(&refs, &public, threads);
        assert_eq!(v.len(), refs.len());
        assert!(v.iter().all(Result::is_ok), "threads {threads}");
    }
    assert!(verify_many(&[], &public, 4).is_empty());
}

#[test]
fn a_bad_signature_in_a_batch_is_named_and_its_neighbours_pass() {
    let key = NodeKey::from_secret([7; 32]);
    let public = parse_public("a", &key.public_hex()).unwrap();
    let mut events = signed(&key, 2 * VERIFY_BATCH as u64 + 9);
    // A signature of another event, a payload changed after signing, no signature.
    events[3].sig = events[4].sig.clone();
    events[VERIFY_BATCH + 1]
        .payload
        .insert("x".into(), 1.into());
    events[2 * VERIFY_BATCH + 2].sig = None;
    let refs: Vec<&Envelope> = events.iter().collect();
    let bad = [3, VERIFY_BATCH + 1, 2 * VERIFY_BATCH + 2];
    for threads in [1, 3] {
        let v = verify_many(&refs, &public, threads);
        for (i, r) in v.iter().enumerate() {
            match r {
                Err(KeyError::BadSignature { event_id, .. }) => {
                    assert!(bad.contains(&i), "event {i} failed");
                    assert_eq!(event_id, &events[i].event_id);
                }
                Err(e) => panic!("{e}"),
                Ok(()) => assert!(!bad.contains(&i), "event {i} passed"),
            }
        }
        // Batches agree with the one-by-one check.
        for (e, r) in events.iter().zip(&v) {
            assert_eq!(verify(e, &public).is_ok(), r.is_ok());
        }
    }
}
