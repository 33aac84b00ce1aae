use super::*;

#[test]
fn path_shapes() {
    assert_eq!(
        classify("p1/2026-11-23/000000000001.ndjson"),
        Shape::Batch { node: "p1".into() }
    );
    let id = format!("evt_{}", "a".repeat(32));
    assert_eq!(
        classify(&format!("p1/{id}.json")),
        Shape::Single {
            node: "p1".into(),
            event_id: id
        }
    );
    for (path, want) in [
        ("P!/x/y.ndjson", Reason::BadNodeDir),
        ("p1/a/b/c.ndjson", Reason::UnexpectedPath),
        ("p1/../x.ndjson", Reason::UnexpectedPath),
        ("p1/readme.txt", Reason::UnexpectedPath),
    ] {
        let shape = classify(path);
        assert!(
            matches!(shape, Shape::Bad(r, _) if r == want),
            "{path}: {shape:?}"
        );
    }
}

#[test]
fn bad_lines_are_named_and_the_rest_survive() {
    let limits = ImportLimits {
        max_line_bytes: 100,
        ..ImportLimits::new(PayloadLimits::default())
    };
    let long = "x".repeat(200);
    let text = format!("{{\"event_id\":\n\n[1]\n{long}\n");
    let results = check_batch("p1", text.as_bytes(), &limits);
    let reasons: Vec<(usize, Reason)> = results
        .iter()
        .filter_map(|r| match r {
            LineResult::Rejected { line, reason, .. } => Some((*line, *reason)),
            LineResult::Event(_) => None,
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (1, Reason::InvalidJson),
            (3, Reason::InvalidEvent),
            (4, Reason::LineTooLong)
        ]
    );
}

#[test]
fn duplicate_keys_are_found_at_any_depth() {
    assert!(find_duplicate_key(br#"{"a":1,"b":{"c":2}}"#).is_ok());
    assert!(find_duplicate_key(br#"{"a":1,"a":2}"#).is_err());
    let nested = find_duplicate_key(br#"{"a":[{"x":1,"y":2,"x":3}]}"#).unwrap_err();
    assert!(nested.contains("\"x\""), "{nested}");
    // Not JSON at all is someone else's business.
    assert!(find_duplicate_key(b"{]").is_ok());
    // Escaped and plain spellings of one key are the same key.
    assert!(find_duplicate_key(br#"{"a":1,"\u0061":2}"#).is_err());
}

#[test]
fn signature_rules() {
    let dir = tempfile::tempdir().unwrap();
    let paths = crate::paths::NodePaths::new(dir.path());
    let (key, _) = crate::keys::NodeKey::load_or_create(&paths).unwrap();
    let public = crate::keys::parse_public("p", &key.public_hex()).unwrap();
    let mut env: Envelope = serde_json::from_value(serde_json::json!({
        "event_id": "evt_0123456789abcdef0123456789abcdef",
        "timestamp": "2026-01-02T03:04:05.000006Z", "topic": "t", "event_type": "e",
        "node_id": "p", "source": "cli", "causation_id": "",
        "correlation_id": "evt_0123456789abcdef0123456789abcdef",
        "seq": 1, "prev": "", "payload": {}
    }))
    .unwrap();
    let code = |r: Result<(), (Reason, String)>| r.map_err(|(c, _)| c);
    assert_eq!(
        code(check_signature(&env, KeyCheck::Pinned(&public))),
        Err(Reason::Unsigned)
    );
    assert_eq!(
        code(check_signature(&env, KeyCheck::Unknown { require: false })),
        Ok(())
    );
    assert_eq!(
        code(check_signature(&env, KeyCheck::Unknown { require: true })),
        Err(Reason::Unsigned)
    );
    env.sig = Some(key.sign(&env).unwrap());
    assert_eq!(
        code(check_signature(&env, KeyCheck::Pinned(&public))),
        Ok(())
    );
    assert_eq!(
        code(check_signature(&env, KeyCheck::Unknown { require: true })),
        Err(Reason::NoKey)
    );
    env.seq = 2;
    assert_eq!(
        code(check_signature(&env, KeyCheck::Pinned(&public))),
        Err(Reason::BadSignature),
        "seq is covered by the signature"
    );
}
