//! Which of the ledger's schema files this node uses: only those a schema publisher
//! signed (docs/schemas.md, "Signed schemas"). Run by the import after the roster, so a
//! publisher enrolled in the same pass counts. A file that is unsigned, badly signed or
//! signed by a node without the `schema` role is refused with an authority alert, and
//! the copy verified before (if any) stays in use.

use super::LedgerError;
use super::roster::{self, Role, Roster, Standing};
use crate::config::TrustMode;
use crate::git::{RepoContext, tree};
use crate::keys::KnownNodes;
use crate::node::Node;
use crate::schema::registry::{Refused, builtin_refusal, is_builtin_type, ledger_schema_files};
use crate::schema::sign::{SigRefusal, digest, verify};
use crate::schema::verified::{self, Adopted};
use crate::store::layout::Layout;
use ed25519_dalek::VerifyingKey;
use git2::{Oid, Repository};
use std::collections::BTreeMap;

/// The key of `signer` if it may publish schemas (pure): the roster decides for the nodes
/// it lists (the `schema` role, not retired); in open mode, or with no roster yet, a node
/// it does not list counts with its pinned key (`own` stands in for this node's pin).
pub fn publisher_key(
    roster: Option<&Roster>,
    mode: TrustMode,
    signer: &str,
    pinned: Option<&str>,
) -> Result<VerifyingKey, String> {
    match roster::standing(roster, mode, signer, Some(Role::Schema), pinned) {
        Standing::Trusted(k) => Ok(*k),
        other => Err(other
            .refusal(signer)
            .unwrap_or_else(|| format!("node {signer:?} is not trusted"))),
    }
}

/// Whether node `me`, whose key is `own` (hex), may publish schemas (pure): peers must
/// accept its signature, so it needs the `schema` role on the trusted roster with this
/// key (in open mode, or with no roster, a node the roster does not list may). The
/// error says why and how to get the role.
pub fn may_publish(
    roster: Option<&Roster>,
    mode: TrustMode,
    me: &str,
    own: &str,
) -> Result<(), String> {
    let grant = || {
        let mut roles: Vec<&str> = roster
            .and_then(|r| r.nodes.get(me))
            .map(|n| n.roles.iter().map(|r| r.as_str()).collect())
            .unwrap_or_else(|| vec!["member"]);
        if !roles.contains(&"schema") {
            roles.push("schema");
        }
        format!(
            "an admin grants the role with `gitmesh roster roles {me} {}` (or `gitmesh roster enroll {me} --key {own} --role member --role schema`), then mesh-sync here",
            roles.join(" ")
        )
    };
    match publisher_key(roster, mode, me, Some(own)) {
        Ok(k) if hex::encode(k.as_bytes()) == own => Ok(()),
        Ok(_) => Err(format!(
            "the mesh roster lists another public key for node {me:?} than this node's, so peers would refuse its signature; {}",
            grant()
        )),
        Err(why) => Err(format!("{why}; {}", grant())),
    }
}

/// What the check depends on; an unchanged one means the last check still holds.
fn fingerprint(
    schemas_tree: Option<Oid>,
    roster: Option<&Roster>,
    mode: TrustMode,
    known: &KnownNodes,
    own: Option<&str>,
) -> String {
    let pins: BTreeMap<&str, &str> = known
        .nodes
        .iter()
        .map(|(n, k)| (n.as_str(), k.public_key.as_str()))
        .collect();
    let pins = serde_json::to_vec(&pins).unwrap_or_default();
    format!(
        "tree={} roster={} trust={} pins={} own={}",
        schemas_tree.map_or_else(|| "none".into(), |o| o.to_string()),
        roster.map_or_else(|| "none".into(), Roster::hash),
        match mode {
            TrustMode::Roster => "roster",
            TrustMode::Open => "open",
        },
        blake3::hash(&pins).to_hex(),
        own.unwrap_or("none"),
    )
}

/// Checks the schema files of `commit` (skipped when nothing they depend on changed),
/// keeps a copy of each one that verifies, and records and alerts the refused ones.
/// Returns how many files are refused.
pub fn observe(
    node: &Node,
    repo: &Repository,
    commit: Option<Oid>,
    roster: Option<&Roster>,
    known: &KnownNodes,
) -> Result<usize, LedgerError> {
    let Some(commit) = commit else {
        return Ok(0);
    };
    let repo_path = node.paths.ledger_repo();
    let dir = Layout::new(&node.config.ledger.dir).schemas();
    let root = tree::tree_of(repo, Some(commit)).in_repo(&repo_path)?;
    let subtree = tree::subtree_at(repo, root, &dir).in_repo(&repo_path)?;
    let me = node.id();
    let own = node
        .signing_key()
        .map_err(LedgerError::from)?
        .map(|(k, _)| k.public_hex());
    let mode = node.config.mesh.trust;
    let fp = fingerprint(subtree, roster, mode, known, own.as_deref());
    let mut st = verified::load(&node.paths)?;
    if st.fingerprint == fp {
        return Ok(st.refused.len());
    }
    let mut refused: Vec<Refused> = Vec::new();
    let files = match subtree {
        Some(oid) => {
            let t = repo.find_tree(oid).in_repo(&repo_path)?;
            ledger_schema_files(repo, &t, &dir, &mut refused).in_repo(&repo_path)?
        }
        None => Vec::new(),
    };
    let pinned = |signer: &str| -> Option<String> {
        if signer == me {
            own.clone()
        } else {
            known.trusted_key(signer).map(str::to_string)
        }
    };
    for f in files {
        if is_builtin_type(&f.key.topic, &f.key.event_type) {
            refused.push(Refused::new(f.location, builtin_refusal(&f.key)));
            continue;
        }
        let rel = verified::rel_path(&f.key);
        let checked = match &f.sig {
            Some(Err(why)) => Err(SigRefusal::Unread(why.clone())),
            sig => verify(
                &f.key,
                &f.text,
                sig.as_ref().and_then(|s| s.as_deref().ok()),
                |signer| publisher_key(roster, mode, signer, pinned(signer).as_deref()),
            ),
        };
        match checked {
            Ok(signer) => {
                let hash = digest(&f.text).unwrap_or_default();
                // The same bytes verified again keep the record of their first check.
                if st
                    .adopted
                    .get(&rel)
                    .is_none_or(|a| a.schema_blake3 != hash || a.signer != signer)
                {
                    verified::store(&node.paths, &f.key, &f.text)?;
                    tracing::info!(schema = %f.key, %signer, "adopted a publisher-signed ledger schema");
                    st.adopted.insert(
                        rel,
                        Adopted {
                            signer,
                            schema_blake3: hash,
                            commit: commit.to_string(),
                        },
                    );
                }
            }
            Err(why) => {
                let kept = match st.adopted.get(&rel) {
                    Some(a) => format!(
                        "; the version {} signed (verified at {}) stays in use",
                        a.signer,
                        short(&a.commit)
                    ),
                    None => "; not used".into(),
                };
                refused.push(Refused::new(f.location, format!("{why}{kept}")));
            }
        }
    }
    for r in &refused {
        let path = r.location.strip_prefix("ledger:").unwrap_or(&r.location);
        roster::raise(&node.paths, "schema", path, &commit.to_string(), &r.reason)?;
    }
    st.fingerprint = fp;
    st.refused = refused;
    verified::save(&node.paths, &st)?;
    Ok(st.refused.len())
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests;
