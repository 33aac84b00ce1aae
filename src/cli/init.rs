//! `gitmesh mesh-init`.

use super::Output;
use gitmesh::config::LedgerMode;
use gitmesh::ops::init::{InitOptions, init};
use std::path::Path;

/// Flags of `mesh-init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's id: lowercase letters, digits, '.', '_' and '-'
    #[arg(long, env = "GITMESH_NODE_ID", value_parser = parse_node_id)]
    pub node_id: String,
    /// The shared git repository (URL or path); omitted: an embedded bare repo under state/
    #[arg(long, env = "GITMESH_REMOTE")]
    pub remote: Option<String>,
    /// Branch of the shared repository [default: main]
    #[arg(long)]
    pub branch: Option<String>,
    /// Capabilities to advertise, comma-separated (e.g. routing,scaling)
    #[arg(long, value_delimiter = ',')]
    pub capabilities: Option<Vec<String>>,
    /// How nodes share the repository: shared-branch (default) or per-node-refs
    #[arg(long, value_name = "MODE", value_parser = parse_ledger_mode)]
    pub ledger_mode: Option<LedgerMode>,
    /// Import only events of this UTC day and later (YYYY-MM-DD); the first fetch is shallow
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub since: Option<chrono::NaiveDate>,
    /// Who this node trusts: roster (default; only nodes on the signed mesh roster) or open
    /// (nodes absent from the roster are trusted on first use)
    #[arg(long, value_name = "MODE", value_parser = parse_trust)]
    pub trust: Option<gitmesh::config::TrustMode>,
    /// One more https host (besides github.com) the token variable may be sent to
    #[arg(long, value_name = "HOST")]
    pub token_host: Option<String>,
    /// A file holding the node's secret key ([identity] key_file), e.g. a mounted secret;
    /// GITMESH_SIGNING_KEY (64 hex digits) wins over it
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<std::path::PathBuf>,
    /// The node's old signing key is lost for good: let this root's key replace it. Peers
    /// hold the node's new events until an operator runs `gitmesh nodes trust NODE`
    #[arg(long)]
    pub replace_lost_key: bool,
}

fn parse_trust(s: &str) -> Result<gitmesh::config::TrustMode, String> {
    match s {
        "roster" => Ok(gitmesh::config::TrustMode::Roster),
        "open" => Ok(gitmesh::config::TrustMode::Open),
        _ => Err("expected roster or open".into()),
    }
}

fn parse_node_id(s: &str) -> Result<String, String> {
    gitmesh::event::normalize_node_id(s).map_err(|e| e.to_string())
}

fn parse_ledger_mode(s: &str) -> Result<LedgerMode, String> {
    match s {
        "shared-branch" => Ok(LedgerMode::SharedBranch),
        "per-node-refs" => Ok(LedgerMode::PerNodeRefs),
        _ => Err("expected shared-branch or per-node-refs".into()),
    }
}

fn parse_day(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| "expected a UTC day like 2026-01-31".into())
}

pub fn run(root: &Path, a: Args) -> Result<Output, gitmesh::Error> {
    let report = init(
        root,
        &InitOptions {
            node_id: a.node_id,
            remote: a.remote,
            branch: a.branch,
            capabilities: a.capabilities,
            ledger_mode: a.ledger_mode,
            since: a.since,
            trust: a.trust,
            token_host: a.token_host,
            // A relative path is the operator's, from where they typed it.
            replace_lost_key: a.replace_lost_key,
            key_file: a.key_file.map(|p| std::path::absolute(&p).unwrap_or(p)),
        },
    )?;
    let mut human = if report.created {
        format!("initialised node {} in {}\n", report.node_id, report.root)
    } else {
        format!(
            "node {} in {} was already initialised\n",
            report.node_id, report.root
        )
    };
    human.push_str(&format!("remote: {}\n", report.remote));
    let l = &report.ledger;
    if l.pushed {
        human.push_str("manifest published to the remote\n");
    } else if l.offline {
        human.push_str("remote unreachable: the manifest is committed locally; the next mesh-sync publishes it\n");
    } else if l.commit.is_none() {
        human.push_str("manifest already on the remote\n");
    }
    if report.roster_created {
        human.push_str("mesh roster created (version 1): this node is its admin; enroll peers with `gitmesh roster enroll`\n");
    } else if report.roster_version > 0 {
        human.push_str(&format!(
            "mesh roster version {} trusted\n",
            report.roster_version
        ));
    }
    if !report.made.is_empty() {
        human.push_str(&format!("created: {}\n", report.made.join(", ")));
    }
    if !report.existing.is_empty() {
        human.push_str(&format!("already there: {}\n", report.existing.join(", ")));
    }
    Ok(Output::new(report, human))
}
