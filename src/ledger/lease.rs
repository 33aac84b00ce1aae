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

/// What a node should write to the lease file at `now`, if anything.
///
/// Absent or expired: take it with the next epoch. Held by `me`: renew it once
/// less than half the ttl is left (same epoch). Held by another: leave it.
pub fn next(
    current: Option<&Lease>,
    me: &str,
    now: chrono::DateTime<chrono::Utc>,
    ttl_sec: u64,
) -> Option<Lease> {
    let expires_at =
        crate::event::format_timestamp(now + chrono::Duration::seconds(ttl_sec as i64));
    match current {
        None => Some(Lease {
            leader_id: me.to_string(),
            epoch: 1,
            lease_expires_at: expires_at,
            ttl_sec,
        }),
        Some(l) if now >= l.expires() => Some(Lease {
            leader_id: me.to_string(),
            epoch: l.epoch + 1,
            lease_expires_at: expires_at,
            ttl_sec,
        }),
        Some(l) if l.leader_id == me => {
            let left = l.expires() - now;
            (left < chrono::Duration::seconds((ttl_sec / 2) as i64)).then(|| Lease {
                leader_id: me.to_string(),
                epoch: l.epoch,
                lease_expires_at: expires_at,
                ttl_sec,
            })
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap()
    }

    #[test]
    fn absent_lease_is_taken_at_epoch_one() {
        let l = next(None, "a", at(0), 120).unwrap();
        assert_eq!((l.leader_id.as_str(), l.epoch), ("a", 1));
        assert!(l.held_by("a", at(119)));
        assert!(!l.held_by("a", at(120)));
        assert!(!l.held_by("b", at(1)));
    }

    #[test]
    fn others_wait_for_expiry_then_bump_the_epoch() {
        let l = next(None, "a", at(0), 120).unwrap();
        assert_eq!(next(Some(&l), "b", at(60), 120), None);
        let taken = next(Some(&l), "b", at(120), 120).unwrap();
        assert_eq!((taken.leader_id.as_str(), taken.epoch), ("b", 2));
    }

    #[test]
    fn holder_renews_in_the_second_half_keeping_its_epoch() {
        let l = next(None, "a", at(0), 120).unwrap();
        assert_eq!(next(Some(&l), "a", at(30), 120), None);
        let renewed = next(Some(&l), "a", at(90), 120).unwrap();
        assert_eq!(renewed.epoch, 1);
        assert!(renewed.held_by("a", at(200)));
    }
}
