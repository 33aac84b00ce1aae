//! `gitmesh mesh-sync`.

use super::Output;
use gitmesh::ops::sync::{SyncOptions, sync};
use gitmesh::{Error, Node};
use std::fmt::Write as _;
use std::path::Path;

/// Flags of `mesh-sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Do the local part only: fetch, import, export and commit, but do not push
    #[arg(long)]
    pub no_push: bool,
    /// Import and export at most N events in this pass
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
}

pub fn run(root: &Path, a: Args, json: bool) -> Result<Output, Error> {
    let node = Node::open(root)?;
    let opts = SyncOptions {
        push: !a.no_push,
        max_events: a.max_events,
        progress: gitmesh::progress::Progress::new(
            None,
            "import",
            gitmesh::progress::visible(json),
        ),
        dispatch: Some(gitmesh::dispatch::DispatchOptions {
            max_events: a.max_events,
        }),
        mode: gitmesh::ops::sync::SyncMode::Full,
    };
    let r = sync(&node, &opts)?;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "import   {} new events from {} peer files, {} quarantined",
        r.import.imported_events, r.import.scanned_files, r.import.quarantined
    );
    for (peer, n) in &r.import.deferred {
        let _ = writeln!(
            h,
            "         {n} files of {peer} deferred to the next sync (per-peer read caps)"
        );
    }
    let _ = writeln!(
        h,
        "dispatch {} events handled, {} follow-ups",
        r.dispatch.as_ref().map_or(0, |d| d.processed_events),
        r.dispatch.as_ref().map_or(0, |d| d.followup_events)
    );
    let _ = writeln!(
        h,
        "export   {} own events (through seq {})",
        r.export.exported_events, r.export.exported_through_seq
    );
    let p = &r.push;
    let state = if p.pushed {
        format!("pushed after {} attempt(s)", p.attempts)
    } else if p.offline {
        "remote unreachable: local work kept, the next sync pushes it".to_string()
    } else if p.contended {
        format!(
            "rejected {} times by concurrent pushes: the next sync retries",
            p.attempts
        )
    } else if p.commit.is_some() {
        "committed locally (not pushed)".to_string()
    } else {
        "nothing to push".to_string()
    };
    let _ = writeln!(h, "push     {state}");
    if let Some(l) = &r.leader {
        let _ = writeln!(
            h,
            "leader   {} (epoch {}, until {})",
            l.leader_id, l.epoch, l.lease_expires_at
        );
    }
    let code = r.exit_code();
    let mut out = Output::new(&r, h);
    out.code = code;
    Ok(out)
}
