//! `gitmesh nodes`: pinned peer keys, key-change alerts, forks and history rewrites.

use super::Output;
use gitmesh::keys::KnownNodes;
use gitmesh::ledger::lock::SyncLock;
use gitmesh::ledger::state::{self, ImportState};
use gitmesh::{Error, Node};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// `gitmesh nodes ...`.
#[derive(Debug, clap::Subcommand)]
pub enum NodesCommand {
    /// List pinned peer keys and open alerts.
    List,
    /// Accept the key a peer's manifest now offers (after checking it out of band).
    Trust {
        /// The peer's node id.
        node: String,
    },
    /// Acknowledge a peer's fork and history-rewrite alerts (after investigating them).
    Ack {
        /// The peer's node id.
        node: String,
    },
    /// Retire a node on the mesh roster (same as `gitmesh roster retire`; admin only).
    Retire {
        /// The node id.
        node: String,
    },
}

pub fn run(root: &Path, c: NodesCommand) -> Result<Output, Error> {
    let node = Node::open(root)?;
    match c {
        NodesCommand::List => list(&node),
        NodesCommand::Retire { node: peer } => super::roster::staged(gitmesh::ops::roster::change(
            &node,
            gitmesh::ops::roster::Change::Retire { node: peer },
        )?),
        NodesCommand::Trust { node: peer } => {
            let _lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
            let mut known = KnownNodes::load(&node.paths)?;
            let offered = known
                .nodes
                .get(&peer)
                .and_then(|k| k.offered_key.clone())
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "node {peer:?} offers no new key (see `gitmesh nodes list`)"
                    ))
                })?;
            known.trust_offered(&peer, &gitmesh::event::now_timestamp());
            known.save(&node.paths)?;
            Ok(Output::new(
                json!({"node_id": peer, "public_key": offered, "trusted": true}),
                format!(
                    "trusted key {offered} for {peer}; its held events are imported by the next mesh-import or mesh-sync\n"
                ),
            ))
        }
        NodesCommand::Ack { node: peer } => {
            let _lock = SyncLock::acquire(&node.paths, node.config.sync.lock_wait.0)?;
            let mut st: ImportState = state::load(&node.paths.import_state())?;
            let before = st.alerts.len();
            st.alerts.retain(|a| a.node_id != peer);
            let cleared = before - st.alerts.len();
            if cleared == 0 {
                return Err(Error::not_found(format!("no open alert for node {peer:?}")));
            }
            state::save(&node.paths.import_state(), &st)?;
            Ok(Output::new(
                json!({"node_id": peer, "cleared": cleared}),
                format!("cleared {cleared} alerts of {peer}\n"),
            ))
        }
    }
}

fn list(node: &Node) -> Result<Output, Error> {
    let known = KnownNodes::load(&node.paths)?;
    let st: ImportState = state::load(&node.paths.import_state())?;
    let mut h = String::new();
    let mut nodes = Vec::new();
    for (id, k) in &known.nodes {
        let alerts: Vec<_> = st.alerts.iter().filter(|a| &a.node_id == id).collect();
        let _ = writeln!(h, "{id}  key {}  pinned {}", k.public_key, k.pinned_at);
        if let Some(o) = &k.offered_key {
            let _ = writeln!(
                h,
                "  ALERT key changed: manifest offers {o}; run `gitmesh nodes trust {id}` once verified"
            );
        }
        for a in &alerts {
            let _ = writeln!(h, "  ALERT {}: {} ({})", a.kind.code(), a.detail, a.path);
        }
        nodes.push(json!({
            "node_id": id,
            "public_key": k.public_key,
            "pinned_at": k.pinned_at,
            "offered_key": k.offered_key,
            "alerts": alerts,
        }));
    }
    for a in st
        .alerts
        .iter()
        .filter(|a| !known.nodes.contains_key(&a.node_id))
    {
        let _ = writeln!(
            h,
            "{}  (no key)  ALERT {}: {}",
            a.node_id,
            a.kind.code(),
            a.detail
        );
    }
    if h.is_empty() {
        h.push_str("no peer keys pinned yet\n");
    }
    Ok(Output::new(
        json!({"nodes": nodes, "key_alerts": known.alerts(), "alerts": st.alerts}),
        h,
    ))
}
