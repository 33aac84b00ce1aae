//! The command line: clap definitions, one module per subcommand, and output rendering.

mod daemon;
mod dispatch;
mod doctor;
mod events;
mod export;
mod import;
mod init;
mod keys;
mod ledger;
mod man;
mod nodes;
mod publish;
mod roster;
mod schema;
mod status;
mod sync;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::path::PathBuf;

/// gitmesh: a decentralized, git-backed event mesh.
///
/// Every node keeps an append-only event log, shares its own events through one
/// git repository, imports its peers' events, and runs handlers locally.
/// There is no central server; a node keeps working offline.
#[derive(Debug, Parser)]
#[command(name = "gitmesh", version, max_term_width = 100)]
#[command(
    after_help = "Start with:\n  gitmesh --root /tmp/n1 mesh-init --node-id n1\n  \
gitmesh --root /tmp/n1 mesh-publish --topic monitoring --event-type heartbeat.changed\n  \
gitmesh --root /tmp/n1 mesh-status\n\nExit codes: 0 ok, 1 failure, 2 usage error, \
3 unhealthy (mesh-status --check), 75 remote unreachable (local work done; retry later)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts, before or after its name.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Node root directory [default: $GITMESH_ROOT, else the current directory]
    #[arg(long, global = true, env = "GITMESH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print exactly one JSON object on stdout, with "ok": true or false
    #[arg(long, global = true)]
    pub json: bool,
    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=gitmesh=debug)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for journald and log shippers).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node root: mesh.toml, the event log, and the ledger repository.
    #[command(
        after_help = "Examples:\n  gitmesh --root /var/lib/gitmesh mesh-init --node-id ops1\n  \
gitmesh mesh-init --node-id ci-runner --capabilities routing,scaling \\\n    \
--remote git@github.com:org/coordination.git\n\nWithout --remote an embedded bare repository under state/ \
is the remote, so one machine works out of the box. Running it again is safe."
    )]
    MeshInit(init::Args),
    /// Append an event (or a batch from stdin) to this node's log.
    #[command(
        after_help = "Examples:\n  gitmesh mesh-publish --topic scheduling --event-type task.enqueued \\\n    \
--payload-json '{\"task_id\":\"t-1\"}'\n  gitmesh mesh-publish --topic monitoring --event-type \
heartbeat.changed --dedupe-key hb-2026-11-23\n  printf '%s\\n' '{\"topic\":\"monitoring\",\
\"event_type\":\"lane.start_failed\",\"payload\":{}}' \\\n    | gitmesh mesh-publish --stdin\n\n\
The event is durable (fsynced) when the command returns. A batch from --stdin is all-or-nothing."
    )]
    MeshPublish(publish::Args),
    /// Append peers' new events from the ledger to the local log (no network).
    #[command(
        after_help = "Examples:\n  gitmesh mesh-import\n  gitmesh mesh-import --max-events 10000 --json\n\n\
Reads only ledger files that changed since the last import. Invalid files or lines are \
quarantined under state/event_mesh/quarantine/ with a .reason file; the import goes on."
    )]
    MeshImport(import::Args),
    /// Write this node's new own events into the ledger as batch files (no network).
    #[command(
        after_help = "Examples:\n  gitmesh mesh-export\n  gitmesh mesh-export --max-events 5000\n\n\
Commits to the local ledger branch; `mesh-sync` pushes it."
    )]
    MeshExport(export::Args),
    /// Fetch, import, dispatch, export, commit and push in one pass.
    #[command(
        after_help = "Examples:\n  gitmesh mesh-sync\n  gitmesh mesh-sync --no-push --json\n\n\
Exit code 75 means all local work was done but the remote could not be updated \
(unreachable, no answer within [sync] remote_timeout, or every retry lost to \
concurrent pushes): run it again later. \
Exit code 1 with kind auth, rejected or not_found means the remote refused the \
credentials, refused the push, or has no such repository: waiting will not fix it."
    )]
    MeshSync(sync::Args),
    /// Hand new events to the handlers and append their follow-ups.
    #[command(
        after_help = "Examples:\n  gitmesh mesh-dispatch\n  gitmesh mesh-dispatch --max-events 1000 --json\n\n\
Resumes where the last pass stopped. Safe to interrupt at any point: a rerun neither \
duplicates nor loses a follow-up. See docs/dispatch.md."
    )]
    MeshDispatch(dispatch::Args),
    /// Show the causal tree around one event: its root and every follow-up.
    #[command(
        after_help = "Examples:\n  gitmesh trace evt_0123456789abcdef0123456789abcdef\n  \
gitmesh trace evt_0123456789abcdef0123456789abcdef --json | jq '.events[].event_type'"
    )]
    Trace(dispatch::TraceArgs),
    /// List or replay events that user handlers gave up on.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitmesh dead-letter list\n  gitmesh dead-letter retry --handler notify"
    )]
    DeadLetter(dispatch::DeadLetterCommand),
    /// Maintain the shared ledger (compaction).
    #[command(
        subcommand,
        after_help = "Examples:\n  gitmesh ledger compact\n  gitmesh ledger compact --json\n\n\
Archives are read by import like batches, so nothing any node still needs is dropped. \
See docs/scaling.md."
    )]
    Ledger(ledger::LedgerCommand),
    /// List events in the log, oldest first.
    #[command(
        after_help = "Examples:\n  gitmesh events --limit 20\n  gitmesh events --topic scaling \
--since 1h\n  gitmesh events --node ws1 --json\n  gitmesh events --ndjson > backup.ndjson\n  \
gitmesh events --follow --pattern 'routing.**' --json\n  gitmesh events --follow --after evt_0123456789abcdef0123456789abcdef\n\n\
--follow prints each matching event once, in log order, as it is appended; it starts at the end of \
the log unless --after, --from-offset, --limit or --since ask for stored events first. See \
docs/operations.md (\"Following the log\")."
    )]
    Events(events::Args),
    /// Show this node's health, last syncs, counts, lag, peers and leader.
    #[command(
        after_help = "Examples:\n  gitmesh mesh-status\n  gitmesh mesh-status --json | jq .peers\n  \
gitmesh mesh-status --check --json | jq .health\n\nWith --check the exit code is 3 when the node is \
unhealthy (failing or stale syncs, a refused credential, open alerts, low disk); the reasons are \
printed. See docs/operations.md, \"Health\"."
    )]
    MeshStatus(status::Args),
    /// Pinned peer keys and alerts: list them, trust a changed key, acknowledge a fork.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitmesh nodes list\n  gitmesh nodes trust ws2\n  gitmesh nodes ack ws2 --json\n\n\
A peer's key is pinned the first time its manifest is seen. A later, different key is not \
used until `nodes trust`; that peer's files are held back meanwhile."
    )]
    Nodes(nodes::NodesCommand),
    /// The signed mesh roster: who belongs to the mesh, with which key and roles.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitmesh roster show\n  gitmesh roster enroll ws2 --key <64 hex> --role member --role leader\n  \
gitmesh roster roles ws2 member\n  gitmesh roster retire ws2 --json\n  gitmesh roster rotate-admin --key <64 hex>\n  \
gitmesh roster rekey ws2\n\n\
Each change is a new version signed by this node (an admin) and staged; the next mesh-sync \
publishes it. See docs/roster.md."
    )]
    Roster(roster::RosterCommand),
    /// Show, export or rotate this node's signing key.
    #[command(
        subcommand,
        after_help = "Examples:\n  gitmesh keys show\n  gitmesh keys export --secret > node.key\n  \
gitmesh keys rotate --json\n\n\
The secret can then be given back to a new root through GITMESH_SIGNING_KEY or \
[identity] key_file; `export --secret` never prints to a terminal. `rotate` stores \
the new key where the node's key comes from (for GITMESH_SIGNING_KEY: the key file \
the node reads next; update the secret with `keys export --secret`) and the next \
mesh-sync publishes the rotation. See docs/operations.md, \"Rotating a node's key\"."
    )]
    Keys(keys::KeysCommand),
    /// Check git, mesh.toml, the remote, the key, the clock and disk, with fixes.
    #[command(
        after_help = "Examples:\n  gitmesh doctor\n  gitmesh doctor --json | jq '.checks[] | select(.ok | not)'\n\n\
Each failed check is printed with its fix; the exit code is 1 when any check fails."
    )]
    Doctor,
    /// Run the node: sync on a timer, dispatch new events at once, serve status.
    #[command(after_help = "Examples:\n  gitmesh --root /var/lib/gitmesh daemon\n  \
gitmesh daemon --interval 30s --listen 127.0.0.1:9464\n  \
curl -s 127.0.0.1:9464/metrics\n  curl -s -X POST 127.0.0.1:9464/sync\n\n\
Between full syncs the daemon pushes own events [sync] push_debounce after an append and \
polls the remote's heads within the fleet-wide [sync] poll_budget (requests per second).\n\n\
SIGTERM/SIGINT finish the pass in progress and exit 0; SIGHUP reloads mesh.toml; \
SIGUSR1 (or POST /sync) syncs now. One daemon per node root (state/event_mesh/daemon.lock).")]
    Daemon(daemon::Args),
    /// List, show, check and publish event schemas (JSON Schema 2020-12).
    #[command(
        after_help = "Examples:\n  gitmesh schema list\n  gitmesh schema show scheduling task.enqueued\n  \
gitmesh schema check schemas/monitoring/host.seen/v2.json\n  gitmesh schema publish schemas/\n\n\
Schemas live in the ledger at <dir>/schemas/<topic>/<event_type>/v<N>.json; `publish` stages them \
for the next mesh-sync and uses them on this node at once. See docs/schemas.md."
    )]
    Schema(schema::Args),
    /// Print shell completions.
    #[command(after_help = "Example:\n  gitmesh completions bash > /etc/bash_completion.d/gitmesh")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff), or write every page to a directory.
    #[command(
        after_help = "Examples:\n  gitmesh man > /usr/local/share/man/man1/gitmesh.1\n  \
gitmesh man mesh-sync | man -l -\n  gitmesh man --dir /usr/local/share/man/man1"
    )]
    Man(man::Args),
}

/// What a subcommand produced: a JSON object for machines and text for people.
pub struct Output {
    /// Keys of the `--json` object (without `ok`).
    pub json: Map<String, Value>,
    /// Text for a terminal.
    pub human: String,
    /// Exit code on success paths (75 for "did local work, remote unreachable").
    pub code: i32,
    /// Already printed as it happened (a follow): nothing is left to print.
    pub streamed: bool,
}

impl Output {
    /// An output from a serializable value (which must be an object) and text.
    pub fn new(value: impl serde::Serialize, human: String) -> Output {
        let json = match serde_json::to_value(value) {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                let mut m = Map::new();
                m.insert("result".into(), other);
                m
            }
            Err(_) => Map::new(),
        };
        Output {
            json,
            human,
            code: 0,
            streamed: false,
        }
    }

    /// The output of a command that printed as it ran.
    pub fn streamed() -> Output {
        Output {
            json: Map::new(),
            human: String::new(),
            code: 0,
            streamed: true,
        }
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<Output, gitmesh::Error> {
    let json = cli.global.json;
    let root = cli
        .global
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    match cli.command {
        Command::MeshInit(a) => init::run(&root, a),
        Command::MeshPublish(a) => publish::run(&root, a),
        Command::Events(a) => events::run(&root, a, json),
        Command::MeshImport(a) => import::run(&root, a, json),
        Command::MeshExport(a) => export::run(&root, a),
        Command::MeshSync(a) => sync::run(&root, a, json),
        Command::MeshDispatch(a) => dispatch::run(&root, a),
        Command::Trace(a) => dispatch::run_trace(&root, a),
        Command::DeadLetter(c) => dispatch::run_dead_letter(&root, c),
        Command::Ledger(c) => ledger::run(&root, c),
        Command::MeshStatus(a) => status::run(&root, a),
        Command::Nodes(c) => nodes::run(&root, c),
        Command::Roster(c) => roster::run(&root, c),
        Command::Keys(c) => keys::run(&root, c),
        Command::Doctor => doctor::run(&root),
        Command::Daemon(a) => daemon::run(&root, a),
        Command::Schema(a) => schema::run(&root, a),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "gitmesh", &mut buf);
            Ok(Output::new(
                serde_json::json!({"shell": shell.to_string(), "script": String::from_utf8_lossy(&buf)}),
                String::from_utf8_lossy(&buf).into_owned(),
            ))
        }
        Command::Man(a) => man::run(a),
    }
}

/// Appends the line `{label}{n} {what}` to `h` when `n` is not zero: such counts are
/// worth a line only when something happened.
pub(crate) fn count_line(h: &mut String, label: &str, n: u64, what: &str) {
    if n > 0 {
        let _ = writeln!(h, "{label}{n} {what}");
    }
}

/// Reads a JSON object from a flag value, naming the flag on error.
pub(crate) fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>, gitmesh::Error> {
    // serde_json would keep the last of two equal keys silently.
    if let Err(e) = gitmesh::event::strict::find_duplicate_key(text.as_bytes()) {
        return Err(gitmesh::Error::usage(format!("{what}: {e}")));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(gitmesh::Error::usage(format!(
            "{what}: the payload must be a JSON object, got {}",
            type_name(&other)
        ))),
        Err(e) => Err(gitmesh::Error::usage(format!(
            "{what}: not valid JSON: {e}"
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
