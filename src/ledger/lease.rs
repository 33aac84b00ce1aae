//! The leader lease (`leases/leader.json`): its record, the pure rules for taking it,
//! and the pure check every reader applies before trusting it.
//!
//! The lease changes only through a push of the shared branch, so a rejected push
//! is a failed compare-and-swap: the loser re-reads the lease and decides again.
//! Each lease is signed by its taker; a reader trusts a new lease only when
//! [`verify`] accepts it against the lease it trusted before (epoch exactly +1,
//! or the same holder renewing), and keeps the last trusted lease under `state/`.

use crate::keys::NodeKey;
use crate::ledger::roster::Standing;
use serde::{Deserialize, Serialize};

mod observe;
pub use observe::{TrustedLease, observe, read_confirmed, read_trusted};

/// Largest lease file read from the ledger.
pub const MAX_LEASE_BYTES: usize = 64 * 1024;

/// The lease record stored in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// The node holding it.
    pub leader_id: String,
    /// Incremented on every change of holder (fencing token).
    pub epoch: u64,
    /// RFC 3339 UTC instant after which the lease is free.
    pub lease_expires_at: String,
    /// Lease length in seconds.
    pub ttl_sec: u64,
    /// RFC 3339 UTC instant the holder took or renewed it.
    #[serde(default)]
    pub taken_at: String,
    /// Hex ed25519 signature of the holder over the canonical JSON without `sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
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

    /// The bytes the holder signs: RFC 8785 JSON of the lease without `sig`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.sig = None;
        // Strings and integers always canonicalize.
        serde_json_canonicalizer::to_vec(&unsigned).unwrap_or_default()
    }

    /// Signs the lease with the holder's key.
    pub fn sign(&mut self, key: &NodeKey) {
        self.sig = None;
        self.sig = Some(key.sign_bytes(&self.signing_bytes()));
    }
}

/// Why a reader refuses a lease (the stable `code` is what alerts and docs show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseRefusal {
    /// The taker may not hold the lease (not on the roster, retired, no leader role, unknown key).
    #[error("taker refused: {0}")]
    Taker(String),
    /// No signature, or it does not verify with the taker's key.
    #[error("signature of {taker:?} is missing or does not verify")]
    BadSignature {
        /// The claimed holder.
        taker: String,
    },
    /// A timestamp does not parse.
    #[error("field {field}: not an RFC 3339 UTC timestamp")]
    BadTimestamp {
        /// `taken_at` or `lease_expires_at`.
        field: &'static str,
    },
    /// `ttl_sec`, or expiry minus `taken_at`, exceeds the mesh-wide maximum.
    #[error("lease runs {secs}s past taken_at; the mesh-wide maximum is {max}s")]
    TooLong {
        /// The length claimed (`ttl_sec`, or the distance to expiry when larger).
        secs: i64,
        /// The maximum.
        max: u64,
    },
    /// Epoch 0, or an epoch with no successor (the mesh could never move on).
    #[error("epoch {0} is out of range (1..{max})", max = u64::MAX)]
    EpochOutOfRange(u64),
    /// The epoch is neither the trusted one (a renewal) nor exactly one more.
    #[error("epoch {found} does not follow trusted epoch {trusted}")]
    EpochNotNext {
        /// The trusted epoch.
        trusted: u64,
        /// The epoch found.
        found: u64,
    },
    /// Same epoch as the trusted lease, but another holder.
    #[error("epoch {epoch} belongs to {holder:?}, not {taker:?}")]
    EpochTaken {
        /// The epoch.
        epoch: u64,
        /// Its trusted holder.
        holder: String,
        /// Who claims it.
        taker: String,
    },
    /// A new holder claims to have taken the lease before the trusted one expired.
    #[error("taken at {taken_at} while {holder:?} held it until {expires}")]
    TakenBeforeExpiry {
        /// The trusted holder.
        holder: String,
        /// Its expiry.
        expires: String,
        /// The new lease's `taken_at`.
        taken_at: String,
    },
}

impl LeaseRefusal {
    /// A stable snake_case name of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            LeaseRefusal::Taker(_) => "taker_not_eligible",
            LeaseRefusal::BadSignature { .. } => "bad_signature",
            LeaseRefusal::BadTimestamp { .. } => "bad_timestamp",
            LeaseRefusal::TooLong { .. } => "too_long",
            LeaseRefusal::EpochOutOfRange(_) => "epoch_out_of_range",
            LeaseRefusal::EpochNotNext { .. } => "epoch_not_next",
            LeaseRefusal::EpochTaken { .. } => "epoch_taken",
            LeaseRefusal::TakenBeforeExpiry { .. } => "taken_before_expiry",
        }
    }
}

/// Checks `lease` against the lease trusted before it (pure). `taker` is what the
/// roster (or, in open mode, the pins) says of its holder for the `leader` role;
/// `max_ttl_sec` is the mesh-wide maximum lease length; `tolerance_sec` is
/// `[sync] clock_tolerance`, the skew allowed between the two holders' clocks.
pub fn verify(
    lease: &Lease,
    prev: Option<&Lease>,
    taker: &Standing,
    max_ttl_sec: u64,
    tolerance_sec: u64,
) -> Result<(), LeaseRefusal> {
    let key = match taker {
        Standing::Trusted(k) => k,
        other => {
            return Err(LeaseRefusal::Taker(
                other.refusal(&lease.leader_id).unwrap_or_default(),
            ));
        }
    };
    let signed = lease
        .sig
        .as_deref()
        .is_some_and(|s| crate::keys::verify_bytes(&lease.signing_bytes(), s, key));
    if !signed {
        return Err(LeaseRefusal::BadSignature {
            taker: lease.leader_id.clone(),
        });
    }
    let taken_at = crate::event::parse_timestamp(&lease.taken_at)
        .ok_or(LeaseRefusal::BadTimestamp { field: "taken_at" })?;
    let expires = crate::event::parse_timestamp(&lease.lease_expires_at).ok_or(
        LeaseRefusal::BadTimestamp {
            field: "lease_expires_at",
        },
    )?;
    let span = (expires - taken_at).num_seconds();
    let max = i64::try_from(max_ttl_sec).unwrap_or(i64::MAX);
    if span > max || lease.ttl_sec > max_ttl_sec {
        return Err(LeaseRefusal::TooLong {
            secs: span.max(i64::try_from(lease.ttl_sec).unwrap_or(i64::MAX)),
            max: max_ttl_sec,
        });
    }
    if lease.epoch == 0 || lease.epoch.checked_add(1).is_none() {
        return Err(LeaseRefusal::EpochOutOfRange(lease.epoch));
    }
    let Some(p) = prev else {
        return Ok(());
    };
    if lease.epoch == p.epoch {
        if lease.leader_id != p.leader_id {
            return Err(LeaseRefusal::EpochTaken {
                epoch: p.epoch,
                holder: p.leader_id.clone(),
                taker: lease.leader_id.clone(),
            });
        }
        return Ok(());
    }
    if p.epoch.checked_add(1) != Some(lease.epoch) {
        return Err(LeaseRefusal::EpochNotNext {
            trusted: p.epoch,
            found: lease.epoch,
        });
    }
    // A new holder may take over before the trusted expiry by at most the clock
    // tolerance, or at any time when that expiry lay beyond the trusted lease's own
    // length plus the tolerance ahead of the taking (a clock far ahead wrote it).
    let tol = chrono::Duration::seconds(i64::try_from(tolerance_sec).unwrap_or(i64::MAX));
    let prev_len = chrono::Duration::seconds(i64::try_from(p.ttl_sec).unwrap_or(i64::MAX));
    let implausible = taken_at
        .checked_add_signed(prev_len)
        .and_then(|t| t.checked_add_signed(tol))
        .is_some_and(|limit| p.expires() > limit);
    let early = taken_at
        .checked_add_signed(tol)
        .is_none_or(|t| t < p.expires());
    if lease.leader_id != p.leader_id && early && !implausible {
        return Err(LeaseRefusal::TakenBeforeExpiry {
            holder: p.leader_id.clone(),
            expires: p.lease_expires_at.clone(),
            taken_at: lease.taken_at.clone(),
        });
    }
    Ok(())
}

/// What a node should write to the lease file, if anything (unsigned; time rules
/// in [`super::clock::judge`]).
///
/// `current` is the lease this node trusts (an invalid lease file counts as
/// absent, so the next honest taker writes the next epoch over it). Absent,
/// expired or implausible (expiry beyond ttl + tolerance ahead): take it with the
/// next epoch (never past `u64::MAX - 1`). Held by `me`: renew it once less than
/// `renew_before` is left (same epoch). Held by another and valid: leave it. A
/// node whose own clock is skewed past the tolerance (`c.refusal`) writes nothing.
pub fn next(current: Option<&Lease>, me: &str, c: &super::clock::LeaseClock) -> Option<Lease> {
    use super::clock::Standing as Judged;
    if c.refusal.is_some() {
        return None;
    }
    let expires_at = crate::event::format_timestamp(c.now.checked_add_signed(c.ttl)?);
    let fresh = |epoch: u64| Lease {
        leader_id: me.to_string(),
        epoch,
        lease_expires_at: expires_at.clone(),
        ttl_sec: c.ttl.num_seconds().max(1) as u64,
        taken_at: crate::event::format_timestamp(c.now),
        sig: None,
    };
    let Some(l) = current else {
        return Some(fresh(1));
    };
    match super::clock::judge(&l.leader_id, l.expires(), l.ttl_sec, me, c) {
        Judged::Implausible | Judged::Expired => {
            let epoch = l.epoch.checked_add(1).filter(|e| *e < u64::MAX)?;
            Some(fresh(epoch))
        }
        Judged::RenewDue => Some(fresh(l.epoch)),
        Judged::Valid => None,
    }
}

#[cfg(test)]
mod tests;
