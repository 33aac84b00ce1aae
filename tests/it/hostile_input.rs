//! Every malformed input a user or an attacker with push access could produce, fed to
//! the importer (through a real shared remote) and to the CLI, each with its expected
//! outcome, and a check that nothing already stored changed. The catalogue is
//! docs/reliability.md, section "Hostile input".

use crate::common::mesh::*;
use crate::common::{TestEnv, deliver, git, gm, json_err, json_ok, run, sync};
use gitmesh::Envelope;
use gitmesh::keys::NodeKey;
use serde_json::Value;
use std::path::{Path, PathBuf};

struct Mesh {
    _env: TestEnv,
    victim: PathBuf,
    work: Work,
    pkey: NodeKey,
    qkey: NodeKey,
    /// p's next event (seq 3), not yet in the ledger.
    next: Envelope,
    /// q's first event (seq 1), already imported.
    q1: Envelope,
    day: u32,
    cases: usize,
}

impl Mesh {
    fn new() -> Mesh {
        let env = TestEnv::with_remote();
        let [victim, p, q] = env.nodes(["victim", "p", "q"]);
        publish(&p, 2, "p");
        sync(&p);
        publish(&q, 1, "q");
        deliver(&q, &victim, 3);
        publish(&p, 1, "next");
        let next = own_events(&p, "p")[2].clone();
        assert_eq!(next.seq, 3);
        let q1 = own_events(&q, "q")[0].clone();
        let work = Work::clone(&env.url(), &env.path().join("work"));
        Mesh {
            victim,
            work,
            pkey: key_of(&p),
            qkey: key_of(&q),
            next,
            q1,
            day: 0,
            cases: 0,
            _env: env,
        }
    }

    /// A fresh batch path in p's (or another) outbox.
    fn path(&mut self, node: &str) -> String {
        self.day += 1;
        format!(
            "event_mesh/outbox/{node}/2027-01-{:02}/000000000003.ndjson",
            self.day
        )
    }

    /// Pushes `files`, syncs the victim, and checks the rejections and that the log is unchanged.
    fn expect(&mut self, case: &str, files: &[(&str, &[u8])], want: &[&str]) -> Value {
        let before = log_bytes(&self.victim);
        self.work.push_files(files, case);
        let v = sync(&self.victim);
        let mut got = reasons(&v["import"]);
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "case {case}: {v}");
        assert_eq!(v["import"]["imported_events"], 0, "case {case}: {v}");
        assert_eq!(log_bytes(&self.victim), before, "case {case}: log changed");
        self.cases += 1;
        v
    }

    fn expect_line(&mut self, case: &str, node: &str, line: &[u8], want: &str) -> Value {
        let path = self.path(node);
        self.expect(case, &[(&path, line)], &[want])
    }

    /// p's next event with `f` applied to its JSON, id recomputed when `reid`, signed by p.
    fn mutated(&self, reid: bool, f: impl Fn(&mut Envelope)) -> Vec<u8> {
        let mut e = self.next.clone();
        f(&mut e);
        if reid {
            e.event_id = gitmesh::event::compute_id(&e, e.id_form()).unwrap();
            e.correlation_id = e.event_id.clone();
        }
        signed_line(&e, &self.pkey).into_bytes()
    }

    /// p's next event, signed, as JSON to edit.
    fn json(&self) -> serde_json::Map<String, Value> {
        serde_json::from_str(&signed_line(&self.next, &self.pkey)).unwrap()
    }
}

fn line_of(v: serde_json::Map<String, Value>) -> Vec<u8> {
    format!("{}\n", Value::Object(v)).into_bytes()
}

fn nested(depth: usize) -> Value {
    let mut v = Value::from(1);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn hostile_ledger_input_is_quarantined_and_changes_nothing_stored() {
    let mut m = Mesh::new();
    let good = signed_line(&m.next, &m.pkey);

    // Broken JSON and envelopes.
    let half = &good.as_bytes()[..good.len() / 2];
    m.expect_line(
        "truncated JSON",
        "p",
        &[half, b"\n"].concat(),
        "invalid_json",
    );
    m.expect_line("not JSON", "p", b"{]\n", "invalid_json");
    m.expect_line("JSON but not an object", "p", b"[1,2]\n", "invalid_event");
    let mut j = m.json();
    j.insert("seq".into(), Value::from("3"));
    m.expect_line(
        "wrong type (seq as string)",
        "p",
        &line_of(j),
        "invalid_event",
    );
    let mut j = m.json();
    j.remove("topic");
    m.expect_line("missing field", "p", &line_of(j), "invalid_event");
    let mut j = m.json();
    j.insert("admin".into(), Value::Bool(true));
    m.expect_line("unknown field", "p", &line_of(j), "invalid_event");
    let dup = good.replacen('{', "{\"topic\":\"scaling\",", 1);
    m.expect_line("duplicate key", "p", dup.as_bytes(), "duplicate_key");
    let mut bad_utf8 = good.as_bytes().to_vec();
    bad_utf8.splice(10..10, [0xff, 0xfe]);
    m.expect_line("not UTF-8", "p", &bad_utf8, "not_utf8");

    // Sizes and nesting.
    let long = format!("{{\"x\":\"{}\"}}\n", "a".repeat(1_100_000));
    m.expect_line("line over 1 MiB", "p", long.as_bytes(), "line_too_long");
    let huge = vec![b' '; 5 << 20];
    m.expect_line("file over 4 MiB", "p", &huge, "file_too_large");
    let big = m.mutated(true, |e| {
        e.payload
            .insert("blob".into(), Value::from("x".repeat(70_000)));
    });
    m.expect_line("payload over 64 KiB", "p", &big, "invalid_event");
    let deep = m.mutated(true, |e| {
        e.payload.insert("deep".into(), nested(40));
    });
    m.expect_line("payload nested 40 deep", "p", &deep, "invalid_event");
    let mut j = m.json();
    j.insert("payload".into(), serde_json::json!({"deep": nested(126)}));
    let very_deep = line_of(j);
    let v = m.expect_line("JSON nested 130 deep", "p", &very_deep, "invalid_event");
    assert!(
        v["import"]["rejected"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("recursion limit")
    );
    let secret = m.mutated(true, |e| {
        e.payload.insert("password".into(), Value::from("hunter2"));
    });
    m.expect_line("secret in payload", "p", &secret, "invalid_event");

    // Ids, node ids and signatures.
    let tampered = m.mutated(false, |e| {
        e.payload.insert("tag".into(), Value::from("forged"));
    });
    m.expect_line("id does not match content", "p", &tampered, "id_mismatch");
    let q_in_p = signed_line(&m.q1, &m.qkey);
    m.expect_line(
        "forged node_id (q's event in p's outbox)",
        "p",
        q_in_p.as_bytes(),
        "wrong_node",
    );
    let mut j = m.json();
    j.insert("sig".into(), Value::from("00".repeat(64)));
    m.expect_line("forged signature", "p", &line_of(j), "bad_signature");
    let mut j = m.json();
    j.insert("sig".into(), Value::from("zz"));
    m.expect_line("signature not hex", "p", &line_of(j), "invalid_event");
    let mut j = m.json();
    let upper = j["sig"].as_str().unwrap().to_ascii_uppercase();
    j.insert("sig".into(), Value::from(upper));
    m.expect_line(
        "signature in uppercase hex",
        "p",
        &line_of(j),
        "invalid_event",
    );
    // Signed by p over the canonical form, in which this integer rounds to 2^53.
    let big = m.mutated(true, |e| {
        e.payload
            .insert("n".into(), Value::from(9_007_199_254_740_993u64));
    });
    m.expect_line(
        "integer beyond 2^53 (id and signature correct)",
        "p",
        &big,
        "non_canonical",
    );
    let by_q = signed_line(&m.next, &m.qkey);
    m.expect_line(
        "signed by another node's key",
        "p",
        by_q.as_bytes(),
        "bad_signature",
    );
    let unsigned = format!("{}\n", m.next.to_json_line());
    m.expect_line(
        "unsigned event of a keyed node",
        "p",
        unsigned.as_bytes(),
        "unsigned",
    );
    // p's valid signature replayed on a copy claiming to be q's (id recomputed).
    let mut replay = m.next.clone();
    replay.node_id = "q".into();
    replay.seq = 2;
    replay.prev = m.q1.event_id.clone();
    replay.event_id = gitmesh::event::compute_id(&replay, replay.id_form()).unwrap();
    replay.correlation_id = replay.event_id.clone();
    let mut with_p_sig = replay.clone();
    with_p_sig.sig = serde_json::from_str::<Envelope>(&good).unwrap().sig;
    let replayed = format!("{}\n", with_p_sig.to_json_line());
    m.expect_line(
        "p's signature replayed in q's outbox",
        "q",
        replayed.as_bytes(),
        "bad_signature",
    );
    let resigned = signed_line(&replay, &m.pkey);
    m.expect_line(
        "q's event re-signed by p",
        "q",
        resigned.as_bytes(),
        "bad_signature",
    );

    // Paths and file kinds. Each case plants its own bytes: one object at many bad
    // paths of a peer is stored once (see the check after these cases).
    m.expect(
        "node directory that is not a node id",
        &[(
            "event_mesh/outbox/Evil!/2027-01-01/000000000001.ndjson",
            copy_of(&good, 1).as_slice(),
        )],
        &["bad_node_dir"],
    );
    m.expect(
        "hidden node directory",
        &[(
            "event_mesh/outbox/.p/2027-01-01/000000000001.ndjson",
            copy_of(&good, 2).as_slice(),
        )],
        &["bad_node_dir"],
    );
    m.expect(
        "dot-dot-like directory name",
        &[(
            "event_mesh/outbox/p/..2027/000000000003.ndjson",
            copy_of(&good, 3).as_slice(),
        )],
        &["unexpected_path"],
    );
    m.expect(
        "too deep",
        &[(
            "event_mesh/outbox/p/a/b/000000000003.ndjson",
            copy_of(&good, 4).as_slice(),
        )],
        &["unexpected_path"],
    );
    m.expect(
        "odd characters in a file name",
        &[(
            "event_mesh/outbox/p/2027-03-01/evil name;rm.ndjson",
            copy_of(&good, 5).as_slice(),
        )],
        &["unexpected_path"],
    );
    m.expect(
        "wrong extension",
        &[(
            "event_mesh/outbox/p/2027-03-01/000000000003.sh",
            copy_of(&good, 6).as_slice(),
        )],
        &["unexpected_path"],
    );
    let again = "event_mesh/outbox/p/2027-02-01/x/000000000003.ndjson";
    m.work
        .push_files(&[(again, copy_of(&good, 4).as_slice())], "same bytes again");
    let v = sync(&m.victim);
    assert_eq!(v["import"]["quarantined"], 0, "{v}");
    assert_eq!(v["import"]["repeated_paths"], 1, "{v}");
    let wrong_name = format!("event_mesh/outbox/p/evt_{}.json", "0".repeat(32));
    m.expect(
        "one-event file named after another id",
        &[(&wrong_name, good.as_bytes())],
        &["name_mismatch"],
    );
    m.work.refresh();
    let link_dir = m.work.dir.join("event_mesh/outbox/p/2027-04-01");
    std::fs::create_dir_all(&link_dir).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", link_dir.join("000000000003.ndjson")).unwrap();
    std::os::unix::fs::symlink("/etc", m.work.dir.join("event_mesh/outbox/p/2027-04-02")).unwrap();
    let before = log_bytes(&m.victim);
    m.work.commit_push("symlinks");
    let v = sync(&m.victim);
    let mut r = reasons(&v["import"]);
    r.sort();
    assert_eq!(r, ["symlink", "unexpected_path"], "{v}");
    assert_eq!(log_bytes(&m.victim), before);
    // A gitlink (submodule) entry where a batch belongs.
    m.work.refresh();
    let head = git(&m.work.dir, &["rev-parse", "HEAD"]);
    git(
        &m.work.dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!(
                "160000,{},event_mesh/outbox/p/2027-05-01/000000000003.ndjson",
                head.trim()
            ),
        ],
    );
    git(&m.work.dir, &["commit", "--quiet", "-m", "gitlink"]);
    git(&m.work.dir, &["push", "--quiet", "origin", "HEAD:main"]);
    let before = log_bytes(&m.victim);
    let v = sync(&m.victim);
    assert_eq!(reasons(&v["import"]), ["not_a_file"], "{v}");
    assert_eq!(log_bytes(&m.victim), before);

    // Rewriting history that was imported already.
    m.work.refresh();
    let p_batches: Vec<String> = git(&m.work.dir, &["ls-files", "event_mesh/outbox/p"])
        .lines()
        .filter(|f| f.contains("/20") && !f.contains("2027-"))
        .map(str::to_string)
        .collect();
    assert_eq!(p_batches.len(), 1, "{p_batches:?}");
    let path = p_batches[0].clone();
    m.expect(
        "imported batch rewritten",
        &[(&path, good.as_bytes())],
        &["history_rewrite"],
    );
    m.work.refresh();
    std::fs::remove_file(m.work.dir.join(&path)).unwrap();
    let before = log_bytes(&m.victim);
    m.work.commit_push("delete p's batch");
    let v = sync(&m.victim);
    assert_eq!(reasons(&v["import"]), ["history_rewrite"], "{v}");
    assert_eq!(log_bytes(&m.victim), before);
    let st = json_ok(&m.victim, &["mesh-status"]);
    assert!(
        st["rewrite_alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["node_id"] == "p")
    );

    // After all that, a valid event still goes through, appended after the old bytes.
    let before = log_bytes(&m.victim);
    let path = m.path("p");
    m.work.push_files(&[(&path, good.as_bytes())], "valid");
    let v = sync(&m.victim);
    assert_eq!(v["import"]["imported_events"], 1, "{v}");
    let after = log_bytes(&m.victim);
    assert!(after.starts_with(&before), "only appended");
    let added: Envelope = serde_json::from_slice(after[before.len()..].trim_ascii()).unwrap();
    assert_eq!(added.event_id, m.next.event_id);
    assert!(m.cases >= 30, "{} cases", m.cases);
    // Quarantine never holds more than 64 KiB per item.
    for e in std::fs::read_dir(m.victim.join("state/event_mesh/quarantine"))
        .unwrap()
        .flatten()
    {
        assert!(e.metadata().unwrap().len() <= 64 * 1024);
    }
}

/// `line` with `n` trailing spaces: other bytes, read the same wherever the path is refused unread.
fn copy_of(line: &str, n: usize) -> Vec<u8> {
    format!("{line}{}", " ".repeat(n)).into_bytes()
}

fn cli_err(root: &Path, args: &[&str]) -> (i32, String, String) {
    let (code, v) = json_err(root, args);
    (
        code,
        v["error"]["kind"].as_str().unwrap_or("").to_string(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn hostile_cli_and_config_input_is_refused_with_the_culprit_named() {
    let env = TestEnv::new();
    let root = env.node("n1");
    publish(&root, 1, "kept");
    let before = log_bytes(&root);
    let cfg_path = root.join("mesh.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();

    // Config files.
    for (case, text, named) in [
        (
            "unknown top-level key",
            format!("bogus_key = 1\n{cfg}"),
            "bogus_key",
        ),
        (
            "invalid value",
            cfg.replace("require_signatures = false", "require_signatures = \"yes\""),
            "require_signatures",
        ),
        (
            "unknown key in a section",
            cfg.replace("[sync]", "[sync]\npushretries = 3"),
            "pushretries",
        ),
        ("not TOML", "node_id = \n[[[".to_string(), "mesh.toml"),
    ] {
        std::fs::write(&cfg_path, &text).unwrap();
        let (code, kind, msg) = cli_err(&root, &["mesh-status"]);
        assert_eq!((code, kind.as_str()), (1, "config"), "{case}: {msg}");
        assert!(msg.contains(named), "{case}: {msg}");
        std::fs::write(&cfg_path, &cfg).unwrap();
    }

    // Publish input.
    let base = [
        "mesh-publish",
        "--topic",
        "monitoring",
        "--event-type",
        "x.y",
    ];
    let payload = "--payload-json";
    for (case, flag, value, named) in [
        ("truncated payload", payload, r#"{"a":"#, "--payload-json"),
        ("payload not an object", payload, "[1]", "JSON object"),
        (
            "duplicate key in payload",
            payload,
            r#"{"a":1,"a":2}"#,
            r#"duplicate key "a""#,
        ),
        (
            "secret in payload",
            payload,
            r#"{"db":{"password":"x"}}"#,
            "$.db.password",
        ),
        (
            "GitHub token in payload",
            payload,
            r#"{"note":"ghp_abcdefghijklmnopqrstuvwxyz0123456789"}"#,
            "$.note",
        ),
        ("bad topic", "--topic", "Bad Topic!", "topic"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        if flag == "--topic" {
            args[2] = value;
        } else {
            args.extend([flag, value]);
        }
        let (code, _, msg) = cli_err(&root, &args);
        assert!(code == 1 || code == 2, "{case}: exit {code}");
        assert!(msg.contains(named), "{case}: {msg}");
        assert_eq!(log_bytes(&root), before, "{case}");
    }
    // A batch on stdin with one bad line writes nothing and names the line.
    let mut c = gm(&root);
    c.args(["--json", "mesh-publish", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"topic\":\"monitoring\",\"event_type\":\"a.b\",\"payload\":{}}\n{\"topic\":\"monitoring\",\"topic\":\"x\",\"event_type\":\"a.b\"}\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2: duplicate key"),
        "{v}"
    );
    assert_eq!(log_bytes(&root), before);

    // Node ids that try to leave the node root or the outbox.
    for bad in ["../x", "a/b", ".hidden", ""] {
        let (code, _, msg) = cli_err(&env.path().join("other"), &["mesh-init", "--node-id", bad]);
        assert_eq!(code, 2, "{bad:?}: {msg}");
        assert!(msg.contains("--node-id"), "{bad:?}: {msg}");
    }
    let (_, kind, _) = cli_err(&root, &["nodes", "trust", "../../etc"]);
    assert_eq!(kind, "not_found");
    let mut c = gm(&root);
    c.args(["mesh-status"]);
    assert!(run(c).status.success());
    assert_eq!(log_bytes(&root), before);
}
