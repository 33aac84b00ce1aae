//! Reading roster versions from a ledger commit and adopting the ones that verify.

use super::{MAX_ROSTER_BYTES, MAX_VERSIONS_PER_PASS, Roster, verify_genesis, verify_update};
use crate::git::RepoContext;
use crate::git::tree;
use crate::ledger::LedgerError;
use crate::node::Node;
use crate::store::layout::Layout;
use git2::{Oid, Repository};

/// The blob at `path` in the tree of `commit`: `None` when absent, `Err(size)` when larger
/// than `max` (the size is read from the object header, the content is not loaded).
pub fn read_bounded(
    repo: &Repository,
    commit: Oid,
    path: &str,
    max: usize,
) -> Result<Option<Result<Vec<u8>, usize>>, git2::Error> {
    let root = tree::tree_of(repo, Some(commit))?;
    let Some((oid, mode)) = tree::entry_at(repo, root, path)? else {
        return Ok(None);
    };
    if mode != tree::MODE_BLOB && mode != tree::MODE_EXEC {
        return Ok(Some(Err(0)));
    }
    let (size, _) = repo.odb()?.read_header(oid)?;
    if size > max {
        return Ok(Some(Err(size)));
    }
    Ok(Some(Ok(repo.find_blob(oid)?.content().to_vec())))
}

/// Adopts the roster versions of `commit` that follow the trusted one and verify,
/// one after the other; the first refused version stops it with an alert. Returns
/// the roster now trusted. `persist` false: nothing is written (read-only callers).
pub fn observe(
    node: &Node,
    commit: Option<Oid>,
    persist: bool,
) -> Result<Option<Roster>, LedgerError> {
    let mut trusted = super::load_trusted(&node.paths)?;
    let Some(commit) = commit else {
        return Ok(trusted);
    };
    let path = node.paths.ledger_repo();
    let repo = crate::store::repo::open_at(&path)?;
    let layout = Layout::new(&node.config.ledger.dir);
    let mut changed = false;
    for _ in 0..MAX_VERSIONS_PER_PASS {
        let version = match &trusted {
            Some(t) => match t.version.checked_add(1) {
                Some(v) => v,
                None => break,
            },
            None => 1,
        };
        let file = layout.roster(version);
        let Some(bytes) = read_bounded(&repo, commit, &file, MAX_ROSTER_BYTES).in_repo(&path)?
        else {
            break;
        };
        let checked = match bytes {
            Err(size) => Err(super::RosterRefusal::TooLarge(format!(
                "{size} bytes; the cap is {MAX_ROSTER_BYTES}"
            ))),
            Ok(b) => Roster::parse(&b).and_then(|r| {
                match &trusted {
                    Some(t) => verify_update(t, &r),
                    None => verify_genesis(&r),
                }
                .map(|()| r)
            }),
        };
        match checked {
            Ok(r) => {
                tracing::info!(version = r.version, signed_by = %r.signed_by, "adopted mesh roster version");
                trusted = Some(r);
                changed = true;
            }
            Err(e) => {
                if persist {
                    super::raise(
                        &node.paths,
                        "roster",
                        &file,
                        &commit.to_string(),
                        &e.to_string(),
                    )?;
                }
                break;
            }
        }
    }
    if changed
        && persist
        && let Some(t) = &trusted
    {
        crate::fsutil::write_json(&super::trusted_path(&node.paths), t)?;
        // Staged versions the ledger now holds (or that lost to others) are done.
        super::clear_staged_through(&node.paths, t.version)?;
    }
    Ok(trusted)
}
