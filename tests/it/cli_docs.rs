//! Documentation that stands alone and matches the code: a man page for every
//! subcommand, help examples that never wrap mid-command, every `mesh.toml` key
//! documented, and no reference to files outside the project.

use crate::common::{bin, gm, run};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn project() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `gitmesh ARGS` (no node root needed), asserting success; its stdout.
fn output(args: &[&str]) -> String {
    let mut c = Command::new(bin());
    c.args(args);
    let out = run(c);
    assert!(
        out.status.success(),
        "gitmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every visible command path: `[]`, `["mesh-sync"]`, `["nodes", "trust"]`, ...
fn commands() -> Vec<Vec<String>> {
    fn names(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            // A name is indented by two; its wrapped description by more.
            .filter(|l| !l[2..].starts_with(' '))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|n| n != "help")
            .collect()
    }
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        for n in names(&output(&args)) {
            let mut p = path.clone();
            p.push(n);
            out.push(p);
        }
        i += 1;
    }
    out
}

#[test]
fn man_writes_a_page_for_every_subcommand_with_the_shared_sections() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    let printed = output(&["man", "--dir", man.to_str().unwrap()]);
    assert!(printed.starts_with("wrote "), "{printed}");
    let cmds = commands();
    assert!(cmds.len() > 20, "{cmds:?}");
    for c in &cmds {
        let name = std::iter::once("gitmesh".to_string())
            .chain(c.iter().cloned())
            .collect::<Vec<_>>()
            .join("-");
        let page = std::fs::read_to_string(man.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no page for {c:?}: {e}"));
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH EXIT STATUS",
        ] {
            assert!(page.contains(section), "{name}: no {section}");
        }
        assert!(page.contains("GITMESH_ROOT") && page.contains("mesh.toml") && page.contains("75"));
        // Every page another page names exists.
        for line in page.lines() {
            if let Some(rest) = line
                .strip_prefix("gitmesh\\-")
                .or_else(|| line.strip_prefix("gitmesh-"))
                && let Some(end) = rest.find("(1)")
            {
                let file = format!("gitmesh-{}.1", rest[..end].replace("\\-", "-"));
                assert!(
                    man.join(&file).exists(),
                    "{name} names {file}, which is missing"
                );
            }
        }
    }
    // One page printed by name, as written.
    let sync = output(&["man", "mesh-sync"]);
    assert_eq!(
        sync,
        std::fs::read_to_string(man.join("gitmesh-mesh-sync.1")).unwrap()
    );
    let (code, _) = {
        let mut c = gm(dir.path());
        c.args(["--json", "man", "no-such-command"]);
        let out = run(c);
        (out.status.code(), out)
    };
    assert_eq!(code, Some(2));
}

#[test]
fn help_examples_never_wrap_mid_command() {
    for c in commands() {
        let mut args: Vec<&str> = c.iter().map(String::as_str).collect();
        args.push("--help");
        let help = output(&args);
        let mut in_examples = false;
        let mut continued = false;
        for line in help.lines() {
            if line.starts_with("Example") {
                in_examples = true;
                continue;
            }
            if line.trim().is_empty() {
                in_examples = false;
                continue;
            }
            if !in_examples {
                continue;
            }
            let starts_command = ["  gitmesh ", "  curl ", "  printf "]
                .iter()
                .any(|p| line.starts_with(p));
            assert!(
                starts_command || continued,
                "gitmesh {args:?}: an example wrapped mid-command: {line:?}\n{help}"
            );
            continued = line.ends_with('\\');
        }
    }
}

/// Field names of the structs in `src/config.rs` that are read from `mesh.toml`.
fn config_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(project().join("src/config.rs")).unwrap();
    let mut keys = BTreeSet::new();
    let mut in_struct = false;
    let mut rename: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("pub struct ") && t.ends_with('{') {
            in_struct = true;
            continue;
        }
        if t == "}" {
            in_struct = false;
            continue;
        }
        if !in_struct {
            continue;
        }
        if let Some(r) = t.strip_prefix("#[serde(rename = \"") {
            rename = r.split('"').next().map(str::to_string);
            continue;
        }
        if let Some(field) = t.strip_prefix("pub ").and_then(|f| f.split(':').next()) {
            keys.insert(rename.take().unwrap_or_else(|| field.trim().to_string()));
        }
    }
    keys
}

#[test]
fn every_mesh_toml_key_is_documented() {
    let keys = config_keys();
    for expected in [
        "node_id",
        "strict_schemas",
        "lease_ttl",
        "lock_wait",
        "schemas",
        "import_policy",
        "health",
        "min_free_mb",
        "match",
    ] {
        assert!(
            keys.contains(expected),
            "the parser missed {expected}: {keys:?}"
        );
    }
    let doc = std::fs::read_to_string(project().join("docs/configuration.md")).unwrap();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            ![
                format!("\n{k} = "),
                format!("`{k}`"),
                format!("[{k}]"),
                format!(".{k}`"),
            ]
            .iter()
            .any(|form| doc.contains(form.as_str()))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "keys of src/config.rs missing in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn no_doc_or_comment_cites_a_design_file_outside_the_project() {
    let mut files = vec![
        project().join("README.md"),
        project().join("ARCHITECTURE.md"),
    ];
    let mut dirs = vec![
        project().join("src"),
        project().join("docs"),
        project().join("tests"),
    ];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs" || x == "md") {
                files.push(p);
            }
        }
    }
    let needle = ["DESIGN", ".md"].concat();
    let phrase = ["the ", "design"].concat();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains(&needle), "{} cites {needle}", f.display());
        assert!(
            !text.to_lowercase().contains(&phrase),
            "{} cites an outside design",
            f.display()
        );
    }
}
