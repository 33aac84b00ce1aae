//! `gitmesh man`: a roff manual page for gitmesh and for every subcommand, each with
//! ENVIRONMENT, FILES and EXIT STATUS sections; one printed, or all written to a directory.

use super::Output;
use gitmesh::Error;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Flags of `man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The subcommand whose page to print, e.g. `mesh-sync` or `nodes trust` (default: gitmesh's own)
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page (gitmesh.1, gitmesh-mesh-sync.1, ...) into DIR instead of printing one
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// Environment variables gitmesh reads, as (name, meaning).
const ENVIRONMENT: &[(&str, &str)] = &[
    ("GITMESH_ROOT", "The node root when --root is not given."),
    ("GITMESH_NODE_ID", "Overrides node_id of mesh.toml."),
    ("GITMESH_REMOTE", "Overrides [ledger] remote of mesh.toml."),
    (
        "GITMESH_GIT_TOKEN, GITHUB_TOKEN",
        "Credentials for an https remote, passed to git per command; never written to disk, printed, or given to handlers and lanes.",
    ),
    (
        "GITMESH_LOG_SEGMENT_BYTES",
        "Size at which the event log is sealed into a segment (meant for tests).",
    ),
    ("RUST_LOG", "Log filter, e.g. gitmesh=debug."),
];

/// Files of a node root, as (path, meaning).
const FILES: &[(&str, &str)] = &[
    (
        "mesh.toml",
        "The node's configuration (docs/configuration.md).",
    ),
    (
        "artifacts/event_mesh/events.ndjson",
        "The active part of the append-only event log; sealed parts are under segments/ beside it.",
    ),
    (
        "state/event_mesh/",
        "Derived and bookkeeping state: log head and indexes, cursors, import state, quarantine, keys.",
    ),
    (
        "state/event_mesh/sync_state.json",
        "The last sync attempt and the last success, written by every process that syncs.",
    ),
    (
        "state/event_mesh/daemon.lock",
        "Held by a running daemon; holds its pid, start time and HTTP address.",
    ),
    (
        "state/github_coordination/",
        "The node's bare clone of the shared ledger repository.",
    ),
    (
        "state/embedded_remote.git/",
        "The default remote when mesh-init was given no --remote.",
    ),
];

/// Exit codes, as (code, meaning).
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "Failure; with --json, error.kind says which (auth, rejected and not_found: the remote refused; waiting will not fix it).",
    ),
    ("2", "Usage error: a bad flag, value, or mesh.toml."),
    (
        "3",
        "mesh-status --check: the node is unhealthy (the reasons are printed).",
    ),
    (
        "75",
        "Local work done but the remote was not updated (unreachable, silent past [sync] remote_timeout, or every push lost a race): retry later.",
    ),
];

pub fn run(a: Args) -> Result<Output, Error> {
    let mut root = <super::Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    root.build();
    let pages = pages(&root);
    if let Some(dir) = &a.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::usage(format!("--dir {}: {e}", dir.display())))?;
        let mut files = Vec::new();
        for (name, cmd) in &pages {
            let file = dir.join(format!("{name}.1"));
            std::fs::write(&file, render(cmd)?)
                .map_err(|e| Error::usage(format!("--dir: writing {}: {e}", file.display())))?;
            files.push(file.display().to_string());
        }
        let human = format!("wrote {} man pages to {}\n", files.len(), dir.display());
        return Ok(Output::new(json!({"dir": dir, "pages": files}), human));
    }
    let wanted = std::iter::once("gitmesh".to_string())
        .chain(a.command.iter().cloned())
        .collect::<Vec<_>>()
        .join("-");
    let Some((_, cmd)) = pages.iter().find(|(n, _)| *n == wanted) else {
        return Err(Error::usage(format!(
            "man: no subcommand {:?}; try `gitmesh --help`",
            a.command.join(" ")
        )));
    };
    let text = String::from_utf8_lossy(&render(cmd)?).into_owned();
    Ok(Output::new(
        json!({"page": wanted, "man": text}),
        text.clone(),
    ))
}

/// Every visible command with its page name (`gitmesh`, `gitmesh-nodes-trust`, ...).
fn pages(cmd: &clap::Command) -> Vec<(String, clap::Command)> {
    fn walk(cmd: &clap::Command, name: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, format!("{name}-{}", sub.get_name()), out);
        }
        out.push((name, cmd.clone()));
    }
    let mut out = Vec::new();
    walk(cmd, cmd.get_name().to_string(), &mut out);
    out.reverse();
    out
}

/// One page: clap_mangen's sections, the command's examples unfilled, then the shared sections.
fn render(cmd: &clap::Command) -> Result<Vec<u8>, Error> {
    let man = clap_mangen::Man::new(cmd.clone());
    let failed = |e: std::io::Error| Error::usage(format!("rendering the man page: {e}"));
    let mut buf = Vec::new();
    man.render_title(&mut buf).map_err(failed)?;
    man.render_name_section(&mut buf).map_err(failed)?;
    man.render_synopsis_section(&mut buf).map_err(failed)?;
    man.render_description_section(&mut buf).map_err(failed)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf).map_err(failed)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut buf).map_err(failed)?;
    }
    let mut extra = String::new();
    if let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        // Examples are commands: shown as typed, never filled or wrapped.
        let _ = writeln!(extra, ".SH EXAMPLES AND NOTES\n.nf");
        for line in after.to_string().lines() {
            let _ = writeln!(extra, "{}", escape(line));
        }
        let _ = writeln!(extra, ".fi");
    }
    section(&mut extra, "ENVIRONMENT", ENVIRONMENT);
    section(&mut extra, "FILES", FILES);
    section(&mut extra, "EXIT STATUS", EXIT_STATUS);
    let _ = writeln!(
        extra,
        ".SH SEE ALSO\nThe documentation pages of gitmesh (docs/*.md), gitmesh(1)."
    );
    buf.extend_from_slice(extra.as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(&mut buf).map_err(failed)?;
    }
    Ok(buf)
}

/// A `.SH` section of tagged paragraphs.
fn section(out: &mut String, title: &str, rows: &[(&str, &str)]) {
    let _ = writeln!(out, ".SH {title}");
    for (tag, text) in rows {
        let _ = writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(tag), escape(text));
    }
}

/// Text safe on a roff line: backslashes escaped, a leading `.` or `'` made literal.
fn escape(line: &str) -> String {
    let s = line.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}
