//! Time as an input to distrust: pure rules for judging the clock stamps other nodes
//! wrote into the ledger, and this node's estimate of how far each clock is off.
//!
//! Clocks decide nothing by themselves: order comes from seqs and epochs. Stamps are
//! judged against the reader's clock with a tolerance (`[sync] clock_tolerance`):
//! a stamp further ahead than that is *from the future* and is held, refused or not
//! believed. Offsets are measured from peers' heartbeats: a heartbeat that changed
//! since the last sync was written after that sync, so `stamp − now` is the peer's
//! offset minus a delivery delay; the largest of the last few samples is the
//! estimate with the smallest delay. The mesh's reference is the median of all
//! clocks (this node counting as 0), so one wrong clock cannot move it.
//! `docs/reliability.md` ("Time") describes the model.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Heartbeat samples kept per peer.
pub const MAX_SAMPLES: usize = 8;

/// Whether `stamp` lies more than `tolerance` ahead of `now` (written in the reader's future).
pub fn in_future(stamp: DateTime<Utc>, now: DateTime<Utc>, tolerance: Duration) -> bool {
    stamp - now > tolerance
}

/// Whether a lease expiry can have been written by a clock within the tolerance:
/// no more than `ttl + tolerance` ahead of `now`. An implausible lease is invalid.
pub fn lease_expiry_plausible(
    expires: DateTime<Utc>,
    ttl: Duration,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> bool {
    expires - now <= ttl + tolerance
}

/// What this node remembers about clocks between syncs (`state/event_mesh/clock.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockState {
    /// Per peer: its last heartbeat and the offset samples taken from it.
    #[serde(default)]
    pub peers: BTreeMap<String, PeerClock>,
    /// The lease version last read from the remote, and when this node first saw it.
    #[serde(default)]
    pub lease: Option<LeaseSighting>,
    /// Changes of leader or epoch this node has observed.
    #[serde(default)]
    pub leadership_changes: u64,
}

/// One peer's heartbeat history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerClock {
    /// The heartbeat (`last_seen`) as last read.
    pub last_seen: String,
    /// `heartbeat − local time` at reading, in seconds, for each new heartbeat (newest last).
    #[serde(default)]
    pub samples: Vec<i64>,
}

/// One version of the lease as this node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSighting {
    /// The holder.
    pub leader_id: String,
    /// Its epoch.
    pub epoch: u64,
    /// Its expiry as written (by the holder's clock).
    pub lease_expires_at: String,
    /// When this node first read this version, by its own clock.
    pub first_seen: String,
}

/// A change of leader or epoch, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderChange {
    /// The previous holder and epoch.
    pub old: (String, u64),
    /// The new holder and epoch.
    pub new: (String, u64),
}

impl ClockState {
    /// Records the peers' heartbeats read at `now`; `me` is skipped, departed peers are forgotten.
    ///
    /// The first heartbeat read from a peer is only a baseline: its age is unknown.
    pub fn observe_heartbeats<'a>(
        &mut self,
        me: &str,
        heartbeats: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: DateTime<Utc>,
    ) {
        let mut seen = BTreeMap::new();
        for (id, stamp) in heartbeats {
            if id == me {
                continue;
            }
            let mut pc = self.peers.remove(id).unwrap_or_default();
            if pc.last_seen != stamp {
                let known = !pc.last_seen.is_empty();
                if let (true, Some(t)) = (known, crate::event::parse_timestamp(stamp)) {
                    pc.samples.push((t - now).num_seconds());
                    let excess = pc.samples.len().saturating_sub(MAX_SAMPLES);
                    pc.samples.drain(..excess);
                }
                pc.last_seen = stamp.to_string();
            }
            seen.insert(id.to_string(), pc);
        }
        self.peers = seen;
    }

    /// The peer's clock minus this node's, in seconds (largest sample: least delayed), if measured.
    pub fn peer_estimate(&self, peer: &str) -> Option<i64> {
        self.peers.get(peer)?.samples.iter().copied().max()
    }

    /// The mesh reference minus this node's clock: the median of every clock, this one as 0.
    ///
    /// With an even count the middle value nearer 0 is taken (this node trusts itself when
    /// the mesh is split evenly). `None` until some peer has been measured.
    fn median(&self) -> Option<i64> {
        let mut all: Vec<i64> = self
            .peers
            .keys()
            .filter_map(|p| self.peer_estimate(p))
            .collect();
        if all.is_empty() {
            return None;
        }
        all.push(0);
        all.sort_unstable();
        let n = all.len();
        if n % 2 == 1 {
            Some(all[n / 2])
        } else {
            let (a, b) = (all[n / 2 - 1], all[n / 2]);
            Some(if a.abs() <= b.abs() { a } else { b })
        }
    }

    /// This node's clock minus the mesh reference, in seconds; `None` until measured.
    pub fn own_offset(&self) -> Option<i64> {
        self.median().map(|m| -m)
    }

    /// Each measured peer's clock minus the mesh reference, in seconds.
    pub fn peer_offsets(&self) -> BTreeMap<String, i64> {
        let m = self.median().unwrap_or(0);
        self.peers
            .keys()
            .filter_map(|p| Some((p.clone(), self.peer_estimate(p)? - m)))
            .collect()
    }

    /// Records the lease read from the remote at `now`; returns the change of leader or
    /// epoch it shows, if any (counted in `leadership_changes`).
    pub fn observe_lease(
        &mut self,
        lease: Option<&super::lease::Lease>,
        now: DateTime<Utc>,
    ) -> Option<LeaderChange> {
        let l = lease?;
        let same_version = self.lease.as_ref().is_some_and(|s| {
            s.leader_id == l.leader_id
                && s.epoch == l.epoch
                && s.lease_expires_at == l.lease_expires_at
        });
        if same_version {
            return None;
        }
        let change = match &self.lease {
            Some(s) if s.leader_id != l.leader_id || s.epoch != l.epoch => Some(LeaderChange {
                old: (s.leader_id.clone(), s.epoch),
                new: (l.leader_id.clone(), l.epoch),
            }),
            _ => None,
        };
        if change.is_some() {
            self.leadership_changes += 1;
        }
        self.lease = Some(LeaseSighting {
            leader_id: l.leader_id.clone(),
            epoch: l.epoch,
            lease_expires_at: l.lease_expires_at.clone(),
            first_seen: crate::event::format_timestamp(now),
        });
        change
    }

    /// How long this node has seen `lease` unchanged, by its own clock.
    pub fn unchanged_for(
        &self,
        lease: &super::lease::Lease,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let s = self.lease.as_ref()?;
        if s.leader_id != lease.leader_id
            || s.epoch != lease.epoch
            || s.lease_expires_at != lease.lease_expires_at
        {
            return None;
        }
        crate::event::parse_timestamp(&s.first_seen).map(|t| now - t)
    }
}

/// Why this node may not take or renew the lease: its own measured skew exceeds the tolerance.
pub fn skew_refusal(own_offset: Option<i64>, tolerance: Duration) -> Option<String> {
    let off = own_offset?;
    (off.abs() > tolerance.num_seconds()).then(|| {
        format!(
            "this node's clock is {} s {} the mesh (clock_tolerance {} s): it does not take or renew \
             the leader lease until its clock is corrected (check NTP)",
            off.abs(),
            if off > 0 { "ahead of" } else { "behind" },
            tolerance.num_seconds()
        )
    })
}

/// What the lease decision knows about time (built by the sync from config and [`ClockState`]).
#[derive(Debug, Clone)]
pub struct LeaseClock {
    /// This node's clock.
    pub now: DateTime<Utc>,
    /// `[sync] lease_ttl`: the length of a lease this node writes, and the longest it believes.
    pub ttl: Duration,
    /// `[sync] clock_tolerance`.
    pub tolerance: Duration,
    /// The holder renews once less than this is left (two sync intervals with jitter).
    pub renew_before: Duration,
    /// This node's clock minus the mesh reference, once measured.
    pub own_offset: Option<Duration>,
    /// `Some(reason)` when this node's own skew forbids taking or renewing the lease.
    pub refusal: Option<String>,
    /// The holder's clock minus this node's, as measured from its heartbeats.
    pub holder_offset: Option<Duration>,
    /// How long this node has seen the current lease version unchanged (own clock).
    pub unchanged_for: Option<Duration>,
}

impl LeaseClock {
    /// The mesh's time as this node estimates it: its clock corrected by its measured offset.
    pub fn reference_now(&self) -> DateTime<Utc> {
        reference_now(self.now, self.own_offset)
    }
}

/// `now` corrected by this node's measured offset (unchanged while unmeasured).
pub fn reference_now(now: DateTime<Utc>, own_offset: Option<Duration>) -> DateTime<Utc> {
    own_offset.map_or(now, |o| now - o)
}

/// How the current lease stands for this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Its expiry lies more than ttl + tolerance ahead: invalid; take it over with the next epoch.
    Implausible,
    /// Expired: take it with the next epoch.
    Expired,
    /// Held by this node with less than `renew_before` left: renew (same epoch).
    RenewDue,
    /// Held and valid: leave it.
    Valid,
}

/// Judges the lease held by `leader` with expiry `expires` (`lease_ttl_sec` as it says).
///
/// The expiry is implausible when it lies beyond ttl + tolerance ahead of the mesh's
/// time (this node's clock corrected by its measured offset, so a slow node does not
/// mistake a normal lease for a bogus one once it knows it is slow).
///
/// Another holder's lease is expired when, by the holder's own clock as estimated from
/// its heartbeats, its expiry has passed; or when this node has seen the same version
/// for the lease's length on its own clock (durations need no agreement between clocks);
/// or, with no estimate of the holder, when this node's own clock is known to be within
/// the tolerance and the expiry passed more than the tolerance ago. A fast reader
/// therefore never takes early, and leadership does not drift to the fastest clock.
pub fn judge(
    leader: &str,
    expires: DateTime<Utc>,
    lease_ttl_sec: u64,
    me: &str,
    c: &LeaseClock,
) -> Standing {
    // Only a node that knows its own offset (or the holder itself) can call another's
    // expiry bogus: a slow node not yet measured would see every normal lease as too long.
    let judged = c.own_offset.is_some() || leader == me;
    if judged && !lease_expiry_plausible(expires, c.ttl, c.reference_now(), c.tolerance) {
        return Standing::Implausible;
    }
    if leader == me {
        return if c.now >= expires {
            Standing::Expired
        } else if expires - c.now < c.renew_before {
            Standing::RenewDue
        } else {
            Standing::Valid
        };
    }
    let by_holder_clock = c.holder_offset.is_some_and(|off| c.now + off >= expires);
    let length = c.ttl + c.tolerance;
    let length = Duration::seconds(lease_ttl_sec.min(length.num_seconds().max(0) as u64) as i64);
    let by_duration = c.unchanged_for.is_some_and(|d| d >= length);
    let by_own_clock =
        c.holder_offset.is_none() && c.own_offset.is_some() && c.now >= expires + c.tolerance;
    if by_holder_clock || by_duration || by_own_clock {
        Standing::Expired
    } else {
        Standing::Valid
    }
}

#[cfg(test)]
mod tests;
