use super::*;

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

fn skey(event_type: &str, version: u32) -> SchemaKey {
    SchemaKey {
        topic: "audit".into(),
        event_type: event_type.into(),
        version,
    }
}

const V2: &[u8] = br#"{"type":"object","x-gitmesh-upcast":{"from":1,"steps":[{"rename":{"from":"a","to":"b"}}]}}"#;

/// Only `ws1`, with key 1, is a publisher.
fn publishers(signer: &str) -> Result<VerifyingKey, String> {
    match signer {
        "ws1" => Ok(keys::parse_public("ws1", &key(1).public_hex()).unwrap()),
        other => Err(format!("node {other:?} does not have the schema role")),
    }
}

fn signed(by: &str, k: u8) -> Vec<u8> {
    SchemaSig::create(&skey("login.seen", 2), V2, by, &key(k))
        .unwrap()
        .to_file()
}

#[test]
fn a_publishers_signature_verifies_and_survives_reformatting() {
    let sig = signed("ws1", 1);
    assert_eq!(
        verify(&skey("login.seen", 2), V2, Some(&sig), publishers),
        Ok("ws1".into())
    );
    // Canonical JSON: whitespace and key order do not matter.
    let pretty = br#"{
  "x-gitmesh-upcast": {"steps": [{"rename": {"to": "b", "from": "a"}}], "from": 1},
  "type": "object"
}"#;
    assert_eq!(
        verify(&skey("login.seen", 2), pretty, Some(&sig), publishers),
        Ok("ws1".into())
    );
}

#[test]
fn unsigned_or_altered_schemas_and_upcasters_are_refused() {
    let k = skey("login.seen", 2);
    assert_eq!(verify(&k, V2, None, publishers), Err(SigRefusal::Unsigned));
    let sig = signed("ws1", 1);
    // An upcaster rewritten after signing: the hash differs.
    let forged =
        br#"{"type":"object","x-gitmesh-upcast":{"from":1,"steps":[{"remove":{"path":"a"}}]}}"#;
    assert_eq!(
        verify(&k, forged, Some(&sig), publishers),
        Err(SigRefusal::DigestMismatch {
            signer: "ws1".into()
        })
    );
    // The same schema with its hash and signature moved to another type or version.
    for other in [skey("logout.seen", 2), skey("login.seen", 3)] {
        assert!(matches!(
            verify(&other, V2, Some(&sig), publishers),
            Err(SigRefusal::WrongTarget { .. })
        ));
    }
    // A record edited after signing (a hash swapped in) no longer verifies.
    let mut s = SchemaSig::parse(&sig).unwrap();
    s.schema_blake3 = digest(forged).unwrap();
    assert_eq!(
        verify(&k, forged, Some(&s.to_file()), publishers),
        Err(SigRefusal::BadSignature {
            signer: "ws1".into()
        })
    );
    // A duplicate key in the schema cannot be hashed.
    assert!(matches!(
        verify(
            &k,
            br#"{"type":"object","type":"string"}"#,
            Some(&sig),
            publishers
        ),
        Err(SigRefusal::BadSchema(_))
    ));
}

#[test]
fn only_publishers_keys_count() {
    let k = skey("login.seen", 2);
    // A node without the role, even with a valid self-signature.
    match verify(&k, V2, Some(&signed("ws2", 2)), publishers) {
        Err(SigRefusal::NotPublisher { signer, reason }) => {
            assert_eq!(signer, "ws2");
            assert!(reason.contains("schema role"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // A record claiming the publisher but signed with another key.
    assert_eq!(
        verify(&k, V2, Some(&signed("ws1", 2)), publishers),
        Err(SigRefusal::BadSignature {
            signer: "ws1".into()
        })
    );
}

#[test]
fn signature_files_are_bounded_and_strict() {
    let k = skey("login.seen", 2);
    let big = vec![b' '; MAX_SIG_BYTES as usize + 1];
    assert!(matches!(
        verify(&k, V2, Some(&big), publishers),
        Err(SigRefusal::TooLarge(_))
    ));
    let sig = String::from_utf8(signed("ws1", 1)).unwrap();
    let dup = sig.replacen('{', r#"{"signed_by":"ws1","#, 1);
    assert!(matches!(
        verify(&k, V2, Some(dup.as_bytes()), publishers),
        Err(SigRefusal::Malformed(_))
    ));
    let extra = sig.replacen('{', r#"{"note":"x","#, 1);
    assert!(matches!(
        verify(&k, V2, Some(extra.as_bytes()), publishers),
        Err(SigRefusal::Malformed(_))
    ));
    let other_format = sig.replace(SIG_FORMAT, "gitmesh-schema-sig/9");
    assert!(matches!(
        verify(&k, V2, Some(other_format.as_bytes()), publishers),
        Err(SigRefusal::Malformed(_))
    ));
}

#[test]
fn signature_file_names() {
    assert_eq!(sig_file_name(3), "v3.sig.json");
    assert!(is_sig_file_name("v3.sig.json"));
    for not in [
        "v3.json",
        "v0.sig.json",
        "v03.sig.json",
        "x.sig.json",
        "v3.sig",
    ] {
        assert!(!is_sig_file_name(not), "{not}");
    }
}
