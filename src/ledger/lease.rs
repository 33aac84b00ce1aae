//! The leader lease (`leases/leader.json`): its record and the pure rules for taking it.
//!
//! The lease changes only through a push of the shared branch, so a rejected push
//! is a failed compare-and-swap: the loser re-reads the lease and decides again.

use serde::{Deserialize, Serialize};

/// The lease record stored in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node holding it.
    pub leader_id: String,
    /// Incremented on every change of holder (fencing token).
    pub epoch: u64,
    /// RFC 3339 UTC instant after which the lease is free.
    pub lease_expires_at: String,
    /// Lease length in seconds.
    pub ttl_sec: u64,
}

impl Lease {
    /// Expiry as an instant (a malformed value counts as already expired).
    pub fn expires(&self) -> chrono::DateTime<chrono::Utc> {
        crate::event::parse_timestamp(&self.lease_expires_at).unwrap_or_default()
    }

    /// Whether `node` holds an unexpired lease at `now`.
    pub fn held_by(&self, node: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.leader_id == node && now < self.expires()
    }
}

/// What a node should write to the lease file, if anything (rules in [`super::clock::judge`]).
///
/// Absent, expired or implausible (expiry beyond ttl + tolerance ahead): take it with
/// the next epoch. Held by `me`: renew it once less than `renew_before` is left (same
/// epoch). Held by another and valid: leave it. A node whose own clock is skewed past
/// the tolerance (`c.refusal`) writes nothing.
pub fn next(current: Option<&Lease>, me: &str, c: &super::clock::LeaseClock) -> Option<Lease> {
    use super::clock::Standing;
    if c.refusal.is_some() {
        return None;
    }
    let fresh = |epoch| Lease {
        leader_id: me.to_string(),
        epoch,
        lease_expires_at: crate::event::format_timestamp(c.now + c.ttl),
        ttl_sec: c.ttl.num_seconds().max(1) as u64,
    };
    let Some(l) = current else {
        return Some(fresh(1));
    };
    match super::clock::judge(&l.leader_id, l.expires(), l.ttl_sec, me, c) {
        Standing::Implausible | Standing::Expired => Some(fresh(l.epoch.saturating_add(1))),
        Standing::RenewDue => Some(fresh(l.epoch)),
        Standing::Valid => None,
    }
}

#[cfg(test)]
mod tests;

/// The lease as the remote last confirmed it to this node (its remote-tracking ref).
///
/// Not the local branch: that may hold a lease this node took in a commit it
/// could not push (offline, or every push lost), which no one else has seen;
/// acting on it would give two leaders the same epoch.
pub fn read_confirmed(node: &crate::node::Node) -> Result<Option<Lease>, super::LedgerError> {
    let r = crate::git::remote::tracking_ref(&node.config.ledger.branch);
    let layout = crate::store::layout::Layout::new(&node.config.ledger.dir);
    let Some(bytes) = crate::store::repo::read_file(&node.paths, &r, &layout.lease())? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Lease>(&bytes) {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable leader lease in the ledger; acting as if there is none");
            Ok(None)
        }
    }
}
