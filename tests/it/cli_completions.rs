//! Shell completions and the man page are generated from the clap definitions.

use crate::common;
use std::process::Command;

fn gitmesh(args: &[&str]) -> String {
    let out = Command::new(common::bin())
        .args(args)
        .output()
        .expect("run gitmesh");
    assert!(
        out.status.success(),
        "gitmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The subcommands `gitmesh --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = gitmesh(&["--help"]);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect();
    assert!(
        list.len() >= 5,
        "too few subcommands found in --help:\n{help}"
    );
    assert!(list.iter().any(|c| c == "daemon"), "{list:?}");
    list
}

#[test]
fn completions_generate_for_bash_zsh_and_fish() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = gitmesh(&["completions", shell]);
        assert!(
            script.contains("gitmesh"),
            "{shell} script names the binary"
        );
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
    }
    let bash = gitmesh(&["completions", "bash"]);
    assert!(
        bash.contains("complete -F"),
        "bash registers a completion function"
    );
    let fish = gitmesh(&["completions", "fish"]);
    assert!(fish.contains("complete -c gitmesh"));
    let zsh = gitmesh(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef gitmesh"));
}

#[test]
fn man_page_mentions_every_subcommand() {
    let man = gitmesh(&["man"]);
    assert!(
        man.contains(".TH gitmesh 1"),
        "roff with a title:\n{}",
        &man[..man.len().min(200)]
    );
    for c in subcommands() {
        // roff escapes '-' as '\-'.
        let escaped = c.replace('-', "\\-");
        assert!(
            man.contains(&c) || man.contains(&escaped),
            "man page lacks {c}"
        );
    }
}
