//! `mesh-init`: create (or re-check) a node root.

use super::error::{OpsError, Result};
use crate::config::Config;
use crate::event::normalize_node_id;
use crate::fsutil::IoContext;
use crate::paths::NodePaths;
use serde::Serialize;
use std::path::Path;

/// What the operator asked `mesh-init` for.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Node id as typed (normalized here).
    pub node_id: String,
    /// Shared repository URL or path; `None` for the embedded bare repo.
    pub remote: Option<String>,
    /// Branch of the shared repository.
    pub branch: Option<String>,
    /// Capabilities to advertise.
    pub capabilities: Option<Vec<String>>,
    /// `[ledger] mode`.
    pub ledger_mode: Option<crate::config::LedgerMode>,
    /// `[ledger] since`: import only events of this UTC day and later.
    pub since: Option<chrono::NaiveDate>,
    /// `[mesh] trust`.
    pub trust: Option<crate::config::TrustMode>,
    /// `[ledger] token_host`: one more host the token variable may be sent to.
    pub token_host: Option<String>,
    /// `[identity] key_file`: the node's secret key lives in this file.
    pub key_file: Option<std::path::PathBuf>,
    /// The node's old key is lost for good: this root's key replaces it (peers alert).
    pub replace_lost_key: bool,
}

/// What `mesh-init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The node id.
    pub node_id: String,
    /// The node root.
    pub root: String,
    /// The shared repository.
    pub remote: String,
    /// True when the root was new.
    pub created: bool,
    /// Things that already existed and were kept.
    pub existing: Vec<String>,
    /// Things made now.
    pub made: Vec<String>,
    /// This node's ed25519 public key (hex), as published in its manifest.
    pub public_key: String,
    /// Where the signing key came from (`env`, `file` or `root`); never the key itself.
    pub key_source: crate::keys::KeySource,
    /// Publishing this node's manifest to the shared repository (`offline` when unreachable).
    pub ledger: crate::ops::sync::PushReport,
    /// The version of the mesh roster this node trusts (0: none yet).
    pub roster_version: u64,
    /// This node created the mesh roster (the ledger was empty): it is its first admin.
    pub roster_created: bool,
}

/// Creates the node root layout, `mesh.toml` and the ledger repository; safe to repeat.
pub fn init(root: &Path, opts: &InitOptions) -> Result<InitReport> {
    let node_id =
        normalize_node_id(&opts.node_id).map_err(|e| OpsError::Usage(format!("node id: {e}")))?;
    let paths = NodePaths::new(root);
    let mut existing = Vec::new();
    let mut made = Vec::new();
    let cfg_path = paths.config();
    let (mut cfg, created) = if cfg_path.exists() {
        let cfg = Config::parse(
            &std::fs::read_to_string(&cfg_path).ctx("read", &cfg_path)?,
            &cfg_path,
        )?;
        if cfg.node_id != node_id {
            return Err(OpsError::Usage(format!(
                "{} belongs to node {:?}, not {node_id:?}: a node root keeps its identity (use another --root)",
                cfg_path.display(),
                cfg.node_id
            )));
        }
        existing.push("mesh.toml".to_string());
        (cfg, false)
    } else {
        (Config::new(node_id.clone()), true)
    };
    let mut changed = created;
    if let Some(remote) = &opts.remote {
        crate::config::check_remote_url(remote)
            .map_err(|m| OpsError::Usage(format!("--remote: {m}")))?;
    }
    if let Some(remote) = &opts.remote
        && cfg.ledger.remote.as_deref() != Some(remote.as_str())
    {
        if !created && cfg.ledger.remote.is_some() {
            return Err(OpsError::Usage(format!(
                "{} already uses remote {:?}; edit ledger.remote in mesh.toml to move the node",
                cfg_path.display(),
                crate::config::redact_url(cfg.ledger.remote.as_deref().unwrap_or_default())
            )));
        }
        cfg.ledger.remote = Some(remote.clone());
        changed = true;
    }
    if let Some(branch) = &opts.branch
        && &cfg.ledger.branch != branch
    {
        cfg.ledger.branch = branch.clone();
        changed = true;
    }
    if let Some(caps) = &opts.capabilities
        && &cfg.capabilities != caps
    {
        cfg.capabilities = caps.clone();
        changed = true;
    }
    if let Some(mode) = opts.ledger_mode
        && cfg.ledger.mode != mode
    {
        cfg.ledger.mode = mode;
        changed = true;
    }
    if let Some(trust) = opts.trust
        && cfg.mesh.trust != trust
    {
        cfg.mesh.trust = trust;
        changed = true;
    }
    if let Some(since) = opts.since {
        let since = since.format("%Y-%m-%d").to_string();
        if cfg.ledger.since.as_deref() != Some(since.as_str()) {
            cfg.ledger.since = Some(since);
            changed = true;
        }
    }
    if let Some(host) = &opts.token_host
        && cfg.ledger.token_host.as_deref() != Some(host.as_str())
    {
        cfg.ledger.token_host = Some(host.clone());
        changed = true;
    }
    if let Some(file) = &opts.key_file
        && cfg.identity.key_file.as_ref() != Some(file)
    {
        cfg.identity.key_file = Some(file.clone());
        changed = true;
    }
    // The same checks as loading it: a bad value never reaches the file.
    Config::parse(
        &toml::to_string(&cfg).map_err(|e| OpsError::Usage(e.to_string()))?,
        &cfg_path,
    )?;
    for dir in [paths.artifacts(), paths.state(), paths.quarantine()] {
        if dir.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        made.push(rel(root, &dir));
    }
    if changed {
        cfg.save(&cfg_path)?;
        if created {
            made.push("mesh.toml".into());
        } else {
            made.push("mesh.toml (updated)".into());
        }
    }
    let setup = crate::store::repo::ensure(&cfg, &paths)?;
    if setup.created_embedded_remote {
        made.push(rel(root, &paths.embedded_remote()));
    } else if cfg.ledger.remote.is_none() {
        existing.push(rel(root, &paths.embedded_remote()));
    }
    if setup.created_ledger_repo {
        made.push(rel(root, &paths.ledger_repo()));
    } else {
        existing.push(rel(root, &paths.ledger_repo()));
    }
    // The signing key: created once, never printed; only its public half is published.
    // A key from a secret (GITMESH_SIGNING_KEY, [identity] key_file) is used as it is.
    let key_file = cfg.identity.key_file.as_ref().map(|p| root.join(p));
    let (key, key_source, key_created) =
        crate::keys::NodeKey::resolve_or_create(&paths, key_file.as_deref())
            .map_err(crate::ledger::LedgerError::from)?;
    match (&key_source, key_created) {
        (crate::keys::KeySource::Root { path }, true) => made.push(rel(root, path)),
        (crate::keys::KeySource::Root { path }, false) => existing.push(rel(root, path)),
        (other, _) => existing.push(format!("signing key from {other}")),
    }
    // Opening the log creates it and its derived files.
    crate::log::EventLog::new(&paths, &cfg.node_id).head()?;
    // Fetch the mesh and announce this node; an unreachable remote is reported, not fatal.
    let node = crate::node::Node::open(root)?;
    if opts.replace_lost_key {
        crate::ledger::recover::allow_key_replacement(&paths)?;
    }
    let (ledger, roster_created) = crate::ops::sync::announce(&node)?;
    let roster_version = crate::ledger::roster::load_trusted(&paths)?.map_or(0, |r| r.version);
    // Announcing fetched and recovered any own events the ledger holds beyond the log,
    // so this root is now known to be current (unless the remote was unreachable).
    if !ledger.offline {
        crate::ledger::recover::mark_identity(&paths)?;
    }
    Ok(InitReport {
        node_id: cfg.node_id.clone(),
        root: std::path::absolute(root)
            .unwrap_or(root.to_path_buf())
            .display()
            .to_string(),
        remote: crate::store::repo::display_url(&cfg, &paths),
        created,
        existing,
        made,
        public_key: key.public_hex(),
        key_source,
        ledger,
        roster_version,
        roster_created,
    })
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}
