//! Which seqs of a peer have been seen, as merged ranges: highest contiguous seq and gaps.

use serde::{Deserialize, Serialize};

/// Sorted, disjoint, non-adjacent inclusive ranges of seqs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeqRanges(pub Vec<[u64; 2]>);

/// A run of seqs that has not been seen while later ones have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The peer.
    pub node_id: String,
    /// First missing seq.
    pub from_seq: u64,
    /// Last missing seq.
    pub to_seq: u64,
}

impl SeqRanges {
    /// Records seqs `lo..=hi` as seen.
    pub fn insert_range(&mut self, lo: u64, hi: u64) {
        if lo > hi {
            return;
        }
        let (mut lo, mut hi) = (lo, hi);
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for &[a, b] in &self.0 {
            if b.saturating_add(1) < lo {
                out.push([a, b]);
            } else if hi.saturating_add(1) < a {
                if !placed {
                    out.push([lo, hi]);
                    placed = true;
                }
                out.push([a, b]);
            } else {
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if !placed {
            out.push([lo, hi]);
        }
        out.sort_unstable();
        self.0 = out;
    }

    /// Records one seq as seen.
    pub fn insert(&mut self, seq: u64) {
        self.insert_range(seq, seq);
    }

    /// Whether `seq` has been seen.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.0.partition_point(|r| r[1] < seq);
        self.0.get(i).is_some_and(|r| r[0] <= seq)
    }

    /// Every seq from 1 through this one has been seen (0 when seq 1 has not).
    pub fn contiguous_through(&self) -> u64 {
        match self.0.first() {
            Some([1, hi]) => *hi,
            _ => 0,
        }
    }

    /// The highest seq seen.
    pub fn highest(&self) -> u64 {
        self.0.last().map_or(0, |r| r[1])
    }

    /// Missing ranges below the highest seq seen.
    pub fn gaps(&self, node_id: &str) -> Vec<Gap> {
        let mut out = Vec::new();
        let mut next = 1u64;
        for &[a, b] in &self.0 {
            if a > next {
                out.push(Gap {
                    node_id: node_id.to_string(),
                    from_seq: next,
                    to_seq: a - 1,
                });
            }
            next = b + 1;
        }
        out
    }
}

#[cfg(test)]
mod tests;
