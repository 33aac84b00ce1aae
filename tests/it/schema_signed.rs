//! Signed schemas: the ledger's schemas and upcasters count only when a node with the
//! roster's `schema` role signed them. The attacker writes the ledger with plain `git`
//! (or signs as an enrolled member gone bad); each attack is paired with the genuine path.

use crate::common::mesh::{Work, key_of, schema_sig};
use crate::common::{TestEnv, json_err, json_ok, publish_event, sync};
use serde_json::{Value, json};
use std::path::Path;

const DIR: &str = "event_mesh/schemas/audit/login.seen";

/// v2 of `audit/login.seen`: `user` renamed to `login`, which is required.
const V2: &str = r#"{
  "type": "object",
  "required": ["login"],
  "properties": {"login": {"type": "string"}},
  "x-gitmesh-upcast": {"from": 1, "steps": [{"rename": {"from": "user", "to": "login"}}]}
}"#;

fn login(root: &Path, payload: Value, version: Option<u32>) -> Value {
    let p = payload.to_string();
    let v = version.map(|v| v.to_string());
    let mut extra = vec!["--payload-json", p.as_str()];
    if let Some(v) = &v {
        extra.extend(["--schema-version", v.as_str()]);
    }
    publish_event(root, "audit", "login.seen", &extra)
}

/// The node's `audit` events as shown (upcast) by `events`.
fn audit(root: &Path) -> Vec<Value> {
    json_ok(root, &["events", "--topic", "audit"])["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn seen<'a>(events: &'a [Value], id: &Value) -> &'a Value {
    events
        .iter()
        .find(|e| e["event_id"] == *id)
        .unwrap_or_else(|| panic!("{id} not imported: {events:?}"))
}

/// The reason `schema list` gives for refusing the ledger file ending in `file`.
fn refusal(root: &Path, file: &str) -> String {
    let list = json_ok(root, &["schema", "list"]);
    list["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["location"].as_str().unwrap().ends_with(file))
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{file} not refused: {list}"))
}

/// The `mesh-status` alert about the ledger file ending in `file`.
fn alert(root: &Path, file: &str) -> Value {
    let st = json_ok(root, &["mesh-status"]);
    st["authority_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "schema" && a["path"].as_str().unwrap().ends_with(file))
        .cloned()
        .unwrap_or_else(|| panic!("no schema alert for {file}: {st}"))
}

fn has_schema(root: &Path, event_type: &str) -> bool {
    json_ok(root, &["schema", "list"])["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["event_type"] == event_type)
}

fn schemas_src(env: &TestEnv, name: &str, text: &str) -> String {
    let src = env.path().join(name);
    crate::schema_evolution::write(&src.join("audit/login.seen/v2.json"), text);
    src.to_str().unwrap().to_string()
}

#[test]
fn an_unsigned_or_forged_schema_and_upcaster_are_ignored_and_signed_events_still_import() {
    let env = TestEnv::with_remote();
    let [p, victim] = env.nodes(["p", "victim"]);
    let v1 = login(&p, json!({"user": "alice"}), None);
    sync(&p);
    // The attacker plants, with plain git, a v1 no payload satisfies and an unsigned v2
    // whose upcaster rewrites the payload; then a v3 "signed" as p with another key.
    let work = Work::clone(&env.url(), &env.path().join("work"));
    let v3 =
        r#"{"type":"object","x-gitmesh-upcast":{"from":2,"steps":[{"remove":{"path":"login"}}]}}"#;
    let forged_key = gitmesh::keys::NodeKey::from_secret([42; 32]);
    let forged = schema_sig("audit", "login.seen", 3, v3.as_bytes(), "p", &forged_key);
    // And a signature file of 16 MiB that compresses to a few KiB.
    let huge = format!("{{\"pad\":\"{}\"}}", " ".repeat(16 << 20)).into_bytes();
    let upcaster = r#"{"type":"object","x-gitmesh-upcast":{"from":1,"steps":[{"rename":{"from":"user","to":"forged"}}]}}"#;
    work.push_files(
        &[
            (&format!("{DIR}/v1.json"), br#"{"not":{}}"#),
            (&format!("{DIR}/v2.json"), upcaster.as_bytes()),
            (&format!("{DIR}/v3.json"), v3.as_bytes()),
            (&format!("{DIR}/v3.sig.json"), &forged),
            (&format!("{DIR}/v4.json"), br#"{"type":"object"}"#),
            (&format!("{DIR}/v4.sig.json"), &huge),
        ],
        "plant schemas",
    );
    let v1b = login(&p, json!({"user": "bob"}), None);
    sync(&p);

    let s = sync(&victim);
    assert_eq!(s["import"]["imported_events"], 2, "{s}");
    assert_eq!(s["import"]["quarantined"], 0, "{s}");
    assert_eq!(s["import"]["schemas_refused"], 4, "{s}");
    // No planted schema applies: the events are shown as signed, not upcast.
    let events = audit(&victim);
    for (id, user) in [(&v1["event_id"], "alice"), (&v1b["event_id"], "bob")] {
        let e = seen(&events, id);
        assert_eq!(e["payload"], json!({"user": user}), "{e}");
        assert!(e.get("upcast_from").is_none(), "{e}");
    }
    assert!(!has_schema(&victim, "login.seen"));
    for file in ["v1.json", "v2.json"] {
        let why = refusal(&victim, &format!("login.seen/{file}"));
        assert!(why.contains("unsigned"), "{why}");
        let a = alert(&victim, &format!("login.seen/{file}"));
        assert!(a["detail"].as_str().unwrap().contains("unsigned"), "{a}");
    }
    let why = refusal(&victim, "login.seen/v4.json");
    assert!(
        why.contains("signature file not read") && why.contains("the cap is 4096"),
        "{why}"
    );
    let why = refusal(&victim, "login.seen/v3.json");
    assert!(
        why.contains("\"p\"") && why.contains("does not verify"),
        "{why}"
    );
    let text = crate::common::printed(&victim, &["mesh-status"]);
    assert!(
        text.contains(
            "ALERT     schema refused (event_mesh/schemas/audit/login.seen/v2.json): unsigned"
        ),
        "{text}"
    );

    // Control: p, the mesh's schema publisher, publishes v2 over the planted one; the
    // victim now upcasts v1 events through it and imports v2 events.
    // The directory is a copy of the ledger's: its old signature file is skipped, the
    // schema signed anew.
    let src = schemas_src(&env, "src", V2);
    std::fs::write(
        Path::new(&src).join("audit/login.seen/v3.sig.json"),
        &forged,
    )
    .unwrap();
    json_ok(&p, &["schema", "publish", &src]);
    let v2 = login(&p, json!({"login": "carol"}), Some(2));
    sync(&p);
    let s = sync(&victim);
    assert_eq!(s["import"]["imported_events"], 1, "{s}");
    assert_eq!(
        crate::common::schema_row(&victim, "login.seen")["source"],
        "ledger"
    );
    let events = audit(&victim);
    let e = seen(&events, &v1["event_id"]);
    assert_eq!(e["payload"], json!({"login": "alice"}), "{e}");
    assert_eq!(e["upcast_from"], 1, "{e}");
    assert_eq!(seen(&events, &v2["event_id"])["payload"]["login"], "carol");
    // The forged v3 still does not apply, so nothing upcasts past v2.
    assert_eq!(seen(&events, &v1b["event_id"])["schema_version"], 2);

    // Overwriting the verified v2 with an unsigned one leaves the verified copy in use.
    work.push_files(
        &[(&format!("{DIR}/v2.json"), upcaster.as_bytes())],
        "replant",
    );
    sync(&victim);
    let why = refusal(&victim, "login.seen/v2.json");
    assert!(why.contains("stays in use"), "{why}");
    let e = seen(&audit(&victim), &v1["event_id"]).clone();
    assert_eq!(e["payload"], json!({"login": "alice"}), "{e}");
}

#[test]
fn a_member_without_the_schema_role_is_refused_locally_and_ignored_by_peers() {
    let env = TestEnv::with_remote();
    let a = env.node_with("a", &["--trust", "roster"]);
    let b = env.node_with("b", &["--trust", "roster"]);
    let key = key_of(&b).public_hex();
    json_ok(
        &a,
        &["roster", "enroll", "b", "--key", &key, "--role", "member"],
    );
    sync(&a);
    sync(&b);

    // b may publish events but not schemas: refused before anything is staged.
    let src = schemas_src(&env, "src", V2);
    let (code, v) = json_err(&b, &["schema", "publish", &src]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["error"]["kind"], "not_schema_publisher", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("schema role"), "{msg}");
    assert!(
        msg.contains("gitmesh roster roles b member schema"),
        "{msg}"
    );
    assert!(!b.join("state/event_mesh/schema_outbox/audit").exists());

    // b signs a schema with its real key and plants it with git: a ignores it.
    let sig = schema_sig("audit", "login.seen", 2, V2.as_bytes(), "b", &key_of(&b));
    let work = Work::clone(&env.url(), &env.path().join("work"));
    work.push_files(
        &[
            (&format!("{DIR}/v2.json"), V2.as_bytes()),
            (&format!("{DIR}/v2.sig.json"), &sig),
        ],
        "b plants a schema",
    );
    let ev = login(&b, json!({"user": "dave"}), None);
    sync(&b);
    let s = sync(&a);
    assert_eq!(s["import"]["imported_events"], 1, "{s}");
    assert!(!has_schema(&a, "login.seen"));
    let why = refusal(&a, "login.seen/v2.json");
    assert!(
        why.contains("\"b\"") && why.contains("schema role"),
        "{why}"
    );
    let detail = alert(&a, "login.seen/v2.json")["detail"].clone();
    assert!(detail.as_str().unwrap().contains("schema role"), "{detail}");
    assert_eq!(
        seen(&audit(&a), &ev["event_id"])["payload"],
        json!({"user": "dave"})
    );

    // Control: the admin grants b the role; b's own publish then applies at a.
    json_ok(&a, &["roster", "roles", "b", "member", "schema"]);
    sync(&a);
    sync(&b);
    let v2 = schemas_src(
        &env,
        "src2",
        &V2.replace("\"login\"]", "\"login\"], \"title\": \"v2\""),
    );
    let staged = json_ok(&b, &["schema", "publish", &v2]);
    assert_eq!(staged["signed_by"], "b", "{staged}");
    let new = login(&b, json!({"login": "erin"}), Some(2));
    sync(&b);
    let s = sync(&a);
    assert_eq!(s["import"]["imported_events"], 1, "{s}");
    let row = crate::common::schema_row(&a, "login.seen");
    assert_eq!(row["source"], "ledger", "{row}");
    let shown = json_ok(&a, &["schema", "show", "audit", "login.seen"]);
    assert_eq!(shown["schema"]["title"], "v2", "{shown}");
    let events = audit(&a);
    assert_eq!(seen(&events, &new["event_id"])["payload"]["login"], "erin");
    let old = seen(&events, &ev["event_id"]);
    assert_eq!(old["payload"], json!({"login": "dave"}), "{old}");
}
