//! `gitmesh events`: list the log, or follow it as it grows.

use super::Output;
use gitmesh::event::Envelope;
use gitmesh::ops::follow::{Follower, LogWaiter, Resume, Wake, resume_offset};
use gitmesh::ops::query::{EventFilter, events_between};
use gitmesh::schema::Registry;
use gitmesh::{Error, Node};
use serde_json::{Value, json};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest a follow waits between two looks at the log when no notification comes.
const FOLLOW_POLL: Duration = Duration::from_secs(1);
/// Lines read per look, so a follow that starts far behind prints as it goes.
const FOLLOW_BATCH: usize = 4096;

/// Flags of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this topic (`*` for any)
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this event type, or a pattern over its dotted segments (`route.*`, `route.**`)
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only events whose topic.event_type matches this handler pattern (`routing.**`, `*.route.*`); repeatable, any may match
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Vec<String>,
    /// Only events emitted by this node
    #[arg(long)]
    pub node: Option<String>,
    /// Only events since a time (RFC 3339) or for a duration back (e.g. 15m, 2h)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// At most N events: the newest N (with --follow: of those already stored)
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Only events stored after the event with this id (resume where a reader stopped)
    #[arg(long, value_name = "EVENT_ID", conflicts_with = "from_offset")]
    pub after: Option<String>,
    /// Only events stored from this byte offset of the log on (0: the whole log)
    #[arg(long, value_name = "N")]
    pub from_offset: Option<u64>,
    /// Keep running and print events as they are appended, once each, until SIGINT/SIGTERM or closed output (with --json: one event object per line)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print the raw log lines (NDJSON) instead of a table
    #[arg(long, conflicts_with = "json")]
    pub ndjson: bool,
    /// Show payloads as stored, without upcasting them to the newest schema version
    #[arg(long)]
    pub raw: bool,
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    if let Some(t) = gitmesh::event::parse_timestamp(s) {
        return Ok(t);
    }
    let d = humantime::parse_duration(s).map_err(|_| {
        Error::usage(format!(
            "--since {s:?}: give an RFC 3339 time (2026-11-23T10:00:00Z) or a duration (15m, 2h)"
        ))
    })?;
    let d = chrono::Duration::from_std(d)
        .map_err(|_| Error::usage(format!("--since {s:?}: too long ago")))?;
    Ok(chrono::Utc::now() - d)
}

/// How events are printed: the stored line, or a view upcast to the newest schema.
struct Render<'a> {
    registry: Option<&'a Registry>,
    ndjson: bool,
}

impl Render<'_> {
    /// The JSON object of an event as listed, marked with `upcast_from` when upcast.
    fn shown(&self, e: &Envelope) -> (Value, String) {
        let stored = e.schema_version.unwrap_or(1);
        let view = match self.registry {
            Some(r) => r.upcast(e),
            None => std::borrow::Cow::Borrowed(e),
        };
        let now = view.schema_version.unwrap_or(1);
        let mut v = serde_json::to_value(&*view).unwrap_or_default();
        if now != stored
            && let Some(obj) = v.as_object_mut()
        {
            obj.insert("upcast_from".into(), json!(stored));
        }
        let version = if now != stored {
            format!("v{stored}>v{now}")
        } else {
            format!("v{now}")
        };
        (v, version)
    }

    /// The text of one event: a raw line, a JSON object line, or a table row.
    fn line(&self, e: &Envelope, json: bool) -> String {
        if self.ndjson {
            return e.to_json_line().trim_end().to_string() + "\n";
        }
        let (v, version) = self.shown(e);
        if json {
            return v.to_string() + "\n";
        }
        row([
            &e.timestamp,
            &e.node_id,
            &e.seq.to_string(),
            &e.kind(),
            &version,
            &e.event_id,
            &e.source,
        ])
    }
}

fn row(cells: [&str; 7]) -> String {
    format!(
        "{:<27}  {:<12} {:>6}  {:<36}  {:<7}  {:<36}  {}\n",
        cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
    )
}

fn header() -> String {
    row([
        "TIMESTAMP",
        "NODE",
        "SEQ",
        "TOPIC.EVENT_TYPE",
        "SCHEMA",
        "EVENT_ID",
        "SOURCE",
    ])
}

pub fn run(root: &Path, a: Args, global_json: bool) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let json = global_json;
    let filter = EventFilter {
        topic: a.topic.clone(),
        event_type: a.event_type.clone(),
        patterns: a.pattern.clone(),
        node: a.node.clone(),
        since: a.since.as_deref().map(parse_since).transpose()?,
        limit: a.limit,
    };
    // Checked before anything is read, so a bad pattern is a usage error at once.
    let selector = filter.compile()?;
    let resume = match (&a.after, a.from_offset) {
        (Some(id), _) => Some(Resume::After(id.clone())),
        (None, Some(n)) => Some(Resume::Offset(n)),
        (None, None) => None,
    };
    let end = node.log.read_head()?.log_len;
    // A plain follow shows only what comes; --limit, --since or a resume point show the past first.
    let start = match &resume {
        Some(r) => resume_offset(&node, r)?,
        None if a.follow && a.limit.is_none() && a.since.is_none() => end,
        None => 0,
    };
    // A follow streams the stored events from its start in bounded batches; only
    // "the newest N" (--limit) needs them listed first, and N bounds that list.
    let (list, follow_from) = if a.follow && a.limit.is_none() {
        (Vec::new(), start)
    } else {
        (events_between(&node, &filter, start, end)?, end)
    };
    // The stored lines stay as they are; the listing shows each event upcast to the
    // newest schema version this node knows, marked with `upcast_from`, unless --raw.
    let registry = if a.raw || a.ndjson {
        None
    } else {
        Some(node.schemas()?)
    };
    let render = Render {
        registry,
        ndjson: a.ndjson,
    };
    if a.follow {
        return follow(&node, &render, &selector, &list, follow_from, json);
    }
    let mut shown = Vec::with_capacity(list.len());
    let mut human = String::new();
    if list.is_empty() && !a.ndjson {
        human.push_str("no events\n");
    } else if !a.ndjson {
        human.push_str(&header());
    }
    for (_, e) in &list {
        shown.push(render.shown(e).0);
        human.push_str(&render.line(e, false));
    }
    Ok(Output::new(json!({"events": shown}), human))
}

/// Prints `past`, then every matching event stored from `from` on, until a signal or closed output.
fn follow(
    node: &Node,
    render: &Render<'_>,
    selector: &gitmesh::ops::query::Selector,
    past: &[(u64, Envelope)],
    from: u64,
    json: bool,
) -> Result<Output, Error> {
    let waiter = LogWaiter::new(node);
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone(), waiter.stopper())?;
    let mut out = std::io::stdout().lock();
    let mut put = |text: &str| -> ControlFlow<()> {
        // Flushed per line: a pipe reader sees each event when it is stored.
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    };
    if !json && !render.ndjson && put(&header()).is_break() {
        return Ok(Output::streamed());
    }
    for (_, e) in past {
        if put(&render.line(e, json)).is_break() {
            return Ok(Output::streamed());
        }
    }
    let mut follower = Follower::new(from);
    while !stop.load(Ordering::Relaxed) {
        let p = follower.poll(&node.log, selector, FOLLOW_BATCH, |_, e| {
            put(&render.line(e, json))
        })?;
        if p.stopped || stdout_closed() {
            break;
        }
        if p.caught_up && waiter.wait(FOLLOW_POLL) == Wake::Stop {
            break;
        }
    }
    Ok(Output::streamed())
}

/// Ends the follow on SIGINT or SIGTERM: sets `stop` and wakes the waiter.
fn stop_on_signals(
    stop: Arc<AtomicBool>,
    stopper: gitmesh::ops::follow::Stopper,
) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the signal handler: {e}")))?;
    // Registered here, before the first event is printed, so no signal is missed.
    let (mut int, mut term) = rt
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .map_err(|e| Error::usage(format!("cannot handle SIGINT/SIGTERM: {e}")))?;
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        });
        stop.store(true, Ordering::Relaxed);
        stopper.stop();
    });
    Ok(())
}

/// Whether standard output is a pipe or socket whose reader went away.
///
/// Checked while idle, so a follow whose reader closed ends without waiting
/// for the next event to fail to print.
fn stdout_closed() -> bool {
    let mut fds = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}
